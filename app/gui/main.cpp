#include "main_window.h"

#include <QApplication>

int main(int argc, char **argv)
{
    QApplication app(argc, argv);
    QApplication::setApplicationName(QStringLiteral("SinkScope"));
    QApplication::setOrganizationName(QStringLiteral("SinkScope"));
    sinkscope::ui::MainWindow window;
    window.show();
    return QApplication::exec();
}
