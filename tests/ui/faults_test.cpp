// Faults in the window (docs/reliability.md, "Faults in the window"): the model file deleted or changed
// while open, a session naming a missing or changed model, a corrupt settings file, cancel at every stage
// of the long operations, a second instance converting the same model. Each ends with a message and no
// lost state. On the tiny Llama.
#include "head_view.h"
#include "main_window.h"
#include "run_controller.h"
#include "tiny_window.h"

#include "sinkscope/model/convert.h"
#include "sinkscope/runtime/memory.h"
#include "sinkscope/runtime/paths.h"
#include "support/test_paths.h"
#include "support/tiny_models.h"

#include <QFile>
#include <QPlainTextEdit>
#include <QSettings>
#include <QSignalSpy>
#include <QTest>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

using namespace sinkscope;
using namespace sinkscope::ui;
namespace fs = std::filesystem;

namespace {

class WindowFaults : public sinkscope::testing::TinyWindowTest
{
protected:
    // Runs `prompt` on `model`, shows head (layer, head) and saves the session to `path` once the model's
    // hash is known (the hash is taken after the first run; a session saved before it carries none).
    static void saveSessionOn(const QString &model, const QString &prompt, int layer, int head, const QString &path)
    {
        auto window = openAndRun({.modelPath = model, .prompt = prompt});
        window->headView()->showHead(layer, head);
        window->showView(QStringLiteral("head"));
        ASSERT_TRUE(QTest::qWaitFor([&] { return !window->runController()->modelHash().isEmpty(); }, 30000));
        QString error;
        ASSERT_TRUE(window->saveSession(path, &error)) << error.toStdString();
    }
};

QString copyOf(const QString &from, const QString &to)
{
    QFile::remove(to);
    EXPECT_TRUE(QFile::copy(from, to));
    return to;
}

bool waitForMessage(MainWindow &window, const QString &part)
{
    return QTest::qWaitFor([&] { return window.messageBar()->text().contains(part); }, 20000);
}

// Runs the prompt again and waits for its snapshot: the window still works.
bool runsAgain(MainWindow &window, const QString &prompt)
{
    QSignalSpy shown(&window, &MainWindow::snapshotShown);
    window.promptEditor()->setPlainText(prompt);
    window.runPrompt();
    return shown.wait(30000) && window.snapshot() && window.snapshot()->tokenCount() > 0;
}

} // namespace

TEST_F(WindowFaults, TheModelFileDeletedWhileOpenIsReportedAndTheModelStays)
{
    const QString model = copyOf(s_model, file("deleted.pt"));
    auto window = openAndRun({.modelPath = model, .prompt = QStringLiteral("the file goes away")});
    ASSERT_TRUE(QFile::remove(model));
    ASSERT_TRUE(waitForMessage(*window, QStringLiteral("was deleted or moved")))
        << window->messageBar()->text().toStdString();
    EXPECT_TRUE(window->messageBar()->text().contains(model));
    ASSERT_TRUE(window->model());
    EXPECT_TRUE(runsAgain(*window, QStringLiteral("and the model still runs")));
}

TEST_F(WindowFaults, TheModelFileChangedWhileOpenIsReportedAndTheLoadedCopyStays)
{
    const QString model = copyOf(s_model, file("changed.pt"));
    auto window = openAndRun({.modelPath = model, .prompt = QStringLiteral("the file changes")});
    const auto before = window->model();
    // Another tool replaces the file as atomic writers do: a new file renamed over it.
    const QString other = file("other.pt");
    const Status converted = convertGguf(s_dir->file("tiny-llama.gguf"), other.toStdString());
    ASSERT_TRUE(converted) << converted.error().message;
    ASSERT_EQ(std::rename(other.toLocal8Bit().constData(), model.toLocal8Bit().constData()), 0);
    ASSERT_TRUE(waitForMessage(*window, QStringLiteral("changed on disk")))
        << window->messageBar()->text().toStdString();
    EXPECT_EQ(window->model(), before) << "the loaded copy stays in use";
    EXPECT_TRUE(runsAgain(*window, QStringLiteral("still the loaded copy")));
    // The watch follows the new file: a second change is reported too.
    window->messageBar()->hide();
    std::ofstream(model.toStdString(), std::ios::app) << "x";
    EXPECT_TRUE(waitForMessage(*window, QStringLiteral("changed on disk")));
}

TEST_F(WindowFaults, ASessionNamingAMissingModelKeepsItsPromptAndRestoresOnceTheModelIsBack)
{
    const QString model = copyOf(s_model, file("session-model.pt"));
    ASSERT_NO_FATAL_FAILURE(saveSessionOn(model, QStringLiteral("a prompt worth keeping"), 1, 2, file("missing.json")));
    ASSERT_TRUE(QFile::remove(model));
    auto window = openAndRun({.modelPath = s_model, .prompt = QStringLiteral("what was on screen")});
    const auto loaded = window->model();
    QSignalSpy failed(window->bridge(), &ComputeBridge::failed);
    window->openSession(file("missing.json"));
    ASSERT_TRUE(failed.wait(30000));
    EXPECT_TRUE(window->messageBar()->isError());
    EXPECT_TRUE(window->messageBar()->text().contains(QStringLiteral("session-model.pt")))
        << window->messageBar()->text().toStdString();
    EXPECT_TRUE(window->messageBar()->text().contains(QStringLiteral("The session's prompt is kept")));
    EXPECT_EQ(window->promptEditor()->toPlainText(), QStringLiteral("a prompt worth keeping"));
    EXPECT_EQ(window->model(), loaded) << "the loaded model stays";

    // The model comes back: opening it restores the rest of the session.
    copyOf(s_model, model);
    QSignalSpy applied(window.get(), &MainWindow::sessionApplied);
    window->openModel(model);
    ASSERT_TRUE(applied.wait(60000)) << window->messageBar()->text().toStdString();
    EXPECT_EQ(window->headView()->model().layer(), 1);
    EXPECT_EQ(window->headView()->model().head(), 2);
    EXPECT_EQ(window->promptEditor()->toPlainText(), QStringLiteral("a prompt worth keeping"));
}

TEST_F(WindowFaults, ASessionNamingAChangedModelRestoresAndSaysTheFileDiffers)
{
    const QString model = copyOf(s_model, file("session-changed.pt"));
    ASSERT_NO_FATAL_FAILURE(saveSessionOn(model, QStringLiteral("the weights move on"), 1, 3, file("changed.json")));
    // The file at the session's path is now a later checkpoint: same shape, other weights.
    const std::string later = s_dir->file("later.gguf");
    sinkscope::testing::writeTinyLlamaCheckpointGguf(later, 500);
    const Status converted = convertGguf(later, model.toStdString());
    ASSERT_TRUE(converted) << converted.error().message;

    auto window = openAndRun({.modelPath = s_model, .prompt = QStringLiteral("what was on screen")});
    QSignalSpy applied(window.get(), &MainWindow::sessionApplied);
    window->openSession(file("changed.json"));
    ASSERT_TRUE(applied.wait(60000)) << window->messageBar()->text().toStdString();
    ASSERT_TRUE(waitForMessage(*window, QStringLiteral("differs from the one the session was saved with")))
        << window->messageBar()->text().toStdString();
    EXPECT_FALSE(window->messageBar()->isError()) << "a notice: the session is restored on the file there is";
    EXPECT_EQ(window->headView()->model().layer(), 1);
    EXPECT_EQ(window->headView()->model().head(), 3);
    EXPECT_EQ(window->promptEditor()->toPlainText(), QStringLiteral("the weights move on"));
    EXPECT_TRUE(runsAgain(*window, QStringLiteral("and the later checkpoint runs")));
}

TEST_F(WindowFaults, ACorruptSettingsFileIsKeptAsideAndTheDefaultsAreUsed)
{
    sinkscope::testing::TempDir config;
    QSettings::setPath(QSettings::NativeFormat, QSettings::UserScope, QString::fromStdString(config.path()));
    const QString settingsFile = QSettings().fileName();
    ASSERT_TRUE(settingsFile.startsWith(QString::fromStdString(config.path()))) << settingsFile.toStdString();
    fs::create_directories(fs::path(settingsFile.toStdString()).parent_path());
    std::ofstream(settingsFile.toStdString(), std::ios::binary) << "[General\nprompt=half a line\x01\xff\n";
    {
        MainWindowOptions options{.modelPath = s_model, .prompt = QStringLiteral("defaults")};
        MainWindow window(options); // with settings
        QSignalSpy shown(&window, &MainWindow::snapshotShown);
        ASSERT_TRUE(shown.wait(60000));
        // Qt reports a garbled file as a format or an access error: either way it is set aside.
        EXPECT_TRUE(window.messageBar()->text().startsWith(QStringLiteral("The settings file ") + settingsFile))
            << window.messageBar()->text().toStdString();
        EXPECT_TRUE(window.messageBar()->text().contains(settingsFile + QStringLiteral(".unreadable")));
        EXPECT_TRUE(QFile::exists(settingsFile + QStringLiteral(".unreadable")));
        EXPECT_TRUE(window.snapshot());
        window.close(); // writes fresh settings
    }
    EXPECT_TRUE(QFile::exists(settingsFile)) << "fresh settings written on close";
    QSettings::setPath(QSettings::NativeFormat, QSettings::UserScope, QDir::homePath() + QStringLiteral("/.config"));
}

TEST_F(WindowFaults, CancelAtEveryStageKeepsTheStateAndTheWindowWorking)
{
    auto window = openAndRun({.modelPath = s_model, .prompt = QStringLiteral("before any cancel")});
    const auto model = window->model();
    const auto shown = window->snapshot();
    // Cancel each long operation at each stage it reports: the first report, and (where there is one) the
    // last; a cancelled job shows no error, and what was on screen stays.
    QStringList stages;
    QObject::connect(window->bridge(), &ComputeBridge::progress, window.get(),
                     [&](const QString &, double, const QString &label) { stages << label; });

    for (int at = 0; at < 3; ++at) {
        // A run: cancelled while queued, at its first report, or at a later one.
        stages.clear();
        QMetaObject::Connection hook = QObject::connect(window->bridge(), &ComputeBridge::progress, window.get(),
                                                        [&, at](const QString &, double, const QString &) {
                                                            if (stages.size() >= at) {
                                                                window->bridge()->cancelAll();
                                                            }
                                                        });
        window->promptEditor()->setPlainText(QStringLiteral("cancelled run %1").arg(at));
        window->runPrompt();
        if (at == 0) {
            window->bridge()->cancelAll();
        }
        ASSERT_TRUE(QTest::qWaitFor([&] { return !window->bridge()->isBusy(); }, 30000));
        QObject::disconnect(hook);
        QTest::qWait(50);
        EXPECT_FALSE(window->messageBar()->isError()) << window->messageBar()->text().toStdString();
        EXPECT_EQ(window->model(), model);
        if (window->snapshot() != shown) {
            // The run finished before the cancel reached it: then it is whole.
            EXPECT_EQ(window->snapshot()->tokenCount(), int64_t(window->promptTokens().size()));
        }
    }

    // Loading another model (a conversion first): cancelled at its first report, the loaded model stays.
    std::error_code ec;
    fs::copy_file(s_dir->file("tiny-llama.gguf"), s_dir->file("cancel-me.gguf"), fs::copy_options::overwrite_existing,
                  ec);
    QMetaObject::Connection hook =
        QObject::connect(window->bridge(), &ComputeBridge::progress, window.get(),
                         [&](const QString &, double, const QString &) { window->bridge()->cancelAll(); });
    window->openModel(file("cancel-me.gguf"));
    ASSERT_TRUE(QTest::qWaitFor([&] { return !window->bridge()->isBusy(); }, 60000));
    QObject::disconnect(hook);
    EXPECT_FALSE(window->messageBar()->isError()) << window->messageBar()->text().toStdString();
    if (window->runController()->modelSource() != file("cancel-me.gguf")) {
        EXPECT_EQ(window->model(), model) << "a cancelled load keeps the model";
        EXPECT_FALSE(fs::exists(convertedArchivePath(s_dir->file("cancel-me.gguf")), ec)) << "no half archive";
    }

    // Generation, cancelled at once.
    window->runController()->generate();
    window->bridge()->cancelAll();
    ASSERT_TRUE(QTest::qWaitFor([&] { return !window->bridge()->isBusy(); }, 30000));
    EXPECT_FALSE(window->messageBar()->isError()) << window->messageBar()->text().toStdString();

    EXPECT_TRUE(runsAgain(*window, QStringLiteral("after every cancel")));
}

TEST(SecondInstance, TwoConversionsOfTheSameModelShareOneArchive)
{
    // Two SinkScope processes opening the same GGUF at once: the second waits for the first's conversion
    // (a lock beside the archive) and both load the same, whole archive. Threads open the lock file each
    // on its own, which locks as two processes do.
    sinkscope::testing::TempDir dir;
    const std::string gguf = dir.file("shared.gguf");
    sinkscope::testing::writeTinyLlamaGguf(gguf);
    const char *old = std::getenv("SINKSCOPE_CACHE_DIR");
    const std::string oldValue = old ? old : "";
    ::setenv("SINKSCOPE_CACHE_DIR", dir.file("cache").c_str(), 1);
    std::vector<Result<std::string>> results(2, Result<std::string>(makeError(ErrorCode::Internal, "not run")));
    std::vector<int> conversions(2, 0);
    std::vector<int> waits(2, 0);
    std::vector<std::thread> threads;
    for (int i = 0; i < 2; ++i) {
        threads.emplace_back([&, i] {
            results[size_t(i)] = archiveFor(gguf, [&, i](double fraction, const std::string &label) {
                if (label.rfind("Waiting for another SinkScope", 0) == 0) {
                    waits[size_t(i)] = 1;
                } else if (fraction >= 0) {
                    conversions[size_t(i)] = 1;
                }
                return true;
            });
        });
    }
    for (auto &t : threads) {
        t.join();
    }
    if (old) {
        ::setenv("SINKSCOPE_CACHE_DIR", oldValue.c_str(), 1);
    } else {
        ::unsetenv("SINKSCOPE_CACHE_DIR");
    }
    ASSERT_TRUE(results[0]) << results[0].error().message;
    ASSERT_TRUE(results[1]) << results[1].error().message;
    EXPECT_EQ(*results[0], *results[1]);
    EXPECT_EQ(conversions[0] + conversions[1], 1) << "one conversion, not two";
    EXPECT_TRUE(Model::load(*results[0])) << "the archive is whole";
}

TEST_F(WindowFaults, AMemoryRefusalIsAMessageAndTheLastRunStays)
{
    auto window = openAndRun({.modelPath = s_model, .prompt = QStringLiteral("the run on screen")});
    const auto shown = window->snapshot();
    // Less than any pass needs (its slack alone is 48 MB): the next run is refused before it allocates.
    const uint64_t rss = processStatusBytes("VmRSS");
    ::setenv("SINKSCOPE_MEMORY_LIMIT", std::to_string(rss + (16u << 20)).c_str(), 1);
    QSignalSpy failed(window->bridge(), &ComputeBridge::failed);
    window->promptEditor()->setPlainText(QStringLiteral("a run that does not fit"));
    window->runPrompt();
    const bool refused = failed.wait(30000);
    ::unsetenv("SINKSCOPE_MEMORY_LIMIT");
    ASSERT_TRUE(refused);
    const QString text = window->messageBar()->text();
    EXPECT_TRUE(window->messageBar()->isError());
    EXPECT_TRUE(text.startsWith(QStringLiteral("The run failed: a forward pass of "))) << text.toStdString();
    EXPECT_TRUE(text.contains(QStringLiteral("is left under SINKSCOPE_MEMORY_LIMIT"))) << text.toStdString();
    EXPECT_FALSE(text.contains(QLatin1Char('\n')));
    EXPECT_EQ(window->snapshot(), shown) << "the last run stays on screen";
    EXPECT_TRUE(runsAgain(*window, QStringLiteral("and without the limit it runs")));
}
