// One parallel-for for the whole program, on SinkScope's own thread pool (not LibTorch's OpenMP pool, which
// stays at one thread, nor OpenBLAS's, which stays at one thread too: docs/performance.md, "Threads").
//
// - Size: as many threads as the process may use (usableCores(): the CPU affinity mask and a cgroup CPU
//   quota), or SINKSCOPE_THREADS, or setParallelThreads().
// - Passive waiting: idle workers sleep on a condition variable; nothing spins, so a busy machine loses no
//   time to threads waiting for each other.
// - Dynamic scheduling: the items are cut into more chunks than threads and every thread takes the next
//   chunk when it is done; a call returns when every chunk is done, so a worker that the system does not
//   schedule for a while delays the call by at most the chunk it holds (with static splits, one thread
//   preempted by another process delayed every parallel region by a whole time slice).
// - A parallelFor called inside a chunk, or while another thread's call holds the pool, runs inline on
//   the calling thread: no nesting, no oversubscription, no deadlock.
// - LibTorch's thread-local state (inference mode, grad mode) of the caller is in force in every chunk.
#pragma once

#include <cstdint>
#include <functional>

namespace sinkscope {

// Calls body(begin, end) on disjoint chunks that cover [0, count) exactly once. Chunks hold at least
// `grain` items (one chunk when count <= grain); the calling thread takes part and the call returns
// when every chunk is done. An exception thrown by body is rethrown here (the first one; chunks not yet
// started are skipped). Results must not depend on the split: write to per-item slots, not to shared
// accumulators.
void parallelFor(int64_t count, int64_t grain, const std::function<void(int64_t begin, int64_t end)> &body);

// The number of threads parallelFor may use, the caller included.
int parallelThreads();

// Sets the pool's size (1 = everything on the calling thread; 0 = the default). Not to be called while a
// parallelFor runs.
void setParallelThreads(int threads);

// The CPUs this process may use: the affinity mask's count, capped by a cgroup (v2 cpu.max or v1
// cfs_quota_us) quota rounded up; at least 1.
int usableCores();

// The pool's default size: SINKSCOPE_THREADS when set (1..1024), else usableCores().
int defaultParallelThreads();

} // namespace sinkscope
