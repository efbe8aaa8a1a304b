// attentionStatsFromHost (sinkscope/kernels/host_api.h): device buffers owned for one call.
#include "cuda_check.cuh"

#include "sinkscope/kernels/host_api.h"

#include <tuple>

namespace sinkscope::cuda {
namespace {

class DeviceFloats
{
public:
    DeviceFloats() = default;
    ~DeviceFloats() { cudaFree(m_p); }
    DeviceFloats(const DeviceFloats &) = delete;
    DeviceFloats &operator=(const DeviceFloats &) = delete;
    cudaError_t allocate(size_t n) { return cudaMalloc(reinterpret_cast<void **>(&m_p), n * sizeof(float)); }
    float *get() const { return m_p; }

private:
    float *m_p = nullptr;
};

} // namespace

CudaStatus attentionStatsFromHost(const AttentionStatsArgs &in, int device, HostAttentionStats &out)
{
    if (auto ok = [&]() -> CudaStatus {
            if (!in.q || !in.k || in.heads <= 0 || in.kvHeads <= 0 || in.tokens <= 0 || in.headDim <= 0) {
                return detail::invalid("attentionStatsFromHost: q, k and positive sizes are required");
            }
            return {};
        }();
        !ok) {
        return ok;
    }
    SINKSCOPE_CUDA_CHECK(cudaSetDevice(device));
    const size_t ht = static_cast<size_t>(in.heads) * in.tokens;
    const size_t nq = ht * in.headDim, nk = static_cast<size_t>(in.kvHeads) * in.tokens * in.headDim;
    DeviceFloats q, k, bias, tau, sink, weight, norms, outs;
    auto upload = [&](DeviceFloats &d, const float *host, size_t n) -> CudaStatus {
        if (!host) {
            return {};
        }
        SINKSCOPE_CUDA_CHECK(d.allocate(n));
        SINKSCOPE_CUDA_CHECK(cudaMemcpy(d.get(), host, n * sizeof(float), cudaMemcpyHostToDevice));
        return {};
    };
    for (auto [d, host, n] :
         {std::tuple{&q, in.q, nq}, std::tuple{&k, in.k, nk}, std::tuple{&bias, in.logitBias, ht},
          std::tuple{&tau, in.temperature, static_cast<size_t>(in.heads)},
          std::tuple{&sink, in.sinkLogit, static_cast<size_t>(in.heads)},
          std::tuple{&weight, in.sinkWeight, static_cast<size_t>(in.tokens)}, std::tuple{&norms, in.valueNorms, ht}}) {
        if (auto st = upload(*d, host, n); !st) {
            return st;
        }
    }
    SINKSCOPE_CUDA_CHECK(outs.allocate(7 * ht));
    AttentionStatsArgs a = in;
    a.q = q.get();
    a.k = k.get();
    a.logitBias = bias.get();
    a.temperature = tau.get();
    a.sinkLogit = sink.get();
    a.sinkWeight = weight.get();
    a.valueNorms = norms.get();
    std::vector<float> *hostOut[7] = {&out.sinkMass,    &out.firstMass, &out.rowEntropy,   &out.rowMax,
                                      &out.rowWeighted, &out.received,  &out.receivedPlogp};
    float **devOut[7] = {&a.sinkMass,    &a.firstMass, &a.rowEntropy,   &a.rowMax,
                         &a.rowWeighted, &a.received,  &a.receivedPlogp};
    for (int i = 0; i < 7; ++i) {
        *devOut[i] = outs.get() + i * ht;
    }
    if (auto st = attentionStats(a, nullptr); !st) {
        return st;
    }
    SINKSCOPE_CUDA_CHECK(cudaDeviceSynchronize());
    SINKSCOPE_CUDA_CHECK(cudaGetLastError());
    for (int i = 0; i < 7; ++i) {
        hostOut[i]->resize(ht);
        SINKSCOPE_CUDA_CHECK(cudaMemcpy(hostOut[i]->data(), *devOut[i], ht * sizeof(float), cudaMemcpyDeviceToHost));
    }
    return {};
}

} // namespace sinkscope::cuda
