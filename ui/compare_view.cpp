#include "compare_view.h"

#include "compute_bridge.h"
#include "heatmap_plot.h"

#include <QComboBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QJsonArray>
#include <QLabel>
#include <QPushButton>
#include <QSignalBlocker>
#include <QSplitter>
#include <QToolTip>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>

namespace sinkscope::ui {

namespace {

QVector<QString> indexLabels(int64_t count)
{
    QVector<QString> labels;
    for (int64_t i = 0; i < count; ++i) {
        labels << QString::number(i);
    }
    return labels;
}

QString entryTitle(const CompareEntry &e)
{
    return QString::fromStdString(e.step ? e.label + " (" + e.name + ")" : e.name);
}

// For axis titles and the figure title: the step of a checkpoint, else the model's name.
QString shortTitle(const CompareEntry &e)
{
    return QString::fromStdString(e.step ? e.label : e.name);
}

// Layer labels as the overview writes them: " S" on sliding-window layers.
QVector<QString> layerLabels(const SinkMetrics &metrics, int64_t count)
{
    QVector<QString> labels;
    for (int64_t l = 0; l < count; ++l) {
        labels << (metrics.config.windowOf(l) > 0 ? QStringLiteral("%1 S").arg(l) : QString::number(l));
    }
    return labels;
}

QString layerTitle(const SinkMetrics &metrics)
{
    return metrics.config.hasSlidingLayers() ? QObject::tr("layer (S: sliding window)") : QObject::tr("layer");
}

bool sameShape(const PooledGrid &a, const PooledGrid &b)
{
    return a.nx == b.nx && a.ny == b.ny;
}

} // namespace

CompareView::CompareView(ComputeBridge *bridge, ModelGetter model, TextGetter prompt, TextGetter device,
                         QWidget *parent)
    : AnalysisView(parent), m_bridge(bridge), m_model(std::move(model)), m_prompt(std::move(prompt)),
      m_device(std::move(device))
{
    auto *layout = new QVBoxLayout(this);
    auto *bar = new QHBoxLayout;
    auto *open = new QPushButton(tr("Models\u2026"), this);
    open->setToolTip(tr("Open model files to compare with the window's model: GGUF, SinkScope/TorchScript .pt, "
                        "a Hugging Face config.json; several files make a checkpoint series"));
    auto *folder = new QPushButton(tr("Add folder\u2026"), this);
    folder->setToolTip(tr("Add a Hugging Face folder (config.json, safetensors, tokenizer.json) to the comparison"));
    auto *clear = new QPushButton(tr("Clear"), this);
    m_compareButton = new QPushButton(tr("Compare"), this);
    m_compareButton->setToolTip(tr("Run every model on the prompt as typed (each with its own tokenizer)"));
    m_cancelButton = new QPushButton(tr("Cancel"), this);
    m_metricBox = new QComboBox(this);
    m_metricBox->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
    m_metricBox->setMinimumContentsLength(24); // the longest metric name, before any result fills the box
    m_metricBox->setToolTip(tr("Per-head metric of every grid (docs/metrics.md); the series averages it over heads"));
    m_aBox = new QComboBox(this);
    m_bBox = new QComboBox(this);
    m_aBox->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    m_bBox->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    for (QWidget *w : {static_cast<QWidget *>(open), static_cast<QWidget *>(folder), static_cast<QWidget *>(clear),
                       static_cast<QWidget *>(m_compareButton), static_cast<QWidget *>(m_cancelButton)}) {
        bar->addWidget(w);
    }
    bar->addSpacing(12);
    bar->addWidget(new QLabel(tr("Metric:"), this));
    bar->addWidget(m_metricBox);
    bar->addWidget(new QLabel(tr("A:"), this));
    bar->addWidget(m_aBox);
    bar->addWidget(new QLabel(tr("B:"), this));
    bar->addWidget(m_bBox);
    bar->addStretch(1);
    layout->addLayout(bar);
    m_sourcesLabel = new QLabel(this);
    m_sourcesLabel->setWordWrap(true);
    m_sourcesLabel->setTextInteractionFlags(Qt::TextSelectableByMouse);
    layout->addWidget(m_sourcesLabel);
    m_note = new QLabel(this);
    m_note->setWordWrap(true);
    m_note->setTextInteractionFlags(Qt::TextSelectableByMouse);
    layout->addWidget(m_note);

    auto *splitter = new QSplitter(Qt::Vertical, this);
    m_pairRow = new QWidget(splitter);
    auto *row = new QHBoxLayout(m_pairRow);
    row->setContentsMargins(0, 0, 0, 0);
    m_plotA = new HeatmapPlot(m_pairRow);
    m_plotB = new HeatmapPlot(m_pairRow);
    m_diffPlot = new HeatmapPlot(m_pairRow);
    m_plotA->setColourBarVisible(false); // A and B share B's colour bar
    for (HeatmapPlot *p : {m_plotA, m_plotB, m_diffPlot}) {
        p->plot()->setInteractions({});
        row->addWidget(p, 1);
    }
    m_seriesPlot = new HeatmapPlot(splitter);
    m_seriesPlot->plot()->setInteractions({});
    splitter->addWidget(m_pairRow);
    splitter->addWidget(m_seriesPlot);
    layout->addWidget(splitter, 1);

    connect(open, &QPushButton::clicked, this, &CompareView::openModelsDialog);
    connect(folder, &QPushButton::clicked, this, &CompareView::openFolderDialog);
    connect(clear, &QPushButton::clicked, this, [this] { setModels({}); });
    connect(m_compareButton, &QPushButton::clicked, this, &CompareView::compare);
    connect(m_cancelButton, &QPushButton::clicked, this, &CompareView::cancel);
    connect(m_metricBox, &QComboBox::currentIndexChanged, this, [this](int index) {
        if (index >= 0) {
            setMetric(m_metricBox->itemData(index).toString().toStdString());
        }
    });
    auto pairChanged = [this] { setPair(m_aBox->currentData().toInt(), m_bBox->currentData().toInt()); };
    connect(m_aBox, &QComboBox::currentIndexChanged, this, pairChanged);
    connect(m_bBox, &QComboBox::currentIndexChanged, this, pairChanged);
    for (HeatmapPlot *p : {m_plotA, m_plotB, m_diffPlot, m_seriesPlot}) {
        connect(p, &HeatmapPlot::hovered, this,
                [this, p](int64_t x, int64_t y, const QPoint &global) { hoverTip(p, x, y, global); });
        connect(p, &HeatmapPlot::left, this, [] { QToolTip::hideText(); });
    }
    connect(m_bridge, &ComputeBridge::busyChanged, this, [this] {
        if (!isBusy() && m_note->text() == comparingText()) {
            m_note->setText(
                tr("Comparison cancelled.")); // Esc or the status bar's Cancel; a result follows at once otherwise
        }
        refreshControls();
    });
    connect(m_bridge, &ComputeBridge::failed, this, [this](const QString &tag, const QString &message) {
        if (tag == QLatin1String(kCompareTag)) {
            m_note->setText(tr("The comparison failed: %1").arg(message));
            refreshControls();
        }
    });
    refresh();
}

void CompareView::setSnapshot(std::shared_ptr<const RunSnapshot> snapshot)
{
    m_snapshot = std::move(snapshot);
    refresh(); // the note says when the prompt changed since the comparison
}

void CompareView::setPlotStyle(const PlotStyle &style)
{
    m_style = style;
    for (HeatmapPlot *p : {m_plotA, m_plotB, m_diffPlot, m_seriesPlot}) {
        p->setStyle(style);
    }
    refresh();
}

void CompareView::setColourMap(ColourMap map)
{
    m_map = map;
    refresh();
}

void CompareView::setModels(const QStringList &sources)
{
    m_sources = sources;
    if (sources.isEmpty() && m_result) {
        cancel();
        m_result.reset(); // the compared models go with it
        m_a = m_b = -1;
        refresh();
    }
    refreshControls();
}

void CompareView::compareWith(const QStringList &sources)
{
    setModels(sources);
    compare();
}

void CompareView::compare()
{
    if (m_sources.isEmpty()) {
        m_note->setText(tr("Open models to compare (Models\u2026 or File \u203a Compare with models\u2026)."));
        return;
    }
    CompareRequest request;
    request.prompt = m_prompt().toStdString();
    request.device = m_device().toStdString();
    if (auto model = m_model()) {
        request.reference = CompareInput{{}, std::move(model)};
    }
    for (const QString &source : m_sources) {
        CompareInput input{source.toStdString(), nullptr};
        // A model of the last comparison is not loaded again.
        if (m_result) {
            for (const CompareEntry &e : m_result->series) {
                if (e.source == input.source && e.model) {
                    input.model = e.model;
                }
            }
        }
        request.models.push_back(std::move(input));
    }
    // The label is made before the request moves into the job (argument order is unspecified).
    const QString label = tr("Comparing %1 models").arg(request.models.size() + (request.reference ? 1 : 0));
    m_bridge->submit<CompareResult>(
        QString::fromLatin1(kCompareTag), label,
        [request = std::move(request)](const CancelToken &cancel, const ProgressCallback &progress) {
            return computeComparison(request, cancel, progress);
        },
        [this](std::shared_ptr<const CompareResult> result) { onResult(std::move(result)); });
    m_note->setText(comparingText());
    refreshControls();
}

void CompareView::cancel()
{
    if (isBusy()) {
        m_bridge->cancel(QString::fromLatin1(kCompareTag));
        m_note->setText(tr("Comparison cancelled."));
    }
    refreshControls();
}

bool CompareView::isBusy() const
{
    return m_bridge->isPending(QString::fromLatin1(kCompareTag));
}

void CompareView::onResult(std::shared_ptr<const CompareResult> result)
{
    m_result = std::move(result);
    const int count = int(m_result->entries().size());
    const int first = m_result->reference ? 1 : 0; // the first opened model
    const bool keep = m_a >= 0 && m_a < count && m_b >= 0 && m_b < count && m_a != m_b;
    if (!keep) {
        // A checkpoint series: its first against its last; one model: the window's against it.
        m_a = m_result->series.size() >= 2 || !m_result->reference ? first : 0;
        m_b = m_result->series.empty() ? -1 : count - 1;
    }
    refreshControls();
    refresh();
    const QString note = noteText();
    for (const CompareEntry *e : m_result->entries()) {
        if (!e->ok()) {
            emit failed(note);
            break;
        }
    }
    emit comparisonShown();
}

QString CompareView::comparingText()
{
    return tr("Comparing\u2026");
}

bool CompareView::hasDifference() const
{
    const CompareEntry *a = entryAt(m_a);
    const CompareEntry *b = entryAt(m_b);
    return a && b && a->ok() && b->ok() &&
           differenceGrid(compareHeadGrid(*a->metrics, m_metric), compareHeadGrid(*b->metrics, m_metric)).has_value();
}

const CompareEntry *CompareView::entryAt(int index) const
{
    if (!m_result || index < 0) {
        return nullptr;
    }
    const auto all = m_result->entries();
    return size_t(index) < all.size() ? all[size_t(index)] : nullptr;
}

std::vector<const CompareEntry *> CompareView::seriesEntries() const
{
    std::vector<const CompareEntry *> ok;
    if (m_result) {
        for (const CompareEntry &e : m_result->series) {
            if (e.ok()) {
                ok.push_back(&e);
            }
        }
    }
    return ok;
}

void CompareView::setMetric(const std::string &metric)
{
    m_metric = metric;
    const int index = m_metricBox->findData(QString::fromStdString(metric));
    if (index >= 0 && m_metricBox->currentIndex() != index) {
        const QSignalBlocker block(m_metricBox);
        m_metricBox->setCurrentIndex(index);
    }
    refresh();
}

void CompareView::setPair(int a, int b)
{
    m_a = a;
    m_b = b;
    refreshControls();
    refresh();
}

void CompareView::refreshControls()
{
    const bool busy = isBusy();
    m_compareButton->setEnabled(!busy && !m_sources.isEmpty());
    m_cancelButton->setEnabled(busy);
    QStringList names;
    for (const QString &s : m_sources) {
        names << QFileInfo(s).fileName();
    }
    m_sourcesLabel->setText(m_sources.isEmpty()
                                ? tr("No models to compare yet: Models\u2026 or Add folder\u2026")
                                : tr("Beside the window's model: %1").arg(names.join(QStringLiteral(", "))));
    const QSignalBlocker blockA(m_aBox);
    const QSignalBlocker blockB(m_bBox);
    const QSignalBlocker blockMetric(m_metricBox);
    m_aBox->clear();
    m_bBox->clear();
    m_metricBox->clear();
    if (!m_result) {
        return;
    }
    const auto all = m_result->entries();
    for (size_t i = 0; i < all.size(); ++i) {
        QString text = entryTitle(*all[i]);
        if (m_result->reference && i == 0) {
            text = tr("window: %1").arg(text);
        }
        if (!all[i]->ok()) {
            text += tr(" (failed)");
        }
        m_aBox->addItem(text, int(i));
        m_bBox->addItem(text, int(i));
    }
    m_aBox->setCurrentIndex(m_aBox->findData(m_a));
    m_bBox->setCurrentIndex(m_bBox->findData(m_b));
    for (const CompareEntry *e : all) {
        if (e->ok()) {
            for (const HeadMetric &h : e->metrics->headMetrics) {
                m_metricBox->addItem(QString::fromStdString(h.name), QString::fromStdString(h.name));
                m_metricBox->setItemData(m_metricBox->count() - 1, QString::fromStdString(h.description),
                                         Qt::ToolTipRole);
            }
            break;
        }
    }
    m_metricBox->setCurrentIndex(std::max(0, m_metricBox->findData(QString::fromStdString(m_metric))));
}

QString CompareView::noteText() const
{
    if (!m_result) {
        return {};
    }
    QStringList notes;
    for (const CompareEntry *e : m_result->entries()) {
        if (!e->ok()) {
            notes << tr("%1 could not be compared: %2")
                         .arg(QString::fromStdString(e->label), QString::fromStdString(e->error));
        } else if (!e->metrics->headMetric(m_metric)) {
            notes << tr("%1 has no %2").arg(entryTitle(*e), QString::fromStdString(m_metric));
        }
    }
    const CompareEntry *a = entryAt(m_a);
    const CompareEntry *b = entryAt(m_b);
    if (a && b && a->ok() && b->ok()) {
        const PooledGrid ga = compareHeadGrid(*a->metrics, m_metric);
        const PooledGrid gb = compareHeadGrid(*b->metrics, m_metric);
        if (!sameShape(ga, gb)) {
            notes << tr("A has %1 layers \u00d7 %2 heads, B %3 \u00d7 %4: no difference grid")
                         .arg(ga.ny)
                         .arg(ga.nx)
                         .arg(gb.ny)
                         .arg(gb.nx);
        }
    }
    int64_t fewest = 0, most = 0;
    for (const CompareEntry *e : m_result->entries()) {
        if (e->ok()) {
            fewest = fewest == 0 ? e->tokenCount : std::min(fewest, e->tokenCount);
            most = std::max(most, e->tokenCount);
        }
    }
    if (fewest != most) {
        notes << (a && b && a->ok() && b->ok() && a->tokenCount != b->tokenCount
                      ? tr("token counts differ: A has %1 tokens, B %2 (each model tokenizes the prompt itself)")
                            .arg(a->tokenCount)
                            .arg(b->tokenCount)
                      : tr("token counts differ: %1 to %2 tokens (each model tokenizes the prompt itself)")
                            .arg(fewest)
                            .arg(most));
    }
    if (m_prompt && m_prompt().toStdString() != m_result->prompt) {
        notes << tr("the prompt changed since: press Compare");
    }
    if (m_result->reference && m_model && m_model() != m_result->reference->model) {
        notes << tr("the window's model changed since: press Compare");
    }
    return notes.join(QStringLiteral("; "));
}

bool CompareView::fillPair(HeatmapPlot *plotA, HeatmapPlot *plotB, HeatmapPlot *difference) const
{
    const CompareEntry *a = entryAt(m_a);
    const CompareEntry *b = entryAt(m_b);
    const PooledGrid ga = a && a->ok() ? compareHeadGrid(*a->metrics, m_metric) : PooledGrid{};
    const PooledGrid gb = b && b->ok() ? compareHeadGrid(*b->metrics, m_metric) : PooledGrid{};
    const ValueRange range = sharedRange(ga, gb);
    const QString metric = QString::fromStdString(m_metric);
    bool any = false;
    const struct {
        HeatmapPlot *plot;
        const PooledGrid &grid;
        const CompareEntry *entry;
        QString tag;
    } panels[] = {{plotA, ga, a, QStringLiteral("A")}, {plotB, gb, b, QStringLiteral("B")}};
    for (const auto &p : panels) {
        p.plot->setColourMap(m_map);
        if (p.grid.nx == 0) {
            p.plot->clear();
            continue;
        }
        p.plot->setAxes(indexLabels(p.grid.nx), layerLabels(*p.entry->metrics, p.grid.ny),
                        tr("head \u2014 %1: %2 (%3 tokens)").arg(p.tag, shortTitle(*p.entry)).arg(p.entry->tokenCount),
                        layerTitle(*p.entry->metrics));
        p.plot->setColourBarLabel(tr("%1 (A and B)").arg(metric));
        p.plot->setExtent(p.grid.nx, p.grid.ny);
        p.plot->setGrid(p.grid, range, ScaleMapping::Linear);
        any = true;
    }
    const auto diff = ga.nx > 0 && gb.nx > 0 ? differenceGrid(ga, gb) : std::nullopt;
    if (diff) {
        difference->setAxes(indexLabels(diff->nx), layerLabels(*b->metrics, diff->ny), tr("head \u2014 B \u2212 A"),
                            layerTitle(*b->metrics));
        difference->setColourBarLabel(tr("\u0394 %1 (B \u2212 A)").arg(metric));
        difference->setExtent(diff->nx, diff->ny);
        difference->setGrid(*diff, symmetricRange(diff->data), ScaleMapping::Linear);
        difference->colourMap()->setGradient(divergingGradient());
    } else {
        difference->clear();
    }
    return any;
}

bool CompareView::fillSeries(HeatmapPlot *plot) const
{
    const auto entries = seriesEntries();
    if (entries.size() < 2) {
        plot->clear();
        return false;
    }
    std::vector<const SinkMetrics *> metrics;
    QVector<QString> labels;
    for (const CompareEntry *e : entries) {
        metrics.push_back(e->metrics.get());
        labels << QString::fromStdString(e->label);
    }
    const PooledGrid grid = layerCheckpointGrid(metrics, m_metric);
    plot->setColourMap(m_map);
    plot->setAxes(labels, indexLabels(grid.ny), tr("checkpoint (by training step)"), tr("layer"));
    plot->setColourBarLabel(tr("%1, mean over heads").arg(QString::fromStdString(m_metric)));
    plot->setExtent(grid.nx, grid.ny);
    plot->setGrid(grid, finiteRange(grid), ScaleMapping::Linear);
    return true;
}

void CompareView::refresh()
{
    const bool pair = fillPair(m_plotA, m_plotB, m_diffPlot);
    m_diffPlot->setVisible(hasDifference());
    m_pairRow->setVisible(pair);
    m_seriesPlot->setVisible(fillSeries(m_seriesPlot));
    if (!isBusy()) {
        m_note->setText(m_result ? noteText()
                                 : tr("Compare other models (a second model or a series of checkpoints) "
                                      "with the window's model on the same prompt."));
    }
    const bool error = m_result && std::any_of(m_result->series.begin(), m_result->series.end(),
                                               [](const CompareEntry &e) { return !e.ok(); });
    m_note->setStyleSheet(error ? QStringLiteral("color: #b2182b;") : QString());
}

void CompareView::hoverTip(HeatmapPlot *plot, int64_t x, int64_t y, const QPoint &global)
{
    const QString metric = QString::fromStdString(m_metric);
    if (plot == m_seriesPlot) {
        const auto entries = seriesEntries();
        if (size_t(x) < entries.size()) {
            const HeadMetric *h = entries[size_t(x)]->metrics->headMetric(m_metric);
            std::vector<const SinkMetrics *> one{entries[size_t(x)]->metrics.get()};
            const PooledGrid grid = layerCheckpointGrid(one, m_metric);
            const float v = y < grid.ny ? grid.data[size_t(y)] : NAN;
            QToolTip::showText(global,
                               tr("%1, layer %2\n%3, mean over heads: %4")
                                   .arg(entryTitle(*entries[size_t(x)]))
                                   .arg(y)
                                   .arg(metric)
                                   .arg(h ? double(v) : NAN, 0, 'g', 4),
                               plot);
        }
        return;
    }
    const CompareEntry *a = entryAt(m_a);
    const CompareEntry *b = entryAt(m_b);
    auto value = [&](const CompareEntry *e) {
        return e && e->ok() ? double(e->metrics->head(m_metric, y, x)) : double(NAN);
    };
    QString text = tr("Layer %1, head %2").arg(y).arg(x);
    if (plot == m_plotA || plot == m_diffPlot) {
        text += tr("\nA %1: %2").arg(metric).arg(value(a), 0, 'g', 4);
    }
    if (plot == m_plotB || plot == m_diffPlot) {
        text += tr("\nB %1: %2").arg(metric).arg(value(b), 0, 'g', 4);
    }
    if (plot == m_diffPlot) {
        text += tr("\nB \u2212 A: %1").arg(value(b) - value(a), 0, 'g', 4);
    }
    QToolTip::showText(global, text, plot);
}

QString CompareView::figureTitle() const
{
    const CompareEntry *a = entryAt(m_a);
    const CompareEntry *b = entryAt(m_b);
    QString title = QString::fromStdString(m_metric);
    if (a && b) {
        title += tr(": A %1, B %2 (one colour scale), B \u2212 A").arg(shortTitle(*a), shortTitle(*b));
    }
    if (seriesEntries().size() >= 2) {
        title += tr("; layer means over %1 checkpoints").arg(seriesEntries().size());
    }
    return title;
}

void CompareView::renderFigure(QCPPainter *painter, const QSize &size)
{
    HeatmapPlot a, b, diff, series;
    for (HeatmapPlot *p : {&a, &b, &diff, &series}) {
        p->setStyle(m_style);
    }
    a.setColourBarVisible(false);
    const bool pair = fillPair(&a, &b, &diff);
    const bool hasDiff = pair && hasDifference();
    const bool hasSeries = fillSeries(&series);
    const int rows = int(pair) + int(hasSeries);
    if (rows == 0) {
        return;
    }
    const int rowHeight = size.height() / rows;
    int y = 0;
    auto draw = [painter](HeatmapPlot &plot, int x, int top, const QSize &panel) {
        plot.resize(panel);
        painter->save();
        painter->translate(x, top);
        plot.render(painter, panel);
        painter->restore();
    };
    if (pair) {
        const int panels = hasDiff ? 3 : 2;
        const QSize panel(size.width() / panels, rowHeight);
        draw(a, 0, y, panel);
        draw(b, panel.width(), y, panel);
        if (hasDiff) {
            draw(diff, 2 * panel.width(), y, panel);
        }
        y += rowHeight;
    }
    if (hasSeries) {
        draw(series, 0, y, QSize(size.width(), rowHeight));
    }
}

ViewData CompareView::currentData() const
{
    ViewData data;
    data.columns = {QStringLiteral("model"), QStringLiteral("step"), QStringLiteral("layer"), QStringLiteral("head"),
                    QString::fromStdString(m_metric)};
    if (!m_result) {
        return data;
    }
    QJsonArray entries;
    for (const CompareEntry *e : m_result->entries()) {
        const QString step = e->step ? QString::number(*e->step) : QString();
        entries.append(QJsonObject{{QStringLiteral("source"), QString::fromStdString(e->source)},
                                   {QStringLiteral("name"), QString::fromStdString(e->name)},
                                   {QStringLiteral("label"), QString::fromStdString(e->label)},
                                   {QStringLiteral("step"), e->step ? QJsonValue(qint64(*e->step)) : QJsonValue()},
                                   {QStringLiteral("tokens"), qint64(e->tokenCount)},
                                   {QStringLiteral("error"), QString::fromStdString(e->error)}});
        const PooledGrid grid = e->ok() ? compareHeadGrid(*e->metrics, m_metric) : PooledGrid{};
        for (int64_t layer = 0; layer < grid.ny; ++layer) {
            for (int64_t head = 0; head < grid.nx; ++head) {
                data.rows.push_back({QString::fromStdString(e->label), step, QString::number(layer),
                                     QString::number(head), QString::number(double(grid.at(head, layer)), 'g', 8)});
            }
        }
    }
    std::vector<const SinkMetrics *> series;
    for (const CompareEntry *e : seriesEntries()) {
        series.push_back(e->metrics.get());
    }
    const PooledGrid grid = layerCheckpointGrid(series, m_metric);
    QJsonArray layerMeans;
    for (int64_t layer = 0; layer < grid.ny; ++layer) {
        QJsonArray row;
        for (int64_t c = 0; c < grid.nx; ++c) {
            const float v = grid.at(c, layer);
            row.append(std::isnan(v) ? QJsonValue() : QJsonValue(double(v)));
        }
        layerMeans.append(row);
    }
    data.json = QJsonObject{{QStringLiteral("view"), viewId()},
                            {QStringLiteral("metric"), QString::fromStdString(m_metric)},
                            {QStringLiteral("prompt"), QString::fromStdString(m_result->prompt)},
                            {QStringLiteral("models"), entries},
                            {QStringLiteral("pair"), QJsonArray{m_a, m_b}},
                            {QStringLiteral("series_layer_means"), layerMeans}};
    return data;
}

QJsonObject CompareView::saveState() const
{
    return {{QStringLiteral("metric"), QString::fromStdString(m_metric)},
            {QStringLiteral("models"), QJsonArray::fromStringList(m_sources)},
            {QStringLiteral("pair"), QJsonArray{m_a, m_b}}};
}

void CompareView::restoreState(const QJsonObject &state)
{
    const QString metric = state.value(QStringLiteral("metric")).toString();
    if (!metric.isEmpty()) {
        m_metric = metric.toStdString();
    }
    QStringList sources;
    for (const QJsonValue &v : state.value(QStringLiteral("models")).toArray()) {
        sources << v.toString();
    }
    const QJsonArray pair = state.value(QStringLiteral("pair")).toArray();
    m_a = pair.size() == 2 ? pair[0].toInt(-1) : -1;
    m_b = pair.size() == 2 ? pair[1].toInt(-1) : -1;
    setModels(sources);
    // A session restores after its run is shown: compare at once. Settings restore at start-up, before
    // any run: the models wait for Compare.
    if (m_snapshot && !sources.isEmpty()) {
        compare();
    }
    refresh();
}

void CompareView::openModelsDialog()
{
    const QStringList paths = QFileDialog::getOpenFileNames(
        this, tr("Compare with models"), QString(),
        tr("Models (*.gguf *.pt config.json);;GGUF (*.gguf);;SinkScope or TorchScript (*.pt);;All files (*)"));
    if (!paths.isEmpty()) {
        compareWith(paths);
    }
}

void CompareView::openFolderDialog()
{
    const QString folder = QFileDialog::getExistingDirectory(this, tr("Add a model folder to the comparison"));
    if (!folder.isEmpty()) {
        compareWith(m_sources + QStringList{folder});
    }
}

} // namespace sinkscope::ui
