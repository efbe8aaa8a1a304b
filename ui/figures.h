// The standard figures of a run, drawn by one set of functions for the window (views and their
// export) and for `sinkscope-cli analyze --format ...`: the layer x head heatmap of any per-head metric
// (with the massive-activation strip beside its rows), one head's attention map, the attention
// received per token, the massive-activation plot, and a generic line plot (stream-ppl --sweep).
//
// Inputs are the core's immutable results (SinkMetrics, [H, T, T] attention of a layer) and plain
// values; nothing here runs a model. Qt GUI objects are created, so a Q(Gui)Application must exist
// (the CLI creates one on the offscreen platform). UI thread (or the CLI's main thread) only.
#pragma once

#include "attention_math.h"
#include "figure_export.h"
#include "palettes.h"

#include "sinkscope/analysis/metrics.h"

#include <QList>
#include <QString>
#include <QStringList>
#include <QVector>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

class QCPAxisRect;
class QCPBars;
class QCPPainter;
class QCustomPlot;

namespace sinkscope::ui {

class HeatmapPlot;
class TokenTicker;

// Token texts made printable for axes (displayTokenText of each).
QVector<QString> tokenAxisLabels(const std::vector<std::string> &texts);

// --- Layer x head heatmap of a per-head metric ---------------------------------------------------

// headMetricGrid (the metric's [L, H] values as a grid) is in attention_math.h.
// Shares, probabilities and normalised entropies on a fixed 0..1 scale (comparable across runs and
// models); other metrics on [min(0, lowest), highest].
ValueRange headMetricRange(const HeadMetric &metric);
bool isUnitMetric(const std::string &name);
// Fills a heatmap with the metric (axes, colour bar label, extent, data).
void fillHeadMetricHeatmap(HeatmapPlot *plot, const HeadMetric &metric, int64_t layers, int64_t heads);

// --- Massive activations (Sun et al. 2024; SinkMetrics::activationsByLayer) ------------------------

// Horizontal bars, one per layer on the rect's left axis (which the caller orients), of the largest
// |h| over the median |h| of that layer on a log axis; layers passing Sun et al.'s thresholds in the
// highlight colour, a dashed line at the ratio threshold, and labels "«token» d<dim>" on the
// `labelCount` largest (all when labelCount < 0). Returns false when the metrics carry no hidden states.
bool fillMassiveActivations(QCPAxisRect *rect, const SinkMetrics &metrics, const PlotStyle &style, int labelCount);
// One line for a tooltip: layer, top |h| with sign, token, dimension, median, ratio.
QString massiveActivationText(const SinkMetrics &metrics, int64_t layer);
QString massiveActivationAxisLabel();

// --- Attention received per token --------------------------------------------------------------------

// Received attention per key for `layer` (< 0: mean over layers) from metrics->receivedSum: the mean
// over heads of R_j / T (every query counts, a key a query cannot see yet counts zero for it).
std::vector<float> receivedPerToken(const SinkMetrics &metrics, int64_t layer);
// Bars in prompt order; `highlight` positions (detected sinks) in the highlight colour.
void fillReceivedBars(QCustomPlot *plot, QCPBars *bars, TokenTicker *ticker, const std::vector<float> &values,
                      const QVector<QString> &labels, bool log, const QString &xLabel, const PlotStyle &style,
                      const std::vector<int64_t> &highlight = {});

// --- Painters for figures (FigureContent) ---------------------------------------------------------

// The metric heatmap, with the massive-activation strip beside its rows when `withActivations` and
// the metrics have hidden states.
void renderHeadMetricFigure(QCPPainter *painter, const QSize &size, const SinkMetrics &metrics,
                            const std::string &metricName, bool withActivations, const PlotStyle &style, ColourMap map);
void renderMassiveActivationFigure(QCPPainter *painter, const QSize &size, const SinkMetrics &metrics,
                                   const PlotStyle &style);
void renderReceivedFigure(QCPPainter *painter, const QSize &size, const std::vector<float> &values,
                          const QVector<QString> &labels, bool log, const QString &xLabel, const PlotStyle &style,
                          const std::vector<int64_t> &highlight = {});

// One head of a layer [H, T, Tk]: the colour-scale transform, pooled to at most 2048 cells a side
// (full resolution below), the visible `window` (default: everything), the removed sink mass beside
// the rows when renormalising. `range` is the colour range (e.g. HeadViewModel::range(), or
// colourRange() of the transformed head).
struct HeadFigure {
    HeadMatrix matrix; // the head's map [T, T] (a view: the caller keeps the memory alive)
    int64_t layer = 0;
    int64_t head = 0;
    QVector<QString> labels;
    ColourScale scale;
    Pooling pooling = Pooling::Max;
    TokenWindow window;
    ValueRange range;
    int64_t slidingWindow = 0; // > 0: the layer's sliding window W; keys k <= q - W are drawn masked
};
void renderHeadAttentionFigure(QCPPainter *painter, const QSize &size, const HeadFigure &figure, const PlotStyle &style,
                               ColourMap map);
QString colourScaleDescription(const ColourScale &scale);

// --- Generic line plot ------------------------------------------------------------------------------

struct LineSeries {
    QString name;
    std::vector<double> x, y; // same length; NaN y values leave a gap
};
struct LineMark {
    double x = 0;
    QString label; // drawn at the top of the dashed vertical line
};
struct LinePlot {
    QString xLabel;
    QString yLabel;
    bool logX = false;
    bool logY = false;
    std::vector<LineSeries> series; // drawn in order, colours from a colour-blind-safe palette
    std::vector<LineMark> marks;    // dashed vertical lines (e.g. where a KV cache fills)
};
// Fills `plot` (cleared first) with the series, axes, legend and marks: the live widget of a view and the
// exported figure (renderLinePlot) are the same drawing.
void fillLinePlot(QCustomPlot *plot, const LinePlot &spec, const PlotStyle &style);
void renderLinePlot(QCPPainter *painter, const QSize &size, const LinePlot &plot, const PlotStyle &style);
// Writes the plot with a title and caption (options) to a .png/.svg/.pdf path.
bool writeLinePlot(const QString &path, const LinePlot &plot, const FigureOptions &options, QString *error);
// Okabe-Ito qualitative colours (colour-blind safe); index wraps.
QColor seriesColour(int index, Theme theme = Theme::Light);

// --- The standard set (sinkscope-cli analyze) -------------------------------------------------------

// The heads with the largest value of `metric` (NaN skipped), largest first: (layer, head).
std::vector<std::pair<int64_t, int64_t>> topHeadsBy(const SinkMetrics &metrics, const std::string &metric, int count);

struct StandardFigureSet {
    std::shared_ptr<const SinkMetrics> metrics;      // required
    std::map<int64_t, const FloatArray *> attention; // layer -> [H, T, T], for the head maps
    std::string heatmapMetric = "first_token_mass";
    int topHeads = 4;
    QString caption; // model and prompt
    QSize pixelSize{2400, 1800};
    int dpi = 200;
};

// Writes into `dir`: sink-heatmap (the metric heatmap with the massive-activation strip),
// head-L<l>-H<h> for the top heads by the heatmap metric whose layer attention is given, received
// (all layers, detected sinks highlighted) and massive-activations (when hidden states were
// captured), each in every format. `written` receives the paths; `notes` what was skipped and why.
bool writeStandardFigures(const QString &dir, const QList<FigureFormat> &formats, const StandardFigureSet &set,
                          QStringList *written, QStringList *notes, QString *error);

// "png,svg,pdf" -> formats; false (and *error) on an unknown name.
bool parseFigureFormats(const QString &list, QList<FigureFormat> *formats, QString *error);
QString figureSuffix(FigureFormat format);

} // namespace sinkscope::ui
