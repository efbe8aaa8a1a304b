// Host-memory convenience over the statistics kernel, for callers whose q and k live in host memory
// (the core's metrics on a CPU LibTorch build): uploads, runs, downloads. Callers with device tensors
// (a CUDA LibTorch) call attentionStats() on their buffers directly.
#pragma once

#include "sinkscope/kernels/attention_stats.h"

#include <vector>

namespace sinkscope::cuda {

struct HostAttentionStats {
    // [H, T] each, as in AttentionStatsArgs; empty when not requested.
    std::vector<float> sinkMass, firstMass, rowEntropy, rowMax, rowWeighted, received, receivedPlogp;
};

// `input`: q, k and the optional controls as HOST pointers (its output pointers are ignored). Runs on CUDA
// device `device`, synchronously; every output is filled. Errors name the CUDA call that failed.
CudaStatus attentionStatsFromHost(const AttentionStatsArgs &input, int device, HostAttentionStats &out);

} // namespace sinkscope::cuda
