// View models and adaptors without a window: head grids, pooling, colour scales, per-head summaries,
// token chips.
#include "attention_math.h"
#include "figures.h"
#include "head_view_model.h"
#include "metrics_view.h"
#include "overview_view.h"
#include "token_chips.h"
#include "token_view.h"

#include <QAbstractItemModelTester>
#include <QFile>
#include <QImage>
#include <QSignalSpy>
#include <QTableView>
#include <QXmlStreamReader>

#include "support/test_paths.h"

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

TEST(RunSnapshot, SummariesComeFromTheCoreMetrics)
{
    // Two layers of sinkLayer() attention through the core's computeMetrics, as the compute thread does.
    const int64_t L = 2, H = 2, T = 4;
    ForwardResult fr;
    fr.tokens = {5, 6, 7, 8};
    fr.attention = {sinkLayer(H, T, 0.5f), sinkLayer(H, T, 0.3f)};
    ModelConfig config;
    config.layers = L;
    config.heads = H;
    config.kvHeads = H;
    auto metrics = computeMetrics(fr, config, fr.tokens, MetricsOptions{.path = MetricsPath::Materialized});
    ASSERT_TRUE(metrics.ok()) << metrics.error().message;
    RunSnapshot snap;
    snap.layers = L;
    snap.heads = H;
    for (int64_t id : fr.tokens) {
        snap.tokens.push_back(TokenInfo{id, "t", "t", false, false});
    }
    snap.attention = fr.attention;
    snap.metrics = metrics.value();
    deriveSummaries(snap);

    // First-token mass: queries 1..3 each pay s_h to key 0.
    const HeadMetric *mass = snap.headMetric("first_token_mass");
    ASSERT_NE(mass, nullptr);
    EXPECT_NEAR(mass->values.data[0], 0.5, 1e-6);
    EXPECT_NEAR(mass->values.data[1], 0.6, 1e-6);
    EXPECT_NEAR(mass->values.data[2], 0.3, 1e-6);
    // Received per token [L, T]: mean over heads of R_j / T; each row sums to one, so a layer's
    // received attention sums to one.
    ASSERT_EQ(snap.received.shape, (std::vector<int64_t>{L, T}));
    for (int64_t l = 0; l < L; ++l) {
        double total = 0;
        for (int64_t t = 0; t < T; ++t) {
            total += snap.received.data[size_t(l * T + t)];
        }
        EXPECT_NEAR(total, 1.0, 1e-5);
    }
    // Key 0 in layer 0: (1 + 3 * 0.5) / 4 for head 0 and (1 + 3 * 0.6) / 4 for head 1, averaged.
    EXPECT_NEAR(snap.received.data[0], ((1 + 1.5) / 4 + (1 + 1.8) / 4) / 2, 1e-6);
    EXPECT_EQ(receivedForLayer(snap, 0),
              std::vector<float>(snap.received.data.begin(), snap.received.data.begin() + T));
    // A sketch per head and transform.
    ASSERT_EQ(snap.sketches.size(), size_t(L * H));
    EXPECT_FLOAT_EQ(snap.sketch(1, 1, ScaleTransform::Raw)->maxValue, 1.0f);
}

TEST(AttentionMath, SketchGivesTheSameRangesAsTheFullHead)
{
    const FloatArray a = sinkLayer(2, 9, 0.4f);
    for (int64_t h = 0; h < 2; ++h) {
        const HeadMatrix m = headMatrix(a, h);
        const auto sketches = sketchHead(m, 1 << 12); // every visible cell sampled
        for (ScaleTransform transform : {ScaleTransform::Raw, ScaleTransform::RenormaliseWithoutSink}) {
            const TransformedHead t = transformHead(m, transform);
            const ScaleSketch &sketch = sketches[transform == ScaleTransform::Raw ? 0 : 1];
            for (ScaleMapping mapping : {ScaleMapping::Linear, ScaleMapping::Log}) {
                for (bool clamp : {false, true}) {
                    const ColourScale scale{
                        .mapping = mapping, .transform = transform, .clampPercentile = clamp, .percentile = 80};
                    const ValueRange full = colourRange(t.values, scale);
                    const ValueRange fromSketch = sketchRange(sketch, scale);
                    EXPECT_NEAR(fromSketch.lower, full.lower, 1e-6) << int(transform) << int(mapping) << clamp;
                    EXPECT_NEAR(fromSketch.upper, full.upper, 1e-6) << int(transform) << int(mapping) << clamp;
                }
            }
        }
    }
    // A bounded sample still has the exact extremes.
    const FloatArray big = sinkLayer(1, 300, 0.2f);
    const auto bounded = sketchHead(headMatrix(big, 0), 256);
    EXPECT_LE(bounded[0].sample.size(), 256u + 300u / 2);
    EXPECT_FLOAT_EQ(bounded[0].maxValue, 1.0f);
    EXPECT_NEAR(bounded[0].minPositive, 0.8 / 299, 1e-7);
    const ScaleSketch *both[] = {&bounded[0], &bounded[0]};
    EXPECT_EQ(unionRange(both, ColourScale{}), (ValueRange{0, 1}));
}

TEST(AttentionMath, RenormaliseWithoutSinkKeepsRemovedMassApart)
{
    const FloatArray a = sinkLayer(1, 4);
    const TransformedHead t = transformHead(headMatrix(a, 0), ScaleTransform::RenormaliseWithoutSink);
    ASSERT_EQ(t.removed.size(), 4u);
    EXPECT_FLOAT_EQ(t.removed[2], 0.5f);
    EXPECT_TRUE(std::isnan(t.values[2 * 4 + 0])); // the sink column is taken out
    EXPECT_NEAR(t.values[2 * 4 + 1], 0.5, 1e-6);  // 0.25 / (1 - 0.5)
    EXPECT_TRUE(std::isnan(t.values[2 * 4 + 3])); // masked: key after query
    EXPECT_TRUE(std::isnan(t.values[0 * 4 + 0])); // row 0 had everything on the sink
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
    auto metrics = std::make_shared<SinkMetrics>();
    metrics->layers = 2;
    metrics->heads = 3;
    HeadMetric mass{"first_token_mass", "M1", {}};
    mass.values.shape = {2, 3};
    mass.values.data = {0, 1, 2, 3, 4, 5};
    HeadMetric bound{"output_norm_bound", "M5", {}};
    bound.values = mass.values;
    bound.values.data[4] = std::nanf("");
    metrics->headMetrics = {mass, bound};
    snap->metrics = metrics;
    const PooledGrid g = overviewGrid(*snap, "first_token_mass");
    EXPECT_EQ(g.nx, 3);
    EXPECT_EQ(g.ny, 2);
    EXPECT_FLOAT_EQ(g.at(2, 1), 5);                       // head 2, layer 1
    EXPECT_EQ(headMetricRange(mass), (ValueRange{0, 1})); // shares keep a fixed scale
    EXPECT_EQ(headMetricRange(bound).upper, 5);           // others their data range, NaN skipped
    EXPECT_EQ(overviewGrid(*snap, "no_such_metric").nx, 0);
}

TEST(MetricsPanel, SortsHeadsByAnyMetricWithNanLast)
{
    auto snap = makeSnapshot(2, 3, 5);
    auto metrics = std::make_shared<SinkMetrics>();
    metrics->layers = 2;
    metrics->heads = 3;
    HeadMetric mass{"first_token_mass", "M1", {}};
    mass.values.shape = {2, 3};
    mass.values.data = {0.2f, 0.9f, 0.5f, 0.9f, 0.1f, 0.7f};
    HeadMetric entropy{"row_entropy", "M4", {}};
    entropy.values = mass.values;
    entropy.values.data = {0.3f, std::nanf(""), 0.1f, 0.6f, 0.2f, 0.5f};
    metrics->headMetrics = {mass, entropy};
    snap->metrics = metrics;

    MetricsView view;
    QAbstractItemModelTester tester(view.tableModel(), QAbstractItemModelTester::FailureReportingMode::Fatal);
    view.setSnapshot(snap);
    ASSERT_EQ(view.tableModel()->rowCount(), 6);
    ASSERT_EQ(view.tableModel()->columnCount(), 4); // layer, head, two metrics
    // Largest first_token_mass first; the tie (0.9 at L0 H1 and L1 H0) in reading order.
    EXPECT_EQ(view.headAtRow(0), (std::pair<int64_t, int64_t>{0, 1}));
    EXPECT_EQ(view.headAtRow(1), (std::pair<int64_t, int64_t>{1, 0}));
    EXPECT_EQ(view.headAtRow(5), (std::pair<int64_t, int64_t>{1, 1}));
    view.sortBy("row_entropy", false); // smallest first, NaN still last
    EXPECT_EQ(view.headAtRow(0), (std::pair<int64_t, int64_t>{0, 2}));
    EXPECT_EQ(view.headAtRow(5), (std::pair<int64_t, int64_t>{0, 1}));
    view.sortBy("row_entropy", true);
    EXPECT_EQ(view.headAtRow(0), (std::pair<int64_t, int64_t>{1, 0}));
    EXPECT_EQ(view.headAtRow(5), (std::pair<int64_t, int64_t>{0, 1}));
    // Clicking a row opens that head.
    QSignalSpy opened(&view, &MetricsView::headActivated);
    emit view.table()->clicked(view.table()->model()->index(0, 3));
    ASSERT_EQ(opened.count(), 1);
    EXPECT_EQ(opened.at(0).at(0).toLongLong(), 1);
    EXPECT_EQ(opened.at(0).at(1).toLongLong(), 0);
    // The sort survives a session round trip.
    MetricsView other;
    other.restoreState(view.saveState());
    other.setSnapshot(snap);
    EXPECT_EQ(other.sortMetric(), "row_entropy");
    EXPECT_EQ(other.headAtRow(0), (std::pair<int64_t, int64_t>{1, 0}));
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

    // Detected sinks are marked (role and tooltip with the threshold); out-of-range positions ignored.
    EXPECT_FALSE(model.index(0).data(TokenChipModel::SinkRole).isValid());
    model.setSinks({{0, 0.8f}, {7, 0.5f}}, 0.1);
    EXPECT_TRUE(model.isSink(0));
    EXPECT_FALSE(model.isSink(1));
    EXPECT_NEAR(model.index(0).data(TokenChipModel::SinkRole).toDouble(), 0.8, 1e-6);
    EXPECT_TRUE(model.index(0).data(Qt::ToolTipRole).toString().contains(QStringLiteral("detected sink")));
    EXPECT_TRUE(model.index(0).data(Qt::ToolTipRole).toString().contains(QStringLiteral("threshold 0.1")));
    model.setTokens(model.tokens()); // new tokens: marks cleared
    EXPECT_FALSE(model.isSink(0));
}

TEST(Figures, LinePlotWritesPngSvgPdf)
{
    sinkscope::testing::TempDir dir;
    LinePlot plot;
    plot.xLabel = QStringLiteral("position");
    plot.yLabel = QStringLiteral("log PPL");
    plot.series.push_back({QStringLiteral("dense"), {1, 2, 3, 4}, {3.0, 2.5, 2.4, 2.3}});
    plot.series.push_back({QStringLiteral("window 0+4"), {1, 2, 3, 4}, {3.0, 2.6, 2.9, std::nan("")}});
    FigureOptions options;
    options.pixelSize = QSize(800, 500);
    options.dpi = 100;
    options.title = QStringLiteral("NLL against position");
    options.caption = QStringLiteral("caption text");
    QString error;
    const QString png = QString::fromStdString(dir.file("line.png"));
    ASSERT_TRUE(writeLinePlot(png, plot, options, &error)) << error.toStdString();
    const QImage image(png);
    ASSERT_FALSE(image.isNull());
    EXPECT_EQ(image.size(), QSize(800, 500));
    // Both line colours are on the image.
    bool blue = false, vermilion = false;
    for (int y = 0; y < image.height(); ++y) {
        for (int x = 0; x < image.width(); ++x) {
            const QColor c = image.pixelColor(x, y);
            blue |= c == seriesColour(0);
            vermilion |= c == seriesColour(1);
        }
    }
    EXPECT_TRUE(blue);
    EXPECT_TRUE(vermilion);
    const QString svg = QString::fromStdString(dir.file("line.svg"));
    ASSERT_TRUE(writeLinePlot(svg, plot, options, &error)) << error.toStdString();
    QFile svgFile(svg);
    ASSERT_TRUE(svgFile.open(QIODevice::ReadOnly));
    QXmlStreamReader xml(&svgFile);
    int paths = 0;
    QStringList texts;
    while (!xml.atEnd()) {
        if (xml.readNext() == QXmlStreamReader::StartElement) {
            paths += xml.name() == QLatin1String("path") || xml.name() == QLatin1String("polyline");
            if (xml.name() == QLatin1String("text")) {
                texts << xml.readElementText(QXmlStreamReader::IncludeChildElements);
            }
        }
    }
    EXPECT_FALSE(xml.hasError()) << xml.errorString().toStdString();
    EXPECT_GE(paths, 2);
    const QString all = texts.join(QLatin1Char('|'));
    for (const char *expected :
         {"NLL against position", "position", "log PPL", "dense", "window 0+4", "caption text"}) {
        EXPECT_TRUE(all.contains(QLatin1String(expected))) << expected;
    }
    const QString pdf = QString::fromStdString(dir.file("line.pdf"));
    ASSERT_TRUE(writeLinePlot(pdf, plot, options, &error)) << error.toStdString();
    QFile pdfFile(pdf);
    ASSERT_TRUE(pdfFile.open(QIODevice::ReadOnly));
    EXPECT_TRUE(pdfFile.readAll().startsWith("%PDF-"));
    EXPECT_FALSE(writeLinePlot(QString::fromStdString(dir.file("line.bmp")), plot, options, &error));
    EXPECT_TRUE(error.contains(QStringLiteral("line.bmp")));
}
