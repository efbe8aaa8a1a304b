// The fused attention-statistics kernel (kernels/, docs/gpu.md) on one GPU, for one SmolLM2-shaped layer
// (9 query heads, 3 kv heads, d = 64) at T = 1k .. 32k, against
//  (a) materialise-then-reduce with plain LibTorch ops on the same GPU (needs a CUDA LibTorch): per head
//      the T x T scores, causal mask, softmax, then the same statistics as column / row reductions;
//  (b) the kernel's bounds: FLOPs (2 sweeps x H x T(T+1)/2 x 2d) at the measured fp32 matmul rate
//      (TF32 off; the nominal SM x clock rate without a CUDA LibTorch) and bytes (q, k, outputs) at the
//      measured device-to-device copy bandwidth.
// Ratios come out of one run (counters of each benchmark). Exits 0 with a message without a GPU.
//
//   build/bin/kernels_bench --benchmark_counters_tabular=true [--benchmark_out=k.json --benchmark_out_format=json]
#include "sinkscope/config.h"
#include "sinkscope/kernels/attention_stats.h"

#include <benchmark/benchmark.h>
#include <cuda_runtime_api.h>

#if SINKSCOPE_HAS_CUDA_TORCH
#include <torch/cuda.h>
#include <torch/torch.h>
#endif

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <random>
#include <vector>

using namespace sinkscope;

namespace {

constexpr int kHeads = 9, kKvHeads = 3, kDim = 64;

#define BENCH_CUDA(call)                                                                                               \
    do {                                                                                                               \
        const cudaError_t e_ = (call);                                                                                 \
        if (e_ != cudaSuccess) {                                                                                       \
            std::fprintf(stderr, "%s at %s:%d: %s\n", #call, __FILE__, __LINE__, cudaGetErrorString(e_));              \
            std::exit(1);                                                                                              \
        }                                                                                                              \
    } while (0)

struct Rates {
    double flops = 0; // fp32 FLOP/s
    double bytes = 0; // HBM bytes/s
    bool measuredFlops = false;
};

Rates &rates()
{
    static Rates r = [] {
        Rates x;
        // Bandwidth: a 2 GiB device-to-device copy reads and writes every byte.
        const size_t n = size_t{2} << 30;
        void *a = nullptr, *b = nullptr;
        BENCH_CUDA(cudaMalloc(&a, n));
        BENCH_CUDA(cudaMalloc(&b, n));
        cudaEvent_t e0, e1;
        cudaEventCreate(&e0);
        cudaEventCreate(&e1);
        BENCH_CUDA(cudaMemcpy(b, a, n, cudaMemcpyDeviceToDevice));
        float best = 1e30f;
        for (int i = 0; i < 5; ++i) {
            cudaEventRecord(e0);
            cudaMemcpy(b, a, n, cudaMemcpyDeviceToDevice);
            cudaEventRecord(e1);
            cudaEventSynchronize(e1);
            float ms = 0;
            cudaEventElapsedTime(&ms, e0, e1);
            best = std::min(best, ms);
        }
        x.bytes = 2.0 * static_cast<double>(n) / (best * 1e-3);
        cudaFree(a);
        cudaFree(b);
#if SINKSCOPE_HAS_CUDA_TORCH
        at::globalContext().setFloat32MatmulPrecision("highest"); // fp32, no TF32
        const auto opts = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kFloat);
        auto m1 = torch::randn({8192, 8192}, opts), m2 = torch::randn({8192, 8192}, opts);
        torch::mm(m1, m2);
        torch::cuda::synchronize();
        best = 1e30f;
        for (int i = 0; i < 5; ++i) {
            cudaEventRecord(e0);
            torch::mm(m1, m2);
            cudaEventRecord(e1);
            cudaEventSynchronize(e1);
            float ms = 0;
            cudaEventElapsedTime(&ms, e0, e1);
            best = std::min(best, ms);
        }
        x.flops = 2.0 * 8192.0 * 8192.0 * 8192.0 / (best * 1e-3);
        x.measuredFlops = true;
#else
        // Nominal: SMs x clock x 128 fp32 lanes x 2 (FMA) on sm_80 / sm_90.
        int dev = 0, sms = 0, khz = 0;
        cudaGetDevice(&dev);
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
        cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, dev);
        x.flops = static_cast<double>(sms) * khz * 1e3 * 128 * 2;
#endif
        cudaEventDestroy(e0);
        cudaEventDestroy(e1);
        return x;
    }();
    return r;
}

struct Layer {
    int t;
    float *q = nullptr, *k = nullptr, *out = nullptr; // out: 7 arrays of [H, T]
    explicit Layer(int tokens) : t(tokens)
    {
        std::mt19937 rng(42);
        std::normal_distribution<float> n(0.0f, 1.0f);
        std::vector<float> hq(static_cast<size_t>(kHeads) * t * kDim), hk(static_cast<size_t>(kKvHeads) * t * kDim);
        for (auto &x : hq) {
            x = n(rng);
        }
        for (auto &x : hk) {
            x = n(rng);
        }
        BENCH_CUDA(cudaMalloc(reinterpret_cast<void **>(&q), hq.size() * sizeof(float)));
        BENCH_CUDA(cudaMalloc(reinterpret_cast<void **>(&k), hk.size() * sizeof(float)));
        BENCH_CUDA(cudaMalloc(reinterpret_cast<void **>(&out), 7 * sizeof(float) * kHeads * t));
        BENCH_CUDA(cudaMemcpy(q, hq.data(), hq.size() * sizeof(float), cudaMemcpyHostToDevice));
        BENCH_CUDA(cudaMemcpy(k, hk.data(), hk.size() * sizeof(float), cudaMemcpyHostToDevice));
    }
    ~Layer()
    {
        cudaFree(q);
        cudaFree(k);
        cudaFree(out);
    }
    cuda::AttentionStatsArgs args() const
    {
        cuda::AttentionStatsArgs a;
        a.q = q;
        a.k = k;
        a.heads = kHeads;
        a.kvHeads = kKvHeads;
        a.tokens = t;
        a.headDim = kDim;
        const size_t ht = static_cast<size_t>(kHeads) * t;
        a.sinkMass = out;
        a.firstMass = out + ht;
        a.rowEntropy = out + 2 * ht;
        a.rowMax = out + 3 * ht;
        a.rowWeighted = out + 4 * ht;
        a.received = out + 5 * ht;
        a.receivedPlogp = out + 6 * ht;
        return a;
    }
};

double kernelFlops(double t)
{
    return 2.0 * kHeads * t * (t + 1) / 2.0 * 2.0 * kDim;
}

double kernelBytes(double t)
{
    return 4.0 * t * (kHeads * kDim + kKvHeads * kDim + 7.0 * kHeads);
}

void setBounds(benchmark::State &state, double t, double seconds)
{
    const Rates &r = rates();
    const double computeBound = kernelFlops(t) / r.flops, memoryBound = kernelBytes(t) / r.bytes;
    state.counters["ms"] = seconds * 1e3;
    state.counters["TFLOPs"] = kernelFlops(t) / seconds / 1e12;
    state.counters["compute_bound_ms"] = computeBound * 1e3;
    state.counters["memory_bound_ms"] = memoryBound * 1e3;
    state.counters["x_bound"] = seconds / std::max(computeBound, memoryBound);
    state.counters["fp32_TFLOPs_rate"] = r.flops / 1e12;
    state.counters["hbm_GBps"] = r.bytes / 1e9;
    state.counters["rate_measured"] = r.measuredFlops ? 1 : 0;
}

void BM_StatsKernel(benchmark::State &state)
{
    const int t = static_cast<int>(state.range(0));
    Layer layer(t);
    const auto a = layer.args();
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    if (auto st = cuda::attentionStats(a); !st) { // warm-up and error check
        state.SkipWithError(st.message.c_str());
        return;
    }
    double total = 0;
    int64_t runs = 0;
    for (auto _ : state) {
        cudaEventRecord(e0);
        cuda::attentionStats(a);
        cudaEventRecord(e1);
        cudaEventSynchronize(e1);
        float ms = 0;
        cudaEventElapsedTime(&ms, e0, e1);
        state.SetIterationTime(ms * 1e-3);
        total += ms * 1e-3;
        ++runs;
    }
    if (auto st = cuda::synchronize(); !st) {
        state.SkipWithError(st.message.c_str());
    }
    setBounds(state, t, total / static_cast<double>(runs));
    state.counters["materialised_GiB"] = static_cast<double>(kHeads) * t * t * 4.0 / (1u << 30);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
}

#if SINKSCOPE_HAS_CUDA_TORCH
// The same statistics from materialised probabilities, one head at a time (all nine heads of a 32k layer
// would need 36 GiB of scores and as much again for the softmax). The tensors wrap the kernel's own device
// buffers: CUDA tensors and the kernels share memory directly.
void BM_TorchMaterialize(benchmark::State &state)
{
    const int t = static_cast<int>(state.range(0));
    Layer layer(t);
    const auto opts = torch::TensorOptions().device(torch::kCUDA).dtype(torch::kFloat);
    const torch::Tensor q = torch::from_blob(layer.q, {kHeads, t, kDim}, opts);
    const torch::Tensor k = torch::from_blob(layer.k, {kKvHeads, t, kDim}, opts);
    const torch::Tensor mask = torch::ones({t, t}, opts.dtype(torch::kBool)).triu(1);
    const float scale = 1.0f / std::sqrt(static_cast<float>(kDim));
    auto run = [&] {
        for (int h = 0; h < kHeads; ++h) {
            torch::Tensor s = torch::mm(q[h] * scale, k[h / (kHeads / kKvHeads)].t());
            s.masked_fill_(mask, -std::numeric_limits<float>::infinity());
            const torch::Tensor p = torch::softmax(s, 1);
            const torch::Tensor plogp = torch::xlogy(p, p);
            const torch::Tensor first = p.select(1, 0), rowMax = std::get<0>(p.max(1)), rowEnt = -plogp.sum(1);
            const torch::Tensor received = p.sum(0), receivedPlogp = plogp.sum(0);
            (void)first;
            (void)rowMax;
            (void)rowEnt;
            (void)received;
            (void)receivedPlogp;
        }
    };
    run();
    torch::cuda::synchronize();
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    double total = 0;
    int64_t runs = 0;
    for (auto _ : state) {
        cudaEventRecord(e0);
        run();
        cudaEventRecord(e1);
        cudaEventSynchronize(e1);
        float ms = 0;
        cudaEventElapsedTime(&ms, e0, e1);
        state.SetIterationTime(ms * 1e-3);
        total += ms * 1e-3;
        ++runs;
    }
    setBounds(state, t, total / static_cast<double>(runs));
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
}
BENCHMARK(BM_TorchMaterialize)
    ->RangeMultiplier(2)
    ->Range(1024, 32768)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->MinTime(0.2);
#endif

BENCHMARK(BM_StatsKernel)
    ->RangeMultiplier(2)
    ->Range(1024, 32768)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->MinTime(0.2);

} // namespace

int main(int argc, char **argv)
{
    std::string why;
    bool any = false;
    for (const auto &d : cuda::listDevices(&why)) {
        any = any || d.supported;
    }
    if (!any) {
        std::cout << "kernels_bench: skipped, no CUDA device with compute capability >= 8.0 (" << why << ")\n";
        return 0;
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
        return 1;
    }
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
