// CPU reference of the CUDA attention kernels (sinkscope/attention_tiles.h): the streaming path's layer
// sums with the row extras, and one head's pooled map from row blocks of the exact probabilities.
#include "sinkscope/analysis/attention_tiles.h"

#include "analysis/streaming_layer.h"
#include "torch_util.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace sinkscope {

namespace {

Status checkInput(const LayerAttentionInput &in)
{
    if (!in.q || !in.k) {
        return makeError(ErrorCode::InvalidArgument, "attention statistics: q and k are required");
    }
    if (in.heads <= 0 || in.kvHeads <= 0 || in.tokens <= 0 || in.headDim <= 0 || in.heads % in.kvHeads != 0) {
        return makeError(ErrorCode::InvalidArgument,
                         "attention statistics: heads " + std::to_string(in.heads) + ", kv heads " +
                             std::to_string(in.kvHeads) + ", tokens " + std::to_string(in.tokens) + ", head dim " +
                             std::to_string(in.headDim) + " (all positive, kv heads dividing heads)");
    }
    return Ok{};
}

detail::LayerLogitControls controlsOf(const LayerAttentionInput &in)
{
    detail::LayerLogitControls c;
    c.scale = in.scale;
    c.logitBias = in.logitBias;
    c.temperature = in.temperature;
    c.sinkLogit = in.sinkLogit;
    c.sinkWeight = in.sinkWeight;
    c.valueNorms = in.valueNorms;
    c.window = in.window;
    return c;
}

at::Tensor blob(const float *data, at::IntArrayRef shape)
{
    return torch::from_blob(const_cast<float *>(data), shape, torch::kFloat);
}

std::vector<float> toFloats(const std::vector<double> &v)
{
    return {v.begin(), v.end()};
}

} // namespace

Result<LayerAttentionStats> layerAttentionStats(const LayerAttentionInput &in, int64_t tile)
{
    if (auto ok = checkInput(in); !ok) {
        return ok.error();
    }
    return detail::guardTorch("attention statistics", [&]() -> Result<LayerAttentionStats> {
        c10::InferenceMode guard;
        detail::LayerRowColSums sums;
        sums.withRowExtras = true;
        detail::streamingLayerSums(blob(in.q, {in.heads, in.tokens, in.headDim}),
                                   blob(in.k, {in.kvHeads, in.tokens, in.headDim}), controlsOf(in), tile, sums);
        LayerAttentionStats s;
        s.heads = in.heads;
        s.tokens = in.tokens;
        s.sinkMass = toFloats(sums.sinkMass);
        s.firstMass = toFloats(sums.first);
        s.rowEntropy.resize(sums.rowPlogp.size());
        std::transform(sums.rowPlogp.begin(), sums.rowPlogp.end(), s.rowEntropy.begin(),
                       [](double v) { return static_cast<float>(-v); });
        s.rowMax = toFloats(sums.rowMax);
        s.rowWeighted = toFloats(sums.rowWeighted);
        s.received = toFloats(sums.colSum);
        s.receivedPlogp = toFloats(sums.colPlogp);
        return s;
    });
}

Result<FloatArray> pooledAttentionMap(const LayerAttentionInput &in, int64_t head, int64_t rows, int64_t cols,
                                      PoolMode mode, int64_t tile)
{
    if (auto ok = checkInput(in); !ok) {
        return ok.error();
    }
    const int64_t t = in.tokens;
    if (head < 0 || head >= in.heads) {
        return makeError(ErrorCode::InvalidArgument, "attention map: head " + std::to_string(head) + " is not in 0.." +
                                                         std::to_string(in.heads - 1));
    }
    if (rows < 1 || rows > t || cols < 1 || cols > t) {
        return makeError(ErrorCode::InvalidArgument, "attention map: resolution " + std::to_string(rows) + " x " +
                                                         std::to_string(cols) + " is not within 1.." +
                                                         std::to_string(t));
    }
    return detail::guardTorch("attention map", [&]() -> Result<FloatArray> {
        c10::InferenceMode guard;
        const int64_t d = in.headDim, kvHead = head / (in.heads / in.kvHeads);
        const double scale = in.scale > 0 ? in.scale : 1.0 / std::sqrt(static_cast<double>(d));
        const at::Tensor q = blob(in.q + head * t * d, {t, d}) * static_cast<float>(scale);
        const at::Tensor kT = blob(in.k + kvHead * t * d, {t, d}).t();
        FloatArray out;
        out.shape = {rows, cols};
        out.data.assign(static_cast<size_t>(rows * cols), 0.0f);
        std::vector<double> sums(mode == PoolMode::Mean ? out.data.size() : 0, 0.0);
        std::vector<int64_t> colBin(static_cast<size_t>(t));
        for (int64_t j = 0; j < t; ++j) {
            colBin[static_cast<size_t>(j)] = poolBinOf(j, t, cols);
        }
        const int64_t step = std::max<int64_t>(1, tile);
        const float negInf = -std::numeric_limits<float>::infinity();
        // One block of query rows at a time against every key it sees: step x T scores, linear in T.
        for (int64_t q0 = 0; q0 < t; q0 += step) {
            const int64_t bq = std::min(step, t - q0), q1 = q0 + bq;
            at::Tensor s = torch::mm(q.narrow(0, q0, bq), kT.narrow(1, 0, q1));
            if (in.logitBias) {
                s.add_(blob(in.logitBias + head * t, {1, q1}));
            }
            if (in.temperature) {
                s.div_(in.temperature[head]);
            }
            s.masked_fill_(torch::ones({bq, q1}, torch::kBool).triu(q0 + 1), negInf);
            if (in.window > 0) {
                const at::Tensor qi = torch::arange(q0, q1, torch::kLong).view({bq, 1});
                s.masked_fill_(torch::arange(q1, torch::kLong).view({1, q1}) <= qi - in.window, negInf);
            }
            at::Tensor lse = s.logsumexp(1, true);
            if (in.sinkLogit) {
                lse = torch::logaddexp(lse, torch::full_like(lse, in.sinkLogit[head]));
            }
            const at::Tensor p = (s - lse).exp().contiguous();
            const float *pd = p.data_ptr<float>();
            for (int64_t i = 0; i < bq; ++i) {
                const int64_t row = q0 + i, r = poolBinOf(row, t, rows);
                const float *pr = pd + i * q1;
                float *o = out.data.data() + r * cols;
                for (int64_t j = 0; j <= row; ++j) {
                    const int64_t c = colBin[static_cast<size_t>(j)];
                    if (mode == PoolMode::Max) {
                        o[c] = std::max(o[c], pr[j]);
                    } else {
                        sums[static_cast<size_t>(r * cols + c)] += pr[j];
                    }
                }
            }
        }
        if (mode == PoolMode::Mean) {
            for (int64_t r = 0; r < rows; ++r) {
                const int64_t h = poolBinStart(r + 1, t, rows) - poolBinStart(r, t, rows);
                for (int64_t c = 0; c < cols; ++c) {
                    const int64_t w = poolBinStart(c + 1, t, cols) - poolBinStart(c, t, cols);
                    out.data[static_cast<size_t>(r * cols + c)] =
                        static_cast<float>(sums[static_cast<size_t>(r * cols + c)] / static_cast<double>(h * w));
                }
            }
        }
        return out;
    });
}

} // namespace sinkscope
