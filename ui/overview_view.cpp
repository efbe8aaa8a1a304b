#include "overview_view.h"

#include "figures.h"
#include "heatmap_plot.h"
#include "token_chips.h"

#include <QCheckBox>
#include <QComboBox>
#include <QHBoxLayout>
#include <QJsonArray>
#include <QLabel>
#include <QToolTip>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>
#include <limits>

namespace sinkscope::ui {

bool layerShown(const RunSnapshot &snapshot, int64_t layer, LayerFilter filter)
{
    switch (filter) {
    case LayerFilter::Sliding:
        return snapshot.windowOf(layer) > 0;
    case LayerFilter::Global:
        return snapshot.windowOf(layer) == 0;
    case LayerFilter::All:
        break;
    }
    return true;
}

PooledGrid overviewGrid(const RunSnapshot &snapshot, const std::string &metric, LayerFilter filter)
{
    const HeadMetric *m = snapshot.headMetric(metric);
    PooledGrid grid = m ? headMetricGrid(*m) : PooledGrid{};
    for (int64_t l = 0; l < grid.ny; ++l) {
        if (!layerShown(snapshot, l, filter)) {
            std::fill_n(grid.data.begin() + l * grid.nx, grid.nx, std::numeric_limits<float>::quiet_NaN());
        }
    }
    return grid;
}

QVector<QString> overviewLayerLabels(const RunSnapshot &snapshot)
{
    QVector<QString> labels;
    for (int64_t l = 0; l < snapshot.layers; ++l) {
        labels << (snapshot.windowOf(l) > 0 ? QStringLiteral("%1 S").arg(l) : QString::number(l));
    }
    return labels;
}

OverviewView::OverviewView(QWidget *parent) : AnalysisView(parent)
{
    auto *layout = new QVBoxLayout(this);
    auto *bar = new QHBoxLayout;
    m_metricBox = new QComboBox(this);
    m_metricBox->setToolTip(tr("Per-head sink metric shown in the grid (docs/metrics.md)"));
    m_metricBox->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    m_activationsBox = new QCheckBox(tr("Massive activations"), this);
    m_activationsBox->setChecked(true);
    m_activationsBox->setToolTip(tr("Beside each layer: its largest |h| in the residual stream over the median |h| "
                                    "(Sun et al. 2024), with the token and dimension that carry it"));
    bar->addWidget(new QLabel(tr("Metric:"), this));
    bar->addWidget(m_metricBox);
    m_filterBox = new QComboBox(this);
    m_filterBox->addItem(tr("All layers"), int(LayerFilter::All));
    m_filterBox->addItem(tr("Sliding (local) layers"), int(LayerFilter::Sliding));
    m_filterBox->addItem(tr("Global layers"), int(LayerFilter::Global));
    m_filterBox->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    m_filterBox->setToolTip(tr("Sliding-window layers (marked S) attend to the last W tokens only; global layers "
                               "see the whole prompt. Only for models with both kinds."));
    bar->addWidget(new QLabel(tr("Layers:"), this));
    bar->addWidget(m_filterBox);
    bar->addWidget(m_activationsBox);
    bar->addStretch(1);
    layout->addLayout(bar);
    m_summary = new QLabel(this);
    m_summary->setWordWrap(true);
    m_summary->setTextInteractionFlags(Qt::TextSelectableByMouse);
    layout->addWidget(m_summary);
    m_plot = new HeatmapPlot(this);
    m_plot->plot()->setInteractions({}); // a small grid: nothing to zoom, clicks open heads
    layout->addWidget(m_plot, 1);
    connect(m_metricBox, &QComboBox::currentIndexChanged, this, [this](int index) {
        if (index >= 0) {
            setMetric(m_metricBox->itemData(index).toString().toStdString());
        }
    });
    connect(m_activationsBox, &QCheckBox::toggled, this, &OverviewView::setActivationsShown);
    connect(m_filterBox, &QComboBox::currentIndexChanged, this, [this](int index) {
        if (index >= 0) {
            setLayerFilter(static_cast<LayerFilter>(m_filterBox->itemData(index).toInt()));
        }
    });
    connect(m_plot, &HeatmapPlot::hovered, this, [this](int64_t head, int64_t layer, const QPoint &global) {
        if (!m_snapshot || !m_snapshot->metrics) {
            return;
        }
        const SinkMetrics &m = *m_snapshot->metrics;
        const int64_t window = m_snapshot->windowOf(layer);
        QString text = tr("Layer %1, head %2\n%3: %4")
                           .arg(window > 0 ? tr("%1 (sliding: window of %2 tokens)").arg(layer).arg(window)
                                : m_snapshot->config.hasSlidingLayers() ? tr("%1 (global)").arg(layer)
                                                                        : QString::number(layer))
                           .arg(head)
                           .arg(QString::fromStdString(m_metric))
                           .arg(double(m.head(m_metric, layer, head)), 0, 'g', 4);
        if (m_metric != "first_token_mass") {
            text += tr("\nfirst_token_mass: %1").arg(double(m.head("first_token_mass", layer, head)), 0, 'f', 4);
        }
        QToolTip::showText(global, text + tr("\nclick to open"), m_plot);
    });
    connect(m_plot, &HeatmapPlot::sideHovered, this, [this](int64_t layer, const QPoint &global) {
        if (m_snapshot && m_snapshot->metrics) {
            QToolTip::showText(global, massiveActivationText(*m_snapshot->metrics, layer), m_plot);
        }
    });
    connect(m_plot, &HeatmapPlot::left, this, [] { QToolTip::hideText(); });
    connect(m_plot, &HeatmapPlot::clicked, this,
            [this](int64_t head, int64_t layer) { emit headActivated(layer, head); });
}

void OverviewView::fillMetricBox()
{
    const QSignalBlocker block(m_metricBox);
    m_metricBox->clear();
    if (!m_snapshot || !m_snapshot->metrics) {
        return;
    }
    for (const HeadMetric &h : m_snapshot->metrics->headMetrics) {
        m_metricBox->addItem(QString::fromStdString(h.name), QString::fromStdString(h.name));
        m_metricBox->setItemData(m_metricBox->count() - 1, QString::fromStdString(h.description), Qt::ToolTipRole);
    }
    const int index = m_metricBox->findData(QString::fromStdString(m_metric));
    m_metricBox->setCurrentIndex(std::max(0, index));
}

void OverviewView::setSnapshot(std::shared_ptr<const RunSnapshot> snapshot)
{
    m_snapshot = std::move(snapshot);
    fillMetricBox();
    // The filter means nothing for a model whose layers are all global; the choice is kept for the next.
    m_filterBox->setEnabled(layerFilterEnabled() || !m_snapshot);
    refresh();
}

void OverviewView::setPlotStyle(const PlotStyle &style)
{
    m_style = style;
    m_plot->setStyle(style);
    refresh();
}

void OverviewView::setColourMap(ColourMap map)
{
    m_map = map;
    m_plot->setColourMap(map);
}

void OverviewView::setMetric(const std::string &metric)
{
    m_metric = metric;
    const int index = m_metricBox->findData(QString::fromStdString(metric));
    if (index >= 0 && m_metricBox->currentIndex() != index) {
        const QSignalBlocker block(m_metricBox);
        m_metricBox->setCurrentIndex(index);
    }
    refresh();
}

void OverviewView::setLayerFilter(LayerFilter filter)
{
    m_filter = filter;
    const int index = m_filterBox->findData(int(filter));
    if (index >= 0 && m_filterBox->currentIndex() != index) {
        const QSignalBlocker block(m_filterBox);
        m_filterBox->setCurrentIndex(index);
    }
    refresh();
}

bool OverviewView::layerFilterEnabled() const
{
    return m_snapshot && m_snapshot->config.hasSlidingLayers();
}

void OverviewView::setActivationsShown(bool shown)
{
    m_showActivations = shown;
    if (m_activationsBox->isChecked() != shown) {
        const QSignalBlocker block(m_activationsBox);
        m_activationsBox->setChecked(shown);
    }
    refresh();
}

QString OverviewView::summaryText() const
{
    if (!m_snapshot) {
        return {};
    }
    if (!m_snapshot->metrics) {
        return tr("No sink metrics for this run.");
    }
    const SinkMetrics &m = *m_snapshot->metrics;
    QStringList parts;
    const ModelConfig &c = m_snapshot->config;
    if (c.layers > 0) {
        // The family and where it attends: "gemma3, 18 layers: 15 sliding (512), 3 global".
        QString family = QStringLiteral("%1, %2").arg(QString::fromLatin1(architectureName(c.architecture)),
                                                      QString::fromStdString(c.attentionLayout()));
        if (c.learnedSinks) {
            family += tr(", learned sinks");
        }
        parts << family;
    }
    parts << tr("%1 layers \u00d7 %2 heads, %3 tokens").arg(m.layers).arg(m.heads).arg(m.length);
    parts << tr("sink heads (\u03b1\u2081 > %1): %2%")
                 .arg(m.settings.sinkEpsilon)
                 .arg(double(m.sinkFraction) * 100, 0, 'f', 0);
    QStringList sinks;
    for (const DetectedSink &s : m.sinks) {
        QString text = s.position < static_cast<int64_t>(m.tokenTexts.size())
                           ? abbreviate(displayTokenText(m.tokenTexts[size_t(s.position)]), 10)
                           : QStringLiteral("#%1").arg(s.tokenId);
        sinks << QStringLiteral("%1 \u00ab%2\u00bb").arg(s.position).arg(text);
    }
    parts << tr("detected sinks (received > %1): %2")
                 .arg(m.settings.sinkThreshold)
                 .arg(sinks.isEmpty() ? tr("none")
                                      : sinks.mid(0, 6).join(QStringLiteral(", ")) +
                                            (sinks.size() > 6 ? QStringLiteral(", \u2026") : QString()));
    if (m.hasHidden && !m.activationsByLayer.empty()) {
        const LayerActivations &top = m.topActivation;
        QString token = top.topToken < static_cast<int64_t>(m.tokenTexts.size())
                            ? abbreviate(displayTokenText(m.tokenTexts[size_t(top.topToken)]), 10)
                            : QString();
        parts << tr("top massive activation: layer %1, %2\u00d7 the median at token %3 \u00ab%4\u00bb, dim %5")
                     .arg(top.layer)
                     .arg(double(top.ratio), 0, 'g', 3)
                     .arg(top.topToken)
                     .arg(token)
                     .arg(top.topDim);
    }
    return parts.join(QStringLiteral("; "));
}

void OverviewView::refresh()
{
    m_plot->removeSideRect();
    const HeadMetric *metric = m_snapshot ? m_snapshot->headMetric(m_metric) : nullptr;
    if (!metric) {
        m_plot->clear();
    } else {
        fillHeadMetricHeatmap(m_plot, *metric, m_snapshot->layers, m_snapshot->heads);
        if (m_snapshot->config.hasSlidingLayers()) {
            QVector<QString> heads;
            for (int64_t h = 0; h < m_snapshot->heads; ++h) {
                heads << QString::number(h);
            }
            m_plot->setAxes(heads, overviewLayerLabels(*m_snapshot), tr("head"), tr("layer (S: sliding window)"));
            if (m_filter != LayerFilter::All) {
                m_plot->setGrid(overviewGrid(*m_snapshot, m_metric, m_filter), headMetricRange(*metric),
                                ScaleMapping::Linear);
            }
        }
        const SinkMetrics &m = *m_snapshot->metrics;
        if (m_showActivations && m.hasHidden && !m.activationsByLayer.empty()) {
            // Presenter fonts are taller than a layer's row: label only the largest.
            fillMassiveActivations(m_plot->sideRect(0.4), m, m_style, m_style.presenter ? 1 : 3);
        }
        m_plot->plot()->replot(QCustomPlot::rpQueuedReplot);
    }
    m_summary->setText(summaryText());
}

QString OverviewView::figureTitle() const
{
    return tr("%1 per layer and head").arg(QString::fromStdString(m_metric)) +
           (m_showActivations ? tr(", with the massive activation of each layer") : QString());
}

void OverviewView::renderFigure(QCPPainter *painter, const QSize &size)
{
    if (m_snapshot && m_snapshot->metrics) {
        renderHeadMetricFigure(painter, size, *m_snapshot->metrics, m_metric, m_showActivations, m_style, m_map);
    }
}

ViewData OverviewView::currentData() const
{
    ViewData data;
    data.columns = {QStringLiteral("layer"), QStringLiteral("head")};
    if (!m_snapshot || !m_snapshot->metrics) {
        return data;
    }
    const SinkMetrics &m = *m_snapshot->metrics;
    QJsonObject heads;
    for (const HeadMetric &h : m.headMetrics) {
        data.columns << QString::fromStdString(h.name);
        QJsonArray table;
        for (int64_t l = 0; l < m.layers; ++l) {
            QJsonArray row;
            for (int64_t k = 0; k < m.heads; ++k) {
                const double v = h.values.data.at(size_t(l * m.heads + k));
                row.append(std::isnan(v) ? QJsonValue() : QJsonValue(v));
            }
            table.append(row);
        }
        heads.insert(QString::fromStdString(h.name), table);
    }
    for (int64_t l = 0; l < m.layers; ++l) {
        for (int64_t k = 0; k < m.heads; ++k) {
            QStringList row{QString::number(l), QString::number(k)};
            for (const HeadMetric &h : m.headMetrics) {
                row << QString::number(double(h.values.data.at(size_t(l * m.heads + k))), 'g', 8);
            }
            data.rows.push_back(row);
        }
    }
    QJsonArray activations;
    for (const LayerActivations &a : m.activationsByLayer) {
        activations.append(QJsonObject{{QStringLiteral("layer"), a.layer},
                                       {QStringLiteral("top_value"), double(a.topValue)},
                                       {QStringLiteral("token"), qint64(a.topToken)},
                                       {QStringLiteral("dim"), qint64(a.topDim)},
                                       {QStringLiteral("median"), double(a.median)},
                                       {QStringLiteral("ratio"), double(a.ratio)}});
    }
    data.json = QJsonObject{
        {QStringLiteral("view"), viewId()},           {QStringLiteral("metric"), QString::fromStdString(m_metric)},
        {QStringLiteral("layers"), qint64(m.layers)}, {QStringLiteral("heads"), qint64(m.heads)},
        {QStringLiteral("per_head"), heads},          {QStringLiteral("massive_activations"), activations}};
    return data;
}

QJsonObject OverviewView::saveState() const
{
    static const char *kFilters[] = {"all", "sliding", "global"};
    return {{QStringLiteral("metric"), QString::fromStdString(m_metric)},
            {QStringLiteral("activations"), m_showActivations},
            {QStringLiteral("layers"), QString::fromLatin1(kFilters[int(m_filter)])}};
}

void OverviewView::restoreState(const QJsonObject &state)
{
    QString metric = state.value(QStringLiteral("metric")).toString();
    if (metric.isEmpty()) {
        // Sessions before the core metrics: "quantity" was first_token_mass or mean_entropy.
        metric = state.value(QStringLiteral("quantity")).toString() == QLatin1String("mean_entropy")
                     ? QStringLiteral("row_entropy")
                     : QStringLiteral("first_token_mass");
    }
    m_showActivations = state.value(QStringLiteral("activations")).toBool(true);
    const QString layers = state.value(QStringLiteral("layers")).toString();
    m_filter = layers == QLatin1String("sliding")  ? LayerFilter::Sliding
               : layers == QLatin1String("global") ? LayerFilter::Global
                                                   : LayerFilter::All;
    {
        const QSignalBlocker block(m_filterBox);
        m_filterBox->setCurrentIndex(std::max(0, m_filterBox->findData(int(m_filter))));
    }
    {
        const QSignalBlocker block(m_activationsBox);
        m_activationsBox->setChecked(m_showActivations);
    }
    setMetric(metric.toStdString());
}

} // namespace sinkscope::ui
