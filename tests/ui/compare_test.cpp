// The Compare tab: the comparison's numbers (compare_model.h) against metrics computed independently per
// model through the core, checkpoint steps and their order, the shared colour range and the difference
// grid, failures and cancel; then the tab in the window on the tiny Llama (plots, export, session).
#include "compare_model.h"
#include "compare_view.h"
#include "heatmap_plot.h"
#include "main_window.h"
#include "session.h"
#include "tiny_window.h"

#include "sinkscope/analysis/metrics.h"
#include "sinkscope/model/convert.h"

#include <QFileInfo>
#include <QJsonArray>
#include <QSignalSpy>
#include <QTest>

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

namespace sinkscope::testing {
namespace {

using ui::CompareEntry;
using ui::CompareInput;
using ui::CompareRequest;
using ui::CompareResult;
using ui::computeComparison;
using ui::PooledGrid;
using ui::ValueRange;

const std::string kPrompt = "the cat sat on the mat";
constexpr float kTolerance = 1e-6f;

std::string gemma3Folder()
{
    return testDataDir() + "/families/gemma3/hf";
}

// The per-layer mean over heads of a metric, from the model's own metrics computed here: the GGUF
// converted by the core's converter into a separate folder, loaded, tokenized and analysed directly.
struct Independent {
    std::shared_ptr<const SinkMetrics> metrics;
    std::vector<float> layerMeans(const std::string &metric) const
    {
        const HeadMetric *h = metrics->headMetric(metric);
        std::vector<float> means;
        for (int64_t layer = 0; layer < metrics->layers; ++layer) {
            double sum = 0;
            int n = 0;
            for (int64_t head = 0; head < metrics->heads; ++head) {
                const float v = h->values.data[size_t(layer * metrics->heads + head)];
                if (!std::isnan(v)) {
                    sum += v;
                    ++n;
                }
            }
            means.push_back(n > 0 ? float(sum / n) : std::numeric_limits<float>::quiet_NaN());
        }
        return means;
    }
};

class CompareTest : public TinyWindowTest
{
protected:
    static void SetUpTestSuite()
    {
        TinyWindowTest::SetUpTestSuite();
        s_oldCache = qgetenv("SINKSCOPE_CACHE_DIR");
        qputenv("SINKSCOPE_CACHE_DIR", QByteArray::fromStdString(s_dir->file("cache")));
        for (int step : kSteps) {
            writeTinyLlamaCheckpointGguf(s_dir->file(stepFile(step).c_str()), step);
        }
        std::ofstream(s_dir->file("broken.gguf")) << "not a gguf file";
    }
    static void TearDownTestSuite()
    {
        if (s_oldCache.isEmpty()) {
            qunsetenv("SINKSCOPE_CACHE_DIR");
        } else {
            qputenv("SINKSCOPE_CACHE_DIR", s_oldCache);
        }
        TinyWindowTest::TearDownTestSuite();
    }

    static std::string stepFile(int step) { return "tiny-step" + std::to_string(step) + ".gguf"; }
    static std::string stepPath(int step) { return s_dir->file(stepFile(step).c_str()); }

    static Independent independent(int step)
    {
        const std::string pt = s_dir->file(("independent-" + std::to_string(step) + ".pt").c_str());
        if (!std::filesystem::exists(pt)) {
            const Status status = convertGguf(stepPath(step), pt);
            EXPECT_TRUE(status.ok()) << status.error().message;
        }
        auto model = Model::load(pt);
        EXPECT_TRUE(model.ok()) << model.error().message;
        auto tokens = model.value()->tokenize(kPrompt);
        EXPECT_TRUE(tokens.ok());
        auto metrics = analyzeTokens(*model.value(), tokens.value());
        EXPECT_TRUE(metrics.ok()) << metrics.error().message;
        return Independent{metrics.value()};
    }

    static CompareResult compareSources(const std::vector<std::string> &sources)
    {
        CompareRequest request;
        request.prompt = kPrompt;
        for (const std::string &s : sources) {
            request.models.push_back(CompareInput{s, nullptr});
        }
        CancelToken cancel;
        auto result = computeComparison(request, cancel);
        EXPECT_TRUE(result.ok()) << result.error().message;
        return result.ok() ? result.value() : CompareResult{};
    }

    static std::unique_ptr<ui::MainWindow> window()
    {
        ui::MainWindowOptions options;
        options.modelPath = s_model;
        options.prompt = QString::fromStdString(kPrompt);
        return openAndRun(options);
    }

    static bool waitShown(QSignalSpy &shown) { return shown.wait(120000) || !shown.isEmpty(); }

    static constexpr int kSteps[] = {0, 1000, 3000};
    static inline QByteArray s_oldCache;
};

TEST_F(CompareTest, SeriesGridIsEachCheckpointsLayerMeanInStepOrder)
{
    // Given out of order; the steps come from the file names.
    const CompareResult result = compareSources({stepPath(3000), stepPath(0), stepPath(1000)});
    ASSERT_EQ(result.series.size(), 3u);
    std::vector<const SinkMetrics *> series;
    for (size_t i = 0; i < 3; ++i) {
        const CompareEntry &e = result.series[i];
        ASSERT_TRUE(e.ok()) << e.error;
        ASSERT_TRUE(e.step.has_value());
        EXPECT_EQ(*e.step, kSteps[i]);
        EXPECT_EQ(e.label, "step " + std::to_string(kSteps[i]));
        EXPECT_EQ(e.name, "tiny-llama-step" + std::to_string(kSteps[i]));
        series.push_back(e.metrics.get());
    }
    for (const std::string metric : {"first_token_mass", "row_entropy"}) {
        const PooledGrid grid = ui::layerCheckpointGrid(series, metric);
        ASSERT_EQ(grid.nx, 3);
        ASSERT_EQ(grid.ny, tiny::kLayers);
        std::vector<std::vector<float>> expected;
        for (int step : kSteps) {
            expected.push_back(independent(step).layerMeans(metric));
        }
        for (int64_t c = 0; c < 3; ++c) {
            for (int64_t layer = 0; layer < grid.ny; ++layer) {
                EXPECT_NEAR(grid.at(c, layer), expected[size_t(c)][size_t(layer)], kTolerance)
                    << metric << " checkpoint " << c << " layer " << layer;
            }
        }
        // The checkpoints differ (q/k grow with the step), so a mixed-up order would show.
        EXPECT_GT(std::fabs(expected[0][1] - expected[2][1]), 1e-4f) << metric;
    }
}

TEST_F(CompareTest, EntriesWithoutAStepKeepTheirOrderAfterTheSeries)
{
    const std::string unnamed = s_dir->file("tiny-plain.gguf");
    writeTinyLlamaGguf(unnamed); // general.name has no step either
    const CompareResult result = compareSources({unnamed, stepPath(1000), stepPath(0)});
    ASSERT_EQ(result.series.size(), 3u);
    EXPECT_EQ(result.series[0].label, "step 0");
    EXPECT_EQ(result.series[1].label, "step 1000");
    EXPECT_FALSE(result.series[2].step.has_value());
    EXPECT_EQ(result.series[2].label, "tiny-plain.gguf");
}

TEST_F(CompareTest, SharedRangeCoversBothAndDifferenceIsBMinusA)
{
    const CompareResult result = compareSources({stepPath(0), stepPath(3000)});
    ASSERT_EQ(result.series.size(), 2u);
    const PooledGrid a = ui::compareHeadGrid(*result.series[0].metrics, "first_token_mass");
    const PooledGrid b = ui::compareHeadGrid(*result.series[1].metrics, "first_token_mass");
    ASSERT_EQ(a.data.size(), size_t(tiny::kLayers * tiny::kHeads));
    float lo = a.data[0], hi = a.data[0];
    for (const PooledGrid *g : {&a, &b}) {
        for (float v : g->data) {
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
    }
    const ValueRange range = ui::sharedRange(a, b);
    EXPECT_FLOAT_EQ(float(range.lower), lo);
    EXPECT_FLOAT_EQ(float(range.upper), hi);
    // Neither grid alone spans the shared range (else the test could not tell).
    EXPECT_FALSE(ui::finiteRange(a) == range && ui::finiteRange(b) == range);
    const auto diff = ui::differenceGrid(a, b);
    ASSERT_TRUE(diff.has_value());
    bool anyNonZero = false;
    for (size_t i = 0; i < a.data.size(); ++i) {
        EXPECT_FLOAT_EQ(diff->data[i], b.data[i] - a.data[i]);
        anyNonZero = anyNonZero || std::fabs(diff->data[i]) > 1e-5f;
    }
    EXPECT_TRUE(anyNonZero);
}

TEST_F(CompareTest, DifferentShapesGiveNoDifferenceGrid)
{
    const CompareResult result = compareSources({stepPath(0), gemma3Folder()});
    ASSERT_EQ(result.series.size(), 2u);
    ASSERT_TRUE(result.series[1].ok()) << result.series[1].error;
    const PooledGrid a = ui::compareHeadGrid(*result.series[0].metrics, "first_token_mass");
    const PooledGrid b = ui::compareHeadGrid(*result.series[1].metrics, "first_token_mass");
    EXPECT_NE(a.ny, b.ny);
    EXPECT_FALSE(ui::differenceGrid(a, b).has_value());
    // The series grid still covers the deeper model; the shallower one's missing layers are NaN.
    const PooledGrid grid =
        ui::layerCheckpointGrid({result.series[0].metrics.get(), result.series[1].metrics.get()}, "first_token_mass");
    EXPECT_EQ(grid.ny, std::max(a.ny, b.ny));
    EXPECT_TRUE(std::isnan(grid.at(0, grid.ny - 1)));
    EXPECT_FALSE(std::isnan(grid.at(1, grid.ny - 1)));
}

TEST_F(CompareTest, ABrokenFileIsAnEntryWithItsErrorAndTheOthersRun)
{
    const CompareResult result = compareSources({s_dir->file("broken.gguf"), stepPath(0)});
    ASSERT_EQ(result.series.size(), 2u);
    const CompareEntry &broken = result.series[1]; // no step: after the series
    EXPECT_FALSE(broken.ok());
    EXPECT_NE(broken.error.find("broken.gguf"), std::string::npos) << broken.error;
    EXPECT_TRUE(result.series[0].ok());
}

TEST_F(CompareTest, ACancelledComparisonReturnsCancelled)
{
    CompareRequest request;
    request.prompt = kPrompt;
    request.models = {CompareInput{stepPath(0), nullptr}, CompareInput{stepPath(1000), nullptr}};
    CancelToken cancel;
    int calls = 0;
    auto result = computeComparison(request, cancel, [&](double, const std::string &) {
        if (++calls == 2) {
            cancel.cancel();
        }
        return true;
    });
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.error().code, ErrorCode::Cancelled);
}

TEST_F(CompareTest, WindowShowsSeriesSharedScaleAndDifference)
{
    auto w = window();
    ui::CompareView *view = w->compareView();
    ASSERT_NE(view, nullptr);
    QSignalSpy shown(view, &ui::CompareView::comparisonShown);
    view->compareWith({QString::fromStdString(stepPath(3000)), QString::fromStdString(stepPath(0)),
                       QString::fromStdString(stepPath(1000))});
    ASSERT_TRUE(waitShown(shown)) << view->noteText().toStdString();
    ASSERT_TRUE(view->result());
    ASSERT_TRUE(view->result()->reference.has_value()); // the window's model
    ASSERT_EQ(view->result()->series.size(), 3u);
    // A checkpoint series: A is its first checkpoint, B its last.
    EXPECT_EQ(view->pairA(), 1);
    EXPECT_EQ(view->pairB(), 3);

    // The layer x checkpoint plot holds each checkpoint's own layer means.
    QCPColorMapData *series = view->seriesPlot()->colourMap()->data();
    ASSERT_EQ(series->keySize(), 3);
    ASSERT_EQ(series->valueSize(), tiny::kLayers);
    for (int c = 0; c < 3; ++c) {
        const std::vector<float> expected = independent(kSteps[c]).layerMeans("first_token_mass");
        for (int layer = 0; layer < tiny::kLayers; ++layer) {
            EXPECT_NEAR(series->cell(c, layer), expected[size_t(layer)], kTolerance) << c << ", " << layer;
        }
    }

    // A and B share one colour range, the min and max over both; the difference is B - A around 0.
    const QCPRange ra = view->plotA()->colourMap()->dataRange();
    const QCPRange rb = view->plotB()->colourMap()->dataRange();
    EXPECT_EQ(ra, rb);
    const auto &entries = view->result()->series;
    const PooledGrid ga = ui::compareHeadGrid(*entries.front().metrics, "first_token_mass");
    const PooledGrid gb = ui::compareHeadGrid(*entries.back().metrics, "first_token_mass");
    const ValueRange shared = ui::sharedRange(ga, gb);
    EXPECT_DOUBLE_EQ(ra.lower, shared.lower);
    EXPECT_DOUBLE_EQ(ra.upper, shared.upper);
    QCPColorMapData *diff = view->differencePlot()->colourMap()->data();
    ASSERT_EQ(diff->keySize(), tiny::kHeads);
    for (int layer = 0; layer < tiny::kLayers; ++layer) {
        for (int head = 0; head < tiny::kHeads; ++head) {
            EXPECT_NEAR(diff->cell(head, layer), gb.at(head, layer) - ga.at(head, layer), kTolerance);
        }
    }
    const QCPRange rd = view->differencePlot()->colourMap()->dataRange();
    EXPECT_DOUBLE_EQ(rd.lower, -rd.upper);
    EXPECT_FALSE(view->differencePlot()->isHidden());

    // Another metric redraws every grid from the same result.
    view->setMetric("row_entropy");
    const std::vector<float> entropy = independent(3000).layerMeans("row_entropy");
    EXPECT_NEAR(view->seriesPlot()->colourMap()->data()->cell(2, 1), entropy[1], kTolerance);
}

TEST_F(CompareTest, WindowSaysWhatFailsAndShowsTheRest)
{
    auto w = window();
    ui::CompareView *view = w->compareView();
    QSignalSpy shown(view, &ui::CompareView::comparisonShown);
    view->compareWith({QString::fromStdString(s_dir->file("broken.gguf")), QString::fromStdString(gemma3Folder())});
    ASSERT_TRUE(waitShown(shown));
    const QString note = view->noteText();
    EXPECT_TRUE(note.contains(QStringLiteral("broken.gguf"))) << note.toStdString();
    EXPECT_TRUE(w->messageBar()->isError());
    EXPECT_TRUE(w->messageBar()->text().contains(QStringLiteral("broken.gguf")));
    // The window's tiny Llama (2 x 4) against the Gemma 3 folder (6 x 4): both grids, no difference.
    view->setPair(0, 2); // entry 1 is the broken file
    EXPECT_TRUE(view->noteText().contains(QStringLiteral("no difference grid"))) << view->noteText().toStdString();
    EXPECT_TRUE(view->differencePlot()->isHidden());
    EXPECT_EQ(view->plotA()->colourMap()->data()->valueSize(), tiny::kLayers);
    EXPECT_EQ(view->plotB()->colourMap()->data()->valueSize(), 6);
    const auto entries = view->result()->entries();
    ASSERT_EQ(entries.size(), 3u);
    ASSERT_TRUE(entries[2]->ok()) << entries[2]->error;
    if (entries[0]->tokenCount != entries[2]->tokenCount) {
        EXPECT_TRUE(view->noteText().contains(QStringLiteral("token counts differ")));
    } else {
        EXPECT_FALSE(view->noteText().contains(QStringLiteral("token counts differ")));
    }
}

TEST_F(CompareTest, CancelDropsTheComparison)
{
    auto w = window();
    ui::CompareView *view = w->compareView();
    QSignalSpy shown(view, &ui::CompareView::comparisonShown);
    view->compareWith({QString::fromStdString(stepPath(0)), QString::fromStdString(stepPath(1000))});
    EXPECT_TRUE(view->isBusy());
    view->cancel();
    EXPECT_FALSE(view->isBusy());
    EXPECT_FALSE(shown.wait(3000));
    EXPECT_FALSE(view->result());
    EXPECT_TRUE(view->noteText().isEmpty());
    // The window still works: the next comparison runs.
    view->compare();
    EXPECT_TRUE(waitShown(shown));
    EXPECT_TRUE(view->result());
}

TEST_F(CompareTest, ExportsPngSvgPdfAndSessionsKeepTheModels)
{
    auto w = window();
    ui::CompareView *view = w->compareView();
    QSignalSpy shown(view, &ui::CompareView::comparisonShown);
    const QStringList sources{QString::fromStdString(stepPath(0)), QString::fromStdString(stepPath(1000))};
    view->compareWith(sources);
    ASSERT_TRUE(waitShown(shown));
    w->showView(QStringLiteral("compare"));
    for (const char *name : {"compare.png", "compare.svg", "compare.pdf"}) {
        const QString path = file(name);
        QString error;
        ui::FigureOptions options = w->defaultFigureOptions();
        options.pixelSize = QSize(900, 700);
        ASSERT_TRUE(w->exportCurrentView(path, options, &error)) << error.toStdString();
        EXPECT_GT(QFileInfo(path).size(), 1000) << name;
    }
    const ui::ViewData data = view->currentData();
    EXPECT_EQ(int64_t(data.rows.size()), 3 * tiny::kLayers * tiny::kHeads); // the window's model and two checkpoints

    const ui::Session session = w->currentSession();
    const QJsonObject state = session.views.value(QStringLiteral("compare")).toObject();
    QStringList saved;
    for (const QJsonValue &v : state.value(QStringLiteral("models")).toArray()) {
        saved << v.toString();
    }
    EXPECT_EQ(saved, sources);
    // Restored (a session opens after its run): the models come back and are compared again.
    shown.clear();
    view->restoreState(state);
    EXPECT_EQ(view->models(), sources);
    EXPECT_TRUE(waitShown(shown));
    // An older session without the field clears the comparison and loads.
    view->restoreState(QJsonObject{{QStringLiteral("metric"), QStringLiteral("first_token_mass")}});
    EXPECT_TRUE(view->models().isEmpty());
    EXPECT_FALSE(view->result());
}

} // namespace
} // namespace sinkscope::testing
