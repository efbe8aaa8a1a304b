// The streaming attention-metric path: the per-head sums of metrics_internal.h from post-RoPE q and k,
// without a T x T map. For each query tile, a first sweep over the key tiles folds the row
// log-sum-exp online (the FlashAttention recurrence in log form); a second sweep recomputes the scores
// and, now that the row normaliser is known, adds the exact probabilities into the column sums (which
// an online pass cannot produce: a column's share of a row is only known once the row is finished).
// Peak extra memory is H x tile x tile scores plus O(H x T) accumulators.
//
// Every needed quantity avoids a per-element log: with s the scaled logit and lse the row normaliser,
// log p = s - lse, so p log p = p (s - lse).
//
// Threads: the score tiles use LibTorch's intra-op threads; the fused reduction is serial on purpose: it
// costs a few percent of the sweep, and an OpenMP region per tile (measured) made the pool's waiting
// threads spin against the serial parts on a loaded machine, ten times slower overall.
#include "metrics_internal.h"
#include "torch_util.h"

#include <torch/torch.h>

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

Status streamingAttentionSums(const ForwardResult &result, const ModelConfig &config, int64_t t,
                              const MetricsOptions &options, AttentionSums &sums)
{
    const int64_t layers = config.layers, heads = config.heads;
    for (int64_t l = 0; l < layers; ++l) {
        const FloatArray &q = result.queries.at(static_cast<int>(l));
        const FloatArray &k = result.keys.at(static_cast<int>(l));
        const bool qOk = q.shape.size() == 3 && q.shape[0] == heads && q.shape[1] == t &&
                         static_cast<int64_t>(q.data.size()) == q.numel();
        const bool kOk = k.shape.size() == 3 && k.shape[0] > 0 && heads % k.shape[0] == 0 && k.shape[1] == t &&
                         qOk && k.shape[2] == q.shape[2] && static_cast<int64_t>(k.data.size()) == k.numel();
        if (!qOk || !kOk) {
            return makeError(ErrorCode::InvalidArgument,
                             "layer " + std::to_string(l) + ": queries " + shapeOf(q) + " and keys " + shapeOf(k) +
                                 " do not match [" + std::to_string(heads) + ", " + std::to_string(t) +
                                 ", d] and [Hkv, T, d] with Hkv dividing the head count");
        }
    }
    const bool norms = result.valueNorms.shape == std::vector<int64_t>{layers, heads, t};
    const int64_t tile = std::max<int64_t>(1, options.tileSize);

    return guardTorch("streaming metrics", [&]() -> Status {
        c10::InferenceMode guard;
        sums.assign(static_cast<size_t>(layers * heads), {});
        const float negInf = -std::numeric_limits<float>::infinity();
        // Tiles are aligned, so the last key tile of a query tile holds the causal boundary as an upper
        // triangle.
        const at::Tensor upper = torch::ones({tile, tile}, torch::kBool).triu(1);
        const size_t ht = static_cast<size_t>(heads * t);
        std::vector<double> colSum(ht), colPlogp(ht), rowPlogp, rowWeighted;
        std::vector<float> first;

        for (int64_t l = 0; l < layers; ++l) {
            if (!metricsProgress(options, static_cast<double>(l) / static_cast<double>(layers),
                                 "streaming attention metrics, layer " + std::to_string(l))) {
                return makeError(ErrorCode::Cancelled, "metrics cancelled");
            }
            // Scaling q once saves a pass over every score tile.
            const FloatArray &queries = result.queries.at(static_cast<int>(l));
            const at::Tensor q = view(queries) * static_cast<float>(1.0 / std::sqrt(static_cast<double>(queries.shape[2])));
            at::Tensor k = view(result.keys.at(static_cast<int>(l)));
            const int64_t kvHeads = k.size(0);
            // GQA: query head h reads kv head h / (H / Hkv), as repeat_kv does in the model.
            if (kvHeads != heads) {
                k = k.repeat_interleave(heads / kvHeads, 0);
            }
            const at::Tensor kT = k.transpose(1, 2); // [H, d, T]
            const float *fn = norms ? result.valueNorms.data.data() + l * heads * t : nullptr; // [H, T]
            std::fill(colSum.begin(), colSum.end(), 0.0);
            std::fill(colPlogp.begin(), colPlogp.end(), 0.0);
            std::vector<double> rowEntropy(static_cast<size_t>(heads)), weighted(static_cast<size_t>(heads)),
                effective(static_cast<size_t>(heads));
            std::vector<int64_t> effectiveRows(static_cast<size_t>(heads));

            for (int64_t q0 = 0; q0 < t; q0 += tile) {
                const int64_t bq = std::min(tile, t - q0), q1 = q0 + bq;
                const at::Tensor qt = q.narrow(1, q0, bq);
                const at::Tensor diagonal = upper.narrow(0, 0, bq).narrow(1, 0, bq);
                auto scores = [&](int64_t k0) {
                    const int64_t bk = std::min(tile, q1 - k0);
                    at::Tensor s = torch::bmm(qt, kT.narrow(2, k0, bk));
                    if (k0 + bk > q0) {
                        s.narrow(2, q0 - k0, bq).masked_fill_(diagonal, negInf);
                    }
                    return s;
                };
                // Sweep 1: online log-sum-exp of each row over the key tiles k0 <= q0.
                at::Tensor firstTile = scores(0);
                at::Tensor lse = firstTile.logsumexp(2);
                for (int64_t k0 = tile; k0 < q1; k0 += tile) {
                    lse = torch::logaddexp(lse, scores(k0).logsumexp(2));
                }
                const at::Tensor lse3 = lse.unsqueeze(2);

                // Sweep 2: exact probabilities. LibTorch does the vectorised exp; one fused pass per tile then
                // adds them into the column and row sums (a handful of separate reductions would each read
                // the tile again). Only keys j <= t are read, so the masked entries never enter.
                rowPlogp.assign(static_cast<size_t>(heads * bq), 0.0);
                rowWeighted.assign(static_cast<size_t>(heads * bq), 0.0);
                first.assign(static_cast<size_t>(heads * bq), 0.0f);
                for (int64_t k0 = 0; k0 < q1; k0 += tile) {
                    // With one key tile (q0 == 0) the scores of sweep 1 are still at hand.
                    const at::Tensor logp = (k0 == 0 ? firstTile : scores(k0)).sub_(lse3).contiguous();
                    const at::Tensor p = logp.exp();
                    const int64_t bk = p.size(2);
                    const float *pData = p.data_ptr<float>(), *lData = logp.data_ptr<float>();
                    for (int64_t h = 0; h < heads; ++h) {
                        double *cs = colSum.data() + h * t + k0, *cp = colPlogp.data() + h * t + k0;
                        const float *f = fn ? fn + h * t + k0 : nullptr;
                        for (int64_t i = 0; i < bq; ++i) {
                            const int64_t visible = std::min(bk, q0 + i - k0 + 1);
                            const float *pr = pData + (h * bq + i) * bk, *lr = lData + (h * bq + i) * bk;
                            double rp = 0, rw = 0;
                            for (int64_t j = 0; j < visible; ++j) {
                                const float pl = pr[j] * lr[j];
                                cs[j] += pr[j];
                                cp[j] += pl;
                                rp += pl;
                            }
                            if (f) {
                                for (int64_t j = 0; j < visible; ++j) {
                                    rw += pr[j] * f[j];
                                }
                            }
                            rowPlogp[static_cast<size_t>(h * bq + i)] += rp;
                            rowWeighted[static_cast<size_t>(h * bq + i)] += rw;
                            if (k0 == 0) {
                                first[static_cast<size_t>(h * bq + i)] = pr[0]; // A[t, 0]
                            }
                        }
                    }
                }
                for (int64_t h = 0; h < heads; ++h) {
                    for (int64_t i = 0; i < bq; ++i) {
                        const int64_t row = q0 + i;
                        const size_t r = static_cast<size_t>(h * bq + i);
                        // Normalised by log(t + 1); row 0 (log 1 = 0) counts 0, as in Guo et al.'s code.
                        if (row >= 1) {
                            rowEntropy[static_cast<size_t>(h)] -= rowPlogp[r] / std::log(static_cast<double>(row + 1));
                        }
                        if (fn) {
                            weighted[static_cast<size_t>(h)] += rowWeighted[r];
                            if (row >= 1 && rowWeighted[r] > 0) {
                                effective[static_cast<size_t>(h)] += static_cast<double>(first[r]) * fn[h * t] / rowWeighted[r];
                                ++effectiveRows[static_cast<size_t>(h)];
                            }
                        }
                    }
                }
            }

            for (int64_t h = 0; h < heads; ++h) {
                HeadSums &s = sums[static_cast<size_t>(l * heads + h)];
                s.colSum.assign(colSum.begin() + h * t, colSum.begin() + (h + 1) * t);
                s.colPlogp.assign(colPlogp.begin() + h * t, colPlogp.begin() + (h + 1) * t);
                s.a00 = 1.0; // a softmax over the single visible key
                s.rowEntropy = rowEntropy[static_cast<size_t>(h)];
                s.weightedNorm = weighted[static_cast<size_t>(h)];
                s.effective = effective[static_cast<size_t>(h)];
                s.effectiveRows = effectiveRows[static_cast<size_t>(h)];
            }
        }
        return Ok{};
    });
}

} // namespace sinkscope::detail
