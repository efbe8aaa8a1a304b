#include "figures.h"

#include "heatmap_plot.h"
#include "token_chips.h"

#include <qcustomplot.h>

#include <QDir>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

namespace sinkscope::ui {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

QColor highlightColour(const PlotStyle &style)
{
    return style.theme == Theme::Dark ? QColor(0xf0, 0xb4, 0x3c) : QColor(0xd5, 0x5e, 0x00);
}

void styleCustomPlot(QCustomPlot *plot, const PlotStyle &style)
{
    plot->setBackground(style.background);
    for (QCPAxisRect *rect : plot->axisRects()) {
        rect->setBackground(style.background);
        for (QCPAxis *axis : rect->axes()) {
            applyAxisStyle(axis, style);
            axis->grid()->setPen(QPen(style.grid, 1, Qt::DotLine));
        }
    }
}

QString metricTitle(const HeadMetric &metric)
{
    return QString::fromStdString(metric.name);
}

} // namespace

QVector<QString> tokenAxisLabels(const std::vector<std::string> &texts)
{
    QVector<QString> labels;
    labels.reserve(qsizetype(texts.size()));
    for (const std::string &t : texts) {
        labels << displayTokenText(t);
    }
    return labels;
}

bool isUnitMetric(const std::string &name)
{
    static const std::set<std::string> unit = {
        "first_token_mass", "bos_mass",        "sink_set_mass",     "alpha_first",
        "row_entropy",      "col_entropy_max", "entropy_sink_head", "effective_first_token_mass",
        "dormant"};
    return unit.count(name) > 0;
}

ValueRange headMetricRange(const HeadMetric &metric)
{
    if (isUnitMetric(metric.name)) {
        return {0.0, 1.0};
    }
    double lo = std::numeric_limits<double>::infinity(), hi = -std::numeric_limits<double>::infinity();
    for (float v : metric.values.data) {
        if (std::isfinite(v)) {
            lo = std::min(lo, double(v));
            hi = std::max(hi, double(v));
        }
    }
    if (!std::isfinite(lo)) {
        return {0.0, 1.0};
    }
    lo = std::min(lo, 0.0);
    return {lo, hi > lo ? hi : lo + 1.0};
}

void fillHeadMetricHeatmap(HeatmapPlot *plot, const HeadMetric &metric, int64_t layers, int64_t heads)
{
    if (layers <= 0 || heads <= 0 || metric.values.shape.size() != 2) {
        plot->clear();
        return;
    }
    QVector<QString> headLabels, layerLabels;
    for (int64_t h = 0; h < heads; ++h) {
        headLabels << QString::number(h);
    }
    for (int64_t l = 0; l < layers; ++l) {
        layerLabels << QString::number(l);
    }
    plot->setAxes(headLabels, layerLabels, QObject::tr("head"), QObject::tr("layer"));
    plot->setColourBarLabel(metricTitle(metric));
    plot->setExtent(heads, layers);
    plot->setGrid(headMetricGrid(metric), headMetricRange(metric), ScaleMapping::Linear);
}

QString massiveActivationAxisLabel()
{
    return QObject::tr("max |h| / median |h|");
}

bool fillMassiveActivations(QCPAxisRect *rect, const SinkMetrics &metrics, const PlotStyle &style, int labelCount)
{
    QCPAxis *rows = rect->axis(QCPAxis::atLeft);
    QCPAxis *ratio = rect->axis(QCPAxis::atBottom);
    QCustomPlot *plot = rect->parentPlot();
    if (!rows || !ratio || metrics.activationsByLayer.empty()) {
        return false;
    }
    auto *normal = new QCPBars(rows, ratio);
    auto *massive = new QCPBars(rows, ratio);
    for (QCPBars *bars : {normal, massive}) {
        bars->setWidth(0.8);
        bars->setPen(Qt::NoPen);
    }
    normal->setBrush(style.accent);
    massive->setBrush(highlightColour(style));
    normal->setName(QObject::tr("max |h| / median"));
    massive->setName(QObject::tr("massive (Sun et al.)"));
    const double absThreshold = metrics.settings.massiveAbs;
    const double ratioThreshold = metrics.settings.massiveRatio;
    double hi = ratioThreshold, lo = std::numeric_limits<double>::infinity();
    QVector<double> normalKeys, normalValues, massiveKeys, massiveValues;
    for (const LayerActivations &a : metrics.activationsByLayer) {
        const double r = a.ratio;
        if (!std::isfinite(r) || r <= 0) {
            continue;
        }
        hi = std::max(hi, r);
        lo = std::min(lo, r);
        const bool isMassive = a.top[0] > absThreshold && r > ratioThreshold;
        (isMassive ? massiveKeys : normalKeys) << double(a.layer);
        (isMassive ? massiveValues : normalValues) << r;
    }
    normal->setData(normalKeys, normalValues, true);
    massive->setData(massiveKeys, massiveValues, true);
    ratio->setScaleType(QCPAxis::stLogarithmic);
    QSharedPointer<QCPAxisTickerLog> ticker(new QCPAxisTickerLog);
    ticker->setLogBase(10);
    ticker->setSubTickCount(0);
    ratio->setTicker(ticker);
    ratio->setNumberFormat(QStringLiteral("eb"));
    ratio->setNumberPrecision(0);
    const double lower = std::isfinite(lo) ? std::pow(10.0, std::floor(std::log10(std::max(1.0, lo * 0.5)))) : 1.0;
    ratio->setRange(lower, hi * 3.0);
    // Bars on a log axis grow from its lower end (log 0 does not exist).
    normal->setBaseValue(lower);
    massive->setBaseValue(lower);
    ratio->setLabel(massiveActivationAxisLabel());
    applyAxisStyle(ratio, style);
    applyAxisStyle(rows, style);

    auto *threshold = new QCPItemStraightLine(plot);
    threshold->setClipAxisRect(rect);
    threshold->point1->setAxes(ratio, rows);
    threshold->point2->setAxes(ratio, rows);
    threshold->point1->setCoords(ratioThreshold, 0);
    threshold->point2->setCoords(ratioThreshold, 1);
    threshold->setPen(QPen(style.foreground, style.lineWidth, Qt::DashLine));

    // Labels on the largest ratios: which token and which dimension carry the activation.
    std::vector<const LayerActivations *> order;
    for (const LayerActivations &a : metrics.activationsByLayer) {
        if (std::isfinite(a.ratio) && a.ratio > 0) {
            order.push_back(&a);
        }
    }
    std::sort(order.begin(), order.end(), [](const auto *a, const auto *b) { return a->ratio > b->ratio; });
    const size_t labels = labelCount < 0 ? order.size() : std::min(order.size(), size_t(labelCount));
    QFont font = style.font;
    font.setPointSizeF(std::max(6.0, font.pointSizeF() * 0.85));
    for (size_t i = 0; i < labels; ++i) {
        const LayerActivations &a = *order[i];
        QString token = QStringLiteral("#%1").arg(a.topToken);
        if (a.topToken >= 0 && a.topToken < static_cast<int64_t>(metrics.tokenTexts.size())) {
            token = abbreviate(displayTokenText(metrics.tokenTexts[size_t(a.topToken)]), 10);
        }
        auto *text = new QCPItemText(plot);
        text->setClipAxisRect(rect);
        text->setClipToAxisRect(true);
        text->position->setAxes(ratio, rows);
        text->position->setCoords(lower * 1.15, double(a.layer));
        text->setPositionAlignment(Qt::AlignLeft | Qt::AlignVCenter);
        text->setText(QStringLiteral("\u00ab%1\u00bb t%2 d%3").arg(token).arg(a.topToken).arg(a.topDim));
        text->setFont(font);
        text->setColor(style.foreground);
        QColor back = style.background;
        back.setAlpha(190);
        text->setBrush(back);
        text->setPadding(QMargins(2, 0, 2, 0));
    }
    return true;
}

QString massiveActivationText(const SinkMetrics &metrics, int64_t layer)
{
    for (const LayerActivations &a : metrics.activationsByLayer) {
        if (a.layer != layer) {
            continue;
        }
        QString token = QStringLiteral("#%1").arg(a.topToken);
        if (a.topToken >= 0 && a.topToken < static_cast<int64_t>(metrics.tokenTexts.size())) {
            token = displayTokenText(metrics.tokenTexts[size_t(a.topToken)]);
        }
        return QObject::tr("Layer %1: largest |h| %2 at token %3 \u00ab%4\u00bb, dim %5; median |h| %6; ratio %7\u00d7")
            .arg(layer)
            .arg(double(a.topValue), 0, 'g', 4)
            .arg(a.topToken)
            .arg(token)
            .arg(a.topDim)
            .arg(double(a.median), 0, 'g', 3)
            .arg(double(a.ratio), 0, 'g', 4);
    }
    return {};
}

std::vector<float> receivedPerToken(const SinkMetrics &metrics, int64_t layer)
{
    const FloatArray &sum = metrics.receivedSum;
    if (sum.shape.size() != 3 || sum.numel() != static_cast<int64_t>(sum.data.size())) {
        return {};
    }
    const int64_t L = sum.dim(0), H = sum.dim(1), T = sum.dim(2);
    std::vector<double> acc(size_t(T), 0.0);
    const int64_t first = layer >= 0 ? std::min(layer, L - 1) : 0;
    const int64_t last = layer >= 0 ? first : L - 1;
    for (int64_t l = first; l <= last; ++l) {
        for (int64_t h = 0; h < H; ++h) {
            const float *src = sum.data.data() + (l * H + h) * T;
            for (int64_t t = 0; t < T; ++t) {
                acc[size_t(t)] += src[t];
            }
        }
    }
    const double denominator = double(last - first + 1) * double(H) * double(T);
    std::vector<float> out(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) {
        out[size_t(t)] = static_cast<float>(acc[size_t(t)] / denominator);
    }
    return out;
}

void fillReceivedBars(QCustomPlot *plot, QCPBars *bars, TokenTicker *ticker, const std::vector<float> &values,
                      const QVector<QString> &labels, bool log, const QString &xLabel, const PlotStyle &style,
                      const std::vector<int64_t> &highlight)
{
    styleCustomPlot(plot, style);
    bars->setBrush(style.accent);
    bars->setPen(Qt::NoPen);
    QCPBars *marked = nullptr;
    for (int i = 0; i < plot->plottableCount(); ++i) {
        if (plot->plottable(i)->name() == QLatin1String("sinks")) {
            marked = qobject_cast<QCPBars *>(plot->plottable(i));
        }
    }
    if (!marked) {
        marked = new QCPBars(bars->keyAxis(), bars->valueAxis());
        marked->setName(QStringLiteral("sinks"));
        marked->setWidth(bars->width());
    }
    marked->setBrush(highlightColour(style));
    marked->setPen(Qt::NoPen);
    const std::set<int64_t> sinks(highlight.begin(), highlight.end());
    QVector<double> keys, vals, sinkKeys, sinkVals;
    for (size_t t = 0; t < values.size(); ++t) {
        const bool isSink = sinks.count(int64_t(t)) > 0;
        (isSink ? sinkKeys : keys) << double(t);
        (isSink ? sinkVals : vals) << double(values[t]);
    }
    ticker->setLabels(labels);
    const int width = plot->axisRect()->width() > 10 ? plot->axisRect()->width() : plot->width();
    ticker->setMaxTicks(std::max(1, width / (QFontMetrics(style.font).height() + 2)));
    bars->setData(keys, vals, true);
    marked->setData(sinkKeys, sinkVals, true);
    plot->yAxis->setScaleType(log ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
    plot->yAxis->setTicker(log ? QSharedPointer<QCPAxisTicker>(new QCPAxisTickerLog)
                               : QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    plot->yAxis->setLabel(QObject::tr("mean attention received"));
    plot->xAxis->setLabel(xLabel);
    plot->xAxis->setRange(-0.6, double(values.size()) - 0.4);
    double hi = 0, lo = 1;
    for (float v : values) {
        hi = std::max(hi, double(v));
        if (v > 0) {
            lo = std::min(lo, double(v));
        }
    }
    plot->yAxis->setRange(log ? std::max(lo * 0.5, hi * 1e-6) : 0.0, hi > 0 ? hi * 1.05 : 1.0);
}

void renderHeadMetricFigure(QCPPainter *painter, const QSize &size, const SinkMetrics &metrics,
                            const std::string &metricName, bool withActivations, const PlotStyle &style, ColourMap map)
{
    const HeadMetric *metric = metrics.headMetric(metricName);
    if (!metric) {
        return;
    }
    HeatmapPlot figure;
    figure.setStyle(style);
    figure.setColourMap(map);
    figure.resize(size);
    fillHeadMetricHeatmap(&figure, *metric, metrics.layers, metrics.heads);
    if (withActivations && metrics.hasHidden && !metrics.activationsByLayer.empty()) {
        fillMassiveActivations(figure.sideRect(0.45), metrics, style, 4);
    }
    figure.render(painter, size);
}

void renderMassiveActivationFigure(QCPPainter *painter, const QSize &size, const SinkMetrics &metrics,
                                   const PlotStyle &style)
{
    QCustomPlot figure;
    figure.resize(size);
    styleCustomPlot(&figure, style);
    figure.yAxis->setRangeReversed(true);
    figure.yAxis->setLabel(QObject::tr("layer"));
    figure.yAxis->setRange(-0.6, double(metrics.layers) - 0.4);
    QSharedPointer<QCPAxisTickerFixed> layers(new QCPAxisTickerFixed);
    layers->setTickStep(metrics.layers > 24 ? 2 : 1);
    layers->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
    figure.yAxis->setTicker(layers);
    figure.yAxis->grid()->setVisible(false);
    const int rowHeight = (size.height() - 120) / std::max<int64_t>(1, metrics.layers);
    const bool labelAll = rowHeight >= QFontMetrics(style.font).height();
    fillMassiveActivations(figure.axisRect(), metrics, style, labelAll ? -1 : 6);
    figure.legend->setVisible(true);
    figure.legend->setFont(style.font);
    figure.legend->setTextColor(style.foreground);
    figure.legend->setBrush(style.background);
    figure.axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignRight | Qt::AlignBottom);
    figure.toPainter(painter, size.width(), size.height());
}

void renderReceivedFigure(QCPPainter *painter, const QSize &size, const std::vector<float> &values,
                          const QVector<QString> &labels, bool log, const QString &xLabel, const PlotStyle &style,
                          const std::vector<int64_t> &highlight)
{
    QCustomPlot figure;
    figure.resize(size);
    auto *bars = new QCPBars(figure.xAxis, figure.yAxis);
    bars->setWidth(0.8);
    QSharedPointer<TokenTicker> ticker(new TokenTicker);
    figure.xAxis->setTicker(ticker);
    figure.xAxis->setTickLabelRotation(60);
    fillReceivedBars(&figure, bars, ticker.data(), values, labels, log, xLabel, style, highlight);
    ticker->setMaxTicks(std::max(1, (size.width() - 100) / (QFontMetrics(style.font).height() + 2)));
    figure.toPainter(painter, size.width(), size.height());
}

QString colourScaleDescription(const ColourScale &scale)
{
    QStringList parts;
    parts << (scale.mapping == ScaleMapping::Log ? QObject::tr("log") : QObject::tr("linear"));
    if (scale.clampPercentile) {
        parts << QObject::tr("clamped at %1th percentile").arg(scale.percentile);
    }
    if (scale.transform == ScaleTransform::RenormaliseWithoutSink) {
        parts << QObject::tr("without sink, rows renormalised");
    }
    if (scale.shared) {
        parts << QObject::tr("scale shared across heads");
    }
    return parts.join(QStringLiteral(", "));
}

void renderHeadAttentionFigure(QCPPainter *painter, const QSize &size, const HeadFigure &f, const PlotStyle &style,
                               ColourMap map)
{
    const HeadMatrix &matrix = f.matrix;
    if (!matrix.valid()) {
        return;
    }
    TransformedHead shown = transformHead(matrix, f.scale.transform);
    if (f.slidingWindow > 0) {
        // Outside a sliding layer's window the model never attends: masked like the causal triangle, not 0.
        const int64_t offset = matrix.cols - matrix.rows;
        for (int64_t q = 0; q < matrix.rows; ++q) {
            for (int64_t k = 0; k <= std::min(matrix.cols - 1, q + offset - f.slidingWindow); ++k) {
                shown.values[size_t(q * matrix.cols + k)] = std::numeric_limits<float>::quiet_NaN();
            }
        }
    }
    HeatmapPlot figure;
    figure.setStyle(style);
    figure.setColourMap(map);
    figure.resize(size);
    figure.setAxes(f.labels, f.labels, QObject::tr("key (attended token)"), QObject::tr("query (attending token)"));
    const bool renorm = f.scale.transform == ScaleTransform::RenormaliseWithoutSink;
    figure.setColourBarLabel(renorm ? QObject::tr("attention without sink") : QObject::tr("attention weight"));
    figure.setExtent(matrix.cols, matrix.rows);
    TokenWindow window = f.window;
    if (window.lastKey < 0 || window.lastQuery < 0) {
        window = TokenWindow{0, matrix.rows - 1, 0, matrix.cols - 1};
    }
    figure.setVisibleWindow(window);
    // Vector figures keep full resolution up to 2048 cells a side; beyond that the pooled tiles are
    // finer than any print.
    figure.setGrid(poolWindow(shown, window, 2048, 2048, f.pooling), f.range, f.scale.mapping);
    if (renorm) {
        figure.setSideBars(shown.removed, QObject::tr("sink mass"));
    }
    figure.render(painter, size);
}

QColor seriesColour(int index, Theme theme)
{
    // Okabe & Ito (2008); black is swapped for light grey on a dark background.
    static const QRgb colours[] = {0x0072b2, 0xd55e00, 0x009e73, 0xcc79a7, 0xe69f00, 0x56b4e9, 0xf0e442, 0x000000};
    const int n = int(std::size(colours));
    QColor c(colours[((index % n) + n) % n]);
    if (theme == Theme::Dark && c == QColor(Qt::black)) {
        c = QColor(0xdd, 0xdd, 0xdd);
    }
    return c;
}

void fillLinePlot(QCustomPlot *figure, const LinePlot &spec, const PlotStyle &style)
{
    figure->clearGraphs();
    figure->clearItems();
    styleCustomPlot(figure, style);
    figure->xAxis->setLabel(spec.xLabel);
    figure->yAxis->setLabel(spec.yLabel);
    for (auto [axis, log] : {std::pair{figure->xAxis, spec.logX}, std::pair{figure->yAxis, spec.logY}}) {
        axis->setScaleType(log ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
        axis->setTicker(log ? QSharedPointer<QCPAxisTicker>(new QCPAxisTickerLog)
                            : QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    }
    for (size_t i = 0; i < spec.series.size(); ++i) {
        const LineSeries &s = spec.series[i];
        QCPGraph *graph = figure->addGraph();
        graph->setName(s.name);
        graph->setPen(QPen(seriesColour(int(i), style.theme), std::max(1.0, style.lineWidth * 1.2)));
        QVector<double> x, y;
        const size_t n = std::min(s.x.size(), s.y.size());
        x.reserve(qsizetype(n));
        y.reserve(qsizetype(n));
        for (size_t k = 0; k < n; ++k) {
            x << s.x[k];
            y << (std::isfinite(s.y[k]) ? s.y[k] : kNaN);
        }
        graph->setData(x, y, true);
    }
    figure->rescaleAxes();
    if (!spec.logY) {
        const QCPRange r = figure->yAxis->range();
        figure->yAxis->setRange(std::min(0.0, r.lower), r.upper + 0.05 * std::max(1e-9, r.size()));
    }
    for (const LineMark &mark : spec.marks) {
        auto *line = new QCPItemStraightLine(figure);
        line->point1->setCoords(mark.x, 0);
        line->point2->setCoords(mark.x, 1);
        line->setPen(QPen(style.foreground, std::max(1.0, style.lineWidth), Qt::DashLine));
        if (!mark.label.isEmpty()) {
            auto *text = new QCPItemText(figure);
            text->position->setTypeX(QCPItemPosition::ptPlotCoords);
            text->position->setTypeY(QCPItemPosition::ptAxisRectRatio);
            text->position->setCoords(mark.x, 0.02);
            text->setPositionAlignment(Qt::AlignLeft | Qt::AlignTop);
            text->setPadding(QMargins(4, 0, 0, 0));
            text->setText(mark.label);
            text->setFont(style.font);
            text->setColor(style.foreground);
        }
    }
    figure->legend->setVisible(!spec.series.empty());
    figure->legend->setFont(style.font);
    figure->legend->setTextColor(style.foreground);
    QColor back = style.background;
    back.setAlpha(220);
    figure->legend->setBrush(back);
    figure->legend->setBorderPen(QPen(style.grid));
    figure->axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignRight | Qt::AlignTop);
}

void renderLinePlot(QCPPainter *painter, const QSize &size, const LinePlot &spec, const PlotStyle &style)
{
    QCustomPlot figure;
    figure.resize(size);
    fillLinePlot(&figure, spec, style);
    figure.toPainter(painter, size.width(), size.height());
}

bool writeLinePlot(const QString &path, const LinePlot &plot, const FigureOptions &options, QString *error)
{
    FigureFormat format;
    if (!figureFormatForPath(path, &format)) {
        if (error) {
            *error = QObject::tr("Cannot write %1: use a .png, .svg or .pdf file name").arg(path);
        }
        return false;
    }
    const PlotStyle style = plotStyle(options.background.lightness() < 128 ? Theme::Dark : Theme::Light, false);
    return exportFigure(
        path, format, options,
        [&](QCPPainter *painter, const QSize &size) { renderLinePlot(painter, size, plot, style); }, error);
}

std::vector<std::pair<int64_t, int64_t>> topHeadsBy(const SinkMetrics &metrics, const std::string &metric, int count)
{
    std::vector<std::pair<int64_t, int64_t>> out;
    const HeadMetric *m = metrics.headMetric(metric);
    if (!m || m->values.shape.size() != 2 || count <= 0) {
        return out;
    }
    const int64_t heads = m->values.dim(1);
    std::vector<int64_t> order;
    for (int64_t i = 0; i < static_cast<int64_t>(m->values.data.size()); ++i) {
        if (std::isfinite(m->values.data[size_t(i)])) {
            order.push_back(i);
        }
    }
    // Ties (many heads at ~1.0) go to the earlier layer and head: stable and reproducible.
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return m->values.data[size_t(a)] > m->values.data[size_t(b)]; });
    for (size_t i = 0; i < order.size() && int(out.size()) < count; ++i) {
        out.emplace_back(order[i] / heads, order[i] % heads);
    }
    return out;
}

QString figureSuffix(FigureFormat format)
{
    switch (format) {
    case FigureFormat::Png:
        return QStringLiteral("png");
    case FigureFormat::Svg:
        return QStringLiteral("svg");
    case FigureFormat::Pdf:
        return QStringLiteral("pdf");
    }
    return {};
}

bool parseFigureFormats(const QString &list, QList<FigureFormat> *formats, QString *error)
{
    formats->clear();
    for (const QString &part : list.split(QLatin1Char(','), Qt::SkipEmptyParts)) {
        FigureFormat f;
        if (!figureFormatForPath(QStringLiteral("x.") + part.trimmed(), &f)) {
            if (error) {
                *error = QObject::tr("'%1' is not png, svg or pdf").arg(part.trimmed());
            }
            return false;
        }
        if (!formats->contains(f)) {
            formats->append(f);
        }
    }
    if (formats->isEmpty()) {
        if (error) {
            *error = QObject::tr("no figure format given (png, svg, pdf)");
        }
        return false;
    }
    return true;
}

bool writeStandardFigures(const QString &dir, const QList<FigureFormat> &formats, const StandardFigureSet &set,
                          QStringList *written, QStringList *notes, QString *error)
{
    if (!set.metrics) {
        if (error) {
            *error = QObject::tr("no metrics to draw");
        }
        return false;
    }
    const SinkMetrics &m = *set.metrics;
    if (!QDir().mkpath(dir)) {
        if (error) {
            *error = QObject::tr("Cannot create %1").arg(dir);
        }
        return false;
    }
    const PlotStyle style = plotStyle(Theme::Light, false);
    const ColourMap map = ColourMap::Viridis;
    const QVector<QString> labels =
        tokenAxisLabels(m.tokenTexts.empty() ? std::vector<std::string>(size_t(m.length)) : m.tokenTexts);
    FigureOptions base;
    base.pixelSize = set.pixelSize;
    base.dpi = set.dpi;
    base.caption = set.caption;
    base.background = style.background;
    base.foreground = style.foreground;

    auto write = [&](const QString &stem, const QString &title, const FigureContent &content) {
        for (FigureFormat format : formats) {
            const QString path = QDir(dir).filePath(stem + QLatin1Char('.') + figureSuffix(format));
            FigureOptions options = base;
            options.title = title;
            if (!exportFigure(path, format, options, content, error)) {
                return false;
            }
            if (written) {
                written->append(path);
            }
        }
        return true;
    };

    const HeadMetric *metric = m.headMetric(set.heatmapMetric);
    if (!metric) {
        if (error) {
            *error = QObject::tr("no per-head metric named '%1'").arg(QString::fromStdString(set.heatmapMetric));
        }
        return false;
    }
    const bool activations = m.hasHidden && !m.activationsByLayer.empty();
    const QString heatmapTitle =
        QObject::tr("%1 per layer and head (%2 tokens)%3")
            .arg(QString::fromStdString(set.heatmapMetric))
            .arg(m.length)
            .arg(activations ? QObject::tr(", beside it the massive activation of each layer") : QString());
    if (!write(QStringLiteral("sink-heatmap"), heatmapTitle, [&](QCPPainter *p, const QSize &size) {
            renderHeadMetricFigure(p, size, m, set.heatmapMetric, true, style, map);
        })) {
        return false;
    }

    int drawn = 0;
    for (const auto &[layer, head] : topHeadsBy(m, set.heatmapMetric, set.topHeads)) {
        auto it = set.attention.find(layer);
        if (it == set.attention.end() || !it->second || it->second->empty()) {
            if (notes) {
                notes->append(QObject::tr("head L%1 H%2: attention of layer %1 not captured").arg(layer).arg(head));
            }
            continue;
        }
        HeadFigure f;
        const HeadMatrix matrix = headMatrix(*it->second, head);
        f.matrix = matrix;
        f.layer = layer;
        f.head = head;
        f.labels = labels;
        f.range = colourRange(transformHead(matrix, f.scale.transform).values, f.scale);
        f.slidingWindow = m.config.windowOf(layer);
        const QString title = QObject::tr("Attention, layer %1 head %2 (%3 = %4; %5)")
                                  .arg(layer)
                                  .arg(head)
                                  .arg(QString::fromStdString(set.heatmapMetric))
                                  .arg(double(m.head(set.heatmapMetric, layer, head)), 0, 'f', 3)
                                  .arg(colourScaleDescription(f.scale));
        if (!write(QStringLiteral("head-L%1-H%2").arg(layer).arg(head), title,
                   [&](QCPPainter *p, const QSize &size) { renderHeadAttentionFigure(p, size, f, style, map); })) {
            return false;
        }
        ++drawn;
    }
    if (drawn == 0 && notes) {
        notes->append(QObject::tr("no head attention maps (no layer's attention was captured)"));
    }

    std::vector<int64_t> sinks;
    for (const DetectedSink &s : m.sinks) {
        sinks.push_back(s.position);
    }
    const std::vector<float> received = receivedPerToken(m, -1);
    if (!received.empty()) {
        const QString title = QObject::tr("Attention received per token, mean over layers, heads and queries "
                                          "(detected sinks highlighted, threshold %1)")
                                  .arg(m.settings.sinkThreshold);
        if (!write(QStringLiteral("received"), title, [&](QCPPainter *p, const QSize &size) {
                renderReceivedFigure(p, size, received, labels, false, QObject::tr("token (all layers)"), style, sinks);
            })) {
            return false;
        }
    }
    if (activations) {
        const LayerActivations &top = m.topActivation;
        const QString title = QObject::tr("Massive activations: largest |h| over the median per layer "
                                          "(top: layer %1, ratio %2\u00d7)")
                                  .arg(top.layer)
                                  .arg(double(top.ratio), 0, 'g', 4);
        if (!write(QStringLiteral("massive-activations"), title,
                   [&](QCPPainter *p, const QSize &size) { renderMassiveActivationFigure(p, size, m, style); })) {
            return false;
        }
    } else if (notes) {
        notes->append(QObject::tr("no massive-activation plot (hidden states not captured)"));
    }
    return true;
}

} // namespace sinkscope::ui
