// The SinkScope main window. This first version shows the default model's description; the views
// (overview heatmap, head view, token view, outputs, export) are added by the window milestone.
#pragma once

#include <QMainWindow>

class QLabel;

namespace sinkscope::ui {

class MainWindow : public QMainWindow
{
    Q_OBJECT
public:
    explicit MainWindow(QWidget *parent = nullptr);

private:
    QLabel *m_status = nullptr;
};

} // namespace sinkscope::ui
