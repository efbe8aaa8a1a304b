// CPU reference of the residual-stream reduction kernel (sinkscope/activation_stats.h).
#include "sinkscope/analysis/activation_stats.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace sinkscope {

Result<std::vector<LayerActivationStats>> residualActivationStats(const float *hidden, int64_t layers, int64_t tokens,
                                                                  int64_t dim, int k)
{
    if (!hidden || layers <= 0 || tokens <= 0 || dim <= 0 || k < 1) {
        return makeError(ErrorCode::InvalidArgument, "activation statistics: hidden [" + std::to_string(layers) + ", " +
                                                         std::to_string(tokens) + ", " + std::to_string(dim) +
                                                         "] with k = " + std::to_string(k) +
                                                         " (all positive, data present)");
    }
    const int64_t n = tokens * dim;
    std::vector<LayerActivationStats> out(static_cast<size_t>(layers));
    std::vector<float> abs(static_cast<size_t>(n));
    std::vector<int64_t> order(static_cast<size_t>(n));
    for (int64_t l = 0; l < layers; ++l) {
        const float *h = hidden + l * n;
        for (int64_t i = 0; i < n; ++i) {
            const float a = std::fabs(h[i]);
            abs[static_cast<size_t>(i)] = std::isnan(a) ? 0.0f : a;
            order[static_cast<size_t>(i)] = i;
        }
        const auto kk = static_cast<size_t>(std::min<int64_t>(k, n));
        // Larger |h| first; ties by flat index = (token, dim) ascending, the order the kernel uses too.
        std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(kk), order.end(),
                          [&](int64_t a, int64_t b) {
                              const float x = abs[static_cast<size_t>(a)], y = abs[static_cast<size_t>(b)];
                              return x > y || (x == y && a < b);
                          });
        LayerActivationStats &s = out[static_cast<size_t>(l)];
        for (size_t i = 0; i < kk; ++i) {
            const int64_t idx = order[i];
            s.top.push_back({std::isnan(h[idx]) ? 0.0f : h[idx], idx / dim, idx % dim});
        }
        const auto mid = abs.begin() + (n - 1) / 2;
        std::nth_element(abs.begin(), mid, abs.end());
        s.median = *mid;
    }
    return out;
}

} // namespace sinkscope
