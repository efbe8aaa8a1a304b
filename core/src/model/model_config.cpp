#include "sinkscope/model/model_config.h"

#include "sinkscope/format/gguf.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>

namespace sinkscope {

const char *architectureName(Architecture arch)
{
    switch (arch) {
    case Architecture::Llama:
        return "llama";
    case Architecture::Gpt2:
        return "gpt2";
    }
    return "unknown";
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
    try {
        if (auto *v = need("architecture")) {
            const auto arch = v->get<std::string>();
            if (arch == "llama") {
                c.architecture = Architecture::Llama;
            } else if (arch == "gpt2") {
                c.architecture = Architecture::Gpt2;
            } else {
                return makeError(ErrorCode::Unsupported, origin + ": unknown architecture '" + arch + "'");
            }
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
    if (c.layers <= 0 || c.heads <= 0 || c.kvHeads <= 0 || c.embedding <= 0 || c.headDim <= 0 || c.vocabSize <= 0 ||
        c.contextLength <= 0 || c.heads % c.kvHeads != 0) {
        return makeError(ErrorCode::Corrupt, origin + ": inconsistent sizes (layers, heads, kv_heads, embedding, "
                                                      "head_dim, vocab_size and context_length must be positive; "
                                                      "heads a multiple of kv_heads)");
    }
    if (c.contractVersion > kContractVersion) {
        return makeError(ErrorCode::Unsupported, origin + ": contract version " + std::to_string(c.contractVersion) +
                                                     " is newer than this SinkScope understands (" +
                                                     std::to_string(kContractVersion) + ")");
    }
    return c;
}

Result<ModelConfig> ModelConfig::fromGguf(const GgufFile &file)
{
    const std::string &path = file.path();
    const auto arch = file.getString("general.architecture");
    if (!arch) {
        return makeError(ErrorCode::Corrupt, path + ": missing metadata 'general.architecture'");
    }
    ModelConfig c;
    if (*arch == "llama") {
        c.architecture = Architecture::Llama;
    } else if (*arch == "gpt2") {
        c.architecture = Architecture::Gpt2;
    } else {
        return makeError(ErrorCode::Unsupported,
                         path + ": architecture '" + *arch + "' is not supported (supported: llama, gpt2)");
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
    c.feedForward = req("feed_forward_length");
    c.heads = req("attention.head_count");
    c.contextLength = req("context_length");
    if (!missing.empty()) {
        return makeError(ErrorCode::Corrupt, path + ": missing metadata '" + missing + "'");
    }
    c.kvHeads = file.getInt(p + "attention.head_count_kv").value_or(c.heads);
    if (c.layers <= 0 || c.embedding <= 0 || c.heads <= 0 || c.kvHeads <= 0 || c.embedding % c.heads != 0 ||
        c.heads % c.kvHeads != 0 || c.feedForward <= 0 || c.contextLength <= 0) {
        return makeError(ErrorCode::Corrupt,
                         path + ": inconsistent sizes in metadata (block_count " + std::to_string(c.layers) +
                             ", embedding_length " + std::to_string(c.embedding) + ", head_count " +
                             std::to_string(c.heads) + ", head_count_kv " + std::to_string(c.kvHeads) + ")");
    }
    c.headDim = c.embedding / c.heads;
    if (c.architecture == Architecture::Llama) {
        c.normEps = file.getFloat(p + "attention.layer_norm_rms_epsilon").value_or(1e-5);
        c.ropeTheta = file.getFloat(p + "rope.freq_base").value_or(10000.0);
        c.ropeDim = file.getInt(p + "rope.dimension_count").value_or(c.headDim);
        const auto scalingType = file.getString(p + "rope.scaling.type").value_or("none");
        if (scalingType == "linear") {
            c.ropeScale = file.getFloat(p + "rope.scaling.factor").value_or(1.0);
        } else if (scalingType != "none") {
            return makeError(ErrorCode::Unsupported,
                             path + ": RoPE scaling '" + scalingType + "' is not supported (none, linear)");
        }
        if (c.ropeDim <= 0 || c.ropeDim > c.headDim || c.ropeDim % 2 != 0) {
            return makeError(ErrorCode::Corrupt, path + ": rope.dimension_count " + std::to_string(c.ropeDim) +
                                                     " does not fit head dimension " + std::to_string(c.headDim));
        }
    } else {
        c.normEps = file.getFloat(p + "attention.layer_norm_epsilon").value_or(1e-5);
        c.ropeDim = 0;
    }
    c.tiedOutput = file.findTensor("output.weight") == nullptr;
    if (const auto *emb = file.findTensor("token_embd.weight"); emb && emb->ne.size() == 2) {
        c.vocabSize = emb->ne[1];
    } else {
        return makeError(ErrorCode::Corrupt, path + ": missing tensor 'token_embd.weight'");
    }
    c.name = file.getString("general.name").value_or(std::filesystem::path(path).stem().string());
    c.sourceFile = std::filesystem::path(path).filename().string();
    std::map<std::string, int> counts;
    for (const auto &t : file.tensors()) {
        c.parameterCount += t.numel();
        counts[ggmlTypeName(t.type)]++;
    }
    for (const auto &[type, n] : counts) {
        c.sourceQuantization += (c.sourceQuantization.empty() ? "" : ", ") + type + " x" + std::to_string(n);
    }
    return c;
}

} // namespace sinkscope
