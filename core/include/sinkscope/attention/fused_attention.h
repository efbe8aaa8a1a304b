// Fused causal attention on the CPU with the sink statistics in the same pass (docs/performance.md,
// "The attention engine"). The archive's attention step calls it as the TorchScript operator
// sinkscope::attend (core/src/attention/attention_op.cpp); the statistics have the contract of the CUDA
// statistics kernel (sinkscope/kernels/attention_stats.h) and of its CPU reference
// (sinkscope/analysis/attention_tiles.h), which is this engine's parity oracle.
//
// Per query head h (GQA: kv head h / (H / Hkv)), query i at position p = Tk - T + i (the keys before the
// queries are a cache), key j visible when j <= p and, on a sliding-window layer, j > p - window:
//   z = q_i . k_j * scale (+ mask[i, j]) (+ logitBias[h, j]);  z /= temperature[h]
//   A[i, j] = exp(z) / (sum_{visible} exp(z) + exp(learnedSink[h]) + exp(sinkLogit[h]))
// then, as the archive's step does: ACT on the heads with actHeads > 0.5 (Yu et al. 2024: key columns whose
// mean over the queries that see them exceeds actThres, all but the first such column, keep actBeta of
// their mass and hand the rest to the other keys in proportion; the columns come from a first pass over the
// same probabilities, so a pass with ACT costs two); headMode 1 sets the row to 0, 2 puts everything on key 0;
// probScale multiplies (and probRenorm renormalises); the statistics see these final probabilities;
//   out[i, h] = headGate[h] * sum_j A[i, j] valueScale[h, j] v_j.
// A row with every key masked and no null column is NaN, as a softmax of -inf.
//
// Work: the q k^T and p v products of the visible keys only (a causal block skips the keys after its last
// row, a sliding window those before its first row's view), one exponential per score (plus one logarithm
// per score when entropies are asked for); memory: per thread one block of scores (at most 64 rows x the
// keys it sees, sized to stay in the cache), never T x T. Threads: the program's pool
// (sinkscope/runtime/parallel.h), one task per head and query block.
//
// Instruction sets: the block kernel is compiled for the baseline (SSE2 / NEON), AVX2+FMA and AVX-512 and
// picked at run time from what the CPU supports; SINKSCOPE_CPU_LEVEL=baseline|avx2|avx512 (or
// setAttentionIsa) caps the choice, e.g. to test the baseline path on a newer CPU.
#pragma once

#include "sinkscope/common/result.h"

#include <cstdint>
#include <optional>
#include <string>

namespace sinkscope {

struct FusedAttentionInput {
    const float *q = nullptr; // [H, T, d], post-RoPE
    const float *k = nullptr; // [Hkv, Tk, d]; Hkv divides H; Tk >= T
    const float *v = nullptr; // [Hkv, Tk, dv]
    int64_t heads = 0, kvHeads = 0, queries = 0, keys = 0, headDim = 0, valueDim = 0;
    float scale = 0;    // 0: 1 / sqrt(d)
    int64_t window = 0; // > 0: a sliding-window layer
    // Controls; null: absent (neutral).
    const float *mask = nullptr;        // [T, Tk] additive
    const float *logitBias = nullptr;   // [H, Tk]
    const float *temperature = nullptr; // [H]
    const float *learnedSink = nullptr; // [H]
    const float *sinkLogit = nullptr;   // [H]
    const float *actHeads = nullptr;    // [H]: > 0.5 where ACT runs (with actBeta and actThres)
    const float *actBeta = nullptr;     // [H]
    const float *actThres = nullptr;    // [H]
    const float *headMode = nullptr;    // [H]: 0, 1 or 2
    const float *probScale = nullptr;   // [H, Tk]
    bool probRenorm = false;
    const float *valueScale = nullptr; // [H, Tk]
    const float *headGate = nullptr;   // [H]
    // For the statistics:
    const float *sinkWeight = nullptr; // [Tk]: sinkMass = sum_j A w_j; null: key 0 alone
    const float *valueNorms = nullptr; // [H, Tk]: rowWeighted = sum_j A f_j
};

// Outputs; every statistics pointer may be null (not computed). Per query [H, T], per key [H, Tk].
struct FusedAttentionOutput {
    float *out = nullptr; // [T, H, dv]: the layout the output projection reads (required)
    float *sinkMass = nullptr;
    float *firstMass = nullptr;      // A[i, 0]
    float *rowPlogp = nullptr;       // sum_j A log A (the negative row entropy, nats)
    float *rowMax = nullptr;         // max_j A
    float *rowWeighted = nullptr;    // sum_j A f_j
    float *nullShare = nullptr;      // the learned sink's share exp(learnedSink) / normaliser
    double *received = nullptr;      // sum_i A[i, j]
    double *receivedPlogp = nullptr; // sum_i A log A
};

// Errors: InvalidArgument for null q/k/v/out, non-positive sizes, Hkv not dividing H, Tk < T.
Status fusedAttention(const FusedAttentionInput &input, const FusedAttentionOutput &output);

enum class AttentionIsa { Baseline, Avx2, Avx512 };
const char *attentionIsaName(AttentionIsa isa); // "baseline", "avx2", "avx512"

// The instruction set fusedAttention uses: the best the CPU has, capped by SINKSCOPE_CPU_LEVEL or
// setAttentionIsa.
AttentionIsa activeAttentionIsa();
// The best the CPU (and this build) supports.
AttentionIsa supportedAttentionIsa();
// Caps the choice (tests, benchmarks); nullopt: back to the default. Returns what is now active.
AttentionIsa setAttentionIsa(std::optional<AttentionIsa> cap);

} // namespace sinkscope
