// What a mitigation changes, always against the baseline (no controls) on the same tokens: the
// next-token distribution (top-k, KL divergence), prompt perplexity, per-head attention differences
// and greedy continuations side by side.
#pragma once

#include "sinkscope/interventions/mitigation.h"
#include "sinkscope/model/model.h"

#include <memory>
#include <string>
#include <vector>

namespace sinkscope {

// log sum_i exp(row[i]) over one logit row, in double so long vocabularies do not lose the tail.
double logSumExp(const float *row, int64_t vocab);
// -log p(tokens[t + 1] | tokens[..t]) for t = 0..T-2, from logits [T, V] (natural log, in nats).
std::vector<double> nextTokenNll(const FloatArray &logits, const std::vector<int64_t> &tokens);
// Their mean (0 for fewer than two tokens).
double meanNextTokenNll(const FloatArray &logits, const std::vector<int64_t> &tokens);
// KL(p || q) in nats between the softmax distributions of two logit rows of length `vocab`.
double klDivergence(const float *logitsP, const float *logitsQ, int64_t vocab);

struct EffectsOptions {
    int topK = 10;               // next-token candidates listed per side
    int continuationTokens = 16; // greedy tokens per side; 0 skips the continuation
    bool attentionMaps = true;   // per-layer [H, T, T] difference maps (mitigated - baseline)
};

// One forward pass without controls, reused for every mitigation compared on the same tokens.
struct BaselineRun {
    std::vector<int64_t> tokens;
    ForwardResult forward;             // logits [T, V], attention of every layer when maps were asked for
    std::vector<int64_t> continuation; // greedy continuation
};

struct MitigationEffects {
    std::string spec; // canonical spec string
    std::vector<TopToken> baselineTop, mitigatedTop;
    double nextTokenKl = 0;         // KL(baseline || mitigated) at the last position, nats
    std::vector<double> positionKl; // the same at every prompt position [T]
    double baselinePerplexity = 0;  // exp(mean NLL) of the prompt under teacher forcing
    double mitigatedPerplexity = 0;
    FloatArray headDifference;                   // [L, H]: mean over queries of the total variation 0.5 * sum_j |dA|
    std::vector<FloatArray> attentionDifference; // per layer [H, T, T]; empty without attentionMaps
    std::vector<int64_t> baselineContinuation, mitigatedContinuation;
    bool streamingAsMask = false; // streaming ran as a sink + window mask (positions unchanged)
    double seconds = 0;           // wall time of the mitigated passes
};

Result<BaselineRun> runBaseline(const Model &model, const std::vector<int64_t> &tokens,
                                const EffectsOptions &options = {}, const CancelToken *cancel = nullptr,
                                const ProgressCallback &progress = {});

Result<MitigationEffects> compareMitigation(const Model &model, const BaselineRun &baseline, const MitigationSpec &spec,
                                            const EffectsOptions &options = {}, const CancelToken *cancel = nullptr,
                                            const ProgressCallback &progress = {});

// Greedy continuation with the mitigation applied at every step (the whole sequence is rerun per token,
// since the controls cover every position). "none" gives the plain greedy continuation.
Result<std::vector<int64_t>> greedyContinuation(const Model &model, const std::vector<int64_t> &tokens,
                                                const MitigationSpec &spec, int count,
                                                const CancelToken *cancel = nullptr);

// I8 dormancy test: for each (layer, head), the prompt's mean NLL with that head zeroed (or its attention
// moved to key 0) minus the baseline's. [L, H], nats; positive = the head matters on this input.
Result<FloatArray> headLossChanges(const Model &model, const std::vector<int64_t> &tokens, MitigationMethod method,
                                   const CancelToken *cancel = nullptr, const ProgressCallback &progress = {});

} // namespace sinkscope
