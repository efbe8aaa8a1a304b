// The state behind the head view, without widgets: which head is shown, the colour scale, and the
// cached full-resolution transform and range of that head. Switching heads reads the snapshot already
// in memory (never the model); hovering is a constant-time lookup.
#pragma once

#include "attention_math.h"
#include "run_snapshot.h"

#include <memory>
#include <optional>

namespace sinkscope::ui {

class HeadViewModel
{
public:
    void setSnapshot(std::shared_ptr<const RunSnapshot> snapshot);
    const std::shared_ptr<const RunSnapshot> &snapshot() const { return m_snapshot; }
    // Whether the current head's map is there to show: in the snapshot, or computed on demand.
    bool valid() const;
    // The current head's map [T, T]: from the snapshot's attention, or (RunSnapshot::mapsOnDemand) the
    // map given to setHeadMap for this layer and head; invalid when neither.
    HeadMatrix matrix() const;
    // mapsOnDemand snapshots: the current head has no map yet (the view asks for computeHeadMap).
    bool needsHeadMap() const;
    // One head's map [1, T, T] computed on demand; kept while that head is shown (one at a time).
    void setHeadMap(int64_t layer, int64_t head, std::shared_ptr<const FloatArray> map);

    // Clamped to the snapshot's layers and heads; returns whether anything changed.
    bool setHead(int64_t layer, int64_t head);
    int64_t layer() const { return m_layer; }
    int64_t head() const { return m_head; }
    // Steps through heads in reading order (layer-major), wrapping across layer boundaries.
    bool stepHead(int delta);
    bool stepLayer(int delta);

    void setScale(const ColourScale &scale);
    const ColourScale &scale() const { return m_scale; }
    void setPooling(Pooling pooling) { m_pooling = pooling; }
    Pooling pooling() const { return m_pooling; }

    const TransformedHead &transformed();
    // The current head's range, or the shared range of every head when scale().shared is set (from
    // the snapshot's per-head sketches: O(heads), or O(heads x sample) when clamping).
    ValueRange range();
    // The union of the ranges of every head of one layer (the layer grid figure's one scale).
    ValueRange layerRange(int64_t layer);
    PooledGrid grid(const TokenWindow &window, int64_t maxX, int64_t maxY);

    // Probability as computed, value as displayed (after the transform), and the sink mass removed from
    // a query row (NaN unless renormalising). NaN outside the head or where masked.
    float rawValue(int64_t query, int64_t key) const;
    float displayValue(int64_t query, int64_t key);
    float removedMass(int64_t query);

    // The shown layer's sliding window W (query q sees keys q-W < k <= q); 0 for full attention.
    int64_t window() const;
    // Whether (query, key) is a key the query cannot see: after it (causal mask) or, in a sliding layer,
    // out of the window (k <= q - W). Such cells are NaN in transformed() and drawn as masked, not as 0.
    bool masked(int64_t query, int64_t key) const;
    bool outsideWindow(int64_t query, int64_t key) const;
    // Models with learned sinks (gpt-oss): the sink's share of each query's attention in the shown head,
    // [T] (RunSnapshot::sinkShare, or 1 - the row's sum for maps computed on demand). Empty otherwise.
    bool hasSinkColumn() const;
    const std::vector<float> &sinkColumn();
    float sinkShare(int64_t query);

private:
    void invalidate();

    std::shared_ptr<const RunSnapshot> m_snapshot;
    std::shared_ptr<const FloatArray> m_headMap; // mapsOnDemand: the map of (m_mapLayer, m_mapHead)
    int64_t m_mapLayer = -1, m_mapHead = -1;
    int64_t m_layer = 0;
    int64_t m_head = 0;
    ColourScale m_scale;
    Pooling m_pooling = Pooling::Max;
    std::optional<TransformedHead> m_transformed;
    std::optional<std::vector<float>> m_sinkColumn;
    std::optional<ValueRange> m_range;
    std::optional<ValueRange> m_sharedRange; // depends on snapshot and scale only, not on the head
    // Sketches for snapshots built without them (tests, hand-made data), computed once on demand.
    std::vector<std::array<ScaleSketch, 2>> m_localSketches;
    const ScaleSketch *sketchOf(int64_t layer, int64_t head);
};

} // namespace sinkscope::ui
