// Tiny GPT-2 and Llama GGUF files with formula weights, for forward-pass tests against transformers.
//
// tools/make_tiny_models.py writes the same two files with gguf-py, runs them through transformers
// and stores the outputs in tests/data/reference/tiny_gpt2.json and tiny_llama.json. The tensors,
// their order, shapes and types, and the metadata (same keys, types, values and order) must stay in
// sync with that script; the JSON lists every tensor with the float64 sum of its stored values so a
// test can check the two sides still agree.
//
// Weight formula. For a tensor named `name` and flat index i in GGUF data order (ne[0] fastest),
// in uint32 arithmetic (mod 2^32):
//     s = fnv1a32(name)                  // h = 2166136261; for each byte: h ^= b; h *= 16777619
//     x = s * 2654435761 + i * 40503 + 12345
//     x ^= x >> 16; x *= 0x7feb352d; x ^= x >> 15; x *= 0x846ca68b; x ^= x >> 16
//     v = (x >> 8) % 2001 - 1000         // integer in [-1000, 1000]
//     n = base + v * step                // |n| < 2^24, exact in float
//     value = float(n) / 1000000.0f      // a single correctly rounded float division
// with (base, step) by kind, first match wins:
//     name ends with "_norm.weight"               (1000000, 100)   1 +- 0.1
//     name ends with ".bias"                      (0, 50)          +- 0.05
//     "token_embd.weight", "position_embd.weight" (0, 500)         +- 0.5
//     anything else (matrices, output.weight)     (0, 250)         +- 0.25
// F16 tensors store that float rounded to half (round to nearest even).
//
// Vocabulary (both models, 301 tokens): ids 0..255 are GPT-2's byte tokens in encoder.json order
// ('!'..'~', '¡'..'¬', '®'..'ÿ', then the remapped bytes as U+0100..U+0143), ids 256..299 the
// results of tinyMerges() in order, id 300 "<|endoftext|>" (type 3 control, bos = eos = 300); all
// other token types are 1 (normal). tokenizer.ggml.model = "gpt2", tokenizer.ggml.pre = "gpt2".
//
// Tiny GPT-2: d 32, 2 layers, 4 heads, ffn 128, n_ctx 64, LayerNorm eps 1e-5, fused QKV with bias,
// tied output (no output.weight); position_embd.weight is F16, everything else F32.
// Tiny Llama: d 32, 2 layers, 4 heads, 2 KV heads (head dim 8), ffn 48, context 64, rope freq_base
// 10000, RMSNorm eps 1e-5, separate output.weight; token_embd.weight is F16, everything else F32.
// attn_q / attn_k hold formula values in llama.cpp's permuted (GGUF) layout.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sinkscope::testing {

namespace tiny {
inline constexpr int64_t kVocab = 301;
inline constexpr int64_t kEndOfText = 300;
inline constexpr int64_t kContext = 64;
inline constexpr int64_t kEmbd = 32;
inline constexpr int64_t kLayers = 2;
inline constexpr int64_t kHeads = 4;
inline constexpr int64_t kGpt2Ffn = 128;
inline constexpr int64_t kLlamaKvHeads = 2;
inline constexpr int64_t kLlamaHeadDim = 8;
inline constexpr int64_t kLlamaFfn = 48;
inline constexpr float kNormEps = 1e-5f;
inline constexpr float kLlamaRopeBase = 10000.0f;
} // namespace tiny

// FNV-1a 32-bit hash of a tensor name (the formula's seed).
uint32_t tinyNameHash(std::string_view name);
// The formula value of element `index` (GGUF data order) of tensor `name`, before any F16 rounding.
float tinyWeightValue(std::string_view name, uint32_t index);
// Elements 0..count-1 of tensor `name`.
std::vector<float> tinyWeightValues(std::string_view name, size_t count);

// The shared 301-token vocabulary (UTF-8 strings), its token types and its 44 merges ("a b").
std::vector<std::string> tinyVocabTokens();
std::vector<int32_t> tinyVocabTokenTypes();
std::vector<std::string> tinyMerges();

class GgufWriter;
// The tiny Llama's writer, to add keys or tensors before writing (e.g. a tensor the converter must refuse).
GgufWriter tinyLlamaGgufWriter();

// Whole GGUF files in memory, and written to `path` (throws std::runtime_error on I/O failure).
std::vector<uint8_t> tinyGpt2GgufBytes();
std::vector<uint8_t> tinyLlamaGgufBytes();
void writeTinyGpt2Gguf(const std::string &path);
void writeTinyLlamaGguf(const std::string &path);

// A "checkpoint" of the tiny Llama: the same file with attn_q and attn_k multiplied by 1 + step / 1000
// and general.name "tiny-llama-step<step>", so a series of steps has different weights and sharper
// attention later in "training". Step 0 is the tiny Llama itself (but for its name).
void writeTinyLlamaCheckpointGguf(const std::string &path, int step);

} // namespace sinkscope::testing
