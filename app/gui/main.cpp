// build/bin/sinkscope [MODEL.pt|MODEL.gguf|SESSION.json] [--prompt TEXT] [--no-settings]
//                     [--screenshots DIR]
// --screenshots runs the prompt, saves the main views as PNG into DIR and quits (tools/screenshots.sh).
#include "head_view.h"
#include "main_window.h"
#include "overview_view.h"

#include "sinkscope/runtime.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QDir>
#include <QTimer>

namespace {

// Saves the window in each main view and look, then quits. Steps are spaced so that queued replots and
// the greedy continuation land before each grab.
void scheduleScreenshots(sinkscope::ui::MainWindow *window, const QString &dir)
{
    using namespace sinkscope::ui;
    QDir().mkpath(dir);
    auto steps = std::make_shared<std::vector<std::function<void()>>>();
    auto grab = [window, dir](const QString &name) { window->grab().save(dir + QLatin1Char('/') + name + QStringLiteral(".png")); };
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
        window->setTheme(Theme::Dark);
        window->setPresenterMode(true);
        window->showView(QStringLiteral("head"));
    });
    steps->push_back([grab] { grab(QStringLiteral("presenter-dark")); });
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
    // Wait for the first run and most of the continuation.
    QObject::connect(window, &MainWindow::snapshotShown, timer, [timer] { QTimer::singleShot(2500, timer, qOverload<>(&QTimer::start)); },
                     Qt::SingleShotConnection);
}

} // namespace

int main(int argc, char **argv)
{
    QApplication app(argc, argv);
    QApplication::setApplicationName(QStringLiteral("SinkScope"));
    QApplication::setOrganizationName(QStringLiteral("SinkScope"));
    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral("Attention sinks, layer by layer and head by head."));
    parser.addHelpOption();
    parser.addPositionalArgument(QStringLiteral("file"), QStringLiteral("A model (.pt, .gguf) or a session (.json)"));
    QCommandLineOption promptOption(QStringLiteral("prompt"), QStringLiteral("Prompt to run"), QStringLiteral("text"));
    QCommandLineOption noSettings(QStringLiteral("no-settings"), QStringLiteral("Neither read nor write saved settings"));
    QCommandLineOption screenshots(QStringLiteral("screenshots"), QStringLiteral("Save the main views as PNG and quit"),
                                   QStringLiteral("dir"));
    parser.addOptions({promptOption, noSettings, screenshots});
    parser.process(app);

    sinkscope::applyThreadSettings(sinkscope::defaultThreadSettings());

    sinkscope::ui::MainWindowOptions options;
    const QStringList args = parser.positionalArguments();
    if (!args.isEmpty()) {
        (args.first().endsWith(QLatin1String(".json"), Qt::CaseInsensitive) ? options.sessionPath : options.modelPath) = args.first();
    }
    options.prompt = parser.value(promptOption);
    options.useSettings = !parser.isSet(noSettings) && !parser.isSet(screenshots);
    sinkscope::ui::MainWindow window(options);
    window.show();
    if (parser.isSet(screenshots)) {
        scheduleScreenshots(&window, parser.value(screenshots));
    }
    return QApplication::exec();
}
