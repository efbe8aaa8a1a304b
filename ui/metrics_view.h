// The metrics panel: every head of the run as a table with all per-head sink metrics (docs/metrics.md),
// sortable by any of them (combo box or column header); clicking a row opens that head. Above the table,
// the model-level numbers: Sink_1^eps per layer and overall, the detected sinks with their threshold, the
// top massive activation and the secondary sinks.
#pragma once

#include "analysis_view.h"

#include <QAbstractTableModel>

class QCheckBox;
class QComboBox;
class QLabel;
class QSortFilterProxyModel;
class QTableView;

namespace sinkscope::ui {

// One row per (layer, head), columns layer, head, then SinkMetrics::headMetrics in order. DisplayRole
// is formatted text; SortRole the number (NaN sorts after every number in either order).
class HeadMetricsModel : public QAbstractTableModel
{
    Q_OBJECT
public:
    static constexpr int SortRole = Qt::UserRole + 1;
    using QAbstractTableModel::QAbstractTableModel;

    void setMetrics(std::shared_ptr<const SinkMetrics> metrics);
    const std::shared_ptr<const SinkMetrics> &metrics() const { return m_metrics; }
    // Column of a metric name, or -1.
    int columnOf(const std::string &metric) const;
    // (layer, head) of a source row.
    std::pair<int64_t, int64_t> headAt(int row) const;

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    std::shared_ptr<const SinkMetrics> m_metrics;
};

class MetricsView : public AnalysisView
{
    Q_OBJECT
public:
    explicit MetricsView(QWidget *parent = nullptr);
    QString viewId() const override { return QStringLiteral("metrics"); }
    QString viewTitle() const override { return tr("Metrics"); }
    void setSnapshot(std::shared_ptr<const RunSnapshot> snapshot) override;
    void setPlotStyle(const PlotStyle &style) override;
    void setColourMap(ColourMap map) override { m_map = map; }
    QString figureTitle() const override;
    void renderFigure(QCPPainter *painter, const QSize &size) override;
    ViewData currentData() const override;
    QJsonObject saveState() const override;
    void restoreState(const QJsonObject &state) override;

    void sortBy(const std::string &metric, bool descending = true);
    const std::string &sortMetric() const { return m_sortMetric; }
    bool descending() const { return m_descending; }
    // (layer, head) shown in table row `row` (after sorting).
    std::pair<int64_t, int64_t> headAtRow(int row) const;
    QTableView *table() const { return m_table; }
    HeadMetricsModel *tableModel() const { return m_model; }
    QString summaryText() const;

signals:
    void headActivated(int64_t layer, int64_t head);

private:
    void applySort();

    std::shared_ptr<const RunSnapshot> m_snapshot;
    std::string m_sortMetric = "first_token_mass";
    bool m_descending = true;
    HeadMetricsModel *m_model = nullptr;
    QSortFilterProxyModel *m_proxy = nullptr;
    QTableView *m_table = nullptr;
    QComboBox *m_sortBox = nullptr;
    QCheckBox *m_descendingBox = nullptr;
    QLabel *m_summary = nullptr;
    PlotStyle m_style;
    ColourMap m_map = ColourMap::Viridis;
};

} // namespace sinkscope::ui
