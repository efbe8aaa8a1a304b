#include "sinkscope/interventions/streaming.h"
#include "sinkscope/runtime/memory.h"

#include "runtime/runtime_internal.h"
#include "sinkscope/model/control_keys.h"
#include "torch_util.h"

#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/script.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

namespace sinkscope {

namespace ck = control_keys;

using detail::guardTorch;

namespace {

// " (ids 198,198,198,198)" for substituted sinks, else empty.
std::string substitutedLabel(const std::vector<int64_t> &ids)
{
    if (ids.empty()) {
        return {};
    }
    std::string text = " (ids ";
    for (size_t i = 0; i < ids.size(); ++i) {
        text += (i > 0 ? "," : "") + std::to_string(ids[i]);
    }
    return text + ")";
}

} // namespace

std::string StreamingOptions::label() const
{
    switch (mode) {
    case StreamingMode::Dense:
        return "dense";
    case StreamingMode::Cache:
        return (sinks == 0 ? "window " : "sinks ") + std::to_string(sinks) + "+" + std::to_string(window) +
               substitutedLabel(sinkTokens);
    case StreamingMode::Recompute:
        return "recompute " + std::to_string(sinks) + "+" + std::to_string(window) + substitutedLabel(sinkTokens);
    }
    return {};
}

double perplexityOnceFull(const StreamingResult &result)
{
    const StreamingOptions &o = result.options;
    const int64_t from = o.mode == StreamingMode::Dense ? 0 : int64_t(o.sinks) + int64_t(o.window);
    double sum = 0;
    int64_t count = 0;
    for (size_t i = static_cast<size_t>(std::max<int64_t>(from - 1, 0)); i < result.nll.size(); ++i) {
        if (std::isfinite(result.nll[i])) {
            sum += result.nll[i];
            ++count;
        }
    }
    return count > 0 ? std::exp(sum / static_cast<double>(count)) : std::numeric_limits<double>::quiet_NaN();
}

NllCurve trailingMeanNll(const StreamingResult &result, size_t span)
{
    NllCurve curve;
    curve.span = std::max<size_t>(span, 1);
    const std::vector<float> &nll = result.nll;
    const size_t first = std::min(curve.span, nll.size());
    double sum = 0;
    size_t count = 0;
    for (size_t i = 0; i < nll.size(); ++i) {
        if (std::isfinite(nll[i])) {
            sum += nll[i];
            ++count;
        }
        if (i >= curve.span && std::isfinite(nll[i - curve.span])) {
            sum -= nll[i - curve.span];
            --count;
        }
        if (i + 1 >= first && count > 0) {
            curve.position.push_back(static_cast<double>(i + 1));
            curve.nll.push_back(sum / static_cast<double>(count));
        }
    }
    return curve;
}

size_t nllCurveSpan(size_t predictions)
{
    constexpr size_t kLongSpan = 128, kShortest = 4;
    return std::clamp(predictions / 8, kShortest, kLongSpan);
}

std::vector<StreamingOptions> cacheComparison(int cache)
{
    const int sinks = std::min(kComparisonSinks, cache - 1);
    return {{.mode = StreamingMode::Dense, .sinks = 0, .window = 0},
            {.mode = StreamingMode::Cache, .sinks = 0, .window = cache},
            {.mode = StreamingMode::Cache, .sinks = sinks, .window = cache - sinks}};
}

std::vector<StreamingOptions> standardStreamingSweep(int cache)
{
    std::vector<StreamingOptions> out;
    out.push_back({.mode = StreamingMode::Dense, .sinks = 0, .window = 0});
    for (int s : {0, 1, 2, 4, 8}) {
        if (s < cache) {
            out.push_back({.mode = StreamingMode::Cache, .sinks = s, .window = cache - s});
        }
    }
    out.push_back({.mode = StreamingMode::Recompute, .sinks = 0, .window = cache});
    return out;
}

struct StreamingEvaluator::Impl {
    std::shared_ptr<const Model> model;
    // A second handle on the same archive: Model::forward hands back no cache tensors, and the per-token
    // loop must keep them as tensors between steps (no FloatArray round trip).
    torch::jit::Module module;
    torch::Device device{torch::kCPU};
};

StreamingEvaluator::StreamingEvaluator() = default;
StreamingEvaluator::~StreamingEvaluator() = default;

Result<std::unique_ptr<StreamingEvaluator>> StreamingEvaluator::create(std::shared_ptr<const Model> model)
{
    if (!model || !model->hasContract()) {
        return makeError(ErrorCode::Unsupported,
                         (model ? model->info().path + ": " : std::string()) +
                             "streaming evaluation needs a SinkScope archive (a key/value cache)");
    }
    detail::ensureRuntimeConfigured();
    std::unique_ptr<StreamingEvaluator> e(new StreamingEvaluator());
    e->m_impl = std::make_unique<Impl>();
    e->m_impl->model = model;
    auto loaded = guardTorch(model->info().path, [&]() -> Status {
        e->m_impl->device = torch::Device(model->info().device);
        e->m_impl->module = torch::jit::load(model->info().path, e->m_impl->device);
        e->m_impl->module.eval();
        return Ok{};
    });
    if (!loaded) {
        return loaded.error();
    }
    return e;
}

Result<StreamingResult> StreamingEvaluator::run(const std::vector<int64_t> &allTokens, const StreamingOptions &options,
                                                const CancelToken *cancel, const ProgressCallback &progress)
{
    const ModelConfig &c = m_impl->model->config();
    std::vector<int64_t> tokens = allTokens;
    if (options.maxTokens > 0 && static_cast<int64_t>(tokens.size()) > options.maxTokens) {
        tokens.resize(static_cast<size_t>(options.maxTokens));
    }
    const auto n = static_cast<int64_t>(tokens.size());
    if (n < 2) {
        return makeError(ErrorCode::InvalidArgument, "streaming evaluation needs at least two tokens");
    }
    for (int64_t id : tokens) {
        if (id < 0 || id >= c.vocabSize) {
            return makeError(ErrorCode::InvalidArgument,
                             "token id " + std::to_string(id) + " is outside the vocabulary");
        }
    }
    const bool dense = options.mode == StreamingMode::Dense;
    if (!dense && (options.sinks < 0 || options.window < 1)) {
        return makeError(ErrorCode::InvalidArgument,
                         "streaming evaluation: the window must be at least 1 and sinks at least 0");
    }
    if (!options.sinkTokens.empty()) {
        if (dense || static_cast<int64_t>(options.sinkTokens.size()) != options.sinks) {
            return makeError(ErrorCode::InvalidArgument,
                             "streaming evaluation: " + std::to_string(options.sinkTokens.size()) +
                                 " substitute sink tokens for " +
                                 (dense ? std::string("dense decoding") : std::to_string(options.sinks) + " sinks") +
                                 " (one per sink, with a cache)");
        }
        if (n <= options.sinks) {
            return makeError(ErrorCode::InvalidArgument, "streaming evaluation: the text has no token after the " +
                                                             std::to_string(options.sinks) + " substituted sinks");
        }
        for (size_t i = 0; i < options.sinkTokens.size(); ++i) {
            const int64_t id = options.sinkTokens[i];
            if (id < 0 || id >= c.vocabSize) {
                return makeError(ErrorCode::InvalidArgument,
                                 "substitute sink token id " + std::to_string(id) + " is outside the vocabulary");
            }
            tokens[i] = id;
        }
    }
    // Targets before this position are replaced sinks, not the text: their NLL is NaN.
    const int64_t firstScored = static_cast<int64_t>(options.sinkTokens.size());
    const int64_t capacity = dense ? n : static_cast<int64_t>(options.sinks) + options.window;
    if (c.architecture == Architecture::Gpt2 && c.contextLength > 0 && std::min(capacity, n) > c.contextLength) {
        return makeError(ErrorCode::InvalidArgument,
                         "GPT-2 models have learned positions up to " + std::to_string(c.contextLength) +
                             "; a cache of " + std::to_string(std::min(capacity, n)) + " tokens goes past them");
    }
    // The recompute mode's longest pass, or a cache of `capacity` positions (sinkscope/runtime/memory.h).
    const int64_t window = std::min(capacity, n);
    if (auto fits = checkMemory(options.mode == StreamingMode::Recompute
                                    ? estimateForward(c, window, CaptureOptions{.lastLogitsOnly = true},
                                                      m_impl->model->hasAttentionEngine())
                                    : estimateGenerate(c, 1, window, m_impl->model->hasAttentionEngine()),
                                "streaming evaluation of " + std::to_string(n) + " tokens",
                                "use a shorter text or a smaller cache");
        !fits) {
        return fits.error();
    }
    return guardTorch(m_impl->model->info().path, [&]() -> Result<StreamingResult> {
        c10::InferenceMode guard;
        // The cache grows or rolls every step, so the profiling executor would keep re-specialising the
        // graph for new shapes; the unoptimised interpreter runs the same ops without that churn.
        torch::jit::GraphOptimizerEnabledGuard plainInterpreter(false);
        StreamingResult result;
        result.options = options;
        result.tokens = n;
        result.nll.reserve(static_cast<size_t>(n - 1));
        const auto start = std::chrono::steady_clock::now();
        auto &module = m_impl->module;
        const auto device = m_impl->device;
        auto nllOf = [&](const at::Tensor &logits, int64_t next) {
            const auto logp = torch::log_softmax(logits.reshape(-1).to(torch::kDouble), 0);
            return static_cast<float>(-logp[next].item<double>());
        };
        c10::Dict<std::string, at::Tensor> controls;
        controls.insert(ck::kLastLogitsOnly, torch::ones({1}));
        std::vector<at::Tensor> keys(static_cast<size_t>(c.layers)), values(static_cast<size_t>(c.layers));
        if (options.mode != StreamingMode::Recompute) {
            controls.insert(ck::kReturnCache, torch::ones({1}));
        }
        const int64_t sinks = options.sinks, recent = options.window;
        for (int64_t i = 0; i + 1 < n; ++i) {
            if (cancel && cancel->isCancelled()) {
                return makeError(ErrorCode::Cancelled, "streaming evaluation cancelled");
            }
            if (progress && (i % 32) == 0 &&
                !progress(static_cast<double>(i) / static_cast<double>(n - 1), options.label())) {
                return makeError(ErrorCode::Cancelled, "streaming evaluation cancelled");
            }
            at::Tensor logits;
            if (options.mode == StreamingMode::Recompute) {
                std::vector<int64_t> context;
                if (i + 1 <= capacity) {
                    context.assign(tokens.begin(), tokens.begin() + i + 1);
                } else {
                    context.assign(tokens.begin(), tokens.begin() + sinks);
                    context.insert(context.end(), tokens.begin() + (i + 1 - recent), tokens.begin() + i + 1);
                }
                auto ids = torch::tensor(at::ArrayRef<int64_t>(context), torch::kLong).to(device);
                auto out = module.forward({ids, controls}).toGenericDict();
                logits = out.at("logits").toTensor();
            } else {
                auto ids = torch::tensor({tokens[static_cast<size_t>(i)]}, torch::kLong).to(device);
                auto out = module.forward({ids, controls}).toGenericDict();
                logits = out.at("logits").toTensor();
                for (int64_t l = 0; l < c.layers; ++l) {
                    const std::string ls = std::to_string(l);
                    at::Tensor k = out.at(ck::kCacheK + ls).toTensor(), v = out.at(ck::kCacheV + ls).toTensor();
                    const int64_t len = k.size(1);
                    // Leave room for the next token: it then sees `capacity` keys, itself included.
                    if (!dense && len > capacity - 1) {
                        const int64_t keepRecent = capacity - 1 - sinks;
                        k = torch::cat({k.narrow(1, 0, sinks), k.narrow(1, len - keepRecent, keepRecent)}, 1);
                        v = torch::cat({v.narrow(1, 0, sinks), v.narrow(1, len - keepRecent, keepRecent)}, 1);
                    }
                    controls.insert_or_assign(ck::kCacheK + ls, k);
                    controls.insert_or_assign(ck::kCacheV + ls, v);
                }
            }
            result.nll.push_back(i + 1 < firstScored ? std::numeric_limits<float>::quiet_NaN()
                                                     : nllOf(logits, tokens[static_cast<size_t>(i + 1)]));
        }
        result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        double sum = 0;
        int64_t scored = 0;
        for (float v : result.nll) {
            if (!std::isnan(v)) { // a replaced sink; an infinite NLL still counts
                sum += v;
                ++scored;
            }
        }
        result.meanNll = sum / static_cast<double>(scored);
        result.perplexity = std::exp(result.meanNll);
        result.tokensPerSecond = result.seconds > 0 ? static_cast<double>(n - 1) / result.seconds : 0;
        if (progress) {
            progress(1.0, options.label());
        }
        return result;
    });
}

} // namespace sinkscope
