// The data behind a lesson step's handout figure: what the window's tab for the step shows, computed on
// the lesson's model through the same LiveEvaluator (and caches) that gave the step's numbers.
#include "lesson_handout.h"

#include "sinkscope/interventions/effects.h"

#include <cmath>
#include <cstdio>
#include <limits>

namespace sinkscope::cli {

namespace {

using lessons::LessonState;

HandoutFigure unavailable(const std::string &why)
{
    HandoutFigure f;
    f.title = "No figure: " + why;
    return f;
}

HandoutFigure headMetricFigure(std::shared_ptr<const SinkMetrics> metrics, const LessonState &state)
{
    HandoutFigure f;
    f.kind = HandoutFigure::Kind::HeadMetric;
    f.metric = state.metric.value_or("first_token_mass");
    f.title = f.metric + " per layer and head (" + std::to_string(metrics->length) + " tokens)";
    f.metrics = std::move(metrics);
    return f;
}

// The streaming tab: NLL against position for the tab's comparison (dense, window only, sinks + window) at
// the step's total cache.
HandoutFigure streamingFigure(lessons::LiveEvaluator &evaluator, const LessonState &state)
{
    const int cache = state.streamingCache.value_or(kComparisonCache);
    HandoutFigure f;
    f.kind = HandoutFigure::Kind::Streaming;
    f.cache = cache;
    f.title = "NLL against position, KV cache of " + std::to_string(cache) + " tokens";
    for (const StreamingOptions &options : cacheComparison(cache)) {
        auto r = evaluator.streaming(state, options);
        if (!r) {
            return unavailable(r.error().message);
        }
        f.streams.push_back(r.value());
        char ppl[64];
        std::snprintf(ppl, sizeof ppl, "%s %s %.2f", f.streams.size() == 1 ? ": perplexity" : ",",
                      r.value()->options.label().c_str(), r.value()->perplexity);
        f.title += ppl;
    }
    return f;
}

// The mitigations tab: how far the mitigated next-token distribution moves from the baseline's at every
// position of the prompt.
HandoutFigure mitigationFigure(lessons::LiveEvaluator &evaluator, const LessonState &state)
{
    const std::string spec = *state.mitigation;
    auto effects = evaluator.effects(state, spec);
    if (!effects) {
        return unavailable(effects.error().message);
    }
    const MitigationEffects &e = *effects.value();
    HandoutFigure f;
    f.kind = HandoutFigure::Kind::Lines;
    char title[160];
    std::snprintf(title, sizeof title, "%s against the baseline: perplexity %.2f -> %.2f", e.spec.c_str(),
                  e.baselinePerplexity, e.mitigatedPerplexity);
    f.title = title;
    f.xLabel = "position";
    f.yLabel = "KL(baseline || mitigated), nats";
    f.names = {"next-token KL"};
    std::vector<double> x, y;
    for (size_t i = 0; i < e.positionKl.size(); ++i) {
        x.push_back(double(i));
        y.push_back(e.positionKl[i]);
    }
    f.x.push_back(std::move(x));
    f.y.push_back(std::move(y));
    return f;
}

} // namespace

HandoutFigure lessonFigure(lessons::LiveEvaluator &evaluator, const lessons::Lesson &lesson, size_t step)
{
    const LessonState state = lesson.stateAt(step);
    const std::string tab = state.tab.value_or("overview");
    HandoutFigure figure;
    if (tab == "streaming") {
        figure = streamingFigure(evaluator, state);
    } else if (tab == "mitigations" && state.mitigation && *state.mitigation != "none") {
        figure = mitigationFigure(evaluator, state);
    } else {
        auto analysis = evaluator.analysis(state);
        if (!analysis) {
            return unavailable(analysis.error().message);
        }
        const std::shared_ptr<const SinkMetrics> metrics = analysis.value();
        const int64_t layer =
            std::clamp<int64_t>(state.layer.value_or(0), 0, std::max<int64_t>(metrics->layers - 1, 0));
        if (tab == "head") {
            const int64_t head =
                std::clamp<int64_t>(state.head.value_or(0), 0, std::max<int64_t>(metrics->heads - 1, 0));
            ForwardRequest request;
            request.tokens = metrics->tokens;
            request.capture.attentionLayers = {int(layer)};
            request.capture.lastLogitsOnly = true;
            auto pass = evaluator.model().forward(request);
            if (!pass) {
                return unavailable(pass.error().message);
            }
            if (size_t(layer) >= pass->attention.size() || pass->attention[size_t(layer)].empty()) {
                return unavailable("layer " + std::to_string(layer) + "'s attention was not captured");
            }
            figure.kind = HandoutFigure::Kind::HeadMap;
            figure.attention = std::move(pass->attention[size_t(layer)]);
            figure.layer = layer;
            figure.head = head;
            figure.logScale = state.scale.value_or("linear") == "log";
            figure.clampPercentile = state.clamp.value_or(0);
            figure.withoutSink = state.withoutSink.value_or(false);
            figure.zoom = state.zoom.value_or(std::vector<int64_t>{});
            figure.slidingWindow = metrics->config.windowOf(layer);
            figure.metrics = metrics;
            figure.title = "Attention of layer " + std::to_string(layer) + ", head " + std::to_string(head);
        } else if (tab == "tokens") {
            figure.kind = HandoutFigure::Kind::Received;
            figure.metrics = metrics;
            figure.layer = state.layer ? layer : -1;
            figure.title = state.layer ? "Attention received per token, layer " + std::to_string(layer)
                                       : "Attention received per token, mean over layers";
        } else {
            figure = headMetricFigure(metrics, state);
        }
    }
    figure.colours = state.colours.value_or("");
    return figure;
}

} // namespace sinkscope::cli
