#include "sinkscope/analysis/attention_stats.h"

#include <algorithm>
#include <limits>

namespace sinkscope {
namespace {

// The mean of A[t, 0] over queries 1..T-1 (query 0 alone when T == 1); `first` points at query 0's value
// and consecutive queries are `stride` floats apart.
float queryMean(const float *first, int64_t t, int64_t stride)
{
    const int64_t firstQuery = t > 1 ? 1 : 0;
    double sum = 0;
    for (int64_t q = firstQuery; q < t; ++q) {
        sum += first[q * stride];
    }
    return static_cast<float>(sum / static_cast<double>(t - firstQuery));
}

} // namespace

std::vector<float> firstTokenMassOfLayer(const FloatArray &a)
{
    if (a.shape.size() != 3) {
        return {};
    }
    const int64_t heads = a.shape[0], t = a.shape[1], tk = a.shape[2];
    std::vector<float> out(static_cast<size_t>(heads));
    for (int64_t h = 0; h < heads; ++h) {
        out[static_cast<size_t>(h)] = queryMean(a.data.data() + h * t * tk, t, tk);
    }
    return out;
}

FloatArray firstTokenMass(const ForwardResult &result, int64_t layers, int64_t heads)
{
    FloatArray out;
    out.shape = {layers, heads};
    out.data.assign(static_cast<size_t>(layers * heads), std::numeric_limits<float>::quiet_NaN());
    for (int64_t l = 0; l < layers && l < static_cast<int64_t>(result.attention.size()); ++l) {
        const auto mass = firstTokenMassOfLayer(result.attention[static_cast<size_t>(l)]);
        std::copy_n(mass.begin(), std::min<int64_t>(heads, static_cast<int64_t>(mass.size())),
                    out.data.begin() + l * heads);
    }
    // Layers without maps: the attention engine's per-query first-token mass, same rule.
    for (int64_t l = 0; l < layers && l < static_cast<int64_t>(result.attentionStats.size()); ++l) {
        const PassAttentionStats &s = result.attentionStats[static_cast<size_t>(l)];
        const bool mapped = l < static_cast<int64_t>(result.attention.size()) &&
                            result.attention[static_cast<size_t>(l)].shape.size() == 3;
        if (s.empty() || mapped) {
            continue;
        }
        for (int64_t h = 0; h < std::min(heads, s.heads); ++h) {
            out.data[static_cast<size_t>(l * heads + h)] = queryMean(s.firstMass.data() + h * s.queries, s.queries, 1);
        }
    }
    return out;
}

} // namespace sinkscope
