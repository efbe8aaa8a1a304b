// Mitigation and streaming-evaluation benchmarks on the default model (timings are reported in
// docs/performance.md, never asserted).
//
//   build/bin/mitigation_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
//
// - BM_Mitigated/<i>: one 256-token forward pass (logits) under spec i of kSpecs, controls built
//   included; spec 0 ("none") is the plain forward the others are divided by (target: within 1.2x).
// - BM_StreamCache/<C>: the StreamingLLM evaluation with a rolling cache of C tokens (4 sinks +
//   C - 4 recent) over C + 64 tokens, in tokens per second.
// - BM_StreamRecomputeStep/<C>: one steady-state step of the sliding window with re-computation: a
//   forward pass over the C context tokens for the next token's logits. tokens/s = 1 / time.
#include "bench_support.h"
#include "sinkscope/interventions/mitigation.h"
#include "sinkscope/interventions/streaming.h"

#include <benchmark/benchmark.h>

using namespace sinkscope;

namespace {

const char *const kSpecs[] = {
    "none",       "mask-sink",       "streaming:sinks=4,window=124", "act", "zerotune:gamma=0.5", "softmax1",
    "value-zero", "resid:mode=zero", "head-zero:heads=L5",
};

void BM_Mitigated(benchmark::State &state)
{
    auto model = bench::defaultModel();
    const char *text = kSpecs[state.range(0)];
    state.SetLabel(text);
    const auto spec = parseMitigation(text);
    if (!spec) {
        state.SkipWithError(spec.error().message.c_str());
        return;
    }
    const auto tokens = bench::syntheticTokens(256, model->config().vocabSize);
    for (auto _ : state) {
        auto controls = buildControls(*model, *spec, tokens);
        if (!controls) {
            state.SkipWithError(controls.error().message.c_str());
            return;
        }
        ForwardRequest request{.tokens = tokens, .controls = std::move(controls).value()};
        auto r = model->forward(request);
        if (!r) {
            state.SkipWithError(r.error().message.c_str());
            return;
        }
        benchmark::DoNotOptimize(r->logits.data.data());
    }
}

void BM_StreamCache(benchmark::State &state)
{
    auto model = bench::defaultModel();
    const int cache = static_cast<int>(state.range(0));
    auto evaluator = StreamingEvaluator::create(model);
    if (!evaluator) {
        state.SkipWithError(evaluator.error().message.c_str());
        return;
    }
    const auto tokens = bench::syntheticTokens(cache + 64, model->config().vocabSize);
    StreamingOptions options{.mode = StreamingMode::Cache, .sinks = 4, .window = cache - 4};
    double rate = 0;
    for (auto _ : state) {
        auto r = (*evaluator)->run(tokens, options);
        if (!r) {
            state.SkipWithError(r.error().message.c_str());
            return;
        }
        rate = r->tokensPerSecond;
    }
    state.counters["tokens_per_s"] = rate;
}

void BM_StreamRecomputeStep(benchmark::State &state)
{
    auto model = bench::defaultModel();
    const int64_t cache = state.range(0);
    ForwardRequest request{.tokens = bench::syntheticTokens(cache, model->config().vocabSize)};
    request.capture.lastLogitsOnly = true;
    for (auto _ : state) {
        auto r = model->forward(request);
        if (!r) {
            state.SkipWithError(r.error().message.c_str());
            return;
        }
        benchmark::DoNotOptimize(r->logits.data.data());
    }
}

} // namespace

BENCHMARK(BM_Mitigated)->DenseRange(0, int(std::size(kSpecs)) - 1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_StreamCache)->Arg(256)->Arg(1024)->Iterations(1)->Unit(benchmark::kSecond)->UseRealTime();
BENCHMARK(BM_StreamRecomputeStep)->Arg(256)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
