#include "attention_math.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace sinkscope::ui {

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

bool isLayerArray(const FloatArray &a)
{
    return a.shape.size() == 3 && !a.data.empty() && static_cast<int64_t>(a.data.size()) == a.numel();
}

// Queries t >= 1 when there are several (query 0 can only see itself), else the single row.
int64_t firstCountedQuery(int64_t rows)
{
    return rows > 1 ? 1 : 0;
}

} // namespace

HeadMatrix headMatrix(const FloatArray &layerAttention, int64_t head)
{
    if (!isLayerArray(layerAttention) || head < 0 || head >= layerAttention.dim(0)) {
        return {};
    }
    const int64_t rows = layerAttention.dim(1);
    const int64_t cols = layerAttention.dim(2);
    return HeadMatrix{layerAttention.data.data() + head * rows * cols, rows, cols};
}

std::vector<float> meanRowEntropy(const FloatArray &layerAttention)
{
    if (!isLayerArray(layerAttention)) {
        return {};
    }
    const int64_t heads = layerAttention.dim(0);
    std::vector<float> out(static_cast<size_t>(heads), kNaN);
    for (int64_t h = 0; h < heads; ++h) {
        const HeadMatrix m = headMatrix(layerAttention, h);
        const int64_t first = firstCountedQuery(m.rows);
        double sum = 0;
        for (int64_t q = first; q < m.rows; ++q) {
            double entropy = 0;
            for (int64_t k = 0; k < m.cols; ++k) {
                const double p = m.at(q, k);
                if (p > 0) {
                    entropy -= p * std::log(p);
                }
            }
            sum += entropy;
        }
        out[static_cast<size_t>(h)] = static_cast<float>(sum / double(m.rows - first));
    }
    return out;
}

std::vector<float> receivedAttention(const FloatArray &layerAttention)
{
    if (!isLayerArray(layerAttention)) {
        return {};
    }
    const int64_t heads = layerAttention.dim(0);
    const int64_t rows = layerAttention.dim(1);
    const int64_t cols = layerAttention.dim(2);
    std::vector<double> sum(static_cast<size_t>(cols), 0.0);
    for (int64_t h = 0; h < heads; ++h) {
        const HeadMatrix m = headMatrix(layerAttention, h);
        for (int64_t q = 0; q < rows; ++q) {
            const float *row = m.data + q * cols;
            for (int64_t k = 0; k < cols; ++k) {
                sum[static_cast<size_t>(k)] += row[k];
            }
        }
    }
    std::vector<float> out(static_cast<size_t>(cols));
    const double denominator = double(heads) * double(rows);
    for (size_t k = 0; k < out.size(); ++k) {
        out[k] = static_cast<float>(sum[k] / denominator);
    }
    return out;
}

TransformedHead transformHead(const HeadMatrix &head, ScaleTransform transform)
{
    TransformedHead out;
    if (!head.valid()) {
        return out;
    }
    out.rows = head.rows;
    out.cols = head.cols;
    out.values.resize(static_cast<size_t>(head.rows * head.cols));
    // With a KV prefix (Tk > T) the query t sees keys up to t + (Tk - T).
    const int64_t offset = head.cols - head.rows;
    if (transform == ScaleTransform::RenormaliseWithoutSink) {
        out.removed.resize(static_cast<size_t>(head.rows));
    }
    for (int64_t q = 0; q < head.rows; ++q) {
        const float *in = head.data + q * head.cols;
        float *dst = out.values.data() + q * head.cols;
        const int64_t lastVisible = std::min(head.cols - 1, q + offset);
        if (transform == ScaleTransform::Raw) {
            for (int64_t k = 0; k < head.cols; ++k) {
                dst[k] = k <= lastVisible ? in[k] : kNaN;
            }
            continue;
        }
        const float sink = in[0];
        out.removed[static_cast<size_t>(q)] = sink;
        const double rest = 1.0 - double(sink);
        // A row that put (almost) everything on the sink has nothing left to renormalise.
        const bool empty = rest < 1e-9;
        dst[0] = kNaN;
        for (int64_t k = 1; k < head.cols; ++k) {
            dst[k] = (k <= lastVisible && !empty) ? static_cast<float>(double(in[k]) / rest) : kNaN;
        }
    }
    return out;
}

ValueRange colourRange(std::span<const float> values, const ColourScale &scale, size_t sampleLimit)
{
    double lo = std::numeric_limits<double>::infinity();
    double hi = -std::numeric_limits<double>::infinity();
    double minPositive = std::numeric_limits<double>::infinity();
    for (float v : values) {
        if (std::isnan(v)) {
            continue;
        }
        lo = std::min(lo, double(v));
        hi = std::max(hi, double(v));
        if (v > 0) {
            minPositive = std::min(minPositive, double(v));
        }
    }
    if (!std::isfinite(lo)) {
        return scale.mapping == ScaleMapping::Log ? ValueRange{1e-5, 1} : ValueRange{0, 1};
    }
    if (scale.clampPercentile && scale.percentile < 100.0) {
        std::vector<float> sample;
        const size_t stride = std::max<size_t>(1, values.size() / std::max<size_t>(1, sampleLimit));
        sample.reserve(values.size() / stride + 1);
        for (size_t i = 0; i < values.size(); i += stride) {
            if (!std::isnan(values[i])) {
                sample.push_back(values[i]);
            }
        }
        if (!sample.empty()) {
            const double p = std::clamp(scale.percentile, 0.0, 100.0) / 100.0;
            const auto index = static_cast<size_t>(std::llround(p * double(sample.size() - 1)));
            std::nth_element(sample.begin(), sample.begin() + static_cast<std::ptrdiff_t>(index), sample.end());
            hi = sample[index];
        }
    }
    if (scale.mapping == ScaleMapping::Log) {
        if (!(hi > 0)) {
            return ValueRange{1e-5, 1};
        }
        lo = std::max(std::isfinite(minPositive) ? minPositive : hi * 1e-5, hi * 1e-5);
        if (lo >= hi) {
            lo = hi * 1e-1;
        }
        return ValueRange{lo, hi};
    }
    // Probabilities start at zero; anchoring the lower end there keeps "no attention" one colour.
    lo = std::min(lo, 0.0);
    if (hi <= lo) {
        hi = lo + 1e-6;
    }
    return ValueRange{lo, hi};
}

ValueRange sharedRange(const std::vector<FloatArray> &attention, const ColourScale &scale)
{
    ValueRange out{std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()};
    bool any = false;
    std::vector<float> rows;
    for (const FloatArray &layer : attention) {
        if (!isLayerArray(layer)) {
            continue;
        }
        for (int64_t h = 0; h < layer.dim(0); ++h) {
            const HeadMatrix m = headMatrix(layer, h);
            // Whole rows at a stride (~64k cells per head): hundreds of heads in tens of milliseconds,
            // and every sampled row keeps its sink column, where the largest values sit.
            const int64_t stride = std::max<int64_t>(1, (m.rows * m.cols) / 65536);
            rows.clear();
            for (int64_t q = m.rows - 1; q >= 0; q -= stride) {
                const TransformedHead one = transformHead(HeadMatrix{m.data + q * m.cols, 1, m.cols}, ScaleTransform::Raw);
                std::vector<float> row(one.values);
                // Causal visibility of row q inside the full head.
                for (int64_t k = q + (m.cols - m.rows) + 1; k < m.cols; ++k) {
                    row[size_t(k)] = kNaN;
                }
                if (scale.transform == ScaleTransform::RenormaliseWithoutSink) {
                    const double rest = 1.0 - double(row[0]);
                    for (auto &v : row) {
                        v = rest < 1e-9 ? kNaN : static_cast<float>(double(v) / rest);
                    }
                    row[0] = kNaN;
                }
                rows.insert(rows.end(), row.begin(), row.end());
            }
            const ValueRange r = colourRange(rows, scale);
            out.lower = std::min(out.lower, r.lower);
            out.upper = std::max(out.upper, r.upper);
            any = true;
        }
    }
    if (!any) {
        return scale.mapping == ScaleMapping::Log ? ValueRange{1e-5, 1} : ValueRange{0, 1};
    }
    return out;
}

double PooledGrid::keyCentre(int64_t i) const
{
    return double(window.firstKey) + (double(i) + 0.5) * double(keysPerCell) - 0.5;
}

double PooledGrid::queryCentre(int64_t j) const
{
    return double(window.firstQuery) + (double(j) + 0.5) * double(queriesPerCell) - 0.5;
}

PooledGrid poolWindow(const TransformedHead &head, TokenWindow window, int64_t maxX, int64_t maxY, Pooling pooling)
{
    PooledGrid grid;
    if (head.rows <= 0 || head.cols <= 0) {
        return grid;
    }
    window.firstQuery = std::clamp<int64_t>(window.firstQuery, 0, head.rows - 1);
    window.lastQuery = std::clamp<int64_t>(window.lastQuery < 0 ? head.rows - 1 : window.lastQuery,
                                           window.firstQuery, head.rows - 1);
    window.firstKey = std::clamp<int64_t>(window.firstKey, 0, head.cols - 1);
    window.lastKey = std::clamp<int64_t>(window.lastKey < 0 ? head.cols - 1 : window.lastKey, window.firstKey,
                                         head.cols - 1);
    const int64_t keys = window.lastKey - window.firstKey + 1;
    const int64_t queries = window.lastQuery - window.firstQuery + 1;
    maxX = std::max<int64_t>(1, maxX);
    maxY = std::max<int64_t>(1, maxY);
    grid.keysPerCell = (keys + maxX - 1) / maxX;
    grid.queriesPerCell = (queries + maxY - 1) / maxY;
    grid.nx = (keys + grid.keysPerCell - 1) / grid.keysPerCell;
    grid.ny = (queries + grid.queriesPerCell - 1) / grid.queriesPerCell;
    grid.window = window;
    grid.data.assign(static_cast<size_t>(grid.nx * grid.ny), kNaN);
    if (grid.keysPerCell == 1 && grid.queriesPerCell == 1) {
        for (int64_t j = 0; j < grid.ny; ++j) {
            const float *src = head.values.data() + (window.firstQuery + j) * head.cols + window.firstKey;
            std::copy(src, src + grid.nx, grid.data.begin() + j * grid.nx);
        }
        return grid;
    }
    // Accumulate row by row so the full-resolution head is read once, in memory order.
    std::vector<double> acc(static_cast<size_t>(grid.nx));
    std::vector<int64_t> count(static_cast<size_t>(grid.nx));
    for (int64_t j = 0; j < grid.ny; ++j) {
        std::fill(acc.begin(), acc.end(), pooling == Pooling::Max ? -std::numeric_limits<double>::infinity() : 0.0);
        std::fill(count.begin(), count.end(), 0);
        const int64_t q0 = window.firstQuery + j * grid.queriesPerCell;
        const int64_t q1 = std::min(window.lastQuery + 1, q0 + grid.queriesPerCell);
        for (int64_t q = q0; q < q1; ++q) {
            const float *row = head.values.data() + q * head.cols;
            for (int64_t k = window.firstKey; k <= window.lastKey; ++k) {
                const float v = row[k];
                if (std::isnan(v)) {
                    continue;
                }
                const auto cell = static_cast<size_t>((k - window.firstKey) / grid.keysPerCell);
                if (pooling == Pooling::Max) {
                    acc[cell] = std::max(acc[cell], double(v));
                } else {
                    acc[cell] += v;
                }
                ++count[cell];
            }
        }
        float *dst = grid.data.data() + j * grid.nx;
        for (int64_t i = 0; i < grid.nx; ++i) {
            if (count[static_cast<size_t>(i)] > 0) {
                dst[i] = static_cast<float>(pooling == Pooling::Max ? acc[static_cast<size_t>(i)]
                                                                   : acc[static_cast<size_t>(i)] /
                                                                         double(count[static_cast<size_t>(i)]));
            }
        }
    }
    return grid;
}

double normalisedValue(double value, const ValueRange &range, ScaleMapping mapping)
{
    if (std::isnan(value)) {
        return value;
    }
    double t = 0;
    if (mapping == ScaleMapping::Log) {
        const double lo = std::max(range.lower, 1e-30);
        const double hi = std::max(range.upper, lo * 1.000001);
        t = value <= lo ? 0.0 : std::log(value / lo) / std::log(hi / lo);
    } else {
        const double span = range.upper - range.lower;
        t = span > 0 ? (value - range.lower) / span : 0.0;
    }
    return std::clamp(t, 0.0, 1.0);
}

} // namespace sinkscope::ui
