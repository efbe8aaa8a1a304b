#include "sinkscope/interventions/effects.h"

#include <algorithm>
#include <cmath>

namespace sinkscope {

namespace {

ForwardRequest request(const std::vector<int64_t> &tokens, Controls controls, bool attention)
{
    ForwardRequest r{.tokens = tokens, .controls = std::move(controls)};
    r.capture.allAttention = attention;
    return r;
}

} // namespace

double logSumExp(const float *row, int64_t vocab)
{
    const float m = *std::max_element(row, row + vocab);
    double sum = 0;
    for (int64_t i = 0; i < vocab; ++i) {
        sum += std::exp(static_cast<double>(row[i]) - m);
    }
    return m + std::log(sum);
}

std::vector<double> nextTokenNll(const FloatArray &logits, const std::vector<int64_t> &tokens)
{
    std::vector<double> out;
    if (logits.shape.size() != 2 || tokens.size() < 2) {
        return out;
    }
    const int64_t vocab = logits.shape[1];
    if (logits.shape[0] != static_cast<int64_t>(tokens.size())) {
        return out; // last-position logits only: no teacher-forced loss
    }
    for (int64_t t = 0; t + 1 < logits.shape[0]; ++t) {
        const float *row = logits.data.data() + t * vocab;
        const int64_t next = tokens[static_cast<size_t>(t + 1)];
        out.push_back(logSumExp(row, vocab) - row[next]);
    }
    return out;
}

double meanNextTokenNll(const FloatArray &logits, const std::vector<int64_t> &tokens)
{
    const auto nll = nextTokenNll(logits, tokens);
    if (nll.empty()) {
        return 0;
    }
    double sum = 0;
    for (double v : nll) {
        sum += v;
    }
    return sum / static_cast<double>(nll.size());
}

double klDivergence(const float *p, const float *q, int64_t vocab)
{
    const double lp = logSumExp(p, vocab), lq = logSumExp(q, vocab);
    double kl = 0;
    for (int64_t i = 0; i < vocab; ++i) {
        const double logP = p[i] - lp, logQ = q[i] - lq;
        kl += std::exp(logP) * (logP - logQ);
    }
    return std::max(0.0, kl);
}

Result<std::vector<int64_t>> greedyContinuation(const Model &model, const std::vector<int64_t> &tokens,
                                                const MitigationSpec &spec, int count, const CancelToken *cancel)
{
    std::vector<int64_t> seq = tokens, out;
    const auto &c = model.config();
    for (int i = 0; i < count; ++i) {
        if (c.contextLength > 0 && static_cast<int64_t>(seq.size()) >= c.contextLength) {
            break;
        }
        auto controls = buildControls(model, spec, seq, cancel);
        if (!controls) {
            return controls.error();
        }
        ForwardRequest r{.tokens = seq, .controls = std::move(controls).value()};
        r.capture.lastLogitsOnly = true;
        auto f = model.forward(r, cancel);
        if (!f) {
            return f.error();
        }
        const auto &l = f->logits.data;
        const int64_t next = std::max_element(l.begin(), l.end()) - l.begin();
        out.push_back(next);
        seq.push_back(next);
        auto tok = model.tokenizer();
        if (tok && tok->data().eosId && next == *tok->data().eosId) {
            break;
        }
    }
    return out;
}

Result<BaselineRun> runBaseline(const Model &model, const std::vector<int64_t> &tokens, const EffectsOptions &options,
                                const CancelToken *cancel, const ProgressCallback &progress)
{
    BaselineRun run;
    run.tokens = tokens;
    auto f = model.forward(request(tokens, {}, options.attentionMaps), cancel, progress);
    if (!f) {
        return f.error();
    }
    run.forward = std::move(f).value();
    if (options.continuationTokens > 0) {
        auto cont = greedyContinuation(model, tokens, MitigationSpec{}, options.continuationTokens, cancel);
        if (!cont) {
            return cont.error();
        }
        run.continuation = std::move(cont).value();
    }
    return run;
}

Result<MitigationEffects> compareMitigation(const Model &model, const BaselineRun &baseline, const MitigationSpec &spec,
                                            const EffectsOptions &options, const CancelToken *cancel,
                                            const ProgressCallback &progress)
{
    const auto &tokens = baseline.tokens;
    auto controls = buildControls(model, spec, tokens, cancel);
    if (!controls) {
        return controls.error();
    }
    auto f = model.forward(request(tokens, std::move(controls).value(), options.attentionMaps), cancel, progress);
    if (!f) {
        return f.error();
    }
    MitigationEffects e;
    e.spec = spec.toString();
    e.streamingAsMask = spec.hasStreaming();
    const FloatArray &base = baseline.forward.logits, &mit = f->logits;
    const int64_t t = static_cast<int64_t>(tokens.size()), vocab = base.shape.at(1);
    const float *lastBase = base.data.data() + (t - 1) * vocab, *lastMit = mit.data.data() + (t - 1) * vocab;
    e.baselineTop = topK(lastBase, vocab, options.topK);
    e.mitigatedTop = topK(lastMit, vocab, options.topK);
    for (int64_t i = 0; i < t; ++i) {
        e.positionKl.push_back(klDivergence(base.data.data() + i * vocab, mit.data.data() + i * vocab, vocab));
    }
    e.nextTokenKl = e.positionKl.back();
    e.baselinePerplexity = std::exp(meanNextTokenNll(base, tokens));
    e.mitigatedPerplexity = std::exp(meanNextTokenNll(mit, tokens));
    const auto &c = model.config();
    if (options.attentionMaps && baseline.forward.attention.size() == static_cast<size_t>(c.layers) &&
        f->attention.size() == static_cast<size_t>(c.layers)) {
        e.headDifference =
            FloatArray{{c.layers, c.heads}, std::vector<float>(static_cast<size_t>(c.layers * c.heads), 0.0f)};
        for (int64_t l = 0; l < c.layers; ++l) {
            const FloatArray &a = baseline.forward.attention[static_cast<size_t>(l)];
            const FloatArray &b = f->attention[static_cast<size_t>(l)];
            FloatArray diff{a.shape, std::vector<float>(a.data.size())};
            for (size_t i = 0; i < a.data.size(); ++i) {
                diff.data[i] = b.data[i] - a.data[i];
            }
            for (int64_t h = 0; h < c.heads; ++h) {
                double tv = 0;
                const float *d = diff.data.data() + h * t * t;
                for (int64_t i = 0; i < t * t; ++i) {
                    tv += std::fabs(d[i]);
                }
                e.headDifference.data[static_cast<size_t>(l * c.heads + h)] =
                    static_cast<float>(0.5 * tv / static_cast<double>(t));
            }
            e.attentionDifference.push_back(std::move(diff));
        }
    }
    e.seconds = f->seconds;
    e.baselineContinuation = baseline.continuation;
    if (options.continuationTokens > 0) {
        auto cont = greedyContinuation(model, tokens, spec, options.continuationTokens, cancel);
        if (!cont) {
            return cont.error();
        }
        e.mitigatedContinuation = std::move(cont).value();
    }
    return e;
}

Result<FloatArray> headLossChanges(const Model &model, const std::vector<int64_t> &tokens, MitigationMethod method,
                                   const CancelToken *cancel, const ProgressCallback &progress)
{
    if (method != MitigationMethod::HeadZero && method != MitigationMethod::MoveToBos) {
        return makeError(ErrorCode::InvalidArgument, "head loss changes take head-zero or move-to-bos");
    }
    const auto &c = model.config();
    auto base = model.forward(ForwardRequest{.tokens = tokens}, cancel);
    if (!base) {
        return base.error();
    }
    const double baseNll = meanNextTokenNll(base->logits, tokens);
    FloatArray out{{c.layers, c.heads}, std::vector<float>(static_cast<size_t>(c.layers * c.heads), 0.0f)};
    for (int l = 0; l < c.layers; ++l) {
        for (int h = 0; h < c.heads; ++h) {
            const auto done = static_cast<double>(l * c.heads + h) / static_cast<double>(c.layers * c.heads);
            if (progress && !progress(done, "L" + std::to_string(l) + "H" + std::to_string(h))) {
                return makeError(ErrorCode::Cancelled, "head loss changes cancelled");
            }
            MitigationStep step;
            step.method = method;
            step.scoped = true;
            step.scope.items.push_back({l, l, h, h});
            auto controls = buildControls(model, MitigationSpec{{step}}, tokens, cancel);
            if (!controls) {
                return controls.error();
            }
            auto r = model.forward(ForwardRequest{.tokens = tokens, .controls = std::move(controls).value()}, cancel);
            if (!r) {
                return r.error();
            }
            out.data[static_cast<size_t>(l * c.heads + h)] =
                static_cast<float>(meanNextTokenNll(r->logits, tokens) - baseNll);
        }
    }
    return out;
}

} // namespace sinkscope
