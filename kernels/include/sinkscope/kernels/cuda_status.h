// Errors and device queries of the CUDA kernels library (sinkscope::kernels). Host-side, plain C++: no
// CUDA or LibTorch headers, so the core includes it with any compiler.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sinkscope::cuda {

// The outcome of a host API call. Every CUDA runtime call goes through one check macro
// (src/cuda_check.cuh) that reports the call, file and line.
struct CudaStatus {
    int code = 0;        // cudaError_t; 0 = success
    std::string message; // "cudaMalloc(...) at attention_stats.cu:120: out of memory"
    bool ok() const { return code == 0; }
    explicit operator bool() const { return ok(); }
};

struct CudaDevice {
    int index = 0;
    std::string name;
    int64_t totalMemory = 0;
    int64_t freeMemory = 0;
    int major = 0;
    int minor = 0;
    bool supported = false; // compute capability >= 8.0 (the kernels are built for sm_80 and sm_90 + PTX)
};

// Devices the CUDA runtime sees; empty (with the reason in `why`) without a driver or GPU. Never throws.
std::vector<CudaDevice> listDevices(std::string *why = nullptr);

// True when at least one supported device exists.
bool deviceAvailable();

// The architectures the kernels were compiled for (CMAKE_CUDA_ARCHITECTURES), e.g. "80;90".
const char *compiledArchitectures();

// Waits for `stream` (a cudaStream_t; null = the legacy default stream) and reports any error of the
// kernels launched on it.
CudaStatus synchronize(void *stream = nullptr);

} // namespace sinkscope::cuda
