#include "overview_view.h"

#include "heatmap_plot.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QJsonArray>
#include <QLabel>
#include <QToolTip>
#include <QVBoxLayout>

#include <cmath>

namespace sinkscope::ui {

PooledGrid overviewGrid(const RunSnapshot &snapshot, OverviewQuantity quantity)
{
    const FloatArray &source = quantity == OverviewQuantity::FirstTokenMass ? snapshot.firstTokenMass : snapshot.meanEntropy;
    PooledGrid grid;
    grid.nx = snapshot.heads;
    grid.ny = snapshot.layers;
    grid.window = TokenWindow{0, snapshot.layers - 1, 0, snapshot.heads - 1};
    grid.data = source.data;
    grid.data.resize(size_t(grid.nx * grid.ny), std::numeric_limits<float>::quiet_NaN());
    return grid;
}

ValueRange overviewRange(OverviewQuantity quantity, const PooledGrid &grid)
{
    if (quantity == OverviewQuantity::FirstTokenMass) {
        return {0.0, 1.0}; // a probability: a fixed scale compares runs and models
    }
    double hi = 0;
    for (float v : grid.data) {
        if (!std::isnan(v)) {
            hi = std::max(hi, double(v));
        }
    }
    return {0.0, hi > 0 ? hi : 1.0};
}

QString OverviewView::quantityName(OverviewQuantity quantity)
{
    return quantity == OverviewQuantity::FirstTokenMass ? tr("Attention mass on the first token")
                                                        : tr("Mean attention entropy (nats)");
}

OverviewView::OverviewView(QWidget *parent) : AnalysisView(parent)
{
    auto *layout = new QVBoxLayout(this);
    auto *bar = new QHBoxLayout;
    m_quantityBox = new QComboBox(this);
    m_quantityBox->addItem(quantityName(OverviewQuantity::FirstTokenMass));
    m_quantityBox->addItem(quantityName(OverviewQuantity::MeanEntropy));
    m_quantityBox->setToolTip(tr("Per-head quantity shown in the grid (queries t \u2265 1)"));
    bar->addWidget(new QLabel(tr("Quantity:"), this));
    bar->addWidget(m_quantityBox);
    bar->addStretch(1);
    m_summary = new QLabel(this);
    bar->addWidget(m_summary);
    layout->addLayout(bar);
    m_plot = new HeatmapPlot(this);
    m_plot->plot()->setInteractions({}); // a small grid: nothing to zoom, clicks open heads
    layout->addWidget(m_plot, 1);
    connect(m_quantityBox, &QComboBox::currentIndexChanged, this,
            [this](int index) { setQuantity(static_cast<OverviewQuantity>(index)); });
    connect(m_plot, &HeatmapPlot::hovered, this, [this](int64_t head, int64_t layer, const QPoint &global) {
        if (!m_snapshot) {
            return;
        }
        const PooledGrid grid = overviewGrid(*m_snapshot, m_quantity);
        QToolTip::showText(global, tr("Layer %1, head %2\n%3: %4\nclick to open")
                                       .arg(layer)
                                       .arg(head)
                                       .arg(quantityName(m_quantity))
                                       .arg(double(grid.at(head, layer)), 0, 'f', 4),
                           m_plot);
    });
    connect(m_plot, &HeatmapPlot::left, this, [] { QToolTip::hideText(); });
    connect(m_plot, &HeatmapPlot::clicked, this, [this](int64_t head, int64_t layer) { emit headActivated(layer, head); });
}

void OverviewView::setSnapshot(std::shared_ptr<const RunSnapshot> snapshot)
{
    m_snapshot = std::move(snapshot);
    refresh();
}

void OverviewView::setPlotStyle(const PlotStyle &style)
{
    m_style = style;
    m_plot->setStyle(style);
}

void OverviewView::setColourMap(ColourMap map)
{
    m_map = map;
    m_plot->setColourMap(map);
}

void OverviewView::setQuantity(OverviewQuantity quantity)
{
    m_quantity = quantity;
    if (m_quantityBox->currentIndex() != int(quantity)) {
        m_quantityBox->setCurrentIndex(int(quantity));
    }
    refresh();
}

void OverviewView::fill(HeatmapPlot *plot) const
{
    if (!m_snapshot || m_snapshot->layers == 0 || m_snapshot->heads == 0) {
        plot->clear();
        return;
    }
    QVector<QString> heads, layers;
    for (int64_t h = 0; h < m_snapshot->heads; ++h) {
        heads << QString::number(h);
    }
    for (int64_t l = 0; l < m_snapshot->layers; ++l) {
        layers << QString::number(l);
    }
    plot->setAxes(heads, layers, tr("head"), tr("layer"));
    plot->setColourBarLabel(quantityName(m_quantity));
    const PooledGrid grid = overviewGrid(*m_snapshot, m_quantity);
    plot->setExtent(m_snapshot->heads, m_snapshot->layers);
    plot->setGrid(grid, overviewRange(m_quantity, grid), ScaleMapping::Linear);
}

void OverviewView::refresh()
{
    fill(m_plot);
    if (m_snapshot && !m_snapshot->firstTokenMass.data.empty()) {
        double sum = 0;
        int n = 0;
        for (float v : m_snapshot->firstTokenMass.data) {
            if (!std::isnan(v)) {
                sum += v;
                ++n;
            }
        }
        m_summary->setText(tr("%1 layers \u00d7 %2 heads, %3 tokens; mean first-token mass %4")
                               .arg(m_snapshot->layers)
                               .arg(m_snapshot->heads)
                               .arg(m_snapshot->tokenCount())
                               .arg(n ? sum / n : 0.0, 0, 'f', 3));
    } else {
        m_summary->clear();
    }
}

QString OverviewView::figureTitle() const
{
    return quantityName(m_quantity) + tr(" per layer and head");
}

void OverviewView::renderFigure(QCPPainter *painter, const QSize &size)
{
    HeatmapPlot figure;
    figure.setStyle(m_style);
    figure.setColourMap(m_map);
    figure.resize(size);
    fill(&figure);
    figure.render(painter, size);
}

ViewData OverviewView::currentData() const
{
    ViewData data;
    data.columns = {QStringLiteral("layer"), QStringLiteral("head"), QStringLiteral("first_token_mass"),
                    QStringLiteral("mean_entropy_nats")};
    if (!m_snapshot) {
        return data;
    }
    QJsonArray mass, entropy;
    for (int64_t l = 0; l < m_snapshot->layers; ++l) {
        QJsonArray massRow, entropyRow;
        for (int64_t h = 0; h < m_snapshot->heads; ++h) {
            const size_t i = size_t(l * m_snapshot->heads + h);
            const double m = m_snapshot->firstTokenMass.data.at(i);
            const double e = m_snapshot->meanEntropy.data.at(i);
            data.rows.push_back({QString::number(l), QString::number(h), QString::number(m, 'g', 8), QString::number(e, 'g', 8)});
            massRow.append(std::isnan(m) ? QJsonValue() : QJsonValue(m));
            entropyRow.append(std::isnan(e) ? QJsonValue() : QJsonValue(e));
        }
        mass.append(massRow);
        entropy.append(entropyRow);
    }
    data.json = QJsonObject{{QStringLiteral("view"), viewId()},
                            {QStringLiteral("layers"), qint64(m_snapshot->layers)},
                            {QStringLiteral("heads"), qint64(m_snapshot->heads)},
                            {QStringLiteral("first_token_mass"), mass},
                            {QStringLiteral("mean_entropy_nats"), entropy}};
    return data;
}

QJsonObject OverviewView::saveState() const
{
    return {{QStringLiteral("quantity"), m_quantity == OverviewQuantity::FirstTokenMass ? QStringLiteral("first_token_mass")
                                                                                       : QStringLiteral("mean_entropy")}};
}

void OverviewView::restoreState(const QJsonObject &state)
{
    setQuantity(state.value(QStringLiteral("quantity")).toString() == QLatin1String("mean_entropy")
                    ? OverviewQuantity::MeanEntropy
                    : OverviewQuantity::FirstTokenMass);
}

} // namespace sinkscope::ui
