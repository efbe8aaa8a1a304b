// Sink metrics: the materialised attention path, the finalisation shared with the streaming path, the
// hidden-state metrics (massive activations, secondary sinks) and the JSON / CSV writers.
// Formulas: SINKS.md §2 (M1-M6, M9, M11); docs/metrics.md says where each comes from.
#include "sinkscope/analysis/metrics.h"
#include "sinkscope/runtime/memory.h"

#include "sinkscope/common/csv.h"

#include "analysis/metrics_internal.h"
#include "model/layer_tensors.h"
#include "sinkscope/runtime/parallel.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <optional>
#include <set>
#include <sstream>

namespace sinkscope {

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

size_t idx(int64_t i)
{
    return static_cast<size_t>(i);
}

std::string shapeText(const std::vector<int64_t> &shape)
{
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        s += (i ? ", " : "") + std::to_string(shape[i]);
    }
    return s + "]";
}

bool hasShape(const FloatArray &a, const std::vector<int64_t> &shape)
{
    return a.shape == shape && static_cast<int64_t>(a.data.size()) == a.numel();
}

bool allAttentionPresent(const ForwardResult &r, int64_t layers, int64_t heads, int64_t t)
{
    if (static_cast<int64_t>(r.attention.size()) < layers) {
        return false;
    }
    for (int64_t l = 0; l < layers; ++l) {
        if (!hasShape(r.attention[idx(l)], {heads, t, t})) {
            return false;
        }
    }
    return true;
}

bool allQkPresent(const ForwardResult &r, int64_t layers)
{
    for (int64_t l = 0; l < layers; ++l) {
        if (!r.queries.count(static_cast<int>(l)) || !r.keys.count(static_cast<int>(l))) {
            return false;
        }
    }
    return true;
}

// One head's causal map [T, T] (row t, key j <= t) into sums. fn: ||v_j W_O^h|| per key, or null.
void accumulateHead(const float *a, int64_t t, const float *fn, detail::HeadSums &s)
{
    s.colSum.assign(idx(t), 0.0);
    s.colPlogp.assign(idx(t), 0.0);
    s.a00 = a[0];
    for (int64_t q = 0; q < t; ++q) {
        const float *row = a + q * t;
        double entropy = 0, weighted = 0;
        for (int64_t j = 0; j <= q; ++j) {
            const float p = row[j];
            s.colSum[idx(j)] += p;
            if (p > 0) {
                const double pl = static_cast<double>(p) * std::log(p);
                s.colPlogp[idx(j)] += pl;
                entropy -= pl;
            }
        }
        if (fn) {
            for (int64_t j = 0; j <= q; ++j) {
                weighted += static_cast<double>(row[j]) * fn[j];
            }
            s.weightedNorm += weighted;
            if (q >= 1 && weighted > 0) {
                s.effective += static_cast<double>(row[0]) * fn[0] / weighted;
                ++s.effectiveRows;
            }
        }
        if (q >= 1) {
            s.rowEntropy += entropy / std::log(static_cast<double>(q + 1));
        }
    }
}

Status materializedAttentionSums(const ForwardResult &r, int64_t layers, int64_t heads, int64_t t,
                                 const MetricsOptions &options, detail::AttentionSums &sums)
{
    const bool norms = hasShape(r.valueNorms, {layers, heads, t});
    sums.assign(idx(layers * heads), {});
    // Heads are independent: split them over the threads the settings allow (runtime/parallel.h); the
    // per-head sums keep the result independent of the split. Short prompts are not worth a thread.
    const int64_t grain = t < 128 ? heads : 1;
    for (int64_t l = 0; l < layers; ++l) {
        if (!detail::metricsProgress(options, static_cast<double>(l) / static_cast<double>(layers),
                                     "attention metrics, layer " + std::to_string(l))) {
            return makeError(ErrorCode::Cancelled, "metrics cancelled");
        }
        const float *a = r.attention[idx(l)].data.data();
        const float *share = idx(l) < r.sinkShare.size() && hasShape(r.sinkShare[idx(l)], {heads, t})
                                 ? r.sinkShare[idx(l)].data.data()
                                 : nullptr;
        parallelFor(heads, grain, [&](int64_t begin, int64_t end) {
            for (int64_t h = begin; h < end; ++h) {
                const float *fn = norms ? r.valueNorms.data.data() + (l * heads + h) * t : nullptr;
                detail::HeadSums &s = sums[idx(l * heads + h)];
                accumulateHead(a + h * t * t, t, fn, s);
                if (share) {
                    s.hasLearnedSink = true;
                    s.learnedSink = std::accumulate(share + h * t, share + (h + 1) * t, 0.0);
                }
            }
        });
    }
    return Ok{};
}

// Mean over queries t >= 1 of the mass on the set S, from column sums: the rows t >= 1 of column j add
// up to R_j minus A[0, j], and A[0, j] is zero except A[0, 0]. With T == 1 the single row is used.
float setMass(const detail::HeadSums &s, int64_t t, const std::vector<int64_t> &set)
{
    double sum = 0;
    bool hasFirst = false;
    for (int64_t j : set) {
        sum += s.colSum[idx(j)];
        hasFirst = hasFirst || j == 0;
    }
    if (t == 1) {
        return static_cast<float>(sum);
    }
    return static_cast<float>((sum - (hasFirst ? s.a00 : 0.0)) / static_cast<double>(t - 1));
}

HeadMetric makeHeadMetric(const std::string &name, const std::string &description, int64_t layers, int64_t heads)
{
    HeadMetric m{name, description, {}};
    m.values.shape = {layers, heads};
    m.values.data.assign(idx(layers * heads), kNaN);
    return m;
}

// The lower median of non-negative floats (torch.median, which the reference code uses, returns the lower
// of the two middle values). Non-negative IEEE floats order like their bit patterns, so a histogram of
// the upper 16 bits finds the bucket that holds the median in one pass, and only that bucket is
// selected: several times faster than nth_element over a layer's T x D values.
float lowerMedian(const std::vector<float> &values)
{
    const size_t n = values.size(), rank = (n - 1) / 2;
    std::vector<uint32_t> counts(65536, 0);
    for (float v : values) {
        uint32_t bits;
        std::memcpy(&bits, &v, sizeof bits);
        ++counts[bits >> 16];
    }
    size_t below = 0;
    uint32_t bucket = 0;
    while (below + counts[bucket] <= rank) {
        below += counts[bucket++];
    }
    std::vector<float> inBucket;
    inBucket.reserve(counts[bucket]);
    for (float v : values) {
        uint32_t bits;
        std::memcpy(&bits, &v, sizeof bits);
        if ((bits >> 16) == bucket) {
            inBucket.push_back(v);
        }
    }
    auto mid = inBucket.begin() + static_cast<std::ptrdiff_t>(rank - below);
    std::nth_element(inBucket.begin(), mid, inBucket.end());
    return *mid;
}

void computeActivations(const FloatArray &hidden, const MetricsOptions &options, SinkMetrics &m, TokenMetric &maxAbs)
{
    const int64_t layers = hidden.shape[0], t = hidden.shape[1], d = hidden.shape[2];
    const int64_t n = t * d;
    std::vector<float> absValues(idx(n));
    std::vector<MassiveActivation> all;
    maxAbs.values.shape = {layers, t};
    maxAbs.values.data.assign(idx(layers * t), 0.0f);
    for (int64_t l = 0; l < layers; ++l) {
        const float *h = hidden.data.data() + l * n;
        LayerActivations la;
        la.layer = static_cast<int>(l);
        int64_t topIndex = 0;
        for (int64_t tok = 0; tok < t; ++tok) {
            const float *row = h + tok * d;
            float *absRow = absValues.data() + tok * d;
            float rowMax = 0;
            for (int64_t i = 0; i < d; ++i) {
                absRow[i] = std::fabs(row[i]);
                rowMax = std::max(rowMax, absRow[i]);
            }
            maxAbs.values.data[idx(l * t + tok)] = rowMax;
            if (rowMax <= la.top[2]) {
                continue; // nothing in this token reaches the layer's top three
            }
            for (int64_t i = 0; i < d; ++i) {
                const float v = absRow[i];
                if (v > la.top[0]) {
                    la.top[2] = la.top[1];
                    la.top[1] = la.top[0];
                    la.top[0] = v;
                    topIndex = tok * d + i;
                } else if (v > la.top[1]) {
                    la.top[2] = la.top[1];
                    la.top[1] = v;
                } else if (v > la.top[2]) {
                    la.top[2] = v;
                }
            }
        }
        la.topValue = h[topIndex];
        la.topToken = topIndex / d;
        la.topDim = topIndex % d;
        la.median = lowerMedian(absValues);
        const float inf = std::numeric_limits<float>::infinity();
        la.ratio = la.median > 0 ? la.top[0] / la.median : inf;
        // The listing needs a second scan only when the layer's largest value passes both tests.
        if (la.top[0] > options.massiveAbs && la.ratio > options.massiveRatio) {
            const float floor = static_cast<float>(std::max(options.massiveAbs, options.massiveRatio * la.median));
            for (int64_t i = 0; i < n; ++i) {
                const float v = std::fabs(h[i]);
                if (v > floor) {
                    const float ratio = la.median > 0 ? v / la.median : inf;
                    if (v > options.massiveAbs && ratio > options.massiveRatio) {
                        all.push_back({static_cast<int>(l), i / d, i % d, h[i], ratio});
                    }
                }
            }
        }
        m.activationsByLayer.push_back(la);
        if (l == 0 || la.ratio > m.topActivation.ratio) {
            m.topActivation = la;
        }
    }
    std::sort(all.begin(), all.end(), [](const MassiveActivation &x, const MassiveActivation &y) {
        return std::fabs(x.value) > std::fabs(y.value);
    });
    m.massiveCount = static_cast<int64_t>(all.size());
    if (static_cast<int64_t>(all.size()) > options.massiveMaxListed) {
        all.resize(idx(std::max<int64_t>(options.massiveMaxListed, 0)));
    }
    m.massive = std::move(all);
}

// Wong et al., JeffreyWong20/Secondary-Attention-Sinks src/hidden_state_base.py: the BOS span from the
// BOS norm's jumps, then |cos(h_j, h_BOS)| marks per layer, then labels by the number of marked layers.
void computeSecondarySinks(const FloatArray &hidden, const std::vector<int64_t> &tokens, const MetricsOptions &options,
                           SinkMetrics &m, TokenMetric &marks)
{
    const int64_t layers = hidden.shape[0], t = hidden.shape[1], d = hidden.shape[2];
    auto row = [&](int64_t l, int64_t j) { return hidden.data.data() + (l * t + j) * d; };
    auto norm = [&](const float *x) {
        double s = 0;
        for (int64_t i = 0; i < d; ++i) {
            s += static_cast<double>(x[i]) * x[i];
        }
        return std::sqrt(s);
    };
    int64_t bos = -1;
    double bestNorm = -1;
    for (int64_t c : options.bosCandidates) {
        if (c < 0 || c >= t) {
            continue;
        }
        double mean = 0;
        for (int64_t l = 0; l < layers; ++l) {
            mean += norm(row(l, c));
        }
        if (mean > bestNorm) { // first of equals, as torch.argmax
            bestNorm = mean;
            bos = c;
        }
    }
    marks.values.shape = {t};
    marks.values.data.assign(idx(t), 0.0f);
    if (bos < 0) {
        return;
    }
    m.bosPosition = bos;
    std::vector<double> n(idx(layers));
    for (int64_t l = 0; l < layers; ++l) {
        n[idx(l)] = norm(row(l, bos));
    }
    int start = 0, end = static_cast<int>(layers);
    if (layers >= 2) {
        std::vector<double> diff(idx(layers - 1));
        for (int64_t i = 0; i + 1 < layers; ++i) {
            diff[idx(i)] = n[idx(i + 1)] - n[idx(i)];
        }
        start = static_cast<int>(std::max_element(diff.begin(), diff.end()) - diff.begin()) + 1;
        // The reference takes argmin over diff[start:]; that slice is empty when the largest jump is into
        // the last layer, and then the span runs to the end.
        if (start < static_cast<int>(diff.size())) {
            end = static_cast<int>(std::min_element(diff.begin() + start, diff.end()) - diff.begin()) + 1;
        }
    }
    m.bosSpanStart = start;
    m.bosSpanEnd = end;
    std::vector<std::vector<int>> marked(idx(t));
    for (int l = start; l < end; ++l) {
        const float *b = row(l, bos);
        const double nb = n[idx(l)];
        for (int64_t j = bos + 1; j < t; ++j) {
            const float *x = row(l, j);
            double dot = 0;
            for (int64_t i = 0; i < d; ++i) {
                dot += static_cast<double>(x[i]) * b[i];
            }
            const double cosine = dot / std::max(norm(x) * nb, 1e-8);
            if (std::fabs(cosine) > options.secondaryCosine) {
                marked[idx(j)].push_back(l);
            }
        }
    }
    for (int64_t j = 0; j < t; ++j) {
        const auto &ls = marked[idx(j)];
        marks.values.data[idx(j)] = static_cast<float>(ls.size());
        if (ls.empty()) {
            continue;
        }
        const int64_t count = static_cast<int64_t>(ls.size());
        SecondarySink s;
        s.position = j;
        s.tokenId = tokens[idx(j)];
        s.layers = ls;
        if (count < layers - 15 && count > 4) {
            s.kind = SecondarySinkKind::Secondary;
        } else if (count >= layers - 15) {
            s.kind = SecondarySinkKind::BosLike;
        } else {
            s.kind = SecondarySinkKind::Noise;
        }
        m.secondarySinks.push_back(std::move(s));
    }
}

void finalizeAttention(const detail::AttentionSums &sums, const std::vector<int64_t> &tokens, bool norms,
                       const MetricsOptions &options, SinkMetrics &m)
{
    const int64_t layers = m.layers, heads = m.heads, t = m.length;
    m.receivedSum.shape = {layers, heads, t};
    m.receivedMean.shape = {layers, heads, t};
    m.receivedSum.data.resize(idx(layers * heads * t));
    m.receivedMean.data.resize(idx(layers * heads * t));
    for (int64_t i = 0; i < layers * heads; ++i) {
        for (int64_t j = 0; j < t; ++j) {
            const double r = sums[idx(i)].colSum[idx(j)];
            m.receivedSum.data[idx(i * t + j)] = static_cast<float>(r);
            m.receivedMean.data[idx(i * t + j)] = static_cast<float>(r / static_cast<double>(t - j));
        }
    }

    // M3 detection: head-mean of R_j / (T - j) per layer above the threshold.
    TokenMetric byLayer{"received_mean_by_layer",
                        "M3: mean over heads of received attention R_j/(T-j), per layer and key (Gu et al. alpha)",
                        {}};
    byLayer.values.shape = {layers, t};
    byLayer.values.data.assign(idx(layers * t), 0.0f);
    TokenMetric overall{"received_mean", "M3: mean over layers and heads of R_j/(T-j) per key", {}};
    overall.values.shape = {t};
    overall.values.data.assign(idx(t), 0.0f);
    TokenMetric headCount{
        "sink_head_count",
        "M3: (layer, head) pairs whose R_j/(T-j) exceeds the sink threshold (keys seen by enough queries)",
        {}};
    headCount.values.shape = {t};
    headCount.values.data.assign(idx(t), 0.0f);
    std::vector<DetectedSink> detected(idx(t));
    for (int64_t l = 0; l < layers; ++l) {
        for (int64_t j = 0; j < t; ++j) {
            double mean = 0;
            int64_t above = 0;
            for (int64_t h = 0; h < heads; ++h) {
                const float v = m.receivedMean.data[idx((l * heads + h) * t + j)];
                mean += v;
                above += v > options.sinkThreshold;
            }
            mean /= static_cast<double>(heads);
            byLayer.values.data[idx(l * t + j)] = static_cast<float>(mean);
            overall.values.data[idx(j)] += static_cast<float>(mean / static_cast<double>(layers));
            if (t - j < options.sinkMinQueries) {
                continue;
            }
            headCount.values.data[idx(j)] += static_cast<float>(above);
            DetectedSink &s = detected[idx(j)];
            s.headCount += above;
            if (mean > options.sinkThreshold) {
                s.layers.push_back(static_cast<int>(l));
                if (s.layers.size() == 1 || mean > s.peakScore) {
                    s.peakScore = static_cast<float>(mean);
                    s.peakLayer = static_cast<int>(l);
                }
            }
        }
    }
    for (int64_t j = 0; j < t; ++j) {
        if (!detected[idx(j)].layers.empty()) {
            detected[idx(j)].position = j;
            detected[idx(j)].tokenId = tokens[idx(j)];
            m.sinks.push_back(detected[idx(j)]);
        }
    }

    std::set<int64_t> set;
    if (!options.sinkPositions.empty()) {
        for (int64_t j : options.sinkPositions) {
            if (j >= 0 && j < t) {
                set.insert(j);
            }
        }
    } else {
        for (const auto &s : m.sinks) {
            set.insert(s.position);
        }
    }
    m.sinkSet.assign(set.begin(), set.end());
    std::vector<int64_t> bosSet;
    if (options.bosTokenId) {
        for (int64_t j = 0; j < t; ++j) {
            if (tokens[idx(j)] == *options.bosTokenId) {
                bosSet.push_back(j);
            }
        }
    }

    auto first = makeHeadMetric("first_token_mass", "M1: mean attention of queries t>=1 on token 0 (StreamingLLM)",
                                layers, heads);
    auto bos =
        makeHeadMetric("bos_mass", "M1: mean attention of queries t>=1 on BOS tokens (NaN without BOS)", layers, heads);
    auto setMassMetric = makeHeadMetric(
        "sink_set_mass", "M1/M18: mean attention of queries t>=1 on the sink set S (chosen, else detected)", layers,
        heads);
    auto alpha = makeHeadMetric("alpha_first", "M2: Gu et al. importance alpha_1 = mean of A[t,0] over all T queries",
                                layers, heads);
    auto topk =
        makeHeadMetric("received_topk_mass",
                       "M3: sum of the top-" + std::to_string(options.topK) + " R_j/(T-j) (Guo et al.)", layers, heads);
    auto rowEnt = makeHeadMetric(
        "row_entropy", "M4: mean over queries of row entropy / log(t+1) (Guo et al., row 0 counts 0)", layers, heads);
    auto colEnt =
        makeHeadMetric("col_entropy_max", "M4: max over keys of column entropy / log(T-j) (Guo et al.)", layers, heads);
    auto entSink = makeHeadMetric("entropy_sink_head", "M4: 1 when row_entropy < tau_row and col_entropy_max > tau_col",
                                  layers, heads);
    auto eff = makeHeadMetric("effective_first_token_mass",
                              "M9: mean over t>=1 of A[t,0]|f(x_0)| / sum_j A[t,j]|f(x_j)| (Kobayashi et al. norms)",
                              layers, heads);
    auto effRatio =
        makeHeadMetric("effective_to_raw_ratio", "M9: effective_first_token_mass / first_token_mass", layers, heads);
    auto bound = makeHeadMetric("output_norm_bound",
                                "M5: mean over t of sum_j A[t,j]|f(x_j)|, an upper bound of the head output norm",
                                layers, heads);
    auto boundLn = makeHeadMetric("output_norm_bound_ln", "M5: output_norm_bound / its mean over the layer's heads",
                                  layers, heads);
    auto learnedSink = makeHeadMetric(
        "learned_sink_mass", "M-LS: mean over queries of the learned sink's share of attention (gpt-oss; NaN without)",
        layers, heads);
    auto dormant = makeHeadMetric("dormant", "M5: 1 when alpha_first > epsilon and output_norm_bound_ln < tau_dormant",
                                  layers, heads);

    const std::vector<int64_t> firstSet{0};
    m.sinkFractionByLayer.assign(idx(layers), 0.0f);
    int64_t sinkHeads = 0;
    for (int64_t l = 0; l < layers; ++l) {
        double layerBound = 0;
        for (int64_t h = 0; h < heads; ++h) {
            const size_t i = idx(l * heads + h);
            const detail::HeadSums &s = sums[i];
            const float raw = setMass(s, t, firstSet);
            first.values.data[i] = raw;
            if (s.hasLearnedSink) {
                learnedSink.values.data[i] = static_cast<float>(s.learnedSink / static_cast<double>(t));
            }
            if (!bosSet.empty()) {
                bos.values.data[i] = setMass(s, t, bosSet);
            }
            setMassMetric.values.data[i] = setMass(s, t, m.sinkSet);
            alpha.values.data[i] = static_cast<float>(s.colSum[0] / static_cast<double>(t));
            std::vector<float> means(m.receivedMean.data.begin() + static_cast<std::ptrdiff_t>(i * idx(t)),
                                     m.receivedMean.data.begin() + static_cast<std::ptrdiff_t>((i + 1) * idx(t)));
            const size_t k = std::min(idx(std::max(options.topK, 0)), means.size());
            std::partial_sort(means.begin(), means.begin() + static_cast<std::ptrdiff_t>(k), means.end(),
                              std::greater<>());
            topk.values.data[i] = std::accumulate(means.begin(), means.begin() + static_cast<std::ptrdiff_t>(k), 0.0f);
            const double row = s.rowEntropy / static_cast<double>(t);
            double col = 0;
            for (int64_t j = 0; j + 1 < t; ++j) {
                const double r = s.colSum[idx(j)];
                if (r > 0) {
                    col = std::max(col, (-s.colPlogp[idx(j)] / r + std::log(r)) / std::log(static_cast<double>(t - j)));
                }
            }
            rowEnt.values.data[i] = static_cast<float>(row);
            colEnt.values.data[i] = static_cast<float>(col);
            entSink.values.data[i] = row < options.rowEntropyMax && col > options.colEntropyMin ? 1.0f : 0.0f;
            const bool isSink = alpha.values.data[i] > options.sinkEpsilon;
            sinkHeads += isSink;
            m.sinkFractionByLayer[idx(l)] += isSink ? 1.0f / static_cast<float>(heads) : 0.0f;
            if (norms) {
                if (s.effectiveRows > 0) {
                    eff.values.data[i] = static_cast<float>(s.effective / static_cast<double>(s.effectiveRows));
                    effRatio.values.data[i] = raw > 0 ? eff.values.data[i] / raw : kNaN;
                }
                bound.values.data[i] = static_cast<float>(s.weightedNorm / static_cast<double>(t));
                layerBound += bound.values.data[i] / static_cast<double>(heads);
            }
        }
        if (norms) {
            for (int64_t h = 0; h < heads; ++h) {
                const size_t i = idx(l * heads + h);
                boundLn.values.data[i] = layerBound > 0 ? static_cast<float>(bound.values.data[i] / layerBound) : kNaN;
                dormant.values.data[i] =
                    alpha.values.data[i] > options.sinkEpsilon && boundLn.values.data[i] < options.dormantNormRatio
                        ? 1.0f
                        : 0.0f;
            }
        }
    }
    m.sinkFraction = static_cast<float>(static_cast<double>(sinkHeads) / static_cast<double>(layers * heads));
    m.headMetrics = {first,   bos, setMassMetric, alpha, topk,    rowEnt, colEnt,
                     entSink, eff, effRatio,      bound, boundLn, dormant};
    // Only models with learned sinks have the column (heads.csv keeps its columns for every other model).
    if (std::any_of(sums.begin(), sums.end(), [](const detail::HeadSums &s) { return s.hasLearnedSink; })) {
        m.headMetrics.push_back(learnedSink);
    }
    m.tokenMetrics.push_back(std::move(overall));
    m.tokenMetrics.push_back(std::move(byLayer));
    m.tokenMetrics.push_back(std::move(headCount));
}

nlohmann::json arrayJson(const FloatArray &a)
{
    using nlohmann::json;
    auto value = [](float v) { return std::isfinite(v) ? json(v) : json(nullptr); };
    std::function<json(size_t, size_t)> level = [&](size_t dim, size_t offset) -> json {
        json out = json::array();
        if (dim + 1 == a.shape.size()) {
            for (int64_t i = 0; i < a.shape[dim]; ++i) {
                out.push_back(value(a.data[offset + idx(i)]));
            }
            return out;
        }
        size_t stride = 1;
        for (size_t k = dim + 1; k < a.shape.size(); ++k) {
            stride *= idx(a.shape[k]);
        }
        for (int64_t i = 0; i < a.shape[dim]; ++i) {
            out.push_back(level(dim + 1, offset + idx(i) * stride));
        }
        return out;
    };
    return a.shape.empty() ? json::array() : level(0, 0);
}

nlohmann::json floatJson(float v)
{
    return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

} // namespace

namespace detail {

bool metricsProgress(const MetricsOptions &options, double fraction, const std::string &label)
{
    if (options.cancel && options.cancel->isCancelled()) {
        return false;
    }
    return !options.progress || options.progress(fraction, label);
}

} // namespace detail

const char *metricsPathName(MetricsPath path)
{
    switch (path) {
    case MetricsPath::Auto:
        return "auto";
    case MetricsPath::Materialized:
        return "materialized";
    case MetricsPath::Streaming:
        return "streaming";
    }
    return "?";
}

const char *secondarySinkKindName(SecondarySinkKind kind)
{
    switch (kind) {
    case SecondarySinkKind::Secondary:
        return "secondary";
    case SecondarySinkKind::BosLike:
        return "bos_sink";
    case SecondarySinkKind::Noise:
        return "noise";
    }
    return "?";
}

CaptureOptions metricsCapture(int64_t tokens, const ModelConfig &config, int64_t materializeUpTo)
{
    CaptureOptions c;
    c.hidden = true;
    c.valueNorms = true;
    c.lastLogitsOnly = true;
    if (tokens <= materializeUpTo) {
        c.allAttention = true;
    } else {
        for (int64_t l = 0; l < config.layers; ++l) {
            c.qkLayers.push_back(static_cast<int>(l));
        }
    }
    return c;
}

const HeadMetric *SinkMetrics::headMetric(const std::string &name) const
{
    for (const auto &m : headMetrics) {
        if (m.name == name) {
            return &m;
        }
    }
    return nullptr;
}

const TokenMetric *SinkMetrics::tokenMetric(const std::string &name) const
{
    for (const auto &m : tokenMetrics) {
        if (m.name == name) {
            return &m;
        }
    }
    return nullptr;
}

float SinkMetrics::head(const std::string &name, int64_t layer, int64_t headIndex) const
{
    const HeadMetric *m = headMetric(name);
    if (!m || layer < 0 || layer >= layers || headIndex < 0 || headIndex >= heads) {
        return kNaN;
    }
    return m->values.data[idx(layer * heads + headIndex)];
}

namespace {

// computeMetrics, or with `streamed` the attention sums the streaming path already reduced during the
// forward pass (analyzeTokens): then `result` has no q/k and only the hidden states and value norms are read.
Result<std::shared_ptr<const SinkMetrics>> metricsFrom(const ForwardResult &result, const ModelConfig &config,
                                                       const std::vector<int64_t> &tokens,
                                                       const MetricsOptions &options, detail::AttentionSums *streamed)
{
    const auto start = std::chrono::steady_clock::now();
    const int64_t layers = config.layers, heads = config.heads, t = static_cast<int64_t>(tokens.size());
    if (t == 0 || layers <= 0 || heads <= 0) {
        return makeError(ErrorCode::InvalidArgument,
                         "metrics need tokens and a model with layers and heads (got T = " + std::to_string(t) + ", " +
                             std::to_string(layers) + " layers, " + std::to_string(heads) + " heads)");
    }
    MetricsPath path = streamed ? MetricsPath::Streaming : options.path;
    if (path == MetricsPath::Auto) {
        path = allAttentionPresent(result, layers, heads, t) ? MetricsPath::Materialized : MetricsPath::Streaming;
    }
    if (path == MetricsPath::Materialized && !allAttentionPresent(result, layers, heads, t)) {
        return makeError(ErrorCode::InvalidArgument, "materialised metrics need attention [" + std::to_string(heads) +
                                                         ", " + std::to_string(t) + ", " + std::to_string(t) +
                                                         "] for all " + std::to_string(layers) + " layers");
    }
    if (path == MetricsPath::Streaming && !streamed && !allQkPresent(result, layers)) {
        return makeError(ErrorCode::InvalidArgument,
                         "metrics need the attention or the post-RoPE queries and keys of all " +
                             std::to_string(layers) + " layers (capture allAttention or qkLayers)");
    }
    if (!result.valueNorms.empty() && !hasShape(result.valueNorms, {layers, heads, t})) {
        return makeError(ErrorCode::InvalidArgument, "value norms have shape " + shapeText(result.valueNorms.shape) +
                                                         ", expected [" + std::to_string(layers) + ", " +
                                                         std::to_string(heads) + ", " + std::to_string(t) + "]");
    }
    if (!result.hidden.empty() &&
        (result.hidden.shape.size() != 3 || result.hidden.shape[0] != layers || result.hidden.shape[1] != t ||
         static_cast<int64_t>(result.hidden.data.size()) != result.hidden.numel())) {
        return makeError(ErrorCode::InvalidArgument, "hidden states have shape " + shapeText(result.hidden.shape) +
                                                         ", expected [" + std::to_string(layers) + ", " +
                                                         std::to_string(t) + ", D]");
    }

    auto m = std::make_shared<SinkMetrics>();
    m->modelName = config.name;
    m->config = config;
    m->tokens = tokens;
    m->tokenTexts = options.tokenTexts;
    m->layers = layers;
    m->heads = heads;
    m->length = t;
    m->settings = options;
    m->settings.progress = {};
    m->settings.cancel = nullptr;
    m->settings.tokenTexts.clear();
    m->path = path;
    m->hasValueNorms = !result.valueNorms.empty();
    m->hasHidden = !result.hidden.empty();

    detail::AttentionSums sums;
    if (streamed) {
        sums = std::move(*streamed);
    } else {
        Status status = path == MetricsPath::Materialized
                            ? materializedAttentionSums(result, layers, heads, t, options, sums)
                            : detail::streamingAttentionSums(result, config, t, options, sums);
        if (!status) {
            return status.error();
        }
    }
    finalizeAttention(sums, tokens, m->hasValueNorms, options, *m);
    if (m->hasHidden) {
        TokenMetric maxAbs{"max_abs_hidden", "M6: largest |h| per layer and token (Sun et al.)", {}};
        TokenMetric marks{
            "secondary_sink_layers", "M11: layers of the BOS span where |cos(h_j, h_BOS)| > threshold", {}};
        computeActivations(result.hidden, options, *m, maxAbs);
        computeSecondarySinks(result.hidden, tokens, options, *m, marks);
        m->tokenMetrics.push_back(std::move(maxAbs));
        m->tokenMetrics.push_back(std::move(marks));
    }
    if (!detail::metricsProgress(options, 1.0, "metrics done")) {
        return makeError(ErrorCode::Cancelled, "metrics cancelled");
    }
    m->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return std::shared_ptr<const SinkMetrics>(std::move(m));
}

} // namespace

Result<std::shared_ptr<const SinkMetrics>> computeMetrics(const ForwardResult &result, const ModelConfig &config,
                                                          const std::vector<int64_t> &tokens,
                                                          const MetricsOptions &options)
{
    return metricsFrom(result, config, tokens, options, nullptr);
}

Result<AnalysisRun> analyzeRun(const Model &model, const std::vector<int64_t> &tokens, const MetricsOptions &options,
                               const AnalysisKeep &keep, int64_t materializeUpTo)
{
    ModelConfig config = model.config();
    const int64_t t = static_cast<int64_t>(tokens.size());
    ForwardRequest request{
        .tokens = tokens, .capture = metricsCapture(t, config, materializeUpTo), .controls = {}, .layerHook = {}};
    if (!model.hasContract()) {
        request.capture.qkLayers.clear(); // a generic module returns its maps whatever is asked
        request.capture.allAttention = true;
    }
    // Maps that would not fit in the memory left (sinkscope/runtime/memory.h): the automatic path takes the
    // streaming one instead, which gives the same metrics without them.
    bool mapsWouldNotFit = false;
    if (model.hasContract() && options.path == MetricsPath::Auto && request.capture.allAttention &&
        !checkMemory(estimateForward(config, t, request.capture, model.hasAttentionEngine()), "", "")) {
        request.capture = metricsCapture(t, config, 0);
        mapsWouldNotFit = true;
    }
    // The streaming path inside the forward pass: each layer's q/k are reduced as the layer finishes and
    // dropped, on the model's device, so no pass holds every layer's q/k (nor copies them off a GPU)
    // unless the caller keeps them.
    std::optional<detail::StreamingAccumulator> streaming;
    std::map<int, FloatArray> keptQueries, keptKeys;
    const bool streamInPass = model.hasContract() && !request.capture.qkLayers.empty() &&
                              options.path != MetricsPath::Materialized && config.layers > 0 && config.heads > 0;
    if (streamInPass) {
        auto device = detail::metricsCudaDevice(options.device);
        if (!device) {
            return device.error();
        }
        streaming.emplace(config.layers, config.heads, t, options.tileSize, *device);
        streaming->setModel(config);
        // On the CPU, contract-5 archives compute the statistics in the attention step itself: each layer's
        // sums arrive with it and nothing is recomputed from q/k (which still come, for the other devices
        // and for what the caller keeps).
        request.capture.allStats = *device < 0 && model.hasAttentionEngine();
        request.layerHook = [&](int64_t layer, const LayerTensors &lt) {
            if (keep.queriesKeys) {
                keptQueries[static_cast<int>(layer)] = detail::hostCopy(lt.queries);
                keptKeys[static_cast<int>(layer)] = detail::hostCopy(lt.keys);
            }
            if (lt.rowStats.defined()) {
                return streaming->addLayerStats(layer, lt.rowStats, lt.colStats, lt.valueNorms);
            }
            return streaming->addLayer(layer, lt.queries, lt.keys, lt.valueNorms);
        };
    }
    ProgressCallback forwardProgress;
    if (options.progress) {
        forwardProgress = [&options](double f, const std::string &label) { return options.progress(0.95 * f, label); };
    }
    auto forward = model.forward(request, options.cancel, forwardProgress);
    if (!forward) {
        return forward.error();
    }
    AnalysisRun run;
    run.streamed = streamInPass;
    run.mapsWouldNotFit = mapsWouldNotFit;
    // A generic TorchScript module may not state its shape: the attention it returned does.
    if (!model.hasContract()) {
        for (const FloatArray &a : forward->attention) {
            if (a.shape.size() == 3) {
                config.layers = static_cast<int64_t>(forward->attention.size());
                config.heads = a.dim(0);
                break;
            }
        }
    }
    run.layers = config.layers;
    run.heads = config.heads;
    std::optional<detail::AttentionSums> streamed;
    if (streaming) {
        auto sums = streaming->take();
        if (!sums) {
            return sums.error();
        }
        streamed = std::move(*sums);
    }
    MetricsOptions o = options;
    if (auto tok = model.tokenizer()) {
        if (!o.bosTokenId) {
            o.bosTokenId = tok->data().bosId;
        }
        if (o.tokenTexts.empty()) {
            for (int64_t id : tokens) {
                o.tokenTexts.push_back(tok->tokenText(id));
            }
        }
    }
    auto metrics = metricsFrom(*forward, config, tokens, o, streamed ? &*streamed : nullptr);
    if (metrics) {
        auto withTime = std::make_shared<SinkMetrics>(**metrics);
        withTime->forwardSeconds = forward->seconds;
        run.metrics = std::move(withTime);
    } else if (metrics.error().code == ErrorCode::Cancelled) {
        return metrics.error();
    } else {
        run.metricsError = metrics.error();
    }
    run.forward = std::move(*forward);
    run.forward.hidden = {};
    run.forward.valueNorms = {};
    if (!keep.attention) {
        run.forward.attention = {};
    }
    run.forward.queries = std::move(keptQueries);
    run.forward.keys = std::move(keptKeys);
    return run;
}

Result<std::shared_ptr<const SinkMetrics>> analyzeTokens(const Model &model, const std::vector<int64_t> &tokens,
                                                         const MetricsOptions &options, int64_t materializeUpTo)
{
    auto run = analyzeRun(model, tokens, options, {}, materializeUpTo);
    if (!run) {
        return run.error();
    }
    if (run->metricsError) {
        return *run->metricsError;
    }
    return run->metrics;
}

std::string SinkMetrics::toJson() const
{
    using nlohmann::json;
    json j;
    j["format"] = "sinkscope-metrics";
    j["version"] = 1;
    j["model"] = json::parse(config.toJson());
    j["tokens"] = tokens;
    if (!tokenTexts.empty()) {
        j["token_texts"] = tokenTexts;
    }
    j["length"] = length;
    j["path"] = metricsPathName(path);
    j["seconds"] = seconds;
    j["forward_seconds"] = forwardSeconds;
    const MetricsOptions &o = settings;
    j["settings"] = {
        {"sink_epsilon", o.sinkEpsilon},
        {"sink_threshold", o.sinkThreshold},
        {"sink_min_queries", o.sinkMinQueries},
        {"sink_positions", o.sinkPositions},
        {"bos_token_id", o.bosTokenId ? json(*o.bosTokenId) : json(nullptr)},
        {"top_k", o.topK},
        {"row_entropy_max", o.rowEntropyMax},
        {"col_entropy_min", o.colEntropyMin},
        {"dormant_norm_ratio", o.dormantNormRatio},
        {"massive_abs", o.massiveAbs},
        {"massive_ratio", o.massiveRatio},
        {"secondary_cosine", o.secondaryCosine},
        {"bos_candidates", o.bosCandidates},
        {"tile_size", o.tileSize},
        {"has_value_norms", hasValueNorms},
        {"has_hidden", hasHidden},
    };
    json headsJson = json::object();
    json descriptions = json::object();
    for (const auto &m : headMetrics) {
        headsJson[m.name] = arrayJson(m.values);
        descriptions[m.name] = m.description;
    }
    j["heads"] = headsJson;
    json tokensJson = json::object();
    for (const auto &m : tokenMetrics) {
        tokensJson[m.name] = arrayJson(m.values);
        descriptions[m.name] = m.description;
    }
    j["per_token"] = tokensJson;
    j["descriptions"] = descriptions;
    if (o.perKeyInJson) {
        j["received"] = {{"sum", arrayJson(receivedSum)}, {"mean", arrayJson(receivedMean)}};
    }
    json fractionLayers = json::array();
    for (float f : sinkFractionByLayer) {
        fractionLayers.push_back(floatJson(f));
    }
    j["sink_fraction"] = {{"epsilon", o.sinkEpsilon},
                          {"tokens", length},
                          {"per_layer", fractionLayers},
                          {"overall", floatJson(sinkFraction)}};
    json detected = json::array();
    for (const auto &s : sinks) {
        detected.push_back({{"position", s.position},
                            {"token", s.tokenId},
                            {"layers", s.layers},
                            {"peak_score", floatJson(s.peakScore)},
                            {"peak_layer", s.peakLayer},
                            {"head_count", s.headCount}});
    }
    j["sinks"] = {{"threshold", o.sinkThreshold},
                  {"min_queries", o.sinkMinQueries},
                  {"detected", detected},
                  {"sink_set", sinkSet}};
    if (hasHidden) {
        auto layerJson = [](const LayerActivations &a) {
            return json{{"layer", a.layer},
                        {"top", {floatJson(a.top[0]), floatJson(a.top[1]), floatJson(a.top[2])}},
                        {"value", floatJson(a.topValue)},
                        {"token", a.topToken},
                        {"dim", a.topDim},
                        {"median", floatJson(a.median)},
                        {"ratio", floatJson(a.ratio)}};
        };
        json perLayer = json::array();
        for (const auto &a : activationsByLayer) {
            perLayer.push_back(layerJson(a));
        }
        json listed = json::array();
        for (const auto &a : massive) {
            listed.push_back({{"layer", a.layer},
                              {"token", a.token},
                              {"dim", a.dim},
                              {"value", floatJson(a.value)},
                              {"ratio", floatJson(a.ratio)}});
        }
        j["massive_activations"] = {{"abs_threshold", o.massiveAbs}, {"ratio_threshold", o.massiveRatio},
                                    {"per_layer", perLayer},         {"top", layerJson(topActivation)},
                                    {"count", massiveCount},         {"listed", listed}};
        json secondary = json::array();
        for (const auto &s : secondarySinks) {
            secondary.push_back({{"position", s.position},
                                 {"token", s.tokenId},
                                 {"layers", s.layers},
                                 {"kind", secondarySinkKindName(s.kind)}});
        }
        j["secondary_sinks"] = {{"cosine_threshold", o.secondaryCosine},
                                {"bos_position", bosPosition},
                                {"bos_span", {bosSpanStart, bosSpanEnd}},
                                {"tokens", secondary}};
    }
    // Token texts may be partial UTF-8 sequences (one byte of a multi-byte character): replace, not throw.
    return j.dump(1, ' ', false, json::error_handler_t::replace);
}

std::string SinkMetrics::headsCsv() const
{
    std::ostringstream out;
    std::vector<std::string> header = {"layer", "head"};
    for (const auto &m : headMetrics) {
        header.push_back(m.name);
    }
    out << csvRow(header);
    char buf[32];
    for (int64_t l = 0; l < layers; ++l) {
        for (int64_t h = 0; h < heads; ++h) {
            out << l << ',' << h;
            for (const auto &m : headMetrics) {
                const float v = m.values.data[idx(l * heads + h)];
                if (std::isnan(v)) {
                    out << ",nan";
                } else {
                    std::snprintf(buf, sizeof buf, ",%.7g", static_cast<double>(v));
                    out << buf;
                }
            }
            out << '\n';
        }
    }
    return out.str();
}

} // namespace sinkscope
