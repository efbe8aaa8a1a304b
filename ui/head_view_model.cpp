#include "head_view_model.h"

#include <algorithm>
#include <limits>

namespace sinkscope::ui {

namespace {
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
} // namespace

void HeadViewModel::setSnapshot(std::shared_ptr<const RunSnapshot> snapshot)
{
    m_snapshot = std::move(snapshot);
    m_headMap.reset();
    m_mapLayer = m_mapHead = -1;
    m_sharedRange.reset();
    m_localSketches.clear();
    invalidate();
    if (m_snapshot) {
        m_layer = std::clamp<int64_t>(m_layer, 0, std::max<int64_t>(0, m_snapshot->layers - 1));
        m_head = std::clamp<int64_t>(m_head, 0, std::max<int64_t>(0, m_snapshot->heads - 1));
    }
}

bool HeadViewModel::valid() const
{
    return matrix().valid();
}

HeadMatrix HeadViewModel::matrix() const
{
    if (!m_snapshot || m_head < 0 || m_head >= m_snapshot->heads) {
        return {};
    }
    if (m_snapshot->hasAttention(m_layer)) {
        return headMatrix(m_snapshot->attention[size_t(m_layer)], m_head);
    }
    if (m_headMap && m_mapLayer == m_layer && m_mapHead == m_head) {
        return headMatrix(*m_headMap, 0);
    }
    return {};
}

bool HeadViewModel::needsHeadMap() const
{
    return m_snapshot && m_snapshot->mapsOnDemand && m_snapshot->heads > 0 && !matrix().valid();
}

void HeadViewModel::setHeadMap(int64_t layer, int64_t head, std::shared_ptr<const FloatArray> map)
{
    if (!m_snapshot || !m_snapshot->mapsOnDemand || !map || map->shape.size() != 3 || map->dim(0) != 1 ||
        map->dim(1) != m_snapshot->tokenCount()) {
        return;
    }
    m_headMap = std::move(map);
    m_mapLayer = layer;
    m_mapHead = head;
    m_localSketches.clear(); // the loaded head now has a sketch
    invalidate();
}

bool HeadViewModel::setHead(int64_t layer, int64_t head)
{
    if (m_snapshot) {
        layer = std::clamp<int64_t>(layer, 0, std::max<int64_t>(0, m_snapshot->layers - 1));
        head = std::clamp<int64_t>(head, 0, std::max<int64_t>(0, m_snapshot->heads - 1));
    }
    if (layer == m_layer && head == m_head) {
        return false;
    }
    m_layer = layer;
    m_head = head;
    invalidate();
    return true;
}

bool HeadViewModel::stepHead(int delta)
{
    if (!m_snapshot || m_snapshot->heads <= 0) {
        return false;
    }
    const int64_t count = m_snapshot->layers * m_snapshot->heads;
    int64_t flat = m_layer * m_snapshot->heads + m_head + delta;
    flat = ((flat % count) + count) % count;
    return setHead(flat / m_snapshot->heads, flat % m_snapshot->heads);
}

bool HeadViewModel::stepLayer(int delta)
{
    if (!m_snapshot || m_snapshot->layers <= 0) {
        return false;
    }
    const int64_t layers = m_snapshot->layers;
    return setHead(((m_layer + delta) % layers + layers) % layers, m_head);
}

void HeadViewModel::setScale(const ColourScale &scale)
{
    if (scale == m_scale) {
        return;
    }
    const bool transformChanged = scale.transform != m_scale.transform;
    m_scale = scale;
    m_range.reset();
    m_sharedRange.reset();
    if (transformChanged) {
        m_transformed.reset();
    }
}

void HeadViewModel::invalidate()
{
    m_transformed.reset();
    m_range.reset();
    m_sinkColumn.reset();
}

const TransformedHead &HeadViewModel::transformed()
{
    if (!m_transformed) {
        const HeadMatrix m = matrix();
        m_transformed = m.valid() ? transformHead(m, m_scale.transform) : TransformedHead{};
        // Keys that left a sliding window have probability 0 because the query cannot see them, not
        // because it ignores them: masked like the causal triangle.
        if (const int64_t w = window(); w > 0) {
            TransformedHead &t = *m_transformed;
            for (int64_t q = w; q < t.rows; ++q) {
                const int64_t shift = t.cols - t.rows; // keys ahead of the first query (none today)
                for (int64_t k = 0; k <= std::min(t.cols - 1, q + shift - w); ++k) {
                    t.values[size_t(q * t.cols + k)] = kNaN;
                }
            }
        }
    }
    return *m_transformed;
}

ValueRange HeadViewModel::range()
{
    // Maps on demand: only the shown head is known, so a shared range would be that head's range.
    if (m_scale.shared && m_snapshot && !m_snapshot->mapsOnDemand) {
        if (!m_sharedRange) {
            std::vector<const ScaleSketch *> all;
            for (int64_t l = 0; l < m_snapshot->layers; ++l) {
                for (int64_t h = 0; h < m_snapshot->heads; ++h) {
                    all.push_back(sketchOf(l, h));
                }
            }
            m_sharedRange = unionRange(all, m_scale);
        }
        return *m_sharedRange;
    }
    if (!m_range) {
        m_range = colourRange(transformed().values, m_scale);
    }
    return *m_range;
}

ValueRange HeadViewModel::layerRange(int64_t layer)
{
    std::vector<const ScaleSketch *> heads;
    for (int64_t h = 0; m_snapshot && h < m_snapshot->heads; ++h) {
        heads.push_back(sketchOf(layer, h));
    }
    return unionRange(heads, m_scale);
}

const ScaleSketch *HeadViewModel::sketchOf(int64_t layer, int64_t head)
{
    if (!m_snapshot) {
        return nullptr;
    }
    if (const ScaleSketch *s = m_snapshot->sketch(layer, head, m_scale.transform)) {
        return s;
    }
    const int64_t count = m_snapshot->layers * m_snapshot->heads;
    if (m_localSketches.empty() && count > 0) {
        m_localSketches.resize(size_t(count));
        for (int64_t i = 0; i < count; ++i) {
            if (m_snapshot->hasAttention(i / m_snapshot->heads)) {
                m_localSketches[size_t(i)] =
                    sketchHead(headMatrix(m_snapshot->attention[size_t(i / m_snapshot->heads)], i % m_snapshot->heads));
            } else if (m_headMap && i == m_mapLayer * m_snapshot->heads + m_mapHead) {
                m_localSketches[size_t(i)] = sketchHead(headMatrix(*m_headMap, 0));
            }
        }
    }
    const int64_t index = layer * m_snapshot->heads + head;
    if (layer < 0 || head < 0 || head >= m_snapshot->heads || index >= count) {
        return nullptr;
    }
    return &m_localSketches[size_t(index)][m_scale.transform == ScaleTransform::Raw ? 0 : 1];
}

PooledGrid HeadViewModel::grid(const TokenWindow &window, int64_t maxX, int64_t maxY)
{
    return poolWindow(transformed(), window, maxX, maxY, m_pooling);
}

float HeadViewModel::rawValue(int64_t query, int64_t key) const
{
    if (!valid()) {
        return kNaN;
    }
    const HeadMatrix m = matrix();
    if (query < 0 || key < 0 || query >= m.rows || key >= m.cols) {
        return kNaN;
    }
    return m.at(query, key);
}

float HeadViewModel::displayValue(int64_t query, int64_t key)
{
    const TransformedHead &t = transformed();
    if (query < 0 || key < 0 || query >= t.rows || key >= t.cols) {
        return kNaN;
    }
    return t.values[size_t(query * t.cols + key)];
}

float HeadViewModel::removedMass(int64_t query)
{
    const TransformedHead &t = transformed();
    if (query < 0 || query >= static_cast<int64_t>(t.removed.size())) {
        return kNaN;
    }
    return t.removed[size_t(query)];
}

int64_t HeadViewModel::window() const
{
    return m_snapshot ? m_snapshot->windowOf(m_layer) : 0;
}

bool HeadViewModel::outsideWindow(int64_t query, int64_t key) const
{
    const int64_t w = window();
    return w > 0 && key >= 0 && key <= query - w;
}

bool HeadViewModel::masked(int64_t query, int64_t key) const
{
    const HeadMatrix m = matrix();
    return key > query + (m.cols - m.rows) || outsideWindow(query, key);
}

bool HeadViewModel::hasSinkColumn() const
{
    return m_snapshot && m_snapshot->learnedSinks() && valid();
}

const std::vector<float> &HeadViewModel::sinkColumn()
{
    if (!m_sinkColumn) {
        m_sinkColumn.emplace();
        if (hasSinkColumn()) {
            const HeadMatrix m = matrix();
            std::vector<float> &out = *m_sinkColumn;
            out.assign(size_t(m.rows), kNaN);
            const FloatArray *share = m_snapshot->sinkShareOf(m_layer);
            if (share && share->shape.size() == 2 && share->dim(0) > m_head && share->dim(1) == m.rows) {
                std::copy_n(share->data.data() + m_head * m.rows, m.rows, out.begin());
            } else {
                // The map of a long run, computed with the sink logit: its rows sum to 1 - share.
                for (int64_t q = 0; q < m.rows; ++q) {
                    double sum = 0;
                    for (int64_t k = 0; k < m.cols; ++k) {
                        sum += m.at(q, k);
                    }
                    out[size_t(q)] = static_cast<float>(std::clamp(1.0 - sum, 0.0, 1.0));
                }
            }
        }
    }
    return *m_sinkColumn;
}

float HeadViewModel::sinkShare(int64_t query)
{
    const std::vector<float> &column = sinkColumn();
    return query >= 0 && query < static_cast<int64_t>(column.size()) ? column[size_t(query)] : kNaN;
}

} // namespace sinkscope::ui
