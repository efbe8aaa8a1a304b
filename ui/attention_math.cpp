#include "attention_math.h"

#include "sinkscope/analysis/metrics.h"

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

ValueRange defaultRange(ScaleMapping mapping)
{
    return mapping == ScaleMapping::Log ? ValueRange{1e-5, 1} : ValueRange{0, 1};
}

// The colour range from the extremes and the upper end (percentile-clamped or not), for colourRange()
// and the sketches of the shared scale.
ValueRange finishRange(double lo, double hi, double minPositive, ScaleMapping mapping)
{
    if (mapping == ScaleMapping::Log) {
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
        return defaultRange(scale.mapping);
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
    return finishRange(lo, hi, minPositive, scale.mapping);
}

std::array<ScaleSketch, 2> sketchHead(const HeadMatrix &head, size_t sampleLimit)
{
    std::array<ScaleSketch, 2> out;
    if (!head.valid()) {
        return out;
    }
    const int64_t offset = head.cols - head.rows;
    int64_t visible = 0;
    for (int64_t q = 0; q < head.rows; ++q) {
        visible += std::clamp<int64_t>(q + offset + 1, 0, head.cols);
    }
    const int64_t stride =
        std::max<int64_t>(1, (visible + int64_t(sampleLimit) - 1) / int64_t(std::max<size_t>(1, sampleLimit)));
    constexpr double inf = std::numeric_limits<double>::infinity();
    double rawMin = inf, rawMax = -inf, rawPos = inf;
    double renMin = inf, renMax = -inf, renPos = inf;
    out[0].sample.reserve(sampleLimit);
    out[1].sample.reserve(sampleLimit);
    int64_t index = 0; // running index of visible cells, for the strided sample
    for (int64_t q = 0; q < head.rows; ++q) {
        const float *row = head.data + q * head.cols;
        const int64_t last = std::min(head.cols - 1, q + offset);
        if (last < 0) {
            continue;
        }
        // Row statistics over keys >= 1; the renormalised row is the raw one divided by (1 - p0).
        const double p0 = row[0];
        double lo = inf, hi = -inf, pos = inf;
        for (int64_t k = 1; k <= last; ++k) {
            const double v = row[k];
            lo = std::min(lo, v);
            hi = std::max(hi, v);
            if (v > 0) {
                pos = std::min(pos, v);
            }
        }
        rawMin = std::min({rawMin, p0, lo});
        rawMax = std::max({rawMax, p0, hi});
        rawPos = std::min(rawPos, p0 > 0 ? std::min(p0, pos) : pos);
        const double rest = 1.0 - p0;
        const bool renormalisable = rest >= 1e-9 && last >= 1;
        if (renormalisable) {
            renMin = std::min(renMin, lo / rest);
            renMax = std::max(renMax, hi / rest);
            if (std::isfinite(pos)) {
                renPos = std::min(renPos, pos / rest);
            }
        }
        // The sample: every stride-th visible cell of the row (cell 0 included for Raw only).
        int64_t k = (stride - index % stride) % stride;
        for (; k <= last; k += stride) {
            out[0].sample.push_back(row[k]);
            if (k >= 1 && renormalisable) {
                out[1].sample.push_back(static_cast<float>(double(row[k]) / rest));
            }
        }
        index += last + 1;
    }
    auto finish = [](ScaleSketch &s, double lo, double hi, double pos) {
        if (std::isfinite(hi)) {
            s.minValue = static_cast<float>(lo);
            s.maxValue = static_cast<float>(hi);
            s.minPositive = std::isfinite(pos) ? static_cast<float>(pos) : kNaN;
        }
    };
    finish(out[0], rawMin, rawMax, rawPos);
    finish(out[1], renMin, renMax, renPos);
    return out;
}

ValueRange sketchRange(const ScaleSketch &sketch, const ColourScale &scale)
{
    if (sketch.empty()) {
        return defaultRange(scale.mapping);
    }
    double hi = sketch.maxValue;
    if (scale.clampPercentile && scale.percentile < 100.0 && !sketch.sample.empty()) {
        std::vector<float> sample(sketch.sample);
        const double p = std::clamp(scale.percentile, 0.0, 100.0) / 100.0;
        const auto index = static_cast<size_t>(std::llround(p * double(sample.size() - 1)));
        std::nth_element(sample.begin(), sample.begin() + static_cast<std::ptrdiff_t>(index), sample.end());
        hi = sample[index];
    }
    return finishRange(sketch.minValue, hi,
                       std::isnan(sketch.minPositive) ? std::numeric_limits<double>::infinity()
                                                      : double(sketch.minPositive),
                       scale.mapping);
}

ValueRange unionRange(std::span<const ScaleSketch *const> sketches, const ColourScale &scale)
{
    ValueRange out{std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()};
    bool any = false;
    for (const ScaleSketch *s : sketches) {
        if (!s || s->empty()) {
            continue;
        }
        const ValueRange r = sketchRange(*s, scale);
        out.lower = std::min(out.lower, r.lower);
        out.upper = std::max(out.upper, r.upper);
        any = true;
    }
    return any ? out : defaultRange(scale.mapping);
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
    window.lastQuery =
        std::clamp<int64_t>(window.lastQuery < 0 ? head.rows - 1 : window.lastQuery, window.firstQuery, head.rows - 1);
    window.firstKey = std::clamp<int64_t>(window.firstKey, 0, head.cols - 1);
    window.lastKey =
        std::clamp<int64_t>(window.lastKey < 0 ? head.cols - 1 : window.lastKey, window.firstKey, head.cols - 1);
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
                dst[i] = static_cast<float>(pooling == Pooling::Max
                                                ? acc[static_cast<size_t>(i)]
                                                : acc[static_cast<size_t>(i)] / double(count[static_cast<size_t>(i)]));
            }
        }
    }
    return grid;
}

PooledGrid headMetricGrid(const HeadMetric &metric)
{
    PooledGrid grid;
    if (metric.values.shape.size() != 2) {
        return grid;
    }
    grid.ny = metric.values.dim(0);
    grid.nx = metric.values.dim(1);
    grid.window = TokenWindow{0, grid.ny - 1, 0, grid.nx - 1};
    grid.data = metric.values.data;
    grid.data.resize(size_t(grid.nx * grid.ny), kNaN);
    return grid;
}

ValueRange symmetricRange(std::span<const float> values)
{
    double m = 0;
    for (float v : values) {
        if (!std::isnan(v)) {
            m = std::max(m, std::fabs(double(v)));
        }
    }
    if (m <= 0) {
        m = 1e-6;
    }
    return {-m, m};
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
