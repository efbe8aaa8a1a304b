// The mitigation panel: compose a mitigation spec (methods, parameters, a layer x head scope), rerun the
// prompt with it on the compute thread, and compare against the baseline on the same tokens: one head's
// attention before and after side by side with their difference, the per-head change over the whole
// model (or the dormancy test's loss change per head), the next-token distributions, KL divergence,
// prompt perplexity and greedy continuations side by side.
//
// Results are cached per token sequence: the baseline once, each spec once (the last few), so switching
// the mitigation off shows the cached baseline at once and switching it back on shows the cached
// mitigated run without rerunning the model.
#pragma once

#include "analysis_view.h"
#include "attention_math.h"
#include "mitigation_controller.h"

#include "sinkscope/interventions/effects.h"
#include "sinkscope/interventions/mitigation_registry.h"

#include <QDialog>
#include <QHash>

#include <functional>
#include <list>
#include <memory>
#include <optional>

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QFormLayout;
class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;
class QSplitter;
class QTableWidget;

namespace sinkscope::ui {

class ComputeBridge;
class HeatmapPlot;

// A spec step from the builder: "name:p=v,...,heads=scope" (heads omitted when empty). The methods, their
// parameters, ranges and defaults are the core's registry (mitigationMethods(), mitigation_registry.h).
QString mitigationStepText(const MitigationMethodInfo &method, const std::vector<double> &values, const QString &heads);

// Heads chosen in a layer x head grid as a scope string: a whole layer as "L5", single heads as "L2H3",
// joined by "+"; every head (or none) gives "" (the method's default scope).
QString headScopeText(const std::vector<std::vector<bool>> &chosen);

// A layer x head grid of check boxes with whole-layer and whole-head toggles.
class HeadScopeDialog : public QDialog
{
    Q_OBJECT
public:
    HeadScopeDialog(int64_t layers, int64_t heads, const QString &scope, QWidget *parent = nullptr);
    QString scope() const;

private:
    std::vector<std::vector<QCheckBox *>> m_boxes;
};

class MitigationView : public AnalysisView
{
    Q_OBJECT
public:
    using ModelGetter = MitigationController::ModelGetter;
    static constexpr const char *kEffectsTag = MitigationController::kEffectsTag;
    static constexpr int64_t kMaxMapTokens = MitigationController::kMaxMapTokens;

    MitigationView(ComputeBridge *bridge, ModelGetter model, QWidget *parent = nullptr);

    QString viewId() const override { return QStringLiteral("mitigations"); }
    QString viewTitle() const override { return tr("Mitigations"); }
    void setSnapshot(std::shared_ptr<const RunSnapshot> snapshot) override;
    void setPlotStyle(const PlotStyle &style) override;
    void setColourMap(ColourMap map) override;
    QString figureTitle() const override;
    void renderFigure(QCPPainter *painter, const QSize &size) override;
    ViewData currentData() const override;
    QJsonObject saveState() const override;
    void restoreState(const QJsonObject &state) override;

    // The spec in the editor; invalid text keeps its parse error (specError()) and cannot be applied.
    void setSpec(const QString &spec);
    QString spec() const;
    QString canonicalSpec() const; // empty while invalid
    QString specError() const;
    // Runs the spec (or shows its cached result) on the current prompt.
    void apply();
    // Off: the panel shows the cached baseline; on: the mitigated run of the current spec.
    void setMitigationEnabled(bool on);
    bool mitigationEnabled() const;
    void showHead(int64_t layer, int64_t head);
    int64_t layer() const { return m_layer; }
    int64_t head() const { return m_head; }
    // I8 dormancy test over every head (head-zero or move-to-bos): mean prompt NLL change per head.
    void runDormancy(MitigationMethod method);

    // The work behind the tab: spec, baseline, cache, continuations, dormancy (mitigation_controller.h).
    MitigationController *controller() const { return m_controller; }
    std::shared_ptr<const BaselineRun> baseline() const { return m_controller->baseline(); }
    std::shared_ptr<const MitigationEffects> shownEffects() const { return m_controller->shownEffects(); }
    const FloatArray &dormancy() const { return m_controller->dormancy(); }
    QString continuationText(bool mitigated) const;
    HeatmapPlot *baselinePlot() const { return m_basePlot; }
    HeatmapPlot *mitigatedPlot() const { return m_mitPlot; }
    HeatmapPlot *differencePlot() const { return m_diffPlot; }
    HeatmapPlot *headPlot() const { return m_headPlot; }
    QTableWidget *outputsTable() const { return m_table; }

signals:
    void effectsShown(); // the panel shows a new baseline/mitigated pair (or the baseline alone)
    void continuationShown();
    void dormancyShown();
    void headActivated(int64_t layer, int64_t head);

protected:
    void showEvent(QShowEvent *event) override;

private:
    QWidget *buildBuilder();
    QSplitter *buildMaps(QWidget *parent);
    QWidget *buildHeadPanel(QWidget *parent);
    QWidget *buildOutputs(QWidget *parent);
    void connectMaps();
    void connectHeadPanel();
    void connectController();
    void showCellTip(int64_t key, int64_t query, const QPoint &pos);
    void rebuildParamFields();
    void addStep();
    void pickHeads();
    void validateSpec();
    void refresh();
    void refreshMaps();
    void refreshHeadPlot();
    void refreshOutputs();
    void fillMaps(HeatmapPlot *base, HeatmapPlot *mitigated, HeatmapPlot *difference, int64_t maxCells) const;
    void fillHeadPlot(HeatmapPlot *plot) const;
    void onDormancy();

    MitigationController *m_controller = nullptr;
    std::shared_ptr<const RunSnapshot> m_snapshot;

    int64_t m_layer = 0;
    int64_t m_head = 0;
    PlotStyle m_style;
    ColourMap m_map = ColourMap::Viridis;

    QComboBox *m_methodBox = nullptr;
    QFormLayout *m_paramForm = nullptr;
    QWidget *m_paramHost = nullptr;
    std::vector<QWidget *> m_paramFields; // a QDoubleSpinBox per number, a QComboBox per choice
    QLineEdit *m_headsEdit = nullptr;
    QLineEdit *m_specEdit = nullptr;
    QLabel *m_specStatus = nullptr;
    QPushButton *m_applyButton = nullptr;
    QCheckBox *m_enabledBox = nullptr;
    QSpinBox *m_layerBox = nullptr;
    QSpinBox *m_headBox = nullptr;
    QLabel *m_info = nullptr;
    HeatmapPlot *m_basePlot = nullptr;
    HeatmapPlot *m_mitPlot = nullptr;
    HeatmapPlot *m_diffPlot = nullptr;
    HeatmapPlot *m_headPlot = nullptr;
    QComboBox *m_headQuantityBox = nullptr;
    QPushButton *m_dormancyButton = nullptr;
    QComboBox *m_dormancyMethodBox = nullptr;
    QTableWidget *m_table = nullptr;
    QLabel *m_summary = nullptr;
    QPlainTextEdit *m_baseContinuation = nullptr;
    QPlainTextEdit *m_mitContinuation = nullptr;
    bool m_syncing = false;
};

} // namespace sinkscope::ui
