// The tensors a LayerHook (sinkscope/model.h) receives. Private to the core: LibTorch types.
#pragma once

#include "sinkscope/model/model.h"

#include <torch/types.h>

namespace sinkscope {

struct LayerTensors {
    at::Tensor queries;    // [H, T, d], post-RoPE, on the model's device
    at::Tensor keys;       // [Hkv, T, d]
    at::Tensor valueNorms; // [H, T]; undefined unless CaptureOptions::valueNorms
};

} // namespace sinkscope
