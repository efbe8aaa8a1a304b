// Sink-metric benchmarks on the default model (docs/metrics.md, "Measured"). Timings are reported, never
// asserted.
//
//   build/bin/metrics_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
//
// For T = 256, 1024, 4096 tokens:
// - BM_Metrics<path>: computeMetrics() for all layers and heads from a pass captured for that path
//   (materialised: attention of every layer; streaming: post-RoPE q/k of every layer; both also hidden
//   states and value norms). Counters: forward_s (the plain forward pass, last logits only, timed next
//   to the metrics), metrics_over_forward (metrics time / forward_s),
//   capture_forward_s (the forward pass with that capture), captured_MiB (the arrays it returned),
//   peak_MiB (the process's peak resident memory during capture + metrics, above what it held before)
//   and metrics_peak_MiB (the peak during computeMetrics alone, above what the captured pass holds);
// - BM_MaterializedOneLayer/4096: the materialised path needs L x H x T^2 x 4 bytes of attention
//   (18 GiB for SmolLM2 at 4096), more than this machine has; its time is measured on one captured
//   layer and scaled by the layer count (est_all_layers_s).
#include "bench_support.h"
#include "sinkscope/analysis/metrics.h"
#include "sinkscope/model/model.h"
#include "sinkscope/runtime/paths.h"
#include "sinkscope/runtime/runtime.h"

#include <benchmark/benchmark.h>
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <string>

using namespace sinkscope;

namespace {

using bench::defaultModel;

std::vector<int64_t> tokens(int64_t n, int64_t vocab)
{
    return bench::syntheticTokens(n, vocab);
}

// VmRSS / VmHWM of this process in MiB. Writing 5 to clear_refs resets VmHWM to the current RSS, so a
// peak can be measured per stage within one process.
double statusMiB(const std::string &field)
{
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(field + ":", 0) == 0) {
            return std::stod(line.substr(field.size() + 1)) / 1024.0;
        }
    }
    return 0;
}

// Returns freed heap to the system first (glibc keeps it otherwise), so that an earlier repetition's
// memory does not hide this one's peak.
void resetPeak()
{
    malloc_trim(0);
    std::ofstream("/proc/self/clear_refs") << "5";
}

double capturedMiB(const ForwardResult &r)
{
    size_t floats = r.hidden.data.size() + r.valueNorms.data.size();
    for (const auto &a : r.attention) {
        floats += a.data.size();
    }
    for (const auto &[l, q] : r.queries) {
        floats += q.data.size() + r.keys.at(l).data.size();
    }
    return static_cast<double>(floats) * 4.0 / (1024.0 * 1024.0);
}

// The plain forward pass (last logits only) on the same tokens: the reference time. Measured right
// next to the metrics it is compared with, so that load from other processes affects both alike.
double plainForwardSeconds(const Model &model, const std::vector<int64_t> &ids)
{
    auto r = model.forward(ForwardRequest{.tokens = ids, .capture = {.lastLogitsOnly = true}, .controls = {}});
    return r ? r->seconds : 0;
}

void runMetrics(benchmark::State &state, MetricsPath path)
{
    auto model = defaultModel();
    const ModelConfig &c = model->config();
    const int64_t t = state.range(0);
    const double attentionMiB = static_cast<double>(c.layers * c.heads * t * t) * 4.0 / (1024.0 * 1024.0);
    if (path == MetricsPath::Materialized && attentionMiB > 4096) {
        const std::string why = "the captured attention alone is " +
                                std::to_string(static_cast<int64_t>(attentionMiB)) +
                                " MiB (L x H x T^2 x 4 bytes); see BM_MaterializedOneLayer";
        state.SkipWithError(why.c_str());
        return;
    }
    const auto ids = tokens(t, c.vocabSize);
    // Materialised capture up to T, else q/k: exactly what analyzeTokens() picks for each path.
    const CaptureOptions capture = metricsCapture(t, c, path == MetricsPath::Materialized ? t : 0);
    MetricsOptions options;
    options.path = path;

    resetPeak();
    const double before = statusMiB("VmRSS");
    auto forward = model->forward(ForwardRequest{.tokens = ids, .capture = capture, .controls = {}});
    if (!forward) {
        state.SkipWithError(forward.error().message.c_str());
        return;
    }
    double metricsSeconds = 0;
    int64_t runs = 0;
    const double afterForward = statusMiB("VmHWM") - before;
    resetPeak();
    const double held = statusMiB("VmRSS");
    {
        auto first = computeMetrics(*forward, c, ids, options);
        if (!first) {
            state.SkipWithError(first.error().message.c_str());
            return;
        }
    }
    const double metricsPeak = statusMiB("VmHWM") - held;
    const double peak = std::max(afterForward, statusMiB("VmHWM") - before);
    for (auto _ : state) {
        auto m = computeMetrics(*forward, c, ids, options);
        benchmark::DoNotOptimize(m.ok());
        metricsSeconds += m ? (*m)->seconds : 0;
        ++runs;
    }
    const double perRun = metricsSeconds / static_cast<double>(std::max<int64_t>(runs, 1));
    const double reference = plainForwardSeconds(*model, ids);
    state.counters["metrics_s"] = perRun;
    state.counters["forward_s"] = reference;
    state.counters["metrics_over_forward"] = reference > 0 ? perRun / reference : 0;
    state.counters["capture_forward_s"] = forward->seconds;
    state.counters["captured_MiB"] = capturedMiB(*forward);
    state.counters["peak_MiB"] = peak;
    state.counters["metrics_peak_MiB"] = metricsPeak;
}

void BM_MetricsMaterialized(benchmark::State &state)
{
    runMetrics(state, MetricsPath::Materialized);
}
void BM_MetricsStreaming(benchmark::State &state)
{
    runMetrics(state, MetricsPath::Streaming);
}

void BM_MaterializedOneLayer(benchmark::State &state)
{
    auto model = defaultModel();
    const ModelConfig &c = model->config();
    const int64_t t = state.range(0);
    const int layer = static_cast<int>(c.layers / 2);
    const auto ids = tokens(t, c.vocabSize);
    auto forward = model->forward(
        ForwardRequest{.tokens = ids,
                       .capture = {.attentionLayers = {layer}, .valueNorms = true, .lastLogitsOnly = true},
                       .controls = {}});
    if (!forward) {
        state.SkipWithError(forward.error().message.c_str());
        return;
    }
    ForwardResult one;
    one.attention.push_back(std::move(forward->attention[static_cast<size_t>(layer)]));
    one.valueNorms.shape = {1, c.heads, t};
    const auto begin = forward->valueNorms.data.begin() + static_cast<std::ptrdiff_t>(layer * c.heads * t);
    one.valueNorms.data.assign(begin, begin + static_cast<std::ptrdiff_t>(c.heads * t));
    forward->valueNorms = {};
    ModelConfig oneLayer = c;
    oneLayer.layers = 1;
    MetricsOptions options;
    options.path = MetricsPath::Materialized;
    double seconds = 0;
    int64_t runs = 0;
    for (auto _ : state) {
        auto m = computeMetrics(one, oneLayer, ids, options);
        benchmark::DoNotOptimize(m.ok());
        seconds += m ? (*m)->seconds : 0;
        ++runs;
    }
    const double perLayer = seconds / static_cast<double>(std::max<int64_t>(runs, 1));
    const double reference = plainForwardSeconds(*model, ids);
    state.counters["one_layer_s"] = perLayer;
    state.counters["est_all_layers_s"] = perLayer * static_cast<double>(c.layers);
    state.counters["forward_s"] = reference;
    state.counters["est_metrics_over_forward"] =
        reference > 0 ? perLayer * static_cast<double>(c.layers) / reference : 0;
    state.counters["attention_all_layers_MiB"] =
        static_cast<double>(c.layers * c.heads * t * t) * 4.0 / (1024.0 * 1024.0);
}

} // namespace

BENCHMARK(BM_MetricsMaterialized)
    ->Arg(256)
    ->Arg(1024)
    ->Arg(4096)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_MetricsStreaming)
    ->Arg(256)
    ->Arg(1024)
    ->Arg(4096)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_MaterializedOneLayer)->Arg(4096)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

int main(int argc, char **argv)
{
    benchmark::Initialize(&argc, argv);
    std::cerr << runtimeSummary() << "\n";
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
