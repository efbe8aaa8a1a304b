// The CPU attention engine and the threads (docs/performance.md, "The attention engine" and "Threads").
//   build/bin/engine_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// BM_Attention/T/isa/threads: one layer of SmolLM2's shape (9 heads, 3 kv heads, d 64) at T tokens: the
//   fused engine with every statistic, by instruction set (0 baseline, 1 AVX2, 2 AVX-512) and thread count.
// BM_AttentionLibTorch/T: the same layer as LibTorch ops (scores, softmax, p v, then the statistics'
//   reductions over the materialised probabilities): what the archive's attention step did before.
// BM_StatsReference/T: layerAttentionStats, the statistics' CPU reference (row blocks of LibTorch ops).
// BM_Forward/T/threads/busy: a whole pass of the default model (last logits, statistics of every layer) with
//   the pool at 1 or 2 threads, with busy = 1 while a competing process spins on one core (started before
//   and stopped after the measurement), so "2 threads under contention" can be compared with 1 thread.
#include "bench_support.h"
#include "sinkscope/analysis/attention_tiles.h"
#include "sinkscope/attention/fused_attention.h"
#include "sinkscope/model/model.h"
#include "sinkscope/runtime/parallel.h"

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <optional>
#include <vector>

using namespace sinkscope;

namespace {

constexpr int64_t kHeads = 9, kKvHeads = 3, kDim = 64;

struct Layer {
    at::Tensor q, k, v;
};

Layer layerOf(int64_t t)
{
    torch::manual_seed(7);
    return {torch::randn({kHeads, t, kDim}), torch::randn({kKvHeads, t, kDim}), torch::randn({kKvHeads, t, kDim})};
}

// A process that spins on one core until stopped: the "other program" of the contention measurements.
class BusyProcess
{
public:
    BusyProcess()
    {
        m_pid = fork();
        if (m_pid == 0) {
            volatile unsigned long x = 0;
            for (;;) {
                x = x + 1;
            }
        }
    }
    ~BusyProcess()
    {
        if (m_pid > 0) {
            kill(m_pid, SIGKILL);
            waitpid(m_pid, nullptr, 0);
        }
    }
    BusyProcess(const BusyProcess &) = delete;
    BusyProcess &operator=(const BusyProcess &) = delete;

private:
    pid_t m_pid = -1;
};

void BM_Attention(benchmark::State &state)
{
    const int64_t t = state.range(0);
    const auto isa = static_cast<AttentionIsa>(state.range(1));
    if (isa > supportedAttentionIsa()) {
        state.SkipWithError("this CPU lacks the instruction set");
        return;
    }
    const int before = parallelThreads();
    setParallelThreads(static_cast<int>(state.range(2)));
    setAttentionIsa(isa);
    const Layer l = layerOf(t);
    FusedAttentionInput in;
    in.q = l.q.data_ptr<float>();
    in.k = l.k.data_ptr<float>();
    in.v = l.v.data_ptr<float>();
    in.heads = kHeads;
    in.kvHeads = kKvHeads;
    in.queries = in.keys = t;
    in.headDim = in.valueDim = kDim;
    std::vector<float> out(static_cast<size_t>(t * kHeads * kDim)), rows(static_cast<size_t>(5 * kHeads * t));
    std::vector<double> cols(static_cast<size_t>(2 * kHeads * t));
    FusedAttentionOutput o;
    o.out = out.data();
    const size_t n = static_cast<size_t>(kHeads * t);
    o.sinkMass = rows.data();
    o.firstMass = rows.data() + n;
    o.rowPlogp = rows.data() + 2 * n;
    o.rowMax = rows.data() + 3 * n;
    o.rowWeighted = rows.data() + 4 * n;
    o.received = cols.data();
    o.receivedPlogp = cols.data() + n;
    for (auto _ : state) {
        benchmark::DoNotOptimize(fusedAttention(in, o).ok());
    }
    // q k^T and p v over the causal half.
    state.counters["GFLOP/s"] =
        benchmark::Counter(4.0 * kHeads * kDim * static_cast<double>(t) * (t + 1) / 2,
                           benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
    setAttentionIsa(std::nullopt);
    setParallelThreads(before);
}

void BM_AttentionLibTorch(benchmark::State &state)
{
    const int64_t t = state.range(0);
    c10::InferenceMode guard;
    const Layer l = layerOf(t);
    const at::Tensor k = l.k.repeat_interleave(kHeads / kKvHeads, 0), v = l.v.repeat_interleave(kHeads / kKvHeads, 0);
    const at::Tensor mask = torch::full({t, t}, -INFINITY).triu(1);
    for (auto _ : state) {
        const at::Tensor p = torch::softmax(torch::matmul(l.q, k.transpose(1, 2)) / 8.0 + mask, 2);
        const at::Tensor ctx = torch::matmul(p, v);
        const at::Tensor plogp = (p * p.clamp_min(1e-30).log());
        benchmark::DoNotOptimize(ctx.data_ptr<float>());
        benchmark::DoNotOptimize(plogp.sum(2).data_ptr<float>());
        benchmark::DoNotOptimize(plogp.sum(1).data_ptr<float>());
        benchmark::DoNotOptimize(p.sum(1).data_ptr<float>());
        benchmark::DoNotOptimize(std::get<0>(p.max(2)).data_ptr<float>());
    }
}

void BM_StatsReference(benchmark::State &state)
{
    const int64_t t = state.range(0);
    const Layer l = layerOf(t);
    LayerAttentionInput in;
    in.q = l.q.data_ptr<float>();
    in.k = l.k.data_ptr<float>();
    in.heads = kHeads;
    in.kvHeads = kKvHeads;
    in.tokens = t;
    in.headDim = kDim;
    for (auto _ : state) {
        benchmark::DoNotOptimize(layerAttentionStats(in).ok());
    }
}

void BM_Forward(benchmark::State &state)
{
    const int64_t t = state.range(0);
    const int before = parallelThreads();
    setParallelThreads(static_cast<int>(state.range(1)));
    auto model = bench::defaultModel();
    ForwardRequest req{.tokens = bench::syntheticTokens(t, model->config().vocabSize),
                       .capture = CaptureOptions{.lastLogitsOnly = true, .allStats = true}};
    (void)model->forward(req); // warm: pool threads, page faults
    std::optional<BusyProcess> busy;
    if (state.range(2) != 0) {
        busy.emplace();
    }
    for (auto _ : state) {
        auto r = model->forward(req);
        benchmark::DoNotOptimize(r.ok());
    }
    busy.reset();
    setParallelThreads(before);
}

} // namespace

BENCHMARK(BM_Attention)
    ->ArgsProduct({{256, 1024, 4096}, {0, 1, 2}, {1, 2}})
    ->ArgNames({"T", "isa", "threads"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_AttentionLibTorch)->Arg(256)->Arg(1024)->Arg(4096)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_StatsReference)->Arg(256)->Arg(1024)->Arg(4096)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Forward)
    ->ArgsProduct({{256, 1024}, {1, 2}, {0, 1}})
    ->ArgNames({"T", "threads", "busy"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

BENCHMARK_MAIN();
