// Attention-sink metrics per layer, head and token (docs/metrics.md; formulas from SINKS.md §2:
// M1, M2, M3, M4, M5, M6, M9, M11).
//
// Inputs come from one forward pass (ForwardResult):
// - attention metrics need either the probabilities of every layer ([H, T, T] each; the materialised
//   path) or post-RoPE q [H, T, d] and k [Hkv, T, d] of every layer (the streaming path, which never
//   holds a T x T map: memory grows linearly with T). Both give the same numbers (tested to 1e-5).
//   The streaming path recomputes softmax(q k^T / sqrt(d) + causal mask): it is only valid for passes
//   without attention controls (logit_bias, temperature, sink_logit, head_mode, prob_scale, attn_mask).
// - value-norm-weighted metrics (M9, M5) need valueNorms [L, H, T]; without them they are NaN.
// - massive activations (M6) and secondary sinks (M11) need hidden [L, T, D]; without them they are
//   empty.
//
// Conventions: positions are 0-based; "queries t >= 1" leaves out query 0, which can only attend to
// itself (SINKS.md Appendix A.5). NaN marks a value that is undefined for this input (no BOS token,
// no value norms, T == 1 for entropies).
//
// Threading: computeMetrics() is a pure function of its inputs and may run on any thread; the result
// is an immutable snapshot. The streaming path uses LibTorch's intra-op threads.
#pragma once

#include "sinkscope/common/array.h"
#include "sinkscope/common/result.h"
#include "sinkscope/model/model.h"
#include "sinkscope/model/model_config.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sinkscope {

enum class MetricsPath {
    Auto,         // materialised when every layer's attention is present, else streaming from q/k
    Materialized, // from ForwardResult::attention
    Streaming,    // from ForwardResult::queries / keys
};

const char *metricsPathName(MetricsPath path); // "auto", "materialized", "streaming"

struct MetricsOptions {
    // M2: a head is a sink head when alpha_1 > epsilon (Gu et al. 2025 default 0.3).
    double sinkEpsilon = 0.3;
    // M3 sink detection: key j is a sink in layer l when the head-mean of its visibility-normalised
    // received attention exceeds this (ACT's THRES, 0.1).
    double sinkThreshold = 0.1;
    // Keys seen by fewer queries than this (T - j < n) are not detected: the last keys' normalised
    // score is an average over one or two rows and says nothing about sinks (ours, not ACT's).
    int64_t sinkMinQueries = 4;
    // The chosen sink set S for "sink_set_mass"; empty: the detected sinks.
    std::vector<int64_t> sinkPositions;
    // BOS token id for "bos_mass" (from the tokenizer); unset: bos_mass is NaN.
    std::optional<int64_t> bosTokenId;
    // M3 top-k received mass: the sum of the k largest normalised column means.
    int topK = 2;
    // M4 sink-head rule (Guo et al.; their code has no defaults, these are ours): mean normalised row
    // entropy below rowEntropyMax and maximum normalised column entropy above colEntropyMin.
    double rowEntropyMax = 0.5;
    double colEntropyMin = 0.8;
    // M5 dormant head (ours, after Sandoval-Segura et al.): alpha_1 > sinkEpsilon and the head's
    // value-weighted output norm bound, divided by the layer's mean over heads, below this.
    double dormantNormRatio = 0.5;
    // M6 Sun et al. 2024: |h| > massiveAbs and |h| / median(|h| of the layer) > massiveRatio.
    double massiveAbs = 100.0;
    double massiveRatio = 1000.0;
    int64_t massiveMaxListed = 1000; // cap on SinkMetrics::massive (largest first)
    // M11 Wong et al.: |cos(h_j, h_BOS)| above this marks token j in a layer of the BOS span.
    double secondaryCosine = 0.9;
    // M11 BOS candidates: with several, the one with the largest mean hidden norm over layers.
    std::vector<int64_t> bosCandidates = {0};

    MetricsPath path = MetricsPath::Auto;
    int64_t tileSize = 512; // streaming: query and key tile length (H x tile^2 floats of scores)
    // Streaming path only: "cpu", or "cuda" / "cuda:N" to compute the attention sums with the CUDA
    // statistics kernel (needs -DSINKSCOPE_ENABLE_CUDA=ON and a GPU, else InvalidArgument; docs/gpu.md).
    std::string device = "cpu";
    bool perKeyInJson = true; // toJson(): include received attention per layer, head and key

    std::vector<std::string> tokenTexts; // optional, copied into the result and metrics.json
    ProgressCallback progress;           // per layer; returning false cancels
    const CancelToken *cancel = nullptr;
};

// The capture a forward pass needs for computeMetrics(): hidden states and value norms always;
// attention of every layer up to `materializeUpTo` tokens, post-RoPE q/k of every layer above it
// (so memory grows linearly with T for long prompts).
inline constexpr int64_t kStreamingAboveTokens = 512;
CaptureOptions metricsCapture(int64_t tokens, const ModelConfig &config,
                              int64_t materializeUpTo = kStreamingAboveTokens);

// One per-head metric: values [L, H] row-major.
struct HeadMetric {
    std::string name;        // snake_case, the heads.csv column and metrics.json key
    std::string description; // one line with the source (for tooltips and the JSON)
    FloatArray values;       // [L, H]
};

struct TokenMetric {
    std::string name;
    std::string description;
    FloatArray values; // [T] or [L, T]
};

// A key that receives, in at least one layer, mean (over heads) visibility-normalised attention above
// the threshold. The first token is usually one; later ones are secondary sinks ('.', '\n', ...).
struct DetectedSink {
    int64_t position = 0;
    int64_t tokenId = 0;
    std::vector<int> layers; // layers where it passes the threshold
    float peakScore = 0;     // the largest head-mean score over layers
    int peakLayer = 0;
    int64_t headCount = 0; // (layer, head) pairs whose own score passes the threshold
};

struct LayerActivations {
    int layer = 0;
    float top[3] = {0, 0, 0}; // the three largest |h| of the layer (any tokens)
    float topValue = 0;       // the signed value of the largest
    int64_t topToken = 0;
    int64_t topDim = 0;
    float median = 0; // median |h| over tokens and dims (lower median, as torch.median)
    float ratio = 0;  // top[0] / median
};

struct MassiveActivation {
    int layer = 0;
    int64_t token = 0;
    int64_t dim = 0;
    float value = 0; // signed
    float ratio = 0; // |value| / median |h| of the layer
};

enum class SecondarySinkKind { Secondary, BosLike, Noise };
const char *secondarySinkKindName(SecondarySinkKind kind); // "secondary", "bos_sink", "noise"

struct SecondarySink {
    int64_t position = 0;
    int64_t tokenId = 0;
    std::vector<int> layers; // layers of the BOS span where |cos| > threshold
    SecondarySinkKind kind = SecondarySinkKind::Noise;
};

struct SinkMetrics {
    std::string modelName;
    ModelConfig config;
    std::vector<int64_t> tokens;
    std::vector<std::string> tokenTexts;
    int64_t layers = 0;
    int64_t heads = 0;
    int64_t length = 0;                           // T
    MetricsOptions settings;                      // as used (callbacks cleared)
    MetricsPath path = MetricsPath::Materialized; // the path that ran
    bool hasValueNorms = false;
    bool hasHidden = false;
    double seconds = 0;        // wall time of computeMetrics
    double forwardSeconds = 0; // the forward pass, when analyzeTokens ran it

    // Per head [L, H], in heads.csv column order; the first is first_token_mass.
    std::vector<HeadMetric> headMetrics;
    // Per token: "received_mean" [T], "received_mean_by_layer" [L, T], "sink_head_count" [T],
    // "max_abs_hidden" [L, T] (with hidden states).
    std::vector<TokenMetric> tokenMetrics;
    // M3 per layer, head and key [L, H, T]: raw column sums R_j and visibility-normalised means R_j/(T-j).
    FloatArray receivedSum;
    FloatArray receivedMean;

    // M2 Sink_1^epsilon: share of heads with alpha_1 > epsilon, per layer [L] and overall (0..1).
    std::vector<float> sinkFractionByLayer;
    float sinkFraction = 0;

    // M3 detected sinks (threshold settings.sinkThreshold), by position.
    std::vector<DetectedSink> sinks;
    std::vector<int64_t> sinkSet; // S used for sink_set_mass

    // M6 massive activations.
    std::vector<LayerActivations> activationsByLayer;
    std::vector<MassiveActivation> massive; // largest |value| first, at most settings.massiveMaxListed
    int64_t massiveCount = 0;               // all that pass, before the cap
    LayerActivations topActivation;         // the layer with the largest ratio

    // M11 secondary sinks: the BOS span [bosSpanStart, bosSpanEnd) and the marked tokens.
    int64_t bosPosition = 0;
    int bosSpanStart = 0;
    int bosSpanEnd = 0;
    std::vector<SecondarySink> secondarySinks;

    const HeadMetric *headMetric(const std::string &name) const;                 // null when absent
    const TokenMetric *tokenMetric(const std::string &name) const;               // null when absent
    float head(const std::string &name, int64_t layer, int64_t headIndex) const; // NaN when absent

    // metrics.json: every metric with the model, tokens and settings (docs/metrics.md lists the keys).
    std::string toJson() const;
    // heads.csv: one row per layer and head; columns layer,head,first_token_mass, then the other head
    // metrics in headMetrics order. NaN is written as "nan".
    std::string headsCsv() const;
};

// Computes every metric the inputs allow. Errors: InvalidArgument when the attention / q,k / hidden /
// value-norm shapes do not match `config` and `tokens` or the chosen path lacks its inputs;
// Cancelled when options.cancel or options.progress asks to stop.
Result<std::shared_ptr<const SinkMetrics>> computeMetrics(const ForwardResult &result, const ModelConfig &config,
                                                          const std::vector<int64_t> &tokens,
                                                          const MetricsOptions &options = {});

// What a front end keeps of an analysis run besides the metrics (the window keeps one or the other to
// draw head maps; the CLI keeps nothing).
struct AnalysisKeep {
    bool attention = false;   // every layer's maps [H, T, T], when the run materialises them
    bool queriesKeys = false; // every layer's post-RoPE q [H, T, d] and k [Hkv, T, d], when it streams
};

struct AnalysisRun {
    std::shared_ptr<const SinkMetrics> metrics; // null when they could not be computed: metricsError says why
    std::optional<Error> metricsError;
    ForwardResult forward; // the last position's logits and what AnalysisKeep asked for (no hidden states)
    bool streamed = false; // above the threshold: no maps, the metrics came from the streaming path
    // Streamed although within the threshold: the maps would not have fit in the memory left (the automatic
    // path only; sinkscope/runtime/memory.h).
    bool mapsWouldNotFit = false;
    int64_t layers = 0; // as the run found them (a generic TorchScript module states them by its output)
    int64_t heads = 0;
};

// The one analysis path of the CLI's analyze and the window: the forward pass with metricsCapture(), and
// the metrics from its maps (up to materializeUpTo tokens) or, above that, from each layer's q/k reduced
// inside the pass and then dropped (SinkScope archives; a generic module always returns its maps).
// bosTokenId and tokenTexts are filled from the model's tokenizer when the options leave them empty;
// options.progress sees the pass (to 95 %) and the metrics, options.cancel stops either. Errors: the
// pass's, and Cancelled; a metrics error other than Cancelled is reported in the run (metricsError).
Result<AnalysisRun> analyzeRun(const Model &model, const std::vector<int64_t> &tokens,
                               const MetricsOptions &options = {}, const AnalysisKeep &keep = {},
                               int64_t materializeUpTo = kStreamingAboveTokens);

// analyzeRun's metrics, or its error.
Result<std::shared_ptr<const SinkMetrics>> analyzeTokens(const Model &model, const std::vector<int64_t> &tokens,
                                                         const MetricsOptions &options = {},
                                                         int64_t materializeUpTo = kStreamingAboveTokens);

} // namespace sinkscope
