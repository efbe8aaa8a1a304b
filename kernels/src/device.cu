// Device queries and synchronisation of the kernels library.
#include "cuda_check.cuh"

namespace sinkscope::cuda {

std::vector<CudaDevice> listDevices(std::string *why)
{
    std::vector<CudaDevice> out;
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
        if (why) {
            *why = std::string("no CUDA device: ") + cudaGetErrorString(err);
        }
        cudaGetLastError(); // clear the sticky-free error so later calls start clean
        return out;
    }
    int current = 0;
    const bool restore = cudaGetDevice(&current) == cudaSuccess;
    for (int i = 0; i < count; ++i) {
        cudaDeviceProp prop{};
        if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) {
            cudaGetLastError();
            continue;
        }
        CudaDevice d;
        d.index = i;
        d.name = prop.name;
        d.totalMemory = static_cast<int64_t>(prop.totalGlobalMem);
        d.major = prop.major;
        d.minor = prop.minor;
        d.supported = prop.major >= 8;
        size_t freeBytes = 0, totalBytes = 0;
        if (cudaSetDevice(i) == cudaSuccess && cudaMemGetInfo(&freeBytes, &totalBytes) == cudaSuccess) {
            d.freeMemory = static_cast<int64_t>(freeBytes);
        } else {
            cudaGetLastError();
        }
        out.push_back(d);
    }
    if (restore) {
        cudaSetDevice(current);
    }
    if (out.empty() && why) {
        *why = "no CUDA device";
    }
    return out;
}

bool deviceAvailable()
{
    for (const auto &d : listDevices()) {
        if (d.supported) {
            return true;
        }
    }
    return false;
}

const char *compiledArchitectures()
{
    return SINKSCOPE_CUDA_ARCHITECTURES;
}

CudaStatus synchronize(void *stream)
{
    SINKSCOPE_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)));
    SINKSCOPE_CUDA_CHECK(cudaGetLastError());
    return {};
}

} // namespace sinkscope::cuda
