// Layer x head overview of one per-head quantity (first-token mass, mean row entropy). Clicking a cell
// opens that head in the head view.
#pragma once

#include "analysis_view.h"
#include "attention_math.h"

class QComboBox;
class QLabel;

namespace sinkscope::ui {

class HeatmapPlot;

enum class OverviewQuantity { FirstTokenMass, MeanEntropy };

// The [L, H] grid of a quantity as a pooled grid (x = head, y = layer) and its natural range.
PooledGrid overviewGrid(const RunSnapshot &snapshot, OverviewQuantity quantity);
ValueRange overviewRange(OverviewQuantity quantity, const PooledGrid &grid);

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

    void setQuantity(OverviewQuantity quantity);
    OverviewQuantity quantity() const { return m_quantity; }
    HeatmapPlot *heatmap() const { return m_plot; }
    static QString quantityName(OverviewQuantity quantity);

signals:
    void headActivated(int64_t layer, int64_t head);

private:
    void refresh();
    void fill(HeatmapPlot *plot) const;

    std::shared_ptr<const RunSnapshot> m_snapshot;
    OverviewQuantity m_quantity = OverviewQuantity::FirstTokenMass;
    HeatmapPlot *m_plot = nullptr;
    QComboBox *m_quantityBox = nullptr;
    QLabel *m_summary = nullptr;
    PlotStyle m_style;
    ColourMap m_map = ColourMap::Viridis;
};

} // namespace sinkscope::ui
