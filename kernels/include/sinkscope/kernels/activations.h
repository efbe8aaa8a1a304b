// Residual-stream reductions for massive activations on the GPU: the contract of
// sinkscope::residualActivationStats (core/include/sinkscope/activation_stats.h). Per layer of hidden
// [L, T, D]: the k largest |h| (largest first, ties by flat index token * D + dim ascending) and the
// lower median of |h| (exact: a radix select over the float bits). NaN counts as 0. One block per layer.
#pragma once

#include "sinkscope/kernels/cuda_status.h"

#include <cstdint>

namespace sinkscope::cuda {

inline constexpr int kMaxActivationTopK = 32;

struct ActivationArgs {
    const float *hidden = nullptr; // [L, T, D], device
    int layers = 0;
    int tokens = 0;
    int dim = 0;
    int k = 3; // 1..kMaxActivationTopK
    // Outputs, device:
    float *topValue = nullptr;   // [L, k] signed h
    int64_t *topIndex = nullptr; // [L, k] flat index token * D + dim (-1 where the layer has fewer values)
    float *median = nullptr;     // [L]
};

CudaStatus activationStats(const ActivationArgs &args, void *stream = nullptr);

} // namespace sinkscope::cuda
