#include "head_view_model.h"

#include <limits>

namespace sinkscope::ui {

namespace {
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
} // namespace

void HeadViewModel::setSnapshot(std::shared_ptr<const RunSnapshot> snapshot)
{
    m_snapshot = std::move(snapshot);
    m_sharedRange.reset();
    invalidate();
    if (m_snapshot) {
        m_layer = std::clamp<int64_t>(m_layer, 0, std::max<int64_t>(0, m_snapshot->layers - 1));
        m_head = std::clamp<int64_t>(m_head, 0, std::max<int64_t>(0, m_snapshot->heads - 1));
    }
}

bool HeadViewModel::valid() const
{
    return m_snapshot && m_snapshot->hasAttention(m_layer) && m_head < m_snapshot->heads;
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
}

const TransformedHead &HeadViewModel::transformed()
{
    if (!m_transformed) {
        m_transformed = valid() ? transformHead(headMatrix(m_snapshot->attention[size_t(m_layer)], m_head), m_scale.transform)
                                : TransformedHead{};
    }
    return *m_transformed;
}

ValueRange HeadViewModel::range()
{
    if (m_scale.shared && m_snapshot) {
        if (!m_sharedRange) {
            m_sharedRange = sharedRange(m_snapshot->attention, m_scale);
        }
        return *m_sharedRange;
    }
    if (!m_range) {
        m_range = colourRange(transformed().values, m_scale);
    }
    return *m_range;
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
    const HeadMatrix m = headMatrix(m_snapshot->attention[size_t(m_layer)], m_head);
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

} // namespace sinkscope::ui
