#include "head_view.h"

#include "figures.h"
#include "heatmap_plot.h"
#include "token_chips.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDoubleSpinBox>
#include <QHBoxLayout>
#include <QJsonArray>
#include <QKeyEvent>
#include <QLabel>
#include <QPushButton>
#include <QSpinBox>
#include <QToolTip>
#include <QVBoxLayout>

#include <cmath>

namespace sinkscope::ui {

namespace {

QVector<QString> tokenLabels(const RunSnapshot &snapshot)
{
    QVector<QString> labels;
    labels.reserve(snapshot.tokenCount());
    for (const TokenInfo &t : snapshot.tokens) {
        labels << displayTokenText(t.text);
    }
    return labels;
}

QString valueText(float v)
{
    return std::isnan(v) ? QStringLiteral("\u2014") : QString::number(double(v), 'f', 4);
}

} // namespace

HeadView::HeadView(QWidget *parent) : AnalysisView(parent)
{
    auto *layout = new QVBoxLayout(this);
    // Navigation and colour scale side by side, or in two rows in presenter mode (large fonts must
    // fit a 1600 px wide window without clipping the controls).
    m_controls = new QBoxLayout(QBoxLayout::LeftToRight);
    auto *bar = new QHBoxLayout;
    auto *scaleBar = new QHBoxLayout;
    m_controls->addLayout(bar);
    m_controls->addLayout(scaleBar);
    m_layerBox = new QSpinBox(this);
    m_headBox = new QSpinBox(this);
    m_layerBox->setToolTip(tr("Layer (Up/Down on the map)"));
    m_headBox->setToolTip(tr("Head (Left/Right on the map)"));
    bar->addWidget(new QLabel(tr("Layer"), this));
    bar->addWidget(m_layerBox);
    bar->addWidget(new QLabel(tr("Head"), this));
    bar->addWidget(m_headBox);
    m_poolingBox = new QComboBox(this);
    m_poolingBox->addItems({tr("Max pool"), tr("Mean pool")});
    m_poolingBox->setToolTip(tr("How tokens are combined when a screen pixel covers several (long prompts)"));
    m_poolingBox->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    bar->addWidget(m_poolingBox);
    auto *reset = new QPushButton(tr("Reset zoom"), this);
    reset->setToolTip(tr("Home, or double-click the map"));
    bar->addWidget(reset);
    m_rowSpacer = new QSpacerItem(12, 0, QSizePolicy::Fixed, QSizePolicy::Minimum);
    bar->addSpacerItem(m_rowSpacer);
    m_mappingBox = new QComboBox(this);
    m_mappingBox->addItems({tr("Linear"), tr("Log")});
    m_mappingBox->setToolTip(tr("Colour mapping"));
    m_mappingBox->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    scaleBar->addWidget(m_mappingBox);
    m_clampBox = new QCheckBox(tr("Clamp at"), this);
    m_clampBox->setToolTip(tr("Top of the colour range at this percentile of the head's values"));
    m_percentileBox = new QDoubleSpinBox(this);
    m_percentileBox->setRange(50, 100);
    m_percentileBox->setDecimals(1);
    m_percentileBox->setValue(99);
    m_percentileBox->setSuffix(tr(" %ile"));
    scaleBar->addWidget(m_clampBox);
    scaleBar->addWidget(m_percentileBox);
    m_withoutSinkBox = new QCheckBox(tr("Without sink"), this);
    m_withoutSinkBox->setToolTip(tr("Remove key 0 and renormalise each row; the removed mass is shown at the side"));
    scaleBar->addWidget(m_withoutSinkBox);
    m_sharedBox = new QCheckBox(tr("Shared scale"), this);
    m_sharedBox->setToolTip(tr("One colour range for every head of the run, so figures compare"));
    scaleBar->addWidget(m_sharedBox);
    scaleBar->addStretch(1);
    layout->addLayout(m_controls);
    m_info = new QLabel(this);
    m_info->setTextInteractionFlags(Qt::TextSelectableByMouse);
    m_info->setWordWrap(true);
    layout->addWidget(m_info);
    m_plot = new HeatmapPlot(this);
    layout->addWidget(m_plot, 1);
    setFocusPolicy(Qt::StrongFocus);
    m_plot->plot()->setFocusPolicy(Qt::ClickFocus);

    connect(m_layerBox, &QSpinBox::valueChanged, this, [this] {
        if (!m_syncing)
            showHead(m_layerBox->value(), m_headBox->value());
    });
    connect(m_headBox, &QSpinBox::valueChanged, this, [this] {
        if (!m_syncing)
            showHead(m_layerBox->value(), m_headBox->value());
    });
    for (QComboBox *box : {m_mappingBox, m_poolingBox}) {
        connect(box, &QComboBox::currentIndexChanged, this, [this] { readControls(); });
    }
    for (QCheckBox *box : {m_clampBox, m_withoutSinkBox, m_sharedBox}) {
        connect(box, &QCheckBox::toggled, this, [this] { readControls(); });
    }
    connect(m_percentileBox, &QDoubleSpinBox::valueChanged, this, [this] { readControls(); });
    connect(reset, &QPushButton::clicked, m_plot, &HeatmapPlot::resetView);
    connect(m_plot, &HeatmapPlot::visibleWindowChanged, this, &HeadView::updatePlot);
    connect(m_plot, &HeatmapPlot::left, this, [] { QToolTip::hideText(); });
    connect(m_plot, &HeatmapPlot::hovered, this, [this](int64_t key, int64_t query, const QPoint &global) {
        const auto &snap = m_model.snapshot();
        if (!snap || query >= snap->tokenCount() || key >= snap->tokenCount()) {
            return;
        }
        const QString cellText = tr("query %1 \u00ab%2\u00bb \u2192 key %3 \u00ab%4\u00bb")
                                     .arg(query)
                                     .arg(abbreviate(displayTokenText(snap->tokens[size_t(query)].text), 24))
                                     .arg(key)
                                     .arg(abbreviate(displayTokenText(snap->tokens[size_t(key)].text), 24));
        if (m_model.outsideWindow(query, key)) {
            QToolTip::showText(global,
                               cellText + tr("\nmasked: outside the %1-token window (layer %2 attends to keys "
                                             "%3 \u2026 %4 only)")
                                              .arg(m_model.window())
                                              .arg(m_model.layer())
                                              .arg(std::max<int64_t>(0, query - m_model.window() + 1))
                                              .arg(query),
                               m_plot);
            return;
        }
        if (m_model.masked(query, key)) {
            QToolTip::showText(global, cellText + tr("\nmasked: the key comes after the query (causal mask)"), m_plot);
            return;
        }
        QString text = cellText + tr("\nweight %1").arg(valueText(m_model.rawValue(query, key)));
        if (m_model.scale().transform == ScaleTransform::RenormaliseWithoutSink) {
            text += tr("\nwithout sink %1 (sink mass removed from this row %2)")
                        .arg(valueText(m_model.displayValue(query, key)))
                        .arg(valueText(m_model.removedMass(query)));
        }
        QToolTip::showText(global, text, m_plot);
    });
    connect(m_plot, &HeatmapPlot::sideHovered, this, [this](int64_t query, const QPoint &global) {
        const auto &snap = m_model.snapshot();
        if (!snap || query >= snap->tokenCount() || !m_model.hasSinkColumn()) {
            return;
        }
        QToolTip::showText(global,
                           tr("query %1 \u00ab%2\u00bb \u2192 sink logit\nsink share %3\nThe learned sink of head %4 "
                              "joins the softmax as an extra key with no value: this share of the query's attention "
                              "goes to no token, and the row over real keys sums to 1 \u2212 %3.")
                               .arg(query)
                               .arg(abbreviate(displayTokenText(snap->tokens[size_t(query)].text), 24))
                               .arg(valueText(m_model.sinkShare(query)))
                               .arg(m_model.head()),
                           m_plot);
    });
    syncControls();
}

void HeadView::setSnapshot(std::shared_ptr<const RunSnapshot> snapshot)
{
    m_requested = {-1, -1};
    m_model.setSnapshot(std::move(snapshot));
    const auto &snap = m_model.snapshot();
    if (snap) {
        const QVector<QString> labels = tokenLabels(*snap);
        m_plot->setAxes(labels, labels, tr("key (attended token)"), tr("query (attending token)"));
        m_plot->setExtent(snap->tokenCount(), snap->tokenCount());
    }
    syncControls();
    updatePlot();
}

void HeadView::setHeadMap(std::shared_ptr<const RunSnapshot> snapshot, int64_t layer, int64_t head,
                          std::shared_ptr<const FloatArray> map)
{
    if (snapshot != m_model.snapshot()) {
        return;
    }
    m_model.setHeadMap(layer, head, std::move(map));
    updatePlot();
}

void HeadView::setPlotStyle(const PlotStyle &style)
{
    m_style = style;
    m_controls->setDirection(style.presenter ? QBoxLayout::TopToBottom : QBoxLayout::LeftToRight);
    m_rowSpacer->changeSize(12, 0, style.presenter ? QSizePolicy::Expanding : QSizePolicy::Fixed, QSizePolicy::Minimum);
    m_controls->invalidate();
    m_plot->setStyle(style);
    updatePlot();
}

void HeadView::setColourMap(ColourMap map)
{
    m_map = map;
    m_plot->setColourMap(map);
}

void HeadView::showHead(int64_t layer, int64_t head)
{
    if (m_model.setHead(layer, head)) {
        emit headChanged(m_model.layer(), m_model.head());
    }
    syncControls();
    updatePlot();
}

void HeadView::stepHead(int delta)
{
    if (m_model.stepHead(delta)) {
        emit headChanged(m_model.layer(), m_model.head());
    }
    syncControls();
    updatePlot();
}

void HeadView::stepLayer(int delta)
{
    if (m_model.stepLayer(delta)) {
        emit headChanged(m_model.layer(), m_model.head());
    }
    syncControls();
    updatePlot();
}

void HeadView::setScale(const ColourScale &scale)
{
    m_model.setScale(scale);
    syncControls();
    updatePlot();
}

void HeadView::setPooling(Pooling pooling)
{
    m_model.setPooling(pooling);
    syncControls();
    updatePlot();
}

void HeadView::readControls()
{
    if (m_syncing) {
        return;
    }
    ColourScale scale;
    scale.mapping = m_mappingBox->currentIndex() == 1 ? ScaleMapping::Log : ScaleMapping::Linear;
    scale.clampPercentile = m_clampBox->isChecked();
    scale.percentile = m_percentileBox->value();
    scale.transform = m_withoutSinkBox->isChecked() ? ScaleTransform::RenormaliseWithoutSink : ScaleTransform::Raw;
    scale.shared = m_sharedBox->isChecked();
    m_model.setScale(scale);
    m_model.setPooling(m_poolingBox->currentIndex() == 1 ? Pooling::Mean : Pooling::Max);
    updatePlot();
}

void HeadView::syncControls()
{
    m_syncing = true;
    const auto &snap = m_model.snapshot();
    m_layerBox->setRange(0, snap ? int(std::max<int64_t>(0, snap->layers - 1)) : 0);
    m_headBox->setRange(0, snap ? int(std::max<int64_t>(0, snap->heads - 1)) : 0);
    m_layerBox->setValue(int(m_model.layer()));
    m_headBox->setValue(int(m_model.head()));
    const ColourScale &s = m_model.scale();
    m_mappingBox->setCurrentIndex(s.mapping == ScaleMapping::Log ? 1 : 0);
    m_clampBox->setChecked(s.clampPercentile);
    m_percentileBox->setValue(s.percentile);
    m_percentileBox->setEnabled(s.clampPercentile);
    m_withoutSinkBox->setChecked(s.transform == ScaleTransform::RenormaliseWithoutSink);
    m_sharedBox->setChecked(s.shared);
    m_poolingBox->setCurrentIndex(m_model.pooling() == Pooling::Mean ? 1 : 0);
    m_syncing = false;
}

QString HeadView::scaleDescription() const
{
    const ColourScale &s = m_model.scale();
    QStringList parts;
    parts << (s.mapping == ScaleMapping::Log ? tr("log") : tr("linear"));
    if (s.clampPercentile) {
        parts << tr("clamped at %1th percentile").arg(s.percentile);
    }
    if (s.transform == ScaleTransform::RenormaliseWithoutSink) {
        parts << tr("rows renormalised without key 0");
    }
    if (s.shared) {
        parts << tr("scale shared across heads");
    }
    return parts.join(QStringLiteral(", "));
}

void HeadView::configure(HeatmapPlot *plot) const
{
    const bool renorm = m_model.scale().transform == ScaleTransform::RenormaliseWithoutSink;
    plot->setColourBarLabel(renorm ? tr("attention without sink") : tr("attention weight"));
}

void HeadView::updatePlot()
{
    if (!m_model.valid()) {
        m_plot->clear();
        m_plot->setSideBars({}, {});
        if (m_model.needsHeadMap()) {
            const std::pair<int64_t, int64_t> wanted{m_model.layer(), m_model.head()};
            m_info->setText(tr("Computing the map of layer %1, head %2 from this run's queries and keys (runs over %3 "
                               "tokens keep no maps; the overview and metrics cover every head)\u2026")
                                .arg(wanted.first)
                                .arg(wanted.second)
                                .arg(m_model.snapshot()->mapTokens));
            if (m_requested != wanted) {
                m_requested = wanted;
                emit headMapWanted(wanted.first, wanted.second);
            }
            return;
        }
        m_info->setText(m_model.snapshot() ? tr("No attention captured for this layer.")
                                           : tr("Run a prompt to see attention."));
        return;
    }
    configure(m_plot);
    const QSize budget = m_plot->pixelBudget();
    const PooledGrid grid = m_model.grid(m_plot->visibleWindow(), budget.width(), budget.height());
    const ValueRange range = m_model.range();
    m_plot->setGrid(grid, range, m_model.scale().mapping);
    if (m_model.hasSinkColumn()) {
        // The learned sink as one more key right of the map (the removed key-0 mass of "Without sink"
        // stays in the tooltip).
        m_plot->setSideColumn(m_model.sinkColumn(), tr("sink logit"), range, m_model.scale().mapping);
    } else if (m_model.scale().transform == ScaleTransform::RenormaliseWithoutSink) {
        m_plot->setSideBars(m_model.transformed().removed, tr("sink mass"));
    } else {
        m_plot->setSideBars({}, {});
    }
    QString layerKind;
    if (const int64_t w = m_model.window(); w > 0) {
        layerKind = tr("; sliding layer: each query sees the last %1 tokens, older keys are masked").arg(w);
    } else if (m_model.snapshot()->config.hasSlidingLayers()) {
        layerKind = tr("; global layer");
    }
    if (m_model.hasSinkColumn()) {
        double mean = 0;
        const std::vector<float> &column = m_model.sinkColumn();
        for (float v : column) {
            mean += std::isnan(v) ? 0.0 : double(v);
        }
        mean /= double(std::max<size_t>(1, column.size()));
        layerKind += tr("; learned sink takes %1 of attention on average (right column)").arg(mean, 0, 'f', 3);
    }
    QString pooled;
    if (grid.keysPerCell > 1 || grid.queriesPerCell > 1) {
        pooled = tr("; showing %1\u00d7%2 tokens per cell (%3-pooled, zoom in to refine)")
                     .arg(grid.queriesPerCell)
                     .arg(grid.keysPerCell)
                     .arg(m_model.pooling() == Pooling::Max ? tr("max") : tr("mean"));
    }
    m_info->setText(tr("Layer %1, head %2 \u2014 %3; range %4 \u2026 %5%6%7")
                        .arg(m_model.layer())
                        .arg(m_model.head())
                        .arg(scaleDescription())
                        .arg(range.lower, 0, 'g', 3)
                        .arg(range.upper, 0, 'g', 3)
                        .arg(pooled, layerKind));
}

QString HeadView::figureTitle() const
{
    return tr("Attention, layer %1 head %2 (%3)").arg(m_model.layer()).arg(m_model.head()).arg(scaleDescription());
}

void HeadView::renderFigure(QCPPainter *painter, const QSize &size)
{
    if (!m_model.valid()) {
        return;
    }
    // The same painter as sinkscope-cli analyze's head maps (figures.h), at the zoom window shown.
    HeadFigure figure;
    figure.matrix = m_model.matrix();
    figure.layer = m_model.layer();
    figure.head = m_model.head();
    figure.labels = tokenLabels(*m_model.snapshot());
    figure.scale = m_model.scale();
    figure.pooling = m_model.pooling();
    figure.window = m_plot->visibleWindow();
    figure.range = m_model.range();
    figure.slidingWindow = m_model.window();
    renderHeadAttentionFigure(painter, size, figure, m_style, m_map);
}

QString HeadView::layerGridTitle() const
{
    return tr("Attention of every head, layer %1 (%2)").arg(m_model.layer()).arg(scaleDescription());
}

void HeadView::renderLayerGrid(QCPPainter *painter, const QSize &size)
{
    const auto &snap = m_model.snapshot();
    if (!snap || !snap->hasAttention(m_model.layer())) {
        painter->setPen(m_style.foreground);
        painter->setFont(m_style.font);
        painter->drawText(
            QRect(QPoint(0, 0), size), Qt::AlignCenter | Qt::TextWordWrap,
            snap && snap->mapsWouldNotFit
                ? tr("This run's attention maps would not fit in the memory left: export one head at a time.")
            : snap && snap->mapsOnDemand
                ? tr("Runs over %1 tokens keep no attention maps: export one head at a time.").arg(snap->mapTokens)
                : tr("No attention captured for this layer."));
        return;
    }
    const int64_t heads = snap->heads;
    const int cols = int(std::ceil(std::sqrt(double(heads))));
    const int rows = int((heads + cols - 1) / cols);
    const int barWidth = 70;
    const QSize cell((size.width() - barWidth) / cols, size.height() / rows);
    // One scale for all panels: the union of the per-head ranges (or the run-wide shared range).
    HeadViewModel panelModel;
    panelModel.setSnapshot(snap);
    panelModel.setScale(m_model.scale());
    panelModel.setPooling(m_model.pooling());
    const ValueRange range = m_model.scale().shared ? m_model.range() : m_model.layerRange(m_model.layer());
    const QVector<QString> labels = tokenLabels(*snap);
    for (int64_t h = 0; h < heads; ++h) {
        panelModel.setHead(m_model.layer(), h);
        HeatmapPlot panel;
        PlotStyle style = m_style;
        style.font.setPointSizeF(std::max(5.0, style.font.pointSizeF() * 0.8));
        panel.setStyle(style);
        panel.setColourMap(m_map);
        panel.setColourBarVisible(false);
        panel.resize(cell);
        panel.setAxes(labels, labels, tr("head %1").arg(h), QString());
        panel.setExtent(snap->tokenCount(), snap->tokenCount());
        panel.setGrid(panelModel.grid(TokenWindow{}, cell.width(), cell.height()), range, m_model.scale().mapping);
        painter->save();
        painter->translate(QPoint(int(h % cols) * cell.width(), int(h / cols) * cell.height()));
        panel.render(painter, cell);
        painter->restore();
    }
    // The shared colour bar.
    const QRect bar(size.width() - barWidth + 10, 20, 16, size.height() - 40);
    for (int y = 0; y < bar.height(); ++y) {
        const double t = 1.0 - double(y) / double(std::max(1, bar.height() - 1));
        painter->fillRect(QRect(bar.left(), bar.top() + y, bar.width(), 1), colourAt(m_map, t));
    }
    painter->setPen(m_style.foreground);
    painter->setFont(m_style.font);
    auto valueAt = [&](double t) {
        if (m_model.scale().mapping == ScaleMapping::Log) {
            return range.lower * std::pow(range.upper / range.lower, t);
        }
        return range.lower + (range.upper - range.lower) * t;
    };
    for (double t : {0.0, 0.5, 1.0}) {
        const int y = bar.bottom() - int(t * bar.height());
        painter->drawText(QPoint(bar.right() + 4, y + 4), QString::number(valueAt(t), 'g', 3));
    }
}

ViewData HeadView::currentData() const
{
    ViewData data;
    data.columns = {QStringLiteral("query_index"), QStringLiteral("query_token"), QStringLiteral("key_index"),
                    QStringLiteral("key_token"),   QStringLiteral("weight"),      QStringLiteral("shown_value")};
    const auto &snap = m_model.snapshot();
    if (!m_model.valid()) {
        return data;
    }
    // Const access to the cache: the transform is a pure function of the snapshot and the scale.
    if (snap->mapsOnDemand) {
        // A row per cell would be T^2 rows (67 million at 8192 tokens): the figure is the export.
        data.json = QJsonObject{
            {QStringLiteral("view"), QStringLiteral("head")},
            {QStringLiteral("layer"), qint64(m_model.layer())},
            {QStringLiteral("head"), qint64(m_model.head())},
            {QStringLiteral("note"), tr("%1 tokens: the map has %2 cells and is not exported as data; "
                                        "export the figure, or use sinkscope-cli analyze for the metrics")
                                         .arg(snap->tokenCount())
                                         .arg(double(snap->tokenCount()) * double(snap->tokenCount()), 0, 'g', 3)}};
        return data;
    }
    const HeadMatrix raw = m_model.matrix();
    const TransformedHead shown = transformHead(raw, m_model.scale().transform);
    QJsonArray tokens, weights, removed;
    for (const TokenInfo &t : snap->tokens) {
        tokens.append(QJsonObject{{QStringLiteral("id"), qint64(t.id)},
                                  {QStringLiteral("text"), QString::fromStdString(t.text)}});
    }
    for (int64_t q = 0; q < raw.rows; ++q) {
        QJsonArray row;
        for (int64_t k = 0; k < raw.cols; ++k) {
            const float shownValue = shown.values[size_t(q * raw.cols + k)];
            if (k <= q + (raw.cols - raw.rows) && !m_model.outsideWindow(q, k)) {
                data.rows.push_back({QString::number(q), QString::fromStdString(snap->tokens[size_t(q)].text),
                                     QString::number(k), QString::fromStdString(snap->tokens[size_t(k)].text),
                                     QString::number(double(raw.at(q, k)), 'g', 8),
                                     std::isnan(shownValue) ? QString() : QString::number(double(shownValue), 'g', 8)});
                row.append(double(raw.at(q, k)));
            } else {
                row.append(QJsonValue());
            }
        }
        weights.append(row);
        if (!shown.removed.empty()) {
            removed.append(double(shown.removed[size_t(q)]));
        }
    }
    data.json = QJsonObject{
        {QStringLiteral("view"), QStringLiteral("head")},
        {QStringLiteral("layer"), qint64(m_model.layer())},
        {QStringLiteral("head"), qint64(m_model.head())},
        {QStringLiteral("tokens"), tokens},
        {QStringLiteral("layout"), QStringLiteral("weights[query][key]; null where the causal mask or the sliding "
                                                  "window hides the key")},
        {QStringLiteral("window"), qint64(m_model.window())},
        {QStringLiteral("weights"), weights},
        {QStringLiteral("scale"), saveState().value(QStringLiteral("scale"))}};
    if (!removed.isEmpty()) {
        data.json.insert(QStringLiteral("removed_sink_mass"), removed);
    }
    if (snap->learnedSinks()) {
        // The learned sink's share per query: from the snapshot, as the view shows it.
        HeadViewModel sinkModel;
        sinkModel.setSnapshot(snap);
        sinkModel.setHead(m_model.layer(), m_model.head());
        QJsonArray share;
        for (float v : sinkModel.sinkColumn()) {
            share.append(std::isnan(v) ? QJsonValue() : QJsonValue(double(v)));
        }
        data.json.insert(QStringLiteral("sink_share"), share);
    }
    return data;
}

QJsonObject HeadView::saveState() const
{
    const ColourScale &s = m_model.scale();
    const TokenWindow w = m_plot->visibleWindow();
    return {{QStringLiteral("layer"), qint64(m_model.layer())},
            {QStringLiteral("head"), qint64(m_model.head())},
            {QStringLiteral("pooling"),
             m_model.pooling() == Pooling::Mean ? QStringLiteral("mean") : QStringLiteral("max")},
            {QStringLiteral("window"),
             QJsonArray{qint64(w.firstQuery), qint64(w.lastQuery), qint64(w.firstKey), qint64(w.lastKey)}},
            {QStringLiteral("scale"),
             QJsonObject{{QStringLiteral("mapping"),
                          s.mapping == ScaleMapping::Log ? QStringLiteral("log") : QStringLiteral("linear")},
                         {QStringLiteral("clamp_percentile"), s.clampPercentile},
                         {QStringLiteral("percentile"), s.percentile},
                         {QStringLiteral("without_sink"), s.transform == ScaleTransform::RenormaliseWithoutSink},
                         {QStringLiteral("shared"), s.shared}}}};
}

void HeadView::restoreState(const QJsonObject &state)
{
    const QJsonObject s = state.value(QStringLiteral("scale")).toObject();
    ColourScale scale;
    scale.mapping = s.value(QStringLiteral("mapping")).toString() == QLatin1String("log") ? ScaleMapping::Log
                                                                                          : ScaleMapping::Linear;
    scale.clampPercentile = s.value(QStringLiteral("clamp_percentile")).toBool();
    scale.percentile = s.value(QStringLiteral("percentile")).toDouble(99.0);
    scale.transform =
        s.value(QStringLiteral("without_sink")).toBool() ? ScaleTransform::RenormaliseWithoutSink : ScaleTransform::Raw;
    scale.shared = s.value(QStringLiteral("shared")).toBool();
    m_model.setScale(scale);
    m_model.setPooling(state.value(QStringLiteral("pooling")).toString() == QLatin1String("mean") ? Pooling::Mean
                                                                                                  : Pooling::Max);
    m_model.setHead(state.value(QStringLiteral("layer")).toInteger(), state.value(QStringLiteral("head")).toInteger());
    syncControls();
    const QJsonArray w = state.value(QStringLiteral("window")).toArray();
    if (w.size() == 4 && m_model.snapshot()) {
        m_plot->setVisibleWindow(TokenWindow{w[0].toInteger(), w[1].toInteger(), w[2].toInteger(), w[3].toInteger()});
    }
    updatePlot();
    emit headChanged(m_model.layer(), m_model.head());
}

void HeadView::keyPressEvent(QKeyEvent *event)
{
    switch (event->key()) {
    case Qt::Key_Left:
        stepHead(-1);
        break;
    case Qt::Key_Right:
        stepHead(+1);
        break;
    case Qt::Key_Up:
        stepLayer(-1);
        break;
    case Qt::Key_Down:
        stepLayer(+1);
        break;
    case Qt::Key_Home:
        m_plot->resetView();
        break;
    default:
        AnalysisView::keyPressEvent(event);
        return;
    }
    event->accept();
}

} // namespace sinkscope::ui
