#include "metrics_view.h"

#include "figures.h"
#include "heatmap_plot.h"
#include "token_chips.h"

#include <qcustomplot.h>

#include <QCheckBox>
#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QJsonArray>
#include <QLabel>
#include <QSortFilterProxyModel>
#include <QTableView>
#include <QVBoxLayout>

#include <cmath>

namespace sinkscope::ui {

namespace {

constexpr int kFixedColumns = 2; // layer, head

// Sorts by the number and keeps undefined values (NaN) at the bottom in either order.
class MetricSortProxy : public QSortFilterProxyModel
{
public:
    using QSortFilterProxyModel::QSortFilterProxyModel;

protected:
    bool lessThan(const QModelIndex &left, const QModelIndex &right) const override
    {
        const double a = left.data(HeadMetricsModel::SortRole).toDouble();
        const double b = right.data(HeadMetricsModel::SortRole).toDouble();
        const bool ascending = sortOrder() == Qt::AscendingOrder;
        if (std::isnan(a) || std::isnan(b)) {
            if (std::isnan(a) && std::isnan(b)) {
                return left.row() < right.row();
            }
            // NaN is "largest" ascending and "smallest" descending: last either way.
            return ascending ? std::isnan(b) : std::isnan(a);
        }
        if (a == b) {
            // Ties in reading order (layer, head), whatever the direction.
            return ascending ? left.row() < right.row() : left.row() > right.row();
        }
        return a < b;
    }
};

// Indices and 0/1 flags (dormant, entropy_sink_head) as integers, everything else with 4 decimals.
QString formatValue(double v, bool integer)
{
    if (std::isnan(v)) {
        return QStringLiteral("\u2014");
    }
    if (integer) {
        return QString::number(v, 'f', 0);
    }
    return QString::number(v, 'f', std::abs(v) >= 100 ? 1 : 4);
}

} // namespace

void HeadMetricsModel::setMetrics(std::shared_ptr<const SinkMetrics> metrics)
{
    beginResetModel();
    m_metrics = std::move(metrics);
    endResetModel();
}

int HeadMetricsModel::columnOf(const std::string &metric) const
{
    if (!m_metrics) {
        return -1;
    }
    for (size_t i = 0; i < m_metrics->headMetrics.size(); ++i) {
        if (m_metrics->headMetrics[i].name == metric) {
            return int(i) + kFixedColumns;
        }
    }
    return -1;
}

std::pair<int64_t, int64_t> HeadMetricsModel::headAt(int row) const
{
    if (!m_metrics || m_metrics->heads <= 0) {
        return {-1, -1};
    }
    return {row / m_metrics->heads, row % m_metrics->heads};
}

int HeadMetricsModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() || !m_metrics ? 0 : int(m_metrics->layers * m_metrics->heads);
}

int HeadMetricsModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() || !m_metrics ? 0 : kFixedColumns + int(m_metrics->headMetrics.size());
}

QVariant HeadMetricsModel::data(const QModelIndex &index, int role) const
{
    if (!checkIndex(index, CheckIndexOption::IndexIsValid | CheckIndexOption::ParentIsInvalid)) {
        return {};
    }
    const auto [layer, head] = headAt(index.row());
    double value = 0;
    bool integer = true;
    if (index.column() == 0) {
        value = double(layer);
    } else if (index.column() == 1) {
        value = double(head);
    } else {
        const HeadMetric &m = m_metrics->headMetrics[size_t(index.column() - kFixedColumns)];
        value = double(m.values.data.at(size_t(index.row())));
        integer = m.name == "dormant" || m.name == "entropy_sink_head";
    }
    switch (role) {
    case Qt::DisplayRole:
        return formatValue(value, integer);
    case SortRole:
        return value;
    case Qt::TextAlignmentRole:
        return QVariant::fromValue(Qt::AlignRight | Qt::AlignVCenter);
    case Qt::ToolTipRole:
        return tr("Layer %1, head %2: click to open").arg(layer).arg(head);
    default:
        return {};
    }
}

QVariant HeadMetricsModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || !m_metrics || section < 0 || section >= columnCount()) {
        return QAbstractTableModel::headerData(section, orientation, role);
    }
    if (role == Qt::DisplayRole) {
        if (section < kFixedColumns) {
            return section == 0 ? tr("layer") : tr("head");
        }
        return QString::fromStdString(m_metrics->headMetrics[size_t(section - kFixedColumns)].name);
    }
    if (role == Qt::ToolTipRole && section >= kFixedColumns) {
        return QString::fromStdString(m_metrics->headMetrics[size_t(section - kFixedColumns)].description);
    }
    return {};
}

MetricsView::MetricsView(QWidget *parent) : AnalysisView(parent)
{
    auto *layout = new QVBoxLayout(this);
    auto *bar = new QHBoxLayout;
    m_sortBox = new QComboBox(this);
    m_sortBox->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    m_sortBox->setToolTip(tr("Sort the heads by this metric (or click a column header)"));
    m_descendingBox = new QCheckBox(tr("Largest first"), this);
    m_descendingBox->setChecked(true);
    bar->addWidget(new QLabel(tr("Sort heads by:"), this));
    bar->addWidget(m_sortBox);
    bar->addWidget(m_descendingBox);
    bar->addStretch(1);
    layout->addLayout(bar);
    m_summary = new QLabel(this);
    m_summary->setWordWrap(true);
    m_summary->setTextInteractionFlags(Qt::TextSelectableByMouse);
    layout->addWidget(m_summary);
    m_model = new HeadMetricsModel(this);
    m_proxy = new MetricSortProxy(this);
    m_proxy->setSourceModel(m_model);
    m_proxy->setSortRole(HeadMetricsModel::SortRole);
    m_table = new QTableView(this);
    m_table->setModel(m_proxy);
    m_table->setSortingEnabled(true);
    m_table->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_table->setSelectionMode(QAbstractItemView::SingleSelection);
    m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_table->verticalHeader()->setVisible(false);
    m_table->verticalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    m_table->setAlternatingRowColors(true);
    layout->addWidget(m_table, 1);

    connect(m_sortBox, &QComboBox::currentIndexChanged, this, [this](int index) {
        if (index >= 0) {
            sortBy(m_sortBox->itemData(index).toString().toStdString(), m_descending);
        }
    });
    connect(m_descendingBox, &QCheckBox::toggled, this, [this](bool on) { sortBy(m_sortMetric, on); });
    connect(m_table->horizontalHeader(), &QHeaderView::sortIndicatorChanged, this,
            [this](int column, Qt::SortOrder order) {
                if (column >= kFixedColumns && m_model->metrics() &&
                    column - kFixedColumns < int(m_model->metrics()->headMetrics.size())) {
                    m_sortMetric = m_model->metrics()->headMetrics[size_t(column - kFixedColumns)].name;
                    m_descending = order == Qt::DescendingOrder;
                    const QSignalBlocker b1(m_sortBox), b2(m_descendingBox);
                    m_sortBox->setCurrentIndex(m_sortBox->findData(QString::fromStdString(m_sortMetric)));
                    m_descendingBox->setChecked(m_descending);
                }
            });
    connect(m_table, &QTableView::clicked, this, [this](const QModelIndex &index) {
        const auto [layer, head] = headAtRow(index.row());
        if (layer >= 0) {
            emit headActivated(layer, head);
        }
    });
    connect(m_table, &QTableView::activated, this, [this](const QModelIndex &index) {
        const auto [layer, head] = headAtRow(index.row());
        if (layer >= 0) {
            emit headActivated(layer, head);
        }
    });
}

void MetricsView::setSnapshot(std::shared_ptr<const RunSnapshot> snapshot)
{
    m_snapshot = std::move(snapshot);
    m_model->setMetrics(m_snapshot ? m_snapshot->metrics : nullptr);
    {
        const QSignalBlocker block(m_sortBox);
        m_sortBox->clear();
        if (m_model->metrics()) {
            for (const HeadMetric &h : m_model->metrics()->headMetrics) {
                m_sortBox->addItem(QString::fromStdString(h.name), QString::fromStdString(h.name));
                m_sortBox->setItemData(m_sortBox->count() - 1, QString::fromStdString(h.description), Qt::ToolTipRole);
            }
        }
        m_sortBox->setCurrentIndex(std::max(0, m_sortBox->findData(QString::fromStdString(m_sortMetric))));
    }
    applySort();
    m_summary->setText(summaryText());
}

void MetricsView::setPlotStyle(const PlotStyle &style)
{
    m_style = style;
}

void MetricsView::sortBy(const std::string &metric, bool descending)
{
    m_sortMetric = metric;
    m_descending = descending;
    {
        const QSignalBlocker b1(m_sortBox), b2(m_descendingBox);
        const int index = m_sortBox->findData(QString::fromStdString(metric));
        if (index >= 0) {
            m_sortBox->setCurrentIndex(index);
        }
        m_descendingBox->setChecked(descending);
    }
    applySort();
}

void MetricsView::applySort()
{
    const int column = m_model->columnOf(m_sortMetric);
    if (column < 0) {
        return;
    }
    const QSignalBlocker block(m_table->horizontalHeader());
    m_table->sortByColumn(column, m_descending ? Qt::DescendingOrder : Qt::AscendingOrder);
}

std::pair<int64_t, int64_t> MetricsView::headAtRow(int row) const
{
    const QModelIndex source = m_proxy->mapToSource(m_proxy->index(row, 0));
    return source.isValid() ? m_model->headAt(source.row()) : std::pair<int64_t, int64_t>{-1, -1};
}

QString MetricsView::summaryText() const
{
    if (!m_snapshot || !m_snapshot->metrics) {
        return m_snapshot ? tr("No sink metrics for this run.") : QString();
    }
    const SinkMetrics &m = *m_snapshot->metrics;
    QStringList lines;
    QStringList perLayer;
    for (size_t l = 0; l < m.sinkFractionByLayer.size(); ++l) {
        perLayer << QString::number(double(m.sinkFractionByLayer[l]) * 100, 'f', 0);
    }
    lines << tr("Sink heads (Gu et al. \u03b1\u2081 > %1, T = %2): %3% overall; per layer %4 (%)")
                 .arg(m.settings.sinkEpsilon)
                 .arg(m.length)
                 .arg(double(m.sinkFraction) * 100, 0, 'f', 1)
                 .arg(perLayer.join(QLatin1Char(' ')));
    QStringList sinks;
    for (const DetectedSink &s : m.sinks) {
        const QString text = s.position < static_cast<int64_t>(m.tokenTexts.size())
                                 ? abbreviate(displayTokenText(m.tokenTexts[size_t(s.position)]), 12)
                                 : QStringLiteral("#%1").arg(s.tokenId);
        sinks << tr("%1 \u00ab%2\u00bb (peak %3 in layer %4, %5 heads)")
                     .arg(s.position)
                     .arg(text)
                     .arg(double(s.peakScore), 0, 'f', 2)
                     .arg(s.peakLayer)
                     .arg(s.headCount);
    }
    lines << tr("Detected sinks (mean received attention over heads > %1 in some layer): %2")
                 .arg(m.settings.sinkThreshold)
                 .arg(sinks.isEmpty() ? tr("none") : sinks.join(QStringLiteral("; ")));
    if (m.hasHidden && !m.activationsByLayer.empty()) {
        lines << tr("Massive activations (|h| > %1 and > %2\u00d7 the median): %3. %4")
                     .arg(m.settings.massiveAbs)
                     .arg(m.settings.massiveRatio)
                     .arg(m.massiveCount)
                     .arg(massiveActivationText(m, m.topActivation.layer));
    }
    int secondary = 0;
    for (const SecondarySink &s : m.secondarySinks) {
        secondary += s.kind == SecondarySinkKind::Secondary;
    }
    if (m.hasHidden) {
        lines << tr("Secondary sinks (Wong et al.): %1 in the BOS span, layers %2\u2013%3.")
                     .arg(secondary)
                     .arg(m.bosSpanStart)
                     .arg(std::max(m.bosSpanStart, m.bosSpanEnd - 1));
    }
    return lines.join(QLatin1Char('\n'));
}

QString MetricsView::figureTitle() const
{
    return tr("Heads with the largest %1").arg(QString::fromStdString(m_sortMetric));
}

void MetricsView::renderFigure(QCPPainter *painter, const QSize &size)
{
    if (!m_snapshot || !m_snapshot->metrics) {
        return;
    }
    const SinkMetrics &m = *m_snapshot->metrics;
    const int count = std::min<int>(30, m_proxy->rowCount());
    QCustomPlot figure;
    figure.resize(size);
    figure.setBackground(m_style.background);
    figure.axisRect()->setBackground(m_style.background);
    auto *bars = new QCPBars(figure.yAxis, figure.xAxis);
    bars->setBrush(m_style.accent);
    bars->setPen(Qt::NoPen);
    QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
    QVector<double> keys, values;
    for (int row = 0; row < count; ++row) {
        const auto [layer, head] = headAtRow(row);
        const double v = m.head(m_sortMetric, layer, head);
        keys << row;
        values << (std::isnan(v) ? 0.0 : v);
        ticker->addTick(row, tr("L%1 H%2").arg(layer).arg(head));
    }
    bars->setData(keys, values, true);
    figure.yAxis->setTicker(ticker);
    figure.yAxis->setRangeReversed(true);
    figure.yAxis->setRange(-0.6, count - 0.4);
    figure.xAxis->setLabel(QString::fromStdString(m_sortMetric));
    figure.xAxis->rescale();
    const QCPRange r = figure.xAxis->range();
    figure.xAxis->setRange(std::min(0.0, r.lower), r.upper * 1.05 + 1e-9);
    for (QCPAxis *axis : {figure.xAxis, figure.yAxis}) {
        applyAxisStyle(axis, m_style);
        axis->grid()->setPen(QPen(m_style.grid, 1, Qt::DotLine));
    }
    figure.toPainter(painter, size.width(), size.height());
}

ViewData MetricsView::currentData() const
{
    ViewData data;
    for (int c = 0; c < m_model->columnCount(); ++c) {
        data.columns << m_model->headerData(c, Qt::Horizontal).toString();
    }
    QJsonArray rows;
    for (int r = 0; r < m_proxy->rowCount(); ++r) {
        QStringList row;
        QJsonObject object;
        for (int c = 0; c < m_proxy->columnCount(); ++c) {
            const double v = m_proxy->index(r, c).data(HeadMetricsModel::SortRole).toDouble();
            row << QString::number(v, 'g', 8);
            object.insert(data.columns[c], std::isnan(v) ? QJsonValue() : QJsonValue(v));
        }
        data.rows.push_back(row);
        rows.append(object);
    }
    data.json = QJsonObject{{QStringLiteral("view"), viewId()},
                            {QStringLiteral("sorted_by"), QString::fromStdString(m_sortMetric)},
                            {QStringLiteral("descending"), m_descending},
                            {QStringLiteral("heads"), rows}};
    if (m_snapshot && m_snapshot->metrics) {
        data.json.insert(QStringLiteral("sink_fraction"), double(m_snapshot->metrics->sinkFraction));
    }
    return data;
}

QJsonObject MetricsView::saveState() const
{
    return {{QStringLiteral("sort"), QString::fromStdString(m_sortMetric)},
            {QStringLiteral("descending"), m_descending}};
}

void MetricsView::restoreState(const QJsonObject &state)
{
    const QString metric = state.value(QStringLiteral("sort")).toString();
    sortBy(metric.isEmpty() ? m_sortMetric : metric.toStdString(),
           state.value(QStringLiteral("descending")).toBool(true));
}

} // namespace sinkscope::ui
