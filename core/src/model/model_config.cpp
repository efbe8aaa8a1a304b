#include "sinkscope/model/model_config.h"

#include "sinkscope/format/gguf.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

namespace sinkscope {

namespace {

struct ArchitectureName {
    Architecture arch;
    const char *name;
};

// The names are Hugging Face's model_type, which SinkScope archives also record.
constexpr ArchitectureName kArchitectureNames[] = {
    {Architecture::Llama, "llama"},    {Architecture::Gpt2, "gpt2"},   {Architecture::Mistral, "mistral"},
    {Architecture::Qwen2, "qwen2"},    {Architecture::Qwen3, "qwen3"}, {Architecture::Gemma3, "gemma3"},
    {Architecture::GptOss, "gpt_oss"}, {Architecture::Phi3, "phi3"},   {Architecture::GptNeox, "gpt_neox"},
    {Architecture::Olmo2, "olmo2"},
};

const char *enumName(NormKind k)
{
    return k == NormKind::Rms ? "rms" : "layer";
}
const char *enumName(NormPlacement p)
{
    return p == NormPlacement::Pre ? "pre" : p == NormPlacement::Sandwich ? "sandwich" : "post";
}
const char *enumName(QkNorm q)
{
    return q == QkNorm::None ? "none" : q == QkNorm::PerHead ? "per_head" : "full";
}
const char *enumName(Activation a)
{
    return a == Activation::Silu ? "silu" : a == Activation::GeluTanh ? "gelu_tanh" : "gelu";
}
const char *enumName(MlpKind m)
{
    return m == MlpKind::Gated ? "gated" : m == MlpKind::Plain ? "plain" : "experts";
}

template <typename E> std::optional<E> enumFromName(const std::string &name, std::initializer_list<E> values)
{
    for (E v : values) {
        if (name == enumName(v)) {
            return v;
        }
    }
    return std::nullopt;
}

} // namespace

const char *architectureName(Architecture arch)
{
    for (const auto &a : kArchitectureNames) {
        if (a.arch == arch) {
            return a.name;
        }
    }
    return "unknown";
}

std::optional<Architecture> architectureFromName(const std::string &name)
{
    for (const auto &a : kArchitectureNames) {
        if (name == a.name) {
            return a.arch;
        }
    }
    return std::nullopt;
}

const std::vector<Architecture> &allArchitectures()
{
    static const std::vector<Architecture> all = [] {
        std::vector<Architecture> v;
        for (const auto &a : kArchitectureNames) {
            v.push_back(a.arch);
        }
        return v;
    }();
    return all;
}

int64_t ModelConfig::windowOf(int64_t layer) const
{
    return layer >= 0 && layer < static_cast<int64_t>(layerWindows.size()) ? layerWindows[static_cast<size_t>(layer)]
                                                                           : 0;
}

bool ModelConfig::hasSlidingLayers() const
{
    return std::any_of(layerWindows.begin(), layerWindows.end(), [](int64_t w) { return w > 0; });
}

std::string ModelConfig::attentionLayout() const
{
    std::map<int64_t, int64_t> windows; // window -> layers
    int64_t global = 0;
    for (int64_t l = 0; l < layers; ++l) {
        const int64_t w = windowOf(l);
        if (w > 0) {
            windows[w]++;
        } else {
            ++global;
        }
    }
    std::string text = std::to_string(layers) + " layers";
    if (windows.empty()) {
        return text + ", all global";
    }
    text += ":";
    bool first = true;
    for (const auto &[w, n] : windows) {
        text += std::string(first ? " " : ", ") + std::to_string(n) + " sliding (" + std::to_string(w) + ")";
        first = false;
    }
    return text + ", " + std::to_string(global) + " global";
}

namespace {

nlohmann::ordered_json ropeScalingJson(const RopeScaling &r)
{
    nlohmann::ordered_json j;
    j["type"] = r.type;
    j["factor"] = r.factor;
    j["low_freq_factor"] = r.lowFreqFactor;
    j["high_freq_factor"] = r.highFreqFactor;
    j["original_context"] = r.originalContext;
    j["beta_fast"] = r.betaFast;
    j["beta_slow"] = r.betaSlow;
    j["attention_factor"] = r.attentionFactor;
    j["truncate"] = r.truncate;
    j["long_factor"] = r.longFactor;
    j["short_factor"] = r.shortFactor;
    j["from_tensor"] = r.fromTensor;
    return j;
}

RopeScaling ropeScalingFromJson(const nlohmann::json &j)
{
    RopeScaling r;
    r.type = j.value("type", r.type);
    r.factor = j.value("factor", r.factor);
    r.lowFreqFactor = j.value("low_freq_factor", r.lowFreqFactor);
    r.highFreqFactor = j.value("high_freq_factor", r.highFreqFactor);
    r.originalContext = j.value("original_context", r.originalContext);
    r.betaFast = j.value("beta_fast", r.betaFast);
    r.betaSlow = j.value("beta_slow", r.betaSlow);
    r.attentionFactor = j.value("attention_factor", r.attentionFactor);
    r.truncate = j.value("truncate", r.truncate);
    r.longFactor = j.value("long_factor", r.longFactor);
    r.shortFactor = j.value("short_factor", r.shortFactor);
    r.fromTensor = j.value("from_tensor", r.fromTensor);
    return r;
}

// Checks shared by every source of a config; `origin` names the file.
Status validate(const ModelConfig &c, const std::string &origin)
{
    if (c.layers <= 0 || c.heads <= 0 || c.kvHeads <= 0 || c.embedding <= 0 || c.headDim <= 0 || c.vocabSize <= 0 ||
        c.contextLength <= 0 || c.feedForward < 0 || c.heads % c.kvHeads != 0) {
        return makeError(ErrorCode::Corrupt,
                         origin + ": inconsistent sizes (layers " + std::to_string(c.layers) + ", heads " +
                             std::to_string(c.heads) + ", kv heads " + std::to_string(c.kvHeads) + ", embedding " +
                             std::to_string(c.embedding) + ", head dim " + std::to_string(c.headDim) + ", vocabulary " +
                             std::to_string(c.vocabSize) + ", context " + std::to_string(c.contextLength) +
                             "; all must be positive and heads a multiple of kv heads)");
    }
    // Bounds that keep a garbage file from asking for absurd allocations before any tensor is read.
    constexpr int64_t kMaxDim = int64_t{1} << 20, kMaxLayers = 4096, kMaxVocab = int64_t{1} << 24;
    if (c.layers > kMaxLayers || c.heads > kMaxDim || c.embedding > kMaxDim || c.headDim > kMaxDim ||
        c.feedForward > kMaxDim || c.vocabSize > kMaxVocab || c.experts > 4096 || c.expertsPerToken > c.experts) {
        return makeError(ErrorCode::Corrupt, origin + ": impossible sizes (layers " + std::to_string(c.layers) +
                                                 ", embedding " + std::to_string(c.embedding) + ", vocabulary " +
                                                 std::to_string(c.vocabSize) + ", experts " +
                                                 std::to_string(c.experts) + ")");
    }
    if (c.architecture != Architecture::Gpt2 && (c.ropeDim <= 0 || c.ropeDim > c.headDim || c.ropeDim % 2 != 0)) {
        return makeError(ErrorCode::Corrupt, origin + ": rotary dimensions " + std::to_string(c.ropeDim) +
                                                 " do not fit head dimension " + std::to_string(c.headDim));
    }
    if (!c.layerWindows.empty() && static_cast<int64_t>(c.layerWindows.size()) != c.layers) {
        return makeError(ErrorCode::Corrupt, origin + ": " + std::to_string(c.layerWindows.size()) +
                                                 " layer windows for " + std::to_string(c.layers) + " layers");
    }
    for (int64_t w : c.layerWindows) {
        if (w < 0) {
            return makeError(ErrorCode::Corrupt, origin + ": negative sliding window " + std::to_string(w));
        }
    }
    if (c.mlpKind == MlpKind::Experts && (c.experts <= 0 || c.expertsPerToken <= 0)) {
        return makeError(ErrorCode::Corrupt, origin + ": a mixture-of-experts model needs experts and top-k > 0");
    }
    const auto &r = c.ropeScaling.type;
    if (r != "none" && r != "linear" && r != "llama3" && r != "yarn" && r != "longrope") {
        return makeError(ErrorCode::Unsupported,
                         origin + ": RoPE scaling '" + r + "' is not supported (none, linear, llama3, yarn, longrope)");
    }
    if ((r == "linear" || r == "llama3" || r == "yarn") && !(c.ropeScaling.factor > 0)) {
        return makeError(ErrorCode::Corrupt, origin + ": RoPE scaling '" + r + "' needs a positive factor");
    }
    if ((r == "llama3" || r == "yarn" || r == "longrope") && c.ropeScaling.originalContext <= 0 &&
        !c.ropeScaling.fromTensor) {
        return makeError(ErrorCode::Corrupt,
                         origin + ": RoPE scaling '" + r + "' needs original_max_position_embeddings");
    }
    if (r == "longrope" && !c.ropeScaling.fromTensor) {
        const size_t half = static_cast<size_t>(c.ropeDim / 2);
        if (c.ropeScaling.longFactor.size() != half || c.ropeScaling.shortFactor.size() != half) {
            return makeError(ErrorCode::Corrupt, origin + ": longrope needs " + std::to_string(half) +
                                                     " long and short factors, found " +
                                                     std::to_string(c.ropeScaling.longFactor.size()) + " and " +
                                                     std::to_string(c.ropeScaling.shortFactor.size()));
        }
    }
    return Ok{};
}

} // namespace

namespace {

// The decoder settings each family fixes (MODELS.md section 2); sizes and options come from the file.
void applyFamilyDefaults(ModelConfig &c)
{
    switch (c.architecture) {
    case Architecture::Gpt2:
        c.normKind = NormKind::Layer;
        c.activation = Activation::GeluTanh;
        c.qkvBias = c.outputBias = c.mlpBias = true;
        break;
    case Architecture::Llama:
    case Architecture::Mistral:
        break;
    case Architecture::Qwen2:
        c.qkvBias = true;
        break;
    case Architecture::Qwen3:
        c.qkNorm = QkNorm::PerHead;
        break;
    case Architecture::Gemma3:
        c.normPlacement = NormPlacement::Sandwich;
        c.qkNorm = QkNorm::PerHead;
        c.activation = Activation::GeluTanh;
        c.embedScale = std::sqrt(static_cast<double>(c.embedding));
        break;
    case Architecture::GptOss:
        c.qkvBias = c.outputBias = c.mlpBias = true;
        c.learnedSinks = true;
        c.mlpKind = MlpKind::Experts;
        break;
    case Architecture::Phi3:
        break;
    case Architecture::GptNeox:
        c.normKind = NormKind::Layer;
        c.activation = Activation::Gelu;
        c.mlpKind = MlpKind::Plain;
        c.qkvBias = c.outputBias = c.mlpBias = true;
        c.parallelResidual = true;
        break;
    case Architecture::Olmo2:
        c.normPlacement = NormPlacement::Post;
        c.qkNorm = QkNorm::Full;
        break;
    }
}

} // namespace

std::string ModelConfig::tensorTypesText(const std::map<std::string, int> &counts)
{
    std::string text;
    for (const auto &[type, n] : counts) {
        text += (text.empty() ? "" : ", ") + type + " x" + std::to_string(n);
    }
    return text;
}

std::string ModelConfig::toJson() const
{
    nlohmann::ordered_json j;
    j["architecture"] = architectureName(architecture);
    j["name"] = name;
    j["layers"] = layers;
    j["heads"] = heads;
    j["kv_heads"] = kvHeads;
    j["embedding"] = embedding;
    j["head_dim"] = headDim;
    j["feed_forward"] = feedForward;
    j["vocab_size"] = vocabSize;
    j["context_length"] = contextLength;
    j["norm_eps"] = normEps;
    j["rope_theta"] = ropeTheta;
    j["rope_dim"] = ropeDim;
    j["rope_scale"] = ropeScale;
    j["tied_output"] = tiedOutput;
    j["rope_scaling"] = ropeScalingJson(ropeScaling);
    j["rope_local_theta"] = ropeLocalTheta;
    j["layer_windows"] = layerWindows;
    j["attn_scale"] = attnScale;
    j["norm_kind"] = enumName(normKind);
    j["norm_placement"] = enumName(normPlacement);
    j["qk_norm"] = enumName(qkNorm);
    j["activation"] = enumName(activation);
    j["mlp_kind"] = enumName(mlpKind);
    j["qkv_bias"] = qkvBias;
    j["output_bias"] = outputBias;
    j["mlp_bias"] = mlpBias;
    j["parallel_residual"] = parallelResidual;
    j["embed_scale"] = embedScale;
    j["final_logit_softcap"] = finalLogitSoftcap;
    j["learned_sinks"] = learnedSinks;
    j["sink_logits"] = sinkLogits;
    j["experts"] = experts;
    j["experts_per_token"] = expertsPerToken;
    j["swiglu_alpha"] = swigluAlpha;
    j["swiglu_limit"] = swigluLimit;
    j["parameter_count"] = parameterCount;
    j["contract_version"] = contractVersion;
    j["source_file"] = sourceFile;
    j["source_quantization"] = sourceQuantization;
    return j.dump(2);
}

Result<ModelConfig> ModelConfig::fromJson(const std::string &text, const std::string &origin)
{
    nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        return makeError(ErrorCode::Corrupt, origin + ": not a valid JSON object");
    }
    ModelConfig c;
    std::string missing;
    auto need = [&](const char *key) -> const nlohmann::json * {
        auto it = j.find(key);
        if (it == j.end()) {
            if (missing.empty()) {
                missing = key;
            }
            return nullptr;
        }
        return &*it;
    };
    std::string badEnum;
    auto getEnum = [&]<typename E>(const char *key, E &out, std::initializer_list<E> values) {
        if (auto it = j.find(key); it != j.end()) {
            auto v = enumFromName(it->get<std::string>(), values);
            if (!v && badEnum.empty()) {
                badEnum = std::string(key) + " '" + it->get<std::string>() + "'";
            }
            out = v.value_or(out);
        }
    };
    try {
        if (auto *v = need("architecture")) {
            const auto arch = v->get<std::string>();
            const auto known = architectureFromName(arch);
            if (!known) {
                return makeError(ErrorCode::Unsupported, origin + ": unknown architecture '" + arch + "'");
            }
            c.architecture = *known;
        }
        auto getInt = [&](const char *key, int64_t &out) {
            if (auto *v = need(key)) {
                out = v->get<int64_t>();
            }
        };
        getInt("layers", c.layers);
        getInt("heads", c.heads);
        getInt("kv_heads", c.kvHeads);
        getInt("embedding", c.embedding);
        getInt("head_dim", c.headDim);
        getInt("feed_forward", c.feedForward);
        getInt("vocab_size", c.vocabSize);
        getInt("context_length", c.contextLength);
        c.name = j.value("name", std::string());
        c.normEps = j.value("norm_eps", 1e-5);
        c.ropeTheta = j.value("rope_theta", 10000.0);
        c.ropeDim = j.value("rope_dim", c.headDim);
        c.ropeScale = j.value("rope_scale", 1.0);
        c.tiedOutput = j.value("tied_output", true);
        if (auto it = j.find("rope_scaling"); it != j.end() && it->is_object()) {
            c.ropeScaling = ropeScalingFromJson(*it);
        }
        c.ropeLocalTheta = j.value("rope_local_theta", 0.0);
        c.layerWindows = j.value("layer_windows", std::vector<int64_t>{});
        c.attnScale = j.value("attn_scale", 0.0);
        // Archives written before these fields were stored: the family's own settings.
        applyFamilyDefaults(c);
        getEnum("norm_kind", c.normKind, {NormKind::Rms, NormKind::Layer});
        getEnum("norm_placement", c.normPlacement, {NormPlacement::Pre, NormPlacement::Sandwich, NormPlacement::Post});
        getEnum("qk_norm", c.qkNorm, {QkNorm::None, QkNorm::PerHead, QkNorm::Full});
        getEnum("activation", c.activation, {Activation::Silu, Activation::GeluTanh, Activation::Gelu});
        getEnum("mlp_kind", c.mlpKind, {MlpKind::Gated, MlpKind::Plain, MlpKind::Experts});
        c.qkvBias = j.value("qkv_bias", c.qkvBias);
        c.outputBias = j.value("output_bias", c.outputBias);
        c.mlpBias = j.value("mlp_bias", c.mlpBias);
        c.parallelResidual = j.value("parallel_residual", c.parallelResidual);
        c.embedScale = j.value("embed_scale", c.embedScale);
        c.finalLogitSoftcap = j.value("final_logit_softcap", 0.0);
        c.learnedSinks = j.value("learned_sinks", c.learnedSinks);
        c.sinkLogits = j.value("sink_logits", std::vector<double>{});
        c.experts = j.value("experts", int64_t{0});
        c.expertsPerToken = j.value("experts_per_token", int64_t{0});
        c.swigluAlpha = j.value("swiglu_alpha", 1.702);
        c.swigluLimit = j.value("swiglu_limit", 7.0);
        c.parameterCount = j.value("parameter_count", int64_t{0});
        c.contractVersion = j.value("contract_version", 0);
        c.sourceFile = j.value("source_file", std::string());
        c.sourceQuantization = j.value("source_quantization", std::string());
    } catch (const nlohmann::json::exception &e) {
        return makeError(ErrorCode::Corrupt, origin + ": bad field type (" + std::string(e.what()) + ")");
    }
    if (!missing.empty()) {
        return makeError(ErrorCode::Corrupt, origin + ": missing field '" + missing + "'");
    }
    if (!badEnum.empty()) {
        return makeError(ErrorCode::Unsupported, origin + ": unknown " + badEnum);
    }
    if (Status ok = validate(c, origin); !ok) {
        return ok.error();
    }
    if (c.contractVersion > kContractVersion) {
        return makeError(ErrorCode::Unsupported, origin + ": contract version " + std::to_string(c.contractVersion) +
                                                     " is newer than this SinkScope understands (" +
                                                     std::to_string(kContractVersion) + ")");
    }
    return c;
}

namespace {

void summariseTensors(const GgufFile &file, ModelConfig &c)
{
    std::map<std::string, int> counts;
    for (const auto &t : file.tensors()) {
        c.parameterCount += t.numel();
        counts[ggmlTypeName(t.type)]++;
    }
    c.sourceQuantization = ModelConfig::tensorTypesText(counts);
}

} // namespace

Result<ModelConfig> ModelConfig::fromGguf(const GgufFile &file)
{
    const std::string &path = file.path();
    const auto arch = file.getString("general.architecture");
    if (!arch) {
        return makeError(ErrorCode::Corrupt, path + ": missing metadata 'general.architecture'");
    }
    ModelConfig c;
    // GGUF architecture names (llama.cpp's) differ from Hugging Face's for three families.
    const std::map<std::string, Architecture> ggufNames = {
        {"llama", Architecture::Llama}, {"gpt2", Architecture::Gpt2},       {"qwen2", Architecture::Qwen2},
        {"qwen3", Architecture::Qwen3}, {"gemma3", Architecture::Gemma3},   {"gpt-oss", Architecture::GptOss},
        {"phi3", Architecture::Phi3},   {"gptneox", Architecture::GptNeox}, {"olmo2", Architecture::Olmo2},
    };
    if (auto it = ggufNames.find(*arch); it != ggufNames.end()) {
        c.architecture = it->second;
    } else {
        return makeError(ErrorCode::Unsupported, path + ": architecture '" + *arch +
                                                     "' is not supported (supported: llama, gpt2, qwen2, qwen3, "
                                                     "gemma3, gpt-oss, phi3, gptneox, olmo2)");
    }
    const std::string p = *arch + ".";
    std::string missing;
    auto req = [&](const std::string &key) -> int64_t {
        auto v = file.getInt(p + key);
        if (!v && missing.empty()) {
            missing = p + key;
        }
        return v.value_or(0);
    };
    c.layers = req("block_count");
    c.embedding = req("embedding_length");
    c.heads = req("attention.head_count");
    c.contextLength = req("context_length");
    if (c.architecture == Architecture::GptOss) {
        c.feedForward = file.getInt(p + "expert_feed_forward_length").value_or(0);
        c.experts = req("expert_count");
        c.expertsPerToken = req("expert_used_count");
    } else {
        c.feedForward = req("feed_forward_length");
    }
    if (!missing.empty()) {
        return makeError(ErrorCode::Corrupt, path + ": missing metadata '" + missing + "'");
    }
    c.kvHeads = file.getInt(p + "attention.head_count_kv").value_or(c.heads);
    if (c.heads <= 0 || c.embedding <= 0 || (!file.getInt(p + "attention.key_length") && c.embedding % c.heads != 0)) {
        return makeError(ErrorCode::Corrupt, path + ": inconsistent sizes in metadata (embedding_length " +
                                                 std::to_string(c.embedding) + ", head_count " +
                                                 std::to_string(c.heads) + ")");
    }
    c.headDim = file.getInt(p + "attention.key_length").value_or(c.embedding / c.heads);
    if (auto vl = file.getInt(p + "attention.value_length"); vl && *vl != c.headDim) {
        return makeError(ErrorCode::Unsupported, path + ": value head size " + std::to_string(*vl) +
                                                     " differs from the key head size " + std::to_string(c.headDim));
    }
    applyFamilyDefaults(c);
    if (c.normKind == NormKind::Layer) {
        c.normEps = file.getFloat(p + "attention.layer_norm_epsilon").value_or(1e-5);
    } else {
        c.normEps = file.getFloat(p + "attention.layer_norm_rms_epsilon").value_or(1e-5);
    }
    if (c.architecture == Architecture::Gpt2) {
        c.ropeDim = 0;
    } else {
        c.ropeTheta = file.getFloat(p + "rope.freq_base").value_or(10000.0);
        c.ropeDim = file.getInt(p + "rope.dimension_count").value_or(c.headDim);
        const auto scalingType = file.getString(p + "rope.scaling.type").value_or("none");
        RopeScaling &r = c.ropeScaling;
        r.factor = file.getFloat(p + "rope.scaling.factor").value_or(1.0);
        r.originalContext = file.getInt(p + "rope.scaling.original_context_length").value_or(0);
        if (scalingType == "linear") {
            r.type = "linear";
        } else if (scalingType == "yarn") {
            r.type = "yarn";
            r.betaFast = file.getFloat(p + "rope.scaling.yarn_beta_fast").value_or(32.0);
            r.betaSlow = file.getFloat(p + "rope.scaling.yarn_beta_slow").value_or(1.0);
            // gpt-oss's own config sets truncate false; llama.cpp's files do not record it.
            r.truncate = c.architecture != Architecture::GptOss;
        } else if (scalingType != "none") {
            return makeError(ErrorCode::Unsupported, path + ": RoPE scaling '" + scalingType +
                                                         "' is not supported (none, linear, yarn; llama3 and longrope "
                                                         "come as rope_freqs / rope_factors_* tensors)");
        }
        if (file.findTensor("rope_freqs.weight")) {
            if (r.type != "none") {
                return makeError(ErrorCode::Unsupported,
                                 path + ": both rope_freqs and RoPE scaling '" + r.type + "' are set");
            }
            r.type = "llama3";
            r.fromTensor = true;
        }
        if (file.findTensor("rope_factors_long.weight") || file.findTensor("rope_factors_short.weight")) {
            r.type = "longrope";
            r.fromTensor = true;
            if (r.originalContext <= 0) {
                return makeError(ErrorCode::Corrupt,
                                 path + ": longrope factors without " + p + "rope.scaling.original_context_length");
            }
            r.attentionFactor = file.getFloat(p + "rope.scaling.attn_factor").value_or(0.0);
        }
    }
    if (auto swa = file.getInt(p + "attention.sliding_window"); swa && *swa > 0) {
        c.layerWindows.assign(static_cast<size_t>(std::max<int64_t>(c.layers, 0)), 0);
        for (int64_t l = 0; l < c.layers; ++l) {
            bool slides = true;
            if (c.architecture == Architecture::Gemma3) {
                const int64_t pattern = file.getInt(p + "attention.sliding_window_pattern").value_or(6);
                slides = pattern <= 0 || (l + 1) % pattern != 0;
            } else if (c.architecture == Architecture::GptOss) {
                slides = l % 2 == 0;
            } else if (c.architecture != Architecture::Llama && c.architecture != Architecture::Phi3) {
                return makeError(ErrorCode::Unsupported, path + ": " + p +
                                                             "attention.sliding_window is set but this file does not "
                                                             "say which " +
                                                             *arch + " layers slide");
            }
            c.layerWindows[static_cast<size_t>(l)] = slides ? *swa : 0;
        }
    }
    if (c.architecture == Architecture::Gemma3) {
        c.ropeLocalTheta = file.getFloat(p + "rope.freq_base_swa").value_or(10000.0);
        c.finalLogitSoftcap = file.getFloat(p + "final_logit_softcapping").value_or(0.0);
        c.embedScale = std::sqrt(static_cast<double>(c.embedding));
        // No query_pre_attn_scalar in GGUF: llama.cpp scales by key_length^-0.5 (all sizes but 27B).
        c.attnScale = 1.0 / std::sqrt(static_cast<double>(c.headDim));
    }
    if (auto cap = file.getFloat(p + "attn_logit_softcapping"); cap && *cap != 0.0) {
        return makeError(ErrorCode::Unsupported,
                         path + ": attention logit soft-capping (" + p + "attn_logit_softcapping) is not implemented");
    }
    if (c.architecture == Architecture::GptNeox) {
        c.parallelResidual = file.getInt(p + "use_parallel_residual").value_or(1) != 0;
    }
    // Every key of the architecture is one the decoder implements (or one that changes nothing): an
    // unknown key may change the forward pass, and a model converted without it would run wrong.
    static const std::set<std::string> known = {
        "block_count",
        "context_length",
        "embedding_length",
        "feed_forward_length",
        "vocab_size",
        "attention.head_count",
        "attention.head_count_kv",
        "attention.key_length",
        "attention.value_length",
        "attention.layer_norm_rms_epsilon",
        "attention.layer_norm_epsilon",
        "attention.sliding_window",
        "attention.sliding_window_pattern",
        "attention.causal",
        "rope.freq_base",
        "rope.freq_base_swa",
        "rope.dimension_count",
        "rope.scaling.type",
        "rope.scaling.factor",
        "rope.scaling.original_context_length",
        "rope.scaling.attn_factor",
        "rope.scaling.yarn_beta_fast",
        "rope.scaling.yarn_beta_slow",
        "rope.scaling.finetuned",
        "final_logit_softcapping",
        "attn_logit_softcapping",
        "use_parallel_residual",
        "expert_count",
        "expert_used_count",
        "expert_feed_forward_length",
    };
    for (const auto &[key, value] : file.metadata()) {
        if (key.rfind(p, 0) == 0 && known.count(key.substr(p.size())) == 0) {
            return makeError(ErrorCode::Unsupported, path + ": metadata '" + key + "' is not implemented for " + *arch +
                                                         " models; converting without it could change the model");
        }
    }
    if (file.getInt(p + "attention.causal").value_or(1) == 0) {
        return makeError(ErrorCode::Unsupported, path + ": " + p + "attention.causal is false (not a decoder)");
    }
    if (c.architecture != Architecture::GptOss && file.getInt(p + "expert_count").value_or(0) > 0) {
        return makeError(ErrorCode::Unsupported, path + ": " + p + "expert_count is set: mixture-of-experts " + *arch +
                                                     " models are not implemented");
    }
    if (c.ropeScaling.type == "yarn" && file.getFloat(p + "rope.scaling.attn_factor").value_or(1.0) != 1.0) {
        return makeError(ErrorCode::Unsupported,
                         path + ": " + p + "rope.scaling.attn_factor with YaRN is not implemented");
    }
    c.tiedOutput = file.findTensor("output.weight") == nullptr;
    if (const auto *emb = file.findTensor("token_embd.weight"); emb && emb->ne.size() == 2) {
        c.vocabSize = emb->ne[1];
    } else {
        return makeError(ErrorCode::Corrupt, path + ": missing tensor 'token_embd.weight'");
    }
    if (Status ok = validate(c, path); !ok) {
        return ok.error();
    }
    c.name = file.getString("general.name").value_or(std::filesystem::path(path).stem().string());
    c.sourceFile = std::filesystem::path(path).filename().string();
    summariseTensors(file, c);
    return c;
}

namespace {

// Reads a Hugging Face RoPE parameter block (rope_parameters entry or the old rope_scaling) into `c`.
Status readHfRope(const nlohmann::json &rp, ModelConfig &c, const std::string &origin, bool global)
{
    std::string type = rp.value("rope_type", rp.value("type", std::string("default")));
    if (type == "su" || (type == "yarn" && c.architecture == Architecture::Phi3)) {
        type = "longrope"; // Phi-3's old names for longrope
    }
    if (rp.contains("rope_theta")) {
        (global ? c.ropeTheta : c.ropeLocalTheta) = rp["rope_theta"].get<double>();
    }
    // transformers 5 keeps the rotated fraction with the RoPE parameters.
    if (auto it = rp.find("partial_rotary_factor"); it != rp.end() && it->is_number()) {
        c.ropeDim = static_cast<int64_t>(static_cast<double>(c.headDim) * it->get<double>());
    }
    if (!global) {
        if (type != "default") {
            return makeError(ErrorCode::Unsupported,
                             origin + ": RoPE scaling '" + type + "' on sliding layers is not implemented");
        }
        return Ok{};
    }
    RopeScaling &r = c.ropeScaling;
    r.type = type == "default" ? "none" : type;
    auto num = [&](const char *key, double fallback) {
        auto it = rp.find(key);
        return it != rp.end() && it->is_number() ? it->get<double>() : fallback;
    };
    r.factor = num("factor", 1.0);
    r.lowFreqFactor = num("low_freq_factor", 1.0);
    r.highFreqFactor = num("high_freq_factor", 4.0);
    r.originalContext = static_cast<int64_t>(num("original_max_position_embeddings", 0));
    r.betaFast = num("beta_fast", 32.0);
    r.betaSlow = num("beta_slow", 1.0);
    r.attentionFactor = num("attention_factor", 0.0);
    r.truncate = rp.value("truncate", true);
    if (rp.contains("mscale") || rp.contains("mscale_all_dim")) {
        return makeError(ErrorCode::Unsupported, origin + ": YaRN mscale / mscale_all_dim are not implemented");
    }
    if (rp.contains("long_factor")) {
        r.longFactor = rp["long_factor"].get<std::vector<double>>();
    }
    if (rp.contains("short_factor")) {
        r.shortFactor = rp["short_factor"].get<std::vector<double>>();
    }
    if (r.type == "longrope" && !rp.contains("factor")) {
        r.factor = 0; // derived from the context lengths by the converter
    }
    return Ok{};
}

} // namespace

Result<ModelConfig> ModelConfig::fromHfConfig(const std::string &text, const std::string &origin)
{
    nlohmann::json root = nlohmann::json::parse(text, nullptr, false);
    if (root.is_discarded() || !root.is_object()) {
        return makeError(ErrorCode::Corrupt, origin + ": not a valid JSON object");
    }
    const nlohmann::json &j =
        root.contains("text_config") && root["text_config"].is_object() ? root["text_config"] : root;
    std::string type = j.value("model_type", root.value("model_type", std::string()));
    if (type.empty()) {
        return makeError(ErrorCode::Corrupt, origin + ": no model_type");
    }
    if (type == "gemma3_text") {
        type = "gemma3";
    }
    const auto arch = architectureFromName(type);
    if (!arch || *arch == Architecture::Gpt2) {
        return makeError(ErrorCode::Unsupported, origin + ": model_type '" + type +
                                                     "' is not supported (llama, mistral, qwen2, qwen3, gemma3, "
                                                     "gemma3_text, gpt_oss, phi3, gpt_neox, olmo2)");
    }
    ModelConfig c;
    c.architecture = *arch;
    try {
        std::string missing;
        auto req = [&](const char *key) -> int64_t {
            auto it = j.find(key);
            if (it == j.end() || !it->is_number_integer()) {
                if (missing.empty()) {
                    missing = key;
                }
                return 0;
            }
            return it->get<int64_t>();
        };
        c.embedding = req("hidden_size");
        c.layers = req("num_hidden_layers");
        c.heads = req("num_attention_heads");
        c.vocabSize = req("vocab_size");
        c.feedForward = req("intermediate_size");
        c.contextLength = req("max_position_embeddings");
        if (!missing.empty()) {
            return makeError(ErrorCode::Corrupt, origin + ": missing or non-integer '" + missing + "'");
        }
        c.kvHeads = j.value("num_key_value_heads", c.heads);
        if (j.contains("num_key_value_heads") && j["num_key_value_heads"].is_null()) {
            c.kvHeads = c.heads;
        }
        if (c.heads <= 0 || c.embedding <= 0) {
            return makeError(ErrorCode::Corrupt, origin + ": hidden_size and num_attention_heads must be positive");
        }
        c.headDim = j.contains("head_dim") && j["head_dim"].is_number_integer() ? j["head_dim"].get<int64_t>()
                                                                                : c.embedding / c.heads;
        applyFamilyDefaults(c);
        c.normEps = j.value(c.normKind == NormKind::Layer ? "layer_norm_eps" : "rms_norm_eps", 1e-5);
        if (c.architecture == Architecture::Phi3 && !j.contains("rms_norm_eps")) {
            c.normEps = 1e-5;
        }
        // Defaults of each family's config class where the file may leave a key out.
        const bool tiedDefault = c.architecture == Architecture::Gemma3;
        c.tiedOutput = j.value("tie_word_embeddings", tiedDefault);
        if (c.architecture == Architecture::Llama || c.architecture == Architecture::Qwen3 ||
            c.architecture == Architecture::Olmo2 || c.architecture == Architecture::Gemma3 ||
            c.architecture == Architecture::Mistral || c.architecture == Architecture::Phi3) {
            const bool bias = j.value("attention_bias", false);
            if (bias && c.architecture != Architecture::Llama && c.architecture != Architecture::Qwen3 &&
                c.architecture != Architecture::Olmo2) {
                return makeError(ErrorCode::Unsupported, origin + ": attention_bias is not implemented for " + type);
            }
            c.qkvBias = c.outputBias = bias;
        }
        if (c.architecture == Architecture::GptOss) {
            c.qkvBias = c.outputBias = j.value("attention_bias", true);
            c.experts = j.value("num_local_experts", int64_t{0});
            c.expertsPerToken = j.value("num_experts_per_tok", int64_t{0});
            c.swigluLimit = j.value("swiglu_limit", 7.0);
        }
        if (c.architecture == Architecture::GptNeox) {
            c.parallelResidual = j.value("use_parallel_residual", true);
            c.qkvBias = c.outputBias = j.value("attention_bias", true);
        }
        if (j.value("mlp_bias", false)) {
            if (c.architecture != Architecture::Llama) {
                return makeError(ErrorCode::Unsupported, origin + ": mlp_bias is not implemented for " + type);
            }
            c.mlpBias = true;
        }
        const std::string act = j.value("hidden_activation", j.value("hidden_act", std::string("silu")));
        if (c.architecture != Architecture::GptOss) {
            if (act == "silu" || act == "swish") {
                c.activation = Activation::Silu;
            } else if (act == "gelu_pytorch_tanh" || act == "gelu_new" || act == "gelu_fast") {
                c.activation = Activation::GeluTanh;
            } else if (act == "gelu") {
                c.activation = Activation::Gelu;
            } else {
                return makeError(ErrorCode::Unsupported, origin + ": activation '" + act + "' is not implemented");
            }
        }

        // RoPE: rotary dimensions, base, scaling (new rope_parameters, old rope_theta + rope_scaling).
        double partial = j.value("partial_rotary_factor", 1.0);
        if (c.architecture == Architecture::GptNeox) {
            partial = j.value("rotary_pct", partial);
            c.ropeTheta = j.value("rotary_emb_base", 10000.0);
        }
        c.ropeDim = static_cast<int64_t>(static_cast<double>(c.headDim) * partial);
        if (j.contains("rope_theta") && j["rope_theta"].is_number()) {
            c.ropeTheta = j["rope_theta"].get<double>();
        }
        if (c.architecture == Architecture::Gemma3) {
            c.ropeLocalTheta = j.value("rope_local_base_freq", 10000.0);
        }
        if (auto it = j.find("rope_parameters"); it != j.end() && it->is_object()) {
            if (it->contains("full_attention") || it->contains("sliding_attention")) {
                for (const auto &[layerType, block] : it->items()) {
                    if (layerType != "full_attention" && layerType != "sliding_attention") {
                        return makeError(ErrorCode::Unsupported, origin + ": RoPE parameters for layer type '" +
                                                                     layerType + "' are not implemented");
                    }
                    if (Status ok = readHfRope(block, c, origin, layerType == "full_attention"); !ok) {
                        return ok.error();
                    }
                }
            } else if (Status ok = readHfRope(*it, c, origin, true); !ok) {
                return ok.error();
            }
        } else if (auto sc = j.find("rope_scaling"); sc != j.end() && sc->is_object()) {
            if (Status ok = readHfRope(*sc, c, origin, true); !ok) {
                return ok.error();
            }
        }
        if (c.ropeScaling.type == "longrope" || c.ropeScaling.type == "yarn" || c.ropeScaling.type == "llama3") {
            if (j.contains("original_max_position_embeddings") &&
                (c.architecture == Architecture::Phi3 || c.ropeScaling.originalContext <= 0)) {
                c.ropeScaling.originalContext = j["original_max_position_embeddings"].get<int64_t>();
            }
        }
        if (c.ropeScaling.type == "longrope" && c.ropeScaling.factor <= 0 && c.ropeScaling.originalContext > 0) {
            c.ropeScaling.factor =
                static_cast<double>(c.contextLength) / static_cast<double>(c.ropeScaling.originalContext);
        }
        if (c.ropeScaling.type == "yarn" && c.ropeScaling.factor <= 0 && c.ropeScaling.originalContext > 0) {
            c.ropeScaling.factor =
                static_cast<double>(c.contextLength) / static_cast<double>(c.ropeScaling.originalContext);
        }

        // Sliding windows: explicit layer_types, else each family's rule.
        int64_t window = 0; // 0: the config sets none
        if (auto it = j.find("sliding_window"); it != j.end() && it->is_number_integer()) {
            window = std::max<int64_t>(it->get<int64_t>(), 0);
        }
        if ((c.architecture == Architecture::Qwen2 || c.architecture == Architecture::Qwen3) &&
            !j.value("use_sliding_window", false)) {
            window = 0;
        }
        c.layerWindows.assign(static_cast<size_t>(std::clamp<int64_t>(c.layers, 0, 4096)), 0);
        if (auto it = j.find("layer_types"); it != j.end() && it->is_array()) {
            if (static_cast<int64_t>(it->size()) != c.layers) {
                return makeError(ErrorCode::Corrupt, origin + ": layer_types has " + std::to_string(it->size()) +
                                                         " entries for " + std::to_string(c.layers) + " layers");
            }
            for (size_t l = 0; l < it->size(); ++l) {
                const std::string lt = (*it)[l].get<std::string>();
                if (lt == "sliding_attention") {
                    if (!window) {
                        return makeError(ErrorCode::Corrupt, origin + ": layer " + std::to_string(l) +
                                                                 " slides but sliding_window is unset");
                    }
                    c.layerWindows[l] = window;
                } else if (lt != "full_attention") {
                    return makeError(ErrorCode::Unsupported, origin + ": layer type '" + lt + "' is not implemented");
                }
            }
        } else if (window) {
            for (int64_t l = 0; l < c.layers; ++l) {
                bool slides = false;
                switch (c.architecture) {
                case Architecture::Mistral:
                case Architecture::Phi3:
                    slides = true;
                    break;
                case Architecture::Qwen2:
                case Architecture::Qwen3:
                    slides = l >= j.value("max_window_layers", c.layers);
                    break;
                case Architecture::Gemma3: {
                    const int64_t pattern = j.value("sliding_window_pattern", int64_t{6});
                    slides = pattern <= 0 || (l + 1) % pattern != 0;
                    break;
                }
                case Architecture::GptOss:
                    slides = l % 2 == 0;
                    break;
                default:
                    return makeError(ErrorCode::Unsupported,
                                     origin + ": sliding_window is set but " + type + " does not use one");
                }
                c.layerWindows[static_cast<size_t>(l)] = slides ? window : 0;
            }
        }
        if (!c.hasSlidingLayers()) {
            c.layerWindows.clear();
        }

        if (c.architecture == Architecture::Gemma3) {
            c.attnScale = 1.0 / std::sqrt(j.value("query_pre_attn_scalar", static_cast<double>(c.headDim)));
            if (auto it = j.find("final_logit_softcapping"); it != j.end() && it->is_number()) {
                c.finalLogitSoftcap = it->get<double>();
            }
        }
        for (const char *key : {"attn_logit_softcapping", "logit_softcapping"}) {
            if (auto it = j.find(key); it != j.end() && !it->is_null() && c.architecture != Architecture::Gemma3) {
                return makeError(ErrorCode::Unsupported, origin + ": " + key + " is not implemented");
            }
        }
        if (c.architecture == Architecture::Gemma3) {
            if (auto it = j.find("attn_logit_softcapping"); it != j.end() && !it->is_null()) {
                return makeError(ErrorCode::Unsupported, origin + ": attn_logit_softcapping is not implemented");
            }
        }
    } catch (const nlohmann::json::exception &e) {
        return makeError(ErrorCode::Corrupt, origin + ": bad value type (" + std::string(e.what()) + ")");
    }
    if (Status ok = validate(c, origin); !ok) {
        return ok.error();
    }
    c.name = root.value("_name_or_path", std::string());
    if (c.name.empty()) {
        c.name = std::filesystem::path(origin).parent_path().filename().string();
    }
    c.sourceFile = std::filesystem::path(origin).parent_path().filename().string();
    return c;
}

} // namespace sinkscope
