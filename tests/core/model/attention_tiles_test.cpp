// The CPU reference of the CUDA attention kernels (sinkscope/attention_tiles.h): per-row and per-key
// statistics and pooled maps on inputs small enough to work out by hand, every logit control, tile
// sizes that do and do not divide T, and a naive full-softmax oracle on random inputs.
#include "sinkscope/analysis/attention_tiles.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

using namespace sinkscope;

namespace {

// d = 1, scale 1, q = 1: the logits are the keys, so with k = (0, ln 2, ln 3) the rows are
// (1), (1, 2) / 3 and (1, 2, 3) / 6.
struct Hand {
    std::vector<float> q{1, 1, 1};
    std::vector<float> k{0.0f, std::log(2.0f), std::log(3.0f)};
    LayerAttentionInput input()
    {
        LayerAttentionInput in;
        in.q = q.data();
        in.k = k.data();
        in.heads = 1;
        in.kvHeads = 1;
        in.tokens = 3;
        in.headDim = 1;
        in.scale = 1;
        return in;
    }
};

double entropy(std::vector<double> p)
{
    double e = 0;
    for (double v : p) {
        e -= v > 0 ? v * std::log(v) : 0;
    }
    return e;
}

void expectNear(const std::vector<float> &got, const std::vector<double> &want, double tol = 1e-6)
{
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
        EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
    }
}

} // namespace

TEST(AttentionTiles, HandWorkedRowsAndColumnsForEveryTile)
{
    Hand h;
    const std::vector<float> weight{0, 1, 0}, norms{2, 1, 0};
    LayerAttentionInput in = h.input();
    in.sinkWeight = weight.data();
    in.valueNorms = norms.data();
    for (int64_t tile : {1, 2, 3, 512}) {
        SCOPED_TRACE("tile " + std::to_string(tile));
        auto s = layerAttentionStats(in, tile);
        ASSERT_TRUE(s) << s.error().message;
        expectNear(s->firstMass, {1, 1.0 / 3, 1.0 / 6});
        expectNear(s->rowMax, {1, 2.0 / 3, 1.0 / 2});
        expectNear(s->sinkMass, {0, 2.0 / 3, 1.0 / 3});
        expectNear(s->rowEntropy, {0, entropy({1.0 / 3, 2.0 / 3}), entropy({1.0 / 6, 1.0 / 3, 1.0 / 2})});
        expectNear(s->rowWeighted, {2, 4.0 / 3, 2.0 / 3});
        expectNear(s->received, {1.5, 1, 0.5});
        expectNear(s->receivedPlogp, {std::log(1.0 / 3) / 3 + std::log(1.0 / 6) / 6,
                                      2.0 / 3 * std::log(2.0 / 3) + std::log(1.0 / 3) / 3, 0.5 * std::log(0.5)});
    }
    // Without a weight array the sink is key 0 alone; without norms rowWeighted is 0.
    auto plain = layerAttentionStats(h.input(), 2);
    ASSERT_TRUE(plain);
    expectNear(plain->sinkMass, {1, 1.0 / 3, 1.0 / 6});
    expectNear(plain->rowWeighted, {0, 0, 0});
}

TEST(AttentionTiles, LogitControlsActAsInTheModel)
{
    Hand h;
    {
        // temperature 0.5 doubles the logits: exp = (1, 4, 9).
        const std::vector<float> tau{0.5f};
        LayerAttentionInput in = h.input();
        in.temperature = tau.data();
        auto s = layerAttentionStats(in, 2);
        ASSERT_TRUE(s);
        expectNear(s->firstMass, {1, 1.0 / 5, 1.0 / 14});
        expectNear(s->rowMax, {1, 4.0 / 5, 9.0 / 14});
    }
    {
        // sink logit 0: a null column exp(0) = 1 in every normaliser, its probability dropped.
        const std::vector<float> b{0.0f};
        LayerAttentionInput in = h.input();
        in.sinkLogit = b.data();
        auto s = layerAttentionStats(in, 2);
        ASSERT_TRUE(s);
        expectNear(s->firstMass, {0.5, 0.25, 1.0 / 7});
        expectNear(s->received, {0.5 + 0.25 + 1.0 / 7, 0.5 + 2.0 / 7, 3.0 / 7});
        expectNear(s->rowEntropy, {entropy({0.5}), entropy({0.25, 0.5}), entropy({1.0 / 7, 2.0 / 7, 3.0 / 7})});
    }
    {
        // A -inf bias masks key 1: rows (1, 0) and (1, 0, 3) / 4; 0 log 0 counts 0, not NaN.
        const std::vector<float> bias{0.0f, -std::numeric_limits<float>::infinity(), 0.0f};
        LayerAttentionInput in = h.input();
        in.logitBias = bias.data();
        auto s = layerAttentionStats(in, 1);
        ASSERT_TRUE(s);
        expectNear(s->received, {2.25, 0, 0.75});
        expectNear(s->rowEntropy, {0, 0, entropy({0.25, 0.75})});
        expectNear(s->receivedPlogp, {0.25 * std::log(0.25), 0, 0.75 * std::log(0.75)});
    }
    {
        // A bias of ln 2 on key 0 after the scale: rows (1), (2, 2) / 4, (2, 2, 3) / 7.
        const std::vector<float> bias{std::log(2.0f), 0.0f, 0.0f};
        LayerAttentionInput in = h.input();
        in.logitBias = bias.data();
        auto s = layerAttentionStats(in, 3);
        ASSERT_TRUE(s);
        expectNear(s->firstMass, {1, 0.5, 2.0 / 7});
    }
}

TEST(AttentionTiles, GroupedQueryHeadsReadTheirKvHead)
{
    // Two query heads on one kv head; head 1's query is 2, which doubles its logits.
    Hand h;
    std::vector<float> q{1, 1, 1, 2, 2, 2};
    LayerAttentionInput in = h.input();
    in.q = q.data();
    in.heads = 2;
    auto s = layerAttentionStats(in, 2);
    ASSERT_TRUE(s);
    expectNear(s->firstMass, {1, 1.0 / 3, 1.0 / 6, 1, 1.0 / 5, 1.0 / 14});
    expectNear(s->received, {1.5, 1, 0.5, 1 + 0.2 + 1.0 / 14, 0.8 + 4.0 / 14, 9.0 / 14});
}

TEST(AttentionTiles, PooledMapsMaxAndMean)
{
    Hand h;
    auto full = pooledAttentionMap(h.input(), 0, 3, 3, PoolMode::Max, 2);
    ASSERT_TRUE(full) << full.error().message;
    EXPECT_EQ(full->shape, (std::vector<int64_t>{3, 3}));
    expectNear(full->data, {1, 0, 0, 1.0 / 3, 2.0 / 3, 0, 1.0 / 6, 1.0 / 3, 0.5});
    // 2 x 2: bins {0} and {1, 2} on both axes.
    auto mx = pooledAttentionMap(h.input(), 0, 2, 2, PoolMode::Max, 1);
    ASSERT_TRUE(mx);
    expectNear(mx->data, {1, 0, 1.0 / 3, 2.0 / 3});
    auto mean = pooledAttentionMap(h.input(), 0, 2, 2, PoolMode::Mean, 512);
    ASSERT_TRUE(mean);
    expectNear(mean->data, {1, 0, 0.25, 0.375});
    auto one = pooledAttentionMap(h.input(), 0, 1, 1, PoolMode::Mean);
    ASSERT_TRUE(one);
    expectNear(one->data, {1.0 / 3}); // three rows of mass 1 over nine cells
    // Mixed resolution: rows {0}, {1, 2}; one column bin.
    auto tall = pooledAttentionMap(h.input(), 0, 2, 1, PoolMode::Max);
    ASSERT_TRUE(tall);
    expectNear(tall->data, {1, 2.0 / 3});
}

TEST(AttentionTiles, PoolBinsCoverEveryIndexOnce)
{
    for (int64_t n : {1, 3, 10, 97}) {
        for (int64_t bins = 1; bins <= n; ++bins) {
            for (int64_t i = 0; i < n; ++i) {
                const int64_t b = poolBinOf(i, n, bins);
                ASSERT_GE(i, poolBinStart(b, n, bins)) << n << " " << bins << " " << i;
                ASSERT_LT(i, poolBinStart(b + 1, n, bins)) << n << " " << bins << " " << i;
            }
        }
    }
}

TEST(AttentionTiles, RejectsBadShapesAndResolutions)
{
    Hand h;
    LayerAttentionInput in = h.input();
    in.kvHeads = 2; // does not divide 1 head
    auto s = layerAttentionStats(in);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, ErrorCode::InvalidArgument);
    EXPECT_NE(s.error().message.find("kv heads 2"), std::string::npos) << s.error().message;
    EXPECT_FALSE(pooledAttentionMap(h.input(), 0, 0, 3, PoolMode::Max));
    EXPECT_FALSE(pooledAttentionMap(h.input(), 0, 4, 3, PoolMode::Max));
    auto head = pooledAttentionMap(h.input(), 1, 3, 3, PoolMode::Max);
    ASSERT_FALSE(head);
    EXPECT_NE(head.error().message.find("head 1"), std::string::npos);
    LayerAttentionInput none = h.input();
    none.q = nullptr;
    EXPECT_FALSE(layerAttentionStats(none));
}

TEST(AttentionTiles, MatchesNaiveSoftmaxOnRandomInputs)
{
    // T = 37 with tiles 8 and 5 (neither divides T), GQA 3, every control at once; oracle: the full
    // T x T softmax in double.
    const int64_t H = 6, Hkv = 2, T = 37, d = 8;
    std::mt19937 rng(7);
    std::normal_distribution<float> n(0.0f, 1.0f);
    std::vector<float> q(H * T * d), k(Hkv * T * d), bias(H * T), tau(H), sink(H), w(T), f(H * T);
    for (auto *v : {&q, &k, &bias, &f}) {
        for (auto &x : *v) {
            x = n(rng);
        }
    }
    for (auto &x : f) {
        x = std::fabs(x);
    }
    bias[5] = -std::numeric_limits<float>::infinity();
    for (int64_t h = 0; h < H; ++h) {
        tau[h] = 0.5f + 0.3f * h;
        sink[h] = -1.0f + 0.5f * h;
    }
    for (int64_t j = 0; j < T; ++j) {
        w[j] = j % 7 == 0 ? 1.0f : 0.0f;
    }
    LayerAttentionInput in;
    in.q = q.data();
    in.k = k.data();
    in.heads = H;
    in.kvHeads = Hkv;
    in.tokens = T;
    in.headDim = d;
    in.logitBias = bias.data();
    in.temperature = tau.data();
    in.sinkLogit = sink.data();
    in.sinkWeight = w.data();
    in.valueNorms = f.data();

    std::vector<double> A(H * T * T, 0.0);
    for (int64_t h = 0; h < H; ++h) {
        const int64_t g = h / (H / Hkv);
        for (int64_t t = 0; t < T; ++t) {
            std::vector<double> z(t + 1);
            double norm = std::exp(static_cast<double>(sink[h]));
            for (int64_t j = 0; j <= t; ++j) {
                double dot = 0;
                for (int64_t e = 0; e < d; ++e) {
                    dot += static_cast<double>(q[(h * T + t) * d + e]) * k[(g * T + j) * d + e];
                }
                z[j] = (dot / std::sqrt(static_cast<double>(d)) + bias[h * T + j]) / tau[h];
                norm += std::exp(z[j]);
            }
            for (int64_t j = 0; j <= t; ++j) {
                A[(h * T + t) * T + j] = std::exp(z[j]) / norm;
            }
        }
    }
    for (int64_t tile : {8, 5}) {
        SCOPED_TRACE("tile " + std::to_string(tile));
        auto s = layerAttentionStats(in, tile);
        ASSERT_TRUE(s);
        for (int64_t h = 0; h < H; ++h) {
            for (int64_t t = 0; t < T; ++t) {
                double sm = 0, ent = 0, mx = 0, wt = 0, col = 0;
                for (int64_t j = 0; j < T; ++j) {
                    const double a = A[(h * T + t) * T + j], c = A[(h * T + j) * T + t];
                    sm += a * w[j];
                    ent -= a > 0 ? a * std::log(a) : 0;
                    mx = std::max(mx, a);
                    wt += a * f[h * T + j];
                    col += c;
                }
                const size_t i = static_cast<size_t>(h * T + t);
                ASSERT_NEAR(s->sinkMass[i], sm, 1e-5) << h << " " << t;
                ASSERT_NEAR(s->rowEntropy[i], ent, 1e-5) << h << " " << t;
                ASSERT_NEAR(s->rowMax[i], mx, 1e-5) << h << " " << t;
                ASSERT_NEAR(s->rowWeighted[i], wt, 1e-5) << h << " " << t;
                ASSERT_NEAR(s->received[i], col, 1e-5) << h << " " << t;
                ASSERT_NEAR(s->firstMass[i], A[(h * T + t) * T], 1e-6) << h << " " << t;
            }
        }
        for (PoolMode mode : {PoolMode::Max, PoolMode::Mean}) {
            auto map = pooledAttentionMap(in, 4, 5, 7, mode, tile);
            ASSERT_TRUE(map);
            for (int64_t r = 0; r < 5; ++r) {
                for (int64_t c = 0; c < 7; ++c) {
                    double v = 0;
                    int64_t cells = 0;
                    for (int64_t t = poolBinStart(r, T, 5); t < poolBinStart(r + 1, T, 5); ++t) {
                        for (int64_t j = poolBinStart(c, T, 7); j < poolBinStart(c + 1, T, 7); ++j) {
                            const double a = A[(4 * T + t) * T + j];
                            v = mode == PoolMode::Max ? std::max(v, a) : v + a;
                            ++cells;
                        }
                    }
                    if (mode == PoolMode::Mean) {
                        v /= static_cast<double>(cells);
                    }
                    ASSERT_NEAR(map->data[static_cast<size_t>(r * 7 + c)], v, 1e-6) << r << " " << c;
                }
            }
        }
    }
}
