// The Streaming tab: the StreamingLLM evaluation (Xiao et al., ICLR 2024; core interventions/streaming.h)
// of the current prompt's tokens, as `sinkscope-cli stream-ppl` runs it, for three cache policies at one
// total KV cache C: dense attention (no eviction), window only (the C most recent tokens) and sinks +
// window (the first kSinks tokens and the C - kSinks most recent). It draws NLL against position with the
// figure code of `stream-ppl --plot` (trailingMeanNll, fillLinePlot) and lists each policy's perplexity.
//
// Threading: the token-by-token decoding runs on the compute thread (ComputeBridge tag kStreamingTag) with
// progress and Cancel; a new prompt or cache replaces a running job. It runs while the tab is visible
// (a run or cache change while hidden waits until it is shown) and the last result is kept, so switching
// tabs costs nothing. The dense run does not depend on C: changing only the cache reuses it.
// Sessions: {"cache": N} (lessons' `streaming: cache N`).
#pragma once

#include "analysis_view.h"
#include "figures.h"

#include "sinkscope/interventions/streaming.h"

#include <functional>
#include <memory>
#include <vector>

class QCustomPlot;
class QLabel;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QTableWidget;
class QTimer;

namespace sinkscope::ui {

class ComputeBridge;

// What one computation of the tab delivers.
struct StreamingOutcome {
    std::vector<int64_t> tokens;
    int cache = 0;
    std::vector<StreamingResult> runs; // cacheComparison(cache) order
};

// The NLL-against-position plot of an outcome (the curves of `stream-ppl --plot`, a mark where the cache
// fills).
LinePlot streamingLinePlot(const StreamingOutcome &outcome);

class StreamingView : public AnalysisView
{
    Q_OBJECT
public:
    static constexpr const char *kStreamingTag = "streaming";
    static constexpr int kDefaultCache = kComparisonCache;
    static constexpr int kSinks = kComparisonSinks;

    // `model` is read when a computation starts.
    StreamingView(ComputeBridge *bridge, std::function<std::shared_ptr<const Model>()> model,
                  QWidget *parent = nullptr);

    QString viewId() const override { return QStringLiteral("streaming"); }
    QString viewTitle() const override { return tr("Streaming"); }
    void setSnapshot(std::shared_ptr<const RunSnapshot> snapshot) override;
    void setPlotStyle(const PlotStyle &style) override;
    QString figureTitle() const override;
    void renderFigure(QCPPainter *painter, const QSize &size) override;
    ViewData currentData() const override;
    QJsonObject saveState() const override;
    void restoreState(const QJsonObject &state) override;

    int cache() const;
    void setCache(int tokens);
    // Starts the computation for the current tokens and cache (now, visible or not); nothing when the
    // shown result already is for them.
    void compute();
    void cancel();
    bool isBusy() const { return m_busy; }
    std::shared_ptr<const StreamingOutcome> outcome() const { return m_outcome; }
    QCustomPlot *plot() const { return m_plot; }
    QTableWidget *table() const { return m_table; }
    QString noteText() const;

signals:
    void resultShown();

protected:
    void showEvent(QShowEvent *event) override;

private:
    void schedule();
    void showOutcome(const std::shared_ptr<const StreamingOutcome> &outcome);
    void setBusy(bool busy);
    bool isCurrent() const;

    ComputeBridge *m_bridge;
    std::function<std::shared_ptr<const Model>()> m_model;
    PlotStyle m_style;
    std::vector<int64_t> m_tokens;
    std::shared_ptr<const StreamingOutcome> m_outcome;
    // The model m_outcome was computed on (a reused dense run); weak, so that a model loaded later at a
    // freed one's address never passes for it.
    std::weak_ptr<const Model> m_outcomeModel;
    LinePlot m_linePlot;
    bool m_busy = false;

    QSpinBox *m_cacheBox = nullptr;
    QLabel *m_sinksLabel = nullptr;
    QPushButton *m_computeButton = nullptr;
    QPushButton *m_cancelButton = nullptr;
    QProgressBar *m_progress = nullptr;
    QLabel *m_note = nullptr;
    QCustomPlot *m_plot = nullptr;
    QTableWidget *m_table = nullptr;
    QTimer *m_debounce = nullptr;
};

} // namespace sinkscope::ui
