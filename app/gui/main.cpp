// build/bin/sinkscope [MODEL.pt|MODEL.gguf|HF_FOLDER|SESSION.json] [--prompt TEXT] [--no-settings]
//                     [--screenshots DIR] [--lesson ID|FILE] [--presenter] [--dark]
// --screenshots runs the prompt, saves the main views as PNG into DIR and quits (tools/screenshots.sh).
#include "head_view.h"
#include "main_window.h"
#include "metrics_view.h"
#include "mitigation_view.h"
#include "overview_view.h"

#include "sinkscope/runtime/runtime.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QFileInfo>
#include <QTimer>

#include <csignal>

namespace {

// Saves the window in each main view and look, then quits. Steps are spaced so that queued replots and
// the greedy continuation land before each grab.
void scheduleScreenshots(sinkscope::ui::MainWindow *window, const QString &dir)
{
    using namespace sinkscope::ui;
    QDir().mkpath(dir);
    auto steps = std::make_shared<std::vector<std::function<void()>>>();
    auto grab = [window, dir](const QString &name) {
        window->grab().save(dir + QLatin1Char('/') + name + QStringLiteral(".png"));
    };
    steps->push_back([window] { window->showView(QStringLiteral("overview")); });
    steps->push_back([grab] { grab(QStringLiteral("overview")); });
    steps->push_back([window] {
        window->headView()->showHead(3, 1);
        window->showView(QStringLiteral("head"));
    });
    steps->push_back([grab] { grab(QStringLiteral("head")); });
    steps->push_back([window] {
        ColourScale scale = window->headView()->model().scale();
        scale.transform = ScaleTransform::RenormaliseWithoutSink;
        window->headView()->setScale(scale);
    });
    steps->push_back([grab] { grab(QStringLiteral("head-without-sink")); });
    steps->push_back([window] {
        window->headView()->setScale(ColourScale{});
        window->showView(QStringLiteral("tokens"));
    });
    steps->push_back([grab] { grab(QStringLiteral("tokens")); });
    steps->push_back([window] {
        window->metricsView()->sortBy("first_token_mass", true);
        window->showView(QStringLiteral("metrics"));
    });
    steps->push_back([grab] { grab(QStringLiteral("metrics")); });
    // Mitigations: sink masking on a head with a strong sink, then the dormancy map would take L x H
    // passes; the per-head attention change is shown instead.
    steps->push_back([window] {
        auto *view = window->findChild<MitigationView *>();
        view->setSpec(QStringLiteral("mask-sink"));
        view->showHead(5, 2);
        window->showView(QStringLiteral("mitigations"));
        view->apply();
    });
    for (int i = 0; i < 8; ++i) {
        steps->push_back([] {}); // the mitigated pass and both continuations
    }
    steps->push_back([grab] { grab(QStringLiteral("mitigations")); });
    // Presenter mode at a projector's 1600 x 1000: every control must fit.
    steps->push_back([window] {
        window->setTheme(Theme::Dark);
        window->setPresenterMode(true);
        window->resize(1600, 1000);
        window->showView(QStringLiteral("head"));
    });
    steps->push_back([grab] { grab(QStringLiteral("presenter-dark")); });
    steps->push_back([window] { window->showView(QStringLiteral("overview")); });
    steps->push_back([grab] { grab(QStringLiteral("presenter-overview")); });
    // Models with sliding-window layers: the overview with only those layers.
    steps->push_back([window] {
        window->setPresenterMode(false);
        window->setTheme(Theme::Light);
        window->resize(1400, 900);
        if (window->snapshot() && window->snapshot()->config.hasSlidingLayers()) {
            window->overviewView()->setLayerFilter(LayerFilter::Sliding);
        }
    });
    steps->push_back([window, grab] {
        if (window->snapshot() && window->snapshot()->config.hasSlidingLayers()) {
            grab(QStringLiteral("overview-sliding-layers"));
        }
    });
    // ... and the head view of the first sliding layer, its window masked.
    steps->push_back([window] {
        const auto snap = window->snapshot();
        for (int64_t l = 0; snap && l < snap->layers; ++l) {
            if (snap->windowOf(l) > 0) {
                window->headView()->showHead(l, 1);
                window->showView(QStringLiteral("head"));
                break;
            }
        }
    });
    steps->push_back([window, grab] {
        if (window->snapshot() && window->snapshot()->config.hasSlidingLayers()) {
            grab(QStringLiteral("head-sliding-layer"));
        }
    });
    steps->push_back([] { QCoreApplication::quit(); });
    auto index = std::make_shared<size_t>(0);
    auto *timer = new QTimer(window);
    timer->setInterval(700);
    QObject::connect(timer, &QTimer::timeout, window, [steps, index, timer] {
        if (*index < steps->size()) {
            (*steps)[(*index)++]();
        } else {
            timer->stop();
        }
    });
    // Wait for the first run and its greedy continuation (at most 20 s), so no picture shows work in
    // progress.
    QObject::connect(
        window, &MainWindow::snapshotShown, timer,
        [window, timer] {
            QObject::connect(
                window->bridge(), &ComputeBridge::generationFinished, timer,
                [timer] {
                    QTimer::singleShot(500, timer, [timer] {
                        if (!timer->isActive())
                            timer->start();
                    });
                },
                Qt::SingleShotConnection);
            QTimer::singleShot(20000, timer, [timer] {
                if (!timer->isActive())
                    timer->start();
            });
        },
        Qt::SingleShotConnection);
}

} // namespace

int main(int argc, char **argv)
{
    std::signal(SIGXFSZ, SIG_IGN); // a write past a file-size limit fails (EFBIG) and is reported
    QApplication app(argc, argv);
    QApplication::setApplicationName(QStringLiteral("SinkScope"));
    QApplication::setOrganizationName(QStringLiteral("SinkScope"));
    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral("Attention sinks, layer by layer and head by head."));
    parser.addHelpOption();
    parser.addPositionalArgument(
        QStringLiteral("file"),
        QStringLiteral("A model (.pt, .gguf, a Hugging Face folder or its config.json) or a session (.json)"));
    QCommandLineOption promptOption(QStringLiteral("prompt"), QStringLiteral("Prompt to run"), QStringLiteral("text"));
    QCommandLineOption noSettings(QStringLiteral("no-settings"),
                                  QStringLiteral("Neither read nor write saved settings"));
    QCommandLineOption screenshots(QStringLiteral("screenshots"), QStringLiteral("Save the main views as PNG and quit"),
                                   QStringLiteral("dir"));
    QCommandLineOption lesson(QStringLiteral("lesson"),
                              QStringLiteral("Open a lesson (a built-in lesson's id or a lesson file) in lesson mode"),
                              QStringLiteral("ID|FILE"));
    QCommandLineOption presenter(QStringLiteral("presenter"), QStringLiteral("Start in presenter mode (F5)"));
    QCommandLineOption dark(QStringLiteral("dark"), QStringLiteral("Start with the dark palette (Ctrl+Shift+D)"));
    parser.addOptions({promptOption, noSettings, screenshots, lesson, presenter, dark});
    parser.process(app);

    sinkscope::applyThreadSettings(sinkscope::defaultThreadSettings());

    sinkscope::ui::MainWindowOptions options;
    const QStringList args = parser.positionalArguments();
    if (!args.isEmpty()) {
        const QFileInfo file(args.first());
        const bool session = file.suffix().compare(QLatin1String("json"), Qt::CaseInsensitive) == 0 &&
                             file.fileName() != QLatin1String("config.json");
        (session ? options.sessionPath : options.modelPath) = args.first();
    }
    options.prompt = parser.value(promptOption);
    options.useSettings = !parser.isSet(noSettings) && !parser.isSet(screenshots);
    options.lesson = parser.value(lesson);
    sinkscope::ui::MainWindow window(options);
    if (parser.isSet(dark)) {
        window.setTheme(sinkscope::ui::Theme::Dark);
    }
    if (parser.isSet(presenter)) {
        window.setPresenterMode(true);
        window.resize(1600, 1000);
    }
    if (parser.isSet(screenshots)) {
        window.resize(1400, 900);
    }
    window.show();
    if (parser.isSet(screenshots)) {
        scheduleScreenshots(&window, parser.value(screenshots));
    }
    return QApplication::exec();
}
