// The window opens every kind of model file the issue names: a GGUF file is converted on the fly (with
// progress) into the cache and then runs like any archive, and a generic TorchScript module (no
// tokenizer, no contract: a traced Hugging Face model, tests/data/families/traced/) runs on token ids
// typed as the prompt and shows its attention and metrics.
#include "compute_bridge.h"
#include "head_view.h"
#include "heatmap_plot.h"
#include "main_window.h"
#include "overview_view.h"

#include "support/test_paths.h"
#include "support/tiny_models.h"

#include <QFileInfo>
#include <QPlainTextEdit>
#include <QSignalSpy>
#include <QStandardPaths>

#include <gtest/gtest.h>

using namespace sinkscope;
using namespace sinkscope::ui;

TEST(ModelFiles, GgufOpensDirectlyWithConversionProgress)
{
    QStandardPaths::setTestModeEnabled(true); // the conversion cache goes under ~/.qttest
    sinkscope::testing::TempDir dir;
    const QString gguf = QString::fromStdString(dir.file("tiny-direct.gguf"));
    sinkscope::testing::writeTinyLlamaGguf(gguf.toStdString());
    const QString converted = ComputeBridge::convertedPathFor(gguf);
    QFile::remove(converted);

    MainWindow window({.modelPath = gguf, .prompt = QStringLiteral("hello world"), .useSettings = false});
    QSignalSpy progress(window.bridge(), &ComputeBridge::progress);
    QSignalSpy shown(&window, &MainWindow::snapshotShown);
    ASSERT_TRUE(shown.wait(60000)) << window.messageBar()->text().toStdString();
    bool converting = false;
    for (const QList<QVariant> &args : progress) {
        converting |= args.at(2).toString().startsWith(QStringLiteral("Converting"));
    }
    EXPECT_TRUE(converting); // progress named the conversion
    EXPECT_TRUE(QFileInfo::exists(converted));
    EXPECT_EQ(window.snapshot()->layers, sinkscope::testing::tiny::kLayers);
    ASSERT_TRUE(window.snapshot()->metrics);
    QFile::remove(converted);
    QStandardPaths::setTestModeEnabled(false);
}

TEST(ModelFiles, GenericTorchScriptRunsOnTypedTokenIds)
{
    EXPECT_EQ(MainWindow::parseTokenIds(QStringLiteral("1 2, 3\n6")), (std::vector<int64_t>{1, 2, 3, 6}));
    EXPECT_TRUE(MainWindow::parseTokenIds(QStringLiteral("1 two 3")).empty());

    const QString path = QString::fromStdString(sinkscope::testing::testDataDir() + "/families/traced/llama_traced.pt");
    MainWindow window({.modelPath = path, .prompt = QStringLiteral("1 2 3 6 5"), .useSettings = false});
    QSignalSpy shown(&window, &MainWindow::snapshotShown);
    ASSERT_TRUE(shown.wait(60000)) << window.messageBar()->text().toStdString();
    const auto snapshot = window.snapshot();
    ASSERT_TRUE(snapshot);
    EXPECT_EQ(snapshot->tokenCount(), 5);
    EXPECT_EQ(snapshot->layers, 2); // inferred from the module's output
    EXPECT_EQ(snapshot->heads, 4);
    // The limitation is stated; the metrics that need only attention are there.
    EXPECT_TRUE(window.messageBar()->text().contains(QStringLiteral("generic TorchScript")));
    ASSERT_TRUE(snapshot->metrics);
    EXPECT_FALSE(std::isnan(snapshot->metrics->head("first_token_mass", 1, 1)));
    EXPECT_EQ(window.overviewView()->heatmap()->colourMap()->data()->keySize(), 4);   // heads
    EXPECT_EQ(window.overviewView()->heatmap()->colourMap()->data()->valueSize(), 2); // layers
    window.headView()->showHead(1, 1);
    EXPECT_TRUE(window.headView()->model().valid());

    // Text that is not ids: a clear message instead of a run.
    window.promptEditor()->setPlainText(QStringLiteral("hello"));
    window.runPrompt();
    EXPECT_TRUE(window.messageBar()->text().contains(QStringLiteral("type token ids")));
}
