// One head's attention map pooled to [rows, cols] on the GPU: the contract of
// sinkscope::pooledAttentionMap (core/include/sinkscope/attention_tiles.h). Bin r covers queries
// [floor(r T / rows), floor((r + 1) T / rows)), likewise for keys; masked cells (j > t) count 0. Max:
// the largest A of the bin; mean: the sum over the bin's cells divided by its area.
// Two launches: the row normalisers (online softmax over key tiles, [T] floats of scratch that the call
// allocates), then one block per output bin. No T x T buffer. Asynchronous on `stream`.
#pragma once

#include "sinkscope/kernels/attention_stats.h"

namespace sinkscope::cuda {

enum class MapPool { Max, Mean };

struct AttentionMapArgs {
    AttentionStatsArgs input; // q, k, sizes and logit controls (its outputs are ignored)
    int head = 0;
    int rows = 0; // 1..T
    int cols = 0; // 1..T
    MapPool pool = MapPool::Max;
    float *out = nullptr; // [rows, cols], device
};

CudaStatus attentionMap(const AttentionMapArgs &args, void *stream = nullptr);

} // namespace sinkscope::cuda
