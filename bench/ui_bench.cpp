// ui_bench: what a user of the window waits for, on the default model (SmolLM2-135M-Instruct), through
// the real MainWindow on the offscreen platform (docs/performance.md, "The window"):
//   - Run to first heatmap: runPrompt() until the overview heat map has been replotted with the new run
//     (forward pass with full capture, core metrics, colour-scale sketches, views), at 256 and 1024 tokens;
//   - head switch: stepHead() plus a synchronous replot of the head map (pooling at screen resolution);
//   - hover: one mouse-move event over the head map, tooltip text included;
//   - shared colour scale toggled on (the range from the per-head sketches);
//   - peak RSS of the process after the 1024-token run;
//   - head switch and hover on a shown 256-token run while a long run (--busy-tokens) computes.
// A timing harness, not Google Benchmark: the work runs through Qt's event loop. Medians of --repeat
// runs (default 5; 3 at 1024 tokens) with the load average before and after. Not a test.
#include "analysis_view.h"
#include "bench_support.h"
#include "head_view.h"
#include "heatmap_plot.h"
#include "main_window.h"
#include "overview_view.h"
#include "sinkscope/runtime/parallel.h"

#include <qcustomplot.h>

#include <QApplication>
#include <QElapsedTimer>
#include <QFile>
#include <QMouseEvent>
#include <QPlainTextEdit>
#include <QTimer>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

using namespace sinkscope;
using namespace sinkscope::ui;
using sinkscope::bench::loadAverage;
using sinkscope::bench::statusMiB;

namespace {

double median(std::vector<double> v)
{
    if (v.empty()) {
        return 0;
    }
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

// A prompt of about `tokens` tokens of English text (the GPL, or a repeated sentence without it).
QString promptOf(const Model &model, int tokens)
{
    QString text;
    QFile gpl(QStringLiteral("/usr/share/common-licenses/GPL-3"));
    if (gpl.open(QIODevice::ReadOnly)) {
        text = QString::fromUtf8(gpl.readAll());
    }
    while (text.size() < tokens * 8) {
        text += QStringLiteral("The capital of France is Paris, and the capital of Germany is Berlin. ");
    }
    const auto tokenizer = model.tokenizer();
    std::vector<int64_t> ids = tokenizer->encode(text.toStdString(), EncodeOptions{.addBos = false});
    ids.resize(size_t(tokens));
    return QString::fromStdString(tokenizer->decode(ids));
}

// Runs the event loop until `done` (checked every 2 ms and after every event batch). Blocks between
// events: a busy-polling UI thread would take a core from the compute thread and inflate the timings.
bool waitFor(const std::function<bool()> &done, int timeoutMs)
{
    QElapsedTimer t;
    t.start();
    QTimer tick;
    tick.start(2);
    while (!done()) {
        if (t.elapsed() > timeoutMs) {
            return false;
        }
        QCoreApplication::processEvents(QEventLoop::WaitForMoreEvents);
    }
    return true;
}

} // namespace

int main(int argc, char **argv)
{
    if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) {
        qputenv("QT_QPA_PLATFORM", "offscreen");
    }
    QApplication app(argc, argv);
    QApplication::setApplicationName(QStringLiteral("SinkScopeBench"));
    int repeat = 5;
    int busyTokens = 2048;
    // 4096: a long run (over kMapTokens), which keeps q/k instead of maps and computes the shown head.
    std::vector<int> lengths = {256, 1024, 4096};
    for (int i = 1; i + 1 < argc; ++i) {
        if (std::string(argv[i]) == "--repeat") {
            repeat = std::max(1, std::atoi(argv[i + 1]));
        }
        if (std::string(argv[i]) == "--busy-tokens") {
            busyTokens = std::max(2, std::atoi(argv[i + 1]));
        }
        if (std::string(argv[i]) == "--tokens") {
            lengths.clear();
            std::stringstream list(argv[i + 1]);
            for (std::string part; std::getline(list, part, ',');) {
                lengths.push_back(std::max(2, std::atoi(part.c_str())));
            }
        }
    }
    std::cout << "load average before: " << loadAverage() << "\n";

    MainWindow window({.modelPath = {}, .prompt = QStringLiteral("Hello"), .useSettings = false, .autoRun = false});
    bool loaded = false;
    QObject::connect(&window, &MainWindow::modelReady, [&] { loaded = true; });
    if (!waitFor([&] { return loaded; }, 600000)) {
        std::cerr << "the default model did not load: " << window.messageBar()->text().toStdString() << "\n";
        return 1;
    }
    window.resize(1400, 900);
    window.show();
    QCoreApplication::processEvents();
    std::cout << "model loaded; RSS " << statusMiB("VmRSS") << " MiB\n";

    QCustomPlot *overviewPlot = window.overviewView()->heatmap()->plot();
    QCustomPlot *headPlot = window.headView()->heatmap()->plot();
    int overviewReplots = 0;
    QObject::connect(overviewPlot, &QCustomPlot::afterReplot, [&] { ++overviewReplots; });

    for (int tokens : lengths) {
        window.promptEditor()->setPlainText(promptOf(*window.model(), tokens));
        const int runs = tokens > 512 ? std::max(1, std::min(repeat, 3)) : repeat;
        std::vector<double> firstHeatmap, forward, analysis, arrival, views;
        for (int r = 0; r < runs; ++r) {
            window.showView(QStringLiteral("overview"));
            int shownCount = 0;
            QElapsedTimer timer;
            double resultAt = 0, shownAt = 0;
            // busyChanged(false) comes right before the result is handed to the window (nothing else
            // is pending: the continuation was cancelled, the hash is done).
            const auto idle = QObject::connect(window.bridge(), &ComputeBridge::busyChanged, [&](bool busy) {
                if (!busy && resultAt == 0) {
                    resultAt = double(timer.nsecsElapsed()) / 1e6;
                }
            });
            const auto connection = QObject::connect(&window, &MainWindow::snapshotShown, [&] {
                ++shownCount;
                shownAt = double(timer.nsecsElapsed()) / 1e6;
            });
            const int before = overviewReplots;
            timer.start();
            window.runPrompt();
            const bool done = waitFor([&] { return shownCount > 0 && overviewReplots > before; }, 600000);
            QObject::disconnect(connection);
            QObject::disconnect(idle);
            if (!done) {
                std::cerr << "run timed out: " << window.messageBar()->text().toStdString() << "\n";
                return 1;
            }
            firstHeatmap.push_back(double(timer.nsecsElapsed()) / 1e6);
            forward.push_back(window.snapshot()->forwardSeconds * 1000);
            analysis.push_back(window.snapshot()->analysisSeconds * 1000);
            arrival.push_back(resultAt);
            views.push_back(shownAt - resultAt);
            // Let the greedy continuation finish: the next run should find the compute thread idle.
            waitFor([&] { return !window.bridge()->isBusy(); }, 600000);
        }
        const int64_t T = window.snapshot()->tokenCount();
        // What each view's setSnapshot costs on the UI thread at this length.
        for (AnalysisView *view : window.findChildren<AnalysisView *>()) {
            QElapsedTimer timer;
            timer.start();
            view->setSnapshot(window.snapshot());
            std::cout << "T=" << T << " " << view->viewId().toStdString() << "::setSnapshot "
                      << double(timer.nsecsElapsed()) / 1e6 << " ms\n";
        }
        std::cout << "T=" << T << " run->first heatmap: median " << median(firstHeatmap) << " ms (forward "
                  << median(forward) << " ms, metrics+summaries " << median(analysis)
                  << " ms; result on the UI thread at " << median(arrival) << " ms, views updated in " << median(views)
                  << " ms; " << runs << " runs)\n";

        // Head switching and hovering on the head map, at this length.
        window.showView(QStringLiteral("head"));
        QCoreApplication::processEvents();
        HeadView *head = window.headView();
        std::vector<double> switches;
        if (window.snapshot()->mapsOnDemand) {
            // No maps kept: a switch asks the compute thread for the head's map (computeHeadMap).
            waitFor([&] { return head->model().valid(); }, 600000);
            for (int i = 0; i < 8; ++i) {
                QElapsedTimer timer;
                timer.start();
                head->stepHead(+1);
                waitFor([&] { return head->model().valid(); }, 600000);
                headPlot->replot(QCustomPlot::rpImmediateRefresh);
                switches.push_back(double(timer.nsecsElapsed()) / 1e6);
            }
            std::cout << "T=" << T << " maps on demand: the head switches below wait for the computed map; RSS "
                      << statusMiB("VmRSS") << " MiB, peak " << statusMiB("VmHWM") << " MiB\n";
        }
        for (int i = 0; i < 60 && !window.snapshot()->mapsOnDemand; ++i) {
            QElapsedTimer timer;
            timer.start();
            head->stepHead(+1);
            headPlot->replot(QCustomPlot::rpImmediateRefresh);
            switches.push_back(double(timer.nsecsElapsed()) / 1e6);
        }
        std::vector<double> hovers;
        const QRect rect = headPlot->axisRect()->rect();
        for (int i = 0; i < 200; ++i) {
            const QPointF pos(rect.left() + 5 + (i * 37) % std::max(1, rect.width() - 10),
                              rect.top() + 5 + (i * 53) % std::max(1, rect.height() - 10));
            QMouseEvent move(QEvent::MouseMove, pos, headPlot->mapToGlobal(pos), Qt::NoButton, Qt::NoButton,
                             Qt::NoModifier);
            QElapsedTimer timer;
            timer.start();
            QCoreApplication::sendEvent(headPlot, &move);
            hovers.push_back(double(timer.nsecsElapsed()) / 1e6);
        }
        std::vector<double> shared;
        for (int i = 0; i < 10; ++i) {
            ColourScale scale = head->model().scale();
            scale.shared = (i % 2) == 0;
            scale.clampPercentile = (i % 4) == 0;
            QElapsedTimer timer;
            timer.start();
            head->setScale(scale);
            headPlot->replot(QCustomPlot::rpImmediateRefresh);
            shared.push_back(double(timer.nsecsElapsed()) / 1e6);
        }
        head->setScale(ColourScale{});
        std::sort(switches.begin(), switches.end());
        std::sort(hovers.begin(), hovers.end());
        std::cout << "T=" << T << " head switch + replot: median " << median(switches) << " ms, max " << switches.back()
                  << " ms (" << switches.size() << " switches)\n";
        std::cout << "T=" << T << " hover (mouse move + tooltip): median " << median(hovers) << " ms, max "
                  << hovers.back() << " ms (200 moves)\n";
        std::cout << "T=" << T << " colour-scale change (shared/clamped toggles) + replot: median " << median(shared)
                  << " ms\n";
        std::cout << "T=" << T << " peak RSS so far " << statusMiB("VmHWM") << " MiB, RSS now " << statusMiB("VmRSS")
                  << " MiB\n";
    }
    // Responsiveness while a run is in flight: a 256-token run is shown (its maps in memory), then a long run
    // (--busy-tokens, default 2048) starts on the compute thread, which uses every core it may; head switches
    // and hovers on the shown run are timed on the UI thread until the long run ends.
    {
        window.promptEditor()->setPlainText(promptOf(*window.model(), 256));
        int shown = 0;
        auto c = QObject::connect(&window, &MainWindow::snapshotShown, [&] { ++shown; });
        window.runPrompt();
        waitFor([&] { return shown > 0; }, 600000);
        waitFor([&] { return !window.bridge()->isBusy(); }, 600000);
        QObject::disconnect(c);
        window.showView(QStringLiteral("head"));
        QCoreApplication::processEvents();
        HeadView *head = window.headView();
        const QRect rect = headPlot->axisRect()->rect();
        window.promptEditor()->setPlainText(promptOf(*window.model(), busyTokens));
        // Until the long run's result is shown (after that, head switches of a long run ask the compute
        // thread for maps, which is another measurement).
        bool longShown = false;
        auto shownLong = QObject::connect(&window, &MainWindow::snapshotShown, [&] { longShown = true; });
        window.runPrompt();
        std::vector<double> switches, hovers;
        QElapsedTimer wall;
        wall.start();
        for (int i = 0; !longShown && window.bridge()->isBusy() && wall.elapsed() < 600000; ++i) {
            QElapsedTimer timer;
            timer.start();
            head->stepHead(+1);
            headPlot->replot(QCustomPlot::rpImmediateRefresh);
            switches.push_back(double(timer.nsecsElapsed()) / 1e6);
            for (int k = 0; k < 5; ++k) {
                const QPointF pos(rect.left() + 5 + ((i * 5 + k) * 37) % std::max(1, rect.width() - 10),
                                  rect.top() + 5 + ((i * 5 + k) * 53) % std::max(1, rect.height() - 10));
                QMouseEvent move(QEvent::MouseMove, pos, headPlot->mapToGlobal(pos), Qt::NoButton, Qt::NoButton,
                                 Qt::NoModifier);
                timer.start();
                QCoreApplication::sendEvent(headPlot, &move);
                hovers.push_back(double(timer.nsecsElapsed()) / 1e6);
            }
            // As a user moves the mouse: an event every ~20 ms, the loop free in between.
            QTimer::singleShot(20, [] {});
            QCoreApplication::processEvents(QEventLoop::WaitForMoreEvents);
        }
        const qint64 inFlight = wall.elapsed();
        QObject::disconnect(shownLong);
        waitFor([&] { return !window.bridge()->isBusy(); }, 600000);
        std::sort(switches.begin(), switches.end());
        std::sort(hovers.begin(), hovers.end());
        if (!switches.empty()) {
            const auto p95 = [](const std::vector<double> &v) {
                return v[std::min(v.size() - 1, v.size() * 95 / 100)];
            };
            std::cout << "during a " << busyTokens << "-token run (" << inFlight << " ms until shown, "
                      << parallelThreads() << " threads): head switch + replot median " << median(switches)
                      << " ms, p95 " << p95(switches) << " ms, max " << switches.back() << " ms (" << switches.size()
                      << "); hover median " << median(hovers) << " ms, p95 " << p95(hovers) << " ms, max "
                      << hovers.back() << " ms (" << hovers.size() << ")\n";
        }
    }
    std::cout << "load average after: " << loadAverage() << "\n";
    return 0;
}
