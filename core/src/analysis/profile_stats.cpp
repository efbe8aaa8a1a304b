// Profile statistics: the per-sample layout, one sample's values, and the bootstrap summaries.
#include "sinkscope/analysis/profile.h"
#include "sinkscope/runtime/parallel.h"

#include "profile_internal.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace sinkscope {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// numpy.quantile's default (linear interpolation between order statistics) of sorted values.
double quantile(const std::vector<double> &sorted, double q)
{
    if (sorted.empty()) {
        return kNaN;
    }
    const double pos = q * static_cast<double>(sorted.size() - 1);
    const auto lo = static_cast<size_t>(std::floor(pos));
    const size_t hi = std::min(lo + 1, sorted.size() - 1);
    return sorted[lo] + (pos - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

} // namespace

const ProfileBlock *ProfileLayout::block(const std::string &name) const
{
    for (const auto &b : blocks) {
        if (b.name == name) {
            return &b;
        }
    }
    return nullptr;
}

bool ProfileLayout::operator==(const ProfileLayout &o) const
{
    if (layers != o.layers || heads != o.heads || blocks.size() != o.blocks.size()) {
        return false;
    }
    for (size_t i = 0; i < blocks.size(); ++i) {
        if (blocks[i].name != o.blocks[i].name || blocks[i].size != o.blocks[i].size ||
            blocks[i].offset != o.blocks[i].offset) {
            return false;
        }
    }
    return true;
}

ProfileLayout profileLayout(const SinkMetrics &metrics)
{
    ProfileLayout layout;
    layout.layers = metrics.layers;
    layout.heads = metrics.heads;
    const int64_t L = metrics.layers, H = metrics.heads;
    auto add = [&](std::string name, std::string description, int64_t size) {
        const int64_t offset = layout.width();
        layout.blocks.push_back({std::move(name), std::move(description), size, offset});
    };
    for (const auto &m : metrics.headMetrics) {
        add("head." + m.name, m.description, L * H);
    }
    for (const auto &m : metrics.headMetrics) {
        add("layer." + m.name, "mean over the layer's heads of " + m.name, L);
    }
    add("layer.sink_1", "% of the layer's heads with alpha_1 > epsilon (Gu et al. 2025, per layer)", L);
    add("layer.massive_top1", "largest |h| of the layer's output (Sun et al. 2024)", L);
    add("layer.massive_top2", "second largest |h| of the layer's output (Sun et al. 2024)", L);
    add("layer.massive_top3", "third largest |h| of the layer's output (Sun et al. 2024)", L);
    add("layer.massive_median", "median |h| of the layer's output (Sun et al. 2024)", L);
    add("layer.massive_ratio", "largest |h| over the median |h| (Sun et al. 2024)", L);
    add("model.sink_1", "Sink_1^epsilon: % of all heads with alpha_1 > epsilon (Gu et al. 2025, M2)", 1);
    add("model.first_token_mass", "mean over all heads of first_token_mass (M1)", 1);
    add("model.massive_count", "activations with |h| > 100 and |h| / median > 1000 (Sun et al. 2024, M6)", 1);
    add("model.massive_ratio", "the largest massive_ratio over layers (M6)", 1);
    return layout;
}

std::vector<double> profileValues(const SinkMetrics &metrics, const ProfileLayout &layout)
{
    std::vector<double> v(static_cast<size_t>(layout.width()), kNaN);
    const int64_t L = layout.layers, H = layout.heads;
    auto put = [&](const std::string &name, int64_t i, double value) {
        if (const ProfileBlock *b = layout.block(name); b && i < b->size) {
            v[static_cast<size_t>(b->offset + i)] = value;
        }
    };
    double allSum = 0;
    int64_t allCount = 0;
    for (const auto &m : metrics.headMetrics) {
        if (static_cast<int64_t>(m.values.data.size()) != L * H) {
            continue;
        }
        for (int64_t l = 0; l < L; ++l) {
            double sum = 0;
            int64_t n = 0;
            for (int64_t h = 0; h < H; ++h) {
                const double x = m.values.data[static_cast<size_t>(l * H + h)];
                put("head." + m.name, l * H + h, x);
                if (std::isfinite(x)) {
                    sum += x;
                    ++n;
                }
            }
            put("layer." + m.name, l, n > 0 ? sum / static_cast<double>(n) : kNaN);
            if (m.name == "first_token_mass") {
                allSum += sum;
                allCount += n;
            }
        }
    }
    for (int64_t l = 0; l < L && l < static_cast<int64_t>(metrics.sinkFractionByLayer.size()); ++l) {
        put("layer.sink_1", l, 100.0 * metrics.sinkFractionByLayer[static_cast<size_t>(l)]);
    }
    double maxRatio = kNaN;
    for (const auto &a : metrics.activationsByLayer) {
        put("layer.massive_top1", a.layer, a.top[0]);
        put("layer.massive_top2", a.layer, a.top[1]);
        put("layer.massive_top3", a.layer, a.top[2]);
        put("layer.massive_median", a.layer, a.median);
        put("layer.massive_ratio", a.layer, a.ratio);
        if (std::isfinite(a.ratio) && !(a.ratio <= maxRatio)) {
            maxRatio = a.ratio;
        }
    }
    put("model.sink_1", 0, 100.0 * metrics.sinkFraction);
    put("model.first_token_mass", 0, allCount > 0 ? allSum / static_cast<double>(allCount) : kNaN);
    if (metrics.hasHidden) {
        put("model.massive_count", 0, static_cast<double>(metrics.massiveCount));
        put("model.massive_ratio", 0, maxRatio);
    }
    return v;
}

std::vector<ProfileStat> summarize(const ProfileCell &cell, const ProfileSettings &settings)
{
    const auto width = static_cast<size_t>(cell.layout.width());
    const size_t n = cell.samples.size();
    std::vector<ProfileStat> stats(width);
    // The means: sums and counts over the samples in sample order.
    for (size_t s = 0; s < width; ++s) {
        double sum = 0;
        int64_t count = 0;
        for (const auto &sample : cell.samples) {
            const double x = sample.values[s];
            if (std::isfinite(x)) {
                sum += x;
                ++count;
            }
        }
        stats[s].n = count;
        stats[s].mean = count > 0 ? sum / static_cast<double>(count) : kNaN;
        stats[s].low = stats[s].high = kNaN;
    }
    if (settings.bootstrap <= 0 || n == 0) {
        return stats;
    }
    // Each resample: n draws with replacement (drawn in order, so the result does not depend on threads),
    // as multiplicities; then the weighted mean of every value, resamples in parallel.
    const auto B = static_cast<size_t>(settings.bootstrap);
    std::vector<int32_t> multiplicity(B * n, 0); // [B, n]
    profile_detail::SplitMix64 draws(profileSampleSeed(settings.seed, "bootstrap:" + cell.model + "/" + cell.data, 0));
    for (size_t b = 0; b < B; ++b) {
        for (size_t i = 0; i < n; ++i) {
            ++multiplicity[b * n + static_cast<size_t>(draws.below(n))];
        }
    }
    std::vector<double> means(B * width, kNaN); // [B, width]
    parallelFor(static_cast<int64_t>(B), 8, [&](int64_t begin, int64_t end) {
        std::vector<double> sum(width);
        std::vector<int64_t> count(width);
        for (auto b = static_cast<size_t>(begin); b < static_cast<size_t>(end); ++b) {
            std::fill(sum.begin(), sum.end(), 0.0);
            std::fill(count.begin(), count.end(), 0);
            for (size_t i = 0; i < n; ++i) {
                const int32_t m = multiplicity[b * n + i];
                if (m == 0) {
                    continue;
                }
                const std::vector<double> &x = cell.samples[i].values;
                for (size_t s = 0; s < width; ++s) {
                    if (std::isfinite(x[s])) {
                        sum[s] += m * x[s];
                        count[s] += m;
                    }
                }
            }
            for (size_t s = 0; s < width; ++s) {
                if (count[s] > 0) {
                    means[b * width + s] = sum[s] / static_cast<double>(count[s]);
                }
            }
        }
    });
    const double alpha = (1.0 - settings.confidence) / 2.0;
    std::vector<double> column;
    for (size_t s = 0; s < width; ++s) {
        column.clear();
        for (size_t b = 0; b < B; ++b) {
            const double m = means[b * width + s];
            if (std::isfinite(m)) {
                column.push_back(m);
            }
        }
        std::sort(column.begin(), column.end());
        stats[s].low = quantile(column, alpha);
        stats[s].high = quantile(column, 1.0 - alpha);
    }
    return stats;
}

const ProfileCell *Profile::cell(const std::string &model, const std::string &data) const
{
    for (const auto &c : cells) {
        if (c.model == model && c.data == data) {
            return &c;
        }
    }
    return nullptr;
}

} // namespace sinkscope
