// The memory guard: what a request will need, what the process may still use, and a one-line refusal
// when the first exceeds the second (docs/reliability.md, "Memory").
//
// Every forward pass (and so every mitigated rerun, probe run and profile sample), every generation, every
// model load and every head map computed on demand is checked before it allocates: a request that cannot
// fit ends with an OutOfMemory error naming the need, the limit and the way out, never with the kernel's
// OOM killer or a LibTorch traceback.
//
// Threading: pure functions; memoryBudget() reads /proc and /sys on each call.
#pragma once

#include "sinkscope/common/result.h"

#include <cstdint>
#include <string>

namespace sinkscope {

struct ModelConfig;
struct CaptureOptions;

// How much more memory this process may allocate now, and which limit says so.
struct MemoryBudget {
    uint64_t available = UINT64_MAX; // bytes; UINT64_MAX when nothing could be read
    uint64_t limit = 0;              // the limit itself (bytes), 0 when unknown
    std::string source;              // e.g. "the address-space limit (ulimit -v)"; empty when unlimited
};

// The tightest of: the cgroup's memory limit (v2 memory.max less memory.current, or v1), the address-space
// limit (RLIMIT_AS less the process's current virtual size) and the system's available memory
// (/proc/meminfo MemAvailable). SINKSCOPE_MEMORY_LIMIT (bytes, or with a K/M/G suffix) adds a limit of its
// own on the process's resident size, for trying the guard without changing system limits.
MemoryBudget memoryBudget();

// What a request needs on top of what the process already holds: a conservative estimate of its peak.
struct MemoryNeed {
    uint64_t bytes = 0;
    std::string largest; // the part that dominates, e.g. "attention maps of 30 layers (9 x 4096 x 4096)"
};

// One forward pass of `tokens` tokens with these captures. `engine`: the pass runs the CPU attention
// engine (no T x T scores except for captured layers).
MemoryNeed estimateForward(const ModelConfig &config, int64_t tokens, const CaptureOptions &capture, bool engine);
// A greedy continuation: the prompt's pass, then a key/value cache of prompt + newTokens positions.
MemoryNeed estimateGenerate(const ModelConfig &config, int64_t promptTokens, int64_t newTokens, bool engine);
// Loading a model archive of this many bytes (its weights, once, plus the loader's buffers).
MemoryNeed estimateLoad(uint64_t archiveBytes);
// One head's attention map pooled to rows x cols, from q/k of `tokens` positions.
MemoryNeed estimateHeadMap(int64_t heads, int64_t tokens, int64_t rows, int64_t cols);

// Ok when the need fits the budget (or SINKSCOPE_MEMORY_GUARD is 0 or off); otherwise an OutOfMemory error,
// one line:
// "<what> needs about 9.7 GB (attention maps of 30 layers (9 x 4096 x 4096)), but only 6.1 GB is left under
//  the cgroup memory limit (8.0 GB); <wayOut>".
Status checkMemory(const MemoryNeed &need, const std::string &what, const std::string &wayOut,
                   const MemoryBudget &budget = memoryBudget());

// Hands the memory the allocator keeps but no longer uses back to the system (glibc: malloc_trim(0), which
// also releases free pages inside its heaps and the compute thread's arenas; elsewhere a no-op). Without
// it a long session's resident size creeps up by steps: freed attention maps of a long prompt stay in the
// heap, broken up by the smaller blocks allocated since (docs/reliability.md, "Soak"). Takes a few
// milliseconds; the window calls it on the compute thread whenever it falls idle.
void releaseFreeMemory();

// A "Key:  1234 kB" line of /proc/self/status in bytes ("VmRSS", "VmHWM", "VmSize"); 0 when absent.
uint64_t processStatusBytes(const std::string &key);

// "1.5 GB", "640 MB", "12 KB", "17 bytes" (powers of 1024).
std::string formatBytes(uint64_t bytes);

// Parses "4096", "512K", "640M", "8G" (powers of 1024); 0 on anything else.
uint64_t parseByteSize(const std::string &text);

} // namespace sinkscope
