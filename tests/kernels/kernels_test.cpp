// Parity of the CUDA kernels (kernels/) with their CPU references in the core (attention_tiles.h,
// activation_stats.h) over odd shapes: T from 1 to 8192, not multiples of the 64-row tiles or the warp,
// 1 to 12 heads, GQA ratios 1 and 3, head dims 16 to 128, every logit control. Each output lies between
// guard regions whose contents must come back unchanged. Tests that need a GPU end in _CUDA and skip
// cleanly without one (tools/gpu-check.sh runs them on a GPU machine).
//
// Tolerances (docs/gpu.md): probabilities (sink/first mass, row max, pooled maps) 2e-5 absolute + 1e-4
// relative; row entropy and value-weighted sums 1e-4 + 1e-4 relative; the per-key sums, which add up to
// T rows in float atomics in any order, 1e-4 + 2e-4 relative. Activations: exact.
#include "sinkscope/analysis/activation_stats.h"
#include "sinkscope/analysis/attention_tiles.h"
#include "sinkscope/analysis/metrics.h"
#include "sinkscope/kernels/activations.h"
#include "sinkscope/kernels/attention_map.h"
#include "sinkscope/kernels/attention_stats.h"
#include "sinkscope/model/convert.h"
#include "sinkscope/model/model.h"
#include "sinkscope/runtime/device.h"
#include "support/test_paths.h"
#include "support/tiny_models.h"

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace sinkscope;

namespace {

#define REQUIRE_GPU()                                                                                                  \
    do {                                                                                                               \
        std::string why;                                                                                               \
        bool any = false;                                                                                              \
        for (const auto &d : cuda::listDevices(&why)) {                                                                \
            any = any || d.supported;                                                                                  \
        }                                                                                                              \
        if (!any) {                                                                                                    \
            GTEST_SKIP() << "no CUDA device with compute capability >= 8.0 (" << why << ")";                           \
        }                                                                                                              \
    } while (0)

constexpr size_t kGuard = 256;               // floats on each side of every buffer
constexpr uint32_t kGuardBits = 0x7fc0beefu; // a NaN no kernel produces

// A device buffer of n elements between two guard regions; upload/download of the payload only.
template <typename T> class Guarded
{
public:
    explicit Guarded(size_t n) : m_n(n)
    {
        const size_t total = n + 2 * kGuard;
        if (cudaMalloc(reinterpret_cast<void **>(&m_base), total * sizeof(T)) != cudaSuccess) {
            m_base = nullptr;
            return;
        }
        std::vector<uint32_t> fill(total * sizeof(T) / sizeof(uint32_t), kGuardBits);
        cudaMemcpy(m_base, fill.data(), total * sizeof(T), cudaMemcpyHostToDevice);
    }
    Guarded(const std::vector<T> &host) : Guarded(host.size())
    {
        if (m_base && !host.empty()) {
            cudaMemcpy(data(), host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice);
        }
    }
    ~Guarded() { cudaFree(m_base); }
    Guarded(const Guarded &) = delete;
    Guarded &operator=(const Guarded &) = delete;

    T *data() { return m_base ? m_base + kGuard : nullptr; }
    bool allocated() const { return m_base != nullptr; }
    std::vector<T> download() const
    {
        std::vector<T> out(m_n);
        cudaMemcpy(out.data(), m_base + kGuard, m_n * sizeof(T), cudaMemcpyDeviceToHost);
        return out;
    }
    // True when both guard regions still hold the fill pattern.
    bool guardsIntact() const
    {
        std::vector<uint32_t> g(kGuard * sizeof(T) / sizeof(uint32_t));
        for (size_t off : {size_t{0}, kGuard + m_n}) {
            cudaMemcpy(g.data(), m_base + off, kGuard * sizeof(T), cudaMemcpyDeviceToHost);
            for (uint32_t v : g) {
                if (v != kGuardBits) {
                    return false;
                }
            }
        }
        return true;
    }

private:
    T *m_base = nullptr;
    size_t m_n;
};

struct Tolerance {
    double abs;
    double rel;
};

// Counts and reports the worst element; fails when any is outside abs + rel * |want| (NaN must match NaN).
void expectClose(const std::vector<float> &got, const std::vector<float> &want, Tolerance tol, const std::string &what)
{
    ASSERT_EQ(got.size(), want.size()) << what;
    size_t bad = 0, worst = 0;
    double worstExcess = -std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < want.size(); ++i) {
        const double g = got[i], w = want[i];
        if (std::isnan(w) || std::isnan(g)) {
            bad += std::isnan(w) != std::isnan(g);
            continue;
        }
        const double excess = std::fabs(g - w) - (tol.abs + tol.rel * std::fabs(w));
        bad += excess > 0;
        if (excess > worstExcess) {
            worstExcess = excess;
            worst = i;
        }
    }
    EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << want.size() << " outside tolerance; worst at " << worst
                       << ": got " << got[worst] << ", want " << want[worst];
}

struct Shape {
    int heads, kvHeads, tokens, headDim;
};

std::string name(const Shape &s)
{
    return "H" + std::to_string(s.heads) + "_Hkv" + std::to_string(s.kvHeads) + "_T" + std::to_string(s.tokens) + "_d" +
           std::to_string(s.headDim);
}

// Random q and k with a planted sink: key 0 gets a large component along a shared direction, as in a
// trained model, so the statistics cover both peaked and flat rows.
struct Inputs {
    std::vector<float> q, k, bias, tau, sink, weight, norms;
    Inputs(const Shape &s, bool controls, uint32_t seed)
    {
        std::mt19937 rng(seed);
        std::normal_distribution<float> n(0.0f, 1.0f);
        q.resize(static_cast<size_t>(s.heads) * s.tokens * s.headDim);
        k.resize(static_cast<size_t>(s.kvHeads) * s.tokens * s.headDim);
        for (auto &x : q) {
            x = n(rng);
        }
        for (auto &x : k) {
            x = n(rng);
        }
        for (int g = 0; g < s.kvHeads; ++g) {
            k[static_cast<size_t>(g) * s.tokens * s.headDim] += 8.0f;
        }
        for (int h = 0; h < s.heads; ++h) {
            for (int t = 0; t < s.tokens; ++t) {
                q[(static_cast<size_t>(h) * s.tokens + t) * s.headDim] += 2.0f;
            }
        }
        norms.resize(static_cast<size_t>(s.heads) * s.tokens);
        for (auto &x : norms) {
            x = std::fabs(n(rng)) + 0.1f;
        }
        weight.assign(s.tokens, 0.0f);
        for (int j = 0; j < s.tokens; j += 13) {
            weight[j] = 1.0f;
        }
        if (controls) {
            bias.resize(static_cast<size_t>(s.heads) * s.tokens);
            for (auto &x : bias) {
                x = 0.5f * n(rng);
            }
            if (s.tokens > 3) {
                bias[2] = -std::numeric_limits<float>::infinity(); // head 0 never sees key 2
            }
            for (int h = 0; h < s.heads; ++h) {
                tau.push_back(0.7f + 0.1f * static_cast<float>(h % 5));
                sink.push_back(-2.0f + 0.5f * static_cast<float>(h % 7));
            }
        }
    }
    LayerAttentionInput host(const Shape &s) const
    {
        LayerAttentionInput in;
        in.q = q.data();
        in.k = k.data();
        in.heads = s.heads;
        in.kvHeads = s.kvHeads;
        in.tokens = s.tokens;
        in.headDim = s.headDim;
        in.logitBias = bias.empty() ? nullptr : bias.data();
        in.temperature = tau.empty() ? nullptr : tau.data();
        in.sinkLogit = sink.empty() ? nullptr : sink.data();
        in.sinkWeight = weight.data();
        in.valueNorms = norms.data();
        return in;
    }
};

void checkStats(const Shape &s, bool controls)
{
    SCOPED_TRACE(name(s) + (controls ? " with controls" : ""));
    const Inputs in(s, controls, 1234u + static_cast<uint32_t>(s.tokens));
    auto want = layerAttentionStats(in.host(s), 512);
    ASSERT_TRUE(want) << want.error().message;

    Guarded<float> q(in.q), k(in.k), norms(in.norms), weight(in.weight);
    Guarded<float> bias(in.bias), tau(in.tau), sink(in.sink);
    const size_t ht = static_cast<size_t>(s.heads) * s.tokens;
    Guarded<float> sinkMass(ht), firstMass(ht), rowEntropy(ht), rowMax(ht), rowWeighted(ht), received(ht),
        receivedPlogp(ht);
    ASSERT_TRUE(q.allocated() && k.allocated() && receivedPlogp.allocated());
    cuda::AttentionStatsArgs a;
    a.q = q.data();
    a.k = k.data();
    a.heads = s.heads;
    a.kvHeads = s.kvHeads;
    a.tokens = s.tokens;
    a.headDim = s.headDim;
    a.logitBias = controls ? bias.data() : nullptr;
    a.temperature = controls ? tau.data() : nullptr;
    a.sinkLogit = controls ? sink.data() : nullptr;
    a.sinkWeight = weight.data();
    a.valueNorms = norms.data();
    a.sinkMass = sinkMass.data();
    a.firstMass = firstMass.data();
    a.rowEntropy = rowEntropy.data();
    a.rowMax = rowMax.data();
    a.rowWeighted = rowWeighted.data();
    a.received = received.data();
    a.receivedPlogp = receivedPlogp.data();
    auto st = cuda::attentionStats(a);
    ASSERT_TRUE(st) << st.message;
    st = cuda::synchronize();
    ASSERT_TRUE(st) << st.message;

    const Tolerance prob{2e-5, 1e-4}, row{1e-4, 1e-4}, col{1e-4, 2e-4};
    expectClose(sinkMass.download(), want->sinkMass, prob, "sinkMass");
    expectClose(firstMass.download(), want->firstMass, prob, "firstMass");
    expectClose(rowMax.download(), want->rowMax, prob, "rowMax");
    expectClose(rowEntropy.download(), want->rowEntropy, row, "rowEntropy");
    expectClose(rowWeighted.download(), want->rowWeighted, row, "rowWeighted");
    expectClose(received.download(), want->received, col, "received");
    expectClose(receivedPlogp.download(), want->receivedPlogp, col, "receivedPlogp");
    for (auto *g : {&sinkMass, &firstMass, &rowEntropy, &rowMax, &rowWeighted, &received, &receivedPlogp}) {
        EXPECT_TRUE(g->guardsIntact()) << "a kernel wrote outside an output buffer";
    }
    for (auto *g : {&q, &k, &norms, &weight}) {
        EXPECT_TRUE(g->guardsIntact()) << "an input buffer or its guards changed";
    }
    EXPECT_EQ(q.download(), in.q) << "q was modified";
}

} // namespace

// Without a GPU only the argument checks run: they happen before any CUDA call.
TEST(Kernels, RejectBadArgumentsWithAMessage)
{
    cuda::AttentionStatsArgs a;
    auto st = cuda::attentionStats(a);
    EXPECT_FALSE(st);
    EXPECT_NE(st.message.find("q and k are required"), std::string::npos) << st.message;
    float dummy = 0;
    a.q = &dummy;
    a.k = &dummy;
    a.heads = 4;
    a.kvHeads = 3;
    a.tokens = 8;
    a.headDim = 64;
    st = cuda::attentionStats(a);
    EXPECT_FALSE(st);
    EXPECT_NE(st.message.find("kv heads 3"), std::string::npos) << st.message;
    a.kvHeads = 1;
    a.headDim = 512;
    EXPECT_FALSE(cuda::attentionStats(a));
    cuda::AttentionMapArgs m;
    m.input = a;
    m.input.headDim = 64;
    m.rows = 9; // > T
    m.cols = 1;
    m.out = &dummy;
    st = cuda::attentionMap(m);
    EXPECT_FALSE(st);
    EXPECT_NE(st.message.find("resolution 9 x 1"), std::string::npos) << st.message;
    cuda::ActivationArgs act;
    act.hidden = &dummy;
    act.layers = act.tokens = act.dim = 1;
    act.k = cuda::kMaxActivationTopK + 1;
    EXPECT_FALSE(cuda::activationStats(act));
}

TEST(Kernels, ListDevicesNeverThrows)
{
    std::string why;
    const auto devices = cuda::listDevices(&why);
    EXPECT_TRUE(!devices.empty() || !why.empty());
    EXPECT_STRNE(cuda::compiledArchitectures(), "");
}

TEST(AttentionStatsKernel, OddShapesMatchCpuReference_CUDA)
{
    REQUIRE_GPU();
    for (const Shape &s : std::vector<Shape>{{1, 1, 1, 64},
                                             {1, 1, 2, 16},
                                             {1, 1, 33, 64},
                                             {3, 1, 63, 64},
                                             {3, 3, 64, 64},
                                             {9, 3, 65, 64},
                                             {2, 2, 127, 128},
                                             {12, 4, 257, 64},
                                             {6, 2, 1000, 32},
                                             {9, 3, 2049, 64}}) {
        checkStats(s, false);
    }
}

TEST(AttentionStatsKernel, LogitControlsMatchCpuReference_CUDA)
{
    REQUIRE_GPU();
    for (const Shape &s : std::vector<Shape>{{1, 1, 1, 64}, {3, 1, 31, 64}, {6, 2, 300, 64}, {4, 4, 513, 128}}) {
        checkStats(s, true);
    }
}

TEST(AttentionStatsKernel, LongContext8192MatchesCpuReference_CUDA)
{
    REQUIRE_GPU();
    checkStats({3, 1, 8192, 64}, false);
    checkStats({1, 1, 8191, 64}, true);
}

TEST(AttentionMapKernel, PooledMapsMatchCpuReference_CUDA)
{
    REQUIRE_GPU();
    struct Case {
        Shape s;
        int head, rows, cols;
    };
    for (const Case &c : std::vector<Case>{{{1, 1, 1, 64}, 0, 1, 1},
                                           {{2, 2, 65, 64}, 1, 65, 65},
                                           {{9, 3, 100, 64}, 7, 7, 13},
                                           {{3, 1, 1000, 64}, 2, 256, 256},
                                           {{3, 1, 4097, 64}, 1, 300, 200},
                                           {{1, 1, 8192, 64}, 0, 512, 512}}) {
        for (bool controls : {false, true}) {
            for (cuda::MapPool pool : {cuda::MapPool::Max, cuda::MapPool::Mean}) {
                SCOPED_TRACE(name(c.s) + " head " + std::to_string(c.head) + " " + std::to_string(c.rows) + "x" +
                             std::to_string(c.cols) + (pool == cuda::MapPool::Max ? " max" : " mean") +
                             (controls ? " controls" : ""));
                const Inputs in(c.s, controls, 99u + static_cast<uint32_t>(c.s.tokens));
                auto want = pooledAttentionMap(in.host(c.s), c.head, c.rows, c.cols,
                                               pool == cuda::MapPool::Max ? PoolMode::Max : PoolMode::Mean);
                ASSERT_TRUE(want) << want.error().message;
                Guarded<float> q(in.q), k(in.k), bias(in.bias), tau(in.tau), sink(in.sink);
                Guarded<float> out(static_cast<size_t>(c.rows) * c.cols);
                cuda::AttentionMapArgs a;
                a.input.q = q.data();
                a.input.k = k.data();
                a.input.heads = c.s.heads;
                a.input.kvHeads = c.s.kvHeads;
                a.input.tokens = c.s.tokens;
                a.input.headDim = c.s.headDim;
                a.input.logitBias = controls ? bias.data() : nullptr;
                a.input.temperature = controls ? tau.data() : nullptr;
                a.input.sinkLogit = controls ? sink.data() : nullptr;
                a.head = c.head;
                a.rows = c.rows;
                a.cols = c.cols;
                a.pool = pool;
                a.out = out.data();
                auto st = cuda::attentionMap(a);
                ASSERT_TRUE(st) << st.message;
                st = cuda::synchronize();
                ASSERT_TRUE(st) << st.message;
                expectClose(out.download(), want->data, {2e-5, 1e-4}, "map");
                EXPECT_TRUE(out.guardsIntact());
            }
        }
    }
}

TEST(ActivationKernel, TopKAndMedianMatchCpuReferenceExactly_CUDA)
{
    REQUIRE_GPU();
    struct Case {
        int layers, tokens, dim, k;
    };
    for (const Case &c : std::vector<Case>{
             {1, 1, 1, 1}, {1, 1, 2, 3}, {2, 7, 33, 3}, {30, 257, 576, 8}, {3, 4097, 64, 32}, {2, 8192, 576, 3}}) {
        SCOPED_TRACE(std::to_string(c.layers) + "x" + std::to_string(c.tokens) + "x" + std::to_string(c.dim) +
                     " k=" + std::to_string(c.k));
        std::mt19937 rng(static_cast<uint32_t>(c.tokens * 31 + c.dim));
        std::normal_distribution<float> n(0.0f, 1.0f);
        const size_t per = static_cast<size_t>(c.tokens) * c.dim;
        std::vector<float> h(per * c.layers);
        for (auto &x : h) {
            x = std::round(n(rng) * 64.0f) / 64.0f; // coarse values: many ties in |h|
        }
        for (int l = 0; l < c.layers; ++l) {
            h[l * per + (per - 1) / 2] = (l % 2 ? -1.0f : 1.0f) * 2000.0f; // a massive activation
            if (per > 4) {
                h[l * per + 3] = std::numeric_limits<float>::quiet_NaN();
            }
        }
        auto want = residualActivationStats(h.data(), c.layers, c.tokens, c.dim, c.k);
        ASSERT_TRUE(want);
        Guarded<float> hidden(h), values(static_cast<size_t>(c.layers) * c.k), median(c.layers);
        Guarded<int64_t> index(static_cast<size_t>(c.layers) * c.k);
        cuda::ActivationArgs a;
        a.hidden = hidden.data();
        a.layers = c.layers;
        a.tokens = c.tokens;
        a.dim = c.dim;
        a.k = c.k;
        a.topValue = values.data();
        a.topIndex = index.data();
        a.median = median.data();
        auto st = cuda::activationStats(a);
        ASSERT_TRUE(st) << st.message;
        st = cuda::synchronize();
        ASSERT_TRUE(st) << st.message;
        const auto v = values.download();
        const auto idx = index.download();
        const auto med = median.download();
        for (int l = 0; l < c.layers; ++l) {
            const auto &w = (*want)[static_cast<size_t>(l)];
            EXPECT_EQ(med[l], w.median) << "layer " << l;
            for (int i = 0; i < c.k; ++i) {
                const size_t o = static_cast<size_t>(l) * c.k + i;
                if (i < static_cast<int>(w.top.size())) {
                    EXPECT_EQ(idx[o], w.top[i].token * c.dim + w.top[i].dim) << "layer " << l << " rank " << i;
                    EXPECT_EQ(v[o], w.top[i].value) << "layer " << l << " rank " << i;
                } else {
                    EXPECT_EQ(idx[o], -1) << "layer " << l << " rank " << i;
                }
            }
        }
        EXPECT_TRUE(values.guardsIntact() && index.guardsIntact() && median.guardsIntact());
    }
}

namespace {

// Two random SmolLM2-shaped layers (9 heads on 3 kv heads, d = 64) with value norms, T = 300.
ForwardResult randomPass(int64_t layers, int64_t t, ModelConfig &config)
{
    config.name = "random";
    config.layers = layers;
    config.heads = 9;
    config.kvHeads = 3;
    config.headDim = 64;
    config.embedding = 576;
    ForwardResult r;
    for (int l = 0; l < layers; ++l) {
        const Inputs in({9, 3, static_cast<int>(t), 64}, false, 7u + static_cast<uint32_t>(l));
        r.queries[l] = FloatArray{{9, t, 64}, in.q};
        r.keys[l] = FloatArray{{3, t, 64}, in.k};
        r.valueNorms.data.insert(r.valueNorms.data.end(), in.norms.begin(), in.norms.end());
    }
    r.valueNorms.shape = {layers, 9, t};
    return r;
}

} // namespace

TEST(MetricsDevice, UnknownOrMissingDeviceIsAnError)
{
    ModelConfig c;
    const ForwardResult r = randomPass(1, 20, c);
    MetricsOptions o;
    o.path = MetricsPath::Streaming;
    o.device = "tpu";
    auto bad = computeMetrics(r, c, std::vector<int64_t>(20, 1), o);
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("'tpu'"), std::string::npos) << bad.error().message;
    if (cuda::deviceAvailable()) {
        GTEST_SKIP() << "a GPU is present: the missing-GPU error cannot be provoked";
    }
    o.device = "cuda:0";
    auto none = computeMetrics(r, c, std::vector<int64_t>(20, 1), o);
    ASSERT_FALSE(none);
    EXPECT_NE(none.error().message.find("cuda:0"), std::string::npos) << none.error().message;
}

TEST(MetricsDevice, GpuStreamingAgreesWithCpu_CUDA)
{
    REQUIRE_GPU();
    ModelConfig c;
    const int64_t t = 300;
    const ForwardResult r = randomPass(2, t, c);
    const std::vector<int64_t> tokens(t, 1);
    MetricsOptions o;
    o.path = MetricsPath::Streaming;
    auto cpu = computeMetrics(r, c, tokens, o);
    ASSERT_TRUE(cpu) << cpu.error().message;
    o.device = "cuda:0";
    auto gpu = computeMetrics(r, c, tokens, o);
    ASSERT_TRUE(gpu) << gpu.error().message;
    for (const auto &m : (*cpu)->headMetrics) {
        const HeadMetric *g = (*gpu)->headMetric(m.name);
        ASSERT_NE(g, nullptr) << m.name;
        expectClose(g->values.data, m.values.data, {1e-4, 1e-4}, m.name);
    }
    expectClose((*gpu)->receivedSum.data, (*cpu)->receivedSum.data, {1e-4, 2e-4}, "receivedSum");
}

namespace {

// The tiny Llama converted once, and a prompt long enough for several query tiles of the kernel.
struct TinyOnDisk {
    sinkscope::testing::TempDir dir;
    std::string path;
    std::vector<int64_t> tokens;
    TinyOnDisk()
    {
        sinkscope::testing::writeTinyLlamaGguf(dir.file("tiny.gguf"));
        path = dir.file("tiny.pt");
        const Status converted = convertGguf(dir.file("tiny.gguf"), path);
        EXPECT_TRUE(converted) << converted.error().message;
        // Within the tiny model's 64-token context (a longer input is refused by the forward pass).
        for (int64_t i = 0; i < sinkscope::testing::tiny::kContext; ++i) {
            tokens.push_back((i * 37 + 11) % sinkscope::testing::tiny::kVocab);
        }
    }
};

void expectSameHeadMetrics(const SinkMetrics &got, const SinkMetrics &want, Tolerance tol)
{
    for (const auto &m : want.headMetrics) {
        const HeadMetric *g = got.headMetric(m.name);
        ASSERT_NE(g, nullptr) << m.name;
        expectClose(g->values.data, m.values.data, tol, m.name);
    }
    expectClose(got.receivedSum.data, want.receivedSum.data, {tol.abs, 2 * tol.rel}, "receivedSum");
}

MetricsOptions streamingOn(const std::string &device)
{
    MetricsOptions o;
    o.path = MetricsPath::Streaming;
    o.device = device;
    return o;
}

} // namespace

// analyzeTokens with the model on the CPU and the statistics on the GPU: each layer's q/k go to the
// kernel from inside the forward pass (uploaded), and give the CPU path's metrics.
TEST(ModelMetricsDevice, InPassKernelOnCpuTensorsMatchesTheCpu_CUDA)
{
    REQUIRE_GPU();
    TinyOnDisk tiny;
    auto model = Model::load(tiny.path);
    ASSERT_TRUE(model) << model.error().message;
    auto cpu = analyzeTokens(**model, tiny.tokens, streamingOn("cpu"), 0);
    ASSERT_TRUE(cpu) << cpu.error().message;
    auto gpu = analyzeTokens(**model, tiny.tokens, streamingOn("cuda:0"), 0);
    ASSERT_TRUE(gpu) << gpu.error().message;
    expectSameHeadMetrics(**gpu, **cpu, {1e-4, 1e-4});
}

// The whole model on the GPU (a CUDA LibTorch): the forward pass matches the CPU's, and the in-pass
// statistics read q/k from LibTorch's CUDA tensors (no host copy) and match the CPU path.
TEST(ModelMetricsDevice, ModelOnTheGpuMatchesTheCpu_CUDA)
{
    REQUIRE_GPU();
    if (!buildCapabilities().torchCuda) {
        GTEST_SKIP() << "LibTorch " << buildCapabilities().torchVersion
                     << " is CPU-only: the model cannot run on a GPU";
    }
    TinyOnDisk tiny;
    auto onCpu = Model::load(tiny.path);
    ASSERT_TRUE(onCpu) << onCpu.error().message;
    auto onGpu = Model::load(tiny.path, LoadOptions{.device = "cuda:0"});
    ASSERT_TRUE(onGpu) << onGpu.error().message;
    EXPECT_EQ((*onGpu)->info().device, "cuda:0");

    const ForwardRequest request{.tokens = tiny.tokens, .capture = {.hidden = true}, .controls = {}, .layerHook = {}};
    auto a = (*onCpu)->forward(request);
    auto b = (*onGpu)->forward(request);
    ASSERT_TRUE(a && b) << (a ? b.error().message : a.error().message);
    expectClose(b->logits.data, a->logits.data, {1e-3, 1e-3}, "logits");
    expectClose(b->hidden.data, a->hidden.data, {1e-3, 1e-3}, "hidden");

    auto cpu = analyzeTokens(**onCpu, tiny.tokens, streamingOn("cpu"), 0);
    ASSERT_TRUE(cpu) << cpu.error().message;
    auto gpu = analyzeTokens(**onGpu, tiny.tokens, streamingOn("cuda:0"), 0);
    ASSERT_TRUE(gpu) << gpu.error().message;
    expectSameHeadMetrics(**gpu, **cpu, {1e-3, 1e-3});
    // The model on the GPU with CPU statistics: q/k come back to the CPU path.
    auto mixed = analyzeTokens(**onGpu, tiny.tokens, streamingOn("cpu"), 0);
    ASSERT_TRUE(mixed) << mixed.error().message;
    expectSameHeadMetrics(**mixed, **cpu, {1e-3, 1e-3});
}

// Every decoder family's TorchScript on a GPU (a CUDA LibTorch): the tiny reference models whose windows,
// learned sinks, experts, QK-norms and RoPE variants run on the CPU in families_test.cpp give the same
// logits and attention on the GPU, and the streaming statistics (CPU path for windowed / sink layers)
// agree with the CPU model's.
TEST(ModelMetricsDevice, EveryFamilyRunsOnTheGpuAsOnTheCpu_CUDA)
{
    REQUIRE_GPU();
    if (!buildCapabilities().torchCuda) {
        GTEST_SKIP() << "LibTorch " << buildCapabilities().torchVersion
                     << " is CPU-only: the model cannot run on a GPU";
    }
    const char *forms[] = {"llama/hf",   "mistral/hf", "qwen2/hf",    "qwen3/hf", "gemma3/hf",
                           "gpt_oss/hf", "phi3/hf",    "gpt_neox/hf", "olmo2/hf", "gpt_oss/hf_mxfp4"};
    std::vector<int64_t> tokens;
    for (int64_t i = 0; i < 22; ++i) {
        tokens.push_back((i * 37 + 11) % 400);
    }
    for (const char *form : forms) {
        SCOPED_TRACE(form);
        sinkscope::testing::TempDir dir;
        const Status converted =
            convertModel(sinkscope::testing::testDataDir() + "/families/" + form, dir.file("model.pt"));
        ASSERT_TRUE(converted) << converted.error().message;
        auto onCpu = Model::load(dir.file("model.pt"));
        auto onGpu = Model::load(dir.file("model.pt"), LoadOptions{.device = "cuda:0"});
        ASSERT_TRUE(onCpu && onGpu) << (onCpu ? onGpu.error().message : onCpu.error().message);
        const ForwardRequest request{
            .tokens = tokens, .capture = {.allAttention = true}, .controls = {}, .layerHook = {}};
        auto a = (*onCpu)->forward(request);
        auto b = (*onGpu)->forward(request);
        ASSERT_TRUE(a && b) << (a ? b.error().message : a.error().message);
        expectClose(b->logits.data, a->logits.data, {1e-3, 1e-3}, "logits");
        ASSERT_EQ(a->attention.size(), b->attention.size());
        for (size_t l = 0; l < a->attention.size(); ++l) {
            expectClose(b->attention[l].data, a->attention[l].data, {1e-4, 1e-3}, "attention");
        }
        ASSERT_EQ(a->sinkShare.size(), b->sinkShare.size());
        auto cpu = analyzeTokens(**onCpu, tokens, streamingOn("cpu"), 0);
        auto gpu = analyzeTokens(**onGpu, tokens, streamingOn("cuda:0"), 0);
        ASSERT_TRUE(cpu && gpu) << (cpu ? gpu.error().message : cpu.error().message);
        expectSameHeadMetrics(**gpu, **cpu, {1e-3, 1e-3});
    }
}
