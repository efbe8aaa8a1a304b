// The numbers behind every attention view: per-head summaries, colour-scale transforms and
// screen-resolution pooling. Pure functions of their inputs (no Qt, no LibTorch), so the compute
// thread, the views, the exporters and the tests all get the same values.
//
// Layouts follow the core: one layer's attention is [H, T, Tk] row-major (head, query, key); a head's
// matrix is [T, Tk] with row = query, column = key; key 0 is the first token (the usual sink).
// Cells a query cannot see (key > query under the causal mask) are NaN after transformHead(), so
// views draw them as background and statistics skip them.
#pragma once

#include "sinkscope/analysis/attention_stats.h"
#include "sinkscope/common/array.h"

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

namespace sinkscope {
struct HeadMetric;
} // namespace sinkscope

namespace sinkscope::ui {

// A read-only view of one head's [T, Tk] probabilities inside a layer array.
struct HeadMatrix {
    const float *data = nullptr;
    int64_t rows = 0; // queries T
    int64_t cols = 0; // keys Tk
    float at(int64_t q, int64_t k) const { return data[q * cols + k]; }
    bool valid() const { return data != nullptr && rows > 0 && cols > 0; }
};

// Head `head` of a layer array [H, T, Tk]; an invalid (empty) matrix when out of range or not captured.
HeadMatrix headMatrix(const FloatArray &layerAttention, int64_t head);

// Per-head summaries (first-token mass, entropies, attention received, ...) come from the core's
// sinkscope::computeMetrics (metrics.h), computed once per run on the compute thread (run_snapshot.h).

enum class ScaleMapping { Linear, Log };
enum class ScaleTransform {
    Raw,                    // the probabilities as computed
    RenormaliseWithoutSink, // key 0 removed, each row divided by (1 - p[q, 0]); the removed mass kept apart
};

struct ColourScale {
    ScaleMapping mapping = ScaleMapping::Linear;
    ScaleTransform transform = ScaleTransform::Raw;
    bool clampPercentile = false; // upper end of the range at this percentile of the visible cells
    double percentile = 99.0;     // in (0, 100]
    bool shared = false;          // one range for every head (see sharedRange)
    bool operator==(const ColourScale &) const = default;
};

// One head after the colour-scale transform, at full resolution.
struct TransformedHead {
    int64_t rows = 0;
    int64_t cols = 0;
    std::vector<float> values;  // [rows, cols]; NaN where masked or removed
    std::vector<float> removed; // [rows]: p[q, 0] taken out by RenormaliseWithoutSink (else empty)
};

TransformedHead transformHead(const HeadMatrix &head, ScaleTransform transform);

struct ValueRange {
    double lower = 0;
    double upper = 1;
    bool operator==(const ValueRange &) const = default;
};

// The colour range of a set of values (NaN skipped): [min, max], or [min, percentile] when clamping.
// Log mapping: the lower end is the smallest positive value, but never below upper * 1e-5 (five decades).
// Degenerate inputs give a small non-empty range. At most `sampleLimit` values are looked at (evenly
// strided) for the percentile, so a 4k x 4k head costs the same as a 512 x 512 one.
ValueRange colourRange(std::span<const float> values, const ColourScale &scale, size_t sampleLimit = 1 << 18);

// A bounded summary of one head's visible values under one transform, from which the colour range of
// any mapping and percentile follows without touching the T x T matrix again. Made for every head on
// the compute thread (run_snapshot.cpp), so the shared scale costs the UI O(heads x sampleLimit).
struct ScaleSketch {
    float minValue = std::numeric_limits<float>::quiet_NaN();    // exact, over every visible cell
    float maxValue = std::numeric_limits<float>::quiet_NaN();    // exact
    float minPositive = std::numeric_limits<float>::quiet_NaN(); // exact; NaN when nothing is positive
    std::vector<float> sample; // at most sampleLimit visible values, evenly strided (for percentiles)
    bool empty() const { return std::isnan(maxValue); }
};

// One pass over the head's visible cells (the causal triangle) for both transforms at once:
// sketches[0] is ScaleTransform::Raw, sketches[1] RenormaliseWithoutSink.
std::array<ScaleSketch, 2> sketchHead(const HeadMatrix &head, size_t sampleLimit = 2048);

// The colour range of one head from its sketch; equals colourRange() of the head's transformed values
// when the sample holds all of them (percentiles from the sample otherwise).
ValueRange sketchRange(const ScaleSketch &sketch, const ColourScale &scale);

// The union of the per-head ranges: what "shared scale" and the layer grid use. Empty input gives
// the default range of the mapping.
ValueRange unionRange(std::span<const ScaleSketch *const> sketches, const ColourScale &scale);

enum class Pooling { Max, Mean };

// A rectangle of token coordinates, inclusive first/last query and key.
struct TokenWindow {
    int64_t firstQuery = 0, lastQuery = -1;
    int64_t firstKey = 0, lastKey = -1;
};

// A pooled grid ready for a colour map. Cell (i, j) (key i, query j) covers `keysPerCell` keys and
// `queriesPerCell` queries starting at window.first*; its centre in token coordinates is
// keyCentre(i) / queryCentre(j).
struct PooledGrid {
    int64_t nx = 0; // key cells
    int64_t ny = 0; // query cells
    int64_t keysPerCell = 1;
    int64_t queriesPerCell = 1;
    TokenWindow window;
    std::vector<float> data; // [ny, nx] row-major, NaN for cells with nothing visible
    double keyCentre(int64_t i) const;
    double queryCentre(int64_t j) const;
    float at(int64_t keyCell, int64_t queryCell) const { return data[queryCell * nx + keyCell]; }
};

// Pools the window of a transformed head to at most maxX x maxY cells (integer pooling factors, so a
// cell is a whole number of tokens). Max pooling keeps thin stripes (the sink column) visible; mean
// pooling keeps totals. NaN cells are ignored; a cell with only NaN stays NaN.
PooledGrid poolWindow(const TransformedHead &head, TokenWindow window, int64_t maxX, int64_t maxY, Pooling pooling);

// A per-head metric's [L, H] values (metrics.h) as a grid: x = head, y = layer; NaN where undefined.
// Empty (nx = ny = 0) when the values are not [L, H].
PooledGrid headMetricGrid(const HeadMetric &metric);

// A symmetric range around zero covering every finite value (differences on a diverging map).
ValueRange symmetricRange(std::span<const float> values);

// Maps a value into [0, 1] under a range and mapping (log: values <= lower clamp to 0). NaN stays NaN.
double normalisedValue(double value, const ValueRange &range, ScaleMapping mapping);

} // namespace sinkscope::ui
