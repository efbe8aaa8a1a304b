#include "sinkscope/attention_stats.h"

#include <limits>

namespace sinkscope {

FloatArray firstTokenMass(const ForwardResult &result, int64_t layers, int64_t heads)
{
    FloatArray out;
    out.shape = {layers, heads};
    out.data.assign(static_cast<size_t>(layers * heads), std::numeric_limits<float>::quiet_NaN());
    for (int64_t l = 0; l < layers && l < static_cast<int64_t>(result.attention.size()); ++l) {
        const FloatArray &a = result.attention[static_cast<size_t>(l)];
        if (a.shape.size() != 3) {
            continue;
        }
        const int64_t h = std::min(heads, a.shape[0]), t = a.shape[1], tk = a.shape[2];
        const int64_t firstQuery = t > 1 ? 1 : 0;
        for (int64_t hh = 0; hh < h; ++hh) {
            double sum = 0;
            for (int64_t q = firstQuery; q < t; ++q) {
                sum += a.data[static_cast<size_t>((hh * t + q) * tk)];
            }
            out.data[static_cast<size_t>(l * heads + hh)] = static_cast<float>(sum / static_cast<double>(t - firstQuery));
        }
    }
    return out;
}

} // namespace sinkscope
