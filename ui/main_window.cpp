#include "main_window.h"

#include "sinkscope/paths.h"

#include <QLabel>
#include <QVBoxLayout>

namespace sinkscope::ui {

MainWindow::MainWindow(QWidget *parent) : QMainWindow(parent)
{
    setWindowTitle(QStringLiteral("SinkScope"));
    auto *central = new QWidget(this);
    auto *layout = new QVBoxLayout(central);
    auto *title = new QLabel(QStringLiteral("<h1>SinkScope</h1>"), central);
    m_status = new QLabel(central);
    m_status->setText(tr("Default model: %1").arg(QString::fromStdString(defaultModelPath())));
    m_status->setTextInteractionFlags(Qt::TextSelectableByMouse);
    layout->addWidget(title);
    layout->addWidget(m_status);
    layout->addStretch(1);
    setCentralWidget(central);
    resize(900, 600);
}

} // namespace sinkscope::ui
