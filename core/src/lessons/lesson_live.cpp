// Live numbers for lessons (lesson_live.h): each quantity is computed on the model in use from the
// same core functions as the window's views (analyzeTokens, compareMitigation, StreamingEvaluator,
// runProbes), once per distinct input, and cached for the lesson's life.
#include "lesson_internal.h"

#include "sinkscope/analysis/metrics.h"
#include "sinkscope/interventions/effects.h"
#include "sinkscope/interventions/streaming.h"
#include "sinkscope/probes/probes.h"
#include "sinkscope/runtime/paths.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <sstream>

namespace fs = std::filesystem;

namespace sinkscope::lessons {

// A quantity that cannot be computed: its reason travels up as the check's "unavailable" detail.
struct Unavailable {
    std::string why;
};

struct LiveEvaluator::Impl {
    std::shared_ptr<const Model> model;
    std::map<std::vector<int64_t>, std::shared_ptr<const SinkMetrics>> analyses;
    std::map<std::vector<int64_t>, std::shared_ptr<const BaselineRun>> baselines;
    std::map<std::pair<std::vector<int64_t>, std::string>, std::shared_ptr<const MitigationEffects>> effects;
    std::map<std::pair<std::vector<int64_t>, std::string>, std::shared_ptr<const StreamingResult>> streams;
    std::map<std::string, std::shared_ptr<const ProbeRun>> probeRuns;
    std::unique_ptr<StreamingEvaluator> streaming;

    // The evaluation in progress.
    std::vector<int64_t> tokens;
    LessonState state;
    std::string lessonDir;
    const CancelToken *cancel = nullptr;

    template <typename T> static T take(Result<T> r)
    {
        if (!r.ok()) {
            if (r.error().code == ErrorCode::Cancelled) {
                throw r.error();
            }
            throw Unavailable{r.error().message};
        }
        return std::move(r.value());
    }

    const SinkMetrics &analysis()
    {
        auto &slot = analyses[tokens];
        if (!slot) {
            MetricsOptions options;
            options.cancel = cancel;
            options.perKeyInJson = false;
            slot = take(analyzeTokens(*model, tokens, options));
        }
        return *slot;
    }

    const BaselineRun &baseline()
    {
        auto &slot = baselines[tokens];
        if (!slot) {
            EffectsOptions options;
            options.continuationTokens = 0;
            options.attentionMaps = false;
            slot = std::make_shared<const BaselineRun>(take(runBaseline(*model, tokens, options, cancel)));
        }
        return *slot;
    }

    MitigationSpec spec(const std::string &text)
    {
        auto parsed = parseMitigation(text);
        if (!parsed) {
            throw Unavailable{parsed.error().message};
        }
        if (auto ok = validateMitigation(parsed.value(), *model); !ok) {
            throw Unavailable{ok.error().message};
        }
        return parsed.value();
    }

    const MitigationEffects &effect(const std::string &text)
    {
        const MitigationSpec s = spec(text);
        auto &slot = effects[{tokens, s.toString()}];
        if (!slot) {
            EffectsOptions options;
            options.continuationTokens = 0;
            options.attentionMaps = false;
            slot = std::make_shared<const MitigationEffects>(
                take(compareMitigation(*model, baseline(), s, options, cancel)));
        }
        return *slot;
    }

    double perplexity(const std::string &text)
    {
        if (text == "none") {
            const BaselineRun &b = baseline();
            if (tokens.size() < 2) {
                throw Unavailable{"a perplexity needs at least two tokens"};
            }
            return std::exp(meanNextTokenNll(b.forward.logits, tokens));
        }
        return effect(text).mitigatedPerplexity;
    }

    // "dense", "window N" or "sinks S+W" (the stream_ppl quantity's argument).
    static StreamingOptions streamingOptions(const std::string &label)
    {
        StreamingOptions options;
        int s = 0, w = 0;
        if (label == "dense") {
            options.mode = StreamingMode::Dense;
        } else if (std::sscanf(label.c_str(), "window %d", &w) == 1) {
            options.sinks = 0;
            options.window = w;
        } else if (std::sscanf(label.c_str(), "sinks %d+%d", &s, &w) == 2) {
            options.sinks = s;
            options.window = w;
        }
        return options;
    }

    const StreamingResult &stream(const StreamingOptions &options)
    {
        auto &slot = streams[std::make_pair(tokens, options.label())];
        if (!slot) {
            if (!streaming) {
                streaming = take(StreamingEvaluator::create(model));
            }
            slot = std::make_shared<const StreamingResult>(take(streaming->run(tokens, options, cancel)));
        }
        return *slot;
    }

    double streamPerplexity(const std::string &label) { return stream(streamingOptions(label)).perplexity; }

    const ProbeRun &probes(const std::string &specText)
    {
        if (!state.probes) {
            throw Unavailable{"the step names no probe set (probes: default[, category])"};
        }
        std::string set = *state.probes, category;
        if (const size_t comma = set.find(','); comma != std::string::npos) {
            category = set.substr(comma + 1);
            set = set.substr(0, comma);
            category.erase(0, category.find_first_not_of(" \t"));
            category.erase(category.find_last_not_of(" \t") + 1);
            set.erase(set.find_last_not_of(" \t") + 1);
        }
        std::string path = set == "default" ? defaultProbeSetPath() : set;
        if (set != "default" && fs::path(path).is_relative() && !lessonDir.empty()) {
            path = (fs::path(lessonDir) / path).string();
        }
        const MitigationSpec s = spec(specText);
        const std::string key = path + "\n" + category + "\n" + s.toString();
        auto &slot = probeRuns[key];
        if (!slot) {
            const ProbeSet probeSet = take(loadProbeSet(path));
            ProbeOptions options;
            options.category = category;
            slot = take(runProbes(*model, probeSet, s, options, cancel));
            if (slot->scores.empty()) {
                throw Unavailable{path + ": no probe in category '" + category + "'"};
            }
        }
        return *slot;
    }

    // The head values of a metric over the layers of `e` (finite values only).
    std::vector<double> headValues(const Expression &e)
    {
        const SinkMetrics &m = analysis();
        const HeadMetric *metric = m.headMetric(e.metric);
        if (!metric) {
            throw Unavailable{"this model gives no metric '" + e.metric + "'"};
        }
        const int64_t from = e.from.value_or(0), to = std::min<int64_t>(e.to.value_or(m.layers - 1), m.layers - 1);
        if (from >= m.layers) {
            throw Unavailable{"layer " + std::to_string(from) + " is past the model's " + std::to_string(m.layers) +
                              " layers"};
        }
        std::vector<double> out;
        for (int64_t l = from; l <= to; ++l) {
            for (int64_t h = 0; h < m.heads; ++h) {
                const double v = metric->values.data[size_t(l * m.heads + h)];
                if (std::isfinite(v)) {
                    out.push_back(v);
                }
            }
        }
        if (out.empty()) {
            throw Unavailable{"'" + e.metric + "' has no value in those layers on this prompt"};
        }
        return out;
    }

    double quantity(const Expression &e)
    {
        const std::string &n = e.name;
        if (n == "abs") {
            return std::fabs(eval(*e.args[0]));
        }
        if (n == "tokens") {
            return double(tokens.size());
        }
        if (n == "layers") {
            return double(analysis().layers);
        }
        if (n == "heads") {
            return double(analysis().heads);
        }
        if (n == "sink_fraction") {
            return analysis().sinkFraction;
        }
        if (n == "share") {
            const auto values = headValues(e);
            const auto hits = std::count_if(values.begin(), values.end(),
                                            [&](double v) { return compareValues(v, e.cmp, e.threshold); });
            return double(hits) / double(values.size());
        }
        if (n == "mean" || n == "min" || n == "max" || n == "median") {
            auto values = headValues(e);
            if (n == "mean") {
                double sum = 0;
                for (double v : values) {
                    sum += v;
                }
                return sum / double(values.size());
            }
            if (n == "min") {
                return *std::min_element(values.begin(), values.end());
            }
            if (n == "max") {
                return *std::max_element(values.begin(), values.end());
            }
            std::sort(values.begin(), values.end());
            const size_t k = values.size();
            return k % 2 ? values[k / 2] : 0.5 * (values[k / 2 - 1] + values[k / 2]);
        }
        if (n == "value") {
            const SinkMetrics &m = analysis();
            if (e.ints[0] >= m.layers || e.ints[1] >= m.heads) {
                throw Unavailable{"head " + std::to_string(e.ints[0]) + "." + std::to_string(e.ints[1]) +
                                  " is outside the model's " + std::to_string(m.layers) + " x " +
                                  std::to_string(m.heads) + " heads"};
            }
            const float v = m.head(e.metric, e.ints[0], e.ints[1]);
            if (!std::isfinite(v)) {
                throw Unavailable{"'" + e.metric + "' has no value at head " + std::to_string(e.ints[0]) + "." +
                                  std::to_string(e.ints[1])};
            }
            return v;
        }
        if (n == "first_layer") {
            const SinkMetrics &m = analysis();
            for (int64_t l = 0; l < m.layers; ++l) {
                Expression layer = e;
                layer.from = layer.to = l;
                const auto values = headValues(layer);
                double sum = 0;
                for (double v : values) {
                    sum += v;
                }
                if (compareValues(sum / double(values.size()), e.cmp, e.threshold)) {
                    return double(l);
                }
            }
            throw Unavailable{"no layer has a mean " + e.metric + " " + e.cmp + " " + formatNumber(e.threshold, "")};
        }
        if (n == "activation_ratio") {
            const SinkMetrics &m = analysis();
            if (!m.hasHidden || m.activationsByLayer.empty()) {
                throw Unavailable{"this model returns no hidden states"};
            }
            for (const LayerActivations &a : m.activationsByLayer) {
                if (a.layer == e.ints[0]) {
                    return a.ratio;
                }
            }
            throw Unavailable{"layer " + std::to_string(e.ints[0]) + " is past the model's layers"};
        }
        if (n == "massive_layer") {
            const SinkMetrics &m = analysis();
            if (!m.hasHidden) {
                throw Unavailable{"this model returns no hidden states"};
            }
            if (m.massive.empty()) {
                throw Unavailable{"no massive activation on this prompt (|h| > 100 and > 1000 x the layer's median)"};
            }
            int first = m.massive.front().layer;
            for (const MassiveActivation &a : m.massive) {
                first = std::min(first, a.layer);
            }
            return first;
        }
        if (n == "ppl") {
            return perplexity(e.argument);
        }
        if (n == "kl") {
            return effect(e.argument).nextTokenKl;
        }
        if (n == "same_top1") {
            const MitigationEffects &x = effect(e.argument);
            if (x.baselineTop.empty() || x.mitigatedTop.empty()) {
                throw Unavailable{"no next-token distribution"};
            }
            return x.baselineTop[0].id == x.mitigatedTop[0].id ? 1.0 : 0.0;
        }
        if (n == "stream_ppl") {
            return streamPerplexity(e.argument);
        }
        if (n == "probe_accuracy") {
            return probes(e.argument).overall.accuracy;
        }
        if (n == "lookback") {
            const ProbeRun &run = probes("none");
            double sum = 0;
            int64_t count = 0;
            for (const ProbeScore &s : run.scores) {
                if ((e.argument == "correct" && !s.correct) || (e.argument == "wrong" && s.correct) ||
                    s.lookback.ratio.empty()) {
                    continue;
                }
                double mean = 0;
                const auto &r = s.lookback.ratio;
                for (int64_t i = 0; i < int64_t(r.data.size()); ++i) {
                    mean += r.data[size_t(i)];
                }
                sum += mean / double(r.data.size());
                ++count;
            }
            if (count == 0) {
                throw Unavailable{"no probe was answered " + e.argument + " on this model"};
            }
            return sum / double(count);
        }
        throw Unavailable{"unknown quantity '" + n + "'"};
    }

    double eval(const Expression &e)
    {
        switch (e.kind) {
        case Expression::Kind::Number:
            return e.number;
        case Expression::Kind::Negate:
            return -eval(*e.args[0]);
        case Expression::Kind::Binary: {
            const double a = eval(*e.args[0]), b = eval(*e.args[1]);
            if (e.op == "+") {
                return a + b;
            }
            if (e.op == "-") {
                return a - b;
            }
            if (e.op == "*") {
                return a * b;
            }
            if (b == 0) {
                throw Unavailable{"division by zero in '" + e.text + "'"};
            }
            return a / b;
        }
        case Expression::Kind::Quantity:
            return quantity(e);
        case Expression::Kind::Compare:
        case Expression::Kind::Logic:
            break;
        }
        throw Unavailable{"a comparison where a number was expected"};
    }

    // A check: its truth and the numbers compared ("0.83 > 0.5").
    bool check(const Expression &e, std::string *detail)
    {
        if (e.kind == Expression::Kind::Logic) {
            std::string a, b;
            const bool left = check(*e.args[0], &a);
            const bool right = check(*e.args[1], &b);
            *detail = a + " " + e.op + " " + b;
            return e.op == "and" ? left && right : left || right;
        }
        const double a = eval(*e.args[0]), b = eval(*e.args[1]);
        *detail = formatNumber(a, "") + " " + e.op + " " + formatNumber(b, "");
        return compareValues(a, e.op, b);
    }

    static std::string formatNumber(double v, const std::string &format)
    {
        char buffer[64];
        if (format == "%") {
            std::snprintf(buffer, sizeof buffer, "%.1f%%", v * 100.0);
        } else if (format.size() == 2 && format[0] == '.') {
            std::snprintf(buffer, sizeof buffer, "%.*f", format[1] - '0', v);
        } else if (v == std::floor(v) && std::fabs(v) < 1e9) {
            std::snprintf(buffer, sizeof buffer, "%.0f", v);
        } else {
            std::snprintf(buffer, sizeof buffer, "%.3g", v);
        }
        return buffer;
    }
};

Result<std::vector<int64_t>> lessonTokens(const Model &model, const std::string &prompt, bool bos)
{
    const auto tokenizer = model.tokenizer();
    if (!tokenizer) {
        std::vector<int64_t> ids;
        std::string text = prompt;
        std::replace(text.begin(), text.end(), ',', ' ');
        std::istringstream in(text);
        for (std::string item; in >> item;) {
            char *end = nullptr;
            const long long id = std::strtoll(item.c_str(), &end, 10);
            if (*end != '\0' || id < 0) {
                return makeError(ErrorCode::InvalidArgument,
                                 "this model has no tokenizer: the prompt must be token ids (e.g. 1 2 3), not '" +
                                     item + "'");
            }
            ids.push_back(id);
        }
        if (ids.empty()) {
            return makeError(ErrorCode::InvalidArgument, "the prompt is empty");
        }
        return ids;
    }
    return model.tokenize(prompt, bos && tokenizer->data().bosId.has_value());
}

LiveEvaluator::LiveEvaluator(std::shared_ptr<const Model> model) : m_impl(std::make_unique<Impl>())
{
    m_impl->model = std::move(model);
}

LiveEvaluator::~LiveEvaluator() = default;

const Model &LiveEvaluator::model() const
{
    return *m_impl->model;
}

namespace {
// Runs `get` on the evaluator's state for `state`'s prompt, turning quantities that cannot be computed
// into errors.
template <typename T, typename F>
Result<T> withState(LiveEvaluator::Impl &impl, const LessonState &state, const std::string &lessonDir,
                    const CancelToken *cancel, F &&get)
{
    auto tokens = lessonTokens(*impl.model, state.prompt.value_or(""), state.bos.value_or(true));
    if (!tokens) {
        return tokens.error();
    }
    impl.tokens = tokens.value();
    impl.state = state;
    impl.lessonDir = lessonDir;
    impl.cancel = cancel;
    try {
        return get();
    } catch (const Unavailable &u) {
        return makeError(ErrorCode::Unsupported, u.why);
    } catch (const Error &e) {
        return e;
    }
}
} // namespace

Result<double> LiveEvaluator::value(const Expression &expression, const LessonState &state,
                                    const std::string &lessonDir, const CancelToken *cancel)
{
    return withState<double>(*m_impl, state, lessonDir, cancel, [&] { return m_impl->eval(expression); });
}

Result<std::shared_ptr<const SinkMetrics>> LiveEvaluator::analysis(const LessonState &state, const CancelToken *cancel)
{
    return withState<std::shared_ptr<const SinkMetrics>>(*m_impl, state, {}, cancel, [&] {
        m_impl->analysis();
        return m_impl->analyses.at(m_impl->tokens);
    });
}

Result<std::shared_ptr<const StreamingResult>>
LiveEvaluator::streaming(const LessonState &state, const StreamingOptions &options, const CancelToken *cancel)
{
    return withState<std::shared_ptr<const StreamingResult>>(*m_impl, state, {}, cancel, [&] {
        m_impl->stream(options);
        return m_impl->streams.at(std::make_pair(m_impl->tokens, options.label()));
    });
}

Result<std::shared_ptr<const MitigationEffects>>
LiveEvaluator::effects(const LessonState &state, const std::string &spec, const CancelToken *cancel)
{
    return withState<std::shared_ptr<const MitigationEffects>>(*m_impl, state, {}, cancel, [&] {
        m_impl->effect(spec);
        return m_impl->effects.at({m_impl->tokens, m_impl->spec(spec).toString()});
    });
}

Result<StepNumbers> LiveEvaluator::evaluate(const LessonStep &step, const LessonState &state,
                                            const std::string &lessonDir, const CancelToken *cancel,
                                            const ProgressCallback &progress)
{
    const auto start = std::chrono::steady_clock::now();
    StepNumbers out;
    auto tokens = lessonTokens(*m_impl->model, state.prompt.value_or(""), state.bos.value_or(true));
    if (!tokens) {
        return tokens.error();
    }
    out.tokens = tokens.value();
    m_impl->tokens = tokens.value();
    m_impl->state = state;
    m_impl->lessonDir = lessonDir;
    m_impl->cancel = cancel;
    auto placeholders = findPlaceholders(step.caption);
    if (!placeholders) {
        return placeholders.error();
    }
    const size_t total = placeholders->size() + (step.check.empty() ? 0 : 1);
    size_t done = 0;
    auto report = [&] {
        if (progress && !progress(total ? double(done) / double(total) : 1.0, "live numbers")) {
            throw Error{ErrorCode::Cancelled, "cancelled"};
        }
        if (cancel && cancel->isCancelled()) {
            throw Error{ErrorCode::Cancelled, "cancelled"};
        }
    };
    try {
        if (!step.check.empty()) {
            out.hasCheck = true;
            out.check.expression = step.check;
            auto parsed = parseCheck(step.check);
            if (!parsed) {
                return parsed.error();
            }
            report();
            try {
                std::string detail;
                const bool ok = m_impl->check(*parsed.value(), &detail);
                out.check.status = ok ? CheckStatus::Confirmed : CheckStatus::NotConfirmed;
                out.check.detail = detail;
            } catch (const Unavailable &u) {
                out.check.status = CheckStatus::Unavailable;
                out.check.detail = u.why;
            }
            ++done;
        }
        std::string caption;
        size_t at = 0;
        for (const Placeholder &p : placeholders.value()) {
            report();
            caption += step.caption.substr(at, p.begin - at);
            auto parsed = parseValue(p.expression);
            if (!parsed) {
                return parsed.error();
            }
            try {
                caption += Impl::formatNumber(m_impl->eval(*parsed.value()), p.format);
            } catch (const Unavailable &u) {
                caption += "n/a (" + u.why + ")";
            }
            at = p.end;
            ++done;
        }
        caption += step.caption.substr(at);
        out.caption = std::move(caption);
        report();
    } catch (const Error &e) {
        return e;
    }
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return out;
}

} // namespace sinkscope::lessons
