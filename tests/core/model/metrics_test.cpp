// Sink metrics (sinkscope/metrics.h) on hand-built attention / hidden tensors with answers worked out
// by hand, the materialised and streaming paths against each other (random q/k and the tiny models),
// and the real-model check of docs/metrics.md on SmolLM2 (skipped when the model is not installed).
#include "sinkscope/analysis/attention_stats.h"
#include "sinkscope/analysis/metrics.h"
#include "sinkscope/config.h"
#include "sinkscope/model/convert.h"
#include "sinkscope/model/model.h"
#include "support/test_paths.h"
#include "support/tiny_models.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>

using namespace sinkscope;
namespace st = sinkscope::testing;

namespace {

using Matrix = std::vector<std::vector<float>>;

ModelConfig config(int64_t layers, int64_t heads, int64_t kvHeads = 0, int64_t headDim = 8)
{
    ModelConfig c;
    c.name = "hand-built";
    c.layers = layers;
    c.heads = heads;
    c.kvHeads = kvHeads ? kvHeads : heads;
    c.headDim = headDim;
    c.embedding = heads * headDim;
    return c;
}

// attention[l] = [H, T, T] from maps[l][h] (T x T, row = query).
ForwardResult withAttention(const std::vector<std::vector<Matrix>> &maps)
{
    ForwardResult r;
    for (const auto &layer : maps) {
        const int64_t h = static_cast<int64_t>(layer.size()), t = static_cast<int64_t>(layer[0].size());
        FloatArray a;
        a.shape = {h, t, t};
        for (const auto &m : layer) {
            for (const auto &row : m) {
                a.data.insert(a.data.end(), row.begin(), row.end());
            }
        }
        r.attention.push_back(std::move(a));
    }
    return r;
}

FloatArray array(std::vector<int64_t> shape, std::vector<float> data)
{
    return FloatArray{std::move(shape), std::move(data)};
}

std::shared_ptr<const SinkMetrics> compute(const ForwardResult &r, const ModelConfig &c,
                                           const std::vector<int64_t> &tokens, const MetricsOptions &o = {})
{
    auto m = computeMetrics(r, c, tokens, o);
    EXPECT_TRUE(m) << m.error().message;
    return m ? *m : nullptr;
}

// Row-major causal maps used below.
const Matrix kA = {{1, 0, 0}, {0.5f, 0.5f, 0}, {0.5f, 0.25f, 0.25f}};
const Matrix kUniform = {{1, 0, 0}, {0.5f, 0.5f, 0}, {1 / 3.f, 1 / 3.f, 1 / 3.f}};
const Matrix kAllFirst = {{1, 0, 0}, {1, 0, 0}, {1, 0, 0}};
const Matrix kIdentity = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};

} // namespace

// One head, T = 3, the map kA:
//   row 0 [1, 0, 0], row 1 [.5, .5, 0], row 2 [.5, .25, .25].
TEST(MetricsAttention, HandBuiltSingleHead)
{
    const auto m = compute(withAttention({{kA}}), config(1, 1), {10, 11, 12});
    ASSERT_TRUE(m);
    EXPECT_EQ(m->path, MetricsPath::Materialized);
    ASSERT_EQ(m->headMetrics.front().name, "first_token_mass");
    // M1: queries 1 and 2 pay .5 and .5 to key 0 -> 0.5.
    EXPECT_NEAR(m->head("first_token_mass", 0, 0), 0.5, 1e-6);
    // M2: alpha_1 = (1 + .5 + .5) / 3 = 2/3.
    EXPECT_NEAR(m->head("alpha_first", 0, 0), 2.0 / 3.0, 1e-6);
    // M3: R = [2, .75, .25]; R / (T - j) = [2/3, .375, .25]; top-2 = 2/3 + .375.
    EXPECT_EQ(m->receivedSum.shape, (std::vector<int64_t>{1, 1, 3}));
    EXPECT_NEAR(m->receivedSum.data[0], 2.0, 1e-6);
    EXPECT_NEAR(m->receivedSum.data[1], 0.75, 1e-6);
    EXPECT_NEAR(m->receivedSum.data[2], 0.25, 1e-6);
    EXPECT_NEAR(m->receivedMean.data[0], 2.0 / 3.0, 1e-6);
    EXPECT_NEAR(m->receivedMean.data[1], 0.375, 1e-6);
    EXPECT_NEAR(m->receivedMean.data[2], 0.25, 1e-6);
    EXPECT_NEAR(m->head("received_topk_mass", 0, 0), 2.0 / 3.0 + 0.375, 1e-6);
    // M4 rows: row 0 counts 0; row 1: ln 2 / ln 2 = 1; row 2: (.5 ln 2 + .5 ln 4) / ln 3 = 1.5 ln 2 / ln 3.
    const double row2 = 1.5 * std::log(2.0) / std::log(3.0); // 0.946395
    EXPECT_NEAR(m->head("row_entropy", 0, 0), (0 + 1 + row2) / 3, 1e-6);
    // M4 columns: column 0 [1, .5, .5] / 2 = [.5, .25, .25] -> 1.5 ln 2 / ln 3 = 0.946395;
    // column 1 [.5, .25] / .75 = [2/3, 1/3] -> 0.636514 / ln 2 = 0.918296; column 2 (one query) 0.
    EXPECT_NEAR(m->head("col_entropy_max", 0, 0), row2, 1e-6);
    // Sink-head rule with defaults (row < .5 and col > .8): row entropy 0.649 fails it.
    EXPECT_EQ(m->head("entropy_sink_head", 0, 0), 0.0f);
    // No value norms: M9 / M5 are NaN; no hidden states: no M6 / M11.
    EXPECT_TRUE(std::isnan(m->head("effective_first_token_mass", 0, 0)));
    EXPECT_TRUE(std::isnan(m->head("dormant", 0, 0)));
    EXPECT_TRUE(std::isnan(m->head("bos_mass", 0, 0)));
    EXPECT_FALSE(m->hasHidden);
    EXPECT_TRUE(m->activationsByLayer.empty());
    // Sink_1^0.3: alpha 2/3 > 0.3.
    EXPECT_FLOAT_EQ(m->sinkFraction, 1.0f);
}

// kA with value norms f = ||v_j W_O|| = [0.1, 1, 2]:
//   row 1: sum_j A f = .5*.1 + .5*1 = .55, share of key 0 = .05/.55 = 0.090909;
//   row 2: .5*.1 + .25*1 + .25*2 = .8, share .05/.8 = .0625.
//   effective = (0.090909 + 0.0625) / 2 = 0.0767045; raw 0.5 -> ratio 0.153409.
//   output bound = (row 0: .1 + .55 + .8) / 3 = 0.483333.
TEST(MetricsAttention, ValueWeightedEffectiveMass)
{
    ForwardResult r = withAttention({{kA}});
    r.valueNorms = array({1, 1, 3}, {0.1f, 1.0f, 2.0f});
    const auto m = compute(r, config(1, 1), {1, 2, 3});
    ASSERT_TRUE(m);
    EXPECT_NEAR(m->head("effective_first_token_mass", 0, 0), (0.05 / 0.55 + 0.0625) / 2, 1e-6);
    EXPECT_NEAR(m->head("effective_to_raw_ratio", 0, 0), (0.05 / 0.55 + 0.0625) / 2 / 0.5, 1e-6);
    EXPECT_NEAR(m->head("output_norm_bound", 0, 0), 1.45 / 3, 1e-6);
    EXPECT_NEAR(m->head("output_norm_bound_ln", 0, 0), 1.0, 1e-6); // the only head of its layer
}

// Two layers x two heads, T = 3:
//   L0H0 kA; L0H1 uniform causal; L1H0 everything on key 0; L1H1 identity (each query on itself).
TEST(MetricsAttention, LayersHeadsEntropyAndDormant)
{
    ForwardResult r = withAttention({{kA, kUniform}, {kAllFirst, kIdentity}});
    // f = [.01, 1, 1] for every head. L1H0 rows: .01 each -> bound .01; L1H1 rows .01, 1, 1 -> 2.01/3 = .67;
    // layer-1 mean (.01 + .67) / 2 = .34: L1H0 ln = .01/.34 = 0.0294 (< .5, and alpha 1 > eps: dormant),
    // L1H1 ln = .67/.34 = 1.97.
    r.valueNorms = array({2, 2, 3}, {0.01f, 1, 1, 0.01f, 1, 1, 0.01f, 1, 1, 0.01f, 1, 1});
    MetricsOptions o;
    o.sinkEpsilon = 0.5;
    const auto m = compute(r, config(2, 2), {1, 2, 3}, o);
    ASSERT_TRUE(m);
    // Uniform: first-token mass (1/2 + 1/3) / 2 = 5/12; alpha (1 + 1/2 + 1/3) / 3 = 11/18.
    EXPECT_NEAR(m->head("first_token_mass", 0, 1), 5.0 / 12.0, 1e-6);
    EXPECT_NEAR(m->head("alpha_first", 0, 1), 11.0 / 18.0, 1e-6);
    // Uniform rows have normalised entropy 1 (row 0 counts 0): 2/3.
    EXPECT_NEAR(m->head("row_entropy", 0, 1), 2.0 / 3.0, 1e-6);
    // Uniform column 0: [1, 1/2, 1/3] / (11/6) = [6/11, 3/11, 2/11]; entropy 0.9650 nats / ln 3 = 0.878368.
    // Column 1: [1/2, 1/3] / (5/6) = [.6, .4]: 0.673012 / ln 2 = 0.970951 -> the max.
    EXPECT_NEAR(m->head("col_entropy_max", 0, 1), 0.970951, 1e-5);
    // All on key 0: mass 1, alpha 1, rows of entropy 0, column 0 [1, 1, 1] uniform -> 1: a sink head.
    EXPECT_NEAR(m->head("first_token_mass", 1, 0), 1.0, 1e-6);
    EXPECT_NEAR(m->head("row_entropy", 1, 0), 0.0, 1e-6);
    EXPECT_NEAR(m->head("col_entropy_max", 1, 0), 1.0, 1e-6);
    EXPECT_EQ(m->head("entropy_sink_head", 1, 0), 1.0f);
    // Identity: no mass on key 0 from t >= 1, alpha 1/3, one-hot rows and columns: entropies 0.
    EXPECT_NEAR(m->head("first_token_mass", 1, 1), 0.0, 1e-6);
    EXPECT_NEAR(m->head("alpha_first", 1, 1), 1.0 / 3.0, 1e-6);
    EXPECT_NEAR(m->head("col_entropy_max", 1, 1), 0.0, 1e-6);
    // Sink_1^0.5: layer 0 alphas 2/3, 11/18 -> 1; layer 1 alphas 1, 1/3 -> .5; overall 3/4.
    ASSERT_EQ(m->sinkFractionByLayer.size(), 2u);
    EXPECT_FLOAT_EQ(m->sinkFractionByLayer[0], 1.0f);
    EXPECT_FLOAT_EQ(m->sinkFractionByLayer[1], 0.5f);
    EXPECT_FLOAT_EQ(m->sinkFraction, 0.75f);
    // M5.
    EXPECT_NEAR(m->head("output_norm_bound", 1, 0), 0.01, 1e-6);
    EXPECT_NEAR(m->head("output_norm_bound", 1, 1), 2.01 / 3, 1e-6);
    EXPECT_NEAR(m->head("output_norm_bound_ln", 1, 0), 0.01 / 0.34, 1e-5);
    EXPECT_EQ(m->head("dormant", 1, 0), 1.0f);
    EXPECT_EQ(m->head("dormant", 1, 1), 0.0f);
    // Effective mass of the all-on-first head: every row's whole contribution is key 0 -> 1, ratio 1.
    EXPECT_NEAR(m->head("effective_first_token_mass", 1, 0), 1.0, 1e-6);
    EXPECT_NEAR(m->head("effective_to_raw_ratio", 1, 0), 1.0, 1e-6);
    // Per-token received mean over the 4 heads for key 0: (2/3 + 11/18 + 1 + 1/3) / 4 = 0.652778.
    const TokenMetric *received = m->tokenMetric("received_mean");
    ASSERT_TRUE(received);
    EXPECT_NEAR(received->values.data[0], (2.0 / 3 + 11.0 / 18 + 1 + 1.0 / 3) / 4, 1e-6);
}

// T = 4, tokens [7, 5, 7, 9] with BOS = 7 at positions 0 and 2:
//   row 0 [1, 0, 0, 0], row 1 [.8, .2, 0, 0], row 2 [.6, .1, .3, 0], row 3 [.4, .1, .4, .1].
//   R = [2.8, .4, .7, .1]; R / (T - j) = [.7, .1333, .35, .1].
TEST(MetricsAttention, BosSetMassAndSinkDetection)
{
    const Matrix a = {{1, 0, 0, 0}, {0.8f, 0.2f, 0, 0}, {0.6f, 0.1f, 0.3f, 0}, {0.4f, 0.1f, 0.4f, 0.1f}};
    MetricsOptions o;
    o.bosTokenId = 7;
    o.sinkThreshold = 0.3;
    o.sinkMinQueries = 2;
    const auto m = compute(withAttention({{a}}), config(1, 1), {7, 5, 7, 9}, o);
    ASSERT_TRUE(m);
    // First token: (.8 + .6 + .4) / 3 = .6. BOS set {0, 2}: (.8 + .9 + .8) / 3 = .8333.
    EXPECT_NEAR(m->head("first_token_mass", 0, 0), 0.6, 1e-6);
    EXPECT_NEAR(m->head("bos_mass", 0, 0), 2.5 / 3, 1e-6);
    // Detected with threshold .3 over keys seen by >= 2 queries: 0 (.7) and 2 (.35); key 3 (.1) is not.
    ASSERT_EQ(m->sinks.size(), 2u);
    EXPECT_EQ(m->sinks[0].position, 0);
    EXPECT_EQ(m->sinks[0].tokenId, 7);
    EXPECT_NEAR(m->sinks[0].peakScore, 0.7, 1e-6);
    EXPECT_EQ(m->sinks[1].position, 2);
    EXPECT_NEAR(m->sinks[1].peakScore, 0.35, 1e-6);
    EXPECT_EQ(m->sinks[1].layers, std::vector<int>{0});
    // S = detected {0, 2}: the same rows as the BOS set.
    EXPECT_EQ(m->sinkSet, (std::vector<int64_t>{0, 2}));
    EXPECT_NEAR(m->head("sink_set_mass", 0, 0), 2.5 / 3, 1e-6);
    // A chosen S = {2}: (0 + .3 + .4) / 3.
    o.sinkPositions = {2};
    const auto chosen = compute(withAttention({{a}}), config(1, 1), {7, 5, 7, 9}, o);
    ASSERT_TRUE(chosen);
    EXPECT_NEAR(chosen->head("sink_set_mass", 0, 0), 0.7 / 3, 1e-6);
    // With the default minimum of 4 queries only key 0 can be detected at T = 4.
    o.sinkMinQueries = 4;
    const auto strict = compute(withAttention({{a}}), config(1, 1), {7, 5, 7, 9}, o);
    ASSERT_TRUE(strict);
    ASSERT_EQ(strict->sinks.size(), 1u);
    EXPECT_EQ(strict->sinks[0].position, 0);
    // top-1 received mass: .7.
    o.topK = 1;
    const auto top1 = compute(withAttention({{a}}), config(1, 1), {7, 5, 7, 9}, o);
    ASSERT_TRUE(top1);
    EXPECT_NEAR(top1->head("received_topk_mass", 0, 0), 0.7, 1e-6);
}

// Hidden [2, 3, 4]. Layer 0: 0.1 .. 1.2 (top 1.2, lower median 0.6, ratio 2). Layer 1: ten values of 0.1
// plus 500 at (token 0, dim 2) and -300 at (token 2, dim 1): lower median 0.1, ratio 5000; both pass
// |h| > 100 and ratio > 1000.
TEST(MetricsActivations, MassiveActivationsTopAndMedian)
{
    ForwardResult r = withAttention({{kUniform}, {kUniform}});
    std::vector<float> h;
    for (int i = 1; i <= 12; ++i) {
        h.push_back(0.1f * static_cast<float>(i) * (i % 2 ? 1.f : -1.f));
    }
    std::vector<float> h1(12, 0.1f);
    h1[0 * 4 + 2] = 500.0f;
    h1[2 * 4 + 1] = -300.0f;
    h.insert(h.end(), h1.begin(), h1.end());
    r.hidden = array({2, 3, 4}, h);
    const auto m = compute(r, config(2, 1), {1, 2, 3});
    ASSERT_TRUE(m);
    ASSERT_EQ(m->activationsByLayer.size(), 2u);
    const auto &l0 = m->activationsByLayer[0];
    EXPECT_NEAR(l0.top[0], 1.2, 1e-6);
    EXPECT_NEAR(l0.top[1], 1.1, 1e-6);
    EXPECT_NEAR(l0.top[2], 1.0, 1e-6);
    EXPECT_NEAR(l0.topValue, -1.2, 1e-6); // i = 12 is even: negative
    EXPECT_EQ(l0.topToken, 2);
    EXPECT_EQ(l0.topDim, 3);
    EXPECT_NEAR(l0.median, 0.6, 1e-6);
    EXPECT_NEAR(l0.ratio, 2.0, 1e-5);
    const auto &l1 = m->activationsByLayer[1];
    EXPECT_NEAR(l1.top[0], 500, 1e-4);
    EXPECT_NEAR(l1.top[1], 300, 1e-4);
    EXPECT_NEAR(l1.median, 0.1, 1e-7);
    EXPECT_NEAR(l1.ratio, 5000, 1e-2);
    EXPECT_EQ(m->topActivation.layer, 1);
    EXPECT_EQ(m->topActivation.topToken, 0);
    EXPECT_EQ(m->topActivation.topDim, 2);
    ASSERT_EQ(m->massiveCount, 2);
    EXPECT_EQ(m->massive[0].layer, 1);
    EXPECT_EQ(m->massive[0].token, 0);
    EXPECT_EQ(m->massive[0].dim, 2);
    EXPECT_FLOAT_EQ(m->massive[0].value, 500.0f);
    EXPECT_EQ(m->massive[1].token, 2);
    EXPECT_EQ(m->massive[1].dim, 1);
    EXPECT_FLOAT_EQ(m->massive[1].value, -300.0f);
    EXPECT_NEAR(m->massive[1].ratio, 3000, 1e-2);
    const TokenMetric *maxAbs = m->tokenMetric("max_abs_hidden");
    ASSERT_TRUE(maxAbs);
    EXPECT_EQ(maxAbs->values.shape, (std::vector<int64_t>{2, 3}));
    EXPECT_FLOAT_EQ(maxAbs->values.data[1 * 3 + 2], 300.0f);
}

// The median is the lower middle value of all T x D |h| of a layer (torch.median), checked against a sort
// on random states with an odd (37 x 13) and an even (10 x 7) count, ties and negative values included.
TEST(MetricsActivations, MedianIsTheLowerMiddleOfSortedAbsValues)
{
    std::mt19937 rng(7);
    std::normal_distribution<float> normal(0.0f, 3.0f);
    for (auto [t, d] : {std::pair<int64_t, int64_t>{37, 13}, std::pair<int64_t, int64_t>{10, 7}}) {
        std::vector<float> h(static_cast<size_t>(t * d));
        for (auto &v : h) {
            v = std::round(normal(rng) * 4.0f) / 4.0f; // quarter steps: plenty of equal |h|
        }
        ForwardResult r;
        std::vector<Matrix> maps(1, Matrix(static_cast<size_t>(t), std::vector<float>(static_cast<size_t>(t), 0.0f)));
        for (int64_t q = 0; q < t; ++q) {
            maps[0][static_cast<size_t>(q)][0] = 1.0f;
        }
        r = withAttention({maps});
        r.hidden = array({1, t, d}, h);
        const auto m = compute(r, config(1, 1), std::vector<int64_t>(static_cast<size_t>(t), 1));
        ASSERT_TRUE(m);
        std::vector<float> sorted;
        for (float v : h) {
            sorted.push_back(std::fabs(v));
        }
        std::sort(sorted.begin(), sorted.end());
        EXPECT_EQ(m->activationsByLayer[0].median, sorted[(sorted.size() - 1) / 2]) << t << " x " << d;
        EXPECT_EQ(m->activationsByLayer[0].top[0], sorted.back());
    }
}

// 30 layers, T = 5, D = 2. The BOS hidden state is (n_l, 0) with n = 1 for l < 3, 10 for 3 <= l < 25,
// 2 after: the largest norm jump is 2 -> 3 (start 3), the largest drop 24 -> 25 (end 25): span [3, 25).
// Token 1 is (1, .1) (|cos| .995) in layers 3..8 and (0, 1) elsewhere: 6 layers, 4 < 6 < 30 - 15: secondary.
// Token 2 is (-1, 0) everywhere: 22 layers >= 15: bos_sink. Token 3 is (1, 0) in layers 0 and 3..5: 3
// span layers: noise. Token 4 is (1, .62) everywhere: |cos| .8499 < .9, never marked.
TEST(MetricsActivations, SecondarySinksLabels)
{
    const int64_t layers = 30, t = 5;
    std::vector<std::vector<Matrix>> maps(layers, std::vector<Matrix>{Matrix(t, std::vector<float>(t, 0))});
    for (auto &layer : maps) {
        for (int64_t q = 0; q < t; ++q) {
            for (int64_t j = 0; j <= q; ++j) {
                layer[0][static_cast<size_t>(q)][static_cast<size_t>(j)] = 1.0f / static_cast<float>(q + 1);
            }
        }
    }
    ForwardResult r = withAttention(maps);
    std::vector<float> h;
    for (int64_t l = 0; l < layers; ++l) {
        const float n = l < 3 ? 1.f : l < 25 ? 10.f : 2.f;
        const bool t1 = l >= 3 && l <= 8, t3 = l == 0 || (l >= 3 && l <= 5);
        const std::vector<float> rows = {
            n, 0, t1 ? 1.f : 0.f, t1 ? 0.1f : 1.f, -1, 0, t3 ? 1.f : 0.f, t3 ? 0.f : 1.f, 1, 0.62f};
        h.insert(h.end(), rows.begin(), rows.end());
    }
    r.hidden = array({layers, t, 2}, h);
    const auto m = compute(r, config(layers, 1), {0, 1, 2, 3, 4});
    ASSERT_TRUE(m);
    EXPECT_EQ(m->bosPosition, 0);
    EXPECT_EQ(m->bosSpanStart, 3);
    EXPECT_EQ(m->bosSpanEnd, 25);
    ASSERT_EQ(m->secondarySinks.size(), 3u);
    EXPECT_EQ(m->secondarySinks[0].position, 1);
    EXPECT_EQ(m->secondarySinks[0].layers, (std::vector<int>{3, 4, 5, 6, 7, 8}));
    EXPECT_EQ(m->secondarySinks[0].kind, SecondarySinkKind::Secondary);
    EXPECT_EQ(m->secondarySinks[1].position, 2);
    EXPECT_EQ(m->secondarySinks[1].layers.size(), 22u);
    EXPECT_EQ(m->secondarySinks[1].kind, SecondarySinkKind::BosLike);
    EXPECT_EQ(m->secondarySinks[2].position, 3);
    EXPECT_EQ(m->secondarySinks[2].layers, (std::vector<int>{3, 4, 5}));
    EXPECT_EQ(m->secondarySinks[2].kind, SecondarySinkKind::Noise);
}

TEST(MetricsApi, CsvAndJson)
{
    ForwardResult r = withAttention({{kA, kUniform}});
    r.hidden = array({1, 3, 2}, {1, 2, 3, 4, 5, 6});
    MetricsOptions o;
    o.tokenTexts = {"<s>", "a", "b"};
    const auto m = compute(r, config(1, 2), {1, 2, 3}, o);
    ASSERT_TRUE(m);
    const std::string csv = m->headsCsv();
    EXPECT_EQ(csv.rfind("layer,head,first_token_mass,", 0), 0u) << csv;
    EXPECT_NE(csv.find("\n0,0,0.5,"), std::string::npos) << csv;
    EXPECT_NE(csv.find("\n0,1,0.4166667,"), std::string::npos) << csv;
    EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 3);
    const auto j = nlohmann::json::parse(m->toJson());
    EXPECT_EQ(j["format"], "sinkscope-metrics");
    EXPECT_EQ(j["path"], "materialized");
    EXPECT_EQ(j["tokens"], (std::vector<int64_t>{1, 2, 3}));
    EXPECT_EQ(j["token_texts"][0], "<s>");
    EXPECT_NEAR(j["heads"]["first_token_mass"][0][1].get<double>(), 5.0 / 12, 1e-6);
    EXPECT_TRUE(j["heads"]["bos_mass"][0][0].is_null()); // NaN
    EXPECT_EQ(j["sinks"]["threshold"], 0.1);
    EXPECT_EQ(j["sink_fraction"]["epsilon"], 0.3);
    EXPECT_EQ(j["received"]["mean"][0][0].size(), 3u);
    EXPECT_EQ(j["massive_activations"]["per_layer"].size(), 1u);
    EXPECT_TRUE(j["secondary_sinks"].contains("bos_span"));
}

TEST(MetricsApi, ErrorsNameWhatIsMissing)
{
    ForwardResult r; // nothing captured
    auto m = computeMetrics(r, config(2, 2), {1, 2, 3});
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error().code, ErrorCode::InvalidArgument);
    EXPECT_NE(m.error().message.find("queries and keys"), std::string::npos) << m.error().message;
    MetricsOptions o;
    o.path = MetricsPath::Materialized;
    r = withAttention({{kA}});
    auto wrong = computeMetrics(r, config(1, 1), {1, 2}, o); // T = 2 but attention is 3 x 3
    ASSERT_FALSE(wrong);
    EXPECT_NE(wrong.error().message.find("attention [1, 2, 2]"), std::string::npos) << wrong.error().message;
    r.valueNorms = array({1, 1, 2}, {1, 1});
    auto norms = computeMetrics(r, config(1, 1), {1, 2, 3});
    ASSERT_FALSE(norms);
    EXPECT_NE(norms.error().message.find("value norms"), std::string::npos);
    CancelToken cancel;
    cancel.cancel();
    o = {};
    o.cancel = &cancel;
    auto cancelled = computeMetrics(withAttention({{kA}}), config(1, 1), {1, 2, 3}, o);
    ASSERT_FALSE(cancelled);
    EXPECT_EQ(cancelled.error().code, ErrorCode::Cancelled);
}

namespace {

// Every head metric, the received arrays and (sameSinks) the sink fractions and detected sinks of the two
// results agree to `tol`. Returns the largest per-head difference.
double expectSameMetrics(const SinkMetrics &a, const SinkMetrics &b, double tol, bool sameSinks = true)
{
    double largest = 0;
    EXPECT_EQ(a.headMetrics.size(), b.headMetrics.size());
    if (a.headMetrics.size() != b.headMetrics.size()) {
        return largest;
    }
    for (size_t i = 0; i < a.headMetrics.size(); ++i) {
        const auto &x = a.headMetrics[i], &y = b.headMetrics[i];
        EXPECT_EQ(x.name, y.name);
        for (size_t k = 0; k < x.values.data.size(); ++k) {
            const float u = x.values.data[k], v = y.values.data[k];
            if (std::isnan(u) || std::isnan(v)) {
                EXPECT_TRUE(std::isnan(u) && std::isnan(v)) << x.name << " [" << k << "]";
            } else {
                EXPECT_NEAR(u, v, tol) << x.name << " [" << k << "]";
                largest = std::max(largest, static_cast<double>(std::fabs(u - v)));
            }
        }
    }
    EXPECT_EQ(a.receivedSum.data.size(), b.receivedSum.data.size());
    for (size_t k = 0; k < std::min(a.receivedSum.data.size(), b.receivedSum.data.size()); ++k) {
        // Column sums run up to T; compare them relative to their size.
        EXPECT_NEAR(a.receivedSum.data[k], b.receivedSum.data[k], tol * std::max(1.0f, a.receivedSum.data[k]));
        EXPECT_NEAR(a.receivedMean.data[k], b.receivedMean.data[k], tol) << "received mean [" << k << "]";
    }
    if (!sameSinks) {
        return largest; // thresholded outputs may flip for a score within rounding of the threshold
    }
    EXPECT_EQ(a.sinkFractionByLayer, b.sinkFractionByLayer);
    EXPECT_EQ(a.sinks.size(), b.sinks.size());
    for (size_t i = 0; i < std::min(a.sinks.size(), b.sinks.size()); ++i) {
        EXPECT_EQ(a.sinks[i].position, b.sinks[i].position);
        EXPECT_EQ(a.sinks[i].layers, b.sinks[i].layers);
    }
    return largest;
}

// Random post-RoPE-like q [H, T, d], k [Hkv, T, d] per layer, the exact causal softmax (double) as the
// materialised attention, random value norms; key 0 gets a bias so that sinks exist.
ForwardResult randomQk(int64_t layers, int64_t heads, int64_t kvHeads, int64_t t, int64_t d, uint32_t seed)
{
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::uniform_real_distribution<float> uniform(0.05f, 2.0f);
    ForwardResult r;
    r.valueNorms.shape = {layers, heads, t};
    for (int64_t l = 0; l < layers; ++l) {
        FloatArray q{{heads, t, d}, {}}, k{{kvHeads, t, d}, {}}, a{{heads, t, t}, {}};
        for (int64_t i = 0; i < heads * t * d; ++i) {
            q.data.push_back(1.5f * normal(rng));
        }
        for (int64_t i = 0; i < kvHeads * t * d; ++i) {
            k.data.push_back(1.5f * normal(rng) + ((i / d) % t == 0 ? 2.0f : 0.0f));
        }
        const double scale = 1.0 / std::sqrt(static_cast<double>(d));
        for (int64_t h = 0; h < heads; ++h) {
            const int64_t kv = h / (heads / kvHeads);
            for (int64_t i = 0; i < t; ++i) {
                std::vector<double> z(static_cast<size_t>(i + 1));
                double mx = -1e300;
                for (int64_t j = 0; j <= i; ++j) {
                    double s = 0;
                    for (int64_t c = 0; c < d; ++c) {
                        s += static_cast<double>(q.data[static_cast<size_t>((h * t + i) * d + c)]) *
                             k.data[static_cast<size_t>((kv * t + j) * d + c)];
                    }
                    z[static_cast<size_t>(j)] = s * scale;
                    mx = std::max(mx, z[static_cast<size_t>(j)]);
                }
                double sum = 0;
                for (double &v : z) {
                    v = std::exp(v - mx);
                    sum += v;
                }
                for (int64_t j = 0; j < t; ++j) {
                    a.data.push_back(j <= i ? static_cast<float>(z[static_cast<size_t>(j)] / sum) : 0.0f);
                }
            }
            for (int64_t j = 0; j < t; ++j) {
                r.valueNorms.data.push_back(uniform(rng));
            }
        }
        r.queries[static_cast<int>(l)] = std::move(q);
        r.keys[static_cast<int>(l)] = std::move(k);
        r.attention.push_back(std::move(a));
    }
    return r;
}

std::pair<std::shared_ptr<const SinkMetrics>, std::shared_ptr<const SinkMetrics>>
bothPaths(const ForwardResult &r, const ModelConfig &c, const std::vector<int64_t> &tokens, int64_t tile)
{
    MetricsOptions o;
    o.tileSize = tile;
    o.sinkMinQueries = 2;
    o.path = MetricsPath::Materialized;
    auto a = compute(r, c, tokens, o);
    o.path = MetricsPath::Streaming;
    auto b = compute(r, c, tokens, o);
    if (b) {
        EXPECT_EQ(b->path, MetricsPath::Streaming);
    }
    return {a, b};
}

std::vector<int64_t> iota(int64_t n)
{
    std::vector<int64_t> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        v[static_cast<size_t>(i)] = i + 1;
    }
    return v;
}

} // namespace

// Odd T with a partial last tile, GQA (4 query heads on 2 kv heads), several tile sizes, T = 1.
TEST(MetricsStreaming, AgreesWithMaterializedOnRandomQk)
{
    struct Case {
        int64_t t, tile;
    };
    for (Case c : {Case{37, 8}, Case{37, 256}, Case{33, 11}, Case{1, 4}, Case{2, 1}}) {
        SCOPED_TRACE("T = " + std::to_string(c.t) + ", tile " + std::to_string(c.tile));
        const ForwardResult r = randomQk(2, 4, 2, c.t, 8, static_cast<uint32_t>(c.t * 31 + c.tile));
        auto [a, b] = bothPaths(r, config(2, 4, 2), iota(c.t), c.tile);
        ASSERT_TRUE(a && b);
        expectSameMetrics(*a, *b, 1e-5);
    }
}

TEST(MetricsStreaming, AgreesWithMaterializedOnTinyModels)
{
    st::TempDir dir;
    for (auto [name, write] :
         {std::pair{"tiny_llama", &st::writeTinyLlamaGguf}, std::pair{"tiny_gpt2", &st::writeTinyGpt2Gguf}}) {
        SCOPED_TRACE(name);
        const std::string gguf = dir.file(std::string(name) + ".gguf"), pt = dir.file(std::string(name) + ".pt");
        write(gguf);
        Status converted = convertGguf(gguf, pt);
        ASSERT_TRUE(converted) << converted.error().message;
        auto model = Model::load(pt);
        ASSERT_TRUE(model) << model.error().message;
        const auto &c = (*model)->config();
        std::vector<int64_t> tokens;
        for (int64_t i = 0; i < 41; ++i) {
            tokens.push_back((i * 37 + 11) % st::tiny::kVocab);
        }
        CaptureOptions capture = metricsCapture(static_cast<int64_t>(tokens.size()), c, 1000);
        for (int64_t l = 0; l < c.layers; ++l) {
            capture.qkLayers.push_back(static_cast<int>(l));
        }
        auto r = (*model)->forward(ForwardRequest{.tokens = tokens, .capture = capture, .controls = {}});
        ASSERT_TRUE(r) << r.error().message;
        auto [a, b] = bothPaths(*r, c, tokens, 8);
        ASSERT_TRUE(a && b);
        expectSameMetrics(*a, *b, 1e-5);
        EXPECT_TRUE(a->hasHidden);
        EXPECT_FALSE(std::isnan(a->head("effective_first_token_mass", 0, 0)));

        // analyzeTokens reduces each layer inside the forward pass (a LayerHook) and holds none of its q/k
        // afterwards: on the CPU from the attention engine's own statistics (contract 5), the same numbers
        // as the streaming path's recomputation over a pass that kept every q/k, to the engine's tolerance.
        MetricsOptions streaming;
        streaming.path = MetricsPath::Streaming;
        streaming.tileSize = 8;
        auto inPass = analyzeTokens(**model, tokens, streaming, 0);
        ASSERT_TRUE(inPass) << inPass.error().message;
        EXPECT_EQ((*inPass)->path, MetricsPath::Streaming);
        expectSameMetrics(**inPass, *b, 1e-5);
        expectSameMetrics(**inPass, *a, 1e-5);

        // A device the build cannot compute on is refused before the pass.
        if (!SINKSCOPE_ENABLE_CUDA) {
            streaming.device = "cuda:0";
            auto refused = analyzeTokens(**model, tokens, streaming, 0);
            ASSERT_FALSE(refused);
            EXPECT_NE(refused.error().message.find("no CUDA kernels"), std::string::npos) << refused.error().message;
        }
    }
}

TEST(MetricsStreaming, LayerHookSeesEveryCapturedLayerAndCanStopThePass)
{
    st::TempDir dir;
    st::writeTinyLlamaGguf(dir.file("tiny.gguf"));
    ASSERT_TRUE(convertGguf(dir.file("tiny.gguf"), dir.file("tiny.pt")));
    auto model = Model::load(dir.file("tiny.pt"));
    ASSERT_TRUE(model) << model.error().message;
    const std::vector<int64_t> tokens{1, 5, 9, 2, 7};
    std::vector<int64_t> seen;
    ForwardRequest request{.tokens = tokens, .capture = {.qkLayers = {1, 0}}, .controls = {}, .layerHook = {}};
    request.layerHook = [&seen](int64_t layer, const LayerTensors &) -> Status {
        seen.push_back(layer);
        return Ok{};
    };
    auto r = (*model)->forward(request);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(seen, (std::vector<int64_t>{0, 1})) << "in layer order";
    EXPECT_TRUE(r->queries.empty()) << "hooked q/k are dropped, not returned";
    EXPECT_TRUE(r->keys.empty());

    // Without a hook the same capture returns them.
    request.layerHook = {};
    auto kept = (*model)->forward(request);
    ASSERT_TRUE(kept) << kept.error().message;
    EXPECT_EQ(kept->queries.size(), 2u);

    // A hook's error ends the pass and is what forward returns.
    seen.clear();
    request.layerHook = [&seen](int64_t layer, const LayerTensors &) -> Status {
        seen.push_back(layer);
        return makeError(ErrorCode::OutOfMemory, "layer " + std::to_string(layer) + " did not fit");
    };
    auto stopped = (*model)->forward(request);
    ASSERT_FALSE(stopped);
    EXPECT_EQ(stopped.error().code, ErrorCode::OutOfMemory);
    EXPECT_EQ(stopped.error().message, "layer 0 did not fit");
    EXPECT_EQ(seen, (std::vector<int64_t>{0}));
}

// The real-model check of docs/metrics.md (deliverable 5): SmolLM2-135M-Instruct on a natural paragraph
// (74 tokens, no BOS: the tokenizer adds none). What the documentation states, measured on three
// paragraphs with and without BOS: in layers 0-11 almost no head puts over half of its attention on the
// first token (0-3 of 108); the residual stream then gets a massive activation on the first token in
// layer 11 (dim 507, |h| ~ 2e4, ~1.3e4 x the layer median), and from layer 12 on most heads do
// (95-111 of 162) and Gu et al.'s alpha_1 > 0.3 holds in ~90 % of heads. A regression in the model path
// or in the metrics moves these numbers.
// SINKSCOPE_METRICS_OUT=<dir> also writes metrics.json and heads.csv there (the figures of the doc).
TEST(MetricsRealModel, SmolLM2SinksAfterTheMassiveActivation)
{
    const std::string gguf = st::smollm2GgufPath();
    if (gguf.empty()) {
        GTEST_SKIP() << "default model not installed (run tools/setup.sh)";
    }
    st::TempDir dir;
    Status converted = convertGguf(gguf, dir.file("smollm2.pt"));
    ASSERT_TRUE(converted) << converted.error().message;
    auto model = Model::load(dir.file("smollm2.pt"));
    ASSERT_TRUE(model) << model.error().message;
    const std::string paragraph =
        "The old lighthouse stood at the edge of the cliff for more than a century. Every night its keeper "
        "climbed the narrow stairs, trimmed the wick and watched the beam sweep across the dark water. Ships "
        "passing in the storm relied on that light to find the harbour, and the villagers said that as long "
        "as it burned, no sailor from their town would be lost at sea.";
    auto tokens = (*model)->tokenize(paragraph);
    ASSERT_TRUE(tokens) << tokens.error().message;
    auto metrics = analyzeTokens(**model, *tokens);
    ASSERT_TRUE(metrics) << metrics.error().message;
    const SinkMetrics &m = **metrics;
    ASSERT_EQ(m.layers, 30);
    ASSERT_EQ(m.heads, 9);
    EXPECT_EQ(m.path, MetricsPath::Materialized);
    EXPECT_EQ(m.tokenTexts.size(), tokens->size());
    if (const char *out = std::getenv("SINKSCOPE_METRICS_OUT"); out && *out) {
        std::ofstream(std::string(out) + "/metrics.json") << m.toJson();
        std::ofstream(std::string(out) + "/heads.csv") << m.headsCsv();
    }

    int64_t early = 0, late = 0;
    float lateAlpha = 0;
    std::string perLayer;
    for (int64_t l = 0; l < m.layers; ++l) {
        int64_t inLayer = 0;
        for (int64_t h = 0; h < m.heads; ++h) {
            inLayer += m.head("first_token_mass", l, h) > 0.5f;
        }
        perLayer += std::to_string(inLayer) + " ";
        (l < 12 ? early : late) += inLayer;
        lateAlpha += l >= 12 ? m.sinkFractionByLayer[static_cast<size_t>(l)] / 18.0f : 0.0f;
    }
    int onset = -1;
    for (const auto &a : m.activationsByLayer) {
        if (onset < 0 && a.ratio > 1000.0f) {
            onset = a.layer;
        }
    }
    std::cout << "T = " << m.length << ", heads with first-token mass > 0.5 per layer: " << perLayer << "\n"
              << "Sink_1^0.3 = " << m.sinkFraction << " (layers 12+: " << lateAlpha << "), top activation "
              << m.topActivation.topValue << " (layer " << m.topActivation.layer << ", token "
              << m.topActivation.topToken << ", dim " << m.topActivation.topDim << ", " << m.topActivation.ratio
              << " x median)\n";
    EXPECT_LT(early, 11) << early << " of 108 heads in layers 0-11";
    EXPECT_GT(late, 81) << late << " of 162 heads in layers 12-29";
    EXPECT_GT(lateAlpha, 0.8f);
    EXPECT_EQ(onset, 11);
    EXPECT_EQ(m.topActivation.topToken, 0);
    EXPECT_GT(m.topActivation.ratio, 1000.0f);
    EXPECT_GT(std::fabs(m.topActivation.topValue), 1e4f);
    ASSERT_FALSE(m.sinks.empty());
    EXPECT_EQ(m.sinks.front().position, 0);
    EXPECT_GE(m.sinks.front().layers.size(), 20u);

    // The streaming path on the same pass agrees (scores up to ~|30| here, hence 1e-4 rather than 1e-5).
    CaptureOptions capture = metricsCapture(static_cast<int64_t>(tokens->size()), (*model)->config(), 1000);
    for (int l = 0; l < 30; ++l) {
        capture.qkLayers.push_back(l);
    }
    auto r = (*model)->forward(ForwardRequest{.tokens = *tokens, .capture = capture, .controls = {}});
    ASSERT_TRUE(r) << r.error().message;
    auto [a, b] = bothPaths(*r, (*model)->config(), *tokens, 32);
    ASSERT_TRUE(a && b);
    std::cout << "largest per-head difference between the paths: " << expectSameMetrics(*a, *b, 1e-4, false) << "\n";
    // And M1 is the first-token mass that smollm2_test checks against transformers.
    const FloatArray reference = firstTokenMass(*r, 30, 9);
    for (size_t i = 0; i < reference.data.size(); ++i) {
        EXPECT_NEAR(a->headMetrics.front().values.data[i], reference.data[i], 1e-6);
    }
}
