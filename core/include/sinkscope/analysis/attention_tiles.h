// Attention statistics of one layer without a T x T map, and one head's map pooled to a requested
// resolution: the CPU reference of the CUDA kernels in kernels/ (same contract, parity-tested in
// tests/kernels/). Both run the streaming path's online softmax over key tiles (metrics_streaming.cpp).
//
// Semantics, per query head h (GQA: h reads kv head h / (H / Hkv)), query t and key j <= t (causal; on a
// sliding-window layer also j > t - window):
//   z[t, j] = q_t . k_j * scale + logitBias[h, j];  z /= temperature[h]
//   A[t, j] = exp(z[t, j]) / (sum_{visible i} exp(z[t, i]) + exp(sinkLogit[h]))
// exactly as the model's attention step applies the logit controls logit_bias, temperature and
// sink_logit (docs/model-format.md); absent controls are neutral (bias 0, tau 1, no null column).
// Layouts are row-major. A key masked by a -inf bias has A = 0 and contributes 0 log 0 = 0; a row whose
// every key is masked (and no sink logit) is NaN, as the model's softmax.
//
// Threading: pure functions of their inputs; they use LibTorch's intra-op threads.
#pragma once

#include "sinkscope/common/array.h"
#include "sinkscope/common/result.h"

#include <cstdint>
#include <vector>

namespace sinkscope {

struct LayerAttentionInput {
    const float *q = nullptr;           // [H, T, d], post-RoPE
    const float *k = nullptr;           // [Hkv, T, d]; Hkv divides H
    int64_t heads = 0;                  // H
    int64_t kvHeads = 0;                // Hkv
    int64_t tokens = 0;                 // T
    int64_t headDim = 0;                // d
    float scale = 0;                    // logit scale; 0: 1 / sqrt(d)
    const float *logitBias = nullptr;   // [H, T]: this layer's slice of logit_bias [L, H, Tk]; null: 0
    const float *temperature = nullptr; // [H]; null: 1
    const float *sinkLogit = nullptr;   // [H]; null: no null column
    const float *sinkWeight = nullptr;  // [T]: sinkMass weights (1 on the sink positions); null: key 0 alone
    const float *valueNorms = nullptr;  // [H, T]: f_j = ||v_j W_O^h|| for rowWeighted; null: rowWeighted = 0
    int64_t window = 0;                 // > 0: a sliding-window layer, keys j <= t - window are masked (A = 0)
};

// Every array [H, T] row-major (head, then query or key).
struct LayerAttentionStats {
    int64_t heads = 0;
    int64_t tokens = 0;
    // Per head and query t:
    std::vector<float> sinkMass;    // sum_j A[t, j] w_j (the mass on the sink positions)
    std::vector<float> firstMass;   // A[t, 0]
    std::vector<float> rowEntropy;  // -sum_j A[t, j] log A[t, j], nats, not normalised
    std::vector<float> rowMax;      // max_j A[t, j]
    std::vector<float> rowWeighted; // sum_j A[t, j] f_j
    // Per head and key j:
    std::vector<float> received;      // R_j = sum_t A[t, j]
    std::vector<float> receivedPlogp; // sum_t A[t, j] log A[t, j]
};

// Errors: InvalidArgument for null q/k, non-positive sizes or Hkv not dividing H.
// `tile`: query and key tile length (H x tile^2 floats of scores at a time).
Result<LayerAttentionStats> layerAttentionStats(const LayerAttentionInput &input, int64_t tile = 512);

enum class PoolMode {
    Max,  // the largest A in the bin
    Mean, // the mean over all cells of the bin, masked cells (j > t) counting 0: the map image shrunk
};

// One head's attention map A [T, T] pooled to [rows, cols]. Bin r covers queries
// [floor(r T / rows), floor((r + 1) T / rows)), and the same for keys and cols; masked cells are 0.
// Errors: InvalidArgument when head is out of range or rows / cols are not in 1..T (plus the checks
// of layerAttentionStats).
Result<FloatArray> pooledAttentionMap(const LayerAttentionInput &input, int64_t head, int64_t rows, int64_t cols,
                                      PoolMode mode, int64_t tile = 512);

// The bin of index i (0 <= i < n) when n positions are pooled into `bins` (1 <= bins <= n) bins as above.
inline int64_t poolBinOf(int64_t i, int64_t n, int64_t bins)
{
    return ((i + 1) * bins - 1) / n;
}
// The first index of bin b (b = bins gives n).
inline int64_t poolBinStart(int64_t b, int64_t n, int64_t bins)
{
    return b * n / bins;
}

} // namespace sinkscope
