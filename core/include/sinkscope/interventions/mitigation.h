// Attention-sink mitigations (docs/mitigations.md, SINKS.md section 3): a spec string names a setting,
// and buildControls() turns it into the `controls` dictionary of one forward pass.
//
// Spec grammar (whitespace is not allowed):
//     spec    := "none" | step ("+" step)*
//     step    := method [":" param ("," param)*]
//     param   := name "=" value | "heads=" scope
//     scope   := item ("+" item)*            items: L2H3 (layer 2, head 3), L2 (every head of layer 2),
//                                             L2-5 (layers 2..5), L2-5H0-3, H3 (head 3 of every layer)
// Methods, their parameters, ranges, defaults and scope rules: mitigationMethods() in
// mitigation_registry.h (`sinkscope-cli mitigations` prints them, docs/mitigations.md tabulates them).
// A method with takesHeads accepts heads=...; without it it covers its default scope.
// Inside a step, "+" continues the heads list when the next piece is a scope item (L.., H..).
#pragma once

#include "sinkscope/common/result.h"
#include "sinkscope/interventions/mitigation_registry.h"
#include "sinkscope/model/model.h"

#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace sinkscope {

// A set of (layer, head) pairs. Ranges are inclusive; -1 means "every" (layer or head).
struct HeadScope {
    struct Item {
        int firstLayer = -1, lastLayer = -1;
        int firstHead = -1, lastHead = -1;
    };
    std::vector<Item> items; // empty: every head of every layer
    bool everything() const { return items.empty(); }
    bool contains(int layer, int head) const;
    std::string toString() const; // the spec form, e.g. "L2H3+L5"
};

struct MitigationStep {
    MitigationMethod method = MitigationMethod::MaskSink;
    std::map<std::string, double> params; // with defaults filled in; resid's mode is 0 zero, 1 mean
    HeadScope scope;                      // act: empty means the released layer range, see above
    bool scoped = false;                  // heads= was given
    std::string toString() const;
};

struct MitigationSpec {
    std::vector<MitigationStep> steps; // empty: "none", the baseline
    bool isNone() const { return steps.empty(); }
    bool hasStreaming() const;
    std::string toString() const; // canonical form: defaults spelled out, so equal settings compare equal
};

// Parses a spec string. Errors (InvalidArgument) quote the part at fault: an unknown method, an unknown
// or repeated parameter, a value that is not a number or out of range, a malformed head item.
Result<MitigationSpec> parseMitigation(const std::string &text);

// Checks the spec against the model (heads in range, the contract version the methods need).
Status validateMitigation(const MitigationSpec &spec, const Model &model);

// The controls that apply `spec` to a forward pass over `tokens` (the whole sequence, no cache).
// "none" gives empty controls: bit-identical to a plain forward. resid runs the model itself (one
// pass with hidden states to find the massive activations, and the probe set for mode=mean);
// every other method only builds tensors. Composition: logit biases add, temperatures and value scales
// multiply; for sink logits, head modes and ACT parameters a later step overrides an earlier one.
//
// Masking uses a bias of -1e4 rather than -inf: queries that can see only masked keys (query 0 when
// the first key is masked) keep their distribution instead of turning into NaN; every other query
// gets exactly the masked softmax (exp(-1e4) underflows to 0 in float).
Result<Controls> buildControls(const Model &model, const MitigationSpec &spec, const std::vector<int64_t> &tokens,
                               const CancelToken *cancel = nullptr);

// Sun et al.'s massive-activation rule on one layer's hidden state [T, D]: |h| > absThreshold and
// |h| > relThreshold x median |h|. Returns (token, dim) pairs, by token then dim.
std::vector<std::pair<int64_t, int64_t>> findMassiveActivations(const FloatArray &hidden, int64_t layer,
                                                                double absThreshold = 100.0,
                                                                double relThreshold = 1000.0);

// ACT head search (Yu et al. 2024, adapted to a text LM): apply ACT to one head at a time over
// `layers` (all when empty) and keep the heads whose mean next-token NLL over the probe sequences drops
// by more than `minGain` nats. Returns the heads as a scope, best first in `gains` (layer, head, gain).
struct ActSearchResult {
    HeadScope heads;
    std::vector<std::tuple<int, int, double>> gains;
    double baselineNll = 0;
};
Result<ActSearchResult> searchActHeads(const Model &model, const std::vector<std::vector<int64_t>> &probes,
                                       double beta = kActDefaultBeta, double thres = kActDefaultThres,
                                       const std::vector<int> &layers = {}, double minGain = 0.0,
                                       const CancelToken *cancel = nullptr, const ProgressCallback &progress = {});

} // namespace sinkscope
