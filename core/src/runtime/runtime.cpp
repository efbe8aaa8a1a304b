#include "sinkscope/runtime/runtime.h"

#include "runtime/runtime_internal.h"
#include "sinkscope/attention/fused_attention.h"
#include "sinkscope/runtime/parallel.h"

#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/torch.h>

#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <vector>

namespace sinkscope {
namespace {

int envInt(const char *name, int fallback)
{
    if (const char *v = std::getenv(name); v && *v) {
        char *end = nullptr;
        const long n = std::strtol(v, &end, 10);
        if (end && *end == '\0' && n > 0 && n < 1024) {
            return static_cast<int>(n);
        }
    }
    return fallback;
}

using SetThreadsFn = void (*)(int);
using GetThreadsFn = int (*)();

SetThreadsFn openblasSetThreads()
{
    return reinterpret_cast<SetThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
}

GetThreadsFn openblasGetThreads()
{
    return reinterpret_cast<GetThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
}

std::string blasLibraryPath()
{
    void *sym = dlsym(RTLD_DEFAULT, "sgemm_");
    Dl_info info{};
    if (sym && dladdr(sym, &info) && info.dli_fname) {
        std::error_code ec;
        auto real = std::filesystem::canonical(info.dli_fname, ec);
        return ec ? std::string(info.dli_fname) : real.string();
    }
    return {};
}

} // namespace

ThreadSettings defaultThreadSettings()
{
    // LibTorch's OpenMP pool and OpenBLAS stay on one thread: their static splits and spinning workers
    // collapsed (up to 10x slower) on a busy machine (docs/performance.md, "Threads"). The cores are used by
    // SinkScope's own pool (runtime/parallel.h: passive waiting, dynamic chunks), which runs the attention
    // engine and the linear layers (sinkscope::attend, sinkscope::linear), each chunk one single-threaded
    // BLAS call.
    ThreadSettings s;
    s.torchThreads = envInt("SINKSCOPE_TORCH_THREADS", 1);
    s.blasThreads = envInt("SINKSCOPE_BLAS_THREADS", 1);
    return s;
}

std::string applyThreadSettings(const ThreadSettings &s)
{
    if (s.torchThreads > 0) {
        at::set_num_threads(s.torchThreads);
    }
    std::string blas = "n/a";
    if (auto set = openblasSetThreads(); set && s.blasThreads > 0) {
        set(s.blasThreads);
    }
    if (auto get = openblasGetThreads()) {
        blas = std::to_string(get());
    }
    return "torch threads " + std::to_string(at::get_num_threads()) + ", OpenBLAS threads " + blas;
}

BlasCheck checkBlas(int n)
{
    detail::ensureRuntimeConfigured();
    c10::InferenceMode guard;
    BlasCheck r;
    r.n = n;
    r.library = blasLibraryPath();
    auto a = torch::randn({n, n});
    auto b = torch::randn({n, n});
    auto c = torch::mm(a, b); // warm-up: thread pools, page faults
    std::vector<double> secs;
    for (int i = 0; i < 5; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        c = torch::mm(a, b);
        secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::nth_element(secs.begin(), secs.begin() + 2, secs.end());
    const double median = std::max(secs[2], 1e-9);
    r.gflops = 2.0 * n * n * static_cast<double>(n) / median / 1e9;
    r.slow = r.gflops < kSlowBlasGflops;
    if (r.slow) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.1f", r.gflops);
        const std::string rate = std::string("matrix multiply runs at ") + buf + " GFLOP/s";
        if (r.library.find("openblas") != std::string::npos) {
            // OpenBLAS itself, but slow: its threads spin against other work on the same cores.
            r.message = rate + " with OpenBLAS (" + r.library +
                        "): the cores are busy or oversubscribed; set SINKSCOPE_BLAS_THREADS=1 or free the CPU.";
        } else {
            r.message = rate + ": LibTorch is using a slow reference BLAS" +
                        (r.library.empty() ? std::string() : " (" + r.library + ")") +
                        ". Install an optimised one: apt-get install libopenblas0-pthread (forward passes get ~50x "
                        "faster).";
        }
    }
    return r;
}

std::string runtimeSummary()
{
    detail::ensureRuntimeConfigured();
    std::string lib = blasLibraryPath();
    return std::string("LibTorch ") + TORCH_VERSION + ", SinkScope threads " + std::to_string(parallelThreads()) +
           " of " + std::to_string(usableCores()) + " usable cores, attention kernel " +
           attentionIsaName(activeAttentionIsa()) + ", torch threads " + std::to_string(at::get_num_threads()) +
           ", OpenBLAS threads " + (openblasGetThreads() ? std::to_string(openblasGetThreads()()) : "n/a") + ", BLAS " +
           (lib.empty() ? "unknown" : lib);
}

namespace detail {

void ensureRuntimeConfigured()
{
    static std::once_flag once;
    std::call_once(once, [] {
        applyThreadSettings(defaultThreadSettings());
        // TorchScript's graph optimisations (profiling runs, specialisation, CPU fusion) buy nothing for
        // archives whose work is in BLAS calls and SinkScope's operators, and the first pass of every
        // method paid for them: without them a 256-token pass of the default model's first run took 0.50 s
        // instead of 0.61 s, later runs no longer (docs/performance.md, "Threads").
        torch::jit::setGraphExecutorOptimize(false);
    });
}

} // namespace detail
} // namespace sinkscope
