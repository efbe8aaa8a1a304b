// Loaded models and forward passes.
//
// A Model is immutable after load and may be shared between threads; forward() may be called
// concurrently, though SinkScope front ends call it from one compute thread. Tensor layouts are
// row-major: attention [head, query, key], hidden [layer, token, dim], value norms [layer, head, key].
#pragma once

#include "sinkscope/common/array.h"
#include "sinkscope/common/result.h"
#include "sinkscope/model/model_config.h"
#include "sinkscope/tokenizer/tokenizer.h"

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sinkscope {

// Progress in [0, 1] with a short label; returning false asks the operation to stop (Cancelled).
using ProgressCallback = std::function<bool(double fraction, const std::string &label)>;

// Set from any thread; long operations check it between layers / tokens.
struct CancelToken {
    std::atomic<bool> cancelled{false};
    void cancel() { cancelled.store(true); }
    bool isCancelled() const { return cancelled.load(); }
};

enum class ModelKind {
    SinkScope, // a SinkScope archive: full contract (controls, captures, tokenizer)
    Generic,   // any TorchScript module returning logits and per-layer attention
};

struct ModelInfo {
    ModelKind kind = ModelKind::SinkScope;
    std::string path;
    ModelConfig config; // for Generic models only layers/heads/vocab are known (after a first run)
    std::string device = "cpu";
    std::string limitation; // Generic: what is unavailable and why
};

// Which intermediate results a forward pass returns. Everything is off by default: a long prompt never
// has to hold every T x T map. Layer lists are indices; `allLayers` selects every layer.
struct CaptureOptions {
    std::vector<int> attentionLayers; // probabilities [H, T, Tk] of these layers
    bool allAttention = false;
    bool hidden = false;         // residual stream after every layer
    bool valueNorms = false;     // ||v_j W_O^h|| for every layer, head and key
    std::vector<int> qkLayers;   // post-RoPE q [H, T, d] and k [Hkv, Tk, d] of these layers
    bool lastLogitsOnly = false; // logits of the last position only
    // The attention statistics of these layers, computed inside the pass by the CPU attention engine
    // (ForwardResult::attentionStats). Archives of contract 5 on the CPU; layers whose maps are captured,
    // older archives and other devices have none (stats.heads == 0).
    std::vector<int> statsLayers;
    bool allStats = false;
    bool statsFirstMassOnly = false; // only PassAttentionStats::firstMass (what `run` prints): no extra sweep
};

// Named control tensors passed to the model's attention steps (see docs/model-format.md): e.g.
// "logit_bias" [L, H, Tk], "temperature" [L, H], "sink_logit" [L, H], "head_mode" [L, H],
// "value_scale" [L, H, Tk], "head_gate" [L, H], "attn_mask" [T, Tk], "positions" [Tk],
// "resid_mask.<l>" / "resid_value.<l>" [T, D]. Absent keys change nothing.
struct Controls {
    std::map<std::string, FloatArray> tensors;
    bool empty() const { return tensors.empty(); }
};

// A layer's post-RoPE q [H, T, d] and k [Hkv, T, d] and its value norms [H, T], as LibTorch tensors on
// the model's device. Opaque outside the core (defined in core/src/model/layer_tensors.h).
struct LayerTensors;

// Called by forward() on its own thread after each layer in CaptureOptions::qkLayers (SinkScope archives
// only), in layer order. That layer's q and k are then dropped instead of returned, so a consumer that
// reduces them as they come (the streaming metrics of analyzeTokens) never holds every layer's q/k, and on
// a GPU they never leave it. An error stops the pass and is what forward() returns.
using LayerHook = std::function<Status(int64_t layer, const LayerTensors &tensors)>;

struct ForwardRequest {
    std::vector<int64_t> tokens;
    CaptureOptions capture;
    Controls controls;
    LayerHook layerHook; // core-internal consumers; empty: q/k are returned in ForwardResult
};

// One layer's attention statistics from the CPU attention engine (sinkscope/attention/fused_attention.h),
// of the probabilities the layer used (every control applied). Row-major [H, T] per query, [H, Tk] per key.
struct PassAttentionStats {
    int64_t heads = 0; // 0: not computed for this layer
    int64_t queries = 0;
    int64_t keys = 0;
    std::vector<float> firstMass;      // A[t, 0]
    std::vector<float> rowPlogp;       // sum_j A log A
    std::vector<float> rowMax;         // max_j A
    std::vector<float> rowWeighted;    // sum_j A f_j (0 without value norms)
    std::vector<float> nullShare;      // the learned sink's share (0 without learned sinks)
    std::vector<double> received;      // sum_t A[t, j]
    std::vector<double> receivedPlogp; // sum_t A log A
    bool empty() const { return heads == 0; }
};

struct ForwardResult {
    std::vector<int64_t> tokens;
    FloatArray logits;                 // [T, V], or [1, V] with lastLogitsOnly
    std::vector<FloatArray> attention; // per layer; empty FloatArray for layers not captured
    // Models with learned sinks (gpt-oss): per captured layer, the sink's share of each query's attention
    // [H, T] (attention rows over real keys then sum to 1 - share). Empty for other models.
    std::vector<FloatArray> sinkShare;
    FloatArray hidden;                              // [L, T, D] when captured
    FloatArray valueNorms;                          // [L, H, Tk] when captured
    std::map<int, FloatArray> queries;              // layer -> [H, T, d]
    std::map<int, FloatArray> keys;                 // layer -> [Hkv, Tk, d]
    std::vector<PassAttentionStats> attentionStats; // per layer with CaptureOptions::statsLayers / allStats
    double seconds = 0;                             // wall time of the forward pass
};

struct TopToken {
    int64_t id = 0;
    float logit = 0;
    float probability = 0;
};

// The configuration of a SinkScope archive, read without loading the model (fast).
Result<ModelConfig> readArchiveConfig(const std::string &path);

// The k most probable next tokens from one row of logits (softmax over the whole row).
std::vector<TopToken> topK(const float *logits, int64_t vocab, int k);

struct GenerateOptions {
    int maxNewTokens = 20;
    double temperature = 0; // 0: greedy
    uint64_t seed = 0;
    bool stopAtEos = true;
};

struct LoadOptions {
    std::string device = "cpu"; // "cpu" or "cuda" (with a CUDA LibTorch)
    ProgressCallback progress;
};

class Model
{
public:
    // Loads a SinkScope archive (.pt) or a generic TorchScript module. Errors name the file.
    static Result<std::shared_ptr<const Model>> load(const std::string &path, const LoadOptions &options = {});

    ~Model();
    const ModelInfo &info() const { return m_info; }
    const ModelConfig &config() const { return m_info.config; }
    // Null for generic TorchScript models without a tokenizer.
    std::shared_ptr<const Tokenizer> tokenizer() const { return m_tokenizer; }
    bool hasContract() const { return m_info.kind == ModelKind::SinkScope; }
    // Its passes run the CPU attention engine and can return its statistics (CaptureOptions::statsLayers):
    // a contract-5 archive on the CPU.
    bool hasAttentionEngine() const
    {
        return hasContract() && m_info.config.contractVersion >= 5 && m_info.device == "cpu";
    }

    // Checks the tokens (non-empty, ids in the vocabulary, within the context) and runs one pass, layer by
    // layer for SinkScope archives: `cancel` and `progress` (fraction of layers done) are checked between
    // layers, so a long prompt stops within one layer's time.
    Result<ForwardResult> forward(const ForwardRequest &request, const CancelToken *cancel = nullptr,
                                  const ProgressCallback &progress = {}) const;

    // Autoregressive continuation with a key/value cache; onToken is called as each token arrives.
    Result<std::vector<int64_t>> generate(const std::vector<int64_t> &prompt, const GenerateOptions &options,
                                          const std::function<void(int64_t)> &onToken = {},
                                          const CancelToken *cancel = nullptr) const;

    // Tokenizes with the model's tokenizer and checks the length: empty and over-long prompts are
    // InvalidArgument errors.
    Result<std::vector<int64_t>> tokenize(const std::string &prompt, std::optional<bool> addBos = {}) const;

    struct Impl;

private:
    Model();
    ModelInfo m_info;
    std::shared_ptr<const Tokenizer> m_tokenizer;
    std::unique_ptr<Impl> m_impl;
};

} // namespace sinkscope
