// The Compare tab: other models (a second model, or a series of training checkpoints) run beside the
// window's model on the same prompt text, each with its own tokenizer. Two models side by side as layer x
// head grids of a per-head metric under one shared colour range, with their difference B - A on a
// diverging scale centred at 0; a checkpoint series as a layer x checkpoint grid of the metric averaged
// over heads, the checkpoints ordered by training step (checkpointStep). The numbers come from
// compare_model.h; the work runs on the compute thread through the ComputeBridge (tag "compare"), with
// progress and cancel. A model that fails, grids of different shapes and different token counts are
// said in one line above the grids; what can be shown is shown.
#pragma once

#include "analysis_view.h"
#include "compare_model.h"

#include <QStringList>

#include <functional>
#include <memory>
#include <string>

class QComboBox;
class QLabel;
class QPushButton;

namespace sinkscope::ui {

class ComputeBridge;
class HeatmapPlot;

class CompareView : public AnalysisView
{
    Q_OBJECT
public:
    static constexpr const char *kCompareTag = "compare";
    using ModelGetter = std::function<std::shared_ptr<const Model>()>;
    using TextGetter = std::function<QString()>;

    // `model`: the window's model (the reference, "A" by default); `prompt`: the prompt text as typed;
    // `device`: where opened models are loaded ("cpu", "cuda:N").
    CompareView(ComputeBridge *bridge, ModelGetter model, TextGetter prompt, TextGetter device,
                QWidget *parent = nullptr);

    QString viewId() const override { return QStringLiteral("compare"); }
    QString viewTitle() const override { return tr("Compare"); }
    void setSnapshot(std::shared_ptr<const RunSnapshot> snapshot) override;
    void setPlotStyle(const PlotStyle &style) override;
    void setColourMap(ColourMap map) override;
    QString figureTitle() const override;
    void renderFigure(QCPPainter *painter, const QSize &size) override;
    ViewData currentData() const override;
    // "metric", "models" (the compared files and folders), "pair" ([a, b]); sessions without them load.
    QJsonObject saveState() const override;
    // Sets the models; runs them at once when a run is shown (a session), else on compare().
    void restoreState(const QJsonObject &state) override;

    // The models opened beside the window's model (files or folders, as Open model takes them); none
    // drops the comparison and its models.
    void setModels(const QStringList &sources);
    QStringList models() const { return m_sources; }
    // Runs the comparison on the current prompt; comparisonShown() or an error line when done.
    void compare();
    // Opens `sources` beside the window's model and compares (File > Compare...).
    void compareWith(const QStringList &sources);
    void cancel();
    bool isBusy() const;

    void setMetric(const std::string &metric);
    const std::string &metric() const { return m_metric; }
    // The two entries shown side by side, as indices into result()->entries(); -1 when none.
    void setPair(int a, int b);
    int pairA() const { return m_a; }
    int pairB() const { return m_b; }
    std::shared_ptr<const CompareResult> result() const { return m_result; }
    // The line above the grids: failures, shape and token-count notes, a changed prompt.
    QString noteText() const;

    HeatmapPlot *plotA() const { return m_plotA; }
    HeatmapPlot *plotB() const { return m_plotB; }
    HeatmapPlot *differencePlot() const { return m_diffPlot; }
    HeatmapPlot *seriesPlot() const { return m_seriesPlot; }

    // File dialogs: model files (several at once), or one folder added to the set.
    void openModelsDialog();
    void openFolderDialog();

signals:
    void comparisonShown(); // a new result is drawn
    void failed(const QString &message);

private:
    void onResult(std::shared_ptr<const CompareResult> result);
    void refresh();
    void refreshControls();
    // Fill plots (on screen and for export) from the result.
    bool fillPair(HeatmapPlot *a, HeatmapPlot *b, HeatmapPlot *difference) const;
    bool fillSeries(HeatmapPlot *plot) const;
    const CompareEntry *entryAt(int index) const;
    bool hasDifference() const;                              // A and B have metrics of the same shape
    static QString comparingText();                          // the note while a comparison runs
    std::vector<const CompareEntry *> seriesEntries() const; // the series' entries with metrics
    void hoverTip(HeatmapPlot *plot, int64_t x, int64_t y, const QPoint &global);

    ComputeBridge *m_bridge = nullptr;
    ModelGetter m_model;
    TextGetter m_prompt;
    TextGetter m_device;
    QStringList m_sources;
    std::shared_ptr<const RunSnapshot> m_snapshot;
    std::shared_ptr<const CompareResult> m_result;
    std::string m_metric = "first_token_mass";
    int m_a = -1;
    int m_b = -1;
    PlotStyle m_style;
    ColourMap m_map = ColourMap::Viridis;

    QLabel *m_sourcesLabel = nullptr;
    QPushButton *m_compareButton = nullptr;
    QPushButton *m_cancelButton = nullptr;
    QComboBox *m_metricBox = nullptr;
    QComboBox *m_aBox = nullptr;
    QComboBox *m_bBox = nullptr;
    QLabel *m_note = nullptr;
    QWidget *m_pairRow = nullptr;
    HeatmapPlot *m_plotA = nullptr;
    HeatmapPlot *m_plotB = nullptr;
    HeatmapPlot *m_diffPlot = nullptr;
    HeatmapPlot *m_seriesPlot = nullptr;
};

} // namespace sinkscope::ui
