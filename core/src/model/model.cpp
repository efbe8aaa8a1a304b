#include "sinkscope/model/model.h"

#include "attention/attention_op.h"
#include "model/layer_tensors.h"
#include "runtime/runtime_internal.h"
#include "sinkscope/model/control_keys.h"
#include "sinkscope/runtime/memory.h"
#include "torch_util.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/cuda.h>
#include <torch/script.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

namespace sinkscope {

namespace ck = control_keys;

namespace fs = std::filesystem;
using detail::fromFloatArray;
using detail::guardTorch;
using detail::toFloatArray;

namespace {
// What a request over the memory budget can do instead (the refusal's last clause).
constexpr const char *kMemoryWayOut =
    "use fewer tokens or fewer attention maps, the streaming path (sinkscope-cli stream-ppl), or a GPU";
} // namespace

struct Model::Impl {
    mutable torch::jit::Module module;
    torch::Device device{torch::kCPU};
};

Model::Model() = default;
Model::~Model() = default;

Result<ModelConfig> readArchiveConfig(const std::string &path)
{
    // Reads one zip entry through the archive's central directory: no weights are loaded.
    try {
        caffe2::serialize::PyTorchStreamReader reader(path);
        const std::string entry = "extra/sinkscope/config.json";
        if (!reader.hasRecord(entry)) {
            return makeError(ErrorCode::NotAModel, path + ": not a SinkScope model archive (no sinkscope/config.json)");
        }
        auto [data, size] = reader.getRecord(entry);
        return ModelConfig::fromJson(std::string(static_cast<const char *>(data.get()), size),
                                     path + ":sinkscope/config.json");
    } catch (const c10::Error &e) {
        return makeError(ErrorCode::NotAModel,
                         path + ": not a TorchScript archive (" + detail::firstLine(e.what_without_backtrace()) + ")");
    }
}

std::vector<TopToken> topK(const float *logits, int64_t vocab, int k)
{
    std::vector<TopToken> out;
    if (vocab <= 0 || k <= 0) {
        return out;
    }
    const float maxLogit = *std::max_element(logits, logits + vocab);
    double sum = 0;
    for (int64_t i = 0; i < vocab; ++i) {
        sum += std::exp(static_cast<double>(logits[i]) - maxLogit);
    }
    std::vector<int64_t> idx(static_cast<size_t>(vocab));
    for (int64_t i = 0; i < vocab; ++i) {
        idx[static_cast<size_t>(i)] = i;
    }
    const auto n = static_cast<size_t>(std::min<int64_t>(k, vocab));
    std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(n), idx.end(),
                      [&](int64_t a, int64_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
    for (size_t i = 0; i < n; ++i) {
        const float l = logits[idx[i]];
        out.push_back({idx[i], l, static_cast<float>(std::exp(static_cast<double>(l) - maxLogit) / sum)});
    }
    return out;
}

Result<std::shared_ptr<const Model>> Model::load(const std::string &path, const LoadOptions &options)
{
    detail::ensureRuntimeConfigured();
    detail::ensureAttentionOps(); // contract-5 archives call sinkscope::attend and sinkscope::linear
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
        return makeError(ErrorCode::Io, path + ": no such file");
    }
    {
        std::ifstream f(path, std::ios::binary);
        char magic[4] = {};
        f.read(magic, 4);
        if (f.gcount() == 4 && std::string(magic, 4) == "GGUF") {
            return makeError(ErrorCode::NotAModel,
                             path + ": this is a GGUF file; convert it first (sinkscope-cli convert " + path +
                                 " -o model.pt)");
        }
        if (f.gcount() < 4 || magic[0] != 'P' || magic[1] != 'K') {
            return makeError(ErrorCode::NotAModel, path + ": not a TorchScript archive (no zip header)");
        }
    }
    const uintmax_t archiveBytes = fs::file_size(path, ec);
    if (auto fits = checkMemory(estimateLoad(ec ? 0 : archiveBytes), path + ": loading",
                                "close other programs or use a smaller model");
        !fits) {
        return fits.error();
    }
    if (options.progress && !options.progress(0.05, "reading archive")) {
        return makeError(ErrorCode::Cancelled, path + ": loading cancelled");
    }
    std::shared_ptr<Model> model(new Model());
    model->m_impl = std::make_unique<Impl>();
    model->m_info.path = path;
    model->m_info.device = options.device;
    torch::jit::ExtraFilesMap extra{{"sinkscope/config.json", ""}, {"sinkscope/tokenizer.json", ""}};
    Status loaded = guardTorch(path, [&]() -> Status {
        try {
            model->m_impl->device = torch::Device(options.device);
        } catch (const c10::Error &) {
            return makeError(ErrorCode::InvalidArgument, path + ": unknown device '" + options.device + "'");
        }
        if (model->m_impl->device.is_cuda()) {
            // Checked here, so that the error says what is missing instead of a LibTorch dispatch failure.
            const int64_t count = torch::cuda::is_available() ? static_cast<int64_t>(torch::cuda::device_count()) : 0;
            const int64_t index = model->m_impl->device.has_index() ? model->m_impl->device.index() : 0;
            if (index >= count) {
                return makeError(
                    ErrorCode::InvalidArgument,
                    path + ": cannot load on " + options.device + ": " +
                        (count == 0 ? std::string("this LibTorch (") + TORCH_VERSION + ") has no CUDA device to use"
                                    : "LibTorch sees " + std::to_string(count) + " CUDA device(s)"));
            }
        }
        try {
            model->m_impl->module = torch::jit::load(path, model->m_impl->device, extra);
        } catch (const c10::Error &e) {
            return makeError(ErrorCode::NotAModel, path + ": not a loadable TorchScript archive (" +
                                                       detail::firstLine(e.what_without_backtrace()) + ")");
        }
        model->m_impl->module.eval();
        return Ok{};
    });
    if (!loaded) {
        return loaded.error();
    }
    if (!model->m_impl->module.find_method("forward")) {
        return makeError(ErrorCode::NotAModel, path + ": TorchScript module has no forward method");
    }
    if (options.progress && !options.progress(0.8, "reading configuration")) {
        return makeError(ErrorCode::Cancelled, path + ": loading cancelled");
    }
    const std::string &configJson = extra["sinkscope/config.json"];
    if (!configJson.empty()) {
        auto config = ModelConfig::fromJson(configJson, path + ":sinkscope/config.json");
        if (!config) {
            return config.error();
        }
        model->m_info.config = std::move(config).value();
        model->m_info.kind = ModelKind::SinkScope;
        const std::string &tokJson = extra["sinkscope/tokenizer.json"];
        if (!tokJson.empty()) {
            auto tok = Tokenizer::fromJson(tokJson, path + ":sinkscope/tokenizer.json");
            if (!tok) {
                return tok.error();
            }
            model->m_tokenizer = std::move(tok).value();
        }
        const auto schema = model->m_impl->module.get_method("forward").function().getSchema();
        if (schema.arguments().size() != 3 || !model->m_impl->module.find_method("embed_input") ||
            !model->m_impl->module.find_method("run_block") || !model->m_impl->module.find_method("finish")) {
            return makeError(ErrorCode::NotAModel,
                             path + ": SinkScope archive without the contract's methods "
                                    "(forward(input_ids, controls), embed_input, run_block, finish)");
        }
    } else {
        model->m_info.kind = ModelKind::Generic;
        model->m_info.config.name = fs::path(path).stem().string();
        model->m_info.config.contractVersion = 0;
        model->m_info.limitation =
            "generic TorchScript model: no tokenizer, controls (mitigations), residual stream, value norms or q/k "
            "capture; token ids in, logits and the attention it returns out";
        const auto schema = model->m_impl->module.get_method("forward").function().getSchema();
        if (schema.arguments().size() < 2) {
            return makeError(ErrorCode::NotAModel, path + ": TorchScript forward takes no input");
        }
    }
    if (options.progress) {
        options.progress(1.0, "ready");
    }
    return std::shared_ptr<const Model>(std::move(model));
}

Result<std::vector<int64_t>> Model::tokenize(const std::string &prompt, std::optional<bool> addBos) const
{
    if (!m_tokenizer) {
        return makeError(ErrorCode::Unsupported, m_info.path + ": the model carries no tokenizer; pass token ids");
    }
    if (prompt.empty()) {
        return makeError(ErrorCode::InvalidArgument, "the prompt is empty");
    }
    auto ids = m_tokenizer->encode(prompt, EncodeOptions{.addBos = addBos});
    if (ids.empty()) {
        return makeError(ErrorCode::InvalidArgument, "the prompt produced no tokens");
    }
    if (m_info.config.contextLength > 0 && static_cast<int64_t>(ids.size()) > m_info.config.contextLength) {
        return makeError(ErrorCode::InvalidArgument, "the prompt has " + std::to_string(ids.size()) +
                                                         " tokens; the model's context is " +
                                                         std::to_string(m_info.config.contextLength));
    }
    return ids;
}

namespace {

at::Tensor layerFlags(int64_t layers, const std::vector<int> &which, bool all)
{
    auto t = torch::zeros({layers}, torch::kFloat);
    for (int l : which) {
        if (l >= 0 && l < layers) {
            t[l] = 1.0;
        }
    }
    if (all) {
        t.fill_(1.0);
    }
    return t;
}

// Finds attention-shaped tensors [1, H, T, T] or [H, T, T] in a generic module's output, in order.
void collectAttention(const c10::IValue &v, int64_t t, std::vector<at::Tensor> &out)
{
    if (v.isTensor()) {
        const auto &x = v.toTensor();
        if ((x.dim() == 4 && x.size(0) == 1 && x.size(2) == t && x.size(3) == t) ||
            (x.dim() == 3 && x.size(1) == t && x.size(2) == t)) {
            out.push_back(x.dim() == 4 ? x[0] : x);
        }
    } else if (v.isTuple()) {
        for (const auto &e : v.toTupleRef().elements()) {
            collectAttention(e, t, out);
        }
    } else if (v.isList()) {
        for (const auto &e : v.toListRef()) {
            collectAttention(e, t, out);
        }
    } else if (v.isGenericDict()) {
        for (const auto &e : v.toGenericDict()) {
            if (e.key().isString() && e.key().toStringRef() != "logits") {
                collectAttention(e.value(), t, out);
            }
        }
    }
}

at::Tensor findLogits(const c10::IValue &v)
{
    if (v.isTensor()) {
        return v.toTensor();
    }
    if (v.isTuple() && !v.toTupleRef().elements().empty()) {
        return findLogits(v.toTupleRef().elements()[0]);
    }
    if (v.isList() && !v.toListRef().empty()) {
        return findLogits(v.toListRef()[0]);
    }
    if (v.isGenericDict()) {
        for (const auto &e : v.toGenericDict()) {
            if (e.key().isString() && e.key().toStringRef() == "logits") {
                return e.value().toTensor();
            }
        }
    }
    return {};
}

} // namespace

PassAttentionStats passStatsOf(const at::Tensor &rowStats, const at::Tensor &colStats)
{
    PassAttentionStats s;
    if (!rowStats.defined() || !colStats.defined() || rowStats.dim() != 3 || colStats.dim() != 3) {
        return s;
    }
    const at::Tensor rows = rowStats.to(torch::kCPU, torch::kFloat).contiguous();
    const at::Tensor cols = colStats.to(torch::kCPU, torch::kDouble).contiguous();
    s.heads = rows.size(1);
    s.queries = rows.size(2);
    s.keys = cols.size(2);
    auto row = [&](int64_t i) {
        const float *p = rows.data_ptr<float>() + i * s.heads * s.queries;
        return std::vector<float>(p, p + s.heads * s.queries);
    };
    s.firstMass = row(detail::kStatFirst);
    s.rowPlogp = row(detail::kStatPlogp);
    s.rowMax = row(detail::kStatMax);
    s.rowWeighted = row(detail::kStatWeighted);
    s.nullShare = row(detail::kStatNullShare);
    const double *c = cols.data_ptr<double>();
    s.received.assign(c, c + s.heads * s.keys);
    s.receivedPlogp.assign(c + s.heads * s.keys, c + 2 * s.heads * s.keys);
    return s;
}

Result<ForwardResult> Model::forward(const ForwardRequest &request, const CancelToken *cancel,
                                     const ProgressCallback &progress) const
{
    const auto &c = m_info.config;
    const auto t = static_cast<int64_t>(request.tokens.size());
    if (t == 0) {
        return makeError(ErrorCode::InvalidArgument, "no tokens to run (empty prompt)");
    }
    if (c.contextLength > 0 && t > c.contextLength) {
        return makeError(ErrorCode::InvalidArgument, "the input has " + std::to_string(t) +
                                                         " tokens; the model's context is " +
                                                         std::to_string(c.contextLength));
    }
    for (int64_t id : request.tokens) {
        if (id < 0 || (c.vocabSize > 0 && id >= c.vocabSize)) {
            return makeError(ErrorCode::InvalidArgument, "token id " + std::to_string(id) +
                                                             " is outside the vocabulary (0.." +
                                                             std::to_string(c.vocabSize - 1) + ")");
        }
    }
    if (cancel && cancel->isCancelled()) {
        return makeError(ErrorCode::Cancelled, "forward pass cancelled");
    }
    if (!hasContract() && !request.controls.empty()) {
        return makeError(ErrorCode::Unsupported, m_info.path + ": " + m_info.limitation);
    }
    if (auto fits = checkMemory(estimateForward(c, t, request.capture, hasAttentionEngine()),
                                "a forward pass of " + std::to_string(t) + " tokens", kMemoryWayOut);
        !fits) {
        return fits.error();
    }
    return guardTorch(m_info.path, [&]() -> Result<ForwardResult> {
        c10::InferenceMode guard;
        const auto start = std::chrono::steady_clock::now();
        auto ids = torch::tensor(at::ArrayRef<int64_t>(request.tokens), torch::kLong).to(m_impl->device);
        ForwardResult result;
        result.tokens = request.tokens;
        if (!hasContract()) {
            const c10::IValue out = m_impl->module.forward({ids.unsqueeze(0)});
            at::Tensor logits = findLogits(out);
            if (!logits.defined() || logits.size(-2) != t) {
                return makeError(ErrorCode::NotAModel, m_info.path + ": forward did not return logits [1, T, V]");
            }
            logits = logits.reshape({t, logits.size(-1)});
            if (request.capture.lastLogitsOnly) {
                logits = logits.narrow(0, t - 1, 1);
            }
            result.logits = toFloatArray(logits);
            std::vector<at::Tensor> attn;
            collectAttention(out, t, attn);
            for (const auto &a : attn) {
                result.attention.push_back(toFloatArray(a));
            }
        } else {
            c10::Dict<std::string, at::Tensor> controls;
            for (const auto &[name, arr] : request.controls.tensors) {
                controls.insert(name, fromFloatArray(arr).to(m_impl->device));
            }
            const auto &cap = request.capture;
            if (cap.allAttention || !cap.attentionLayers.empty()) {
                controls.insert(ck::kCaptureAttn, layerFlags(c.layers, cap.attentionLayers, cap.allAttention));
            }
            if (cap.valueNorms) {
                controls.insert(ck::kCaptureVnorm, layerFlags(c.layers, {}, true));
            }
            if (!cap.qkLayers.empty()) {
                controls.insert(ck::kCaptureQk, layerFlags(c.layers, cap.qkLayers, false));
            }
            if (cap.allStats || !cap.statsLayers.empty()) {
                controls.insert(ck::kCaptureStats, layerFlags(c.layers, cap.statsLayers, cap.allStats) *
                                                       (cap.statsFirstMassOnly ? 2.0 : 1.0));
            }
            if (cap.hidden) {
                controls.insert(ck::kCaptureHidden, torch::ones({1}));
            }
            if (cap.lastLogitsOnly) {
                controls.insert(ck::kLastLogitsOnly, torch::ones({1}));
            }
            // Layer by layer through the archive's own methods (forward() chains the same three), so the
            // request can be cancelled and report progress between layers.
            c10::Dict<std::string, at::Tensor> dict;
            auto begin = m_impl->module.get_method("embed_input")({ids, controls}).toTuple();
            at::Tensor x = begin->elements()[0].toTensor();
            const at::Tensor mask = begin->elements()[1].toTensor();
            const at::Tensor rope = begin->elements()[2].toTensor();
            auto get = [&](const std::string &key) -> at::Tensor {
                auto it = dict.find(key);
                return it == dict.end() ? at::Tensor() : it->value();
            };
            std::vector<bool> hooked(static_cast<size_t>(c.layers), false);
            if (request.layerHook) {
                for (int l : cap.qkLayers) {
                    if (l >= 0 && l < c.layers) {
                        hooked[static_cast<size_t>(l)] = true;
                    }
                }
                for (int l : cap.statsLayers) {
                    if (l >= 0 && l < c.layers) {
                        hooked[static_cast<size_t>(l)] = true;
                    }
                }
                if (cap.allStats) {
                    hooked.assign(hooked.size(), true);
                }
            }
            auto block = m_impl->module.get_method("run_block");
            for (int64_t l = 0; l < c.layers; ++l) {
                if (cancel && cancel->isCancelled()) {
                    return makeError(ErrorCode::Cancelled, "forward pass cancelled");
                }
                if (progress && !progress(static_cast<double>(l) / static_cast<double>(c.layers),
                                          "layer " + std::to_string(l + 1) + " of " + std::to_string(c.layers))) {
                    return makeError(ErrorCode::Cancelled, "forward pass cancelled");
                }
                x = block({l, x, mask, rope, controls, dict}).toTensor();
                if (hooked[static_cast<size_t>(l)]) {
                    const std::string n = std::to_string(l);
                    LayerTensors tensors{get("q." + n), get("k." + n), get("vnorm." + n), get("stats." + n),
                                         get("colstats." + n)};
                    for (const char *key : {"q.", "k.", "stats.", "colstats."}) {
                        (void)dict.erase(key + n);
                    }
                    if (auto st = request.layerHook(l, tensors); !st) {
                        return st.error();
                    }
                }
            }
            m_impl->module.get_method("finish")({x, controls, dict});
            if (progress) {
                progress(1.0, "done");
            }
            result.logits = toFloatArray(get("logits"));
            if (cap.allAttention || !cap.attentionLayers.empty()) {
                result.attention.resize(static_cast<size_t>(c.layers));
                for (int64_t l = 0; l < c.layers; ++l) {
                    if (auto a = get("attn." + std::to_string(l)); a.defined()) {
                        result.attention[static_cast<size_t>(l)] = toFloatArray(a);
                    }
                    if (auto s = get("sink_p." + std::to_string(l)); s.defined()) {
                        result.sinkShare.resize(static_cast<size_t>(c.layers));
                        result.sinkShare[static_cast<size_t>(l)] = toFloatArray(s);
                    }
                }
            }
            auto stackLayers = [&](const std::string &prefix) {
                std::vector<at::Tensor> parts;
                for (int64_t l = 0; l < c.layers; ++l) {
                    parts.push_back(get(prefix + std::to_string(l)));
                }
                return toFloatArray(torch::stack(parts));
            };
            if (cap.hidden) {
                result.hidden = stackLayers("hidden.");
            }
            if (cap.valueNorms) {
                result.valueNorms = stackLayers("vnorm.");
            }
            if (cap.allStats || !cap.statsLayers.empty()) {
                result.attentionStats.resize(static_cast<size_t>(c.layers));
                for (int64_t l = 0; l < c.layers; ++l) {
                    const std::string n = std::to_string(l);
                    result.attentionStats[static_cast<size_t>(l)] =
                        passStatsOf(get("stats." + n), get("colstats." + n));
                }
            }
            for (int l : cap.qkLayers) {
                if (auto q = get("q." + std::to_string(l)); q.defined()) {
                    result.queries[l] = toFloatArray(q);
                    result.keys[l] = toFloatArray(get("k." + std::to_string(l)));
                }
            }
        }
        result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        return result;
    });
}

Result<std::vector<int64_t>> Model::generate(const std::vector<int64_t> &prompt, const GenerateOptions &options,
                                             const std::function<void(int64_t)> &onToken,
                                             const CancelToken *cancel) const
{
    if (prompt.empty()) {
        return makeError(ErrorCode::InvalidArgument, "no tokens to continue (empty prompt)");
    }
    const auto &c = m_info.config;
    const int64_t budget =
        c.contextLength > 0 ? c.contextLength - static_cast<int64_t>(prompt.size()) : options.maxNewTokens;
    if (budget < 0) {
        return makeError(ErrorCode::InvalidArgument, "the prompt has " + std::to_string(prompt.size()) +
                                                         " tokens; the model's context is " +
                                                         std::to_string(c.contextLength));
    }
    const int maxNew = static_cast<int>(std::min<int64_t>(options.maxNewTokens, budget));
    if (auto fits = checkMemory(estimateGenerate(c, static_cast<int64_t>(prompt.size()), maxNew, hasAttentionEngine()),
                                "continuing " + std::to_string(prompt.size()) + " tokens", kMemoryWayOut);
        !fits) {
        return fits.error();
    }
    std::mt19937_64 rng(options.seed);
    auto pick = [&](const at::Tensor &row) -> int64_t {
        if (options.temperature <= 0) {
            return row.argmax().item<int64_t>();
        }
        auto p = torch::softmax(row.to(torch::kDouble) / options.temperature, 0).contiguous();
        std::uniform_real_distribution<double> u(0.0, 1.0);
        double r = u(rng), acc = 0;
        const double *pp = p.data_ptr<double>();
        for (int64_t i = 0; i < p.numel(); ++i) {
            acc += pp[i];
            if (r < acc) {
                return i;
            }
        }
        return p.numel() - 1;
    };

    if (!hasContract()) {
        // Generic modules have no cache door: rerun the whole sequence per token.
        std::vector<int64_t> seq = prompt, generated;
        for (int i = 0; i < maxNew; ++i) {
            if (cancel && cancel->isCancelled()) {
                return makeError(ErrorCode::Cancelled, "generation cancelled");
            }
            auto r = forward(ForwardRequest{.tokens = seq, .capture = {.lastLogitsOnly = true}});
            if (!r) {
                return r.error();
            }
            const int64_t next = pick(fromFloatArray(r->logits).view(-1));
            generated.push_back(next);
            seq.push_back(next);
            if (onToken) {
                onToken(next);
            }
            if (options.stopAtEos && m_tokenizer && m_tokenizer->data().eosId && next == *m_tokenizer->data().eosId) {
                break;
            }
        }
        return generated;
    }

    return guardTorch(m_info.path, [&]() -> Result<std::vector<int64_t>> {
        c10::InferenceMode guard;
        std::vector<int64_t> generated;
        c10::Dict<std::string, at::Tensor> controls;
        controls.insert(ck::kReturnCache, torch::ones({1}));
        controls.insert(ck::kLastLogitsOnly, torch::ones({1}));
        auto ids = torch::tensor(at::ArrayRef<int64_t>(prompt), torch::kLong).to(m_impl->device);
        for (int i = 0; i < maxNew; ++i) {
            if (cancel && cancel->isCancelled()) {
                return makeError(ErrorCode::Cancelled, "generation cancelled");
            }
            auto out = m_impl->module.forward({ids, controls}).toGenericDict();
            const int64_t next = pick(out.at("logits").toTensor().view(-1));
            generated.push_back(next);
            if (onToken) {
                onToken(next);
            }
            if (options.stopAtEos && m_tokenizer && m_tokenizer->data().eosId && next == *m_tokenizer->data().eosId) {
                break;
            }
            for (int64_t l = 0; l < c.layers; ++l) {
                const std::string ls = std::to_string(l);
                controls.insert_or_assign(ck::kCacheK + ls, out.at(ck::kCacheK + ls).toTensor());
                controls.insert_or_assign(ck::kCacheV + ls, out.at(ck::kCacheV + ls).toTensor());
            }
            ids = torch::tensor({next}, torch::kLong).to(m_impl->device);
        }
        return generated;
    });
}

} // namespace sinkscope
