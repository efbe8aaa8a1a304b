// The common face of every panel in the window's view area. Later panels (metrics, mitigations,
// probes) derive from it and are added with MainWindow::addView(); export, sessions, themes and new
// runs then reach them without further wiring.
#pragma once

#include "figure_export.h"
#include "palettes.h"
#include "run_snapshot.h"

#include <QJsonObject>
#include <QWidget>

#include <memory>

class QCPPainter;

namespace sinkscope::ui {

class AnalysisView : public QWidget
{
    Q_OBJECT
public:
    using QWidget::QWidget;

    virtual QString viewId() const = 0;    // stable key for settings and sessions ("head", ...)
    virtual QString viewTitle() const = 0; // tab title
    virtual void setSnapshot(std::shared_ptr<const RunSnapshot> snapshot) = 0;
    virtual void setPlotStyle(const PlotStyle &style) = 0;
    virtual void setColourMap(ColourMap) {}

    // Figure export: a title for the current content and a painter of that content at any size.
    virtual QString figureTitle() const = 0;
    virtual void renderFigure(QCPPainter *painter, const QSize &size) = 0;
    virtual ViewData currentData() const = 0;

    virtual QJsonObject saveState() const { return {}; }
    virtual void restoreState(const QJsonObject &) {}
};

} // namespace sinkscope::ui
