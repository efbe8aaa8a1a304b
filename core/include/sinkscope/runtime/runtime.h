// Process-wide compute settings: thread counts for LibTorch and the BLAS it calls, and a check that
// the BLAS is fast (Debian's LibTorch silently falls back to the reference BLAS ~50x slower when no
// optimised libblas.so.3 is installed).
#pragma once

#include <string>

namespace sinkscope {

struct ThreadSettings {
    int torchThreads = 0; // at::set_num_threads; 0 = leave as is
    int blasThreads = 0;  // openblas_set_num_threads; 0 = leave as is
};

// The settings SinkScope applies at start-up to LibTorch's and OpenBLAS's own pools: one thread each (see
// docs/performance.md, "Threads"; SINKSCOPE_TORCH_THREADS / SINKSCOPE_BLAS_THREADS override them). The cores
// are used by SinkScope's pool (runtime/parallel.h, SINKSCOPE_THREADS).
ThreadSettings defaultThreadSettings();
// Applies the settings; returns a one-line description of what was set.
std::string applyThreadSettings(const ThreadSettings &settings);

struct BlasCheck {
    double gflops = 0; // measured fp32 matmul rate (n x n, median of several runs)
    int n = 0;
    std::string library; // resolved path of the library providing sgemm_, if found
    bool slow = false;   // below the reference-BLAS threshold
    std::string message; // empty when fine; otherwise the warning with the fix
};

// Times an n x n fp32 matmul through LibTorch. n = 384 costs ~1 ms with OpenBLAS, ~40 ms without.
BlasCheck checkBlas(int n = 384);

// A rate below this is treated as the reference BLAS (measured: ~3 GFLOP/s reference, ~140 OpenBLAS).
inline constexpr double kSlowBlasGflops = 15.0;

std::string runtimeSummary(); // LibTorch version, threads, BLAS library

} // namespace sinkscope
