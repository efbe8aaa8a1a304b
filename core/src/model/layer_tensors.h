// The tensors a LayerHook (sinkscope/model.h) receives. Private to the core: LibTorch types.
#pragma once

#include "sinkscope/model/model.h"

#include <torch/types.h>

namespace sinkscope {

struct LayerTensors {
    at::Tensor queries;    // [H, T, d], post-RoPE, on the model's device
    at::Tensor keys;       // [Hkv, T, d]
    at::Tensor valueNorms; // [H, T]; undefined unless CaptureOptions::valueNorms
    at::Tensor rowStats;   // [kRowStats, H, T] (attention/attention_op.h); undefined unless the engine computed them
    at::Tensor colStats;   // [2, H, Tk] doubles
};

// The engine's statistics tensors of one layer as PassAttentionStats (both undefined: an empty one).
PassAttentionStats passStatsOf(const at::Tensor &rowStats, const at::Tensor &colStats);

} // namespace sinkscope
