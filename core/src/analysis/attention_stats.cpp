#include "sinkscope/analysis/attention_stats.h"

#include <algorithm>
#include <limits>

namespace sinkscope {

std::vector<float> firstTokenMassOfLayer(const FloatArray &a)
{
    if (a.shape.size() != 3) {
        return {};
    }
    const int64_t heads = a.shape[0], t = a.shape[1], tk = a.shape[2];
    const int64_t firstQuery = t > 1 ? 1 : 0;
    std::vector<float> out(static_cast<size_t>(heads));
    for (int64_t h = 0; h < heads; ++h) {
        double sum = 0;
        for (int64_t q = firstQuery; q < t; ++q) {
            sum += a.data[static_cast<size_t>((h * t + q) * tk)];
        }
        out[static_cast<size_t>(h)] = static_cast<float>(sum / static_cast<double>(t - firstQuery));
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
        const int64_t t = s.queries, firstQuery = t > 1 ? 1 : 0;
        for (int64_t h = 0; h < std::min(heads, s.heads); ++h) {
            double sum = 0;
            for (int64_t q = firstQuery; q < t; ++q) {
                sum += s.firstMass[static_cast<size_t>(h * t + q)];
            }
            out.data[static_cast<size_t>(l * heads + h)] =
                static_cast<float>(sum / static_cast<double>(t - firstQuery));
        }
    }
    return out;
}

} // namespace sinkscope
