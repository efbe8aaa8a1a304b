// The one check macro every CUDA runtime call goes through (ggml common.cuh): it turns a failure into a
// CudaStatus naming the call, the file and the line, and returns it from the enclosing function.
#pragma once

#include "sinkscope/kernels/cuda_status.h"

#include <cuda_runtime.h>

#include <string>

namespace sinkscope::cuda::detail {

inline CudaStatus cudaFailure(cudaError_t err, const char *call, const char *file, int line)
{
    std::string f = file;
    if (const auto slash = f.find_last_of('/'); slash != std::string::npos) {
        f = f.substr(slash + 1);
    }
    return CudaStatus{static_cast<int>(err),
                      std::string(call) + " at " + f + ":" + std::to_string(line) + ": " + cudaGetErrorString(err)};
}

inline CudaStatus invalid(const std::string &what)
{
    return CudaStatus{static_cast<int>(cudaErrorInvalidValue), what};
}

} // namespace sinkscope::cuda::detail

#define SINKSCOPE_CUDA_CHECK(call)                                                                                     \
    do {                                                                                                               \
        const cudaError_t sinkscopeErr_ = (call);                                                                      \
        if (sinkscopeErr_ != cudaSuccess) {                                                                            \
            return ::sinkscope::cuda::detail::cudaFailure(sinkscopeErr_, #call, __FILE__, __LINE__);                   \
        }                                                                                                              \
    } while (0)

// After a launch: a bad configuration shows up here, errors during execution at the next synchronisation.
#define SINKSCOPE_CUDA_CHECK_LAUNCH(name) SINKSCOPE_CUDA_CHECK(cudaGetLastError())
