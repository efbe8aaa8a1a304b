// Attention received by each token (mean over heads and queries) for one layer or all layers, as bars
// in prompt order.
#pragma once

#include "analysis_view.h"

class QCheckBox;
class QLabel;
class QPlainTextEdit;
class QComboBox;
class QCustomPlot;
class QCPBars;

namespace sinkscope::ui {

class TokenTicker;

// Received attention per token for `layer`, or the mean over layers when layer < 0.
std::vector<float> receivedForLayer(const RunSnapshot &snapshot, int64_t layer);

class TokenView : public AnalysisView
{
    Q_OBJECT
public:
    explicit TokenView(QWidget *parent = nullptr);
    QString viewId() const override { return QStringLiteral("tokens"); }
    QString viewTitle() const override { return tr("Tokens"); }
    void setSnapshot(std::shared_ptr<const RunSnapshot> snapshot) override;
    void setPlotStyle(const PlotStyle &style) override;
    QString figureTitle() const override;
    void renderFigure(QCPPainter *painter, const QSize &size) override;
    ViewData currentData() const override;
    QJsonObject saveState() const override;
    void restoreState(const QJsonObject &state) override;

    void setLayer(int64_t layer); // < 0: all layers
    int64_t layer() const { return m_layer; }
    const std::vector<float> &values() const { return m_values; }
    QCustomPlot *plot() const { return m_plot; }

signals:
    // The bars shown changed (the prompt chips mirror them).
    void valuesChanged(const std::vector<float> &values);

private:
    void refresh();
    void fill(QCustomPlot *plot, QCPBars *bars, TokenTicker *ticker, const PlotStyle &style) const;

    std::shared_ptr<const RunSnapshot> m_snapshot;
    int64_t m_layer = -1;
    std::vector<float> m_values;
    QComboBox *m_layerBox = nullptr;
    QCheckBox *m_logBox = nullptr;
    QCustomPlot *m_plot = nullptr;
    QCPBars *m_bars = nullptr;
    QSharedPointer<TokenTicker> m_ticker;
    PlotStyle m_style;
};

// Top-k next-token probabilities as bars, and the greedy continuation as it streams in.
class OutputsView : public AnalysisView
{
    Q_OBJECT
public:
    explicit OutputsView(QWidget *parent = nullptr);
    QString viewId() const override { return QStringLiteral("outputs"); }
    QString viewTitle() const override { return tr("Outputs"); }
    void setSnapshot(std::shared_ptr<const RunSnapshot> snapshot) override;
    void setPlotStyle(const PlotStyle &style) override;
    QString figureTitle() const override;
    void renderFigure(QCPPainter *painter, const QSize &size) override;
    ViewData currentData() const override;

    void clearContinuation();
    void setContinuation(const QString &text);
    void setContinuationBusy(bool busy);
    QString continuation() const { return m_continuationText; }
    QCustomPlot *plot() const { return m_plot; }

signals:
    void generateRequested();

private:
    void fill(QCustomPlot *plot, const PlotStyle &style) const;

    std::shared_ptr<const RunSnapshot> m_snapshot;
    QCustomPlot *m_plot = nullptr;
    QPlainTextEdit *m_continuation = nullptr;
    QLabel *m_status = nullptr;
    QString m_continuationText;
    PlotStyle m_style;
};

} // namespace sinkscope::ui
