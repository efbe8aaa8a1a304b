#include "streaming_view.h"

#include "compute_bridge.h"

#include <qcustomplot.h>

#include <QHBoxLayout>
#include <QHeaderView>
#include <QJsonArray>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QTableWidget>
#include <QTimer>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>

namespace sinkscope::ui {

namespace {

constexpr int kMaxCache = 100000;
constexpr int kMinCache = 2; // as a lesson's `streaming: cache N` allows; sinks + window then keeps fewer sinks

QString number(double v, int digits)
{
    return std::isfinite(v) ? QString::number(v, 'f', digits) : QStringLiteral("n/a");
}

QString methodText(const StreamingOptions &o)
{
    switch (o.mode) {
    case StreamingMode::Dense:
        return QObject::tr("dense (no eviction)");
    case StreamingMode::Cache:
        return o.sinks == 0 ? QObject::tr("window only (%1 recent)").arg(o.window)
                            : QObject::tr("sinks + window (%1 + %2, StreamingLLM)").arg(o.sinks).arg(o.window);
    case StreamingMode::Recompute:
        return QObject::tr("recompute %1+%2").arg(o.sinks).arg(o.window);
    }
    return {};
}

} // namespace

LinePlot streamingLinePlot(const StreamingOutcome &outcome)
{
    LinePlot plot;
    size_t longest = 0;
    for (const auto &r : outcome.runs) {
        longest = std::max(longest, r.nll.size());
    }
    const size_t span = nllCurveSpan(longest);
    plot.xLabel = QObject::tr("position (tokens decoded)");
    plot.yLabel = QObject::tr("NLL, trailing mean over %1 tokens (nats)").arg(span);
    for (const auto &r : outcome.runs) {
        NllCurve curve = trailingMeanNll(r, span);
        plot.series.push_back(
            {QString::fromStdString(r.options.label()), std::move(curve.position), std::move(curve.nll)});
    }
    if (size_t(outcome.cache) < longest + 1) {
        plot.marks.push_back({double(outcome.cache), QObject::tr("cache full (%1)").arg(outcome.cache)});
    }
    return plot;
}

StreamingView::StreamingView(ComputeBridge *bridge, std::function<std::shared_ptr<const Model>()> model,
                             QWidget *parent)
    : AnalysisView(parent), m_bridge(bridge), m_model(std::move(model))
{
    auto *layout = new QVBoxLayout(this);
    auto *bar = new QHBoxLayout;
    m_cacheBox = new QSpinBox(this);
    m_cacheBox->setRange(kMinCache, kMaxCache);
    m_cacheBox->setValue(kDefaultCache);
    m_cacheBox->setSuffix(tr(" tokens"));
    m_cacheBox->setToolTip(tr("Total KV cache: the token being decoded sees at most this many keys, itself included"));
    m_computeButton = new QPushButton(tr("Compute"), this);
    m_computeButton->setToolTip(tr("Decode the prompt token by token under each cache policy"));
    m_cancelButton = new QPushButton(tr("Cancel"), this);
    m_cancelButton->setEnabled(false);
    m_progress = new QProgressBar(this);
    m_progress->setMaximumWidth(220);
    m_progress->setVisible(false);
    bar->addWidget(new QLabel(tr("KV cache"), this));
    bar->addWidget(m_cacheBox);
    m_sinksLabel = new QLabel(this);
    bar->addWidget(m_sinksLabel);
    bar->addStretch(1);
    bar->addWidget(m_progress);
    bar->addWidget(m_computeButton);
    bar->addWidget(m_cancelButton);
    layout->addLayout(bar);
    m_note = new QLabel(this);
    m_note->setWordWrap(true);
    m_note->setTextInteractionFlags(Qt::TextSelectableByMouse);
    layout->addWidget(m_note);
    m_plot = new QCustomPlot(this);
    m_plot->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
    m_plot->setVisible(false);
    layout->addWidget(m_plot, 1);
    m_table = new QTableWidget(0, 5, this);
    m_table->setHorizontalHeaderLabels(
        {tr("policy"), tr("KV cache (sinks + recent)"), tr("perplexity"), tr("perplexity once full"), tr("tokens/s")});
    m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    m_table->horizontalHeader()->setStretchLastSection(true);
    m_table->verticalHeader()->setVisible(false);
    m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    m_table->setSelectionMode(QAbstractItemView::NoSelection);
    m_table->setVerticalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    m_table->setSizeAdjustPolicy(QAbstractScrollArea::AdjustToContents);
    m_table->setVisible(false);
    layout->addWidget(m_table);
    layout->addStretch(0);

    // Typing a cache size must not start a decoding per keystroke.
    m_debounce = new QTimer(this);
    m_debounce->setSingleShot(true);
    m_debounce->setInterval(400);
    connect(m_debounce, &QTimer::timeout, this, [this] {
        if (isVisible()) {
            compute();
        }
    });
    auto describeSinks = [this] {
        m_sinksLabel->setText(tr("(sinks + window keeps the first %1)").arg(cacheComparison(cache()).back().sinks));
    };
    describeSinks();
    connect(m_cacheBox, &QSpinBox::valueChanged, this, [this, describeSinks] {
        describeSinks();
        schedule();
    });
    connect(m_computeButton, &QPushButton::clicked, this, &StreamingView::compute);
    connect(m_cancelButton, &QPushButton::clicked, this, &StreamingView::cancel);
    connect(m_bridge, &ComputeBridge::progress, this,
            [this](const QString &tag, double fraction, const QString &label) {
                if (tag != QLatin1String(kStreamingTag) || !m_busy) {
                    return;
                }
                showJobProgress(m_progress, fraction, label);
            });
    connect(m_bridge, &ComputeBridge::failed, this, [this](const QString &tag, const QString &message) {
        if (tag == QLatin1String(kStreamingTag)) {
            setBusy(false);
            m_note->setText(tr("Streaming evaluation failed: %1").arg(message));
        }
    });
    // Esc (cancelAll) ends the job without a result or an error. Checked after the event: a job that ends
    // normally is finished just before its result or error is delivered.
    connect(m_bridge, &ComputeBridge::busyChanged, this, [this](bool busy) {
        if (!busy) {
            QTimer::singleShot(0, this, [this] {
                if (m_busy && !m_bridge->isPending(QString::fromLatin1(kStreamingTag))) {
                    setBusy(false);
                    m_note->setText(tr("Cancelled. Compute starts it again."));
                }
            });
        }
    });
    m_note->setText(tr("Run a prompt: the tab decodes its tokens one at a time under each KV cache policy."));
}

int StreamingView::cache() const
{
    return m_cacheBox->value();
}

void StreamingView::setCache(int tokens)
{
    m_cacheBox->setValue(std::clamp(tokens, kMinCache, kMaxCache));
}

void StreamingView::setSnapshot(std::shared_ptr<const RunSnapshot> snapshot)
{
    std::vector<int64_t> tokens;
    if (snapshot) {
        tokens.reserve(snapshot->tokens.size());
        for (const TokenInfo &t : snapshot->tokens) {
            tokens.push_back(t.id);
        }
    } else {
        // A new model: nothing computed so far belongs to it.
        m_outcome.reset();
        m_outcomeModel.reset();
    }
    if (tokens == m_tokens && snapshot) {
        return;
    }
    if (m_busy) {
        cancel(); // its tokens are gone; schedule() starts again for the new ones when the tab is visible
    }
    m_tokens = std::move(tokens);
    schedule();
}

void StreamingView::schedule()
{
    if (isVisible() && !m_tokens.empty()) {
        m_debounce->start();
    }
}

void StreamingView::showEvent(QShowEvent *event)
{
    AnalysisView::showEvent(event);
    if (!isCurrent() && !m_tokens.empty()) {
        m_debounce->start(0);
    }
}

bool StreamingView::isCurrent() const
{
    const auto model = m_model ? m_model() : nullptr;
    return m_outcome && model && m_outcomeModel.lock() == model && m_outcome->tokens == m_tokens &&
           m_outcome->cache == cache();
}

void StreamingView::compute()
{
    m_debounce->stop();
    auto model = m_model ? m_model() : nullptr;
    if (!model || m_tokens.size() < 2) {
        m_note->setText(model ? tr("The prompt needs at least two tokens.") : tr("Load a model first."));
        return;
    }
    if (isCurrent()) {
        return;
    }
    const int cacheSize = cache();
    const std::vector<int64_t> tokens = m_tokens;
    // The dense run depends on the tokens only: a cache change reuses it.
    std::optional<StreamingResult> dense;
    if (m_outcome && m_outcomeModel.lock() == model && m_outcome->tokens == tokens && !m_outcome->runs.empty()) {
        dense = m_outcome->runs.front();
    }
    setBusy(true);
    m_note->setText(tr("Decoding %1 tokens one at a time (dense, window %2, sinks %3 + %4)\u2026")
                        .arg(tokens.size())
                        .arg(cacheSize)
                        .arg(std::min(kSinks, cacheSize - 1))
                        .arg(cacheSize - std::min(kSinks, cacheSize - 1)));
    m_bridge->submit<StreamingOutcome>(
        QString::fromLatin1(kStreamingTag), tr("Streaming: dense"),
        [model, tokens, cacheSize, dense](const CancelToken &cancel,
                                          const ProgressCallback &progress) -> Result<StreamingOutcome> {
            // A fresh evaluator per job: it holds its own handle on the model's archive, which must not
            // outlive a model the window has replaced.
            auto evaluator = StreamingEvaluator::create(model);
            if (!evaluator.ok()) {
                return evaluator.error();
            }
            StreamingOutcome out;
            out.tokens = tokens;
            out.cache = cacheSize;
            const std::vector<StreamingOptions> policies = cacheComparison(cacheSize);
            for (size_t i = 0; i < policies.size(); ++i) {
                if (i == 0 && dense) {
                    out.runs.push_back(*dense);
                    continue;
                }
                const double share = 1.0 / double(policies.size());
                auto run = (*evaluator)->run(tokens, policies[i], &cancel, [&](double f, const std::string &label) {
                    return !progress || progress(share * (double(i) + f), label);
                });
                if (!run.ok()) {
                    return run.error();
                }
                out.runs.push_back(std::move(run).value());
            }
            return out;
        },
        [this, model](std::shared_ptr<const StreamingOutcome> outcome) {
            m_outcomeModel = model;
            showOutcome(outcome);
        });
}

void StreamingView::cancel()
{
    m_debounce->stop();
    m_bridge->cancel(QString::fromLatin1(kStreamingTag));
    setBusy(false);
    m_note->setText(tr("Cancelled. Compute starts it again."));
}

void StreamingView::setBusy(bool busy)
{
    m_busy = busy;
    m_cancelButton->setEnabled(busy);
    m_computeButton->setEnabled(!busy);
    m_progress->setVisible(busy);
    if (busy) {
        m_progress->setRange(0, 0);
    }
}

void StreamingView::showOutcome(const std::shared_ptr<const StreamingOutcome> &outcome)
{
    setBusy(false);
    m_outcome = outcome;
    m_linePlot = streamingLinePlot(*outcome);
    fillLinePlot(m_plot, m_linePlot, m_style);
    m_plot->setVisible(true);
    m_table->setVisible(true);
    m_plot->replot(QCustomPlot::rpQueuedReplot);

    m_table->setRowCount(int(outcome->runs.size()));
    for (int row = 0; row < int(outcome->runs.size()); ++row) {
        const StreamingResult &r = outcome->runs[size_t(row)];
        const bool dense = r.options.mode == StreamingMode::Dense;
        auto *method = new QTableWidgetItem(methodText(r.options));
        QPixmap swatch(12, 12);
        swatch.fill(seriesColour(row, m_style.theme));
        method->setIcon(QIcon(swatch));
        method->setToolTip(QString::fromStdString(r.options.label()));
        const QString cacheText =
            dense ? tr("all %1").arg(r.tokens) : QStringLiteral("%1 + %2").arg(r.options.sinks).arg(r.options.window);
        const QStringList cells{cacheText, number(r.perplexity, 2), number(perplexityOnceFull(r), 2),
                                number(r.tokensPerSecond, 1)};
        m_table->setItem(row, 0, method);
        for (int c = 0; c < cells.size(); ++c) {
            auto *item = new QTableWidgetItem(cells[c]);
            item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
            m_table->setItem(row, c + 1, item);
        }
    }
    m_note->setText(noteText());
    emit resultShown();
}

QString StreamingView::noteText() const
{
    if (!m_outcome || m_outcome->runs.empty()) {
        return m_note->text();
    }
    const StreamingResult &first = m_outcome->runs.front();
    return tr("%1 tokens decoded one at a time with a KV cache of %2 tokens (StreamingLLM evaluation, Xiao et al. "
              "2024). After position %2 the window forgets the first tokens; sinks + window keeps %3 of them.")
        .arg(first.tokens)
        .arg(m_outcome->cache)
        .arg(m_outcome->runs.back().options.sinks);
}

void StreamingView::setPlotStyle(const PlotStyle &style)
{
    m_style = style;
    if (m_outcome) {
        fillLinePlot(m_plot, m_linePlot, m_style);
        m_plot->replot(QCustomPlot::rpQueuedReplot);
    } else {
        m_plot->setBackground(style.background);
    }
}

QString StreamingView::figureTitle() const
{
    if (!m_outcome || m_outcome->runs.empty()) {
        return tr("NLL against position");
    }
    return tr("NLL against position (%1 tokens, KV cache %2)")
        .arg(m_outcome->runs.front().tokens)
        .arg(m_outcome->cache);
}

void StreamingView::renderFigure(QCPPainter *painter, const QSize &size)
{
    renderLinePlot(painter, size, m_linePlot, m_style);
}

ViewData StreamingView::currentData() const
{
    ViewData d;
    if (!m_outcome) {
        return d;
    }
    d.columns << QStringLiteral("position");
    size_t rows = 0;
    QJsonArray runs;
    for (const StreamingResult &r : m_outcome->runs) {
        d.columns << QString::fromStdString(r.options.label());
        rows = std::max(rows, r.nll.size());
        runs.append(QJsonObject{{"method", QString::fromStdString(r.options.label())},
                                {"sinks", r.options.mode == StreamingMode::Dense ? 0 : r.options.sinks},
                                {"window", r.options.mode == StreamingMode::Dense ? 0 : r.options.window},
                                {"tokens", qint64(r.tokens)},
                                {"ppl", r.perplexity},
                                {"ppl_after_cache", perplexityOnceFull(r)},
                                {"mean_nll", r.meanNll},
                                {"tokens_per_second", r.tokensPerSecond}});
    }
    for (size_t i = 0; i < rows; ++i) {
        QStringList row{QString::number(i + 1)};
        for (const StreamingResult &r : m_outcome->runs) {
            row << (i < r.nll.size() ? QString::number(r.nll[i], 'g', 9) : QString());
        }
        d.rows.append(row);
    }
    d.json = QJsonObject{{"cache", m_outcome->cache}, {"runs", runs}};
    return d;
}

QJsonObject StreamingView::saveState() const
{
    return QJsonObject{{"cache", cache()}};
}

void StreamingView::restoreState(const QJsonObject &state)
{
    setCache(state.value(QStringLiteral("cache")).toInt(kDefaultCache));
}

} // namespace sinkscope::ui
