// ui_soak: the window under a long random session (docs/reliability.md, "Soak"). The real MainWindow on
// the default model (SmolLM2-135M-Instruct), offscreen, takes --actions (default 1000) random actions
// from a fixed --seed:
//   run       a new prompt of random words (1 to --max-tokens tokens, default 512; mostly short, see
//             randomLength), run to its views and
//             greedy continuation;
//   cancel    a new prompt, run, then Run > Cancel (Esc) after a random delay;
//   head      another layer and head in the head view (stepped, picked, or clicked in the overview); on a
//             run longer than --map-tokens (default 384) the head's map is computed on demand;
//   scale     the head view's colour scale (linear/log, raw/without the sink, clamped, shared), pooling,
//             the overview's metric, the metrics table's sort;
//   look      colour map, theme, presenter mode;
//   mitigate  a random spec from the registry applied in the Mitigations tab (off/on toggles between);
//   figure    the current view (or the layer grid) exported as PNG, SVG or PDF to a temporary folder;
//   data      the current view's data exported as CSV or JSON;
//   tab       another tab;
//   stream    the Streaming tab's computation, waited for or cancelled.
// After each action the program waits until the compute thread is idle and samples VmRSS. After the
// warm-up (--warmup, default 100 actions) it reports RSS at the end of the warm-up, at the end and its
// maximum, the growth, and the RSS of the same reference state (a fixed 256-token run and its mitigation
// baseline) taken at the end of the warm-up and at the end. --csv writes one row per action.
// --trim calls malloc_trim(0) before every sample (to tell memory the allocator keeps from a leak).
// A benchmark-style harness, not a test: it exits non-zero on a compute error, an error in the message
// bar, a failed export, a Qt critical message or a wait that times out; a crash speaks for itself.
//
//   QT_QPA_PLATFORM=offscreen build/bin/ui_soak --actions 1000 --csv soak.csv
#include "bench_support.h"
#include "head_view.h"
#include "heatmap_plot.h"
#include "main_window.h"
#include "metrics_view.h"
#include "mitigation_view.h"
#include "overview_view.h"
#include "streaming_view.h"

#include "sinkscope/interventions/mitigation_registry.h"

#include <QAction>
#include <QApplication>
#include <QCheckBox>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QPlainTextEdit>
#include <QTabWidget>
#include <QTemporaryDir>
#include <QTimer>

#include <malloc.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using namespace sinkscope;
using namespace sinkscope::ui;
using sinkscope::bench::loadAverage;
using sinkscope::bench::statusMiB;

namespace {

// Runs the event loop until `done` (checked every 5 ms and after every event batch), blocking between
// events so that the UI thread leaves the cores to the compute thread.
bool waitFor(const std::function<bool()> &done, int timeoutMs)
{
    QElapsedTimer t;
    t.start();
    QTimer tick;
    tick.start(5);
    while (!done()) {
        if (t.elapsed() > timeoutMs) {
            return false;
        }
        QCoreApplication::processEvents(QEventLoop::WaitForMoreEvents);
    }
    return true;
}

void pause(int ms)
{
    QElapsedTimer t;
    t.start();
    waitFor([&] { return t.elapsed() >= ms; }, ms + 1000);
}

// Words for random prompts: common English, digits and punctuation, so that tokens vary in length.
const std::vector<QString> &words()
{
    static const std::vector<QString> list = [] {
        const char *text =
            "the of and to in is was he for it with as his on be at by had are but from or have an they which "
            "one you were her all she there would their we him been has when who will more no if out so said "
            "what up its about into than them can only other new some could time these two may then do first "
            "any my now such like our over man me even most made after also did many before must through back "
            "years where much your way well down should because each just those people how too little state "
            "good very make world still own see men work long get here between both life being under never day "
            "same another know while last might us great old year off come since against go came right used "
            "take three attention sink head layer token model softmax query key value cache window Paris Berlin "
            "2024 17 3.14 , . ; : ! ? ( ) \" ' - \n";
        std::vector<QString> out;
        for (const QString &w : QString::fromLatin1(text).split(QLatin1Char(' '), Qt::SkipEmptyParts)) {
            out.push_back(w);
        }
        return out;
    }();
    return list;
}

struct Options {
    int actions = 1000;
    unsigned seed = 1;
    int warmup = 100;
    int maxTokens = 512;
    int64_t mapTokens = 384;
    QString csv;
    bool trim = false;
    int timeoutMs = 600000; // one wait
};

class Soak
{
public:
    Soak(MainWindow &window, const Options &options) : m_window(window), m_options(options), m_rng(options.seed)
    {
        QObject::connect(window.bridge(), &ComputeBridge::failed, [this](const QString &tag, const QString &message) {
            if (expected(message)) {
                ++m_refusals;
            } else {
                fail(QStringLiteral("compute error (%1): %2").arg(tag, message));
            }
        });
        QObject::connect(&window, &MainWindow::snapshotShown, [this] { ++m_shown; });
        m_mitigation = window.findChild<MitigationView *>();
        m_streaming = window.findChild<StreamingView *>();
        for (QAction *action : window.findChildren<QAction *>()) {
            if (action->shortcut() == QKeySequence(Qt::Key_Escape)) {
                m_cancel = action;
            }
        }
        if (!m_mitigation || !m_streaming || !m_cancel) {
            fail(QStringLiteral("the window has no Mitigations tab, Streaming tab or Cancel action"));
        }
        QObject::connect(m_mitigation, &MitigationView::effectsShown, [this] { ++m_effects; });
        QObject::connect(m_mitigation->controller(), &MitigationController::idle, [this] { ++m_mitigationIdle; });
        QObject::connect(m_mitigation->controller(), &MitigationController::status,
                         [this](const QString &message) { m_mitigationStatus = message; });
        QObject::connect(m_streaming, &StreamingView::resultShown, [this] { ++m_streamed; });
    }

    // Answers about the input rather than faults: resid finds no massive activation to remove in a random
    // prompt (the message says which thresholds to lower).
    static bool expected(const QString &message) { return message.contains(QLatin1String("no massive activations")); }

    const std::vector<QString> &failures() const { return m_failures; }
    void fail(const QString &what) { m_failures.push_back(QStringLiteral("action %1: %2").arg(m_index).arg(what)); }

    // Until the compute thread has been idle for a while (the Streaming tab starts its computation 400 ms
    // after a new run is shown; the bridge returns free memory to the system on the compute thread when it
    // falls idle, in a few milliseconds).
    bool settle()
    {
        const int quiet = m_window.tabs()->currentWidget() == m_streaming ? 500 : 100;
        for (;;) {
            if (!waitFor([&] { return !m_window.bridge()->isBusy(); }, m_options.timeoutMs)) {
                fail(QStringLiteral("the compute thread did not become idle"));
                return false;
            }
            pause(quiet);
            if (!m_window.bridge()->isBusy()) {
                return true;
            }
        }
    }

    // A prompt of random words of about `tokens` tokens in all (a BOS included when the window adds one).
    QString randomPrompt(int tokens)
    {
        const bool bos = m_window.bosToggle()->isChecked();
        const int64_t text = std::max(1, tokens - (bos ? 1 : 0));
        std::uniform_int_distribution<size_t> pick(0, words().size() - 1);
        QString prompt;
        const auto tokenizer = m_window.model()->tokenizer();
        for (;;) {
            for (int i = 0; i < 64; ++i) {
                const QString &w = words()[pick(m_rng)];
                if (!prompt.isEmpty() && w != QLatin1String("\n")) {
                    prompt += QLatin1Char(' ');
                }
                prompt += w;
            }
            std::vector<int64_t> ids = tokenizer->encode(prompt.toStdString(), EncodeOptions{.addBos = false});
            if (int64_t(ids.size()) >= text) {
                ids.resize(size_t(text));
                return QString::fromStdString(tokenizer->decode(ids)).trimmed();
            }
        }
    }

    // Mostly short prompts (quick actions: 7 in 10 have 1-96 tokens), 2 in 10 of 97-320 and 1 in 10 of
    // 321 to --max-tokens (above --map-tokens: long runs, maps on demand).
    int randomLength()
    {
        const int p = uniform(0, 99);
        const int max = m_options.maxTokens;
        if (p < 70 || max <= 96) {
            return uniform(1, std::min(96, max));
        }
        if (p < 90 || max <= 320) {
            return uniform(97, std::min(320, max));
        }
        return uniform(321, max);
    }

    int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(m_rng); }
    bool chance(int percent) { return uniform(0, 99) < percent; }

    // Sets the prompt and runs it; waits for the views and the continuation.
    bool runTo(const QString &prompt)
    {
        m_window.promptEditor()->setPlainText(prompt);
        const int before = m_shown;
        m_window.runPrompt();
        if (!waitFor([&] { return m_shown > before || !m_failures.empty(); }, m_options.timeoutMs)) {
            fail(QStringLiteral("the run was not shown"));
            return false;
        }
        return settle();
    }

    void run()
    {
        const int tokens = randomLength();
        runTo(randomPrompt(tokens));
        m_tokens = m_window.snapshot() ? m_window.snapshot()->tokenCount() : 0;
    }

    void cancel()
    {
        m_window.promptEditor()->setPlainText(randomPrompt(randomLength()));
        const int before = m_shown;
        m_window.runPrompt();
        pause(uniform(0, 1500));
        m_cancel->trigger();
        settle();
        m_cancelledBeforeShown += m_shown > before ? 0 : 1;
    }

    void head()
    {
        const auto snap = m_window.snapshot();
        if (!snap) {
            return;
        }
        HeadView *view = m_window.headView();
        m_window.showView(QStringLiteral("head"));
        switch (uniform(0, 3)) {
        case 0:
            view->stepHead(chance(50) ? +1 : -1);
            break;
        case 1:
            view->stepLayer(chance(50) ? +1 : -1);
            break;
        case 2:
            view->showHead(uniform(0, int(snap->layers - 1)), uniform(0, int(snap->heads - 1)));
            break;
        default:
            // A click in the overview opens the head (as a user does).
            emit m_window.overviewView()->heatmap()->clicked(uniform(0, int(snap->heads - 1)),
                                                             uniform(0, int(snap->layers - 1)));
            break;
        }
        if (snap->mapsOnDemand) {
            ++m_headMaps;
            if (!waitFor([&] { return view->model().valid() || !m_failures.empty(); }, m_options.timeoutMs)) {
                fail(QStringLiteral("the head map of a long run was not computed"));
            }
        }
        view->heatmap()->plot()->replot(QCustomPlot::rpImmediateRefresh);
        settle();
    }

    void scale()
    {
        HeadView *view = m_window.headView();
        switch (uniform(0, 3)) {
        case 0:
        case 1: {
            ColourScale scale;
            scale.mapping = chance(50) ? ScaleMapping::Log : ScaleMapping::Linear;
            scale.transform = chance(30) ? ScaleTransform::RenormaliseWithoutSink : ScaleTransform::Raw;
            scale.clampPercentile = chance(40);
            scale.percentile = 90.0 + uniform(0, 100) / 10.0;
            scale.shared = chance(40);
            view->setScale(scale);
            view->setPooling(chance(50) ? Pooling::Max : Pooling::Mean);
            break;
        }
        case 2:
            if (const auto snap = m_window.snapshot(); snap && snap->metrics && !snap->metrics->headMetrics.empty()) {
                const auto &metrics = snap->metrics->headMetrics;
                m_window.overviewView()->setMetric(metrics[size_t(uniform(0, int(metrics.size()) - 1))].name);
            }
            break;
        default:
            if (const auto snap = m_window.snapshot(); snap && snap->metrics && !snap->metrics->headMetrics.empty()) {
                const auto &metrics = snap->metrics->headMetrics;
                m_window.metricsView()->sortBy(metrics[size_t(uniform(0, int(metrics.size()) - 1))].name, chance(50));
            }
            break;
        }
        if (m_window.snapshot() && m_window.snapshot()->mapsOnDemand) {
            waitFor([&] { return view->model().valid() || !m_failures.empty(); }, m_options.timeoutMs);
        }
        view->heatmap()->plot()->replot(QCustomPlot::rpImmediateRefresh);
        settle();
    }

    void look()
    {
        switch (uniform(0, 2)) {
        case 0:
            m_window.setColourMap(ColourMap(uniform(0, 2)));
            break;
        case 1:
            m_window.setTheme(chance(50) ? Theme::Dark : Theme::Light);
            break;
        default:
            m_window.setPresenterMode(chance(30));
            break;
        }
        QCoreApplication::processEvents();
    }

    // A spec step with each parameter at its example or a random value in range, on every head, one
    // layer or one head.
    QString randomSpec()
    {
        const auto &methods = mitigationMethods();
        const MitigationMethodInfo &method = methods[size_t(uniform(0, int(methods.size()) - 1))];
        std::vector<double> values;
        for (const MitigationParam &p : method.params) {
            double v = p.example;
            if (chance(50)) {
                if (!p.choices.empty()) {
                    v = uniform(0, int(p.choices.size()) - 1);
                } else if (p.integer) {
                    v = uniform(int(p.min), int(std::min(p.max, p.min + 8)));
                } else {
                    v = p.min + (std::min(p.max, p.min + 4) - p.min) * uniform(0, 100) / 100.0;
                }
            }
            values.push_back(v);
        }
        QString scope;
        const auto snap = m_window.snapshot();
        if (method.takesHeads && snap && chance(50)) {
            const int layer = uniform(0, int(snap->layers - 1));
            scope = chance(50) ? QStringLiteral("L%1").arg(layer)
                               : QStringLiteral("L%1H%2").arg(layer).arg(uniform(0, int(snap->heads - 1)));
        }
        return mitigationStepText(method, values, scope);
    }

    void mitigate()
    {
        if (!m_window.snapshot()) {
            return;
        }
        m_window.showView(QStringLiteral("mitigations"));
        QCoreApplication::processEvents();
        settle();
        if (m_mitigation->baseline() && chance(25)) {
            // Off and on again: cached results, no model run.
            m_mitigation->setMitigationEnabled(!m_mitigation->mitigationEnabled());
            settle();
            return;
        }
        const QString spec = randomSpec();
        m_mitigation->setSpec(spec);
        m_mitigation->setMitigationEnabled(true);
        if (!m_mitigation->specError().isEmpty()) {
            // The builder's range is the parser's: a spec it writes that the model refuses is a finding.
            fail(QStringLiteral("spec %1 refused: %2").arg(spec, m_mitigation->specError()));
            return;
        }
        const int effects = m_effects;
        const int idle = m_mitigationIdle;
        const int refusals = m_refusals;
        m_mitigation->apply();
        if (!waitFor([&] { return m_effects > effects || m_mitigationIdle > idle || !m_failures.empty(); },
                     m_options.timeoutMs)) {
            fail(QStringLiteral("spec %1 was not shown (%2)").arg(spec, m_mitigationStatus));
        }
        settle();
        if (m_mitigationIdle > idle && m_effects == effects && m_refusals == refusals) {
            fail(QStringLiteral("spec %1 ended without a result (%2)").arg(spec, m_mitigationStatus));
        }
    }

    void figure(const QString &dir)
    {
        if (!m_window.snapshot()) {
            return;
        }
        static const char *kViews[] = {"overview", "head", "tokens", "metrics", "mitigations"};
        QString view = QString::fromLatin1(kViews[uniform(0, 4)]);
        if (view == QLatin1String("mitigations") && !m_mitigation->baseline()) {
            view = QStringLiteral("head");
        }
        m_window.showView(view);
        QCoreApplication::processEvents();
        settle();
        static const char *kSuffixes[] = {"png", "svg", "pdf"};
        const QString suffix = QString::fromLatin1(kSuffixes[uniform(0, 2)]);
        FigureOptions options = m_window.defaultFigureOptions();
        options.pixelSize = QSize(uniform(600, 1600), uniform(400, 1200));
        options.dpi = chance(50) ? 150 : 300;
        QString error;
        // The layer grid needs the run's maps (a long run keeps none and says so).
        const bool grid = view == QLatin1String("head") && !m_window.snapshot()->mapsOnDemand && chance(30);
        const QString path = QDir(dir).filePath(QStringLiteral("figure-%1.%2").arg(m_index).arg(suffix));
        if (grid) {
            options.title = m_window.headView()->layerGridTitle();
        }
        const bool ok =
            grid ? m_window.exportLayerGrid(path, options, &error) : m_window.exportCurrentView(path, options, &error);
        if (!ok) {
            fail(QStringLiteral("export of %1 (%2) failed: %3").arg(view, path, error));
        } else if (QFileInfo(path).size() == 0) {
            fail(QStringLiteral("export of %1 wrote an empty %2").arg(view, path));
        }
        QFile::remove(path);
    }

    void data(const QString &dir)
    {
        if (!m_window.snapshot()) {
            return;
        }
        static const char *kViews[] = {"overview", "head", "tokens", "metrics"};
        const QString view = QString::fromLatin1(kViews[uniform(0, 3)]);
        m_window.showView(view);
        QCoreApplication::processEvents();
        settle();
        const QString path =
            QDir(dir).filePath(QStringLiteral("data-%1.%2").arg(m_index).arg(chance(50) ? "csv" : "json"));
        QString error;
        if (!m_window.exportCurrentData(path, &error)) {
            fail(QStringLiteral("data export of %1 (%2) failed: %3").arg(view, path, error));
        }
        QFile::remove(path);
    }

    void tab()
    {
        static const char *kViews[] = {"overview", "head", "tokens", "metrics", "mitigations", "probes", "compare"};
        m_window.showView(QString::fromLatin1(kViews[uniform(0, 6)]));
        QCoreApplication::processEvents();
        settle();
    }

    void stream()
    {
        if (!m_window.snapshot()) {
            return;
        }
        m_window.showView(QStringLiteral("streaming"));
        QCoreApplication::processEvents();
        if (chance(50)) {
            m_streaming->setCache(uniform(8, 64));
        }
        m_streaming->compute();
        if (chance(75)) {
            pause(uniform(0, 1500));
            m_streaming->cancel();
        }
        settle();
        // Leave the tab: runs shown while it is in front start its computation again.
        m_window.showView(QStringLiteral("overview"));
        QCoreApplication::processEvents();
    }

    // The same state at the end of the warm-up and at the end: a fixed 256-token prompt shown, its
    // baseline alone in the Mitigations tab (which drops the cached runs of earlier prompts), the default
    // scale, the overview in front.
    double reference()
    {
        m_window.headView()->setScale(ColourScale{});
        std::mt19937 fixed(12345);
        std::swap(fixed, m_rng);
        const QString prompt = randomPrompt(256);
        std::swap(fixed, m_rng);
        m_window.showView(QStringLiteral("overview"));
        QCoreApplication::processEvents();
        runTo(prompt);
        m_window.showView(QStringLiteral("mitigations"));
        QCoreApplication::processEvents();
        settle();
        m_mitigation->setSpec(QStringLiteral("none"));
        m_mitigation->setMitigationEnabled(true);
        const int effects = m_effects;
        m_mitigation->apply();
        waitFor([&] { return m_effects > effects || !m_failures.empty(); }, m_options.timeoutMs);
        m_window.showView(QStringLiteral("overview"));
        QCoreApplication::processEvents();
        settle();
        if (m_options.trim) {
            malloc_trim(0);
        }
        return statusMiB("VmRSS");
    }

    void setIndex(int index) { m_index = index; }
    int64_t lastTokens() const { return m_tokens; }
    int headMaps() const { return m_headMaps; }
    int cancelledBeforeShown() const { return m_cancelledBeforeShown; }
    int refusals() const { return m_refusals; }

private:
    MainWindow &m_window;
    Options m_options;
    std::mt19937 m_rng;
    MitigationView *m_mitigation = nullptr;
    StreamingView *m_streaming = nullptr;
    QAction *m_cancel = nullptr;
    std::vector<QString> m_failures;
    int m_index = -1;
    int m_shown = 0;
    int m_effects = 0;
    int m_mitigationIdle = 0;
    int m_streamed = 0;
    int m_headMaps = 0;
    int m_cancelledBeforeShown = 0;
    int m_refusals = 0;
    int64_t m_tokens = 0;
    QString m_mitigationStatus;
};

int s_criticals = 0;
int s_warnings = 0;
QtMessageHandler s_previousHandler = nullptr;

void messageHandler(QtMsgType type, const QMessageLogContext &context, const QString &message)
{
    if (type == QtCriticalMsg || type == QtFatalMsg) {
        ++s_criticals;
    } else if (type == QtWarningMsg) {
        ++s_warnings;
    }
    if (type != QtDebugMsg && type != QtInfoMsg && s_previousHandler) {
        s_previousHandler(type, context, message);
    }
}

} // namespace

int main(int argc, char **argv)
{
    if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) {
        qputenv("QT_QPA_PLATFORM", "offscreen");
    }
    s_previousHandler = qInstallMessageHandler(messageHandler);
    QApplication app(argc, argv);
    QApplication::setApplicationName(QStringLiteral("SinkScopeSoak"));
    Options options;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const bool hasValue = i + 1 < argc;
        if (arg == "--trim") {
            options.trim = true;
        } else if (arg == "--actions" && hasValue) {
            options.actions = std::max(1, std::atoi(argv[++i]));
        } else if (arg == "--seed" && hasValue) {
            options.seed = unsigned(std::strtoul(argv[++i], nullptr, 10));
        } else if (arg == "--warmup" && hasValue) {
            options.warmup = std::max(0, std::atoi(argv[++i]));
        } else if (arg == "--max-tokens" && hasValue) {
            options.maxTokens = std::clamp(std::atoi(argv[++i]), 2, 4096);
        } else if (arg == "--map-tokens" && hasValue) {
            options.mapTokens = std::max(2, std::atoi(argv[++i]));
        } else if (arg == "--csv" && hasValue) {
            options.csv = QString::fromLocal8Bit(argv[++i]);
        } else {
            std::cerr << "usage: ui_soak [--actions N] [--seed S] [--warmup N] [--max-tokens N] [--map-tokens N] "
                         "[--csv FILE] [--trim]\n";
            return 2;
        }
    }
    options.warmup = std::min(options.warmup, options.actions - 1);
    std::cout << "load average before: " << loadAverage() << std::endl;

    MainWindow window({.modelPath = {},
                       .prompt = QStringLiteral("Hello"),
                       .useSettings = false,
                       .autoRun = false,
                       .mapTokens = options.mapTokens});
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

    QTemporaryDir dir;
    Soak soak(window, options);
    if (!soak.runTo(QStringLiteral("Hello"))) {
        std::cerr << "the first run failed\n";
        return 1;
    }

    struct Kind {
        const char *name;
        int weight;
        std::function<void()> act;
    };
    const QString exportDir = dir.path();
    const std::vector<Kind> kinds = {
        {"run", 9, [&] { soak.run(); }},
        {"cancel", 10, [&] { soak.cancel(); }},
        {"head", 20, [&] { soak.head(); }},
        {"scale", 16, [&] { soak.scale(); }},
        {"look", 6, [&] { soak.look(); }},
        {"mitigate", 3, [&] { soak.mitigate(); }},
        {"figure", 14, [&] { soak.figure(exportDir); }},
        {"data", 8, [&] { soak.data(exportDir); }},
        {"tab", 13, [&] { soak.tab(); }},
        {"stream", 1, [&] { soak.stream(); }},
    };
    std::vector<int> weights;
    for (const Kind &k : kinds) {
        weights.push_back(k.weight);
    }
    std::mt19937 picker(options.seed ^ 0x5eedu);
    std::discrete_distribution<int> pick(weights.begin(), weights.end());

    struct Sample {
        int index;
        const char *kind;
        double rss;
        int64_t tokens;
        double seconds;
    };
    std::vector<Sample> samples;
    std::map<std::string, int> counts;
    std::map<std::string, double> seconds;
    double referenceStart = 0;
    // Written as the soak goes, so that a run cut short leaves its samples.
    std::ofstream csv;
    if (!options.csv.isEmpty()) {
        csv.open(options.csv.toStdString());
        csv << "action,kind,rss_mib,tokens,seconds" << std::endl;
    }
    QElapsedTimer wall;
    wall.start();
    for (int i = 0; i < options.actions && soak.failures().empty(); ++i) {
        const Kind &kind = kinds[size_t(pick(picker))];
        soak.setIndex(i);
        QElapsedTimer timer;
        timer.start();
        kind.act();
        if (window.messageBar()->isError() && window.messageBar()->isVisible() &&
            !Soak::expected(window.messageBar()->text())) {
            soak.fail(QStringLiteral("error in the message bar: %1").arg(window.messageBar()->text()));
        }
        if (s_criticals > 0) {
            soak.fail(QStringLiteral("a Qt critical message"));
        }
        const double secs = double(timer.nsecsElapsed()) / 1e9;
        if (options.trim) {
            malloc_trim(0);
        }
        const int64_t tokens = window.snapshot() ? window.snapshot()->tokenCount() : 0;
        samples.push_back({i, kind.name, statusMiB("VmRSS"), tokens, secs});
        if (csv.is_open()) {
            csv << i << "," << kind.name << "," << std::fixed << std::setprecision(1) << samples.back().rss << ","
                << tokens << "," << std::setprecision(3) << secs << std::endl;
        }
        ++counts[kind.name];
        seconds[kind.name] += secs;
        if ((i + 1) % 50 == 0) {
            std::cout << "action " << (i + 1) << ": RSS " << std::fixed << std::setprecision(0) << samples.back().rss
                      << " MiB, " << std::setprecision(1) << wall.elapsed() / 1000.0 << " s, load " << loadAverage()
                      << std::endl;
        }
        if (i + 1 == options.warmup) {
            referenceStart = soak.reference();
            std::cout << "end of warm-up: RSS " << samples.back().rss << " MiB; reference state " << referenceStart
                      << " MiB" << std::endl;
        }
    }
    const double referenceEnd = soak.failures().empty() ? soak.reference() : 0;
    const double elapsed = wall.elapsed() / 1000.0;

    std::cout << std::fixed << std::setprecision(1);
    std::cout << "\n"
              << samples.size() << " actions in " << elapsed << " s (" << elapsed / 60 << " min), seed " << options.seed
              << ", " << (options.trim ? "malloc_trim before every sample" : "no malloc_trim") << "\n";
    for (const Kind &k : kinds) {
        std::cout << "  " << std::left << std::setw(9) << k.name << std::right << std::setw(5) << counts[k.name] << "  "
                  << std::setw(7) << seconds[k.name] << " s\n";
    }
    std::cout << "  head maps computed on demand: " << soak.headMaps()
              << "; cancels that came before the run was shown: " << soak.cancelledBeforeShown()
              << "; mitigations refused for the input (resid without massive activations): " << soak.refusals() << "\n";
    if (int(samples.size()) > options.warmup && options.warmup > 0) {
        const double start = samples[size_t(options.warmup - 1)].rss;
        const double end = samples.back().rss;
        double max = 0, min = 1e12;
        for (size_t i = size_t(options.warmup); i < samples.size(); ++i) {
            max = std::max(max, samples[i].rss);
            min = std::min(min, samples[i].rss);
        }
        // Least-squares slope of RSS over the actions after the warm-up.
        double sx = 0, sy = 0, sxx = 0, sxy = 0;
        const double n = double(samples.size()) - options.warmup;
        for (size_t i = size_t(options.warmup); i < samples.size(); ++i) {
            sx += double(i);
            sy += samples[i].rss;
            sxx += double(i) * double(i);
            sxy += double(i) * samples[i].rss;
        }
        const double slope = n > 1 ? (n * sxy - sx * sy) / (n * sxx - sx * sx) : 0;
        std::cout << "RSS after the warm-up (" << options.warmup << " actions): " << start << " MiB; at the end " << end
                  << " MiB; min " << min << ", max " << max << " MiB; growth " << (end - start) / start * 100
                  << " %; trend " << slope * 100 << " MiB per 100 actions\n";
        if (referenceStart > 0 && referenceEnd > 0) {
            std::cout << "reference state (a 256-token run and its baseline): " << referenceStart
                      << " MiB after the warm-up, " << referenceEnd << " MiB at the end: growth "
                      << (referenceEnd - referenceStart) / referenceStart * 100 << " %\n";
        }
    }
    std::cout << "peak RSS " << statusMiB("VmHWM") << " MiB; Qt warnings " << s_warnings << "\n";
    std::cout << "load average after: " << loadAverage() << "\n";
    if (!soak.failures().empty()) {
        for (const QString &f : soak.failures()) {
            std::cerr << "FAILED " << f.toStdString() << "\n";
        }
        return 1;
    }
    std::cout << "no failures\n";
    return 0;
}
