// The streaming attention-metric path: the per-head sums of metrics_internal.h from post-RoPE q and k,
// without a T x T map. Queries go in row blocks; each block's scores against every key it sees
// ([H, bq, q1], bq chosen so that a block stays under 16 MiB: fewer rows as T grows, so memory is linear
// in T) are computed once, and the exact probabilities are reduced into column and row sums right away.
// Column sums need finished rows (a key's share of a row is only known when the row's normaliser is),
// which a row block has. Peak extra memory: two block buffers (32 MiB) plus O(H x T) accumulators.
//
// streamingLayerSums() is also the CPU reference of the CUDA statistics kernel (kernels/,
// sinkscope/attention_tiles.h): per-row and per-key sums of one layer, with the logit controls the
// model applies before its softmax (logit bias, temperature, sink logit). The kernel reaches the same
// numbers with an online softmax over key tiles (it cannot hold a row block).
//
// Every needed quantity avoids a per-element log: with s the scaled logit and lse the row normaliser,
// log p = s - lse, so p log p = p (s - lse).
//
// Speed (docs/performance.md, "Streaming metrics"): one q k^T and one exponential per score, and
// vectorised LibTorch reductions. The first version swept key tiles twice (an online log-sum-exp, then the
// probabilities: two q k^T and three exponentials per score) into a scalar fused loop whose double row
// sums cannot vectorise; it was 1.3x slower at 1024 tokens and 3-4x at 4096.
#include "analysis/metrics_internal.h"
#include "analysis/streaming_layer.h"
#include "attention/attention_op.h"
#include "torch_util.h"

#include "sinkscope/config.h"
#include "sinkscope/runtime/device.h"

#include <torch/torch.h>

#if SINKSCOPE_ENABLE_CUDA
#include "sinkscope/kernels/host_api.h"
#endif
#if SINKSCOPE_ENABLE_CUDA && SINKSCOPE_HAS_CUDA_TORCH
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace sinkscope::detail {

namespace {

at::Tensor view(const FloatArray &a)
{
    // from_blob never writes here: every use reads (narrow, bmm, index_select copy).
    return torch::from_blob(const_cast<float *>(a.data.data()), at::IntArrayRef(a.shape), torch::kFloat);
}

std::string shapeOf(const FloatArray &a)
{
    std::string s = "[";
    for (size_t i = 0; i < a.shape.size(); ++i) {
        s += (i ? ", " : "") + std::to_string(a.shape[i]);
    }
    return s + "]";
}

} // namespace

void streamingLayerSums(const at::Tensor &queries, const at::Tensor &keys, const LayerLogitControls &controls,
                        int64_t tileSize, LayerRowColSums &out)
{
    const int64_t heads = queries.size(0), t = queries.size(1), kvHeads = keys.size(0);
    const int64_t tile = std::max<int64_t>(1, tileSize);
    const float negInf = -std::numeric_limits<float>::infinity();
    const double scale = controls.scale > 0 ? controls.scale : 1.0 / std::sqrt(static_cast<double>(queries.size(2)));
    // Scaling q once saves a pass over every score tile.
    const at::Tensor q = queries * static_cast<float>(scale);
    at::Tensor k = keys;
    // GQA: query head h reads kv head h / (H / Hkv), as repeat_kv does in the model.
    if (kvHeads != heads) {
        k = k.repeat_interleave(heads / kvHeads, 0);
    }
    const at::Tensor kT = k.transpose(1, 2); // [H, d, T]
    const at::Tensor bias =
        controls.logitBias ? torch::from_blob(const_cast<float *>(controls.logitBias), {heads, 1, t}, torch::kFloat)
                           : at::Tensor();
    const at::Tensor temperature =
        controls.temperature ? torch::from_blob(const_cast<float *>(controls.temperature), {heads, 1, 1}, torch::kFloat)
                             : at::Tensor();
    // Null columns: exp(b) joins each row's normaliser and its probability is dropped (docs/model-format.md):
    // the model's learned sinks first, then the sink_logit control.
    std::vector<at::Tensor> nullColumns;
    if (controls.learnedSink) {
        nullColumns.push_back(torch::from_blob(const_cast<float *>(controls.learnedSink), {heads, 1}, torch::kFloat));
    }
    if (controls.sinkLogit) {
        nullColumns.push_back(torch::from_blob(const_cast<float *>(controls.sinkLogit), {heads, 1}, torch::kFloat));
    }
    const float *fn = controls.valueNorms; // [H, T]
    const float *sinkWeight = controls.sinkWeight;
    const bool extras = out.withRowExtras;

    const size_t ht = static_cast<size_t>(heads * t);
    out.colSum.assign(ht, 0.0);
    out.colPlogp.assign(ht, 0.0);
    out.rowPlogp.assign(ht, 0.0);
    out.rowWeighted.assign(ht, 0.0);
    out.first.assign(ht, 0.0);
    out.rowMax.assign(extras ? ht : 0, 0.0);
    out.sinkMass.assign(extras ? ht : 0, 0.0);
    out.learnedSink.assign(controls.learnedSink ? ht : 0, 0.0);

    // Row blocks of bq queries against every key they see: [H, bq, q1] scores, computed once, at most
    // `tile` rows. m = row max, p = exp(s - m) (the only exponential), lse = m + log(sum p), p /= sum.
    constexpr double kBlockBytes = 16.0 * 1024 * 1024;
    const int64_t fit = static_cast<int64_t>(kBlockBytes / (4.0 * static_cast<double>(heads) * static_cast<double>(t)));
    const int64_t block = std::clamp<int64_t>(fit, std::min<int64_t>(16, tile), tile);
    // Blocks are aligned, so the causal boundary of a block is an upper triangle in its last bq keys.
    const at::Tensor upper = torch::ones({block, block}, torch::kBool).triu(1);
    // Two block buffers reused for every block: fresh 16 MiB tensors per block went through mmap / munmap
    // and page faults (a sixth of the time in a profile).
    const at::Tensor scoreBuf = torch::empty({heads * block * t}, torch::kFloat);
    const at::Tensor probBuf = torch::empty({heads * block * t}, torch::kFloat);
    for (int64_t q0 = 0; q0 < t; q0 += block) {
        const int64_t bq = std::min(block, t - q0), q1 = q0 + bq;
        at::Tensor s = scoreBuf.narrow(0, 0, heads * bq * q1).view({heads, bq, q1});
        torch::bmm_out(s, q.narrow(1, q0, bq), kT.narrow(2, 0, q1));
        if (bias.defined()) {
            s.add_(bias.narrow(2, 0, q1));
        }
        if (temperature.defined()) {
            s.div_(temperature);
        }
        s.narrow(2, q0, bq).masked_fill_(upper.narrow(0, 0, bq).narrow(1, 0, bq), negInf);
        if (controls.window > 0) {
            // Keys that left a sliding window: j <= i - W. Every row keeps at least itself.
            const at::Tensor qi = torch::arange(q0, q1, torch::kLong).view({bq, 1});
            const at::Tensor kj = torch::arange(q1, torch::kLong).view({1, q1});
            s.masked_fill_((kj <= qi - controls.window).unsqueeze(0), negInf);
        }
        const at::Tensor rowTop = std::get<0>(s.max(2, true)); // [H, bq, 1]: the largest logit of each row
        at::Tensor m = rowTop;
        for (const at::Tensor &b : nullColumns) {
            m = torch::maximum(m, b.unsqueeze(2).expand({heads, bq, 1}));
        }
        at::Tensor p = probBuf.narrow(0, 0, heads * bq * q1).view({heads, bq, q1});
        torch::sub_out(p, s, m).exp_();
        at::Tensor sum = p.sum(2, true);
        std::vector<at::Tensor> nullExp;
        for (const at::Tensor &b : nullColumns) {
            nullExp.push_back((b.unsqueeze(2) - m).exp());
            sum.add_(nullExp.back());
        }
        const at::Tensor inv = sum.reciprocal();
        at::Tensor learnedShare;
        if (controls.learnedSink) {
            learnedShare = (nullExp.front() * inv).reshape({heads, bq}).to(torch::kDouble).contiguous();
        }
        const at::Tensor lse = m + sum.log();
        p.mul_(inv); // the probabilities; masked entries are exactly 0
        // p log p with log p = s - lse; where p = 0 (masked, or underflowed) the product is 0 * -inf = NaN
        // or 0 * finite: nan_to_num makes it the 0 that 0 log 0 is.
        const at::Tensor plogp = s.sub_(lse).mul_(p).nan_to_num_(0.0, 0.0, 0.0);
        // Vectorised reductions of the block (a scalar fused loop with double accumulators was the bottleneck:
        // it cannot vectorise the row sums without reassociation).
        const at::Tensor colSum = p.sum(1).to(torch::kDouble).contiguous();      // [H, q1]
        const at::Tensor colPl = plogp.sum(1).to(torch::kDouble).contiguous();   // [H, q1]
        const at::Tensor rowPl = plogp.sum(2).to(torch::kDouble).contiguous();   // [H, bq]
        const at::Tensor first = p.select(2, 0).to(torch::kDouble).contiguous(); // [H, bq]
        at::Tensor rowW, rowMax, sinkMass;
        if (fn) {
            rowW =
                torch::bmm(p, torch::from_blob(const_cast<float *>(fn), {heads, t, 1}, torch::kFloat).narrow(1, 0, q1))
                    .to(torch::kDouble)
                    .contiguous();
        }
        if (extras) {
            rowMax = (rowTop - lse).exp().to(torch::kDouble).contiguous();
            at::Tensor w = sinkWeight ? torch::from_blob(const_cast<float *>(sinkWeight), {1, t, 1}, torch::kFloat)
                                            .narrow(1, 0, q1)
                                            .expand({heads, q1, 1})
                                      : at::Tensor();
            sinkMass =
                (w.defined() ? torch::bmm(p, w.contiguous()) : p.narrow(2, 0, 1)).to(torch::kDouble).contiguous();
        }
        for (int64_t h = 0; h < heads; ++h) {
            const double *cs = colSum.data_ptr<double>() + h * q1, *cp = colPl.data_ptr<double>() + h * q1;
            double *outCs = out.colSum.data() + h * t, *outCp = out.colPlogp.data() + h * t;
            for (int64_t j = 0; j < q1; ++j) {
                outCs[j] += cs[j];
                outCp[j] += cp[j];
            }
            for (int64_t i = 0; i < bq; ++i) {
                const size_t r = static_cast<size_t>(h * t + q0 + i), b = static_cast<size_t>(h * bq + i);
                out.rowPlogp[r] = rowPl.data_ptr<double>()[b];
                out.first[r] = first.data_ptr<double>()[b];
                if (fn) {
                    out.rowWeighted[r] = rowW.data_ptr<double>()[b];
                }
                if (extras) {
                    out.rowMax[r] = rowMax.data_ptr<double>()[b];
                    out.sinkMass[r] = sinkMass.data_ptr<double>()[b];
                }
                if (learnedShare.defined()) {
                    out.learnedSink[r] = learnedShare.data_ptr<double>()[b];
                }
            }
        }
    }
}

Result<int> metricsCudaDevice(const std::string &device)
{
    if (device == "cpu") {
        return -1;
    }
    const std::optional<int> index = cudaOrdinal(device);
    if (!index) {
        return makeError(ErrorCode::InvalidArgument, "metrics device '" + device + "' is not cpu, cuda or cuda:N");
    }
    if (!SINKSCOPE_ENABLE_CUDA) {
        return makeError(ErrorCode::InvalidArgument,
                         "metrics device '" + device +
                             "': this build has no CUDA kernels (-DSINKSCOPE_ENABLE_CUDA=ON)");
    }
    return *index;
}

namespace {

// Folds one layer's row and column sums into the per-head sums both metric paths finalise.
void foldLayer(const LayerRowColSums &layer, int64_t l, int64_t heads, int64_t t, const float *fn, AttentionSums &sums)
{
    for (int64_t h = 0; h < heads; ++h) {
        HeadSums &s = sums[static_cast<size_t>(l * heads + h)];
        s.colSum.assign(layer.colSum.begin() + h * t, layer.colSum.begin() + (h + 1) * t);
        s.colPlogp.assign(layer.colPlogp.begin() + h * t, layer.colPlogp.begin() + (h + 1) * t);
        s.a00 = layer.first[static_cast<size_t>(h * t)]; // 1 unless a learned sink shares row 0
        if (!layer.learnedSink.empty()) {
            s.hasLearnedSink = true;
            for (int64_t row = 0; row < t; ++row) {
                s.learnedSink += layer.learnedSink[static_cast<size_t>(h * t + row)];
            }
        }
        for (int64_t row = 0; row < t; ++row) {
            const size_t r = static_cast<size_t>(h * t + row);
            // Normalised by log(t + 1); row 0 (log 1 = 0) counts 0, as in Guo et al.'s code.
            if (row >= 1) {
                s.rowEntropy -= layer.rowPlogp[r] / std::log(static_cast<double>(row + 1));
            }
            if (fn) {
                s.weightedNorm += layer.rowWeighted[r];
                if (row >= 1 && layer.rowWeighted[r] > 0) {
                    s.effective += layer.first[r] * fn[h * t] / layer.rowWeighted[r];
                    ++s.effectiveRows;
                }
            }
        }
    }
}

#if SINKSCOPE_ENABLE_CUDA
// The kernel's inputs from contiguous fp32 q [H, T, d] and k [Hkv, T, d] (host or device memory, as the
// call wants); valueNorms [H, T] in the same memory, or null.
cuda::AttentionStatsArgs statsInputs(const at::Tensor &q, const at::Tensor &k, const float *valueNorms)
{
    cuda::AttentionStatsArgs a;
    a.q = q.data_ptr<float>();
    a.k = k.data_ptr<float>();
    a.heads = static_cast<int>(q.size(0));
    a.kvHeads = static_cast<int>(k.size(0));
    a.tokens = static_cast<int>(q.size(1));
    a.headDim = static_cast<int>(q.size(2));
    a.valueNorms = valueNorms;
    return a;
}

// The kernel's float outputs as the CPU path's double sums.
void fromKernel(const cuda::HostAttentionStats &g, LayerRowColSums &layer)
{
    auto toDouble = [](const std::vector<float> &v) { return std::vector<double>(v.begin(), v.end()); };
    layer.colSum = toDouble(g.received);
    layer.colPlogp = toDouble(g.receivedPlogp);
    layer.rowPlogp.resize(g.rowEntropy.size());
    std::transform(g.rowEntropy.begin(), g.rowEntropy.end(), layer.rowPlogp.begin(),
                   [](float e) { return -static_cast<double>(e); });
    layer.rowWeighted = toDouble(g.rowWeighted);
    layer.first = toDouble(g.firstMass);
}

// The statistics kernel on CUDA tensors (a CUDA LibTorch): reads their memory in place on LibTorch's
// current stream of their device; the [H, T] outputs are LibTorch tensors there, copied back once.
Status cudaTensorStats(const at::Tensor &queries, const at::Tensor &keys, const at::Tensor &valueNorms,
                       LayerRowColSums &layer)
{
#if SINKSCOPE_HAS_CUDA_TORCH
    const c10::cuda::CUDAGuard onDevice(queries.device());
    const at::Tensor q = queries.to(torch::kFloat).contiguous(),
                     k = keys.to(queries.device(), torch::kFloat).contiguous();
    const at::Tensor fn =
        valueNorms.defined() ? valueNorms.to(queries.device(), torch::kFloat).contiguous() : at::Tensor();
    const int64_t heads = q.size(0), t = q.size(1);
    auto out = [&] { return torch::empty({heads, t}, q.options()); };
    at::Tensor first = out(), entropy = out(), received = out(), receivedPlogp = out();
    at::Tensor weighted = fn.defined() ? out() : at::Tensor();
    cuda::AttentionStatsArgs a = statsInputs(q, k, fn.defined() ? fn.data_ptr<float>() : nullptr);
    a.firstMass = first.data_ptr<float>();
    a.rowEntropy = entropy.data_ptr<float>();
    a.rowWeighted = fn.defined() ? weighted.data_ptr<float>() : nullptr;
    a.received = received.data_ptr<float>();
    a.receivedPlogp = receivedPlogp.data_ptr<float>();
    if (auto st = cuda::attentionStats(a, c10::cuda::getCurrentCUDAStream(queries.device().index()).stream()); !st) {
        return makeError(ErrorCode::Internal, st.message);
    }
    // The copies wait for the kernel (same stream); an execution error surfaces here as a LibTorch error.
    auto host = [](const at::Tensor &x) {
        const at::Tensor c = x.to(torch::kCPU, torch::kDouble).contiguous();
        return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
    };
    layer.colSum = host(received);
    layer.colPlogp = host(receivedPlogp);
    layer.rowPlogp = host(entropy.neg());
    layer.rowWeighted = fn.defined() ? host(weighted) : std::vector<double>(static_cast<size_t>(heads * t), 0.0);
    layer.first = host(first);
    return Ok{};
#else
    (void)queries, (void)keys, (void)valueNorms, (void)layer;
    return makeError(ErrorCode::Internal, "CUDA tensors in a build without a CUDA LibTorch");
#endif
}
#endif

} // namespace

StreamingAccumulator::StreamingAccumulator(int64_t layers, int64_t heads, int64_t tokens, int64_t tileSize,
                                           int cudaDevice)
    : m_layers(layers), m_heads(heads), m_tokens(tokens), m_tileSize(tileSize), m_cudaDevice(cudaDevice)
{
    m_sums.assign(static_cast<size_t>(layers * heads), {});
    m_done.assign(static_cast<size_t>(layers), false);
}

void StreamingAccumulator::setModel(const ModelConfig &config)
{
    m_scale = config.attnScale;
    m_windows = config.layerWindows;
    m_sinks.clear();
    if (config.learnedSinks && static_cast<int64_t>(config.sinkLogits.size()) == m_layers * m_heads) {
        m_sinks.assign(config.sinkLogits.begin(), config.sinkLogits.end());
    }
}

Status StreamingAccumulator::addLayer(int64_t l, const at::Tensor &queries, const at::Tensor &keys,
                                      const at::Tensor &valueNorms)
{
    const int64_t heads = m_heads, t = m_tokens;
    const bool qOk = queries.defined() && queries.dim() == 3 && queries.size(0) == heads && queries.size(1) == t;
    const bool kOk = qOk && keys.defined() && keys.dim() == 3 && keys.size(0) > 0 && heads % keys.size(0) == 0 &&
                     keys.size(1) == t && keys.size(2) == queries.size(2);
    auto shape = [](const at::Tensor &x) {
        if (!x.defined()) {
            return std::string("none");
        }
        std::string s = "[";
        for (int64_t i = 0; i < x.dim(); ++i) {
            s += (i ? ", " : "") + std::to_string(x.size(i));
        }
        return s + "]";
    };
    if (l < 0 || l >= m_layers || !qOk || !kOk) {
        return makeError(ErrorCode::InvalidArgument, "layer " + std::to_string(l) + ": queries " + shape(queries) +
                                                         " and keys " + shape(keys) + " do not match [" +
                                                         std::to_string(heads) + ", " + std::to_string(t) +
                                                         ", d] and [Hkv, T, d] with Hkv dividing the head count");
    }
    const bool norms = valueNorms.defined() && valueNorms.numel() == heads * t;
    // The value norms on the host: the fold reads them, and the CPU path too ([H, T], small).
    const at::Tensor fnHost = norms ? valueNorms.to(torch::kCPU, torch::kFloat).contiguous() : at::Tensor();
    const float *fn = norms ? fnHost.data_ptr<float>() : nullptr;
    LayerRowColSums layer;
    const int64_t window = l < static_cast<int64_t>(m_windows.size()) ? m_windows[static_cast<size_t>(l)] : 0;
    const float *sinks = m_sinks.empty() ? nullptr : m_sinks.data() + l * heads;
    const bool plainSoftmax = window == 0 && !sinks && m_scale == 0;
    if (m_cudaDevice < 0 || (queries.is_cuda() && !SINKSCOPE_ENABLE_CUDA) || !plainSoftmax) {
        LayerLogitControls controls;
        controls.valueNorms = fn;
        controls.scale = m_scale;
        controls.window = window;
        controls.learnedSink = sinks;
        streamingLayerSums(queries.to(torch::kCPU, torch::kFloat).contiguous(),
                           keys.to(torch::kCPU, torch::kFloat).contiguous(), controls, m_tileSize, layer);
    }
#if SINKSCOPE_ENABLE_CUDA
    else if (queries.is_cuda()) {
        // q and k already on a GPU (the model runs there, a CUDA LibTorch): the kernel reads the tensors'
        // memory directly on LibTorch's current stream of that device; only the [H, T] sums come back.
        auto st = cudaTensorStats(queries, keys, norms ? valueNorms : at::Tensor(), layer);
        if (!st) {
            return makeError(ErrorCode::Internal, "metrics on " + queries.device().str() + ", layer " +
                                                      std::to_string(l) + ": " + st.error().message);
        }
    } else {
        const at::Tensor q = queries.to(torch::kFloat).contiguous(), k = keys.to(torch::kFloat).contiguous();
        cuda::HostAttentionStats g;
        if (auto st = cuda::attentionStatsFromHost(statsInputs(q, k, fn), m_cudaDevice, g); !st) {
            return makeError(ErrorCode::Internal, "metrics on cuda:" + std::to_string(m_cudaDevice) + ", layer " +
                                                      std::to_string(l) + ": " + st.message);
        }
        fromKernel(g, layer);
    }
#endif
    foldLayer(layer, l, heads, t, fn, m_sums);
    m_done[static_cast<size_t>(l)] = true;
    return Ok{};
}

Status StreamingAccumulator::addLayerStats(int64_t l, const at::Tensor &rowStats, const at::Tensor &colStats,
                                           const at::Tensor &valueNorms)
{
    const int64_t heads = m_heads, t = m_tokens;
    if (l < 0 || l >= m_layers || !rowStats.defined() || !colStats.defined() ||
        rowStats.sizes() != at::IntArrayRef{kRowStats, heads, t} || colStats.sizes() != at::IntArrayRef{2, heads, t}) {
        return makeError(ErrorCode::InvalidArgument, "layer " + std::to_string(l) +
                                                         ": the attention engine's statistics do not match [" +
                                                         std::to_string(heads) + ", " + std::to_string(t) + "]");
    }
    const at::Tensor rows = rowStats.to(torch::kCPU, torch::kDouble).contiguous();
    const at::Tensor cols = colStats.to(torch::kCPU, torch::kDouble).contiguous();
    const size_t n = static_cast<size_t>(heads * t);
    auto slice = [n](const at::Tensor &x, int64_t i) {
        const double *p = x.data_ptr<double>() + static_cast<size_t>(i) * n;
        return std::vector<double>(p, p + n);
    };
    LayerRowColSums layer;
    layer.colSum = slice(cols, 0);
    layer.colPlogp = slice(cols, 1);
    layer.rowPlogp = slice(rows, kStatPlogp);
    layer.rowWeighted = slice(rows, kStatWeighted);
    layer.first = slice(rows, kStatFirst);
    if (!m_sinks.empty()) {
        layer.learnedSink = slice(rows, kStatNullShare);
    }
    const bool norms = valueNorms.defined() && valueNorms.numel() == heads * t;
    const at::Tensor fnHost = norms ? valueNorms.to(torch::kCPU, torch::kFloat).contiguous() : at::Tensor();
    foldLayer(layer, l, heads, t, norms ? fnHost.data_ptr<float>() : nullptr, m_sums);
    m_done[static_cast<size_t>(l)] = true;
    return Ok{};
}

Result<AttentionSums> StreamingAccumulator::take()
{
    for (int64_t l = 0; l < m_layers; ++l) {
        if (!m_done[static_cast<size_t>(l)]) {
            return makeError(ErrorCode::InvalidArgument, "streaming metrics: layer " + std::to_string(l) + " of " +
                                                             std::to_string(m_layers) + " was never reduced");
        }
    }
    return std::move(m_sums);
}

Status streamingAttentionSums(const ForwardResult &result, const ModelConfig &config, int64_t t,
                              const MetricsOptions &options, AttentionSums &sums)
{
    const int64_t layers = config.layers, heads = config.heads;
    for (int64_t l = 0; l < layers; ++l) {
        const FloatArray &q = result.queries.at(static_cast<int>(l));
        const FloatArray &k = result.keys.at(static_cast<int>(l));
        const bool qOk = q.shape.size() == 3 && q.shape[0] == heads && q.shape[1] == t &&
                         static_cast<int64_t>(q.data.size()) == q.numel();
        const bool kOk = k.shape.size() == 3 && k.shape[0] > 0 && heads % k.shape[0] == 0 && k.shape[1] == t && qOk &&
                         k.shape[2] == q.shape[2] && static_cast<int64_t>(k.data.size()) == k.numel();
        if (!qOk || !kOk) {
            return makeError(ErrorCode::InvalidArgument, "layer " + std::to_string(l) + ": queries " + shapeOf(q) +
                                                             " and keys " + shapeOf(k) + " do not match [" +
                                                             std::to_string(heads) + ", " + std::to_string(t) +
                                                             ", d] and [Hkv, T, d] with Hkv dividing the head count");
        }
    }
    const bool norms = result.valueNorms.shape == std::vector<int64_t>{layers, heads, t};
    auto device = metricsCudaDevice(options.device);
    if (!device) {
        return device.error();
    }
    return guardTorch("streaming metrics", [&]() -> Status {
        c10::InferenceMode guard;
        StreamingAccumulator acc(layers, heads, t, options.tileSize, *device);
        acc.setModel(config);
        for (int64_t l = 0; l < layers; ++l) {
            if (!metricsProgress(options, static_cast<double>(l) / static_cast<double>(layers),
                                 "streaming attention metrics, layer " + std::to_string(l))) {
                return makeError(ErrorCode::Cancelled, "metrics cancelled");
            }
            const at::Tensor fn =
                norms ? torch::from_blob(const_cast<float *>(result.valueNorms.data.data()) + l * heads * t, {heads, t},
                                         torch::kFloat)
                      : at::Tensor();
            if (auto st = acc.addLayer(l, view(result.queries.at(static_cast<int>(l))),
                                       view(result.keys.at(static_cast<int>(l))), fn);
                !st) {
                return st;
            }
        }
        auto taken = acc.take();
        if (!taken) {
            return taken.error();
        }
        sums = std::move(*taken);
        return Ok{};
    });
}

FloatArray hostCopy(const at::Tensor &tensor)
{
    return toFloatArray(tensor);
}

} // namespace sinkscope::detail
