// Basic attention statistics computed from captured probabilities.
#pragma once

#include "sinkscope/common/array.h"
#include "sinkscope/model/model.h"

#include <vector>

namespace sinkscope {

// Mean attention that queries 1..T-1 pay to key 0, per layer and head: [L, H]. Query 0 is left out
// because it can only attend to itself (SINKS.md M1). With T == 1 the single row is used.
// Layers without captured attention use the attention engine's statistics (ForwardResult::attentionStats)
// when the pass computed them; layers with neither are NaN.
FloatArray firstTokenMass(const ForwardResult &result, int64_t layers, int64_t heads);

// The same rule for one layer's probabilities [H, T, Tk]: one value per head; empty when the array is
// not three-dimensional.
std::vector<float> firstTokenMassOfLayer(const FloatArray &layerAttention);

} // namespace sinkscope
