// Fused attention statistics (sinkscope/kernels/attention_stats.h). One block per (64-query tile, head);
// 256 threads as 16 row groups x 16 key groups, each thread owning a 4 x 4 block of scores of the
// 64 x 64 tile (rows ty*4+a, keys tx+16b: conflict-free reads of the padded K tile). Sweep 1 keeps an
// online (max, sum) per row in registers across all key tiles and combines the 16 key groups with warp
// shuffles at the end: one exp per score, no per-tile reduction. Sweep 2 recomputes the scores and adds
// the exact probabilities into per-row registers and per-key shared sums, flushed to global memory with
// one atomic per key and tile (the column sums add over query tiles).
#include "attention_tiles.cuh"
#include "cuda_check.cuh"

#include <cmath>

namespace sinkscope::cuda {
namespace detail {

namespace {

template <bool kStats> __global__ void __launch_bounds__(kThreads) attentionTilesKernel(DeviceArgs a)
{
    extern __shared__ float smem[];
    const int d = a.headDim, ld = d + 1, T = a.tokens;
    float *qs = smem;                // [kTileQ][ld]
    float *ks = qs + kTileQ * ld;    // [kTileK][ld]
    float *biasS = ks + kTileK * ld; // [kTileK]
    float *normS = biasS + kTileK;   // [kTileK]
    float *weightS = normS + kTileK; // [kTileK]
    float *colS = weightS + kTileK;  // [kTileK]
    float *colPlS = colS + kTileK;   // [kTileK]

    const int h = blockIdx.y + a.headBase;
    const int kvh = h / (a.heads / a.kvHeads);
    const int q0 = blockIdx.x * kTileQ;
    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    const float *qh = a.q + (static_cast<size_t>(h) * T) * d;
    const float *kh = a.k + (static_cast<size_t>(kvh) * T) * d;
    const float scale = a.scale;
    const bool useTemp = a.temperature != nullptr;
    const float tempH = useTemp ? a.temperature[h] : 1.0f;

    for (int i = tid; i < kTileQ * d; i += kThreads) {
        const int r = i / d, c = i % d;
        qs[r * ld + c] = q0 + r < T ? qh[static_cast<size_t>(q0 + r) * d + c] : 0.0f;
    }
    const int kEnd = min(q0 + kTileQ, T); // keys 0 .. kEnd-1 are visible to some row of the tile

    auto loadKeys = [&](int k0) {
        for (int i = tid; i < kTileK * d; i += kThreads) {
            const int r = i / d, c = i % d;
            ks[r * ld + c] = k0 + r < T ? kh[static_cast<size_t>(k0 + r) * d + c] : 0.0f;
        }
        if (tid < kTileK) {
            const int j = k0 + tid;
            const bool in = j < T;
            biasS[tid] = in && a.logitBias ? a.logitBias[static_cast<size_t>(h) * T + j] : 0.0f;
            normS[tid] = in && a.valueNorms ? a.valueNorms[static_cast<size_t>(h) * T + j] : 0.0f;
            weightS[tid] = in ? (a.sinkWeight ? a.sinkWeight[j] : (j == 0 ? 1.0f : 0.0f)) : 0.0f;
            colS[tid] = 0.0f;
            colPlS[tid] = 0.0f;
        }
    };
    auto tileScores = [&](float(&s)[4][4], int k0) {
#pragma unroll
        for (int x = 0; x < 4; ++x) {
#pragma unroll
            for (int y = 0; y < 4; ++y) {
                s[x][y] = 0.0f;
            }
        }
        for (int c = 0; c < d; ++c) {
            float qv[4], kv[4];
#pragma unroll
            for (int x = 0; x < 4; ++x) {
                qv[x] = qs[(ty * 4 + x) * ld + c];
                kv[x] = ks[(tx + 16 * x) * ld + c];
            }
#pragma unroll
            for (int x = 0; x < 4; ++x) {
#pragma unroll
                for (int y = 0; y < 4; ++y) {
                    s[x][y] = fmaf(qv[x], kv[y], s[x][y]);
                }
            }
        }
#pragma unroll
        for (int x = 0; x < 4; ++x) {
            const int t = q0 + ty * 4 + x;
#pragma unroll
            for (int y = 0; y < 4; ++y) {
                const int j = k0 + tx + 16 * y;
                float z = s[x][y] * scale + biasS[tx + 16 * y];
                if (useTemp) {
                    z = z / tempH;
                }
                s[x][y] = (j <= t && t < T) ? z : -CUDART_INF_F;
            }
        }
    };

    // Sweep 1: online (max, sum) per row.
    float m[4], l[4];
#pragma unroll
    for (int x = 0; x < 4; ++x) {
        m[x] = -CUDART_INF_F;
        l[x] = 0.0f;
    }
    for (int k0 = 0; k0 < kEnd; k0 += kTileK) {
        __syncthreads();
        loadKeys(k0);
        __syncthreads();
        float s[4][4];
        tileScores(s, k0);
#pragma unroll
        for (int x = 0; x < 4; ++x) {
            float tileMax = fmaxf(fmaxf(s[x][0], s[x][1]), fmaxf(s[x][2], s[x][3]));
            if (tileMax == -CUDART_INF_F) {
                continue;
            }
            float sum = 0.0f;
#pragma unroll
            for (int y = 0; y < 4; ++y) {
                sum += __expf(s[x][y] - tileMax);
            }
            combineMl(m[x], l[x], tileMax, sum);
        }
    }
    float lse[4];
#pragma unroll
    for (int x = 0; x < 4; ++x) {
        // The 16 key groups of a row are 16 consecutive lanes of one warp.
        for (int off = 8; off >= 1; off >>= 1) {
            const float m2 = __shfl_xor_sync(0xffffffffu, m[x], off, 16);
            const float l2 = __shfl_xor_sync(0xffffffffu, l[x], off, 16);
            combineMl(m[x], l[x], m2, l2);
        }
        lse[x] = m[x] + logf(l[x]);
        if (a.sinkLogit) {
            const float b = a.sinkLogit[h];
            const float hi = fmaxf(lse[x], b);
            lse[x] = hi == -CUDART_INF_F ? hi : hi + logf(__expf(lse[x] - hi) + __expf(b - hi));
        }
    }

    if constexpr (!kStats) {
        if (tx == 0) {
#pragma unroll
            for (int x = 0; x < 4; ++x) {
                const int t = q0 + ty * 4 + x;
                if (t < T) {
                    a.lse[static_cast<size_t>(h - a.headBase) * T + t] = lse[x];
                }
            }
        }
        return;
    } else {
        float rowPl[4] = {0, 0, 0, 0}, rowW[4] = {0, 0, 0, 0}, rowSink[4] = {0, 0, 0, 0}, first[4] = {0, 0, 0, 0};
        for (int k0 = 0; k0 < kEnd; k0 += kTileK) {
            __syncthreads();
            loadKeys(k0);
            __syncthreads();
            float s[4][4];
            tileScores(s, k0);
            float colP[4] = {0, 0, 0, 0}, colPl[4] = {0, 0, 0, 0};
#pragma unroll
            for (int x = 0; x < 4; ++x) {
#pragma unroll
                for (int y = 0; y < 4; ++y) {
                    const float logp = s[x][y] - lse[x];
                    // expf, not __expf: the probabilities themselves are outputs (sweep 1 only sums them).
                    const float p = s[x][y] == -CUDART_INF_F ? 0.0f : expf(logp);
                    const float pl = p > 0.0f ? p * logp : 0.0f;
                    rowPl[x] += pl;
                    rowW[x] = fmaf(p, normS[tx + 16 * y], rowW[x]);
                    rowSink[x] = fmaf(p, weightS[tx + 16 * y], rowSink[x]);
                    if (k0 == 0 && tx == 0 && y == 0) {
                        first[x] = p;
                    }
                    colP[y] += p;
                    colPl[y] += pl;
                }
            }
// Lanes l and l + 16 of a warp hold the same keys (two row groups): add them, then one shared
// atomic per key from each warp.
#pragma unroll
            for (int y = 0; y < 4; ++y) {
                colP[y] += __shfl_down_sync(0xffffffffu, colP[y], 16);
                colPl[y] += __shfl_down_sync(0xffffffffu, colPl[y], 16);
                if ((tid & 31) < 16) {
                    atomicAdd(&colS[tx + 16 * y], colP[y]);
                    atomicAdd(&colPlS[tx + 16 * y], colPl[y]);
                }
            }
            __syncthreads();
            if (tid < kTileK && k0 + tid < T) {
                const size_t idx = static_cast<size_t>(h) * T + k0 + tid;
                if (a.received) {
                    atomicAdd(a.received + idx, colS[tid]);
                }
                if (a.receivedPlogp) {
                    atomicAdd(a.receivedPlogp + idx, colPlS[tid]);
                }
            }
        }
#pragma unroll
        for (int x = 0; x < 4; ++x) {
            for (int off = 8; off >= 1; off >>= 1) {
                rowPl[x] += __shfl_xor_sync(0xffffffffu, rowPl[x], off, 16);
                rowW[x] += __shfl_xor_sync(0xffffffffu, rowW[x], off, 16);
                rowSink[x] += __shfl_xor_sync(0xffffffffu, rowSink[x], off, 16);
                first[x] += __shfl_xor_sync(0xffffffffu, first[x], off, 16);
            }
            const int t = q0 + ty * 4 + x;
            if (tx == 0 && t < T) {
                const size_t idx = static_cast<size_t>(h) * T + t;
                if (a.sinkMass) {
                    a.sinkMass[idx] = rowSink[x];
                }
                if (a.firstMass) {
                    a.firstMass[idx] = first[x];
                }
                if (a.rowEntropy) {
                    a.rowEntropy[idx] = -rowPl[x];
                }
                if (a.rowMax) {
                    a.rowMax[idx] = expf(m[x] - lse[x]);
                }
                if (a.rowWeighted) {
                    a.rowWeighted[idx] = rowW[x];
                }
            }
        }
    }
}

} // namespace

CudaStatus checkArgs(const AttentionStatsArgs &a)
{
    if (!a.q || !a.k) {
        return invalid("attention kernels: q and k are required");
    }
    if (a.heads <= 0 || a.kvHeads <= 0 || a.tokens <= 0 || a.headDim <= 0 || a.heads % a.kvHeads != 0 ||
        a.headDim > kMaxHeadDim) {
        return invalid("attention kernels: heads " + std::to_string(a.heads) + ", kv heads " +
                       std::to_string(a.kvHeads) + ", tokens " + std::to_string(a.tokens) + ", head dim " +
                       std::to_string(a.headDim) +
                       " (positive, kv heads dividing heads, head dim <= " + std::to_string(kMaxHeadDim) + ")");
    }
    return {};
}

DeviceArgs deviceArgs(const AttentionStatsArgs &a)
{
    DeviceArgs d{};
    d.q = a.q;
    d.k = a.k;
    d.heads = a.heads;
    d.kvHeads = a.kvHeads;
    d.tokens = a.tokens;
    d.headDim = a.headDim;
    d.scale = a.scale > 0 ? a.scale : static_cast<float>(1.0 / std::sqrt(static_cast<double>(a.headDim)));
    d.logitBias = a.logitBias;
    d.temperature = a.temperature;
    d.sinkLogit = a.sinkLogit;
    d.sinkWeight = a.sinkWeight;
    d.valueNorms = a.valueNorms;
    d.sinkMass = a.sinkMass;
    d.firstMass = a.firstMass;
    d.rowEntropy = a.rowEntropy;
    d.rowMax = a.rowMax;
    d.rowWeighted = a.rowWeighted;
    d.received = a.received;
    d.receivedPlogp = a.receivedPlogp;
    return d;
}

template <bool kStats> CudaStatus launchTiles(const DeviceArgs &d, int headsInGrid, cudaStream_t stream)
{
    const size_t shared = tileSharedBytes(d.headDim);
    SINKSCOPE_CUDA_CHECK(cudaFuncSetAttribute(attentionTilesKernel<kStats>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                              static_cast<int>(shared)));
    const dim3 grid((d.tokens + kTileQ - 1) / kTileQ, headsInGrid);
    attentionTilesKernel<kStats><<<grid, kThreads, shared, stream>>>(d);
    SINKSCOPE_CUDA_CHECK_LAUNCH("attentionTilesKernel");
    return {};
}

template CudaStatus launchTiles<false>(const DeviceArgs &, int, cudaStream_t);

} // namespace detail

CudaStatus attentionStats(const AttentionStatsArgs &args, void *stream)
{
    if (auto ok = detail::checkArgs(args); !ok) {
        return ok;
    }
    const auto s = static_cast<cudaStream_t>(stream);
    const size_t bytes = sizeof(float) * static_cast<size_t>(args.heads) * args.tokens;
    if (args.received) {
        SINKSCOPE_CUDA_CHECK(cudaMemsetAsync(args.received, 0, bytes, s));
    }
    if (args.receivedPlogp) {
        SINKSCOPE_CUDA_CHECK(cudaMemsetAsync(args.receivedPlogp, 0, bytes, s));
    }
    detail::DeviceArgs d = detail::deviceArgs(args);
    d.headBase = 0;
    return detail::launchTiles<true>(d, args.heads, s);
}

} // namespace sinkscope::cuda
