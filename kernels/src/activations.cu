// Residual-stream reductions (sinkscope/kernels/activations.h). One block per layer.
// Top-k: every thread keeps its k best keys (|h| bits << 32 | ~index: larger |h| first, then the smaller
// index) sorted in local memory; k rounds of a block-wide max pick the winners. Median: an exact radix
// select over the bits of |h| (non-negative floats order like their bit patterns), four 8-bit passes
// with a shared histogram.
#include "cuda_check.cuh"

#include "sinkscope/kernels/activations.h"

#include <cstdint>

namespace sinkscope::cuda {
namespace detail {
namespace {

constexpr int kActThreads = 256;

__device__ inline uint32_t absBits(float v)
{
    const uint32_t b = __float_as_uint(v) & 0x7fffffffu;
    return b > 0x7f800000u ? 0u : b; // NaN counts as 0
}

__device__ inline unsigned long long blockMax(unsigned long long v, unsigned long long *scratch)
{
    for (int off = 16; off >= 1; off >>= 1) {
        const unsigned long long o = __shfl_xor_sync(0xffffffffu, v, off);
        v = o > v ? o : v;
    }
    __syncthreads(); // scratch may still be read from the previous round
    if ((threadIdx.x & 31) == 0) {
        scratch[threadIdx.x / 32] = v;
    }
    __syncthreads();
    unsigned long long best = 0;
    for (int i = 0; i < kActThreads / 32; ++i) {
        best = scratch[i] > best ? scratch[i] : best;
    }
    return best;
}

__global__ void __launch_bounds__(kActThreads) activationKernel(ActivationArgs a)
{
    const long long n = static_cast<long long>(a.tokens) * a.dim;
    const float *h = a.hidden + static_cast<size_t>(blockIdx.x) * n;
    const int k = a.k;

    // Top-k. Key 0 means "none": a real key has index bits ~i != 0 for i < 2^32 - 1.
    unsigned long long best[kMaxActivationTopK];
    for (int i = 0; i < k; ++i) {
        best[i] = 0;
    }
    for (long long i = threadIdx.x; i < n; i += kActThreads) {
        const unsigned long long key =
            (static_cast<unsigned long long>(absBits(h[i])) << 32) | (0xffffffffu - static_cast<uint32_t>(i));
        if (key <= best[k - 1]) {
            continue;
        }
        int pos = k - 1;
        while (pos > 0 && best[pos - 1] < key) {
            best[pos] = best[pos - 1];
            --pos;
        }
        best[pos] = key;
    }
    __shared__ unsigned long long scratch[kActThreads / 32];
    int head = 0;
    for (int round = 0; round < k; ++round) {
        const unsigned long long mine = head < k ? best[head] : 0ull;
        const unsigned long long win = blockMax(mine, scratch);
        if (win != 0 && mine == win) {
            ++head;
        }
        if (threadIdx.x == 0) {
            const size_t out = static_cast<size_t>(blockIdx.x) * k + round;
            if (win == 0) {
                a.topValue[out] = 0.0f;
                a.topIndex[out] = -1;
            } else {
                const long long idx = 0xffffffffll - static_cast<long long>(win & 0xffffffffull);
                const float v = h[idx];
                a.topValue[out] = v != v ? 0.0f : v;
                a.topIndex[out] = idx;
            }
        }
    }

    // Median: the element of rank (n - 1) / 2 of the sorted |h|.
    __shared__ unsigned int hist[256];
    __shared__ uint32_t prefix, mask;
    __shared__ long long rank;
    if (threadIdx.x == 0) {
        prefix = 0;
        mask = 0;
        rank = (n - 1) / 2;
    }
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int i = threadIdx.x; i < 256; i += kActThreads) {
            hist[i] = 0;
        }
        __syncthreads();
        const uint32_t p = prefix, m = mask;
        for (long long i = threadIdx.x; i < n; i += kActThreads) {
            const uint32_t b = absBits(h[i]);
            if ((b & m) == p) {
                atomicAdd(&hist[(b >> shift) & 0xffu], 1u);
            }
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            long long below = 0;
            int bin = 0;
            for (; bin < 255; ++bin) {
                if (below + hist[bin] > rank) {
                    break;
                }
                below += hist[bin];
            }
            rank -= below;
            prefix |= static_cast<uint32_t>(bin) << shift;
            mask |= 0xffu << shift;
        }
        __syncthreads();
    }
    if (threadIdx.x == 0 && a.median) {
        a.median[blockIdx.x] = __uint_as_float(prefix);
    }
}

} // namespace
} // namespace detail

CudaStatus activationStats(const ActivationArgs &args, void *stream)
{
    const long long n = static_cast<long long>(args.tokens) * args.dim;
    if (!args.hidden || args.layers <= 0 || args.tokens <= 0 || args.dim <= 0 || args.k < 1 ||
        args.k > kMaxActivationTopK || n >= 0xffffffffll || !args.topValue || !args.topIndex) {
        return detail::invalid("activation statistics: hidden [" + std::to_string(args.layers) + ", " +
                               std::to_string(args.tokens) + ", " + std::to_string(args.dim) +
                               "], k = " + std::to_string(args.k) + " (positive sizes, tokens x dim < 2^32, k in 1.." +
                               std::to_string(kMaxActivationTopK) + ", outputs required)");
    }
    detail::activationKernel<<<args.layers, detail::kActThreads, 0, static_cast<cudaStream_t>(stream)>>>(args);
    SINKSCOPE_CUDA_CHECK_LAUNCH("activationKernel");
    return {};
}

} // namespace sinkscope::cuda
