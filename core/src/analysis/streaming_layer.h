// The per-layer core of the streaming attention path (metrics_streaming.cpp), shared by the sink metrics
// and the CPU reference of the CUDA statistics kernel (attention_tiles.cpp). Private: LibTorch types.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace sinkscope::detail {

// Optional inputs of one layer; null pointers mean "absent" (the model's neutral value).
struct LayerLogitControls {
    double scale = 0;                   // logit scale; 0: 1 / sqrt(d)
    const float *logitBias = nullptr;   // [H, T] added to z (after the scale)
    const float *temperature = nullptr; // [H]: z / tau
    const float *sinkLogit = nullptr;   // [H]: a null column exp(b) in the normaliser, dropped afterwards
    const float *sinkWeight = nullptr;  // [T]: sinkMass = sum_j A[t, j] w_j; null: key 0 alone
    const float *valueNorms = nullptr;  // [H, T] f_j for rowWeighted
    int64_t window = 0;                 // > 0: a sliding-window layer, query i sees keys i - W < j <= i
    const float *learnedSink = nullptr; // [H]: the model's own sink logits (gpt-oss), a null column like sinkLogit
};

// Sums of one layer, all [H, T] row-major, accumulated in double.
struct LayerRowColSums {
    bool withRowExtras = false;      // fill rowMax and sinkMass (the reference API; metrics do not need them)
    std::vector<double> colSum;      // per key: sum_t A[t, j]
    std::vector<double> colPlogp;    // per key: sum_t A log A
    std::vector<double> rowPlogp;    // per query: sum_j A log A
    std::vector<double> rowWeighted; // per query: sum_j A f_j (0 without value norms)
    std::vector<double> first;       // per query: A[t, 0]
    std::vector<double> rowMax;      // per query: max_j A[t, j]
    std::vector<double> sinkMass;    // per query: sum_j A[t, j] w_j
    std::vector<double> learnedSink; // per query: the learned sink's share (empty without learnedSink)
};

// queries [H, T, d], keys [Hkv, T, d] (float, CPU); causal mask; online softmax over key tiles.
void streamingLayerSums(const at::Tensor &queries, const at::Tensor &keys, const LayerLogitControls &controls,
                        int64_t tileSize, LayerRowColSums &out);

} // namespace sinkscope::detail
