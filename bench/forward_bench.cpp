// Forward-pass benchmarks on the default model (not tests: timings are reported, never asserted).
//
//   build/bin/forward_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// Reports: the fp32 matmul rate of this LibTorch (GFLOP/s), the forward pass at 64/256/1024 tokens
// with full capture (attention of every layer and head, residual stream, value norms) and without
// (logits only), the BLAS-bound time 2 x parameters x tokens / rate, and peak RSS. The thread
// settings sweep (BM_ThreadSettings) is what defaultThreadSettings() was chosen from.
#include "bench_support.h"
#include "sinkscope/model/model.h"
#include "sinkscope/runtime/paths.h"
#include "sinkscope/runtime/runtime.h"

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <sys/resource.h>

#include <iostream>

using namespace sinkscope;

namespace {

using bench::defaultModel;

std::vector<int64_t> tokens(int64_t n, int64_t vocab)
{
    return bench::syntheticTokens(n, vocab);
}

double peakRssMiB()
{
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_maxrss) / 1024.0;
}

double matmulGflops()
{
    static double rate = checkBlas(1024).gflops;
    return rate;
}

void BM_Matmul(benchmark::State &state)
{
    const int n = static_cast<int>(state.range(0));
    c10::InferenceMode guard;
    auto a = torch::randn({n, n});
    auto b = torch::randn({n, n});
    for (auto _ : state) {
        benchmark::DoNotOptimize(torch::mm(a, b));
    }
    state.counters["GFLOP/s"] =
        benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

void runForward(benchmark::State &state, bool capture)
{
    auto model = defaultModel();
    const int64_t t = state.range(0);
    ForwardRequest req{.tokens = tokens(t, model->config().vocabSize)};
    if (capture) {
        req.capture = CaptureOptions{.allAttention = true, .hidden = true, .valueNorms = true};
    }
    for (auto _ : state) {
        auto r = model->forward(req);
        if (!r) {
            state.SkipWithError(r.error().message.c_str());
            return;
        }
        benchmark::DoNotOptimize(r->logits.data.data());
    }
    const double flops = 2.0 * static_cast<double>(model->config().parameterCount) * static_cast<double>(t);
    state.counters["blas_bound_s"] = flops / (matmulGflops() * 1e9);
    state.counters["peak_rss_MiB"] = peakRssMiB();
}

void BM_ForwardLogitsOnly(benchmark::State &state)
{
    runForward(state, false);
}
void BM_ForwardFullCapture(benchmark::State &state)
{
    runForward(state, true);
}

// Arguments: torch threads, OpenBLAS threads. Forward with full capture at 256 tokens.
void BM_ThreadSettings(benchmark::State &state)
{
    const ThreadSettings before = defaultThreadSettings();
    applyThreadSettings(ThreadSettings{static_cast<int>(state.range(0)), static_cast<int>(state.range(1))});
    auto model = defaultModel();
    ForwardRequest req{.tokens = tokens(256, model->config().vocabSize),
                       .capture = CaptureOptions{.allAttention = true, .hidden = true, .valueNorms = true}};
    for (auto _ : state) {
        auto r = model->forward(req);
        benchmark::DoNotOptimize(r.ok());
    }
    applyThreadSettings(before);
}

} // namespace

BENCHMARK(BM_Matmul)->Arg(512)->Arg(1024)->Arg(2048)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ForwardLogitsOnly)->Arg(64)->Arg(256)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ForwardFullCapture)->Arg(64)->Arg(256)->Arg(1024)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ThreadSettings)
    ->ArgsProduct({{1, 2}, {1, 2}})
    ->ArgNames({"torch", "blas"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

int main(int argc, char **argv)
{
    benchmark::Initialize(&argc, argv);
    std::cerr << runtimeSummary() << "\n";
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    std::cerr << "peak RSS " << peakRssMiB() << " MiB\n";
    return 0;
}
