#include "token_view.h"

#include "figures.h"
#include "heatmap_plot.h"
#include "token_chips.h"

#include <QCheckBox>
#include <QComboBox>
#include <QHBoxLayout>
#include <QJsonArray>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QToolTip>
#include <QVBoxLayout>

#include <cmath>

namespace sinkscope::ui {

namespace {

void styleAxes(QCustomPlot *plot, const PlotStyle &style)
{
    plot->setBackground(style.background);
    plot->axisRect()->setBackground(style.background);
    for (QCPAxis *axis : {plot->xAxis, plot->yAxis}) {
        applyAxisStyle(axis, style);
        axis->grid()->setPen(QPen(style.grid, 1, Qt::DotLine));
    }
}

} // namespace

std::vector<float> receivedForLayer(const RunSnapshot &snapshot, int64_t layer)
{
    const int64_t T = snapshot.tokenCount();
    std::vector<float> out(size_t(T), 0.0f);
    if (snapshot.received.data.size() != size_t(snapshot.layers * T) || snapshot.layers == 0) {
        return {};
    }
    if (layer >= 0 && layer < snapshot.layers) {
        std::copy_n(snapshot.received.data.begin() + layer * T, T, out.begin());
        return out;
    }
    for (int64_t l = 0; l < snapshot.layers; ++l) {
        for (int64_t t = 0; t < T; ++t) {
            out[size_t(t)] += snapshot.received.data[size_t(l * T + t)] / float(snapshot.layers);
        }
    }
    return out;
}

TokenView::TokenView(QWidget *parent) : AnalysisView(parent)
{
    auto *layout = new QVBoxLayout(this);
    auto *bar = new QHBoxLayout;
    m_layerBox = new QComboBox(this);
    m_logBox = new QCheckBox(tr("Log scale"), this);
    bar->addWidget(new QLabel(tr("Attention received, averaged over heads and queries, in"), this));
    bar->addWidget(m_layerBox);
    bar->addWidget(m_logBox);
    bar->addStretch(1);
    layout->addLayout(bar);
    m_plot = new QCustomPlot(this);
    m_plot->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    m_plot->axisRect()->setRangeDrag(Qt::Horizontal);
    m_plot->axisRect()->setRangeZoom(Qt::Horizontal);
    m_bars = new QCPBars(m_plot->xAxis, m_plot->yAxis);
    m_bars->setWidth(0.8);
    m_ticker.reset(new TokenTicker);
    m_plot->xAxis->setTicker(m_ticker);
    m_plot->xAxis->setTickLabelRotation(60);
    m_plot->yAxis->setLabel(tr("mean attention received"));
    layout->addWidget(m_plot, 1);
    connect(m_layerBox, &QComboBox::currentIndexChanged, this, [this](int index) {
        if (index >= 0) {
            setLayer(index - 1);
        }
    });
    connect(m_logBox, &QCheckBox::toggled, this, [this] { refresh(); });
    // Label density follows the plot's actual width (unknown while the tab is hidden).
    connect(m_plot, &QCustomPlot::beforeReplot, this, [this] {
        m_ticker->setMaxTicks(std::max(1, m_plot->axisRect()->width() / (QFontMetrics(m_style.font).height() + 2)));
    });
    connect(m_plot, &QCustomPlot::mouseMove, this, [this](QMouseEvent *event) {
        if (!m_snapshot) {
            return;
        }
        const auto t = std::llround(m_plot->xAxis->pixelToCoord(event->pos().x()));
        if (t < 0 || t >= static_cast<int64_t>(m_values.size())) {
            QToolTip::hideText();
            return;
        }
        QToolTip::showText(event->globalPosition().toPoint(),
                           tr("token %1 \u00ab%2\u00bb: %3")
                               .arg(t)
                               .arg(displayTokenText(m_snapshot->tokens[size_t(t)].text))
                               .arg(double(m_values[size_t(t)]), 0, 'f', 4),
                           m_plot);
    });
}

void TokenView::setSnapshot(std::shared_ptr<const RunSnapshot> snapshot)
{
    m_snapshot = std::move(snapshot);
    const QSignalBlocker block(m_layerBox);
    m_layerBox->clear();
    m_layerBox->addItem(tr("all layers"));
    for (int64_t l = 0; m_snapshot && l < m_snapshot->layers; ++l) {
        m_layerBox->addItem(tr("layer %1").arg(l));
    }
    if (m_snapshot && m_layer >= m_snapshot->layers) {
        m_layer = -1;
    }
    m_layerBox->setCurrentIndex(int(m_layer + 1));
    refresh();
}

void TokenView::setPlotStyle(const PlotStyle &style)
{
    m_style = style;
    refresh();
}

void TokenView::setLayer(int64_t layer)
{
    m_layer = layer;
    if (m_layerBox->currentIndex() != int(layer + 1)) {
        m_layerBox->setCurrentIndex(int(layer + 1));
    }
    refresh();
}

void TokenView::fill(QCustomPlot *plot, QCPBars *bars, TokenTicker *ticker, const PlotStyle &style) const
{
    QVector<QString> labels;
    for (size_t t = 0; t < m_values.size(); ++t) {
        labels << displayTokenText(m_snapshot->tokens[t].text);
    }
    fillReceivedBars(plot, bars, ticker, m_values, labels, m_logBox->isChecked(),
                     m_layer < 0 ? tr("token (all layers)") : tr("token (layer %1)").arg(m_layer), style,
                     m_snapshot->sinkPositions());
}

void TokenView::refresh()
{
    m_values = m_snapshot ? receivedForLayer(*m_snapshot, m_layer) : std::vector<float>{};
    if (m_snapshot) {
        fill(m_plot, m_bars, m_ticker.data(), m_style);
    } else {
        m_bars->data()->clear();
    }
    m_plot->replot(QCustomPlot::rpQueuedReplot);
    emit valuesChanged(m_values);
}

QString TokenView::figureTitle() const
{
    return m_layer < 0 ? tr("Attention received per token, mean over layers, heads and queries")
                       : tr("Attention received per token, layer %1, mean over heads and queries").arg(m_layer);
}

void TokenView::renderFigure(QCPPainter *painter, const QSize &size)
{
    if (!m_snapshot) {
        return;
    }
    QCustomPlot figure;
    figure.resize(size);
    auto *bars = new QCPBars(figure.xAxis, figure.yAxis);
    bars->setWidth(0.8);
    QSharedPointer<TokenTicker> ticker(new TokenTicker);
    figure.xAxis->setTicker(ticker);
    figure.xAxis->setTickLabelRotation(60);
    fill(&figure, bars, ticker.data(), m_style);
    ticker->setMaxTicks(std::max(1, (size.width() - 100) / (QFontMetrics(m_style.font).height() + 2)));
    figure.toPainter(painter, size.width(), size.height());
}

ViewData TokenView::currentData() const
{
    ViewData data;
    data.columns = {QStringLiteral("index"), QStringLiteral("id"), QStringLiteral("token"), QStringLiteral("received")};
    if (!m_snapshot) {
        return data;
    }
    QJsonArray tokens;
    for (size_t t = 0; t < m_values.size(); ++t) {
        const TokenInfo &info = m_snapshot->tokens[t];
        data.rows.push_back({QString::number(t), QString::number(info.id), QString::fromStdString(info.text),
                             QString::number(double(m_values[t]), 'g', 8)});
        tokens.append(QJsonObject{{QStringLiteral("id"), qint64(info.id)},
                                  {QStringLiteral("text"), QString::fromStdString(info.text)},
                                  {QStringLiteral("received"), double(m_values[t])}});
    }
    data.json = QJsonObject{
        {QStringLiteral("view"), viewId()},
        {QStringLiteral("layer"), m_layer < 0 ? QJsonValue(QStringLiteral("all")) : QJsonValue(qint64(m_layer))},
        {QStringLiteral("definition"),
         QStringLiteral("mean over heads and all T queries of the attention paid to the token")},
        {QStringLiteral("tokens"), tokens}};
    return data;
}

QJsonObject TokenView::saveState() const
{
    return {{QStringLiteral("layer"), qint64(m_layer)}, {QStringLiteral("log"), m_logBox->isChecked()}};
}

void TokenView::restoreState(const QJsonObject &state)
{
    m_logBox->setChecked(state.value(QStringLiteral("log")).toBool());
    setLayer(state.value(QStringLiteral("layer")).toInteger(-1));
}

OutputsView::OutputsView(QWidget *parent) : AnalysisView(parent)
{
    auto *layout = new QVBoxLayout(this);
    layout->addWidget(new QLabel(tr("Next-token distribution (top 10)"), this));
    m_plot = new QCustomPlot(this);
    m_plot->setMinimumHeight(180);
    layout->addWidget(m_plot, 2);
    auto *row = new QHBoxLayout;
    row->addWidget(new QLabel(tr("Greedy continuation"), this));
    row->addStretch(1);
    m_status = new QLabel(this);
    row->addWidget(m_status);
    auto *again = new QPushButton(tr("Generate"), this);
    again->setToolTip(tr("Continue the prompt greedily (20 tokens)"));
    row->addWidget(again);
    layout->addLayout(row);
    m_continuation = new QPlainTextEdit(this);
    m_continuation->setReadOnly(true);
    layout->addWidget(m_continuation, 1);
    connect(again, &QPushButton::clicked, this, &OutputsView::generateRequested);
}

void OutputsView::setSnapshot(std::shared_ptr<const RunSnapshot> snapshot)
{
    m_snapshot = std::move(snapshot);
    fill(m_plot, m_style);
    m_plot->replot(QCustomPlot::rpQueuedReplot);
}

void OutputsView::setPlotStyle(const PlotStyle &style)
{
    m_style = style;
    fill(m_plot, m_style);
    m_plot->replot(QCustomPlot::rpQueuedReplot);
}

void OutputsView::fill(QCustomPlot *plot, const PlotStyle &style) const
{
    plot->clearPlottables();
    styleAxes(plot, style);
    if (!m_snapshot || m_snapshot->top.empty()) {
        return;
    }
    // Horizontal bars, most probable at the top.
    auto *bars = new QCPBars(plot->yAxis, plot->xAxis);
    bars->setBrush(style.accent);
    bars->setPen(Qt::NoPen);
    bars->setWidth(0.7);
    QSharedPointer<TokenTicker> ticker(new TokenTicker);
    QVector<QString> labels;
    QVector<double> keys, vals;
    for (size_t i = 0; i < m_snapshot->top.size(); ++i) {
        labels << QStringLiteral("%1").arg(displayTokenText(m_snapshot->topText[i]));
        keys << double(i);
        vals << double(m_snapshot->top[i].probability);
    }
    ticker->setLabels(labels);
    ticker->setMaxTicks(int(labels.size()));
    plot->yAxis->setTicker(ticker);
    plot->yAxis->setRangeReversed(true);
    plot->yAxis->setRange(-0.6, double(labels.size()) - 0.4);
    plot->xAxis->setLabel(tr("probability"));
    plot->xAxis->setRange(0, std::min(1.0, std::max(0.05, vals.isEmpty() ? 1.0 : vals.front() * 1.1)));
    bars->setData(keys, vals, true);
}

QString OutputsView::figureTitle() const
{
    return tr("Next-token distribution");
}

void OutputsView::renderFigure(QCPPainter *painter, const QSize &size)
{
    QCustomPlot figure;
    figure.resize(size);
    fill(&figure, m_style);
    figure.toPainter(painter, size.width(), size.height());
}

ViewData OutputsView::currentData() const
{
    ViewData data;
    data.columns = {QStringLiteral("rank"), QStringLiteral("id"), QStringLiteral("token"),
                    QStringLiteral("probability"), QStringLiteral("logit")};
    QJsonArray top;
    for (size_t i = 0; m_snapshot && i < m_snapshot->top.size(); ++i) {
        const TopToken &t = m_snapshot->top[i];
        data.rows.push_back({QString::number(i + 1), QString::number(t.id),
                             QString::fromStdString(m_snapshot->topText[i]),
                             QString::number(double(t.probability), 'g', 8), QString::number(double(t.logit), 'g', 8)});
        top.append(QJsonObject{{QStringLiteral("id"), qint64(t.id)},
                               {QStringLiteral("text"), QString::fromStdString(m_snapshot->topText[i])},
                               {QStringLiteral("probability"), double(t.probability)},
                               {QStringLiteral("logit"), double(t.logit)}});
    }
    data.json = QJsonObject{{QStringLiteral("view"), viewId()},
                            {QStringLiteral("top"), top},
                            {QStringLiteral("greedy_continuation"), m_continuationText}};
    return data;
}

void OutputsView::clearContinuation()
{
    m_continuationText.clear();
    m_continuation->clear();
}

void OutputsView::setContinuation(const QString &text)
{
    m_continuationText = text;
    m_continuation->setPlainText(m_continuationText);
}

void OutputsView::setContinuationBusy(bool busy)
{
    m_status->setText(busy ? tr("generating\u2026") : QString());
}

} // namespace sinkscope::ui
