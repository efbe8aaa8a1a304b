// End to end on the tiny Llama model: the window loads it, runs a prompt on the compute thread, shows
// the overview and a head, switches heads without running the model again, exports figures and data,
// and a saved session restores the same figure.
#include "head_view.h"
#include "heatmap_plot.h"
#include "main_window.h"
#include "metrics_view.h"
#include "overview_view.h"
#include "tiny_window.h"
#include "token_chips.h"

#include "sinkscope/analysis/metrics.h"
#include "sinkscope/model/convert.h"
#include "support/test_paths.h"
#include "support/tiny_models.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QImage>
#include <QJsonDocument>
#include <QPlainTextEdit>
#include <QSignalSpy>
#include <QStandardItemModel>
#include <QTableView>
#include <QTest>
#include <QXmlStreamReader>

#include <gtest/gtest.h>

#include <csignal>
#include <set>
#include <sys/resource.h>

using namespace sinkscope;
using namespace sinkscope::ui;

namespace {

using MainWindowTest = sinkscope::testing::TinyWindowTest;

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

    // Overview: x = head, y = layer, values = the core's first-token mass (computeMetrics on the
    // compute thread), then any other per-head metric.
    ASSERT_TRUE(snapshot->metrics);
    HeatmapPlot *overview = window->overviewView()->heatmap();
    ASSERT_EQ(overview->colourMap()->data()->keySize(), sinkscope::testing::tiny::kHeads);
    ASSERT_EQ(overview->colourMap()->data()->valueSize(), sinkscope::testing::tiny::kLayers);
    for (const std::string metric : {"first_token_mass", "alpha_first", "output_norm_bound"}) {
        window->overviewView()->setMetric(metric);
        for (int l = 0; l < sinkscope::testing::tiny::kLayers; ++l) {
            for (int h = 0; h < sinkscope::testing::tiny::kHeads; ++h) {
                EXPECT_FLOAT_EQ(float(cell(overview, h, l)), snapshot->metrics->head(metric, l, h)) << metric;
            }
        }
    }
    window->overviewView()->setMetric("first_token_mass");
    // The massive-activation plot sits beside the rows (hidden states were captured).
    EXPECT_TRUE(snapshot->metrics->hasHidden);
    EXPECT_TRUE(overview->hasSideBars());
    EXPECT_TRUE(window->overviewView()->summaryText().contains(QStringLiteral("top massive activation")));
    // The shared colour scale's sketches were made on the compute thread.
    EXPECT_EQ(snapshot->sketches.size(), size_t(snapshot->layers * snapshot->heads));

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

TEST_F(MainWindowTest, MetricsPanelSinkChipsAndBosPolicy)
{
    auto window = openAndRun({.modelPath = s_model, .prompt = QStringLiteral("hello world. hello world.")});
    const auto snapshot = window->snapshot();
    ASSERT_TRUE(snapshot && snapshot->metrics);
    const SinkMetrics &m = *snapshot->metrics;

    // "Prepend BOS" follows the tokenizer's own add_bos_token policy.
    const auto tokenizer = window->model()->tokenizer();
    ASSERT_TRUE(tokenizer);
    EXPECT_EQ(window->bosToggle()->isChecked(), tokenizer->data().addBos && tokenizer->data().bosId.has_value());

    // The metrics panel: every head, sorted by the chosen metric; a click opens the head.
    MetricsView *panel = window->metricsView();
    ASSERT_EQ(panel->table()->model()->rowCount(), int(m.layers * m.heads));
    panel->sortBy("alpha_first", true);
    for (int row = 1; row < panel->table()->model()->rowCount(); ++row) {
        const auto [l0, h0] = panel->headAtRow(row - 1);
        const auto [l1, h1] = panel->headAtRow(row);
        EXPECT_GE(m.head("alpha_first", l0, h0), m.head("alpha_first", l1, h1));
    }
    const auto [layer, head] = panel->headAtRow(0);
    emit panel->table()->clicked(panel->table()->model()->index(0, 0));
    EXPECT_EQ(window->headView()->model().layer(), layer);
    EXPECT_EQ(window->headView()->model().head(), head);

    // Detected sinks are marked in the chips: exactly those found in at least a quarter of the layers.
    std::set<int64_t> sinks;
    for (const DetectedSink &s : m.sinks) {
        if (int64_t(s.layers.size()) * 4 >= snapshot->layers) {
            sinks.insert(s.position);
        }
    }
    EXPECT_FALSE(sinks.empty());
    for (int row = 0; row < window->chipModel()->rowCount(); ++row) {
        EXPECT_EQ(window->chipModel()->isSink(row), sinks.count(row) > 0) << row;
    }
    // A different prompt: the old marks go with the old tokens.
    QSignalSpy retokenized(window->chipModel(), &QAbstractItemModel::modelReset);
    window->promptEditor()->setPlainText(QStringLiteral("other words entirely"));
    ASSERT_TRUE(retokenized.count() > 0 || retokenized.wait(5000));
    for (int row = 0; row < window->chipModel()->rowCount(); ++row) {
        EXPECT_FALSE(window->chipModel()->isSink(row));
    }
}

TEST_F(MainWindowTest, PresenterModeFitsSixteenHundredPixels)
{
    auto window = openAndRun({.modelPath = s_model, .prompt = QStringLiteral("hello world")});
    window->setPresenterMode(true);
    window->resize(1600, 1000);
    window->show();
    for (const char *view : {"overview", "head", "tokens", "metrics"}) {
        window->showView(QString::fromLatin1(view));
        QCoreApplication::processEvents();
        // The window can be as small as 1600 x 1000 (else the layout forces it wider than the screen).
        EXPECT_LE(window->minimumSizeHint().width(), 1600) << view;
        EXPECT_LE(window->minimumSizeHint().height(), 1000) << view;
        EXPECT_LE(window->width(), 1600) << view;
    }
    // No control of the head view is squeezed below its own size (e.g. "Linea", "Max po"), with the
    // longest read-out (every scale option on).
    window->showView(QStringLiteral("head"));
    window->headView()->setScale(ColourScale{.mapping = ScaleMapping::Log,
                                             .transform = ScaleTransform::RenormaliseWithoutSink,
                                             .clampPercentile = true,
                                             .percentile = 99.5,
                                             .shared = true});
    QCoreApplication::processEvents();
    EXPECT_LE(window->minimumSizeHint().width(), 1600);
    EXPECT_LE(window->width(), 1600);
    for (QComboBox *box : window->headView()->findChildren<QComboBox *>()) {
        EXPECT_GE(box->width(), box->sizeHint().width()) << box->currentText().toStdString();
    }
    for (QCheckBox *box : window->headView()->findChildren<QCheckBox *>()) {
        EXPECT_GE(box->width(), box->sizeHint().width()) << box->text().toStdString();
    }
    window->setPresenterMode(false);
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

TEST_F(MainWindowTest, DevicePickerOffersModelDevicesAndKeepsTheModelWhenALoadFails)
{
    // The registry's CPU plus two GPUs this machine does not have: one that only runs the kernels (a
    // CPU LibTorch) and one that would run the model.
    std::vector<DeviceInfo> devices{availableDevices().front()};
    DeviceInfo kernelsOnly;
    kernelsOnly.kind = DeviceKind::Cuda;
    kernelsOnly.id = "cuda:0";
    kernelsOnly.name = "Test GPU";
    kernelsOnly.kernels = true;
    kernelsOnly.note = "LibTorch is built without CUDA";
    DeviceInfo full = kernelsOnly;
    full.index = 1;
    full.id = "cuda:1";
    full.runsModel = true;
    full.note.clear();
    devices.push_back(kernelsOnly);
    devices.push_back(full);

    auto window = openAndRun({.modelPath = s_model, .prompt = QStringLiteral("hello world"), .devices = devices});
    QComboBox *box = window->deviceBox();
    ASSERT_EQ(box->count(), 3);
    EXPECT_EQ(box->currentData().toString(), QStringLiteral("cpu"));
    EXPECT_EQ(window->model()->info().device, "cpu");
    auto *items = qobject_cast<QStandardItemModel *>(box->model());
    ASSERT_TRUE(items);
    EXPECT_TRUE(items->item(0)->isEnabled());
    EXPECT_FALSE(items->item(1)->isEnabled()) << "the model cannot run there";
    EXPECT_TRUE(items->item(1)->text().contains(QStringLiteral("kernels only")));
    EXPECT_TRUE(items->item(1)->toolTip().contains(QStringLiteral("LibTorch is built without CUDA")));
    EXPECT_TRUE(items->item(2)->isEnabled());
    EXPECT_TRUE(items->item(2)->toolTip().contains(QStringLiteral("Test GPU")));

    // A kernels-only device is refused at once, with the reason; nothing is loaded.
    QSignalSpy loaded(window.get(), &MainWindow::modelReady);
    window->chooseDevice(QStringLiteral("cuda:0"));
    EXPECT_TRUE(window->messageBar()->isError());
    EXPECT_TRUE(window->messageBar()->text().contains(QStringLiteral("LibTorch is built without CUDA")));
    EXPECT_EQ(box->currentData().toString(), QStringLiteral("cpu"));

    // A device LibTorch cannot use here: the load fails with the device named, the model stays loaded
    // and the picker goes back to where the model is.
    const auto before = window->model();
    QSignalSpy failed(window->bridge(), &ComputeBridge::failed);
    window->chooseDevice(QStringLiteral("cuda:1"));
    EXPECT_EQ(box->currentData().toString(), QStringLiteral("cuda:1")) << "shows the load in progress";
    ASSERT_TRUE(failed.wait(30000));
    EXPECT_EQ(failed.front().at(0).toString(), QLatin1String(ComputeBridge::kModelTag));
    EXPECT_TRUE(window->messageBar()->text().contains(QStringLiteral("cuda:1")))
        << window->messageBar()->text().toStdString();
    EXPECT_EQ(window->model(), before);
    EXPECT_EQ(window->deviceId(), QStringLiteral("cpu"));
    EXPECT_EQ(box->currentData().toString(), QStringLiteral("cpu"));
    EXPECT_EQ(loaded.count(), 0);

    // Back on the CPU (already there): nothing to do.
    window->chooseDevice(QStringLiteral("cpu"));
    EXPECT_EQ(window->model(), before);
}

TEST_F(MainWindowTest, LongRunsKeepNoMapsAndComputeTheShownHeadOnDemand)
{
    // mapTokens = 4 makes this short prompt a long run: no maps, q/k kept, streaming metrics.
    const QString prompt = QStringLiteral("hello world, hello world");
    auto window = openAndRun({.modelPath = s_model, .prompt = prompt, .mapTokens = 4});
    const auto snap = window->snapshot();
    ASSERT_TRUE(snap && snap->mapsOnDemand);
    ASSERT_GT(snap->tokenCount(), 4);
    for (int64_t l = 0; l < snap->layers; ++l) {
        EXPECT_FALSE(snap->hasAttention(l));
    }
    ASSERT_TRUE(snap->metrics);
    EXPECT_EQ(snap->metrics->path, MetricsPath::Streaming);
    ASSERT_TRUE(snap->queries && snap->keys);
    EXPECT_EQ(int64_t(snap->queries->size()), snap->layers);

    // The same tokens with maps, as the reference.
    RunRequest request;
    request.tokens = window->promptTokens();
    CancelToken cancel;
    auto full = computeRunSnapshot(*window->model(), request, cancel);
    ASSERT_TRUE(full) << full.error().message;
    ASSERT_FALSE(full->mapsOnDemand);
    for (int64_t l = 0; l < snap->layers; ++l) {
        for (int64_t h = 0; h < snap->heads; ++h) {
            EXPECT_NEAR(snap->metrics->head("first_token_mass", l, h), full->metrics->head("first_token_mass", l, h),
                        1e-5);
        }
    }

    // The window and `sinkscope-cli analyze` take one analysis path (analyzeRun): the same numbers on
    // either side of the threshold.
    for (const int64_t threshold : {int64_t(4), kStreamingAboveTokens}) {
        auto cli = analyzeTokens(*window->model(), request.tokens, {}, threshold);
        ASSERT_TRUE(cli) << cli.error().message;
        const auto &shownMetrics = threshold == 4 ? snap->metrics : full->metrics;
        EXPECT_EQ((*cli)->path, shownMetrics->path);
        EXPECT_EQ((*cli)->headsCsv(), shownMetrics->headsCsv()) << threshold;
    }

    // The head view asks for the shown head once, and shows the computed map.
    HeadView *head = window->headView();
    QSignalSpy wanted(head, &HeadView::headMapWanted);
    window->showView(QStringLiteral("head"));
    head->showHead(1, 2);
    EXPECT_TRUE(QTest::qWaitFor([&] { return head->model().valid(); }, 30000));
    ASSERT_TRUE(head->model().valid()) << window->messageBar()->text().toStdString();
    EXPECT_EQ(wanted.count(), 1);
    const HeadMatrix shown = head->model().matrix();
    const HeadMatrix want = headMatrix(full->attention[1], 2);
    ASSERT_EQ(shown.rows, want.rows);
    ASSERT_EQ(shown.cols, want.cols);
    for (int64_t q = 0; q < want.rows; ++q) {
        for (int64_t k = 0; k < want.cols; ++k) {
            EXPECT_NEAR(shown.at(q, k), want.at(q, k), 1e-5) << q << "," << k;
        }
    }
    EXPECT_FALSE(std::isnan(head->model().rawValue(3, 1)));
    // ... and the plot shows it.
    HeatmapPlot *plot = head->heatmap();
    ASSERT_TRUE(plot->colourMap());
    EXPECT_NEAR(cell(plot, 1, 3), want.at(3, 1), 1e-5);
    EXPECT_NEAR(cell(plot, 0, 0), want.at(0, 0), 1e-5);

    // Figures of the shown head export; the every-head grid says why it cannot.
    FigureOptions options = window->defaultFigureOptions();
    options.pixelSize = QSize(800, 600);
    QString error;
    EXPECT_TRUE(window->exportCurrentView(file("long-head.png"), options, &error)) << error.toStdString();
    EXPECT_FALSE(QImage(file("long-head.png")).isNull());
    EXPECT_FALSE(window->exportLayerGrid(file("long-grid.png"), options, &error));
    EXPECT_TRUE(error.contains(QStringLiteral("keep no attention maps"))) << error.toStdString();

    // Another head: one more request; back to the first: computed again (one map is kept at a time).
    head->showHead(0, 0);
    EXPECT_TRUE(QTest::qWaitFor([&] { return head->model().valid(); }, 30000));
    EXPECT_TRUE(head->model().valid());
    EXPECT_EQ(wanted.count(), 2);
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
                titleFound |= xml.readElementText(QXmlStreamReader::IncludeChildElements)
                                  .contains(QStringLiteral("Attention, layer"));
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

    // The overview figure: the metric heatmap and the massive-activation strip, drawn by the code
    // sinkscope-cli analyze uses.
    window->showView(QStringLiteral("overview"));
    FigureOptions overviewOptions = window->defaultFigureOptions();
    EXPECT_TRUE(overviewOptions.title.contains(QStringLiteral("first_token_mass")));
    ASSERT_TRUE(window->exportCurrentView(file("overview.svg"), overviewOptions, &error)) << error.toStdString();
    QFile overviewSvg(file("overview.svg"));
    ASSERT_TRUE(overviewSvg.open(QIODevice::ReadOnly));
    const QByteArray overviewText = overviewSvg.readAll();
    EXPECT_TRUE(overviewText.contains("first_token_mass"));
    EXPECT_TRUE(overviewText.contains("max |h| / median |h|"));
    window->showView(QStringLiteral("head"));

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

    // A full disk (a file-size limit far below a figure) leaves the figure exported before whole, with
    // one line naming the file; so does a folder in the way.
    QFile old(file("head.png"));
    ASSERT_TRUE(old.open(QIODevice::ReadOnly));
    const QByteArray oldBytes = old.readAll();
    old.close();
    {
        rlimit saved{};
        ::getrlimit(RLIMIT_FSIZE, &saved);
        const auto handler = std::signal(SIGXFSZ, SIG_IGN);
        rlimit limit = saved;
        limit.rlim_cur = 2048;
        ::setrlimit(RLIMIT_FSIZE, &limit);
        const bool ok = window->exportCurrentView(file("head.png"), options, &error);
        ::setrlimit(RLIMIT_FSIZE, &saved);
        std::signal(SIGXFSZ, handler);
        EXPECT_FALSE(ok);
    }
    EXPECT_TRUE(error.startsWith(QStringLiteral("Cannot write %1").arg(file("head.png")))) << error.toStdString();
    EXPECT_FALSE(error.contains(QLatin1Char('\n')));
    QFile after(file("head.png"));
    ASSERT_TRUE(after.open(QIODevice::ReadOnly));
    EXPECT_EQ(after.readAll(), oldBytes);
    QDir().mkpath(file("taken.pdf"));
    EXPECT_FALSE(window->exportCurrentView(file("taken.pdf"), options, &error));
    EXPECT_EQ(error, QStringLiteral("Cannot write %1: is a folder, not a file").arg(file("taken.pdf")));
}

// A figure that leaves a colour map no room (a small panel; the soak met one with a panel exactly as
// tall as its margins) exports without the map and without Qt's "paint device returned engine == 0"
// and "Painter not active" warnings. The heights step through the one where the map gains room.
TEST_F(MainWindowTest, AFigureTooSmallForItsMapsExportsWithoutPainterWarnings)
{
    auto window = openAndRun({.modelPath = s_model, .prompt = QStringLiteral("hello world")});
    window->showView(QStringLiteral("head"));
    static QStringList warnings;
    warnings.clear();
    const QtMessageHandler previous =
        qInstallMessageHandler([](QtMsgType, const QMessageLogContext &, const QString &m) {
            if (m.contains(QLatin1String("QPainter")) || m.contains(QLatin1String("Painter not active"))) {
                warnings << m;
            }
        });
    FigureOptions options = window->defaultFigureOptions();
    options.caption.clear();
    options.dpi = 96; // one logical pixel per pixel: every height is tried
    QString error;
    for (int height = 64; height <= 200; ++height) {
        options.pixelSize = QSize(400, height);
        const QString path = file("small.svg");
        ASSERT_TRUE(window->exportCurrentView(path, options, &error)) << height << ": " << error.toStdString();
        ASSERT_GT(QFileInfo(path).size(), 0) << height;
    }
    options.pixelSize = QSize(200, 150);
    options.dpi = 300;
    ASSERT_TRUE(window->exportCurrentView(file("small.pdf"), options, &error)) << error.toStdString();
    ASSERT_TRUE(window->exportCurrentView(file("small.png"), options, &error)) << error.toStdString();
    qInstallMessageHandler(previous);
    EXPECT_TRUE(warnings.isEmpty()) << warnings.size() << " warnings, the first: " << warnings.value(0).toStdString();
}

TEST_F(MainWindowTest, SessionRestoresTheSameFigure)
{
    auto window = openAndRun({.modelPath = s_model, .prompt = QStringLiteral("restore me please")});
    // The content hash is computed on the compute thread after the first run.
    ASSERT_TRUE(QTest::qWaitFor([&] { return !window->currentSession().modelSha256.isEmpty(); }, 30000));
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
    EXPECT_EQ(restored->currentSession().toJson().value(QStringLiteral("views")),
              saved.toJson().value(QStringLiteral("views")));
    EXPECT_EQ(restored->headView()->model().range(), window->headView()->model().range());
}
