// One head's token x token attention map with its colour-scale controls, hover read-out, zoom/pan
// refined at screen resolution, and keyboard navigation across heads (Left/Right) and layers
// (Up/Down).
#pragma once

#include "analysis_view.h"
#include "head_view_model.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QBoxLayout;
class QSpacerItem;
class QSpinBox;

namespace sinkscope::ui {

class HeatmapPlot;

class HeadView : public AnalysisView
{
    Q_OBJECT
public:
    explicit HeadView(QWidget *parent = nullptr);
    QString viewId() const override { return QStringLiteral("head"); }
    QString viewTitle() const override { return tr("Head"); }
    void setSnapshot(std::shared_ptr<const RunSnapshot> snapshot) override;
    void setPlotStyle(const PlotStyle &style) override;
    void setColourMap(ColourMap map) override;
    QString figureTitle() const override;
    void renderFigure(QCPPainter *painter, const QSize &size) override;
    ViewData currentData() const override;
    QJsonObject saveState() const override;
    void restoreState(const QJsonObject &state) override;

    void showHead(int64_t layer, int64_t head);
    void stepHead(int delta);
    void stepLayer(int delta);
    void setScale(const ColourScale &scale);
    void setPooling(Pooling pooling);
    HeadViewModel &model() { return m_model; }
    HeatmapPlot *heatmap() const { return m_plot; }
    // Every head of the current layer in a grid with one colour scale for all panels.
    QString layerGridTitle() const;
    void renderLayerGrid(QCPPainter *painter, const QSize &size);

    // A head's map computed on demand (RunSnapshot::mapsOnDemand) after headMapWanted; ignored when the
    // snapshot changed since.
    void setHeadMap(std::shared_ptr<const RunSnapshot> snapshot, int64_t layer, int64_t head,
                    std::shared_ptr<const FloatArray> map);

signals:
    void headChanged(int64_t layer, int64_t head);
    // A long run keeps no maps: the shown head's map must be computed (computeHeadMap), once per head.
    void headMapWanted(int64_t layer, int64_t head);

protected:
    void keyPressEvent(QKeyEvent *event) override;

private:
    void updatePlot();
    void syncControls();
    void readControls();
    void configure(HeatmapPlot *plot) const;
    QString scaleDescription() const;

    HeadViewModel m_model;
    HeatmapPlot *m_plot = nullptr;
    QSpinBox *m_layerBox = nullptr;
    QSpinBox *m_headBox = nullptr;
    QComboBox *m_mappingBox = nullptr;
    QCheckBox *m_clampBox = nullptr;
    QDoubleSpinBox *m_percentileBox = nullptr;
    QCheckBox *m_withoutSinkBox = nullptr;
    QCheckBox *m_sharedBox = nullptr;
    QComboBox *m_poolingBox = nullptr;
    QLabel *m_info = nullptr;
    QBoxLayout *m_controls = nullptr;
    QSpacerItem *m_rowSpacer = nullptr;
    PlotStyle m_style;
    ColourMap m_map = ColourMap::Viridis;
    bool m_syncing = false;
    std::pair<int64_t, int64_t> m_requested{-1, -1}; // the head whose map was last asked for
};

} // namespace sinkscope::ui
