// One head's pooled attention map (sinkscope/kernels/attention_map.h). The row normalisers come from
// sweep 1 of the tiled statistics kernel; then one block per output bin computes the probabilities of its
// cells (q.k from global memory through the L1 cache: a bin is at most a few hundred rows and keys) and
// reduces them: no atomics, so the result does not depend on the order of the blocks.
#include "attention_tiles.cuh"
#include "cuda_check.cuh"

#include "sinkscope/kernels/attention_map.h"

namespace sinkscope::cuda {
namespace detail {
namespace {

constexpr int kMapThreads = 128;

__device__ inline long long binStart(long long b, long long n, long long bins)
{
    return b * n / bins;
}

template <bool kMax>
__global__ void __launch_bounds__(kMapThreads) pooledMapKernel(DeviceArgs a, int head, int rows, int cols, float *out)
{
    const int T = a.tokens, d = a.headDim;
    const int r = blockIdx.y, c = blockIdx.x;
    const long long r0 = binStart(r, T, rows), r1 = binStart(r + 1, T, rows);
    const long long c0 = binStart(c, T, cols), c1 = binStart(c + 1, T, cols);
    const long long h = r1 - r0, w = c1 - c0;
    const int kvh = head / (a.heads / a.kvHeads);
    const float *qh = a.q + static_cast<size_t>(head) * T * d;
    const float *kh = a.k + static_cast<size_t>(kvh) * T * d;
    const float *lse = a.lse; // this head's row normalisers
    const float tempH = a.temperature ? a.temperature[head] : 1.0f;
    double acc = 0.0; // double: a mean bin may hold millions of cells
    if (c0 < r1) {    // some cell of the bin is on or below the diagonal
        for (long long cell = threadIdx.x; cell < h * w; cell += kMapThreads) {
            const long long i = r0 + cell / w, j = c0 + cell % w;
            if (j > i) {
                continue;
            }
            const float *qi = qh + i * d, *kj = kh + j * d;
            float dot = 0.0f;
            for (int e = 0; e < d; ++e) {
                dot = fmaf(__ldg(qi + e), __ldg(kj + e), dot);
            }
            float z = dot * a.scale + (a.logitBias ? a.logitBias[static_cast<size_t>(head) * T + j] : 0.0f);
            if (a.temperature) {
                z = z / tempH;
            }
            const float p = z == -CUDART_INF_F ? 0.0f : expf(z - lse[i]);
            acc = kMax ? fmax(acc, static_cast<double>(p)) : acc + p;
        }
    }
    __shared__ double part[kMapThreads / 32];
    for (int off = 16; off >= 1; off >>= 1) {
        const double o = __shfl_xor_sync(0xffffffffu, acc, off);
        acc = kMax ? fmax(acc, o) : acc + o;
    }
    if ((threadIdx.x & 31) == 0) {
        part[threadIdx.x / 32] = acc;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        double v = part[0];
        for (int i = 1; i < kMapThreads / 32; ++i) {
            v = kMax ? fmax(v, part[i]) : v + part[i];
        }
        out[static_cast<size_t>(r) * cols + c] = static_cast<float>(kMax ? v : v / static_cast<double>(h * w));
    }
}

} // namespace
} // namespace detail

CudaStatus attentionMap(const AttentionMapArgs &args, void *stream)
{
    if (auto ok = detail::checkArgs(args.input); !ok) {
        return ok;
    }
    const int T = args.input.tokens;
    if (args.head < 0 || args.head >= args.input.heads || args.rows < 1 || args.rows > T || args.rows > 65535 ||
        args.cols < 1 || args.cols > T || !args.out) {
        return detail::invalid("attention map: head " + std::to_string(args.head) + ", resolution " +
                               std::to_string(args.rows) + " x " + std::to_string(args.cols) +
                               " (head in range, 1..T, rows <= 65535" + ", output required)");
    }
    const auto s = static_cast<cudaStream_t>(stream);
    detail::DeviceArgs d = detail::deviceArgs(args.input);
    float *lse = nullptr;
    SINKSCOPE_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void **>(&lse), sizeof(float) * T, s));
    d.lse = lse; // one head: the tiles kernel writes row (h - headBase) * T + t
    d.headBase = args.head;
    CudaStatus st = detail::launchTiles<false>(d, 1, s);
    if (st) {
        const dim3 grid(args.cols, args.rows);
        if (args.pool == MapPool::Max) {
            detail::pooledMapKernel<true>
                <<<grid, detail::kMapThreads, 0, s>>>(d, args.head, args.rows, args.cols, args.out);
        } else {
            detail::pooledMapKernel<false>
                <<<grid, detail::kMapThreads, 0, s>>>(d, args.head, args.rows, args.cols, args.out);
        }
        const cudaError_t launch = cudaGetLastError();
        if (launch != cudaSuccess) {
            st = detail::cudaFailure(launch, "pooledMapKernel<<<>>>", __FILE__, __LINE__);
        }
    }
    const cudaError_t freed = cudaFreeAsync(lse, s);
    if (st && freed != cudaSuccess) {
        return detail::cudaFailure(freed, "cudaFreeAsync(lse)", __FILE__, __LINE__);
    }
    return st;
}

} // namespace sinkscope::cuda
