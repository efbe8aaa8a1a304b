// View models and adaptors without a window: head grids, pooling, colour scales, per-head summaries,
// token chips.
#include "attention_math.h"
#include "head_view_model.h"
#include "overview_view.h"
#include "token_chips.h"

#include <QAbstractItemModelTester>

#include <gtest/gtest.h>

#include <cmath>

using namespace sinkscope;
using namespace sinkscope::ui;

namespace {

// Causal attention [H, T, T]: head h puts mass s_h on key 0 and spreads the rest evenly over keys 1..q.
FloatArray sinkLayer(int64_t heads, int64_t T, float sinkBase = 0.5f)
{
    FloatArray a;
    a.shape = {heads, T, T};
    a.data.assign(size_t(heads * T * T), 0.0f);
    for (int64_t h = 0; h < heads; ++h) {
        const float sink = sinkBase + 0.1f * float(h);
        for (int64_t q = 0; q < T; ++q) {
            float *row = a.data.data() + (h * T + q) * T;
            if (q == 0) {
                row[0] = 1.0f;
                continue;
            }
            row[0] = sink;
            for (int64_t k = 1; k <= q; ++k) {
                row[k] = (1.0f - sink) / float(q);
            }
        }
    }
    return a;
}

std::shared_ptr<RunSnapshot> makeSnapshot(int64_t layers, int64_t heads, int64_t T)
{
    auto s = std::make_shared<RunSnapshot>();
    s->layers = layers;
    s->heads = heads;
    for (int64_t t = 0; t < T; ++t) {
        s->tokens.push_back(TokenInfo{t, "t" + std::to_string(t), "t", t == 0, t == 0});
    }
    for (int64_t l = 0; l < layers; ++l) {
        s->attention.push_back(sinkLayer(heads, T, 0.3f + 0.05f * float(l)));
    }
    return s;
}

} // namespace

TEST(AttentionMath, HeadMatrixSlicesTheRightHead)
{
    const FloatArray a = sinkLayer(3, 5);
    const HeadMatrix m = headMatrix(a, 2);
    ASSERT_TRUE(m.valid());
    EXPECT_EQ(m.rows, 5);
    EXPECT_FLOAT_EQ(m.at(3, 0), 0.5f + 0.2f);
    EXPECT_FALSE(headMatrix(a, 3).valid());
    EXPECT_FALSE(headMatrix(FloatArray{}, 0).valid());
}

TEST(AttentionMath, FirstTokenMassAndEntropy)
{
    const FloatArray a = sinkLayer(2, 4);
    const auto mass = firstTokenMassOfLayer(a);
    ASSERT_EQ(mass.size(), 2u);
    EXPECT_NEAR(mass[0], 0.5, 1e-6); // queries 1..3 each pay 0.5
    EXPECT_NEAR(mass[1], 0.6, 1e-6);
    const auto entropy = meanRowEntropy(a);
    // Row q (q >= 1): -(s log s) - q * (r/q) log(r/q), r = 1 - s.
    double expected = 0;
    for (int q = 1; q < 4; ++q) {
        const double s = 0.5, r = 0.5 / q;
        expected += -(s * std::log(s)) - q * r * std::log(r);
    }
    EXPECT_NEAR(entropy[0], expected / 3, 1e-5);
    const auto received = receivedAttention(a);
    ASSERT_EQ(received.size(), 4u);
    double total = 0;
    for (float v : received) {
        total += v;
    }
    EXPECT_NEAR(total, 1.0, 1e-5); // every row sums to one, averaged over rows and heads
}

TEST(AttentionMath, RenormaliseWithoutSinkKeepsRemovedMassApart)
{
    const FloatArray a = sinkLayer(1, 4);
    const TransformedHead t = transformHead(headMatrix(a, 0), ScaleTransform::RenormaliseWithoutSink);
    ASSERT_EQ(t.removed.size(), 4u);
    EXPECT_FLOAT_EQ(t.removed[2], 0.5f);
    EXPECT_TRUE(std::isnan(t.values[2 * 4 + 0]));   // the sink column is taken out
    EXPECT_NEAR(t.values[2 * 4 + 1], 0.5, 1e-6);    // 0.25 / (1 - 0.5)
    EXPECT_TRUE(std::isnan(t.values[2 * 4 + 3]));   // masked: key after query
    EXPECT_TRUE(std::isnan(t.values[0 * 4 + 0]));   // row 0 had everything on the sink
    const TransformedHead raw = transformHead(headMatrix(a, 0), ScaleTransform::Raw);
    EXPECT_TRUE(raw.removed.empty());
    EXPECT_FLOAT_EQ(raw.values[2 * 4 + 0], 0.5f);
    EXPECT_TRUE(std::isnan(raw.values[1 * 4 + 2]));
}

TEST(AttentionMath, ColourRangeModes)
{
    std::vector<float> values;
    for (int i = 0; i <= 100; ++i) {
        values.push_back(float(i) / 100.0f);
    }
    values.push_back(std::nanf(""));
    ColourScale linear;
    EXPECT_EQ(colourRange(values, linear), (ValueRange{0.0, 1.0}));
    ColourScale clamp;
    clamp.clampPercentile = true;
    clamp.percentile = 90;
    EXPECT_NEAR(colourRange(values, clamp).upper, 0.9, 1e-6);
    ColourScale log;
    log.mapping = ScaleMapping::Log;
    const ValueRange lr = colourRange(values, log);
    EXPECT_NEAR(lr.lower, 0.01, 1e-6); // smallest positive value
    EXPECT_NEAR(lr.upper, 1.0, 1e-6);
    EXPECT_NEAR(normalisedValue(0.1, lr, ScaleMapping::Log), 0.5, 1e-6);
    EXPECT_EQ(normalisedValue(0.0, lr, ScaleMapping::Log), 0.0);
    EXPECT_NEAR(normalisedValue(0.25, ValueRange{0, 0.5}, ScaleMapping::Linear), 0.5, 1e-9);
}

TEST(AttentionMath, PoolingMaxAndMean)
{
    TransformedHead t;
    t.rows = 4;
    t.cols = 4;
    t.values = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, std::nanf("")};
    const PooledGrid max = poolWindow(t, TokenWindow{}, 2, 2, Pooling::Max);
    ASSERT_EQ(max.nx, 2);
    ASSERT_EQ(max.ny, 2);
    EXPECT_EQ(max.keysPerCell, 2);
    EXPECT_FLOAT_EQ(max.at(0, 0), 6);
    EXPECT_FLOAT_EQ(max.at(1, 1), 15); // NaN ignored
    EXPECT_DOUBLE_EQ(max.keyCentre(0), 0.5);
    const PooledGrid mean = poolWindow(t, TokenWindow{}, 2, 2, Pooling::Mean);
    EXPECT_FLOAT_EQ(mean.at(0, 0), 3.5f);
    EXPECT_FLOAT_EQ(mean.at(1, 1), (11 + 12 + 15) / 3.0f);
    // Zoomed in: the window comes back at full resolution.
    const PooledGrid zoom = poolWindow(t, TokenWindow{1, 2, 2, 3}, 100, 100, Pooling::Max);
    EXPECT_EQ(zoom.nx, 2);
    EXPECT_EQ(zoom.keysPerCell, 1);
    EXPECT_FLOAT_EQ(zoom.at(0, 0), 7);
    EXPECT_DOUBLE_EQ(zoom.keyCentre(1), 3.0);
    // A long prompt never yields more cells than the pixel budget.
    TransformedHead big;
    big.rows = big.cols = 1000;
    big.values.assign(1000 * 1000, 0.5f);
    const PooledGrid g = poolWindow(big, TokenWindow{}, 300, 200, Pooling::Mean);
    EXPECT_LE(g.nx, 300);
    EXPECT_LE(g.ny, 200);
    EXPECT_FLOAT_EQ(g.at(0, 0), 0.5f);
}

TEST(HeadViewModel, SwitchingHeadsReadsTheSnapshot)
{
    HeadViewModel model;
    model.setSnapshot(makeSnapshot(2, 3, 6));
    ASSERT_TRUE(model.valid());
    EXPECT_FLOAT_EQ(model.rawValue(4, 0), 0.3f);
    EXPECT_TRUE(model.setHead(1, 2));
    EXPECT_FLOAT_EQ(model.rawValue(4, 0), 0.35f + 0.2f);
    EXPECT_FALSE(model.setHead(1, 2));
    EXPECT_TRUE(model.stepHead(+1)); // wraps to layer 0 head 0
    EXPECT_EQ(model.layer(), 0);
    EXPECT_EQ(model.head(), 0);
    EXPECT_TRUE(model.stepHead(-1));
    EXPECT_EQ(model.layer(), 1);
    EXPECT_EQ(model.head(), 2);
    EXPECT_TRUE(model.stepLayer(+1));
    EXPECT_EQ(model.layer(), 0);
    EXPECT_TRUE(model.setHead(99, 99)); // clamped
    EXPECT_EQ(model.layer(), 1);
    EXPECT_EQ(model.head(), 2);
}

TEST(HeadViewModel, ScaleModesAndSharedRange)
{
    HeadViewModel model;
    model.setSnapshot(makeSnapshot(2, 3, 8));
    model.setHead(0, 0);
    ColourScale scale;
    model.setScale(scale);
    EXPECT_NEAR(model.range().upper, 1.0, 1e-6); // row 0
    scale.transform = ScaleTransform::RenormaliseWithoutSink;
    model.setScale(scale);
    EXPECT_NEAR(model.displayValue(2, 1), 0.5, 1e-6);
    EXPECT_NEAR(model.removedMass(2), 0.3, 1e-6);
    EXPECT_NEAR(model.range().upper, 1.0, 1e-6); // query 1 puts all remaining mass on key 1
    scale.shared = true;
    model.setScale(scale);
    const ValueRange shared = model.range();
    model.setHead(1, 2);
    EXPECT_EQ(model.range(), shared); // same scale on every head
    const PooledGrid grid = model.grid(TokenWindow{}, 4, 4);
    EXPECT_EQ(grid.nx, 4);
    EXPECT_EQ(grid.keysPerCell, 2);
}

TEST(OverviewGrid, LayerByHeadLayout)
{
    auto snap = makeSnapshot(2, 3, 5);
    snap->firstTokenMass.shape = {2, 3};
    snap->firstTokenMass.data = {0, 1, 2, 3, 4, 5};
    snap->meanEntropy = snap->firstTokenMass;
    const PooledGrid g = overviewGrid(*snap, OverviewQuantity::FirstTokenMass);
    EXPECT_EQ(g.nx, 3);
    EXPECT_EQ(g.ny, 2);
    EXPECT_FLOAT_EQ(g.at(2, 1), 5); // head 2, layer 1
    EXPECT_EQ(overviewRange(OverviewQuantity::FirstTokenMass, g), (ValueRange{0, 1}));
    EXPECT_EQ(overviewRange(OverviewQuantity::MeanEntropy, g).upper, 5);
}

TEST(TokenChips, DisplayTextAndModel)
{
    EXPECT_EQ(displayTokenText(" the"), QStringLiteral("\u00b7the"));
    EXPECT_EQ(displayTokenText("a\nb\t"), QStringLiteral("a\u21b5b\u2192"));
    EXPECT_EQ(displayTokenText("\xe2\x82"), QStringLiteral("<0xE2><0x82>")); // partial UTF-8
    EXPECT_EQ(displayTokenText("\xc3\xa9"), QStringLiteral("\u00e9"));
    EXPECT_EQ(abbreviate(QStringLiteral("abcdefgh"), 5), QStringLiteral("abcd\u2026"));

    TokenChipModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::Fatal);
    model.setTokens({TokenInfo{1, "<s>", "<s>", true, true}, TokenInfo{42, " hi", "\u0120hi", false, false}});
    ASSERT_EQ(model.rowCount(), 2);
    EXPECT_EQ(model.index(1).data().toString(), QStringLiteral("\u00b7hi"));
    EXPECT_EQ(model.index(1).data(TokenChipModel::IdRole).toLongLong(), 42);
    EXPECT_TRUE(model.index(0).data(TokenChipModel::BosRole).toBool());
    EXPECT_TRUE(model.index(0).data(TokenChipModel::SpecialRole).toBool());
    EXPECT_FALSE(model.index(1).data(TokenChipModel::SpecialRole).toBool());
    EXPECT_TRUE(model.index(1).data(Qt::ToolTipRole).toString().contains(QStringLiteral("id 42")));
    EXPECT_FALSE(model.index(0).data(TokenChipModel::WeightRole).isValid());
    model.setWeights({1.0f, 0.25f});
    EXPECT_DOUBLE_EQ(model.index(1).data(TokenChipModel::WeightRole).toDouble(), 0.25);
    model.setWeights({1.0f}); // wrong length: cleared
    EXPECT_FALSE(model.index(1).data(TokenChipModel::WeightRole).isValid());
}
