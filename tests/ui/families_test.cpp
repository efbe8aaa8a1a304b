// The window's part of "more models": a Hugging Face folder opens through the bridge (converted once into
// the cache), sliding-window layers are marked and filtered in the overview and masked in the head view,
// learned sinks get their own key column, and the Models menu offers Gemma 3 only when it is installed.
// Tiny random models from tests/data/families/ (gemma3: 5 sliding layers of window 8 + 1 global;
// gpt_oss: learned sinks, sliding(8) and full layers alternating; llama: neither).
#include "compute_bridge.h"
#include "head_view.h"
#include "heatmap_plot.h"
#include "model_catalog.h"
#include "overview_view.h"
#include "run_controller.h"
#include "tiny_window.h"

#include "support/test_paths.h"

#include <QComboBox>
#include <QFile>
#include <QFileInfo>
#include <QMenu>
#include <QSignalSpy>

#include <gtest/gtest.h>

#include <cmath>

using namespace sinkscope;
using namespace sinkscope::ui;

namespace {

QString familyFolder(const char *family)
{
    return QString::fromStdString(sinkscope::testing::testDataDir() + "/families/" + family + "/hf");
}

// A prompt longer than the tiny models' window of 8 tokens.
const QString kLongPrompt = QStringLiteral("the cat sat on the mat and the dog sat on the log and then they slept");

class FamiliesTest : public ::testing::Test
{
protected:
    // Conversions go into a fresh cache for the suite, never the user's.
    static void SetUpTestSuite()
    {
        s_cache = new sinkscope::testing::TempDir;
        s_oldCache = qgetenv("SINKSCOPE_CACHE_DIR");
        qputenv("SINKSCOPE_CACHE_DIR", QByteArray::fromStdString(s_cache->path()));
    }
    static void TearDownTestSuite()
    {
        if (s_oldCache.isEmpty()) {
            qunsetenv("SINKSCOPE_CACHE_DIR");
        } else {
            qputenv("SINKSCOPE_CACHE_DIR", s_oldCache);
        }
        delete s_cache;
        s_cache = nullptr;
    }

    // A controller with the family's Hugging Face folder loaded and the long prompt run.
    static std::unique_ptr<RunController> runFolder(const char *family, int64_t mapTokens = kMapTokens)
    {
        auto run = std::make_unique<RunController>(mapTokens);
        QSignalSpy loaded(run.get(), &RunController::modelLoaded);
        QSignalSpy failed(run.get(), &RunController::failed);
        run->loadModel(familyFolder(family));
        EXPECT_TRUE(loaded.wait(120000)) << (failed.isEmpty() ? "" : failed.last().at(2).toString().toStdString());
        if (!run->model()) {
            return run;
        }
        EXPECT_EQ(run->tokenize(kLongPrompt, true), QString());
        QSignalSpy ready(run.get(), &RunController::snapshotReady);
        EXPECT_EQ(run->run(), QString());
        EXPECT_TRUE(ready.wait(120000));
        return run;
    }

    static inline sinkscope::testing::TempDir *s_cache = nullptr;
    static inline QByteArray s_oldCache;
};

} // namespace

TEST_F(FamiliesTest, HuggingFaceFolderOpensThroughTheBridgeIntoTheCache)
{
    const QString folder = familyFolder("gemma3");
    const QString archive = ComputeBridge::convertedPathFor(folder);
    EXPECT_TRUE(archive.startsWith(QString::fromStdString(s_cache->path())));
    QFile::remove(archive);

    RunController run;
    QSignalSpy progress(run.bridge(), &ComputeBridge::progress);
    QSignalSpy loaded(&run, &RunController::modelLoaded);
    run.loadModel(folder);
    ASSERT_TRUE(loaded.wait(120000));
    bool converting = false;
    for (const QList<QVariant> &args : progress) {
        converting |= args.at(2).toString().startsWith(QStringLiteral("Converting"));
    }
    EXPECT_TRUE(converting);
    EXPECT_EQ(run.modelPath(), archive); // the archive in the cache is what was loaded
    EXPECT_EQ(run.modelSource(), folder);
    EXPECT_TRUE(QFileInfo::exists(archive));
    EXPECT_EQ(std::string(architectureName(run.model()->config().architecture)), "gemma3");

    // Its config.json opens the same model, from the archive already converted.
    QSignalSpy again(&run, &RunController::modelLoaded);
    progress.clear();
    run.loadModel(folder + QStringLiteral("/config.json"));
    ASSERT_TRUE(again.wait(60000));
    EXPECT_EQ(run.modelPath(), archive);
    for (const QList<QVariant> &args : progress) {
        EXPECT_FALSE(args.at(2).toString().startsWith(QStringLiteral("Converting")));
    }

    // A folder that is no model: one line naming it, and the loaded model stays.
    sinkscope::testing::TempDir empty;
    QSignalSpy failed(&run, &RunController::failed);
    run.loadModel(QString::fromStdString(empty.path()));
    ASSERT_TRUE(failed.wait(60000));
    const QString message = failed.last().at(2).toString();
    EXPECT_TRUE(message.contains(QString::fromStdString(empty.path()))) << message.toStdString();
    EXPECT_FALSE(message.contains(QLatin1Char('\n'))) << message.toStdString();
    EXPECT_EQ(run.modelPath(), archive);
}

TEST_F(FamiliesTest, SlidingWindowCellsAreMaskedNotZero)
{
    auto run = runFolder("gemma3");
    const auto snap = run->snapshot();
    ASSERT_TRUE(snap && snap->metrics);
    const int64_t T = snap->tokenCount();
    ASSERT_GT(T, 10);
    ASSERT_EQ(snap->windowOf(0), 8);
    ASSERT_EQ(snap->windowOf(5), 0);

    HeadViewModel model;
    model.setSnapshot(snap);
    model.setHead(0, 1); // sliding
    EXPECT_EQ(model.window(), 8);
    // The model gives 0 to keys out of the window; the view calls them masked and draws no value.
    EXPECT_EQ(model.rawValue(T - 1, 0), 0.0f);
    EXPECT_TRUE(model.outsideWindow(T - 1, 0));
    EXPECT_TRUE(model.masked(T - 1, 0));
    EXPECT_TRUE(std::isnan(model.displayValue(T - 1, 0)));
    EXPECT_TRUE(model.masked(T - 1, T - 9));  // k = q - W
    EXPECT_FALSE(model.masked(T - 1, T - 8)); // k = q - W + 1: the oldest key in the window
    EXPECT_FALSE(std::isnan(model.displayValue(T - 1, T - 8)));
    EXPECT_TRUE(model.masked(3, 4)); // causal
    EXPECT_FALSE(model.outsideWindow(3, 4));
    const PooledGrid grid = model.grid(TokenWindow{0, T - 1, 0, T - 1}, T, T);
    EXPECT_TRUE(std::isnan(grid.at(0, int(T - 1))));

    model.setHead(5, 1); // global: the first token stays visible
    EXPECT_EQ(model.window(), 0);
    EXPECT_FALSE(model.masked(T - 1, 0));
    EXPECT_GT(model.rawValue(T - 1, 0), 0.0f);

    // The head view draws it so.
    HeadView view;
    view.resize(900, 700);
    view.setSnapshot(snap);
    view.showHead(0, 1);
    QCPColorMapData *cells = view.heatmap()->colourMap()->data();
    ASSERT_EQ(cells->keySize(), T);
    EXPECT_TRUE(std::isnan(cells->cell(0, int(T - 1))));
    EXPECT_FALSE(view.heatmap()->hasSideColumn()); // no learned sinks
}

TEST_F(FamiliesTest, LongRunMapsHonourTheWindowAndTheSink)
{
    // The maps of a long run (computed from q/k) equal the model's own: the window is applied and the
    // learned sink takes its share. gpt_oss has both.
    auto shortRun = runFolder("gpt_oss");
    auto longRun = runFolder("gpt_oss", 4);
    ASSERT_TRUE(shortRun->snapshot() && longRun->snapshot());
    ASSERT_TRUE(longRun->snapshot()->mapsOnDemand);
    const auto &exact = *shortRun->snapshot();
    const int64_t T = exact.tokenCount(), H = exact.heads;
    for (int64_t layer : {0, 1}) {
        ASSERT_EQ(exact.windowOf(layer), layer == 0 ? 8 : 0);
        for (int64_t head = 0; head < H; ++head) {
            auto map = computeHeadMap(*longRun->snapshot(), layer, head);
            ASSERT_TRUE(map) << map.error().message;
            const FloatArray &a = exact.attention[size_t(layer)];
            double worst = 0;
            for (int64_t i = 0; i < T * T; ++i) {
                worst = std::max(worst, std::abs(double(map->data[size_t(i)]) - a.data[size_t(head * T * T + i)]));
            }
            EXPECT_LT(worst, 2e-5) << "layer " << layer << " head " << head;
            // The sink column of the computed map (1 - row sum) matches the captured share.
            HeadViewModel onDemand, captured;
            onDemand.setSnapshot(longRun->snapshot());
            onDemand.setHead(layer, head);
            onDemand.setHeadMap(layer, head, std::make_shared<const FloatArray>(std::move(*map)));
            captured.setSnapshot(shortRun->snapshot());
            captured.setHead(layer, head);
            for (int64_t q = 0; q < T; ++q) {
                EXPECT_NEAR(onDemand.sinkShare(q), captured.sinkShare(q), 2e-5);
            }
        }
    }
}

TEST_F(FamiliesTest, LearnedSinksGetAKeyColumnOnlyWhereTheModelHasThem)
{
    auto oss = runFolder("gpt_oss");
    const auto snap = oss->snapshot();
    ASSERT_TRUE(snap && snap->metrics);
    ASSERT_TRUE(snap->learnedSinks());
    const int64_t T = snap->tokenCount();
    HeadViewModel model;
    model.setSnapshot(snap);
    model.setHead(1, 2);
    ASSERT_TRUE(model.hasSinkColumn());
    ASSERT_EQ(model.sinkColumn().size(), size_t(T));
    // From ForwardResult::sinkShare: the row over real keys sums to 1 - share.
    for (int64_t q = 0; q < T; ++q) {
        double sum = 0;
        for (int64_t k = 0; k <= q; ++k) {
            sum += model.rawValue(q, k);
        }
        EXPECT_GT(model.sinkShare(q), 0.0f);
        EXPECT_NEAR(sum + model.sinkShare(q), 1.0, 1e-5);
    }
    // First-token mass stays over real tokens: p[q, 0] as the map has it.
    EXPECT_NEAR(
        snap->metrics->head("first_token_mass", 1, 2),
        [&] {
            double s = 0;
            for (int64_t q = 0; q < T; ++q) {
                s += model.rawValue(q, 0);
            }
            return s / double(T);
        }(),
        0.05);

    HeadView view;
    view.resize(900, 700);
    view.setSnapshot(snap);
    view.showHead(1, 2);
    ASSERT_TRUE(view.heatmap()->hasSideColumn());
    EXPECT_NEAR(view.heatmap()->sideColumn()->data()->cell(0, int(T - 1)), model.sinkShare(T - 1), 1e-6);
    EXPECT_TRUE(view.currentData().json.contains(QStringLiteral("sink_share")));

    // learned_sink_mass is a metric of the overview like any other.
    ASSERT_TRUE(snap->headMetric("learned_sink_mass"));
    OverviewView overview;
    overview.resize(900, 600);
    overview.setSnapshot(snap);
    auto *box = overview.findChild<QComboBox *>();
    ASSERT_TRUE(box);
    EXPECT_GE(box->findData(QStringLiteral("learned_sink_mass")), 0);
    overview.setMetric("learned_sink_mass");
    EXPECT_FLOAT_EQ(float(overview.heatmap()->colourMap()->data()->cell(2, 1)),
                    snap->metrics->head("learned_sink_mass", 1, 2));
    EXPECT_TRUE(overview.summaryText().contains(QStringLiteral("learned sinks")));

    // Llama: no sink column, no learned_sink_mass.
    auto llama = runFolder("llama");
    ASSERT_TRUE(llama->snapshot());
    HeadViewModel plain;
    plain.setSnapshot(llama->snapshot());
    EXPECT_FALSE(plain.hasSinkColumn());
    EXPECT_TRUE(plain.sinkColumn().empty());
    view.setSnapshot(llama->snapshot());
    EXPECT_FALSE(view.heatmap()->hasSideColumn());
    EXPECT_FALSE(llama->snapshot()->headMetric("learned_sink_mass"));
}

TEST_F(FamiliesTest, OverviewMarksAndFiltersSlidingAndGlobalLayers)
{
    auto run = runFolder("gemma3");
    const auto snap = run->snapshot();
    ASSERT_TRUE(snap && snap->metrics);
    const QVector<QString> labels = overviewLayerLabels(*snap);
    ASSERT_EQ(labels.size(), 6);
    EXPECT_EQ(labels[0], QStringLiteral("0 S"));
    EXPECT_EQ(labels[5], QStringLiteral("5"));

    const PooledGrid local = overviewGrid(*snap, "first_token_mass", LayerFilter::Sliding);
    const PooledGrid global = overviewGrid(*snap, "first_token_mass", LayerFilter::Global);
    for (int64_t h = 0; h < snap->heads; ++h) {
        for (int64_t l = 0; l < 6; ++l) {
            EXPECT_EQ(std::isnan(local.at(h, l)), l == 5) << l;
            EXPECT_EQ(std::isnan(global.at(h, l)), l != 5) << l;
        }
    }

    OverviewView overview;
    overview.resize(900, 600);
    overview.setSnapshot(snap);
    EXPECT_TRUE(overview.layerFilterEnabled());
    overview.setLayerFilter(LayerFilter::Global);
    QCPColorMapData *cells = overview.heatmap()->colourMap()->data();
    EXPECT_TRUE(std::isnan(cells->cell(0, 0)));
    EXPECT_FLOAT_EQ(float(cells->cell(0, 5)), snap->metrics->head("first_token_mass", 5, 0));
    EXPECT_EQ(overview.saveState().value(QStringLiteral("layers")).toString(), QStringLiteral("global"));
    // The summary names the family and the layout.
    const QString summary = overview.summaryText();
    EXPECT_TRUE(summary.contains(QStringLiteral("gemma3"))) << summary.toStdString();
    EXPECT_TRUE(summary.contains(QString::fromStdString(snap->config.attentionLayout()))) << summary.toStdString();
    EXPECT_EQ(snap->config.attentionLayout(), "6 layers: 5 sliding (8), 1 global");
}

namespace {

class ModelsMenuTest : public sinkscope::testing::TinyWindowTest
{
protected:
    void SetUp() override { m_old = qgetenv("SINKSCOPE_GEMMA3_GGUF"); }
    void TearDown() override
    {
        if (m_old.isNull()) {
            qunsetenv("SINKSCOPE_GEMMA3_GGUF");
        } else {
            qputenv("SINKSCOPE_GEMMA3_GGUF", m_old);
        }
    }
    QByteArray m_old;
};

QAction *menuAction(QMenu *menu, const char *name)
{
    for (QAction *a : menu->actions()) {
        if (a->objectName() == QLatin1String(name)) {
            return a;
        }
    }
    return nullptr;
}

} // namespace

TEST_F(ModelsMenuTest, GemmaIsOfferedOnlyWhenInstalledAndAfterItsTerms)
{
    // Not installed: the entry is there but disabled, and says how to install it.
    qputenv("SINKSCOPE_GEMMA3_GGUF", QByteArray::fromStdString(s_dir->file("no-such-gemma.gguf")));
    auto entries = modelCatalog();
    ASSERT_EQ(entries.size(), 2u);
    EXPECT_EQ(entries[0].id, QStringLiteral("smollm2"));
    EXPECT_TRUE(entries[0].available);
    EXPECT_FALSE(entries[1].available);
    EXPECT_TRUE(entries[1].toolTip.contains(QStringLiteral("tools/setup.sh")));
    {
        MainWindow window({.modelPath = s_model, .useSettings = false, .autoRun = false});
        QAction *gemma = menuAction(window.modelsMenu(), "model-gemma3");
        ASSERT_TRUE(gemma);
        EXPECT_FALSE(gemma->isEnabled());
        EXPECT_TRUE(gemma->toolTip().contains(QStringLiteral("tools/setup.sh")));
        EXPECT_TRUE(menuAction(window.modelsMenu(), "model-smollm2")->isEnabled());
        EXPECT_FALSE(menuAction(window.modelsMenu(), "gemma-terms")->isEnabled());
        EXPECT_FALSE(window.openCatalogModel(QStringLiteral("gemma3")));
    }

    // Installed (a stand-in file with its terms beside it).
    sinkscope::testing::TempDir dir;
    const QString gguf = QString::fromStdString(dir.file("gemma-3-270m-q4_k_m.gguf"));
    for (const QString &path : {gguf, QString::fromStdString(dir.file("gemma-3-270m.TERMS.html"))}) {
        QFile f(path);
        ASSERT_TRUE(f.open(QIODevice::WriteOnly));
        f.write("<html><body><h1>Gemma Terms of Use</h1></body></html>");
    }
    qputenv("SINKSCOPE_GEMMA3_GGUF", gguf.toUtf8());
    entries = modelCatalog();
    EXPECT_TRUE(entries[1].available);
    EXPECT_EQ(entries[1].path, gguf);
    EXPECT_EQ(entries[1].termsPath, QString::fromStdString(dir.file("gemma-3-270m.TERMS.html")));
    EXPECT_TRUE(entries[1].title.contains(QStringLiteral("Gemma Terms of Use")));
    EXPECT_TRUE(readTermsHtml(entries[1].termsPath).contains(QStringLiteral("Gemma Terms of Use")));

    int asked = 0;
    bool answer = false;
    MainWindowOptions options{.modelPath = s_model, .useSettings = false, .autoRun = false};
    options.askTerms = [&](const QString &terms) {
        ++asked;
        EXPECT_EQ(terms, entries[1].termsPath);
        return answer;
    };
    MainWindow window(options);
    QSignalSpy ready(&window, &MainWindow::modelReady);
    ASSERT_TRUE(ready.wait(60000));
    EXPECT_TRUE(menuAction(window.modelsMenu(), "model-gemma3")->isEnabled());
    EXPECT_TRUE(menuAction(window.modelsMenu(), "gemma-terms")->isEnabled());
    // Declined: nothing loads, and it asks again next time.
    EXPECT_FALSE(window.openCatalogModel(QStringLiteral("gemma3")));
    EXPECT_EQ(asked, 1);
    EXPECT_FALSE(window.bridge()->isPending(QString::fromLatin1(ComputeBridge::kModelTag)));
    // Accepted: it loads (the stand-in fails, naming the file), and is not asked again.
    answer = true;
    QSignalSpy failed(window.runController(), &RunController::failed);
    EXPECT_TRUE(window.openCatalogModel(QStringLiteral("gemma3")));
    EXPECT_EQ(asked, 2);
    EXPECT_TRUE(window.gemmaTermsAccepted());
    ASSERT_TRUE(failed.wait(60000));
    EXPECT_TRUE(window.messageBar()->text().contains(QStringLiteral("gemma-3-270m-q4_k_m.gguf")))
        << window.messageBar()->text().toStdString();
    EXPECT_EQ(window.runController()->modelPath(), s_model); // the tiny model stays
    answer = false;
    window.openCatalogModel(QStringLiteral("gemma3"));
    EXPECT_EQ(asked, 2);
}
