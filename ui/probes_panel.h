// The probes panel (docs/probes.md): runs a probe set with the current mitigation on the compute thread
// (progress and cancel through the ComputeBridge), shows the aggregate on top and a table per probe with
// pass/fail, the answer's first-token probability and its change against the baseline; filters by
// category; a click loads the probe as the prompt with the answer marked; the table exports as CSV and
// the panel's figure is accuracy per category, baseline against the mitigation.
#pragma once

#include "analysis_view.h"

#include "sinkscope/probes/probes.h"

#include <QAbstractTableModel>

#include <functional>
#include <memory>

class QComboBox;
class QLabel;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QTableView;

namespace sinkscope::ui {

class ComputeBridge;

// Rows: the probes of `run` in the chosen category (all when empty). Columns: id, category, kind, pass,
// p(first), change of p(first) against the baseline, answer log-prob, greedy answer. Pure data: tests
// drive it without a screen.
class ProbeTableModel : public QAbstractTableModel
{
    Q_OBJECT
public:
    enum Column { Id, Category, Kind, Pass, FirstProbability, Change, LogProbability, Greedy, ColumnCount };
    using QAbstractTableModel::QAbstractTableModel;

    void setRuns(std::shared_ptr<const ProbeRun> run, std::shared_ptr<const ProbeRun> baseline);
    void setCategory(const QString &category);
    const ProbeScore *scoreAt(int row) const;
    ViewData viewData() const;

    int rowCount(const QModelIndex &parent = {}) const override;
    int columnCount(const QModelIndex &parent = {}) const override;
    QVariant data(const QModelIndex &index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    void rebuild();
    std::shared_ptr<const ProbeRun> m_run, m_baseline;
    QString m_category;
    std::vector<const ProbeScore *> m_rows;
};

// What one run of the panel delivers: the baseline (cached per model and set) and the mitigated run
// (the same object as the baseline for "none").
struct ProbeOutcome {
    std::shared_ptr<const ProbeRun> baseline;
    std::shared_ptr<const ProbeRun> run;
};

class ProbesView : public AnalysisView
{
    Q_OBJECT
public:
    static constexpr const char *kProbeTag = "probes";

    // `model` and `currentSpec` are read when a run starts (an empty or invalid spec means "none");
    // `prompt` is the window's prompt editor, filled when a probe is clicked; `runPrompt` reruns it.
    ProbesView(ComputeBridge *bridge, std::function<std::shared_ptr<const Model>()> model,
               std::function<QString()> currentSpec, QPlainTextEdit *prompt, std::function<void()> runPrompt,
               QWidget *parent = nullptr);

    QString viewId() const override { return QStringLiteral("probes"); }
    QString viewTitle() const override { return tr("Probes"); }
    void setSnapshot(std::shared_ptr<const RunSnapshot>) override {}
    void setPlotStyle(const PlotStyle &style) override;
    QString figureTitle() const override;
    void renderFigure(QCPPainter *painter, const QSize &size) override;
    ViewData currentData() const override;
    QJsonObject saveState() const override;
    void restoreState(const QJsonObject &state) override;

    // Loads a set file; false (with the one-line error shown in the panel) when it does not validate.
    bool loadSet(const QString &path);
    void runSet();
    const ProbeTableModel *tableModel() const { return m_table; }
    std::shared_ptr<const ProbeRun> shownRun() const { return m_run; }
    QString aggregateText() const;

signals:
    void runShown();

private:
    void onOutcome(const std::shared_ptr<const ProbeOutcome> &outcome);
    void loadProbe(const ProbeScore &score);
    void exportCsv();
    void refreshCategories();

    ComputeBridge *m_bridge;
    std::function<std::shared_ptr<const Model>()> m_model;
    std::function<QString()> m_currentSpec;
    QPlainTextEdit *m_prompt;
    std::function<void()> m_runPrompt;
    PlotStyle m_style;

    QString m_setPath;
    std::shared_ptr<const ProbeSet> m_set;
    std::shared_ptr<const ProbeRun> m_baseline, m_run;
    const Model *m_baselineModel = nullptr; // the model the cached baseline belongs to

    QLabel *m_setLabel = nullptr;
    QLabel *m_aggregate = nullptr;
    QComboBox *m_category = nullptr;
    QPushButton *m_runButton = nullptr;
    QPushButton *m_cancelButton = nullptr;
    QProgressBar *m_progress = nullptr;
    QTableView *m_view = nullptr;
    ProbeTableModel *m_table = nullptr;
};

} // namespace sinkscope::ui
