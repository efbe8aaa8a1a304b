// Shared by the statistics and map kernels: the score of one (query, key) pair with the logit controls,
// and the per-row log-sum-exp kernel (sweep 1 of the online softmax).
#pragma once

#include "sinkscope/kernels/attention_stats.h"

#include <cuda_runtime.h>

#include <math_constants.h>

namespace sinkscope::cuda::detail {

inline constexpr int kTileQ = 64;    // query rows per block
inline constexpr int kTileK = 64;    // keys per tile
inline constexpr int kThreads = 256; // 16 x 16 threads, each a 4 x 4 block of scores
inline constexpr int kMaxHeadDim = 256;

struct DeviceArgs {
    const float *q, *k;
    int heads, kvHeads, tokens, headDim;
    float scale;
    const float *logitBias, *temperature, *sinkLogit, *sinkWeight, *valueNorms;
    float *sinkMass, *firstMass, *rowEntropy, *rowMax, *rowWeighted, *received, *receivedPlogp;
    float *lse;   // [H, T] row normalisers (map path)
    int headBase; // blockIdx.y + headBase is the head
};

// Dynamic shared memory of the tiled kernels: Q and K tiles (padded rows) plus per-key side inputs.
inline size_t tileSharedBytes(int headDim)
{
    return sizeof(float) * (static_cast<size_t>(kTileQ + kTileK) * (headDim + 1) + 5 * kTileK);
}

// Combines two online-softmax partial states (m, l): l is the sum of exp(s - m).
__device__ inline void combineMl(float &m, float &l, float m2, float l2)
{
    const float mm = fmaxf(m, m2);
    if (mm == -CUDART_INF_F) {
        return; // both empty
    }
    l = l * __expf(m - mm) + l2 * __expf(m2 - mm);
    m = mm;
}

CudaStatus checkArgs(const AttentionStatsArgs &a);
DeviceArgs deviceArgs(const AttentionStatsArgs &a);
// kStats = false: sweep 1 only, writing the row normalisers to DeviceArgs::lse for heads
// headBase .. headBase + headsInGrid - 1.
template <bool kStats> CudaStatus launchTiles(const DeviceArgs &d, int headsInGrid, cudaStream_t stream);

} // namespace sinkscope::cuda::detail
