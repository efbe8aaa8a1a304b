#include "sinkscope/interventions/mitigation.h"

#include "mitigation_internal.h"

#include "sinkscope/interventions/effects.h"
#include "sinkscope/model/control_keys.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>
#include <sstream>

namespace sinkscope {

namespace {

namespace ck = control_keys;
using mitigation_detail::bad;
using mitigation_detail::formatNumber;

// Large enough that exp() underflows to exactly 0 in float next to any unmasked logit, small enough
// that a query whose every key is masked still gets a finite softmax (see mitigation.h).
constexpr float kMaskBias = -1e4f;

struct Dims {
    int64_t layers, heads, t;
};

} // namespace

Status validateMitigation(const MitigationSpec &spec, const Model &model)
{
    if (spec.isNone()) {
        return Ok{};
    }
    if (!model.hasContract()) {
        return makeError(ErrorCode::Unsupported, model.info().path + ": " + model.info().limitation);
    }
    const auto &c = model.config();
    for (const auto &step : spec.steps) {
        for (const auto &i : step.scope.items) {
            if (i.lastLayer >= c.layers || i.lastHead >= c.heads) {
                return bad(step.toString() + ": heads=" + step.scope.toString() + " is outside the model (" +
                           std::to_string(c.layers) + " layers L0-" + std::to_string(c.layers - 1) + ", " +
                           std::to_string(c.heads) + " heads H0-" + std::to_string(c.heads - 1) + ")");
            }
        }
        const MitigationMethodInfo &method = mitigationMethod(step.method);
        if (!method.supports(c.architecture)) {
            return makeError(ErrorCode::Unsupported, model.info().path + ": " + method.name + " is not available for " +
                                                         architectureName(c.architecture) + " models");
        }
        if (step.method == MitigationMethod::Streaming && c.hasSlidingLayers()) {
            return makeError(ErrorCode::Unsupported,
                             model.info().path + ": streaming is not available for this " +
                                 architectureName(c.architecture) + " model: its sliding-window layers (" +
                                 c.attentionLayout() +
                                 ") already drop the first keys once a query is a window past them, so a sink + "
                                 "window mask cannot keep them");
        }
        if (c.contractVersion < method.minContract) {
            return makeError(ErrorCode::Unsupported,
                             model.info().path + ": " + method.name + " needs a model archive of contract version " +
                                 std::to_string(method.minContract) + " or later (this one is " +
                                 std::to_string(c.contractVersion) + "); convert the GGUF file again");
        }
        if (step.method == MitigationMethod::Act) {
            if (!step.scoped && c.layers < 4) {
                return bad("act: the released layer range 2..L-2 is empty for a " + std::to_string(c.layers) +
                           "-layer model; give heads=");
            }
        }
        if (step.method == MitigationMethod::Resid && step.params.at("layer") >= static_cast<double>(c.layers)) {
            return bad("resid: layer=" + formatNumber(step.params.at("layer")) + " is outside the model (" +
                       std::to_string(c.layers) + " layers)");
        }
    }
    return Ok{};
}

std::vector<std::pair<int64_t, int64_t>> findMassiveActivations(const FloatArray &hidden, int64_t layer,
                                                                double absThreshold, double relThreshold)
{
    std::vector<std::pair<int64_t, int64_t>> out;
    if (hidden.shape.size() != 3 || layer < 0 || layer >= hidden.shape[0]) {
        return out;
    }
    const int64_t t = hidden.shape[1], d = hidden.shape[2];
    const float *h = hidden.data.data() + layer * t * d;
    std::vector<float> mags(static_cast<size_t>(t * d));
    for (int64_t i = 0; i < t * d; ++i) {
        mags[static_cast<size_t>(i)] = std::fabs(h[i]);
    }
    std::vector<float> sorted = mags;
    std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(sorted.size() / 2), sorted.end());
    const double median = sorted[sorted.size() / 2];
    for (int64_t tok = 0; tok < t; ++tok) {
        for (int64_t dim = 0; dim < d; ++dim) {
            const double m = mags[static_cast<size_t>(tok * d + dim)];
            if (m > absThreshold && m > relThreshold * median) {
                out.emplace_back(tok, dim);
            }
        }
    }
    return out;
}

namespace {

// Own short sentences (plus Sun et al.'s official prompt) whose hidden states give the "mean" of
// resid:mode=mean: the value a massive dimension takes at the same role (first token, or the
// non-initial token carrying the largest activation) averaged over inputs.
const std::vector<std::string> &residProbeTexts()
{
    static const std::vector<std::string> texts{
        "Summer is warm. Winter is cold.",
        "The library opens at nine, and the reading room fills up by ten.",
        "She packed the tent, checked the map twice and set off before sunrise.",
        "Numbers in a table are easier to compare when the columns line up.",
        "A quiet street, a small bakery, and the smell of bread in the morning.",
        "He asked whether the train would be late again; nobody knew.",
    };
    return texts;
}

Result<FloatArray> hiddenStates(const Model &model, const std::vector<int64_t> &tokens, const CancelToken *cancel)
{
    auto r =
        model.forward(ForwardRequest{.tokens = tokens, .capture = {.hidden = true, .lastLogitsOnly = true}}, cancel);
    if (!r) {
        return r.error();
    }
    return std::move(r->hidden);
}

Status addResid(const Model &model, const MitigationStep &step, const std::vector<int64_t> &tokens, Controls &controls,
                const CancelToken *cancel)
{
    const auto &c = model.config();
    auto hidden = hiddenStates(model, tokens, cancel);
    if (!hidden) {
        return hidden.error();
    }
    const double absT = step.params.at("abs"), relT = step.params.at("rel");
    int64_t layer = static_cast<int64_t>(step.params.at("layer"));
    std::vector<std::pair<int64_t, int64_t>> massive;
    if (layer < 0) {
        for (int64_t l = 0; l < c.layers && massive.empty(); ++l) {
            massive = findMassiveActivations(*hidden, l, absT, relT);
            layer = l;
        }
    } else {
        massive = findMassiveActivations(*hidden, layer, absT, relT);
    }
    if (massive.empty()) {
        return makeError(
            ErrorCode::InvalidArgument,
            "resid: no massive activations (|h| > " + formatNumber(absT) + " and > " + formatNumber(relT) +
                "x the median) " +
                (step.params.at("layer") < 0 ? std::string("in any layer") : "after layer " + std::to_string(layer)) +
                " of this input; lower abs=/rel= or pick another layer=");
    }
    const int64_t t = static_cast<int64_t>(tokens.size()), d = c.embedding;
    FloatArray mask{{t, d}, std::vector<float>(static_cast<size_t>(t * d), 0.0f)};
    FloatArray value{{t, d}, std::vector<float>(static_cast<size_t>(t * d), 0.0f)};
    std::map<int64_t, double> firstMean, otherMean; // dim -> mean over the probes
    if (step.params.at("mode") > 0.5) {
        if (!model.tokenizer()) {
            return makeError(ErrorCode::Unsupported, "resid:mode=mean needs the model's tokenizer for its probe set");
        }
        for (const auto &pair : massive) {
            firstMean[pair.second] = 0;
            otherMean[pair.second] = 0;
        }
        const auto &texts = residProbeTexts();
        for (const auto &text : texts) {
            auto ids = model.tokenize(text);
            if (!ids) {
                return ids.error();
            }
            auto h = hiddenStates(model, *ids, cancel);
            if (!h) {
                return h.error();
            }
            const int64_t pt = h->shape[1];
            const float *row = h->data.data() + layer * pt * d;
            for (auto &[dim, sum] : firstMean) {
                sum += row[dim];
                float best = 0;
                for (int64_t i = 1; i < pt; ++i) {
                    if (std::fabs(row[i * d + dim]) > std::fabs(best)) {
                        best = row[i * d + dim];
                    }
                }
                otherMean[dim] += best;
            }
        }
        for (auto *m : {&firstMean, &otherMean}) {
            for (auto &entry : *m) {
                entry.second /= static_cast<double>(texts.size());
            }
        }
    }
    for (const auto &[tok, dim] : massive) {
        const auto i = static_cast<size_t>(tok * d + dim);
        mask.data[i] = 1.0f;
        if (step.params.at("mode") > 0.5) {
            value.data[i] = static_cast<float>(tok == 0 ? firstMean[dim] : otherMean[dim]);
        }
    }
    controls.tensors[ck::layerKey(ck::kResidMask, layer)] = std::move(mask);
    controls.tensors[ck::layerKey(ck::kResidValue, layer)] = std::move(value);
    return Ok{};
}

} // namespace

Result<Controls> buildControls(const Model &model, const MitigationSpec &spec, const std::vector<int64_t> &tokens,
                               const CancelToken *cancel)
{
    Controls controls;
    if (spec.isNone()) {
        return controls;
    }
    if (auto ok = validateMitigation(spec, model); !ok) {
        return ok.error();
    }
    const auto &c = model.config();
    const Dims n{c.layers, c.heads, static_cast<int64_t>(tokens.size())};
    if (n.t == 0) {
        return makeError(ErrorCode::InvalidArgument, "no tokens to build mitigation controls for");
    }
    auto tensor = [&](const std::string &key, std::vector<int64_t> shape, float fill) -> FloatArray & {
        auto it = controls.tensors.find(key);
        if (it == controls.tensors.end()) {
            FloatArray a;
            a.shape = std::move(shape);
            a.data.assign(static_cast<size_t>(a.numel()), fill);
            it = controls.tensors.emplace(key, std::move(a)).first;
        }
        return it->second;
    };
    auto forHeads = [&](const HeadScope &scope, auto &&f) {
        for (int l = 0; l < n.layers; ++l) {
            for (int h = 0; h < n.heads; ++h) {
                if (scope.contains(l, h)) {
                    f(static_cast<int64_t>(l), static_cast<int64_t>(h));
                }
            }
        }
    };
    const float inf = std::numeric_limits<float>::infinity();
    for (const auto &step : spec.steps) {
        const auto &p = step.params;
        switch (step.method) {
        case MitigationMethod::MaskSink:
        case MitigationMethod::ValueZero: {
            const int64_t sinks = std::min<int64_t>(static_cast<int64_t>(p.at("sinks")), n.t);
            const bool mask = step.method == MitigationMethod::MaskSink;
            FloatArray &a = mask ? tensor(ck::kLogitBias, {n.layers, n.heads, n.t}, 0.0f)
                                 : tensor(ck::kValueScale, {n.layers, n.heads, n.t}, 1.0f);
            forHeads(step.scope, [&](int64_t l, int64_t h) {
                for (int64_t j = 0; j < sinks; ++j) {
                    float &x = a.data[static_cast<size_t>((l * n.heads + h) * n.t + j)];
                    x = mask ? x + kMaskBias : 0.0f;
                }
            });
            break;
        }
        case MitigationMethod::Streaming: {
            const auto sinks = static_cast<int64_t>(p.at("sinks")), window = static_cast<int64_t>(p.at("window"));
            FloatArray &a = tensor(ck::kAttnMask, {n.t, n.t}, 0.0f);
            for (int64_t q = 0; q < n.t; ++q) {
                for (int64_t j = sinks; j <= q - window; ++j) {
                    a.data[static_cast<size_t>(q * n.t + j)] = -inf;
                }
            }
            break;
        }
        case MitigationMethod::Act: {
            HeadScope scope = step.scope;
            if (!step.scoped) {
                scope.items.push_back({2, static_cast<int>(n.layers) - 2, -1, -1});
            }
            FloatArray &heads = tensor(ck::kActHeads, {n.layers, n.heads}, 0.0f);
            FloatArray &beta = tensor(ck::kActBeta, {n.layers, n.heads}, static_cast<float>(kActDefaultBeta));
            FloatArray &thres = tensor(ck::kActThres, {n.layers, n.heads}, static_cast<float>(kActDefaultThres));
            forHeads(scope, [&](int64_t l, int64_t h) {
                const auto i = static_cast<size_t>(l * n.heads + h);
                heads.data[i] = 1.0f;
                beta.data[i] = static_cast<float>(p.at("beta"));
                thres.data[i] = static_cast<float>(p.at("thres"));
            });
            break;
        }
        case MitigationMethod::ZeroTune: {
            FloatArray &a = tensor(ck::kLogitBias, {n.layers, n.heads, n.t}, 0.0f);
            const auto logGamma = static_cast<float>(std::log(p.at("gamma")));
            forHeads(step.scope,
                     [&](int64_t l, int64_t h) { a.data[static_cast<size_t>((l * n.heads + h) * n.t)] += logGamma; });
            break;
        }
        case MitigationMethod::Softmax1:
        case MitigationMethod::SinkLogit: {
            FloatArray &a = tensor(ck::kSinkLogit, {n.layers, n.heads}, -inf);
            const float b = step.method == MitigationMethod::Softmax1 ? 0.0f : static_cast<float>(p.at("b"));
            forHeads(step.scope, [&](int64_t l, int64_t h) { a.data[static_cast<size_t>(l * n.heads + h)] = b; });
            break;
        }
        case MitigationMethod::Temperature: {
            FloatArray &a = tensor(ck::kTemperature, {n.layers, n.heads}, 1.0f);
            const auto tau = static_cast<float>(p.at("tau"));
            forHeads(step.scope, [&](int64_t l, int64_t h) { a.data[static_cast<size_t>(l * n.heads + h)] *= tau; });
            break;
        }
        case MitigationMethod::HeadZero:
        case MitigationMethod::MoveToBos: {
            FloatArray &a = tensor(ck::kHeadMode, {n.layers, n.heads}, 0.0f);
            const float mode = step.method == MitigationMethod::HeadZero ? 1.0f : 2.0f;
            forHeads(step.scope, [&](int64_t l, int64_t h) { a.data[static_cast<size_t>(l * n.heads + h)] = mode; });
            break;
        }
        case MitigationMethod::Resid:
            if (auto ok = addResid(model, step, tokens, controls, cancel); !ok) {
                return ok.error();
            }
            break;
        }
    }
    return controls;
}

Result<ActSearchResult> searchActHeads(const Model &model, const std::vector<std::vector<int64_t>> &probes, double beta,
                                       double thres, const std::vector<int> &layers, double minGain,
                                       const CancelToken *cancel, const ProgressCallback &progress)
{
    if (probes.empty()) {
        return makeError(ErrorCode::InvalidArgument, "act head search: the probe set is empty");
    }
    const auto &c = model.config();
    std::vector<int> which = layers;
    if (which.empty()) {
        for (int l = 0; l < c.layers; ++l) {
            which.push_back(l);
        }
    }
    auto meanNll = [&](const MitigationSpec &spec) -> Result<double> {
        double sum = 0;
        for (const auto &tokens : probes) {
            auto controls = buildControls(model, spec, tokens, cancel);
            if (!controls) {
                return controls.error();
            }
            auto r = model.forward(ForwardRequest{.tokens = tokens, .controls = std::move(controls).value()}, cancel);
            if (!r) {
                return r.error();
            }
            sum += meanNextTokenNll(r->logits, tokens);
        }
        return sum / static_cast<double>(probes.size());
    };
    ActSearchResult result;
    auto base = meanNll(MitigationSpec{});
    if (!base) {
        return base.error();
    }
    result.baselineNll = *base;
    const double total = static_cast<double>(which.size() * static_cast<size_t>(c.heads));
    double done = 0;
    for (int l : which) {
        if (l < 0 || l >= c.layers) {
            return makeError(ErrorCode::InvalidArgument,
                             "act head search: layer " + std::to_string(l) + " is outside the model");
        }
        for (int h = 0; h < c.heads; ++h) {
            if (progress && !progress(done / total, "L" + std::to_string(l) + "H" + std::to_string(h))) {
                return makeError(ErrorCode::Cancelled, "act head search cancelled");
            }
            MitigationStep step;
            step.method = MitigationMethod::Act;
            step.params = {{"beta", beta}, {"thres", thres}};
            step.scoped = true;
            step.scope.items.push_back({l, l, h, h});
            auto nll = meanNll(MitigationSpec{{step}});
            if (!nll) {
                return nll.error();
            }
            const double gain = result.baselineNll - *nll;
            if (gain > minGain) {
                result.gains.emplace_back(l, h, gain);
            }
            done += 1;
        }
    }
    std::stable_sort(result.gains.begin(), result.gains.end(),
                     [](const auto &a, const auto &b) { return std::get<2>(a) > std::get<2>(b); });
    for (const auto &[l, h, g] : result.gains) {
        (void)g;
        result.heads.items.push_back({l, l, h, h});
    }
    return result;
}

} // namespace sinkscope
