// Shared between the two attention-metric paths (metrics.cpp, metrics_streaming.cpp): the per-head sums
// both paths produce, so that every metric is finalised by one piece of code and the paths can only
// differ in how the sums were accumulated.
#pragma once

#include "sinkscope/analysis/metrics.h"

#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace sinkscope::detail {

// Sums over one head's causal attention map A [T, T] (j <= t). Doubles: T^2 terms are added.
struct HeadSums {
    std::vector<double> colSum;   // R_j = sum_t A[t, j]
    std::vector<double> colPlogp; // sum_t A[t, j] log A[t, j] (0 log 0 = 0)
    double a00 = 1;               // A[0, 0]: 1 unless a control rewrote the first row
    double rowEntropy = 0;        // sum over t >= 1 of -sum_j A log A / log(t + 1)
    double effective = 0;         // sum over t >= 1 of A[t,0] f_0 / sum_j A[t,j] f_j (rows with a non-zero sum)
    int64_t effectiveRows = 0;
    double weightedNorm = 0; // sum over t of sum_j A[t,j] f_j (f_j = ||v_j W_O^h||)
    bool hasLearnedSink = false;
    double learnedSink = 0; // sum over t of the learned sink's share of row t (gpt-oss)
};

// Per layer, then head: sums[l * H + h].
using AttentionSums = std::vector<HeadSums>;

// MetricsOptions::device as a CUDA ordinal: -1 for "cpu"; InvalidArgument when malformed or when the
// build has no CUDA kernels.
Result<int> metricsCudaDevice(const std::string &device);

// The streaming path one layer at a time: each layer's post-RoPE q [H, T, d] and k [Hkv, T, d] are
// reduced to the per-head sums as they arrive and can be dropped right after. Used over a finished
// ForwardResult (streamingAttentionSums) and inside the forward pass (analyzeTokens, a LayerHook), where
// no layer's q/k outlive the layer. Tensors on the CPU take the CPU path, or the statistics kernel on
// `cudaDevice` (uploaded) when it is >= 0; tensors already on a GPU (a CUDA LibTorch) go to the kernel
// there without a host copy (to the CPU path when the kernels are not built).
class StreamingAccumulator
{
public:
    StreamingAccumulator(int64_t layers, int64_t heads, int64_t tokens, int64_t tileSize, int cudaDevice);
    // The model's attention as its archive computes it: softmax scale, sliding windows, learned sink logits
    // (ModelConfig). Layers that need any of these take the CPU path: the statistics kernel has none of them.
    void setModel(const ModelConfig &config);
    // valueNorms [H, T] (any device) may be undefined: then no M9 sums.
    Status addLayer(int64_t layer, const at::Tensor &queries, const at::Tensor &keys, const at::Tensor &valueNorms);
    // The same layer's sums from the statistics the CPU attention engine computed inside the pass
    // (rowStats [kRowStats, H, T], colStats [2, H, T]; attention/attention_op.h): nothing is recomputed.
    Status addLayerStats(int64_t layer, const at::Tensor &rowStats, const at::Tensor &colStats,
                         const at::Tensor &valueNorms);
    // The sums, once every layer was added (InvalidArgument naming the first missing layer otherwise).
    Result<AttentionSums> take();

private:
    int64_t m_layers, m_heads, m_tokens, m_tileSize;
    int m_cudaDevice;
    double m_scale = 0;
    std::vector<int64_t> m_windows;
    std::vector<float> m_sinks; // [L * H]
    AttentionSums m_sums;
    std::vector<bool> m_done;
};

// Streaming path over a finished pass: online softmax over key tiles from post-RoPE q [H, T, d] and k
// [Hkv, T, d] of every layer, never holding more than H x tile x tile scores. valueNorms may be empty
// (no M9 sums).
Status streamingAttentionSums(const ForwardResult &result, const ModelConfig &config, int64_t tokens,
                              const MetricsOptions &options, AttentionSums &sums);

// A layer tensor as a FloatArray in host memory (what analyzeRun keeps of each layer's q/k).
FloatArray hostCopy(const at::Tensor &tensor);

// Calls options.progress / checks options.cancel; false means stop.
bool metricsProgress(const MetricsOptions &options, double fraction, const std::string &label);

} // namespace sinkscope::detail
