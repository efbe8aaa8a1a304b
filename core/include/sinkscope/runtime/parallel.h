// One parallel-for for the whole program. It runs on LibTorch's intra-op thread pool, so it honours
// the thread settings (runtime.h: applyThreadSettings, SINKSCOPE_TORCH_THREADS) like every tensor
// operation does, and a loop started inside another parallel region runs inline instead of
// oversubscribing the cores.
#pragma once

#include <cstdint>
#include <functional>

namespace sinkscope {

// Calls body(begin, end) on disjoint chunks that cover [0, count) exactly once. Chunks hold at least
// `grain` items (one chunk when count <= grain); the calling thread takes part and the call returns
// when every chunk is done. An exception thrown by body is rethrown here. Results must not depend
// on the split: write to per-item slots, not to shared accumulators.
void parallelFor(int64_t count, int64_t grain, const std::function<void(int64_t begin, int64_t end)> &body);

// The number of threads parallelFor may use (LibTorch's intra-op thread count).
int parallelThreads();

} // namespace sinkscope
