// Layer x head overview of any per-head sink metric of the run (sinkscope::SinkMetrics: first-token
// mass, Gu's alpha, entropies, effective mass, dormant heads, ...), with the massive-activation plot
// beside its rows (largest |h| over the median per layer, token and dimension labelled) so sink heads
// and the activations that cause them line up. Clicking a cell opens that head in the head view.
#pragma once

#include "analysis_view.h"
#include "attention_math.h"

#include <QVector>

#include <string>

class QCheckBox;
class QComboBox;
class QLabel;

namespace sinkscope::ui {

class HeatmapPlot;

// Which layers the overview shows: every layer, the sliding-window (local) ones or the global ones.
enum class LayerFilter { All, Sliding, Global };
bool layerShown(const RunSnapshot &snapshot, int64_t layer, LayerFilter filter);

// The [L, H] grid of a per-head metric (x = head, y = layer); empty when the run has no such metric.
// Rows of layers the filter leaves out are NaN (drawn as masked), so rows keep their layer index.
PooledGrid overviewGrid(const RunSnapshot &snapshot, const std::string &metric, LayerFilter filter = LayerFilter::All);
// The layer axis labels: the index, with " S" on sliding-window layers.
QVector<QString> overviewLayerLabels(const RunSnapshot &snapshot);

class OverviewView : public AnalysisView
{
    Q_OBJECT
public:
    explicit OverviewView(QWidget *parent = nullptr);
    QString viewId() const override { return QStringLiteral("overview"); }
    QString viewTitle() const override { return tr("Overview"); }
    void setSnapshot(std::shared_ptr<const RunSnapshot> snapshot) override;
    void setPlotStyle(const PlotStyle &style) override;
    void setColourMap(ColourMap map) override;
    QString figureTitle() const override;
    void renderFigure(QCPPainter *painter, const QSize &size) override;
    ViewData currentData() const override;
    QJsonObject saveState() const override;
    void restoreState(const QJsonObject &state) override;

    // A metric name from metrics.h (heads.csv column); unknown names are kept and shown once a run
    // has them.
    void setMetric(const std::string &metric);
    const std::string &metric() const { return m_metric; }
    void setLayerFilter(LayerFilter filter);
    LayerFilter layerFilter() const { return m_filter; }
    // Whether the filter applies (the model has sliding layers); otherwise it is disabled and All.
    bool layerFilterEnabled() const;
    void setActivationsShown(bool shown);
    bool activationsShown() const { return m_showActivations; }
    HeatmapPlot *heatmap() const { return m_plot; }
    QString summaryText() const;

signals:
    void headActivated(int64_t layer, int64_t head);

private:
    void refresh();
    void fillMetricBox();

    std::shared_ptr<const RunSnapshot> m_snapshot;
    std::string m_metric = "first_token_mass";
    bool m_showActivations = true;
    LayerFilter m_filter = LayerFilter::All;
    QComboBox *m_filterBox = nullptr;
    HeatmapPlot *m_plot = nullptr;
    QComboBox *m_metricBox = nullptr;
    QCheckBox *m_activationsBox = nullptr;
    QLabel *m_summary = nullptr;
    PlotStyle m_style;
    ColourMap m_map = ColourMap::Viridis;
};

} // namespace sinkscope::ui
