// The window on the tiny Llama, for the end-to-end UI suites: the GGUF is written and converted once per
// suite, and each test opens its own window and waits for the first run.
#pragma once

#include "main_window.h"

#include "sinkscope/model/convert.h"
#include "support/test_paths.h"
#include "support/tiny_models.h"

#include <QSignalSpy>

#include <gtest/gtest.h>

#include <memory>

namespace sinkscope::testing {

class TinyWindowTest : public ::testing::Test
{
protected:
    static void SetUpTestSuite()
    {
        s_dir = new TempDir;
        const std::string gguf = s_dir->file("tiny-llama.gguf");
        writeTinyLlamaGguf(gguf);
        s_model = QString::fromStdString(s_dir->file("tiny-llama.pt"));
        const Status status = convertGguf(gguf, s_model.toStdString());
        ASSERT_TRUE(status.ok()) << status.error().message;
    }
    static void TearDownTestSuite()
    {
        delete s_dir;
        s_dir = nullptr;
    }

    // Opens the window without settings and waits for the first run to be shown.
    static std::unique_ptr<ui::MainWindow> openAndRun(ui::MainWindowOptions options)
    {
        options.useSettings = false;
        auto window = std::make_unique<ui::MainWindow>(options);
        QSignalSpy shown(window.get(), &ui::MainWindow::snapshotShown);
        EXPECT_TRUE(shown.wait(60000)) << window->messageBar()->text().toStdString();
        return window;
    }

    static QString file(const char *name) { return QString::fromStdString(s_dir->file(name)); }

    static inline TempDir *s_dir = nullptr;
    static inline QString s_model;
};

} // namespace sinkscope::testing
