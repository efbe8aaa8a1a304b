#include "mitigation_view.h"

#include "compute_bridge.h"
#include "heatmap_plot.h"
#include "token_chips.h"

#include "sinkscope/interventions/mitigation.h"
#include "sinkscope/tokenizer/tokenizer.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QJsonArray>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QScrollArea>
#include <QSignalBlocker>
#include <QSpinBox>
#include <QSplitter>
#include <QTableWidget>
#include <QToolTip>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>
#include <limits>

namespace sinkscope::ui {

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

QString tokenDisplay(const Model *model, int64_t id)
{
    if (model && model->tokenizer()) {
        return displayTokenText(model->tokenizer()->tokenText(id));
    }
    return QStringLiteral("#%1").arg(id);
}

QString continuationDisplay(const Model *model, const std::vector<int64_t> &ids)
{
    if (model && model->tokenizer()) {
        return QString::fromStdString(model->tokenizer()->decode(ids));
    }
    QStringList parts;
    for (int64_t id : ids) {
        parts << QString::number(id);
    }
    return parts.join(QLatin1Char(' '));
}

bool sameWindow(const TokenWindow &a, const TokenWindow &b)
{
    return a.firstQuery == b.firstQuery && a.lastQuery == b.lastQuery && a.firstKey == b.firstKey &&
           a.lastKey == b.lastKey;
}

QVector<QString> indexLabels(int64_t n)
{
    QVector<QString> labels;
    for (int64_t i = 0; i < n; ++i) {
        labels << QString::number(i);
    }
    return labels;
}

} // namespace

QString mitigationStepText(const MitigationMethodInfo &method, const std::vector<double> &values, const QString &heads)
{
    QStringList params;
    for (size_t i = 0; i < method.params.size() && i < values.size(); ++i) {
        const auto &p = method.params[i];
        const QString value = !p.choices.empty() ? QString::fromStdString(p.valueText(values[i]))
                              : p.integer        ? QString::number(std::llround(values[i]))
                                                 : QString::number(values[i], 'g', 6);
        params << QStringLiteral("%1=%2").arg(QString::fromStdString(p.name), value);
    }
    if (method.takesHeads && !heads.trimmed().isEmpty()) {
        params << QStringLiteral("heads=%1").arg(heads.trimmed());
    }
    QString text = QString::fromStdString(method.name);
    if (!params.isEmpty()) {
        text += QLatin1Char(':') + params.join(QLatin1Char(','));
    }
    return text;
}

QString headScopeText(const std::vector<std::vector<bool>> &chosen)
{
    QStringList items;
    size_t total = 0, on = 0;
    for (size_t l = 0; l < chosen.size(); ++l) {
        const auto &row = chosen[l];
        const size_t count = size_t(std::count(row.begin(), row.end(), true));
        total += row.size();
        on += count;
        if (count == 0) {
            continue;
        }
        if (count == row.size()) {
            items << QStringLiteral("L%1").arg(l);
            continue;
        }
        for (size_t h = 0; h < row.size(); ++h) {
            if (row[h]) {
                items << QStringLiteral("L%1H%2").arg(l).arg(h);
            }
        }
    }
    if (on == 0 || on == total) {
        return {};
    }
    return items.join(QLatin1Char('+'));
}

HeadScopeDialog::HeadScopeDialog(int64_t layers, int64_t heads, const QString &scope, QWidget *parent) : QDialog(parent)
{
    setWindowTitle(tr("Choose heads"));
    auto *layout = new QVBoxLayout(this);
    layout->addWidget(new QLabel(tr("Heads the mitigation acts on (none or all: the method's default scope)."), this));
    auto *scroll = new QScrollArea(this);
    auto *host = new QWidget(scroll);
    auto *grid = new QGridLayout(host);
    grid->setSpacing(2);

    // Pre-select from the scope text through the core's parser, so every scope form reads back.
    HeadScope parsed;
    bool everything = true;
    if (!scope.trimmed().isEmpty()) {
        auto spec = parseMitigation("head-zero:heads=" + scope.trimmed().toStdString());
        if (spec.ok() && !spec->steps.empty()) {
            parsed = spec->steps.front().scope;
            everything = false;
        }
    }
    m_boxes.assign(size_t(layers), {});
    for (int64_t h = 0; h < heads; ++h) {
        auto *button = new QPushButton(QStringLiteral("H%1").arg(h), host);
        button->setToolTip(tr("Toggle head %1 in every layer").arg(h));
        connect(button, &QPushButton::clicked, this, [this, h] {
            bool all = true;
            for (auto &row : m_boxes) {
                all = all && row[size_t(h)]->isChecked();
            }
            for (auto &row : m_boxes) {
                row[size_t(h)]->setChecked(!all);
            }
        });
        grid->addWidget(button, 0, int(h) + 1);
    }
    for (int64_t l = 0; l < layers; ++l) {
        auto *button = new QPushButton(QStringLiteral("L%1").arg(l), host);
        button->setToolTip(tr("Toggle every head of layer %1").arg(l));
        grid->addWidget(button, int(l) + 1, 0);
        for (int64_t h = 0; h < heads; ++h) {
            auto *box = new QCheckBox(host);
            box->setChecked(!everything && parsed.contains(int(l), int(h)));
            box->setToolTip(QStringLiteral("L%1H%2").arg(l).arg(h));
            grid->addWidget(box, int(l) + 1, int(h) + 1, Qt::AlignCenter);
            m_boxes[size_t(l)].push_back(box);
        }
        connect(button, &QPushButton::clicked, this, [this, l] {
            auto &row = m_boxes[size_t(l)];
            const bool all = std::all_of(row.begin(), row.end(), [](QCheckBox *b) { return b->isChecked(); });
            for (QCheckBox *b : row) {
                b->setChecked(!all);
            }
        });
    }
    scroll->setWidget(host);
    scroll->setWidgetResizable(true);
    layout->addWidget(scroll, 1);
    auto *buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
    auto *clear = buttons->addButton(tr("Clear"), QDialogButtonBox::ResetRole);
    connect(clear, &QPushButton::clicked, this, [this] {
        for (auto &row : m_boxes) {
            for (QCheckBox *b : row) {
                b->setChecked(false);
            }
        }
    });
    connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    layout->addWidget(buttons);
    resize(560, 640);
}

QString HeadScopeDialog::scope() const
{
    std::vector<std::vector<bool>> chosen;
    for (const auto &row : m_boxes) {
        std::vector<bool> r;
        for (const QCheckBox *b : row) {
            r.push_back(b->isChecked());
        }
        chosen.push_back(std::move(r));
    }
    return headScopeText(chosen);
}

MitigationView::MitigationView(ComputeBridge *bridge, ModelGetter model, QWidget *parent)
    : AnalysisView(parent), m_controller(new MitigationController(bridge, std::move(model), this))
{
    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(4, 4, 4, 4);
    layout->addWidget(buildBuilder());
    auto *headRow = new QHBoxLayout;
    headRow->addWidget(new QLabel(tr("Layer"), this));
    m_layerBox = new QSpinBox(this);
    headRow->addWidget(m_layerBox);
    headRow->addWidget(new QLabel(tr("Head"), this));
    m_headBox = new QSpinBox(this);
    headRow->addWidget(m_headBox);
    m_info = new QLabel(this);
    m_info->setWordWrap(true);
    headRow->addWidget(m_info, 1);
    layout->addLayout(headRow);

    auto *vertical = new QSplitter(Qt::Vertical, this);
    auto *bottom = new QSplitter(Qt::Horizontal, vertical);
    bottom->addWidget(buildHeadPanel(bottom));
    bottom->addWidget(buildOutputs(bottom));
    bottom->setStretchFactor(0, 1);
    bottom->setStretchFactor(1, 1);
    vertical->addWidget(buildMaps(vertical));
    vertical->addWidget(bottom);
    vertical->setStretchFactor(0, 3);
    vertical->setStretchFactor(1, 2);
    vertical->setSizes({600, 360}); // the maps get the larger share at any window height
    layout->addWidget(vertical, 1);

    connectMaps();
    connectHeadPanel();
    connectController();
    setPlotStyle(plotStyle(Theme::Light, false));
    validateSpec();
    refresh();
}

// Baseline, mitigated and difference maps of one head, side by side.
QSplitter *MitigationView::buildMaps(QWidget *parent)
{
    auto *maps = new QSplitter(Qt::Horizontal, parent);
    m_basePlot = new HeatmapPlot(maps);
    m_mitPlot = new HeatmapPlot(maps);
    m_diffPlot = new HeatmapPlot(maps);
    for (HeatmapPlot *p : {m_basePlot, m_mitPlot, m_diffPlot}) {
        p->setMinimumSize(200, 200);
        maps->addWidget(p);
    }

    return maps;
}

// The per-head map (attention change or the dormancy test) with its controls.
QWidget *MitigationView::buildHeadPanel(QWidget *parent)
{
    auto *headHost = new QWidget(parent);
    auto *headLayout = new QVBoxLayout(headHost);
    headLayout->setContentsMargins(0, 0, 0, 0);
    auto *headControls = new QHBoxLayout;
    m_headQuantityBox = new QComboBox(headHost);
    m_headQuantityBox->addItems({tr("Attention change per head"), tr("Dormancy test: loss change per head")});
    m_headQuantityBox->setToolTip(tr("Attention change: mean total variation over queries between the mitigated and "
                                     "the baseline attention. Dormancy: prompt NLL change when the head is zeroed "
                                     "or moved to the first token (I8)."));
    headControls->addWidget(m_headQuantityBox, 1);
    m_dormancyMethodBox = new QComboBox(headHost);
    m_dormancyMethodBox->addItems({QStringLiteral("head-zero"), QStringLiteral("move-to-bos")});
    headControls->addWidget(m_dormancyMethodBox);
    m_dormancyButton = new QPushButton(tr("Run dormancy test"), headHost);
    m_dormancyButton->setToolTip(tr("One forward pass per head (layers x heads passes) on the current prompt"));
    headControls->addWidget(m_dormancyButton);
    headLayout->addLayout(headControls);
    m_headPlot = new HeatmapPlot(headHost);
    m_headPlot->setMinimumSize(220, 160);
    headLayout->addWidget(m_headPlot, 1);

    return headHost;
}

// Next-token top-k on both sides, the summary line and the greedy continuations.
QWidget *MitigationView::buildOutputs(QWidget *parent)
{
    auto *outHost = new QWidget(parent);
    auto *outLayout = new QVBoxLayout(outHost);
    outLayout->setContentsMargins(0, 0, 0, 0);
    m_summary = new QLabel(outHost);
    m_summary->setWordWrap(true);
    m_summary->setTextInteractionFlags(Qt::TextSelectableByMouse);
    outLayout->addWidget(m_summary);
    m_table = new QTableWidget(0, 4, outHost);
    m_table->setHorizontalHeaderLabels({tr("baseline"), tr("p"), tr("mitigated"), tr("p")});
    m_table->verticalHeader()->setVisible(true);
    m_table->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
    m_table->setEditTriggers(QAbstractItemView::NoEditTriggers);
    outLayout->addWidget(m_table, 1);
    auto *contRow = new QHBoxLayout;
    m_baseContinuation = new QPlainTextEdit(outHost);
    m_mitContinuation = new QPlainTextEdit(outHost);
    for (QPlainTextEdit *e : {m_baseContinuation, m_mitContinuation}) {
        e->setReadOnly(true);
        e->setMaximumHeight(64);
        contRow->addWidget(e);
    }
    m_baseContinuation->setPlaceholderText(tr("Greedy continuation, baseline"));
    m_mitContinuation->setPlaceholderText(tr("Greedy continuation, mitigated"));
    outLayout->addLayout(contRow);
    return outHost;
}

// The layer and head pickers, and the three maps: zoom and pan together, hover reads all three.
void MitigationView::connectMaps()
{
    connect(m_layerBox, &QSpinBox::valueChanged, this, [this](int v) {
        if (!m_syncing) {
            showHead(v, m_head);
        }
    });
    connect(m_headBox, &QSpinBox::valueChanged, this, [this](int v) {
        if (!m_syncing) {
            showHead(m_layer, v);
        }
    });
    // The three maps zoom and pan together.
    for (HeatmapPlot *p : {m_basePlot, m_mitPlot, m_diffPlot}) {
        connect(p, &HeatmapPlot::visibleWindowChanged, this, [this, p] {
            if (m_syncing) {
                return;
            }
            m_syncing = true;
            const TokenWindow w = p->visibleWindow();
            for (HeatmapPlot *other : {m_basePlot, m_mitPlot, m_diffPlot}) {
                if (other != p && !sameWindow(other->visibleWindow(), w)) {
                    other->setVisibleWindow(w);
                }
            }
            m_syncing = false;
            refreshMaps();
        });
        connect(p, &HeatmapPlot::hovered, this, &MitigationView::showCellTip);
        connect(p, &HeatmapPlot::left, this, [] { QToolTip::hideText(); });
    }
}

void MitigationView::showCellTip(int64_t key, int64_t query, const QPoint &pos)
{
    if (!baseline() || !m_snapshot) {
        return;
    }
    const auto &attention = baseline()->forward.attention;
    if (size_t(m_layer) >= attention.size() || attention[size_t(m_layer)].empty()) {
        return;
    }
    const FloatArray &a = attention[size_t(m_layer)];
    const int64_t t = a.shape[1];
    if (key < 0 || query < 0 || key >= t || query >= t || key > query) {
        QToolTip::hideText();
        return;
    }
    const size_t i = size_t((m_head * t + query) * t + key);
    const double base = a.data[i];
    double diff = 0;
    const auto effects = shownEffects();
    if (effects && size_t(m_layer) < effects->attentionDifference.size()) {
        diff = effects->attentionDifference[size_t(m_layer)].data[i];
    }
    const auto &tok = m_snapshot->tokens;
    const QString q = size_t(query) < tok.size() ? displayTokenText(tok[size_t(query)].text) : QString();
    const QString k = size_t(key) < tok.size() ? displayTokenText(tok[size_t(key)].text) : QString();
    QToolTip::showText(pos, tr("query %1 \u201c%2\u201d \u2192 key %3 \u201c%4\u201d\nbaseline %5\nmitigated "
                               "%6\ndifference %7")
                                .arg(query)
                                .arg(abbreviate(q, 24))
                                .arg(key)
                                .arg(abbreviate(k, 24))
                                .arg(base, 0, 'f', 4)
                                .arg(base + diff, 0, 'f', 4)
                                .arg(diff, 0, 'f', 4));
}

void MitigationView::connectHeadPanel()
{
    connect(m_headPlot, &HeatmapPlot::clicked, this, [this](int64_t head, int64_t layer) {
        showHead(layer, head);
        emit headActivated(layer, head);
    });
    connect(m_headPlot, &HeatmapPlot::hovered, this, [this](int64_t head, int64_t layer, const QPoint &pos) {
        const bool dormancy = m_headQuantityBox->currentIndex() == 1;
        const auto effects = shownEffects();
        const FloatArray *values =
            dormancy ? &m_controller->dormancy() : (effects ? &effects->headDifference : nullptr);
        if (!values || values->shape.size() != 2 || layer >= values->shape[0] || head >= values->shape[1]) {
            return;
        }
        const double v = values->data[size_t(layer * values->shape[1] + head)];
        QToolTip::showText(
            pos, dormancy ? tr("layer %1, head %2\n\u0394 loss %3 nats (%4)")
                                .arg(layer)
                                .arg(head)
                                .arg(v, 0, 'f', 4)
                                .arg(m_controller->dormancyMethod())
                          : tr("layer %1, head %2\nattention change %3").arg(layer).arg(head).arg(v, 0, 'f', 4));
    });
    connect(m_headQuantityBox, &QComboBox::currentIndexChanged, this, [this] { refreshHeadPlot(); });
    connect(m_dormancyButton, &QPushButton::clicked, this, [this] {
        runDormancy(m_dormancyMethodBox->currentIndex() == 0 ? MitigationMethod::HeadZero
                                                             : MitigationMethod::MoveToBos);
    });
}

// What the controller reports, drawn; the view's own signals follow the redraw.
void MitigationView::connectController()
{
    connect(m_controller, &MitigationController::effectsShown, this, [this] {
        refresh();
        emit effectsShown();
    });
    connect(m_controller, &MitigationController::continuationShown, this, [this] {
        refreshOutputs();
        emit continuationShown();
    });
    connect(m_controller, &MitigationController::dormancyShown, this, [this] { onDormancy(); });
    connect(m_controller, &MitigationController::status, m_info, &QLabel::setText);
    connect(m_controller, &MitigationController::idle, this, [this] { refreshMaps(); }); // drop "Running"
}

QWidget *MitigationView::buildBuilder()
{
    auto *host = new QWidget(this);
    auto *grid = new QGridLayout(host);
    grid->setContentsMargins(0, 0, 0, 0);

    m_methodBox = new QComboBox(host);
    for (const auto &m : mitigationMethods()) {
        m_methodBox->addItem(
            QStringLiteral("%1 (%2)").arg(QString::fromStdString(m.title), QString::fromStdString(m.code)),
            QString::fromStdString(m.name));
        m_methodBox->setItemData(m_methodBox->count() - 1, QString::fromStdString(m.description), Qt::ToolTipRole);
    }
    m_paramHost = new QWidget(host);
    auto *paramLayout = new QHBoxLayout(m_paramHost);
    paramLayout->setContentsMargins(0, 0, 0, 0);
    m_headsEdit = new QLineEdit(host);
    m_headsEdit->setPlaceholderText(tr("all heads"));
    m_headsEdit->setToolTip(tr("Scope: L2H3 (layer 2, head 3), L5 (every head of layer 5), L2-5H0-3, H3; joined by +"));
    auto *pick = new QPushButton(tr("Pick\u2026"), host);
    pick->setToolTip(tr("Choose heads in a layer \u00d7 head grid"));
    auto *add = new QPushButton(tr("Add"), host);
    add->setToolTip(tr("Append this method to the spec (methods compose with +)"));
    auto *clear = new QPushButton(tr("Clear"), host);
    clear->setToolTip(tr("Back to the baseline spec \u201cnone\u201d"));

    grid->addWidget(new QLabel(tr("Method"), host), 0, 0);
    grid->addWidget(m_methodBox, 0, 1);
    grid->addWidget(m_paramHost, 0, 2);
    grid->addWidget(new QLabel(tr("Heads"), host), 0, 3);
    grid->addWidget(m_headsEdit, 0, 4);
    grid->addWidget(pick, 0, 5);
    grid->addWidget(add, 0, 6);

    m_specEdit = new QLineEdit(host);
    m_specEdit->setText(QStringLiteral("none"));
    m_specEdit->setToolTip(tr("Mitigation spec, as in the CLI and session files, e.g. "
                              "act:beta=0.4,thres=0.1,heads=L2H3+L5H0+mask-sink"));
    m_specStatus = new QLabel(host);
    m_specStatus->setWordWrap(true);
    m_applyButton = new QPushButton(tr("Apply"), host);
    m_applyButton->setToolTip(tr("Rerun the prompt with this mitigation (compared against the baseline)"));
    m_enabledBox = new QCheckBox(tr("Mitigation on"), host);
    m_enabledBox->setChecked(true);
    m_enabledBox->setToolTip(tr("Off: show the cached baseline; on: the mitigated run (cached per spec)"));
    grid->addWidget(new QLabel(tr("Spec"), host), 1, 0);
    grid->addWidget(m_specEdit, 1, 1, 1, 3);
    grid->addWidget(clear, 1, 4);
    grid->addWidget(m_applyButton, 1, 5);
    grid->addWidget(m_enabledBox, 1, 6);
    grid->addWidget(m_specStatus, 2, 1, 1, 6);
    grid->setColumnStretch(2, 2);
    grid->setColumnStretch(4, 1);

    connect(m_methodBox, &QComboBox::currentIndexChanged, this, [this] { rebuildParamFields(); });
    connect(pick, &QPushButton::clicked, this, [this] { pickHeads(); });
    connect(add, &QPushButton::clicked, this, [this] { addStep(); });
    connect(clear, &QPushButton::clicked, this, [this] { setSpec(QStringLiteral("none")); });
    connect(m_specEdit, &QLineEdit::textChanged, this, [this] { validateSpec(); });
    connect(m_specEdit, &QLineEdit::returnPressed, this, [this] { apply(); });
    connect(m_applyButton, &QPushButton::clicked, this, [this] { apply(); });
    connect(m_enabledBox, &QCheckBox::toggled, this, [this](bool on) { setMitigationEnabled(on); });
    rebuildParamFields();
    return host;
}

void MitigationView::rebuildParamFields()
{
    auto *layout = static_cast<QHBoxLayout *>(m_paramHost->layout());
    while (QLayoutItem *item = layout->takeAt(0)) {
        delete item->widget();
        delete item;
    }
    m_paramFields.clear();
    const int index = std::max(0, m_methodBox->currentIndex());
    const auto &method = mitigationMethods()[size_t(index)];
    for (const auto &p : method.params) {
        const QString tip = QString::fromStdString(p.description);
        auto *label = new QLabel(QString::fromStdString(p.name), m_paramHost);
        label->setToolTip(tip);
        layout->addWidget(label);
        QWidget *field = nullptr;
        if (!p.choices.empty()) {
            auto *box = new QComboBox(m_paramHost);
            for (const auto &choice : p.choices) {
                box->addItem(QString::fromStdString(choice));
            }
            box->setCurrentIndex(int(std::llround(p.example)));
            field = box;
        } else {
            auto *spin = new QDoubleSpinBox(m_paramHost);
            spin->setDecimals(p.decimals);
            spin->setRange(p.min, p.max);
            spin->setSingleStep(p.integer ? 1.0 : std::pow(10.0, -std::min(p.decimals, 2)));
            spin->setValue(p.example);
            field = spin;
        }
        field->setToolTip(tip);
        layout->addWidget(field);
        m_paramFields.push_back(field);
    }
    layout->addStretch(1);
    m_headsEdit->setEnabled(method.takesHeads);
    m_methodBox->setToolTip(QString::fromStdString(method.description));
}

void MitigationView::addStep()
{
    const auto &method = mitigationMethods()[size_t(std::max(0, m_methodBox->currentIndex()))];
    std::vector<double> values;
    for (const QWidget *f : m_paramFields) {
        const auto *box = qobject_cast<const QComboBox *>(f);
        values.push_back(box ? double(box->currentIndex()) : static_cast<const QDoubleSpinBox *>(f)->value());
    }
    const QString step = mitigationStepText(method, values, m_headsEdit->text());
    const QString current = m_specEdit->text().trimmed();
    setSpec(current.isEmpty() || current == QLatin1String("none") ? step : current + QLatin1Char('+') + step);
}

void MitigationView::pickHeads()
{
    auto model = m_controller->model();
    if (!model || model->config().layers <= 0 || model->config().heads <= 0) {
        m_specStatus->setText(tr("Load a model first: the grid needs its layers and heads."));
        return;
    }
    HeadScopeDialog dialog(model->config().layers, model->config().heads, m_headsEdit->text(), this);
    if (dialog.exec() == QDialog::Accepted) {
        m_headsEdit->setText(dialog.scope());
    }
}

void MitigationView::setSpec(const QString &spec)
{
    m_specEdit->setText(spec);
    validateSpec();
}

QString MitigationView::spec() const
{
    return m_controller->spec();
}

QString MitigationView::canonicalSpec() const
{
    return m_controller->canonicalSpec();
}

QString MitigationView::specError() const
{
    return m_controller->specError();
}

void MitigationView::validateSpec()
{
    m_controller->setSpec(m_specEdit->text());
    const QString error = specError();
    QPalette p = m_specEdit->palette();
    if (error.isEmpty()) {
        m_specStatus->setText(tr("Canonical form: %1").arg(canonicalSpec()));
        m_specEdit->setPalette(QPalette());
    } else {
        m_specStatus->setText(tr("\u26a0 %1").arg(error));
        p.setColor(QPalette::Text, QColor(0xb2, 0x18, 0x2b));
        m_specEdit->setPalette(p);
    }
    m_applyButton->setEnabled(error.isEmpty());
}

void MitigationView::apply()
{
    m_controller->apply();
}

void MitigationView::runDormancy(MitigationMethod method)
{
    m_controller->runDormancy(method);
}

void MitigationView::onDormancy()
{
    m_headQuantityBox->setCurrentIndex(1);
    refreshHeadPlot();
    emit dormancyShown();
}

void MitigationView::setMitigationEnabled(bool on)
{
    if (m_enabledBox->isChecked() != on) {
        m_enabledBox->setChecked(on); // re-enters through toggled()
        return;
    }
    m_controller->setEnabled(on);
}

bool MitigationView::mitigationEnabled() const
{
    return m_controller->enabled();
}

void MitigationView::showHead(int64_t layer, int64_t head)
{
    const int64_t layers = m_snapshot ? m_snapshot->layers : 0, heads = m_snapshot ? m_snapshot->heads : 0;
    m_layer = std::clamp<int64_t>(layer, 0, std::max<int64_t>(0, layers - 1));
    m_head = std::clamp<int64_t>(head, 0, std::max<int64_t>(0, heads - 1));
    m_syncing = true;
    m_layerBox->setValue(int(m_layer));
    m_headBox->setValue(int(m_head));
    m_syncing = false;
    refreshMaps();
}

void MitigationView::setSnapshot(std::shared_ptr<const RunSnapshot> snapshot)
{
    m_snapshot = std::move(snapshot);
    m_syncing = true;
    m_layerBox->setRange(0, m_snapshot ? int(std::max<int64_t>(0, m_snapshot->layers - 1)) : 0);
    m_headBox->setRange(0, m_snapshot ? int(std::max<int64_t>(0, m_snapshot->heads - 1)) : 0);
    m_syncing = false;
    validateSpec(); // the model may have changed (head ranges, contract version)
    std::vector<int64_t> ids;
    if (m_snapshot) {
        for (const TokenInfo &t : m_snapshot->tokens) {
            ids.push_back(t.id);
        }
    }
    m_controller->setTokens(std::move(ids));
    if (m_controller->stale() && isVisible() && specError().isEmpty()) {
        apply();
        return;
    }
    showHead(m_layer, m_head);
    refresh();
}

void MitigationView::showEvent(QShowEvent *event)
{
    AnalysisView::showEvent(event);
    if (m_controller->stale() && specError().isEmpty()) {
        apply();
    }
}

void MitigationView::setPlotStyle(const PlotStyle &style)
{
    m_style = style;
    for (HeatmapPlot *p : {m_basePlot, m_mitPlot, m_diffPlot, m_headPlot}) {
        p->setStyle(style);
    }
    setColourMap(m_map);
}

void MitigationView::setColourMap(ColourMap map)
{
    m_map = map;
    m_basePlot->setColourMap(map);
    m_mitPlot->setColourMap(map);
    m_diffPlot->setColourMap(map);
    m_diffPlot->colourMap()->setGradient(divergingGradient());
    m_headPlot->setColourMap(map);
    refreshHeadPlot();
}

void MitigationView::refresh()
{
    refreshMaps();
    refreshHeadPlot();
    refreshOutputs();
}

void MitigationView::fillMaps(HeatmapPlot *basePlot, HeatmapPlot *mitPlot, HeatmapPlot *diffPlot,
                              int64_t maxCells) const
{
    const auto &attention = baseline()->forward.attention;
    const FloatArray &a = attention[size_t(m_layer)];
    const HeadMatrix matrix = headMatrix(a, m_head);
    TransformedHead base = transformHead(matrix, ScaleTransform::Raw);
    TransformedHead mitigated = base, difference = base;
    const auto effects = shownEffects();
    const float *d = nullptr;
    if (effects && size_t(m_layer) < effects->attentionDifference.size()) {
        d = effects->attentionDifference[size_t(m_layer)].data.data() + size_t(m_head * matrix.rows * matrix.cols);
    }
    for (size_t i = 0; i < base.values.size(); ++i) {
        if (std::isnan(base.values[i])) {
            continue;
        }
        const float delta = d ? d[i] : 0.0f;
        mitigated.values[i] = base.values[i] + delta;
        difference.values[i] = delta;
    }
    ValueRange range = colourRange(base.values, ColourScale{});
    const ValueRange r2 = colourRange(mitigated.values, ColourScale{});
    range.lower = std::min(range.lower, r2.lower);
    range.upper = std::max(range.upper, r2.upper);
    const ValueRange diffRange = symmetricRange(difference.values);

    const QString spec = effects ? QString::fromStdString(effects->spec) : tr("mitigation off");
    QVector<QString> labels;
    for (const TokenInfo &t : m_snapshot->tokens) {
        labels << displayTokenText(t.text);
    }
    const int64_t t = matrix.rows;
    for (HeatmapPlot *p : {basePlot, mitPlot, diffPlot}) {
        p->setExtent(t, t); // resets the view when the prompt length changed
    }
    const TokenWindow window = basePlot->visibleWindow();
    struct Panel {
        HeatmapPlot *plot;
        const TransformedHead *head;
        QString title;
        QString bar;
        ValueRange range;
        Pooling pooling;
    };
    const Panel panels[] = {
        {basePlot, &base, tr("key \u2014 baseline"), tr("attention"), range, Pooling::Max},
        {mitPlot, &mitigated, tr("key \u2014 %1").arg(abbreviate(spec, 48)), tr("attention"), range, Pooling::Max},
        {diffPlot, &difference, tr("key \u2014 mitigated \u2212 baseline"), tr("\u0394 attention"), diffRange,
         Pooling::Mean},
    };
    for (const Panel &p : panels) {
        p.plot->setAxes(labels, labels, p.title, tr("query"));
        p.plot->setColourBarLabel(p.bar);
        if (!sameWindow(p.plot->visibleWindow(), window)) {
            p.plot->setVisibleWindow(window);
        }
        const QSize budget = maxCells > 0 ? QSize(int(maxCells), int(maxCells)) : p.plot->pixelBudget();
        const PooledGrid grid =
            poolWindow(*p.head, p.plot->visibleWindow(), budget.width(), budget.height(), p.pooling);
        p.plot->setGrid(grid, p.range, ScaleMapping::Linear);
    }
    diffPlot->colourMap()->setGradient(divergingGradient());
}

void MitigationView::refreshMaps()
{
    const bool haveMaps = baseline() && m_snapshot && size_t(m_layer) < baseline()->forward.attention.size() &&
                          !baseline()->forward.attention[size_t(m_layer)].empty();
    if (!haveMaps) {
        for (HeatmapPlot *p : {m_basePlot, m_mitPlot, m_diffPlot}) {
            p->clear();
        }
        if (!m_snapshot) {
            m_info->setText(tr("Run a prompt, choose a mitigation and press Apply."));
        } else if (baseline() && baseline()->tokens.size() > size_t(kMaxMapTokens)) {
            m_info->setText(tr("%1 tokens: attention maps are compared up to %2 tokens; outputs below.")
                                .arg(baseline()->tokens.size())
                                .arg(kMaxMapTokens));
        } else if (!baseline()) {
            m_info->setText(m_controller->stale() ? tr("The prompt changed: press Apply to compare on it.")
                                                  : tr("Choose a mitigation and press Apply."));
        }
        return;
    }
    const bool wasSyncing = m_syncing;
    m_syncing = true;
    fillMaps(m_basePlot, m_mitPlot, m_diffPlot, 0);
    m_syncing = wasSyncing;
    const auto effects = shownEffects();
    QString text =
        effects ? tr("Layer %1, head %2 \u2014 %3; attention change of this head %4 (mean total variation)")
                      .arg(m_layer)
                      .arg(m_head)
                      .arg(QString::fromStdString(effects->spec))
                      .arg(effects->headDifference.empty()
                               ? 0.0
                               : double(effects->headDifference.data[size_t(m_layer * m_snapshot->heads + m_head)]),
                           0, 'f', 4)
                : tr("Layer %1, head %2 \u2014 baseline (mitigation %3)")
                      .arg(m_layer)
                      .arg(m_head)
                      .arg(m_enabledBox->isChecked() ? tr("none") : tr("off"));
    if (m_controller->stale()) {
        text += tr(" \u2014 the prompt changed since: press Apply");
    }
    m_info->setText(text);
}

void MitigationView::fillHeadPlot(HeatmapPlot *plot) const
{
    const bool dormancy = m_headQuantityBox->currentIndex() == 1;
    const auto effects = shownEffects();
    const FloatArray *values = dormancy ? &m_controller->dormancy() : (effects ? &effects->headDifference : nullptr);
    if (!values || values->shape.size() != 2 || values->data.empty()) {
        plot->clear();
        return;
    }
    const int64_t layers = values->shape[0], heads = values->shape[1];
    PooledGrid grid;
    grid.nx = heads;
    grid.ny = layers;
    grid.window = TokenWindow{0, layers - 1, 0, heads - 1};
    grid.data = values->data;
    plot->setAxes(indexLabels(heads), indexLabels(layers), tr("head"), tr("layer"));
    plot->setExtent(heads, layers);
    if (dormancy) {
        plot->setColourBarLabel(tr("\u0394 loss, %1 (nats)").arg(m_controller->dormancyMethod()));
        plot->setGrid(grid, symmetricRange(grid.data), ScaleMapping::Linear);
        plot->colourMap()->setGradient(divergingGradient());
    } else {
        plot->setColourMap(m_map);
        plot->setColourBarLabel(tr("attention change (TV)"));
        ValueRange range = colourRange(grid.data, ColourScale{});
        range.lower = 0;
        plot->setGrid(grid, range, ScaleMapping::Linear);
    }
}

void MitigationView::refreshHeadPlot()
{
    if (!m_headPlot || !m_headQuantityBox) {
        return;
    }
    m_headPlot->setColourMap(m_map);
    fillHeadPlot(m_headPlot);
}

void MitigationView::refreshOutputs()
{
    m_table->setRowCount(0);
    m_baseContinuation->clear();
    m_mitContinuation->clear();
    if (!baseline()) {
        m_summary->setText(QString());
        return;
    }
    auto model = m_controller->model();
    const Model *mp = model.get();
    const auto effects = shownEffects();
    // Baseline top-k from the cached logits; the mitigated side from the effects.
    const FloatArray &logits = baseline()->forward.logits;
    std::vector<TopToken> baseTop;
    if (logits.shape.size() == 2 && logits.shape[0] > 0) {
        const int64_t vocab = logits.shape[1];
        baseTop = topK(logits.data.data() + (logits.shape[0] - 1) * vocab, vocab, 10);
    }
    const std::vector<TopToken> &mitTop = effects ? effects->mitigatedTop : baseTop;
    const int rows = int(std::max(baseTop.size(), mitTop.size()));
    m_table->setRowCount(rows);
    for (int r = 0; r < rows; ++r) {
        if (size_t(r) < baseTop.size()) {
            m_table->setItem(r, 0, new QTableWidgetItem(tokenDisplay(mp, baseTop[size_t(r)].id)));
            m_table->setItem(r, 1, new QTableWidgetItem(QString::number(baseTop[size_t(r)].probability, 'f', 4)));
        }
        if (size_t(r) < mitTop.size()) {
            auto *item = new QTableWidgetItem(tokenDisplay(mp, mitTop[size_t(r)].id));
            if (size_t(r) < baseTop.size() && mitTop[size_t(r)].id != baseTop[size_t(r)].id) {
                QFont f = item->font();
                f.setBold(true);
                item->setFont(f);
                item->setToolTip(tr("differs from the baseline at this rank"));
            }
            m_table->setItem(r, 2, item);
            m_table->setItem(r, 3, new QTableWidgetItem(QString::number(mitTop[size_t(r)].probability, 'f', 4)));
        }
    }
    m_table->setHorizontalHeaderLabels(
        {tr("baseline"), tr("p"), effects ? abbreviate(QString::fromStdString(effects->spec), 28) : tr("mitigated"),
         tr("p")});
    if (effects) {
        const double change = effects->baselinePerplexity > 0
                                  ? 100.0 * (effects->mitigatedPerplexity / effects->baselinePerplexity - 1.0)
                                  : 0.0;
        QString text =
            tr("<b>%1</b> \u2014 next-token KL(baseline \u2016 mitigated) %2 nats; prompt perplexity %3 \u2192 %4 "
               "(%5%6 %); mitigated pass %7 s")
                .arg(QString::fromStdString(effects->spec).toHtmlEscaped())
                .arg(effects->nextTokenKl, 0, 'f', 4)
                .arg(effects->baselinePerplexity, 0, 'f', 2)
                .arg(effects->mitigatedPerplexity, 0, 'f', 2)
                .arg(change >= 0 ? QStringLiteral("+") : QString())
                .arg(change, 0, 'f', 1)
                .arg(effects->seconds, 0, 'f', 2);
        if (effects->streamingAsMask) {
            text += tr("<br>streaming runs here as a sink + window mask at the original positions; the rolling "
                       "cache is <tt>sinkscope-cli stream-ppl</tt>.");
        }
        m_summary->setText(text);
    } else {
        m_summary->setText(m_enabledBox->isChecked()
                               ? tr("Baseline (spec \u201cnone\u201d): choose a method, Add, Apply.")
                               : tr("Mitigation off: the cached baseline."));
    }
    if (const auto *base = m_controller->continuation(QStringLiteral("none"))) {
        m_baseContinuation->setPlainText(tr("baseline: %1").arg(continuationDisplay(mp, *base)));
    }
    if (effects) {
        if (const auto *mit = m_controller->continuation(QString::fromStdString(effects->spec))) {
            m_mitContinuation->setPlainText(
                tr("%1: %2").arg(QString::fromStdString(effects->spec), continuationDisplay(mp, *mit)));
        }
    }
}

QString MitigationView::continuationText(bool mitigated) const
{
    return mitigated ? m_mitContinuation->toPlainText() : m_baseContinuation->toPlainText();
}

QString MitigationView::figureTitle() const
{
    const auto effects = shownEffects();
    return tr("Layer %1, head %2: baseline vs %3")
        .arg(m_layer)
        .arg(m_head)
        .arg(effects ? QString::fromStdString(effects->spec) : tr("baseline"));
}

void MitigationView::renderFigure(QCPPainter *painter, const QSize &size)
{
    if (!baseline() || !m_snapshot || size_t(m_layer) >= baseline()->forward.attention.size() ||
        baseline()->forward.attention[size_t(m_layer)].empty()) {
        return;
    }
    // Top: baseline | mitigated | difference; bottom: the per-head change (or dormancy) map and the
    // output comparison in text.
    const int topHeight = int(size.height() * 0.62);
    const QSize panel(size.width() / 3, topHeight);
    HeatmapPlot base, mitigated, difference;
    for (HeatmapPlot *p : {&base, &mitigated, &difference}) {
        p->setStyle(m_style);
        p->setColourMap(m_map);
        p->resize(panel);
        p->setExtent(m_snapshot->tokenCount(), m_snapshot->tokenCount());
        p->setVisibleWindow(m_basePlot->visibleWindow());
    }
    // fillMaps reads the window of the on-screen baseline plot; the figure plots copy it.
    fillMaps(&base, &mitigated, &difference, 2048);
    int x = 0;
    for (HeatmapPlot *p : {&base, &mitigated, &difference}) {
        painter->save();
        painter->translate(x, 0);
        p->render(painter, panel);
        painter->restore();
        x += panel.width();
    }
    const QSize lower(size.width() / 2, size.height() - topHeight);
    HeatmapPlot heads;
    heads.setStyle(m_style);
    heads.setColourMap(m_map);
    heads.resize(lower);
    fillHeadPlot(&heads);
    if (heads.hasData()) {
        painter->save();
        painter->translate(0, topHeight);
        heads.render(painter, lower);
        painter->restore();
    }
    painter->save();
    painter->translate(lower.width() + 12, topHeight + 8);
    painter->setPen(m_style.foreground);
    painter->setFont(m_style.font);
    QStringList lines;
    const auto effects = shownEffects();
    auto model = m_controller->model();
    if (effects) {
        lines << tr("KL(baseline \u2016 mitigated), next token: %1 nats").arg(effects->nextTokenKl, 0, 'f', 4);
        lines << tr("prompt perplexity: %1 \u2192 %2")
                     .arg(effects->baselinePerplexity, 0, 'f', 2)
                     .arg(effects->mitigatedPerplexity, 0, 'f', 2);
        lines << tr("top-5 baseline \u2192 mitigated:");
        for (size_t i = 0; i < 5 && i < effects->baselineTop.size() && i < effects->mitigatedTop.size(); ++i) {
            lines << QStringLiteral("  %1 (%2)  \u2192  %3 (%4)")
                         .arg(tokenDisplay(model.get(), effects->baselineTop[i].id))
                         .arg(effects->baselineTop[i].probability, 0, 'f', 3)
                         .arg(tokenDisplay(model.get(), effects->mitigatedTop[i].id))
                         .arg(effects->mitigatedTop[i].probability, 0, 'f', 3);
        }
    } else {
        lines << tr("mitigation off: baseline only");
    }
    const int lineHeight = QFontMetrics(m_style.font).height() + 2;
    for (int i = 0; i < lines.size(); ++i) {
        painter->drawText(QPoint(0, (i + 1) * lineHeight), lines[i]);
    }
    painter->restore();
}

ViewData MitigationView::currentData() const
{
    ViewData data;
    data.columns = {QStringLiteral("query"),     QStringLiteral("key"),      QStringLiteral("query_token"),
                    QStringLiteral("key_token"), QStringLiteral("baseline"), QStringLiteral("mitigated"),
                    QStringLiteral("difference")};
    const auto effects = shownEffects();
    QJsonObject json;
    json[QStringLiteral("view")] = viewId();
    json[QStringLiteral("spec")] = effects ? QString::fromStdString(effects->spec) : QStringLiteral("none");
    json[QStringLiteral("layer")] = qint64(m_layer);
    json[QStringLiteral("head")] = qint64(m_head);
    if (!baseline() || !m_snapshot || size_t(m_layer) >= baseline()->forward.attention.size() ||
        baseline()->forward.attention[size_t(m_layer)].empty()) {
        data.json = json;
        return data;
    }
    const FloatArray &a = baseline()->forward.attention[size_t(m_layer)];
    const int64_t t = a.shape[1];
    const float *d = effects && size_t(m_layer) < effects->attentionDifference.size()
                         ? effects->attentionDifference[size_t(m_layer)].data.data() + m_head * t * t
                         : nullptr;
    const float *b = a.data.data() + m_head * t * t;
    for (int64_t q = 0; q < t; ++q) {
        for (int64_t k = 0; k <= q; ++k) {
            const float base = b[q * t + k], delta = d ? d[q * t + k] : 0.0f;
            data.rows.push_back({QString::number(q), QString::number(k),
                                 displayTokenText(m_snapshot->tokens[size_t(q)].text),
                                 displayTokenText(m_snapshot->tokens[size_t(k)].text), QString::number(base, 'g', 7),
                                 QString::number(base + delta, 'g', 7), QString::number(delta, 'g', 7)});
        }
    }
    if (effects) {
        json[QStringLiteral("next_token_kl")] = effects->nextTokenKl;
        json[QStringLiteral("baseline_perplexity")] = effects->baselinePerplexity;
        json[QStringLiteral("mitigated_perplexity")] = effects->mitigatedPerplexity;
        QJsonArray change;
        for (int64_t l = 0; l < effects->headDifference.shape.at(0); ++l) {
            QJsonArray row;
            for (int64_t h = 0; h < effects->headDifference.shape.at(1); ++h) {
                row.append(double(effects->headDifference.data[size_t(l * effects->headDifference.shape[1] + h)]));
            }
            change.append(row);
        }
        json[QStringLiteral("head_attention_change")] = change;
    }
    if (const FloatArray &dormancy = m_controller->dormancy(); dormancy.shape.size() == 2) {
        QJsonArray rows;
        for (int64_t l = 0; l < dormancy.shape[0]; ++l) {
            QJsonArray row;
            for (int64_t h = 0; h < dormancy.shape[1]; ++h) {
                row.append(double(dormancy.data[size_t(l * dormancy.shape[1] + h)]));
            }
            rows.append(row);
        }
        json[QStringLiteral("dormancy_method")] = m_controller->dormancyMethod();
        json[QStringLiteral("dormancy_loss_change")] = rows;
    }
    QJsonArray cells;
    for (const QStringList &row : data.rows) {
        cells.append(QJsonArray{row[0].toLongLong(), row[1].toLongLong(), row[4].toDouble(), row[5].toDouble(),
                                row[6].toDouble()});
    }
    json[QStringLiteral("cells")] = cells;
    json[QStringLiteral("cell_columns")] =
        QJsonArray{QStringLiteral("query"), QStringLiteral("key"), QStringLiteral("baseline"),
                   QStringLiteral("mitigated"), QStringLiteral("difference")};
    data.json = json;
    return data;
}

QJsonObject MitigationView::saveState() const
{
    QJsonObject state;
    state[QStringLiteral("spec")] = spec();
    state[QStringLiteral("enabled")] = mitigationEnabled();
    state[QStringLiteral("layer")] = qint64(m_layer);
    state[QStringLiteral("head")] = qint64(m_head);
    state[QStringLiteral("head_quantity")] = m_headQuantityBox->currentIndex();
    return state;
}

void MitigationView::restoreState(const QJsonObject &state)
{
    if (state.contains(QStringLiteral("spec"))) {
        setSpec(state.value(QStringLiteral("spec")).toString());
    }
    {
        const QSignalBlocker blocker(m_enabledBox);
        m_enabledBox->setChecked(state.value(QStringLiteral("enabled")).toBool(true));
    }
    m_controller->setEnabled(m_enabledBox->isChecked(), false);
    m_headQuantityBox->setCurrentIndex(std::clamp(state.value(QStringLiteral("head_quantity")).toInt(0), 0, 1));
    showHead(state.value(QStringLiteral("layer")).toInteger(0), state.value(QStringLiteral("head")).toInteger(0));
    m_controller->markStale(); // the restored spec applies to the next comparison
}

} // namespace sinkscope::ui
