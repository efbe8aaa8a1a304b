// Fused attention statistics of one layer on the GPU: the contract of sinkscope::layerAttentionStats
// (core/include/sinkscope/attention_tiles.h, the CPU reference; parity in tests/kernels/), on device
// buffers. Flash-style: per query tile, an online softmax over the key tiles gives the row normaliser,
// a second sweep recomputes the scores and reduces the exact probabilities; no T x T buffer exists.
//
// Semantics, per query head h (GQA: kv head h / (H / Hkv)), query t, key j <= t:
//   z = q_t . k_j * scale + logitBias[h, j];  z /= temperature[h]
//   A[t, j] = exp(z) / (sum_{i <= t} exp(z[t, i]) + exp(sinkLogit[h]))
//
// Every pointer is device memory (fp32, row-major, contiguous); optional inputs and outputs may be null.
// Outputs are written for every valid element only: memory around them is never touched.
// Work: 2 x H x T^2 / 2 x d multiply-adds (scores twice), memory O(H x T). Limits: d <= 256.
// Asynchronous on `stream` (a cudaStream_t; null = legacy default stream); errors of the launch come back,
// errors of the execution at the next synchronize().
#pragma once

#include "sinkscope/kernels/cuda_status.h"

#include <cstdint>

namespace sinkscope::cuda {

struct AttentionStatsArgs {
    const float *q = nullptr; // [H, T, d]
    const float *k = nullptr; // [Hkv, T, d]
    int heads = 0;
    int kvHeads = 0;
    int tokens = 0;
    int headDim = 0;
    float scale = 0;                    // 0: 1 / sqrt(d)
    const float *logitBias = nullptr;   // [H, T]
    const float *temperature = nullptr; // [H]
    const float *sinkLogit = nullptr;   // [H]
    const float *sinkWeight = nullptr;  // [T]; null: key 0 alone
    const float *valueNorms = nullptr;  // [H, T]

    // Outputs, [H, T] each (per head and query, or per head and key):
    float *sinkMass = nullptr;      // sum_j A w_j
    float *firstMass = nullptr;     // A[t, 0]
    float *rowEntropy = nullptr;    // -sum_j A log A (nats)
    float *rowMax = nullptr;        // max_j A
    float *rowWeighted = nullptr;   // sum_j A f_j (needs valueNorms)
    float *received = nullptr;      // sum_t A[t, j]       (accumulated: zeroed by the call first)
    float *receivedPlogp = nullptr; // sum_t A log A        (accumulated: zeroed by the call first)
};

CudaStatus attentionStats(const AttentionStatsArgs &args, void *stream = nullptr);

} // namespace sinkscope::cuda
