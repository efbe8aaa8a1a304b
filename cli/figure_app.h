// A QApplication for one drawing job of sinkscope-cli (figures, handouts). The figures use QWidget-based
// plots (QCustomPlot), so a full QApplication is needed; the offscreen platform draws without a display.
// Nothing when an application exists already (the tests').
#pragma once

#include <QApplication>
#include <QDir>
#include <QFile>
#include <QFileInfo>

#include <unistd.h>

#include <memory>

namespace sinkscope::cli {

class FigureApp
{
public:
    FigureApp()
    {
        if (QCoreApplication::instance()) {
            return;
        }
        if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) {
            qputenv("QT_QPA_PLATFORM", "offscreen");
        }
        if (qEnvironmentVariableIsEmpty("XDG_RUNTIME_DIR")) {
            // What Qt falls back to anyway, without its warning on every command (a bare ssh session, cron).
            const QByteArray dir = QDir::tempPath().toUtf8() + "/runtime-sinkscope-" + QByteArray::number(getuid());
            const QString path = QString::fromUtf8(dir);
            if (QDir().mkpath(path) && QFileInfo(path).ownerId() == getuid() &&
                QFile::setPermissions(path, QFile::ReadOwner | QFile::WriteOwner | QFile::ExeOwner)) {
                qputenv("XDG_RUNTIME_DIR", dir);
            }
        }
        m_app = std::make_unique<QApplication>(m_argc, m_argv);
    }

private:
    int m_argc = 1;
    char m_name[16] = "sinkscope-cli";
    char *m_argv[2] = {m_name, nullptr};
    std::unique_ptr<QApplication> m_app;
};

} // namespace sinkscope::cli
