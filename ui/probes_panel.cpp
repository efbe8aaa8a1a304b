#include "probes_panel.h"

#include "compute_bridge.h"

#include "sinkscope/interventions/mitigation.h"
#include "sinkscope/runtime/paths.h"

#include <qcustomplot.h>

#include <QComboBox>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QJsonArray>
#include <QLabel>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QTableView>
#include <QTextBlock>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>

namespace sinkscope::ui {

namespace {

QString number(double v, int digits)
{
    return std::isfinite(v) ? QString::number(v, 'f', digits) : QStringLiteral("n/a");
}

QString visibleText(const std::string &s)
{
    return QString::fromStdString(s).replace(QLatin1Char('\n'), QStringLiteral("\\n"));
}

} // namespace

void ProbeTableModel::setRuns(std::shared_ptr<const ProbeRun> run, std::shared_ptr<const ProbeRun> baseline)
{
    beginResetModel();
    m_run = std::move(run);
    m_baseline = std::move(baseline);
    rebuild();
    endResetModel();
}

void ProbeTableModel::setCategory(const QString &category)
{
    beginResetModel();
    m_category = category;
    rebuild();
    endResetModel();
}

void ProbeTableModel::rebuild()
{
    m_rows.clear();
    if (!m_run) {
        return;
    }
    const std::string category = m_category.toStdString();
    for (const auto &s : m_run->scores) {
        if (category.empty() || s.category == category) {
            m_rows.push_back(&s);
        }
    }
}

const ProbeScore *ProbeTableModel::scoreAt(int row) const
{
    return row >= 0 && size_t(row) < m_rows.size() ? m_rows[size_t(row)] : nullptr;
}

int ProbeTableModel::rowCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : int(m_rows.size());
}

int ProbeTableModel::columnCount(const QModelIndex &parent) const
{
    return parent.isValid() ? 0 : ColumnCount;
}

QVariant ProbeTableModel::headerData(int section, Qt::Orientation orientation, int role) const
{
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole) {
        return {};
    }
    switch (section) {
    case Id:
        return tr("probe");
    case Category:
        return tr("category");
    case Kind:
        return tr("kind");
    case Pass:
        return tr("pass");
    case FirstProbability:
        return tr("p(answer)");
    case Change:
        return tr("\u0394 vs baseline");
    case LogProbability:
        return tr("log p(answer)");
    case Greedy:
        return tr("greedy answer");
    default:
        return {};
    }
}

QVariant ProbeTableModel::data(const QModelIndex &index, int role) const
{
    const ProbeScore *s = scoreAt(index.row());
    if (!s) {
        return {};
    }
    const ProbeScore *b = m_baseline && m_baseline != m_run ? m_baseline->find(s->id) : nullptr;
    if (role == Qt::DisplayRole) {
        switch (index.column()) {
        case Id:
            return QString::fromStdString(s->id);
        case Category:
            return QString::fromStdString(s->category);
        case Kind:
            return QString::fromLatin1(probeKindName(s->kind)) + (s->counterfactual ? tr(" (cf)") : QString());
        case Pass:
            if (b && b->correct != s->correct) {
                return s->correct ? tr("pass (was fail)") : tr("fail (was pass)");
            }
            return s->correct ? tr("pass") : tr("fail");
        case FirstProbability:
            return number(s->firstTokenProbability, 3);
        case Change:
            return b ? QString::asprintf("%+.3f", s->firstTokenProbability - b->firstTokenProbability) : QString();
        case LogProbability:
            return number(s->answerLogProbability, 2);
        case Greedy:
            return QStringLiteral("'%1'").arg(visibleText(s->greedyText));
        default:
            return {};
        }
    }
    if (role == Qt::ToolTipRole && index.column() == Id) {
        return tr("best spelling '%1' (%2 tokens), rank %3, entropy %4, margin %5")
            .arg(QString::fromStdString(s->bestAnswer))
            .arg(s->answerTokens)
            .arg(s->firstTokenRank)
            .arg(number(s->next.entropy, 2), number(s->next.top1Margin, 3));
    }
    if (role == Qt::ForegroundRole && index.column() == Pass) {
        // Okabe-Ito bluish green / vermilion: distinguishable with colour-blindness.
        return s->correct ? QColor(0x00, 0x9e, 0x73) : QColor(0xd5, 0x5e, 0x00);
    }
    if (role == Qt::TextAlignmentRole && index.column() >= FirstProbability && index.column() <= LogProbability) {
        return int(Qt::AlignRight | Qt::AlignVCenter);
    }
    return {};
}

ViewData ProbeTableModel::viewData() const
{
    ViewData d;
    d.columns = {"id",
                 "category",
                 "kind",
                 "correct",
                 "first_token_probability",
                 "delta_first_token_probability",
                 "answer_logprob",
                 "greedy",
                 "baseline_correct"};
    QJsonArray rows;
    for (const ProbeScore *s : m_rows) {
        const ProbeScore *b = m_baseline ? m_baseline->find(s->id) : nullptr;
        const QString delta =
            b ? QString::number(s->firstTokenProbability - b->firstTokenProbability, 'g', 9) : QString();
        d.rows.append({QString::fromStdString(s->id), QString::fromStdString(s->category),
                       QString::fromLatin1(probeKindName(s->kind)), s->correct ? "1" : "0",
                       QString::number(s->firstTokenProbability, 'g', 9), delta,
                       QString::number(s->answerLogProbability, 'g', 9), QString::fromStdString(s->greedyText),
                       b ? (b->correct ? "1" : "0") : QString()});
    }
    if (m_run) {
        d.json = QJsonObject{{"spec", QString::fromStdString(m_run->spec)},
                             {"accuracy", m_run->overall.accuracy},
                             {"mean_logprob", m_run->overall.meanLogProbability},
                             {"mean_entropy", m_run->overall.meanEntropy}};
    }
    return d;
}

ProbesView::ProbesView(ComputeBridge *bridge, std::function<std::shared_ptr<const Model>()> model,
                       std::function<QString()> currentSpec, QPlainTextEdit *prompt, std::function<void()> runPrompt,
                       QWidget *parent)
    : AnalysisView(parent), m_bridge(bridge), m_model(std::move(model)), m_currentSpec(std::move(currentSpec)),
      m_prompt(prompt), m_runPrompt(std::move(runPrompt))
{
    auto *layout = new QVBoxLayout(this);
    auto *bar = new QHBoxLayout;
    m_setLabel = new QLabel(this);
    auto *open = new QPushButton(tr("Open set\u2026"), this);
    open->setToolTip(tr("A probe-set JSON file (docs/probes.md)"));
    m_runButton = new QPushButton(tr("Run set"), this);
    m_runButton->setToolTip(tr("Run every probe with the mitigation of the Mitigations tab (and the baseline once)"));
    m_cancelButton = new QPushButton(tr("Cancel"), this);
    m_cancelButton->setEnabled(false);
    m_category = new QComboBox(this);
    m_category->setToolTip(tr("Show one category"));
    auto *exportButton = new QPushButton(tr("Export CSV\u2026"), this);
    m_progress = new QProgressBar(this);
    m_progress->setMaximumWidth(180);
    m_progress->setVisible(false);
    bar->addWidget(m_setLabel, 1);
    bar->addWidget(open);
    bar->addWidget(m_category);
    bar->addWidget(m_runButton);
    bar->addWidget(m_cancelButton);
    bar->addWidget(m_progress);
    bar->addWidget(exportButton);
    layout->addLayout(bar);
    m_aggregate = new QLabel(tr("Run the set to see accuracy and answer log-probability."), this);
    m_aggregate->setWordWrap(true);
    m_aggregate->setTextInteractionFlags(Qt::TextSelectableByMouse);
    layout->addWidget(m_aggregate);
    m_table = new ProbeTableModel(this);
    m_view = new QTableView(this);
    m_view->setModel(m_table);
    m_view->setSelectionBehavior(QAbstractItemView::SelectRows);
    m_view->setSelectionMode(QAbstractItemView::SingleSelection);
    m_view->horizontalHeader()->setStretchLastSection(true);
    m_view->verticalHeader()->setVisible(false);
    m_view->setToolTip(tr("Click a probe to load it as the prompt, with the answer marked"));
    layout->addWidget(m_view, 1);

    connect(open, &QPushButton::clicked, this, [this] {
        const QString path =
            QFileDialog::getOpenFileName(this, tr("Open probe set"), m_setPath, tr("Probe sets (*.json)"));
        if (!path.isEmpty()) {
            loadSet(path);
        }
    });
    connect(m_runButton, &QPushButton::clicked, this, &ProbesView::runSet);
    connect(m_cancelButton, &QPushButton::clicked, this, [this] { m_bridge->cancel(QString::fromLatin1(kProbeTag)); });
    connect(exportButton, &QPushButton::clicked, this, &ProbesView::exportCsv);
    connect(m_category, &QComboBox::currentIndexChanged, this, [this](int i) {
        m_table->setCategory(i <= 0 ? QString() : m_category->itemText(i));
        m_aggregate->setText(aggregateText());
    });
    connect(m_view, &QTableView::clicked, this, [this](const QModelIndex &index) {
        if (const ProbeScore *s = m_table->scoreAt(index.row())) {
            loadProbe(*s);
        }
    });
    connect(m_bridge, &ComputeBridge::progress, this,
            [this](const QString &tag, double fraction, const QString &label) {
                if (tag != QLatin1String(kProbeTag)) {
                    return;
                }
                showJobProgress(m_progress, fraction, label);
            });
    connect(m_bridge, &ComputeBridge::failed, this, [this](const QString &tag, const QString &message) {
        if (tag != QLatin1String(kProbeTag)) {
            return;
        }
        m_progress->setVisible(false);
        m_runButton->setEnabled(true);
        m_cancelButton->setEnabled(false);
        m_aggregate->setText(tr("Probe run failed: %1").arg(message));
    });
    loadSet(QString::fromStdString(defaultProbeSetPath()));
}

bool ProbesView::loadSet(const QString &path)
{
    auto set = loadProbeSet(path.toStdString());
    if (!set.ok()) {
        m_setLabel->setText(tr("No probe set"));
        m_aggregate->setText(QString::fromStdString(set.error().message));
        return false;
    }
    m_setPath = path;
    m_set = std::make_shared<const ProbeSet>(std::move(set).value());
    m_baseline.reset();
    m_run.reset();
    m_baselineModel = nullptr;
    m_table->setRuns(nullptr, nullptr);
    m_setLabel->setText(tr("%1: %2 probes")
                            .arg(QString::fromStdString(m_set->name.empty() ? path.toStdString() : m_set->name))
                            .arg(m_set->probes.size()));
    m_setLabel->setToolTip(path);
    refreshCategories();
    m_aggregate->setText(tr("Run the set to see accuracy and answer log-probability."));
    return true;
}

void ProbesView::refreshCategories()
{
    const QSignalBlocker block(m_category);
    m_category->clear();
    m_category->addItem(tr("all categories"));
    if (m_set) {
        for (const auto &c : m_set->categories()) {
            m_category->addItem(QString::fromStdString(c));
        }
    }
    m_table->setCategory({});
}

void ProbesView::runSet()
{
    auto model = m_model ? m_model() : nullptr;
    if (!model || !m_set) {
        m_aggregate->setText(model ? tr("No probe set loaded.") : tr("Load a model first."));
        return;
    }
    std::string specText = m_currentSpec ? m_currentSpec().toStdString() : std::string();
    if (specText.empty() || !parseMitigation(specText).ok()) {
        specText = "none";
    }
    std::shared_ptr<const ProbeRun> baseline = m_baselineModel == model.get() ? m_baseline : nullptr;
    std::shared_ptr<const ProbeSet> set = m_set;
    m_runButton->setEnabled(false);
    m_cancelButton->setEnabled(true);
    m_progress->setVisible(true);
    m_bridge->submit<ProbeOutcome>(
        QString::fromLatin1(kProbeTag), tr("Probes: %1").arg(QString::fromStdString(specText)),
        [model, set, baseline, specText](const CancelToken &cancel,
                                         const ProgressCallback &progress) -> Result<ProbeOutcome> {
            auto spec = parseMitigation(specText);
            if (!spec.ok()) {
                return spec.error();
            }
            ProbeOutcome out;
            out.baseline = baseline;
            const double split = baseline ? 0.0 : (spec->isNone() ? 1.0 : 0.5);
            if (!out.baseline) {
                auto base =
                    runProbes(*model, *set, MitigationSpec{}, {}, &cancel, [&](double f, const std::string &id) {
                        return !progress || progress(f * split, "baseline: " + id);
                    });
                if (!base.ok()) {
                    return base.error();
                }
                out.baseline = std::move(base).value();
            }
            if (spec->isNone()) {
                out.run = out.baseline;
                return out;
            }
            auto run = runProbes(*model, *set, *spec, {}, &cancel, [&](double f, const std::string &id) {
                return !progress || progress(split + f * (1 - split), specText + ": " + id);
            });
            if (!run.ok()) {
                return run.error();
            }
            out.run = std::move(run).value();
            return out;
        },
        [this, model](std::shared_ptr<const ProbeOutcome> outcome) {
            m_baselineModel = model.get();
            onOutcome(outcome);
        });
}

void ProbesView::onOutcome(const std::shared_ptr<const ProbeOutcome> &outcome)
{
    m_progress->setVisible(false);
    m_runButton->setEnabled(true);
    m_cancelButton->setEnabled(false);
    m_baseline = outcome->baseline;
    m_run = outcome->run;
    m_table->setRuns(m_run, m_baseline);
    m_table->setCategory(m_category->currentIndex() <= 0 ? QString() : m_category->currentText());
    m_view->resizeColumnsToContents();
    m_aggregate->setText(aggregateText());
    emit runShown();
}

QString ProbesView::aggregateText() const
{
    if (!m_run) {
        return tr("Run the set to see accuracy and answer log-probability.");
    }
    const QString category = m_category->currentIndex() <= 0 ? QString() : m_category->currentText();
    const ProbeAggregate a = aggregateScores(m_run->scores, category.toStdString());
    QString text = tr("%1%2: accuracy %3 (%4/%5), mean log p(answer) %6, mean entropy %7, %8 s")
                       .arg(QString::fromStdString(m_run->spec),
                            category.isEmpty() ? QString() : QStringLiteral(" [%1]").arg(category))
                       .arg(number(a.accuracy, 3))
                       .arg(a.correct)
                       .arg(a.count)
                       .arg(number(a.meanLogProbability, 3), number(a.meanEntropy, 3), number(m_run->seconds, 1));
    if (m_baseline && m_baseline != m_run) {
        const ProbeAggregate b = aggregateScores(m_baseline->scores, category.toStdString());
        int rightToWrong = 0, wrongToRight = 0;
        for (const auto &s : m_run->scores) {
            const ProbeScore *o = m_baseline->find(s.id);
            if (o && (category.isEmpty() || s.category == category.toStdString()) && o->correct != s.correct) {
                (o->correct ? rightToWrong : wrongToRight) += 1;
            }
        }
        text +=
            tr("\nbaseline: accuracy %1, mean log p(answer) %2; flipped right \u2192 wrong %3, wrong \u2192 right %4")
                .arg(number(b.accuracy, 3), number(b.meanLogProbability, 3))
                .arg(rightToWrong)
                .arg(wrongToRight);
    }
    return text;
}

void ProbesView::loadProbe(const ProbeScore &score)
{
    if (!m_set || !m_prompt) {
        return;
    }
    const auto it =
        std::find_if(m_set->probes.begin(), m_set->probes.end(), [&](const Probe &p) { return p.id == score.id; });
    if (it == m_set->probes.end()) {
        return;
    }
    const QString prompt = QString::fromStdString(probeText(*it).full());
    const QString answer =
        QString::fromStdString(answerContinuation(score.bestAnswer.empty() ? it->answers.front() : score.bestAnswer));
    m_prompt->setPlainText(prompt + answer);
    // Mark the answer: the tokens the scores are about.
    QTextEdit::ExtraSelection mark;
    mark.cursor = QTextCursor(m_prompt->document());
    mark.cursor.setPosition(int(prompt.size()));
    mark.cursor.setPosition(int(prompt.size() + answer.size()), QTextCursor::KeepAnchor);
    mark.format.setBackground(QColor(0xe6, 0x9f, 0x00, 90)); // Okabe-Ito orange, translucent
    mark.format.setFontUnderline(true);
    m_prompt->setExtraSelections({mark});
    if (m_runPrompt) {
        m_runPrompt();
    }
}

void ProbesView::exportCsv()
{
    const QString path =
        QFileDialog::getSaveFileName(this, tr("Export probe table"), QStringLiteral("probes.csv"), tr("CSV (*.csv)"));
    if (path.isEmpty()) {
        return;
    }
    QString error;
    if (!writeViewData(path, currentData(), &error)) {
        m_aggregate->setText(error);
    }
}

void ProbesView::setPlotStyle(const PlotStyle &style)
{
    m_style = style;
}

QString ProbesView::figureTitle() const
{
    return m_run ? tr("Probe accuracy by category: %1 vs baseline").arg(QString::fromStdString(m_run->spec))
                 : tr("Probes");
}

ViewData ProbesView::currentData() const
{
    return m_table->viewData();
}

void ProbesView::renderFigure(QCPPainter *painter, const QSize &size)
{
    // Grouped bars: accuracy per category (and overall), baseline beside the mitigated run.
    painter->save();
    painter->fillRect(QRect(QPoint(0, 0), size), m_style.background.isValid() ? m_style.background : QColor(Qt::white));
    if (!m_run) {
        painter->restore();
        return;
    }
    const QColor fg = m_style.foreground.isValid() ? m_style.foreground : QColor(Qt::black);
    painter->setPen(fg);
    painter->setFont(m_style.titleFont);
    const int top = 40, bottom = 60, left = 50, right = 20;
    painter->drawText(QRect(0, 4, size.width(), top - 8), Qt::AlignCenter, figureTitle());
    std::vector<std::pair<QString, std::pair<double, double>>> groups;
    auto add = [&](const QString &name, const std::string &category) {
        const double b = m_baseline ? aggregateScores(m_baseline->scores, category).accuracy : std::nan("");
        groups.push_back({name, {b, aggregateScores(m_run->scores, category).accuracy}});
    };
    add(tr("all"), {});
    for (const auto &c : m_run->byCategory) {
        add(QString::fromStdString(c.category), c.category);
    }
    const int w = size.width() - left - right, h = size.height() - top - bottom;
    painter->setFont(m_style.font);
    // QCPPainter overrides drawLine(QLineF) only, hiding QPainter's other overloads.
    painter->drawLine(QLineF(left, top + h, left + w, top + h));
    painter->drawLine(QLineF(left, top, left, top + h));
    for (int tick = 0; tick <= 4; ++tick) {
        const int y = top + h - tick * h / 4;
        painter->drawText(QRect(0, y - 8, left - 6, 16), Qt::AlignRight | Qt::AlignVCenter,
                          QString::number(tick * 0.25, 'f', 2));
    }
    const double slot = double(w) / double(groups.size());
    const QColor baseColour(0x56, 0xb4, 0xe9), runColour(0xd5, 0x5e, 0x00); // Okabe-Ito sky blue / vermilion
    for (size_t i = 0; i < groups.size(); ++i) {
        const double x0 = left + slot * double(i) + slot * 0.15, bw = slot * 0.35;
        const auto [b, r] = groups[i].second;
        if (std::isfinite(b)) {
            painter->fillRect(QRectF(x0, top + h - b * h, bw, b * h), baseColour);
        }
        painter->fillRect(QRectF(x0 + bw, top + h - r * h, bw, r * h), runColour);
        painter->drawText(QRectF(left + slot * double(i), top + h + 4, slot, 18), Qt::AlignCenter, groups[i].first);
    }
    painter->fillRect(QRect(left, size.height() - 24, 12, 12), baseColour);
    painter->drawText(QRect(left + 16, size.height() - 28, 200, 20), Qt::AlignLeft | Qt::AlignVCenter,
                      tr("baseline (none)"));
    painter->fillRect(QRect(left + 220, size.height() - 24, 12, 12), runColour);
    painter->drawText(QRect(left + 236, size.height() - 28, 300, 20), Qt::AlignLeft | Qt::AlignVCenter,
                      QString::fromStdString(m_run->spec));
    painter->restore();
}

QJsonObject ProbesView::saveState() const
{
    return QJsonObject{{"set", m_setPath},
                       {"category", m_category->currentIndex() <= 0 ? QString() : m_category->currentText()}};
}

void ProbesView::restoreState(const QJsonObject &state)
{
    const QString set = state.value("set").toString();
    if (!set.isEmpty() && set != m_setPath) {
        loadSet(set);
    }
    const int i = m_category->findText(state.value("category").toString());
    m_category->setCurrentIndex(i > 0 ? i : 0);
}

} // namespace sinkscope::ui
