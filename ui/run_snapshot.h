// One finished run as the views see it: the tokens, every layer's attention and the per-head summaries,
// computed once on the compute thread. Immutable after build and shared as
// std::shared_ptr<const RunSnapshot>, so hovering and switching heads only read it and never run the
// model again.
#pragma once

#include "attention_math.h"

#include "sinkscope/analysis/metrics.h"
#include "sinkscope/common/array.h"
#include "sinkscope/model/model.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace sinkscope::ui {

struct TokenInfo {
    int64_t id = 0;
    std::string text;     // decoded bytes (may be a partial UTF-8 sequence)
    std::string piece;    // raw vocabulary entry
    bool special = false; // control or user-defined token
    bool bos = false;     // the tokenizer's BOS id
};

// Token texts and flags from a tokenizer (or bare ids when the model has none).
std::vector<TokenInfo> describeTokens(const Tokenizer *tokenizer, const std::vector<int64_t> &ids);

// Above this many tokens a run keeps q/k instead of attention maps (RunSnapshot::mapsOnDemand). It is
// the core's threshold (kStreamingAboveTokens, the one `sinkscope-cli analyze` uses), so the window and
// the CLI take the same route for every prompt length; 512 tokens of SmolLM2 hold 270 MiB of maps.
inline constexpr int64_t kMapTokens = kStreamingAboveTokens;

struct RunSnapshot {
    std::string modelPath;
    std::string modelName;
    // The model's architecture: family, per-layer sliding windows, attention scale and learned sink logits
    // (empty for hand-built snapshots: every layer global, no sinks).
    ModelConfig config;
    std::vector<TokenInfo> tokens;
    int64_t layers = 0;
    int64_t heads = 0;
    std::vector<FloatArray> attention; // per layer [H, T, T]; empty layers when mapsOnDemand
    // Models with learned sinks (config.learnedSinks): per layer the sink's share of each query's
    // attention [H, T] (ForwardResult::sinkShare); the rows of `attention` sum to 1 - share. Empty
    // when mapsOnDemand (the head view derives it from the computed map) and for other models.
    std::vector<FloatArray> sinkShare;
    // Prompts above RunRequest::mapTokens keep no attention maps (every layer's [H, T, T] would be 18 GiB
    // at 4096 tokens on SmolLM2): the metrics come from the streaming path, and the post-RoPE queries
    // [H, T, d] and keys [Hkv, T, d] of every layer are kept instead (linear in T, 25 MiB per layer at
    // 8192) so that the head view can compute the one head it shows (computeHeadMap).
    bool mapsOnDemand = false;
    int64_t mapTokens = kMapTokens; // the run's threshold (RunRequest::mapTokens)
    // On demand although within the threshold: the maps would not have fit in the memory left
    // (AnalysisRun::mapsWouldNotFit).
    bool mapsWouldNotFit = false;
    std::shared_ptr<const std::map<int, FloatArray>> queries, keys;
    // Every sink metric of the run (sinkscope::analyzeRun, either path): per-head tables,
    // detected sinks, massive activations. Null for hand-built snapshots (tests) and failed metrics.
    std::shared_ptr<const SinkMetrics> metrics;
    FloatArray received; // [L, T]: mean over heads of R_j / T (metrics->receivedSum)
    // Colour-range sketches of every head, [layer * heads + head][transform] (sketchHead()).
    std::vector<std::array<ScaleSketch, 2>> sketches;
    std::vector<TopToken> top;        // next-token distribution after the last token
    std::vector<std::string> topText; // decoded text of `top`
    double forwardSeconds = 0;
    double analysisSeconds = 0;

    int64_t tokenCount() const { return static_cast<int64_t>(tokens.size()); }
    // Sliding window W of a layer (query q sees keys q-W < k <= q), 0 for full attention.
    int64_t windowOf(int64_t layer) const { return config.windowOf(layer); }
    bool learnedSinks() const { return config.learnedSinks; }
    // The sink share [H, T] of a layer, or null when not captured.
    const FloatArray *sinkShareOf(int64_t layer) const
    {
        return layer >= 0 && layer < static_cast<int64_t>(sinkShare.size()) && !sinkShare[size_t(layer)].empty()
                   ? &sinkShare[size_t(layer)]
                   : nullptr;
    }
    bool hasAttention(int64_t layer) const
    {
        return layer >= 0 && layer < static_cast<int64_t>(attention.size()) && !attention[size_t(layer)].empty();
    }
    // A per-head metric [L, H] by name (metrics.h), or null.
    const HeadMetric *headMetric(const std::string &name) const
    {
        return metrics ? metrics->headMetric(name) : nullptr;
    }
    // Positions of the detected sink tokens (metrics->sinks), ascending.
    std::vector<int64_t> sinkPositions() const;
    // The sketch of (layer, head) under a transform, or null when not computed.
    const ScaleSketch *sketch(int64_t layer, int64_t head, ScaleTransform transform) const;
};

// Fills `received` from metrics->receivedSum and `sketches` from the attention (threads over heads).
// computeRunSnapshot calls it; tests that build a snapshot by hand may too.
void deriveSummaries(RunSnapshot &snapshot);

struct RunRequest {
    std::vector<int64_t> tokens;
    int64_t mapTokens = kMapTokens;
    int topK = 10;
    MetricsOptions metrics; // thresholds; bosTokenId and tokenTexts are filled from the tokenizer
};

// Runs the core's analysis (analyzeRun: the forward pass and every sink metric, keeping the maps up to
// mapTokens tokens, else each layer's q/k) and derives the summaries. Compute thread only (it calls
// Model::forward). A metrics failure other than cancellation leaves `metrics` null (the maps still show).
Result<RunSnapshot> computeRunSnapshot(const Model &model, const RunRequest &request, const CancelToken &cancel,
                                       const ProgressCallback &progress = {});

// One head's exact causal map [1, T, T] (masked cells 0) from a mapsOnDemand snapshot's q/k, with the
// core's pooledAttentionMap at one cell per token, the model's attention scale and learned sink logit
// (rows then sum to 1 - the sink's share). A sliding layer's window is applied here: the core's map has
// no window, so keys that left it are zeroed and each row renormalised over the keys in the window and
// the sink (exact: A_w = A / (sum of A over the window + the full row's sink share)). Any thread; T^2
// floats (256 MiB at 8192 tokens).
Result<FloatArray> computeHeadMap(const RunSnapshot &snapshot, int64_t layer, int64_t head);

} // namespace sinkscope::ui
