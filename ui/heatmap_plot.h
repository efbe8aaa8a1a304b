// Our wrapper around QCustomPlot for every heat map (overview grid, head map): a colour map with its
// colour bar, token or index labels on both axes, hover and click in data coordinates, zoom and pan
// clamped to the data, and a debounced "visible window changed" signal so the owner can re-pool the
// data for the new zoom level. Views feed it pooled grids; it never sees a whole T x T head unless
// that is what fits the screen.
#pragma once

#include "attention_math.h"
#include "palettes.h"

#include <QTimer>
#include <QVector>
#include <QWidget>

#include <qcustomplot.h>

namespace sinkscope::ui {

// Integer ticks at token (or index) positions, thinned so that labels never overlap, with the token
// text as label.
class TokenTicker : public QCPAxisTicker
{
public:
    void setLabels(QVector<QString> labels) { m_labels = std::move(labels); }
    const QVector<QString> &labels() const { return m_labels; }
    void setMaxTicks(int maxTicks) { m_maxTicks = std::max(1, maxTicks); }

protected:
    double getTickStep(const QCPRange &range) override;
    int getSubTickCount(double tickStep) override;
    QString getTickLabel(double tick, const QLocale &locale, QChar formatChar, int precision) override;
    QVector<double> createTickVector(double tickStep, const QCPRange &range) override;

private:
    QVector<QString> m_labels;
    int m_maxTicks = 20;
};

// Pens, colours and fonts of one axis from the plot style (every SinkScope plot uses it).
void applyAxisStyle(QCPAxis *axis, const PlotStyle &style);

class HeatmapPlot : public QWidget
{
    Q_OBJECT
public:
    explicit HeatmapPlot(QWidget *parent = nullptr);

    QCustomPlot *plot() const { return m_plot; }
    QCPColorMap *colourMap() const { return m_map; }
    QCPColorScale *colourScale() const { return m_scale; }

    void setStyle(const PlotStyle &style);
    void setColourMap(ColourMap map);
    // Token/index labels (full resolution, index = position) and axis titles.
    void setAxes(const QVector<QString> &xLabels, const QVector<QString> &yLabels, const QString &xTitle,
                 const QString &yTitle);
    void setColourBarLabel(const QString &label);
    // A narrow bar strip right of the map, one bar per row (e.g. the sink mass a renormalised map left
    // out), sharing the map's row axis; empty values remove it.
    void setSideBars(const std::vector<float> &values, const QString &label);
    bool hasSideBars() const { return m_sideRect != nullptr; } // the side strip (bars, a plot or a column)
    // A one-cell-wide colour column right of the map, one cell per row, on the map's colour scale (an
    // extra key such as a learned sink's share of each query), titled `label`; empty values remove it.
    // It replaces side bars and vice versa. Hovering it emits sideHovered.
    void setSideColumn(const std::vector<float> &values, const QString &label, const ValueRange &range,
                       ScaleMapping mapping);
    bool hasSideColumn() const { return m_sideColumn != nullptr; }
    QCPColorMap *sideColumn() const { return m_sideColumn; }
    // The strip right of the map (created on first use, `stretch` of the map's width): its left axis
    // follows the map's rows (same range, reversed, no labels); callers put plottables on it. The
    // massive-activation plot of the overview lives here, so each layer's bar sits beside its row.
    QCPAxisRect *sideRect(double stretch = 0.15);
    // Removes the strip and everything drawn on it.
    void removeSideRect();
    // The data extent in whole cells, [0, xCount) x [0, yCount): zoom is clamped to it, and a change of
    // extent resets the view. Call before visibleWindow() when new data arrives.
    void setExtent(int64_t xCount, int64_t yCount);
    // Shows a pooled grid (which must lie inside the extent).
    void setGrid(const PooledGrid &grid, const ValueRange &range, ScaleMapping mapping);
    // Shows or hides the colour bar (grid figures draw one bar for all panels).
    void setColourBarVisible(bool visible);
    void clear();
    // The visible window in whole tokens, clamped to the data.
    TokenWindow visibleWindow() const;
    void setVisibleWindow(const TokenWindow &window);
    void resetView();
    // Outlines the rows and columns of these token positions (a lesson's or the user's selected tokens);
    // positions outside the extent are skipped, empty removes the outlines.
    void setHighlightedTokens(const std::vector<int64_t> &positions);
    const std::vector<int64_t> &highlightedTokens() const { return m_highlighted; }
    int highlightItemCount() const { return int(m_highlightItems.size()); }
    // Cells the colour map may have across/down at the current size (one per device pixel).
    QSize pixelBudget() const;
    // Renders the plot (colour bar included) at the given logical size into a painter (export).
    void render(QCPPainter *painter, const QSize &size);
    bool hasData() const { return m_xCount > 0 && m_yCount > 0; }

signals:
    // Data coordinates of the cell under the mouse (rounded to the nearest index), and the global
    // position for a tooltip. Not emitted outside the data.
    void hovered(int64_t x, int64_t y, const QPoint &globalPos);
    void left();
    void clicked(int64_t x, int64_t y);
    // The mouse over the side strip at map row `y` (nearest index).
    void sideHovered(int64_t y, const QPoint &globalPos);
    // Debounced (40 ms) after zoom, pan or resize.
    void visibleWindowChanged();

protected:
    void resizeEvent(QResizeEvent *event) override;
    bool eventFilter(QObject *watched, QEvent *event) override;

private:
    void clampRanges();
    void updateTickDensity();
    bool cellAt(const QPoint &pos, int64_t &x, int64_t &y) const;
    void drawHighlights();

    QCustomPlot *m_plot = nullptr;
    QCPColorMap *m_map = nullptr;
    QCPColorScale *m_scale = nullptr;
    QCPAxisRect *m_sideRect = nullptr;
    QCPBars *m_sideBars = nullptr;
    QCPColorMap *m_sideColumn = nullptr;
    QCPMarginGroup *m_marginGroup = nullptr;
    QSharedPointer<TokenTicker> m_xTicker;
    QSharedPointer<TokenTicker> m_yTicker;
    QTimer m_windowTimer;
    QSize m_tickSize; // the widget size the ticks were last laid out for (afterLayout)
    int64_t m_xCount = 0;
    int64_t m_yCount = 0;
    bool m_clamping = false;
    QPoint m_pressPos;
    PlotStyle m_style;
    std::vector<int64_t> m_highlighted;
    std::vector<QCPItemRect *> m_highlightItems;
};

} // namespace sinkscope::ui
