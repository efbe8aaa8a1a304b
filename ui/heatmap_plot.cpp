#include "heatmap_plot.h"

#include "token_chips.h"

#include <QMouseEvent>
#include <QVBoxLayout>

#include <cmath>
#include <vector>

namespace sinkscope::ui {

namespace {
constexpr int kTickLabelChars = 12;
} // namespace

double TokenTicker::getTickStep(const QCPRange &range)
{
    // Count the whole positions in view, not the range length: a range of 10.2 holds 10 labels.
    const double visible = std::floor(range.upper) - std::ceil(range.lower) + 1.0;
    return std::max(1.0, std::ceil(visible / double(m_maxTicks)));
}

int TokenTicker::getSubTickCount(double)
{
    return 0;
}

QString TokenTicker::getTickLabel(double tick, const QLocale &, QChar, int)
{
    const auto i = static_cast<qsizetype>(std::llround(tick));
    if (i < 0 || i >= m_labels.size()) {
        return {};
    }
    return abbreviate(m_labels[i], kTickLabelChars);
}

QVector<double> TokenTicker::createTickVector(double tickStep, const QCPRange &range)
{
    QVector<double> ticks;
    const auto step = std::max<int64_t>(1, static_cast<int64_t>(tickStep));
    const int64_t last = static_cast<int64_t>(m_labels.size()) - 1;
    int64_t first = static_cast<int64_t>(std::ceil(range.lower));
    first = std::max<int64_t>(0, (first + step - 1) / step * step);
    for (int64_t t = first; t <= std::min<int64_t>(last, static_cast<int64_t>(std::floor(range.upper))); t += step) {
        ticks.push_back(double(t));
    }
    return ticks;
}

HeatmapPlot::HeatmapPlot(QWidget *parent) : QWidget(parent)
{
    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    m_plot = new QCustomPlot(this);
    layout->addWidget(m_plot);
    m_plot->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    m_plot->setNoAntialiasingOnDrag(true);
    m_plot->axisRect()->setupFullAxesBox(false);
    m_plot->xAxis2->setVisible(false);
    m_plot->yAxis2->setVisible(false);
    m_plot->yAxis->setRangeReversed(true);
    m_xTicker.reset(new TokenTicker);
    m_yTicker.reset(new TokenTicker);
    m_plot->xAxis->setTicker(m_xTicker);
    m_plot->yAxis->setTicker(m_yTicker);
    m_plot->xAxis->grid()->setVisible(false);
    m_plot->yAxis->grid()->setVisible(false);

    m_map = new QCPColorMap(m_plot->xAxis, m_plot->yAxis);
    m_map->setInterpolate(false);
    m_map->setTightBoundary(false);
    m_scale = new QCPColorScale(m_plot);
    m_plot->plotLayout()->addElement(0, 1, m_scale);
    m_scale->setType(QCPAxis::atRight);
    m_scale->setBarWidth(14);
    m_map->setColorScale(m_scale);
    m_marginGroup = new QCPMarginGroup(m_plot);
    m_plot->axisRect()->setMarginGroup(QCP::msBottom | QCP::msTop, m_marginGroup);
    m_scale->setMarginGroup(QCP::msBottom | QCP::msTop, m_marginGroup);
    setColourMap(ColourMap::Viridis);
    setStyle(plotStyle(Theme::Light, false));

    m_windowTimer.setSingleShot(true);
    m_windowTimer.setInterval(40);
    connect(&m_windowTimer, &QTimer::timeout, this, &HeatmapPlot::visibleWindowChanged);
    // The axis rect gets its size only when QCustomPlot lays out (at its replot, after our resizeEvent):
    // a plot filled while hidden or before its first layout would keep ticks for the old size. Once per
    // widget size, the ticks are recomputed for the laid-out rect and the plot drawn again.
    connect(m_plot, &QCustomPlot::afterLayout, this, [this] {
        // An export (render) lays out at the figure's size: not the widget's.
        if (m_plot->viewport() == m_plot->rect() && m_plot->size() != m_tickSize) {
            m_tickSize = m_plot->size();
            updateTickDensity();
            m_plot->replot(QCustomPlot::rpQueuedReplot);
        }
    });
    connect(m_plot->xAxis, qOverload<const QCPRange &>(&QCPAxis::rangeChanged), this, [this] {
        clampRanges();
        updateTickDensity();
        m_windowTimer.start();
    });
    connect(m_plot->yAxis, qOverload<const QCPRange &>(&QCPAxis::rangeChanged), this, [this] {
        clampRanges();
        updateTickDensity();
        m_windowTimer.start();
    });
    m_plot->setMouseTracking(true);
    m_plot->installEventFilter(this);
}

void applyAxisStyle(QCPAxis *axis, const PlotStyle &style)
{
    const QPen pen(style.foreground, style.lineWidth);
    axis->setBasePen(pen);
    axis->setTickPen(pen);
    axis->setSubTickPen(pen);
    axis->setTickLabelColor(style.foreground);
    axis->setLabelColor(style.foreground);
    axis->setTickLabelFont(style.font);
    axis->setLabelFont(style.titleFont);
}

void HeatmapPlot::setStyle(const PlotStyle &style)
{
    m_style = style;
    if (!m_highlighted.empty()) {
        drawHighlights();
    }
    m_plot->setBackground(style.background);
    m_plot->axisRect()->setBackground(style.masked);
    for (QCPAxis *axis : {m_plot->xAxis, m_plot->yAxis, m_scale->axis()}) {
        applyAxisStyle(axis, style);
    }
    m_scale->setBarWidth(style.presenter ? 22 : 14);
    updateTickDensity();
    m_plot->replot(QCustomPlot::rpQueuedReplot);
}

void HeatmapPlot::setColourMap(ColourMap map)
{
    m_map->setGradient(makeGradient(map));
    m_plot->replot(QCustomPlot::rpQueuedReplot);
}

void HeatmapPlot::setAxes(const QVector<QString> &xLabels, const QVector<QString> &yLabels, const QString &xTitle,
                          const QString &yTitle)
{
    m_xTicker->setLabels(xLabels);
    m_yTicker->setLabels(yLabels);
    m_plot->xAxis->setLabel(xTitle);
    m_plot->yAxis->setLabel(yTitle);
    updateTickDensity();
}

void HeatmapPlot::setColourBarLabel(const QString &label)
{
    m_scale->axis()->setLabel(label);
}

QCPAxisRect *HeatmapPlot::sideRect(double stretch)
{
    if (m_sideRect) {
        m_plot->plotLayout()->setColumnStretchFactor(1, stretch);
        return m_sideRect;
    }
    m_sideRect = new QCPAxisRect(m_plot, false);
    m_sideRect->addAxes(QCPAxis::atBottom | QCPAxis::atLeft);
    m_plot->plotLayout()->insertColumn(1);
    m_plot->plotLayout()->addElement(0, 1, m_sideRect);
    m_plot->plotLayout()->setColumnStretchFactor(1, stretch);
    m_sideRect->setMarginGroup(QCP::msBottom | QCP::msTop, m_marginGroup);
    m_sideRect->setupFullAxesBox(false);
    QCPAxis *rows = m_sideRect->axis(QCPAxis::atLeft);
    rows->setRangeReversed(true);
    rows->setTickLabels(false);
    connect(m_plot->yAxis, qOverload<const QCPRange &>(&QCPAxis::rangeChanged), rows,
            qOverload<const QCPRange &>(&QCPAxis::setRange));
    rows->setRange(m_plot->yAxis->range());
    for (QCPAxis *axis : {rows, m_sideRect->axis(QCPAxis::atBottom)}) {
        applyAxisStyle(axis, m_style);
        axis->setLabelFont(m_style.font);
        axis->grid()->setVisible(false);
    }
    m_sideRect->setBackground(m_style.background);
    return m_sideRect;
}

void HeatmapPlot::removeSideRect()
{
    if (!m_sideRect) {
        return;
    }
    for (QCPAbstractPlottable *p : m_sideRect->plottables()) {
        m_plot->removePlottable(p);
    }
    for (QCPAbstractItem *item : m_sideRect->items()) {
        m_plot->removeItem(item);
    }
    // Items placed in the strip's coordinates but not clipped to it.
    for (int i = m_plot->itemCount() - 1; i >= 0; --i) {
        QCPAbstractItem *item = m_plot->item(i);
        if (item->clipAxisRect() == m_sideRect) {
            m_plot->removeItem(item);
        }
    }
    m_plot->plotLayout()->take(m_sideRect);
    m_plot->plotLayout()->simplify();
    delete m_sideRect;
    m_sideRect = nullptr;
    m_sideBars = nullptr;
    m_sideColumn = nullptr;
    m_plot->replot(QCustomPlot::rpQueuedReplot);
}

void HeatmapPlot::setSideBars(const std::vector<float> &values, const QString &label)
{
    if (values.empty() || m_sideColumn) {
        removeSideRect();
    }
    if (values.empty()) {
        return;
    }
    if (!m_sideBars) {
        QCPAxisRect *rect = sideRect(0.15);
        QCPAxis *rows = rect->axis(QCPAxis::atLeft);
        QCPAxis *mass = rect->axis(QCPAxis::atBottom);
        mass->setRange(0, 1);
        mass->ticker()->setTickCount(2);
        m_sideBars = new QCPBars(rows, mass);
        m_sideBars->setWidth(1.0);
        m_sideBars->setPen(Qt::NoPen);
    }
    m_sideBars->setBrush(m_style.accent);
    m_sideRect->axis(QCPAxis::atBottom)->setLabel(label);
    QVector<double> keys(static_cast<qsizetype>(values.size())), vals(static_cast<qsizetype>(values.size()));
    for (size_t i = 0; i < values.size(); ++i) {
        keys[qsizetype(i)] = double(i);
        vals[qsizetype(i)] = std::isnan(values[i]) ? 0.0 : double(values[i]);
    }
    m_sideBars->setData(keys, vals, true);
    m_plot->replot(QCustomPlot::rpQueuedReplot);
}

void HeatmapPlot::setSideColumn(const std::vector<float> &values, const QString &label, const ValueRange &range,
                                ScaleMapping mapping)
{
    if (values.empty() || m_sideBars) {
        removeSideRect();
    }
    if (values.empty()) {
        return;
    }
    if (!m_sideColumn) {
        QCPAxisRect *rect = sideRect(0.05);
        QCPAxis *column = rect->axis(QCPAxis::atBottom);
        column->setRange(-0.5, 0.5);
        column->setTicks(false);
        column->setTickLabels(false);
        m_sideColumn = new QCPColorMap(column, rect->axis(QCPAxis::atLeft));
        m_sideColumn->setInterpolate(false);
        m_sideColumn->setTightBoundary(false);
        m_sideColumn->setColorScale(m_scale);
    }
    m_sideRect->axis(QCPAxis::atBottom)->setLabel(label);
    // Two cells across (and down, for a single row): a one-cell axis of QCPColorMap has no width.
    const int rows = static_cast<int>(values.size());
    const int ny = std::max(2, rows);
    auto *data = m_sideColumn->data();
    data->setSize(2, ny);
    data->setRange(QCPRange(-0.25, 0.25), rows > 1 ? QCPRange(0, rows - 1) : QCPRange(-0.25, 0.25));
    const bool log = mapping == ScaleMapping::Log;
    for (int j = 0; j < ny; ++j) {
        double v = values[size_t(std::min(j, rows - 1))];
        if (log && !std::isnan(v) && v < range.lower) {
            v = range.lower;
        }
        data->setCell(0, j, v);
        data->setCell(1, j, v);
    }
    m_sideColumn->setDataScaleType(log ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
    m_sideColumn->setDataRange(QCPRange(range.lower, range.upper));
    m_plot->replot(QCustomPlot::rpQueuedReplot);
}

void HeatmapPlot::setExtent(int64_t xCount, int64_t yCount)
{
    if (xCount == m_xCount && yCount == m_yCount) {
        return;
    }
    m_xCount = xCount;
    m_yCount = yCount;
    resetView();
    drawHighlights();
}

void HeatmapPlot::setHighlightedTokens(const std::vector<int64_t> &positions)
{
    m_highlighted = positions;
    drawHighlights();
}

void HeatmapPlot::drawHighlights()
{
    for (QCPItemRect *item : m_highlightItems) {
        m_plot->removeItem(item);
    }
    m_highlightItems.clear();
    // Vermilion-free: the sink marks use vermilion; the outline is the style's foreground, dashed over
    // the row (query) and solid over the column (key) of each token.
    auto outline = [this](double x0, double y0, double x1, double y1, Qt::PenStyle pen) {
        auto *rect = new QCPItemRect(m_plot);
        rect->setClipToAxisRect(true);
        rect->topLeft->setCoords(x0, y0);
        rect->bottomRight->setCoords(x1, y1);
        rect->setPen(QPen(m_style.foreground.isValid() ? m_style.foreground : QColor(Qt::white),
                          std::max(1.5, m_style.lineWidth * 1.5), pen));
        rect->setBrush(Qt::NoBrush);
        rect->setSelectable(false);
        m_highlightItems.push_back(rect);
    };
    for (int64_t p : m_highlighted) {
        if (p >= 0 && p < m_xCount) {
            outline(double(p) - 0.5, -0.5, double(p) + 0.5, double(m_yCount) - 0.5, Qt::SolidLine);
        }
        if (p >= 0 && p < m_yCount) {
            outline(-0.5, double(p) - 0.5, double(m_xCount) - 0.5, double(p) + 0.5, Qt::DashLine);
        }
    }
    m_plot->replot(QCustomPlot::rpQueuedReplot);
}

void HeatmapPlot::setColourBarVisible(bool visible)
{
    const bool shown = m_plot->plotLayout()->hasElement(0, m_plot->plotLayout()->columnCount() - 1) &&
                       m_plot->plotLayout()->element(0, m_plot->plotLayout()->columnCount() - 1) == m_scale;
    if (visible == shown) {
        return;
    }
    if (visible) {
        m_plot->plotLayout()->addElement(0, m_plot->plotLayout()->columnCount(), m_scale);
    } else {
        m_plot->plotLayout()->take(m_scale);
        m_plot->plotLayout()->simplify();
    }
    m_scale->setVisible(visible);
}

void HeatmapPlot::setGrid(const PooledGrid &grid, const ValueRange &range, ScaleMapping mapping)
{
    m_map->setVisible(true);
    auto *data = m_map->data();
    const int nx = static_cast<int>(grid.nx);
    const int ny = static_cast<int>(grid.ny);
    // A one-cell axis still needs a non-empty coordinate range.
    const double x0 = grid.keyCentre(0), x1 = nx > 1 ? grid.keyCentre(nx - 1) : x0 + 1e-9;
    const double y0 = grid.queryCentre(0), y1 = ny > 1 ? grid.queryCentre(ny - 1) : y0 + 1e-9;
    data->setSize(nx, ny);
    data->setRange(QCPRange(x0, x1), QCPRange(y0, y1));
    const bool log = mapping == ScaleMapping::Log;
    for (int j = 0; j < ny; ++j) {
        for (int i = 0; i < nx; ++i) {
            double v = grid.at(i, j);
            if (log && !std::isnan(v) && v < range.lower) {
                v = range.lower; // the gradient takes log(v / lower): keep it finite
            }
            data->setCell(i, j, v);
        }
    }
    m_map->setDataScaleType(log ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
    m_scale->axis()->setTicker(log ? QSharedPointer<QCPAxisTicker>(new QCPAxisTickerLog)
                                   : QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    m_scale->axis()->setNumberFormat(log ? QStringLiteral("eb") : QStringLiteral("gb"));
    // Powers of ten read as 10^-3, not 1.000000·10^-3.
    m_scale->axis()->setNumberPrecision(log ? 0 : 6);
    m_map->setDataRange(QCPRange(range.lower, range.upper));
    m_plot->replot(QCustomPlot::rpQueuedReplot);
}

void HeatmapPlot::clear()
{
    // The extent (setExtent) stays: a head whose map comes later (computed on demand, or a layer
    // without attention and back) is drawn into the same token axes and zoom.
    m_map->data()->clear();
    m_map->setVisible(false);
    m_plot->replot(QCustomPlot::rpQueuedReplot);
}

TokenWindow HeatmapPlot::visibleWindow() const
{
    TokenWindow w;
    const QCPRange x = m_plot->xAxis->range();
    const QCPRange y = m_plot->yAxis->range();
    w.firstKey =
        std::clamp<int64_t>(static_cast<int64_t>(std::floor(x.lower + 0.5)), 0, std::max<int64_t>(0, m_xCount - 1));
    w.lastKey = std::clamp<int64_t>(static_cast<int64_t>(std::ceil(x.upper - 0.5)), w.firstKey,
                                    std::max<int64_t>(0, m_xCount - 1));
    w.firstQuery =
        std::clamp<int64_t>(static_cast<int64_t>(std::floor(y.lower + 0.5)), 0, std::max<int64_t>(0, m_yCount - 1));
    w.lastQuery = std::clamp<int64_t>(static_cast<int64_t>(std::ceil(y.upper - 0.5)), w.firstQuery,
                                      std::max<int64_t>(0, m_yCount - 1));
    return w;
}

void HeatmapPlot::setVisibleWindow(const TokenWindow &window)
{
    m_plot->xAxis->setRange(double(window.firstKey) - 0.5, double(window.lastKey) + 0.5);
    m_plot->yAxis->setRange(double(window.firstQuery) - 0.5, double(window.lastQuery) + 0.5);
    m_plot->replot(QCustomPlot::rpQueuedReplot);
}

void HeatmapPlot::resetView()
{
    m_plot->xAxis->setRange(-0.5, double(std::max<int64_t>(1, m_xCount)) - 0.5);
    m_plot->yAxis->setRange(-0.5, double(std::max<int64_t>(1, m_yCount)) - 0.5);
    m_plot->replot(QCustomPlot::rpQueuedReplot);
}

QSize HeatmapPlot::pixelBudget() const
{
    const QRect r = m_plot->axisRect()->rect();
    const double ratio = devicePixelRatioF();
    // Before the first layout the axis rect is empty: assume a typical plot.
    const int w = r.width() > 10 ? int(r.width() * ratio) : 800;
    const int h = r.height() > 10 ? int(r.height() * ratio) : 800;
    return {w, h};
}

void HeatmapPlot::render(QCPPainter *painter, const QSize &size)
{
    // Tick density for the export size, not the widget's (labels must not overlap in the figure).
    const QFontMetrics fm(m_style.font);
    const int lineHeight = std::max(1, int(fm.height() * 1.15));
    m_yTicker->setMaxTicks(std::max(1, (size.height() - 140) / lineHeight));
    m_xTicker->setMaxTicks(std::max(1, (size.width() - 180) / lineHeight));
    // A vector painter buffers each colour map in a pixmap the size of its axis rect. Where the figure
    // leaves a map no room (a small panel of a three-panel figure), that pixmap is null and Qt warns
    // on every export: lay out at the export size first and leave such maps out (none of it shows).
    const QRect oldViewport = m_plot->viewport();
    m_plot->setViewport(QRect(QPoint(0, 0), size));
    for (const auto part : {QCPLayoutElement::upPreparation, QCPLayoutElement::upMargins, QCPLayoutElement::upLayout}) {
        m_plot->plotLayout()->update(part);
    }
    std::vector<QCPColorMap *> hidden;
    for (QCPColorMap *map : {m_map, m_sideColumn}) {
        if (map && map->visible() && map->keyAxis()->axisRect()->rect().isEmpty()) {
            map->setVisible(false);
            hidden.push_back(map);
        }
    }
    m_plot->toPainter(painter, size.width(), size.height());
    for (QCPColorMap *map : hidden) {
        map->setVisible(true);
    }
    m_plot->setViewport(oldViewport);
    updateTickDensity();
}

void HeatmapPlot::clampRanges()
{
    if (m_clamping || m_xCount <= 0 || m_yCount <= 0) {
        return;
    }
    m_clamping = true;
    auto clamp = [](QCPAxis *axis, int64_t count) {
        QCPRange r = axis->range();
        const double lo = -0.5, hi = double(count) - 0.5;
        double size = std::clamp(r.size(), std::min(1.0, hi - lo), hi - lo);
        double lower = std::clamp(r.lower, lo, hi - size);
        if (lower != r.lower || size != r.size()) {
            axis->setRange(lower, lower + size);
        }
    };
    clamp(m_plot->xAxis, m_xCount);
    clamp(m_plot->yAxis, m_yCount);
    m_clamping = false;
}

void HeatmapPlot::updateTickDensity()
{
    const QFontMetrics fm(m_style.font);
    const int lineHeight = std::max(1, int(fm.height() * 1.15));
    const QRect r = m_plot->axisRect()->rect();
    const int width = r.width() > 10 ? r.width() : 600;
    const int height = r.height() > 10 ? r.height() : 600;
    m_yTicker->setMaxTicks(std::max(1, height / lineHeight));
    // Horizontal labels while they fit side by side; rotated (one line height each) when crowded.
    const QCPRange xr = m_plot->xAxis->range();
    int widest = 0;
    const auto &labels = m_xTicker->labels();
    const auto first = std::max<qsizetype>(0, qsizetype(std::ceil(xr.lower)));
    const auto last = std::min<qsizetype>(labels.size() - 1, qsizetype(std::floor(xr.upper)));
    for (qsizetype i = first; i <= last && i - first < 512; ++i) {
        widest = std::max(widest, fm.horizontalAdvance(abbreviate(labels[i], kTickLabelChars)));
    }
    const qsizetype visible = std::max<qsizetype>(1, last - first + 1);
    const bool fits = double(width) / double(visible) >= widest + fm.horizontalAdvance(QLatin1Char(' ')) * 2;
    m_plot->xAxis->setTickLabelRotation(fits ? 0 : 90);
    m_xTicker->setMaxTicks(fits ? int(visible) : std::max(1, width / lineHeight));
}

bool HeatmapPlot::cellAt(const QPoint &pos, int64_t &x, int64_t &y) const
{
    if (!hasData() || !m_plot->axisRect()->rect().contains(pos)) {
        return false;
    }
    x = std::llround(m_plot->xAxis->pixelToCoord(pos.x()));
    y = std::llround(m_plot->yAxis->pixelToCoord(pos.y()));
    return x >= 0 && y >= 0 && x < m_xCount && y < m_yCount;
}

void HeatmapPlot::resizeEvent(QResizeEvent *event)
{
    QWidget::resizeEvent(event);
    updateTickDensity();
    m_windowTimer.start();
}

bool HeatmapPlot::eventFilter(QObject *watched, QEvent *event)
{
    if (watched == m_plot) {
        switch (event->type()) {
        case QEvent::MouseMove: {
            auto *me = static_cast<QMouseEvent *>(event);
            int64_t x = 0, y = 0;
            if (cellAt(me->pos(), x, y)) {
                emit hovered(x, y, me->globalPosition().toPoint());
            } else if (m_sideRect && m_sideRect->rect().contains(me->pos()) && m_yCount > 0) {
                const auto row = std::llround(m_sideRect->axis(QCPAxis::atLeft)->pixelToCoord(me->pos().y()));
                if (row >= 0 && row < m_yCount) {
                    emit sideHovered(row, me->globalPosition().toPoint());
                }
            } else {
                emit left();
            }
            break;
        }
        case QEvent::Leave:
            emit left();
            break;
        case QEvent::MouseButtonPress:
            m_pressPos = static_cast<QMouseEvent *>(event)->pos();
            break;
        case QEvent::MouseButtonRelease: {
            auto *me = static_cast<QMouseEvent *>(event);
            int64_t x = 0, y = 0;
            // A click, not the end of a drag.
            if (me->button() == Qt::LeftButton && (me->pos() - m_pressPos).manhattanLength() < 4 &&
                cellAt(me->pos(), x, y)) {
                emit clicked(x, y);
            }
            break;
        }
        case QEvent::MouseButtonDblClick:
            resetView();
            break;
        default:
            break;
        }
    }
    return QWidget::eventFilter(watched, event);
}

} // namespace sinkscope::ui
