// The per-block kernel of the fused CPU attention (sinkscope/attention/fused_attention.h), compiled once per
// instruction set (attention_kernel_{baseline,avx2,avx512}.cpp include attention_kernel.inc) and chosen at
// run time (fused_attention.cpp). Plain types only: the variant files include no standard library
// templates, so no inline function compiled for AVX-512 can be merged into a baseline caller.
#pragma once

#include <cstdint>

namespace sinkscope::detail {

// The most query rows one block holds.
inline constexpr int64_t kMaxBlockRows = 64;

// One task: query head `head`, query rows [row0, row1) against every key they see.
struct AttentionBlock {
    // The layer (row-major, contiguous):
    const float *q = nullptr;  // [H, T, d]
    const float *kt = nullptr; // [Hkv, d, ktStride]: keys transposed, zero beyond Tk
    const float *v = nullptr;  // [Hkv, Tk, dv]
    int64_t heads = 0, kvHeads = 0, queries = 0, keys = 0, headDim = 0, valueDim = 0;
    int64_t ktStride = 0; // >= keys + 2 vectors
    int64_t past = 0;     // keys - queries: query i sits at position past + i and sees keys j <= past + i
    int64_t window = 0;   // > 0: and j > past + i - window
    float scale = 0;
    // Controls (null: absent), as the archive's attention step applies them (docs/model-format.md):
    const float *mask = nullptr;        // [T, Tk] additive (attn_mask)
    const float *logitBias = nullptr;   // [H, Tk] added after the scale
    const float *temperature = nullptr; // [H] divides the logits
    const float *learnedSink = nullptr; // [H] the model's own null-column logit (gpt-oss)
    const float *sinkLogit = nullptr;   // [H] the sink_logit mitigation's null column
    const float *actSinks = nullptr;    // [H, Tk] 1 on the columns ACT rescales in this head (after the softmax)
    const float *actBeta = nullptr;     // [H] the share of their mass those columns keep
    const float *headMode = nullptr;    // [H] 0 as computed, 1 all zero, 2 everything on key 0
    const float *probScale = nullptr;   // [H, Tk] multiplies the probabilities
    bool probRenorm = false;            // then rows renormalised to 1
    const float *valueScale = nullptr;  // [H, Tk] multiplies the values (not the statistics)
    const float *headGate = nullptr;    // [H] multiplies the head's output
    const float *sinkWeight = nullptr;  // [Tk] for sinkMass; null: key 0
    const float *valueNorms = nullptr;  // [H, Tk] f_j for rowWeighted
    // Outputs:
    float *out = nullptr; // [T, H, dv]
    // [H, T] per query, null when not wanted:
    float *sinkMass = nullptr, *firstMass = nullptr, *rowPlogp = nullptr, *rowMax = nullptr, *rowWeighted = nullptr,
          *nullShare = nullptr;
    bool columns = false; // fill colSum / colPlogp below
    // The task:
    int64_t head = 0, row0 = 0, row1 = 0;
    float *scores = nullptr;   // scratch, (row1 - row0) x blockKeysPadded(...)
    float *colSum = nullptr;   // scratch [blockKeysPadded], this block's column sums (keys keyLo..)
    float *colPlogp = nullptr; // scratch [blockKeysPadded]
    // Set by the kernel: the block's keys are [keyLo, keyLo + keyCount).
    int64_t keyLo = 0, keyCount = 0;
};

// The instruction sets with a compiled variant.
enum class KernelIsa { Baseline = 0, Avx2 = 1, Avx512 = 2 };

namespace isa_baseline {
void attendBlock(AttentionBlock &b);
int vectorFloats();
int registerRows(); // query rows per register block: blocks of a multiple of it run no single-row tails
} // namespace isa_baseline
#if defined(__x86_64__)
namespace isa_avx2 {
void attendBlock(AttentionBlock &b);
int vectorFloats();
int registerRows(); // query rows per register block: blocks of a multiple of it run no single-row tails
} // namespace isa_avx2
namespace isa_avx512 {
void attendBlock(AttentionBlock &b);
int vectorFloats();
int registerRows(); // query rows per register block: blocks of a multiple of it run no single-row tails
} // namespace isa_avx512
#endif

} // namespace sinkscope::detail
