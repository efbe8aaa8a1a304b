// End to end on the tiny Llama model: the window loads it, runs a prompt on the compute thread, shows
// the overview and a head, switches heads without running the model again, exports figures and data,
// and a saved session restores the same figure.
#include "head_view.h"
#include "heatmap_plot.h"
#include "main_window.h"
#include "overview_view.h"
#include "token_chips.h"

#include "sinkscope/convert.h"
#include "support/test_paths.h"
#include "support/tiny_models.h"

#include <QElapsedTimer>
#include <QFile>
#include <QTest>
#include <QImage>
#include <QJsonDocument>
#include <QPlainTextEdit>
#include <QSignalSpy>
#include <QXmlStreamReader>

#include <gtest/gtest.h>

using namespace sinkscope;
using namespace sinkscope::ui;

namespace {

class MainWindowTest : public ::testing::Test
{
protected:
    static void SetUpTestSuite()
    {
        s_dir = new sinkscope::testing::TempDir;
        const std::string gguf = s_dir->file("tiny-llama.gguf");
        sinkscope::testing::writeTinyLlamaGguf(gguf);
        s_model = QString::fromStdString(s_dir->file("tiny-llama.pt"));
        const Status status = convertGguf(gguf, s_model.toStdString());
        ASSERT_TRUE(status.ok()) << status.error().message;
    }
    static void TearDownTestSuite()
    {
        delete s_dir;
        s_dir = nullptr;
    }

    static std::unique_ptr<MainWindow> openAndRun(MainWindowOptions options)
    {
        options.useSettings = false;
        auto window = std::make_unique<MainWindow>(options);
        QSignalSpy shown(window.get(), &MainWindow::snapshotShown);
        EXPECT_TRUE(shown.wait(60000)) << window->messageBar()->text().toStdString();
        return window;
    }

    static QString file(const char *name) { return QString::fromStdString(s_dir->file(name)); }

    static inline sinkscope::testing::TempDir *s_dir = nullptr;
    static inline QString s_model;
};

// The colour map's cell for token (key, query) when the map shows the head at full resolution.
double cell(HeatmapPlot *plot, int key, int query)
{
    return plot->colourMap()->data()->cell(key, query);
}

} // namespace

TEST_F(MainWindowTest, RunsPromptShowsOverviewAndSwitchesHeadsWithoutRecomputing)
{
    auto window = openAndRun({.modelPath = s_model, .prompt = QStringLiteral("hello world, hello")});
    const auto snapshot = window->snapshot();
    ASSERT_TRUE(snapshot);
    EXPECT_EQ(snapshot->layers, sinkscope::testing::tiny::kLayers);
    EXPECT_EQ(snapshot->heads, sinkscope::testing::tiny::kHeads);
    const int T = int(snapshot->tokenCount());
    ASSERT_GT(T, 3);
    EXPECT_EQ(window->chipModel()->rowCount(), T);

    // Overview: x = head, y = layer, values = first-token mass of the snapshot.
    HeatmapPlot *overview = window->overviewView()->heatmap();
    ASSERT_EQ(overview->colourMap()->data()->keySize(), sinkscope::testing::tiny::kHeads);
    ASSERT_EQ(overview->colourMap()->data()->valueSize(), sinkscope::testing::tiny::kLayers);
    for (int l = 0; l < sinkscope::testing::tiny::kLayers; ++l) {
        for (int h = 0; h < sinkscope::testing::tiny::kHeads; ++h) {
            EXPECT_FLOAT_EQ(float(cell(overview, h, l)), snapshot->firstTokenMass.data[size_t(l * snapshot->heads + h)]);
        }
    }

    // Clicking a cell opens that head; the head map shows its probabilities.
    emit overview->clicked(2, 1);
    HeadView *head = window->headView();
    EXPECT_EQ(head->model().layer(), 1);
    EXPECT_EQ(head->model().head(), 2);
    HeatmapPlot *map = head->heatmap();
    ASSERT_EQ(map->colourMap()->data()->keySize(), T);
    const FloatArray &layer1 = snapshot->attention[1];
    auto prob = [&](const FloatArray &layer, int h, int q, int k) { return layer.data[size_t((h * T + q) * T + k)]; };
    EXPECT_FLOAT_EQ(float(cell(map, 0, T - 1)), prob(layer1, 2, T - 1, 0));
    EXPECT_FLOAT_EQ(float(cell(map, 1, 2)), prob(layer1, 2, 2, 1));
    EXPECT_TRUE(std::isnan(cell(map, T - 1, 0))); // causal mask

    // Switching head: new data on screen, same snapshot, no model work queued.
    head->stepHead(+1);
    EXPECT_EQ(head->model().layer(), 1);
    EXPECT_EQ(head->model().head(), 3);
    EXPECT_FALSE(window->bridge()->isPending(QString::fromLatin1(ComputeBridge::kRunTag)));
    EXPECT_EQ(window->snapshot(), snapshot);
    EXPECT_FLOAT_EQ(float(cell(map, 1, 2)), prob(layer1, 3, 2, 1));
    head->stepLayer(-1);
    EXPECT_FLOAT_EQ(float(cell(map, 1, 2)), prob(snapshot->attention[0], 3, 2, 1));

    // Without the sink: the map shows renormalised rows and the side strip the removed mass.
    head->setScale(ColourScale{.transform = ScaleTransform::RenormaliseWithoutSink});
    EXPECT_TRUE(map->hasSideBars());
    const float p0 = prob(snapshot->attention[0], 3, 2, 0);
    EXPECT_NEAR(cell(map, 1, 2), prob(snapshot->attention[0], 3, 2, 1) / (1.0 - p0), 1e-5);
    EXPECT_TRUE(std::isnan(cell(map, 0, 2)));

    // Top-k outputs came with the run.
    ASSERT_EQ(snapshot->top.size(), 10u);
    EXPECT_GE(snapshot->top[0].probability, snapshot->top[1].probability);
}

TEST_F(MainWindowTest, StaleRunsAreDroppedWhenThePromptChanges)
{
    auto window = openAndRun({.modelPath = s_model, .prompt = QStringLiteral("one")});
    window->promptEditor()->setPlainText(QStringLiteral("two words"));
    window->runPrompt();
    window->promptEditor()->setPlainText(QStringLiteral("three words here"));
    window->runPrompt();
    QSignalSpy shown(window.get(), &MainWindow::snapshotShown);
    ASSERT_TRUE(shown.wait(60000));
    // Only the newest prompt lands (the earlier run was replaced or its result dropped).
    EXPECT_EQ(shown.count(), 1);
    EXPECT_EQ(window->snapshot()->tokenCount(), int64_t(window->promptTokens().size()));
    EXPECT_FALSE(shown.wait(500));
}

TEST_F(MainWindowTest, ErrorsShowInTheMessageBar)
{
    MainWindow window({.modelPath = file("missing.pt"), .useSettings = false});
    QSignalSpy failed(window.bridge(), &ComputeBridge::failed);
    ASSERT_TRUE(failed.wait(30000));
    EXPECT_TRUE(window.messageBar()->isError());
    EXPECT_TRUE(window.messageBar()->text().contains(QStringLiteral("missing.pt")));
}

TEST_F(MainWindowTest, ExportsFiguresAndData)
{
    auto window = openAndRun({.modelPath = s_model, .prompt = QStringLiteral("hello world")});
    window->showView(QStringLiteral("head"));
    FigureOptions options = window->defaultFigureOptions();
    options.pixelSize = QSize(1200, 900);
    options.dpi = 200;
    EXPECT_TRUE(options.caption.contains(QStringLiteral("hello world")));
    QString error;

    ASSERT_TRUE(window->exportCurrentView(file("head.png"), options, &error)) << error.toStdString();
    const QImage png(file("head.png"));
    ASSERT_FALSE(png.isNull());
    EXPECT_EQ(png.size(), QSize(1200, 900));
    EXPECT_NEAR(png.dotsPerMeterX() * 0.0254, 200, 1);

    ASSERT_TRUE(window->exportCurrentView(file("head.svg"), options, &error)) << error.toStdString();
    QFile svg(file("head.svg"));
    ASSERT_TRUE(svg.open(QIODevice::ReadOnly));
    QXmlStreamReader xml(&svg);
    int images = 0, texts = 0;
    bool svgRoot = false, titleFound = false;
    while (!xml.atEnd()) {
        if (xml.readNext() == QXmlStreamReader::StartElement) {
            svgRoot |= xml.name() == QLatin1String("svg");
            images += xml.name() == QLatin1String("image");
            if (xml.name() == QLatin1String("text")) {
                ++texts;
                titleFound |= xml.readElementText(QXmlStreamReader::IncludeChildElements).contains(QStringLiteral("Attention, layer"));
            }
        }
    }
    EXPECT_FALSE(xml.hasError()) << xml.errorString().toStdString();
    EXPECT_TRUE(svgRoot);
    EXPECT_GE(images, 1); // the colour map raster (and the colour bar)
    EXPECT_GE(texts, 5);  // title, axis labels, tick labels, caption
    EXPECT_TRUE(titleFound);

    ASSERT_TRUE(window->exportCurrentView(file("head.pdf"), options, &error)) << error.toStdString();
    QFile pdf(file("head.pdf"));
    ASSERT_TRUE(pdf.open(QIODevice::ReadOnly));
    const QByteArray bytes = pdf.readAll();
    EXPECT_TRUE(bytes.startsWith("%PDF-"));
    EXPECT_GE(bytes.count("/Type /Page\n") + bytes.count("/Type /Page\r") + bytes.count("/Type /Page "), 1);

    options.title = window->headView()->layerGridTitle();
    ASSERT_TRUE(window->exportLayerGrid(file("grid.pdf"), options, &error)) << error.toStdString();
    ASSERT_TRUE(window->exportLayerGrid(file("grid.png"), options, &error)) << error.toStdString();
    EXPECT_FALSE(QImage(file("grid.png")).isNull());

    ASSERT_TRUE(window->exportCurrentData(file("head.csv"), &error)) << error.toStdString();
    QFile csv(file("head.csv"));
    ASSERT_TRUE(csv.open(QIODevice::ReadOnly));
    const QList<QByteArray> lines = csv.readAll().trimmed().split('\n');
    const int64_t T = window->snapshot()->tokenCount();
    EXPECT_EQ(lines.front(), QByteArray("query_index,query_token,key_index,key_token,weight,shown_value"));
    EXPECT_EQ(lines.size(), 1 + T * (T + 1) / 2); // the visible (causal) cells
    ASSERT_TRUE(window->exportCurrentData(file("head.json"), &error));
    QFile json(file("head.json"));
    ASSERT_TRUE(json.open(QIODevice::ReadOnly));
    const QJsonObject doc = QJsonDocument::fromJson(json.readAll()).object();
    EXPECT_EQ(doc.value(QStringLiteral("weights")).toArray().size(), T);
}

TEST_F(MainWindowTest, SessionRestoresTheSameFigure)
{
    auto window = openAndRun({.modelPath = s_model, .prompt = QStringLiteral("restore me please")});
    // The content hash is computed on the compute thread after the first run.
    QElapsedTimer clock;
    clock.start();
    while (window->currentSession().modelSha256.isEmpty() && clock.elapsed() < 30000) {
        QTest::qWait(20);
    }
    window->headView()->showHead(1, 3);
    window->headView()->setScale(ColourScale{.mapping = ScaleMapping::Log, .clampPercentile = true, .percentile = 95});
    window->showView(QStringLiteral("head"));
    QString error;
    ASSERT_TRUE(window->saveSession(file("s.json"), &error)) << error.toStdString();
    const Session saved = window->currentSession();
    EXPECT_EQ(saved.modelSha256.size(), 64);
    ASSERT_FALSE(saved.tokens.isEmpty());

    auto restored = openAndRun({.modelPath = {}, .sessionPath = file("s.json")});
    ASSERT_TRUE(restored->snapshot());
    std::vector<int64_t> ids;
    for (const TokenInfo &t : restored->snapshot()->tokens) {
        ids.push_back(t.id);
    }
    EXPECT_EQ(ids, std::vector<int64_t>(saved.tokens.begin(), saved.tokens.end()));
    EXPECT_EQ(restored->headView()->model().layer(), 1);
    EXPECT_EQ(restored->headView()->model().head(), 3);
    EXPECT_EQ(restored->headView()->model().scale(), window->headView()->model().scale());
    EXPECT_EQ(restored->currentSession().toJson().value(QStringLiteral("views")), saved.toJson().value(QStringLiteral("views")));
    EXPECT_EQ(restored->headView()->model().range(), window->headView()->model().range());
}
