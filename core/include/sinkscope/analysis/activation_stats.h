// Residual-stream reductions for massive activations (docs/metrics.md M6): per layer the k largest |h|
// with their positions and the median |h|. The CPU reference of the CUDA reduction in kernels/
// (parity-tested in tests/kernels/); no LibTorch.
#pragma once

#include "sinkscope/common/result.h"

#include <cstdint>
#include <vector>

namespace sinkscope {

struct ActivationEntry {
    float value = 0; // signed h
    int64_t token = 0;
    int64_t dim = 0;
};

struct LayerActivationStats {
    // The k largest |h| of the layer, largest first; equal |h| by position (token, then dim) ascending.
    // Fewer than k when the layer has fewer values.
    std::vector<ActivationEntry> top;
    float median =
        0; // the lower median of |h| over tokens and dims (element (n - 1) / 2 of the sorted |h|, as torch.median)
};

// hidden: [layers, tokens, dim] row-major (the residual stream after every block). NaN values are
// treated as 0. Errors: InvalidArgument when a size is not positive, k < 1 or hidden is null.
Result<std::vector<LayerActivationStats>> residualActivationStats(const float *hidden, int64_t layers, int64_t tokens,
                                                                  int64_t dim, int k);

} // namespace sinkscope
