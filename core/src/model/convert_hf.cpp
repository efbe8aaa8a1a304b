// Hugging Face model folders -> SinkScope model archives: config.json, safetensors weights (one file or
// shards), tokenizer.json. The names and layouts are transformers' (MODELS.md sections 2 and 4).
#include "model/convert_internal.h"
#include "sinkscope/format/gguf.h"
#include "sinkscope/format/safetensors.h"
#include "sinkscope/model/convert.h"
#include "torch_util.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace sinkscope {
namespace {

using namespace detail;
namespace fs = std::filesystem;

constexpr const char *kBlocks = "_blocks";
constexpr const char *kScales = "_scales";

bool endsWith(const std::string &s, const std::string &suffix)
{
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The tensors of a safetensors model. gpt-oss checkpoints store their experts as MXFP4 pairs
// `<name>_blocks` [E, N, K/32, 16] + `<name>_scales` [E, N, K/32]; they appear here as one tensor `<name>`
// of transformers' dequantized layout [E, K, N].
class HfWeights final : public WeightFile
{
public:
    explicit HfWeights(std::shared_ptr<const SafetensorsModel> st) : m_st(std::move(st))
    {
        for (const auto &t : m_st->tensors()) {
            if (endsWith(t.name, kBlocks)) {
                const std::string base = t.name.substr(0, t.name.size() - std::strlen(kBlocks));
                if (m_st->find(base + kScales)) {
                    m_mxfp4.insert(base);
                    m_names.push_back(base);
                    continue;
                }
            }
            if (endsWith(t.name, kScales) && m_mxfp4.count(t.name.substr(0, t.name.size() - std::strlen(kScales)))) {
                continue;
            }
            m_names.push_back(t.name);
        }
    }

    const std::string &path() const override { return m_st->path(); }
    std::vector<std::string> names() const override { return m_names; }
    bool has(const std::string &name) const override { return m_mxfp4.count(name) || m_st->find(name); }

    std::vector<int64_t> shape(const std::string &name) const override
    {
        if (m_mxfp4.count(name)) {
            const auto &b = m_st->find(name + kBlocks)->shape;
            if (b.size() != 4 || b[3] != 16) {
                return b;
            }
            return {b[0], b[2] * 32, b[1]};
        }
        const SafetensorsTensor *t = m_st->find(name);
        return t ? t->shape : std::vector<int64_t>{};
    }

    Result<at::Tensor> readF32(const std::string &name) override
    {
        if (m_mxfp4.count(name)) {
            return readMxfp4(name);
        }
        const SafetensorsTensor *info = m_st->find(name);
        auto data = m_st->readF32(*info);
        if (!data) {
            return data.error();
        }
        auto t = torch::empty(info->shape, torch::kFloat);
        std::memcpy(t.data_ptr<float>(), data->data(), data->size() * sizeof(float));
        return t;
    }

private:
    Result<at::Tensor> readMxfp4(const std::string &name)
    {
        const SafetensorsTensor *blocks = m_st->find(name + kBlocks);
        const SafetensorsTensor *scales = m_st->find(name + kScales);
        const auto &b = blocks->shape;
        if (b.size() != 4 || b[3] != 16 || blocks->dtype != "U8" || scales->dtype != "U8" ||
            scales->shape != std::vector<int64_t>{b[0], b[1], b[2]}) {
            return makeError(ErrorCode::Corrupt, blocks->file + ": MXFP4 tensor '" + name + "': blocks " +
                                                     shapeText(b) + " " + blocks->dtype + " and scales " +
                                                     shapeText(scales->shape) + " " + scales->dtype +
                                                     " do not form [E, N, K/32, 16] + [E, N, K/32] bytes");
        }
        auto bytes = m_st->readBytes(*blocks);
        if (!bytes) {
            return bytes.error();
        }
        auto scaleBytes = m_st->readBytes(*scales);
        if (!scaleBytes) {
            return scaleBytes.error();
        }
        auto t = torch::empty({b[0], b[1], b[2] * 32}, torch::kFloat);
        dequantMxfp4Hf(bytes->data(), scaleBytes->data(), b[0] * b[1], b[2], t.data_ptr<float>());
        return t.transpose(1, 2).contiguous(); // [E, K, N], as transformers' convert_moe_packed_tensors
    }

    std::shared_ptr<const SafetensorsModel> m_st;
    std::vector<std::string> m_names;
    std::set<std::string> m_mxfp4;
};

class HfWeightMap final : public WeightMap
{
public:
    HfWeightMap(const ModelConfig &c, TensorLoader &in) : m_c(c), m_in(in)
    {
        if (c.architecture == Architecture::GptNeox) {
            m_layers = "gpt_neox.layers.";
        } else {
            for (const char *prefix : {"model.", "model.language_model.", "language_model.model."}) {
                if (in.has(std::string(prefix) + "embed_tokens.weight")) {
                    m_model = prefix;
                    break;
                }
            }
            m_layers = m_model + "layers.";
        }
    }

    TensorLoader &loader() override { return m_in; }

    bool hasGlobal(const std::string &what) const override { return m_in.has(globalName(what)); }

    Result<at::Tensor> get(const std::string &what, int64_t layer, const std::vector<int64_t> &shape) override
    {
        const bool gemma = m_c.architecture == Architecture::Gemma3;
        if (layer < 0) {
            SINKSCOPE_TRY_ASSIGN(t, m_in.read(globalName(what), shape));
            return gemma && what == "out_norm" ? t + 1.0 : t; // Gemma stores w of x̂·(1 + w)
        }
        const std::string p = m_layers + std::to_string(layer) + ".";
        const int64_t H = m_c.heads, KV = m_c.kvHeads, d = m_c.headDim, D = m_c.embedding, F = m_c.feedForward;
        switch (m_c.architecture) {
        case Architecture::GptNeox:
            return neox(p, what, shape);
        case Architecture::GptOss:
            if (what.rfind("w_", 0) == 0 || what.rfind("b_", 0) == 0) {
                return experts(p, what, shape);
            }
            break;
        case Architecture::Phi3:
            if (what == "wq" || what == "wk" || what == "wv") {
                SINKSCOPE_TRY_ASSIGN(qkv, m_in.read(p + "self_attn.qkv_proj.weight", {(H + 2 * KV) * d, D}));
                return what == "wq" ? rowsOf(qkv, 0, H * d) : rowsOf(qkv, (what == "wk" ? H : H + KV) * d, KV * d);
            }
            if (what == "w_gate" || what == "w_up") {
                SINKSCOPE_TRY_ASSIGN(gu, m_in.read(p + "mlp.gate_up_proj.weight", {2 * F, D}));
                return rowsOf(gu, what == "w_gate" ? 0 : F, F);
            }
            break;
        default:
            break;
        }
        SINKSCOPE_TRY_ASSIGN(t, m_in.read(p + layerName(what), shape));
        const bool norm = what.find("norm") != std::string::npos;
        return gemma && norm ? t + 1.0 : t;
    }

private:
    std::string globalName(const std::string &what) const
    {
        if (m_c.architecture == Architecture::GptNeox) {
            static const std::map<std::string, std::string> neoxNames = {
                {"tok_embd", "gpt_neox.embed_in.weight"},
                {"out_norm", "gpt_neox.final_layer_norm.weight"},
                {"out_norm_b", "gpt_neox.final_layer_norm.bias"},
                {"lm_head", "embed_out.weight"},
            };
            auto it = neoxNames.find(what);
            return it != neoxNames.end() ? it->second : what;
        }
        if (what == "tok_embd") {
            return m_model + "embed_tokens.weight";
        }
        if (what == "out_norm") {
            return m_model + "norm.weight";
        }
        if (what == "lm_head") {
            return "lm_head.weight";
        }
        return what;
    }

    std::string layerName(const std::string &what) const
    {
        const Architecture a = m_c.architecture;
        // Gemma 3 and OLMo 2 call their norm after attention post_attention_layernorm; Llama-style
        // families use that name for the norm before the MLP.
        if (what == "ffn_norm") {
            return a == Architecture::Gemma3 ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight";
        }
        static const std::map<std::string, std::string> names = {
            {"attn_norm", "input_layernorm.weight"},
            {"wq", "self_attn.q_proj.weight"},
            {"wk", "self_attn.k_proj.weight"},
            {"wv", "self_attn.v_proj.weight"},
            {"bq", "self_attn.q_proj.bias"},
            {"bk", "self_attn.k_proj.bias"},
            {"bv", "self_attn.v_proj.bias"},
            {"wo", "self_attn.o_proj.weight"},
            {"bo", "self_attn.o_proj.bias"},
            {"q_norm", "self_attn.q_norm.weight"},
            {"k_norm", "self_attn.k_norm.weight"},
            {"post_attn_norm", "post_attention_layernorm.weight"},
            {"post_ffn_norm", "post_feedforward_layernorm.weight"},
            {"sinks", "self_attn.sinks"},
            {"router_w", "mlp.router.weight"},
            {"router_b", "mlp.router.bias"},
            {"w_gate", "mlp.gate_proj.weight"},
            {"w_up", "mlp.up_proj.weight"},
            {"w_down", "mlp.down_proj.weight"},
            {"b_gate", "mlp.gate_proj.bias"},
            {"b_up", "mlp.up_proj.bias"},
            {"b_down", "mlp.down_proj.bias"},
        };
        auto it = names.find(what);
        return it != names.end() ? it->second : what;
    }

    // GPT-NeoX: query_key_value rows are per head [q | k | v] (MODELS.md, gpt_neox).
    Result<at::Tensor> neox(const std::string &p, const std::string &what, const std::vector<int64_t> &shape)
    {
        const int64_t H = m_c.heads, d = m_c.headDim, D = m_c.embedding;
        if (what == "wq" || what == "wk" || what == "wv" || what == "bq" || what == "bk" || what == "bv") {
            const bool bias = what[0] == 'b';
            const int64_t part = what[1] == 'q' ? 0 : what[1] == 'k' ? 1 : 2;
            const std::string name = p + "attention.query_key_value." + (bias ? "bias" : "weight");
            SINKSCOPE_TRY_ASSIGN(
                qkv, m_in.read(name, bias ? std::vector<int64_t>{3 * H * d} : std::vector<int64_t>{3 * H * d, D}));
            auto perHead = bias ? qkv.view({H, 3, d}) : qkv.view({H, 3, d, D});
            return perHead.select(1, part).reshape(shape).contiguous();
        }
        static const std::map<std::string, std::string> names = {
            {"attn_norm", "input_layernorm.weight"},
            {"attn_norm_b", "input_layernorm.bias"},
            {"ffn_norm", "post_attention_layernorm.weight"},
            {"ffn_norm_b", "post_attention_layernorm.bias"},
            {"wo", "attention.dense.weight"},
            {"bo", "attention.dense.bias"},
            {"w_up", "mlp.dense_h_to_4h.weight"},
            {"b_up", "mlp.dense_h_to_4h.bias"},
            {"w_down", "mlp.dense_4h_to_h.weight"},
            {"b_down", "mlp.dense_4h_to_h.bias"},
        };
        auto it = names.find(what);
        return m_in.read(p + (it != names.end() ? it->second : what), shape);
    }

    // gpt-oss experts: gate_up_proj [E, D, 2F] with gate and up interleaved (::2 gate, 1::2 up) and
    // down_proj [E, F, D], both applied as x @ W; the decoder uses torch.linear layouts [E, out, in].
    Result<at::Tensor> experts(const std::string &p, const std::string &what, const std::vector<int64_t> &shape)
    {
        const int64_t E = m_c.experts, D = m_c.embedding, F = m_c.feedForward;
        const std::string e = p + "mlp.experts.";
        if (what == "w_gate" || what == "w_up") {
            SINKSCOPE_TRY_ASSIGN(gu, m_in.read(e + "gate_up_proj", {E, D, 2 * F}));
            return gu.narrow(2, 0, 2 * F).slice(2, what == "w_gate" ? 0 : 1, 2 * F, 2).transpose(1, 2).contiguous();
        }
        if (what == "b_gate" || what == "b_up") {
            SINKSCOPE_TRY_ASSIGN(gu, m_in.read(e + "gate_up_proj_bias", {E, 2 * F}));
            return gu.slice(1, what == "b_gate" ? 0 : 1, 2 * F, 2).contiguous();
        }
        if (what == "w_down") {
            SINKSCOPE_TRY_ASSIGN(down, m_in.read(e + "down_proj", {E, F, D}));
            return down.transpose(1, 2).contiguous();
        }
        return m_in.read(e + "down_proj_bias", shape);
    }

    const ModelConfig &m_c;
    TensorLoader &m_in;
    std::string m_model = "model.";
    std::string m_layers;
};

Result<std::string> readText(const fs::path &path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return makeError(ErrorCode::Io, path.string() + ": cannot open");
    }
    // config.json files are a few kilobytes; a huge one is not a config.
    std::error_code ec;
    const auto size = fs::file_size(path, ec);
    if (ec || size > (16u << 20)) {
        return makeError(ErrorCode::Corrupt, path.string() + ": not a config file (" +
                                                 (ec ? ec.message() : std::to_string(size) + " bytes") + ")");
    }
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

} // namespace

Status convertHfFolder(const std::string &input, const std::string &outPath, const ConvertOptions &options)
{
    std::error_code ec;
    const fs::path folder = fs::is_directory(input, ec) ? fs::path(input) : fs::path(input).parent_path();
    const fs::path configPath = folder / "config.json";
    if (!fs::exists(configPath, ec)) {
        return makeError(ErrorCode::Io, folder.string() + ": no config.json (not a Hugging Face model folder)");
    }
    auto text = readText(configPath);
    if (!text) {
        return text.error();
    }
    auto config = ModelConfig::fromHfConfig(*text, configPath.string());
    if (!config) {
        return config.error();
    }
    const fs::path tokenizerPath = folder / "tokenizer.json";
    if (!fs::exists(tokenizerPath, ec)) {
        return makeError(ErrorCode::Io, folder.string() + ": no tokenizer.json (SinkScope reads the fast tokenizer "
                                                          "file that transformers saves)");
    }
    auto tokData =
        Tokenizer::dataFromTokenizerJson(tokenizerPath.string(), (folder / "tokenizer_config.json").string());
    if (!tokData) {
        return tokData.error();
    }
    auto tokenizer = Tokenizer::create(std::move(tokData).value());
    if (!tokenizer) {
        return makeError(tokenizer.error().code, tokenizerPath.string() + ": " + tokenizer.error().message);
    }
    if (Status ok = checkVocabulary(**tokenizer, *config, configPath.string()); !ok) {
        return ok;
    }
    auto st = SafetensorsModel::open(folder.string());
    if (!st) {
        return st.error();
    }
    ModelConfig &c = *config;
    std::map<std::string, int> dtypes;
    for (const auto &t : (*st)->tensors()) {
        c.parameterCount += t.numel();
        dtypes[t.dtype]++;
    }
    c.sourceQuantization = ModelConfig::tensorTypesText(dtypes);
    return guardTorch(folder.string(), [&]() -> Status {
        HfWeights weights(*st);
        TensorLoader loader(weights, options.progress);
        // Buffers that transformers derives from the config and some checkpoints also store.
        for (const auto &name : weights.names()) {
            if (endsWith(name, ".rotary_emb.inv_freq") || endsWith(name, ".attention.bias") ||
                endsWith(name, ".attention.masked_bias")) {
                loader.skip(name);
            }
        }
        // A tied checkpoint may still carry lm_head.weight; transformers ties it to the embedding.
        if (c.tiedOutput && weights.has("lm_head.weight")) {
            loader.skip("lm_head.weight");
        }
        HfWeightMap map(c, loader);
        return writeArchive(
            c, **tokenizer, loader, [&](Builder &b) { return buildDecoder(c, map, b); }, outPath);
    });
}

} // namespace sinkscope
