#include "support/tiny_models.h"

#include "support/gguf_writer.h"

#include <array>
#include <utility>

namespace sinkscope::testing {

namespace {

struct KindParams {
    int32_t base;
    int32_t step;
};

bool endsWith(std::string_view s, std::string_view suffix)
{
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

KindParams kindParams(std::string_view name)
{
    if (endsWith(name, "_norm.weight")) {
        return {1000000, 100};
    }
    if (endsWith(name, ".bias")) {
        return {0, 50};
    }
    if (name == "token_embd.weight" || name == "position_embd.weight") {
        return {0, 500};
    }
    return {0, 250};
}

float formulaValue(uint32_t seed, KindParams kind, uint32_t index)
{
    // uint32 wrap-around is the mod 2^32 the formula asks for.
    uint32_t x = seed * 2654435761u + index * 40503u + 12345u;
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    const int32_t v = static_cast<int32_t>((x >> 8) % 2001u) - 1000;
    const int32_t n = kind.base + v * kind.step;
    // n is exact in float; one float division keeps Python (numpy float32) and C++ bit-identical.
    return static_cast<float>(n) / 1000000.0f;
}

void appendUtf8(std::string &out, uint32_t cp)
{
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

// One tensor: name, ne in GGUF order (ne[0] fastest) and the stored type.
struct TensorSpec {
    std::string name;
    std::vector<int64_t> ne;
    GgmlType type = GgmlType::F32;
};

// `qkScale` multiplies the attention query and key projections (1: the formula weights as they are).
void addTensors(GgufWriter &w, const std::vector<TensorSpec> &specs, float qkScale = 1.0f)
{
    for (const TensorSpec &t : specs) {
        size_t count = 1;
        for (int64_t n : t.ne) {
            count *= static_cast<size_t>(n);
        }
        std::vector<float> values = tinyWeightValues(t.name, count);
        const bool qk = t.name.ends_with("attn_q.weight") || t.name.ends_with("attn_k.weight");
        if (qk && qkScale != 1.0f) {
            for (float &v : values) {
                v *= qkScale;
            }
        }
        w.addTensorF32(t.name, t.ne, values, t.type);
    }
}

void addVocab(GgufWriter &w)
{
    w.addString("tokenizer.ggml.model", "gpt2");
    w.addString("tokenizer.ggml.pre", "gpt2");
    w.addStringArray("tokenizer.ggml.tokens", tinyVocabTokens());
    w.addInt32Array("tokenizer.ggml.token_type", tinyVocabTokenTypes());
    w.addStringArray("tokenizer.ggml.merges", tinyMerges());
    w.addUint32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(tiny::kEndOfText));
    w.addUint32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(tiny::kEndOfText));
}

// Metadata and tensors in exactly the order tools/make_tiny_models.py writes them.
GgufWriter buildGpt2()
{
    using namespace tiny;
    GgufWriter w;
    w.addString("general.architecture", "gpt2");
    w.addString("general.name", "tiny-gpt2");
    w.addUint32("gpt2.context_length", static_cast<uint32_t>(kContext));
    w.addUint32("gpt2.embedding_length", static_cast<uint32_t>(kEmbd));
    w.addUint32("gpt2.feed_forward_length", static_cast<uint32_t>(kGpt2Ffn));
    w.addUint32("gpt2.block_count", static_cast<uint32_t>(kLayers));
    w.addUint32("gpt2.attention.head_count", static_cast<uint32_t>(kHeads));
    w.addFloat32("gpt2.attention.layer_norm_epsilon", kNormEps);
    addVocab(w);

    std::vector<TensorSpec> t = {
        {"token_embd.weight", {kEmbd, kVocab}, GgmlType::F32},
        {"position_embd.weight", {kEmbd, kContext}, GgmlType::F16},
    };
    for (int64_t b = 0; b < kLayers; ++b) {
        const std::string p = "blk." + std::to_string(b) + ".";
        t.push_back({p + "attn_norm.weight", {kEmbd}});
        t.push_back({p + "attn_norm.bias", {kEmbd}});
        t.push_back({p + "attn_qkv.weight", {kEmbd, 3 * kEmbd}});
        t.push_back({p + "attn_qkv.bias", {3 * kEmbd}});
        t.push_back({p + "attn_output.weight", {kEmbd, kEmbd}});
        t.push_back({p + "attn_output.bias", {kEmbd}});
        t.push_back({p + "ffn_norm.weight", {kEmbd}});
        t.push_back({p + "ffn_norm.bias", {kEmbd}});
        t.push_back({p + "ffn_up.weight", {kEmbd, kGpt2Ffn}});
        t.push_back({p + "ffn_up.bias", {kGpt2Ffn}});
        t.push_back({p + "ffn_down.weight", {kGpt2Ffn, kEmbd}});
        t.push_back({p + "ffn_down.bias", {kEmbd}});
    }
    t.push_back({"output_norm.weight", {kEmbd}});
    t.push_back({"output_norm.bias", {kEmbd}});
    addTensors(w, t);
    return w;
}

GgufWriter buildLlama(const std::string &name = "tiny-llama", float qkScale = 1.0f)
{
    using namespace tiny;
    const int64_t qDim = kHeads * kLlamaHeadDim;
    const int64_t kvDim = kLlamaKvHeads * kLlamaHeadDim;
    GgufWriter w;
    w.addString("general.architecture", "llama");
    w.addString("general.name", name);
    w.addUint32("llama.vocab_size", static_cast<uint32_t>(kVocab));
    w.addUint32("llama.context_length", static_cast<uint32_t>(kContext));
    w.addUint32("llama.embedding_length", static_cast<uint32_t>(kEmbd));
    w.addUint32("llama.feed_forward_length", static_cast<uint32_t>(kLlamaFfn));
    w.addUint32("llama.block_count", static_cast<uint32_t>(kLayers));
    w.addUint32("llama.attention.head_count", static_cast<uint32_t>(kHeads));
    w.addUint32("llama.attention.head_count_kv", static_cast<uint32_t>(kLlamaKvHeads));
    w.addUint32("llama.rope.dimension_count", static_cast<uint32_t>(kLlamaHeadDim));
    w.addFloat32("llama.rope.freq_base", kLlamaRopeBase);
    w.addFloat32("llama.attention.layer_norm_rms_epsilon", kNormEps);
    addVocab(w);

    std::vector<TensorSpec> t = {{"token_embd.weight", {kEmbd, kVocab}, GgmlType::F16}};
    for (int64_t b = 0; b < kLayers; ++b) {
        const std::string p = "blk." + std::to_string(b) + ".";
        t.push_back({p + "attn_norm.weight", {kEmbd}});
        t.push_back({p + "attn_q.weight", {kEmbd, qDim}});
        t.push_back({p + "attn_k.weight", {kEmbd, kvDim}});
        t.push_back({p + "attn_v.weight", {kEmbd, kvDim}});
        t.push_back({p + "attn_output.weight", {qDim, kEmbd}});
        t.push_back({p + "ffn_norm.weight", {kEmbd}});
        t.push_back({p + "ffn_gate.weight", {kEmbd, kLlamaFfn}});
        t.push_back({p + "ffn_up.weight", {kEmbd, kLlamaFfn}});
        t.push_back({p + "ffn_down.weight", {kLlamaFfn, kEmbd}});
    }
    t.push_back({"output_norm.weight", {kEmbd}});
    t.push_back({"output.weight", {kEmbd, kVocab}});
    addTensors(w, t, qkScale);
    return w;
}

} // namespace

uint32_t tinyNameHash(std::string_view name)
{
    uint32_t h = 2166136261u;
    for (char c : name) {
        h ^= static_cast<uint8_t>(c);
        h *= 16777619u;
    }
    return h;
}

float tinyWeightValue(std::string_view name, uint32_t index)
{
    return formulaValue(tinyNameHash(name), kindParams(name), index);
}

std::vector<float> tinyWeightValues(std::string_view name, size_t count)
{
    const uint32_t seed = tinyNameHash(name);
    const KindParams kind = kindParams(name);
    std::vector<float> out(count);
    for (size_t i = 0; i < count; ++i) {
        out[i] = formulaValue(seed, kind, static_cast<uint32_t>(i));
    }
    return out;
}

std::vector<std::string> tinyVocabTokens()
{
    // GPT-2 bytes_to_unicode() in encoder.json order: printable Latin-1 bytes map to themselves and
    // come first; the other bytes follow in byte order as U+0100 + n.
    std::vector<uint32_t> codepoints;
    std::array<bool, 256> printable{};
    for (uint32_t b = 0; b < 256; ++b) {
        printable[b] = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        if (printable[b]) {
            codepoints.push_back(b);
        }
    }
    uint32_t n = 0;
    for (uint32_t b = 0; b < 256; ++b) {
        if (!printable[b]) {
            codepoints.push_back(256 + n++);
        }
    }
    std::vector<std::string> tokens;
    tokens.reserve(static_cast<size_t>(tiny::kVocab));
    for (uint32_t cp : codepoints) {
        std::string s;
        appendUtf8(s, cp);
        tokens.push_back(std::move(s));
    }
    for (const std::string &m : tinyMerges()) {
        const size_t space = m.find(' ');
        tokens.push_back(m.substr(0, space) + m.substr(space + 1));
    }
    tokens.emplace_back("<|endoftext|>");
    return tokens;
}

std::vector<int32_t> tinyVocabTokenTypes()
{
    std::vector<int32_t> types(static_cast<size_t>(tiny::kVocab), 1);
    types.back() = 3;
    return types;
}

std::vector<std::string> tinyMerges()
{
    // "Ġ" is U+0120, GPT-2's stand-in for the space byte.
    return {
        "Ġ t",   "Ġ a",  "h e",  "i n", "r e", "o n",  "Ġt he", "e r", "Ġ s",  "a t", "e n",
        "o r",   "Ġ w",  "Ġ o",  "e s", "i s", "Ġ c",  "a n",   "i t", "Ġ b",  "Ġ f", "Ġ p",
        "Ġ m",   "Ġo f", "in g", "Ġ i", "a r", "Ġ d",  "l e",   "o u", "Ġ h",  "e d", "Ġa n",
        "Ġan d", "s t",  "Ġt o", "Ġ l", "a l", "Ġ in", "Ġ e",   "r o", "Ġ is", "l l", "T he",
    };
}

std::vector<uint8_t> tinyGpt2GgufBytes()
{
    return buildGpt2().bytes();
}

std::vector<uint8_t> tinyLlamaGgufBytes()
{
    return buildLlama().bytes();
}

void writeTinyGpt2Gguf(const std::string &path)
{
    buildGpt2().write(path);
}

void writeTinyLlamaGguf(const std::string &path)
{
    buildLlama().write(path);
}

GgufWriter tinyLlamaGgufWriter()
{
    return buildLlama();
}

void writeTinyLlamaCheckpointGguf(const std::string &path, int step)
{
    // Attention sharpens as "training" goes on: q and k grow with the step (1x at step 0, 4x at 3000).
    const float scale = 1.0f + static_cast<float>(step) / 1000.0f;
    buildLlama("tiny-llama-step" + std::to_string(step), scale).write(path);
}

} // namespace sinkscope::testing
