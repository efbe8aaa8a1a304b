#include "sinkscope/interventions/mitigation_registry.h"

#include "sinkscope/model/control_keys.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace sinkscope {

namespace {

namespace ck = control_keys;

// A control key as Markdown code.
std::string code(const std::string &key)
{
    return "`" + key + "`";
}

// Whole numbers in full and never in exponent form: "1e+09" would not survive a spec, where '+' joins steps.
std::string number(double v)
{
    char buf[48];
    if (std::isfinite(v) && v == std::floor(v) && std::abs(v) < 1e15) {
        std::snprintf(buf, sizeof buf, "%.0f", v);
    } else {
        std::snprintf(buf, sizeof buf, "%.6g", v);
    }
    return buf;
}

MitigationParam optional(std::string name, double value, double min, double max, int decimals, std::string description)
{
    MitigationParam p;
    p.name = std::move(name);
    p.defaultValue = p.example = value;
    p.min = min;
    p.max = max;
    p.integer = decimals == 0;
    p.decimals = decimals;
    p.description = std::move(description);
    return p;
}

MitigationParam required(std::string name, std::string placeholder, double example, double min, double max,
                         int decimals, std::string description)
{
    MitigationParam p = optional(std::move(name), example, min, max, decimals, std::move(description));
    p.required = true;
    p.defaultValue = 0;
    p.placeholder = std::move(placeholder);
    return p;
}

// Counts of keys and heads: large enough for any context the tool runs, small enough to stay exact.
constexpr double kMaxKeys = 1 << 20;

std::vector<MitigationMethodInfo> makeTable()
{
    const std::vector<Architecture> &every = allArchitectures();
    const std::string allHeads = "every head of every layer";
    std::vector<MitigationMethodInfo> t;
    auto add = [&](MitigationMethodInfo m) {
        if (m.families.empty()) {
            m.families = every;
        }
        if (m.defaultScope.empty()) {
            m.defaultScope = allHeads;
        }
        t.push_back(std::move(m));
    };
    add({MitigationMethod::MaskSink,
         "mask-sink",
         "I2",
         "Mask sinks",
         "sink masking: logits of the first `sinks` keys pushed to -1e4",
         "Logits of the first `sinks` keys pushed to -1e4: the sink disappears and each row renormalises over the "
         "other keys. Xiao et al. 2024; Barbero et al. 2025. An ablation: expected to hurt.",
         "Xiao et al. 2024; Barbero et al. 2025",
         code(ck::kLogitBias),
         "ablation (expected to hurt)",
         {optional("sinks", 1, 1, kMaxKeys, 0, "how many leading keys are masked")}});
    add({MitigationMethod::Streaming,
         "streaming",
         "I1",
         "StreamingLLM mask",
         "sink + window attention: the first `sinks` keys plus the last `window` keys",
         "Attention limited to the first `sinks` keys plus the last `window` keys (a sink + window mask at the "
         "original positions; the rolling cache is `sinkscope-cli stream-ppl`). Xiao et al., ICLR 2024.",
         "Xiao et al., ICLR 2024",
         code(ck::kAttnMask) + " (prompt), rolling cache (`stream-ppl`)",
         "works on any RoPE model; refused for models with sliding-window layers (their window already drops the "
         "first keys)",
         {optional("sinks", 4, 0, kMaxKeys, 0, "leading keys every query keeps"),
          optional("window", 252, 1, 1 << 24, 0, "most recent keys every query keeps")},
         false,
         "every head (a mask over keys; no heads=)"});
    add({MitigationMethod::Act,
         "act",
         "I3",
         "ACT calibration",
         "ACT calibration, the released algorithm: keys over `thres` mean attention scaled by `beta`",
         "Attention calibration: non-initial keys whose mean attention exceeds `thres` are scaled by `beta`, the "
         "freed mass goes to the other keys; the first sink is untouched. Yu et al., ICML 2024 (released "
         "defaults). Default heads: layers 2..L-2.",
         "Yu et al., ICML 2024",
         code(std::string(ck::kActHeads) + "/" + ck::kActBeta + "/" + ck::kActThres) + " (contract 2)",
         "works (needs a head list)",
         {optional("beta", kActDefaultBeta, 0, 1, 2, "scale of the over-attended keys"),
          optional("thres", kActDefaultThres, 0, 1, 3, "mean attention above which a key is scaled")},
         true,
         "every head of layers 2..L-2 (as released)",
         2});
    add({MitigationMethod::ZeroTune,
         "zerotune",
         "I4",
         "Scale first token",
         "first-token scaling: log gamma added to key 0's logit",
         "log(gamma) added to the first key's logit: gamma < 1 takes attention from the sink. ZeroTuning, Han et "
         "al., ICLR 2026.",
         "Han et al., ICLR 2026",
         code(ck::kLogitBias),
         "works",
         {required("gamma", "G", 0.5, 1e-3, 1e3, 3, "factor on the first key's unnormalised weight")}});
    add({MitigationMethod::Softmax1,
         "softmax1",
         "I5",
         "Softmax off by one",
         "softmax-off-by-one: a null logit 0 in every softmax",
         "A null logit 0 in every softmax. Miller 2023. Counterfactual on a model not trained with it.",
         "Miller 2023; Xiao et al. 2024 (Zero Sink)",
         code(ck::kSinkLogit),
         "**counterfactual**",
         {}});
    add({MitigationMethod::SinkLogit,
         "sink-logit",
         "I5",
         "Sink logit",
         "a per-head null logit b (the gpt-oss mechanism)",
         "A learnable-sink style null logit b per head (gpt-oss). Counterfactual on a model not trained with it.",
         "OpenAI gpt-oss 2025",
         code(ck::kSinkLogit),
         "**counterfactual**",
         {required("b", "B", 0, -1e4, 1e4, 2, "the null logit")}});
    add({MitigationMethod::Temperature,
         "temperature",
         "I6",
         "Temperature",
         "attention logits divided by tau",
         "Attention logits divided by tau (a perturbation).",
         "[D]",
         code(ck::kTemperature),
         "perturbation",
         {required("tau", "T", 1.5, 1e-3, 1e3, 3, "divisor of the attention logits")}});
    add({MitigationMethod::ValueZero,
         "value-zero",
         "I7",
         "Zero sink values",
         "value vectors of the first `sinks` keys set to 0",
         "Value vectors of the first `sinks` keys set to 0: the sink keeps its weight but contributes nothing. Gu "
         "et al., ICLR 2025.",
         "Gu et al., ICLR 2025",
         code(ck::kValueScale),
         "works",
         {optional("sinks", 1, 1, kMaxKeys, 0, "how many leading keys lose their values")}});
    MitigationParam mode = required("mode", "zero|mean", 0, 0, 1, 0, "replace by zero or by the probe-set mean");
    mode.choices = {"zero", "mean"};
    add({MitigationMethod::Resid,
         "resid",
         "I7",
         "Massive activations",
         "massive activations of the sink tokens after layer l set to 0 or to their mean",
         "Massive activations of the sink tokens after `layer` set to zero or to their mean over a fixed probe "
         "set. Sun et al., COLM 2024. layer -1: the first layer that has any.",
         "Sun et al., COLM 2024",
         code(std::string(ck::kResidMask) + "l/" + ck::kResidValue + "l"),
         "works",
         {mode,
          optional("layer", -1, -1, 1 << 16, 0, "layer after which they are replaced (-1: the first that has any)"),
          optional("abs", 100, 0, 1e9, 1, "a massive activation exceeds this magnitude"),
          optional("rel", 1000, 0, 1e9, 1, "and this multiple of the layer's median magnitude")},
         false,
         "the sink tokens' residual stream (no heads=)"});
    add({MitigationMethod::HeadZero,
         "head-zero",
         "I8",
         "Zero heads",
         "the head's attention set to 0",
         "The heads' attention set to 0 (dormancy test, Guo et al. 2024).",
         "Guo et al. 2024",
         code(ck::kHeadMode) + " = 1",
         "works",
         {}});
    add({MitigationMethod::MoveToBos,
         "move-to-bos",
         "I8",
         "Move to first token",
         "all of the head's attention on key 0",
         "All of the heads' attention on key 0 (dormancy test, Guo et al. 2024).",
         "Guo et al. 2024",
         code(ck::kHeadMode) + " = 2",
         "works",
         {}});
    return t;
}

} // namespace

std::string MitigationParam::valueText(double value) const
{
    if (!choices.empty()) {
        const auto i =
            static_cast<size_t>(std::clamp(std::llround(value), 0LL, static_cast<long long>(choices.size()) - 1));
        return choices[i];
    }
    return integer ? std::to_string(std::llround(value)) : number(value);
}

std::string MitigationParam::choicesText() const
{
    std::string text;
    for (const auto &c : choices) {
        text += (text.empty() ? "" : " or ") + c;
    }
    return text;
}

std::string MitigationMethodInfo::usage() const
{
    std::string req, opt;
    for (const auto &p : params) {
        if (p.required) {
            req += (req.empty() ? "" : ",") + p.name + "=" + p.placeholder;
        } else {
            opt += (opt.empty() ? "" : ",") + p.name + "=" + p.valueText(p.defaultValue);
        }
    }
    std::string s = name;
    if (!req.empty()) {
        s += ":" + req + (opt.empty() ? "" : "[," + opt + "]");
    } else if (!opt.empty()) {
        s += "[:" + opt + "]";
    }
    return s;
}

const MitigationParam *MitigationMethodInfo::param(std::string_view wanted) const
{
    for (const auto &p : params) {
        if (p.name == wanted) {
            return &p;
        }
    }
    return nullptr;
}

bool MitigationMethodInfo::supports(Architecture arch) const
{
    return std::find(families.begin(), families.end(), arch) != families.end();
}

const std::vector<MitigationMethodInfo> &mitigationMethods()
{
    static const std::vector<MitigationMethodInfo> table = makeTable();
    return table;
}

const MitigationMethodInfo &mitigationMethod(MitigationMethod method)
{
    for (const auto &m : mitigationMethods()) {
        if (m.method == method) {
            return m;
        }
    }
    return mitigationMethods().front(); // unreachable: every enumerator has a row (MitigationRegistry tests)
}

const MitigationMethodInfo *findMitigationMethod(std::string_view name)
{
    for (const auto &m : mitigationMethods()) {
        if (m.name == name) {
            return &m;
        }
    }
    return nullptr;
}

const char *mitigationMethodName(MitigationMethod method)
{
    return mitigationMethod(method).name.c_str();
}

std::string mitigationMethodNames()
{
    std::string s;
    for (const auto &m : mitigationMethods()) {
        s += (s.empty() ? "" : ", ") + m.name;
    }
    return s;
}

std::string mitigationReference()
{
    std::string s;
    for (const auto &m : mitigationMethods()) {
        s += m.usage() + "\n    " + m.code + " " + m.summary + ". " + m.source + ".\n";
        for (const auto &p : m.params) {
            s += "    " + p.name + ": " + p.description + "; ";
            if (!p.choices.empty()) {
                s += p.choicesText();
            } else {
                s += (p.integer ? "an integer in [" : "[") + p.valueText(p.min) + ", " + p.valueText(p.max) + "]";
            }
            s += p.required ? ", required\n" : ", default " + p.valueText(p.defaultValue) + "\n";
        }
        s += "    heads: " + (m.takesHeads ? "heads=SCOPE, default " : std::string()) + m.defaultScope + "\n";
        if (m.minContract > 1) {
            s += "    needs a model archive of contract version " + std::to_string(m.minContract) + " or later\n";
        }
    }
    return s;
}

std::string mitigationMarkdownTable()
{
    std::string s = "| spec | method | hook (control) | source | on a model not trained with it |\n"
                    "|---|---|---|---|---|\n";
    for (const auto &m : mitigationMethods()) {
        std::string usage = m.usage();
        for (size_t i = 0; (i = usage.find('|', i)) != std::string::npos; i += 2) {
            usage.replace(i, 1, "\\|");
        }
        s += "| `" + usage + "` | " + m.code + " " + m.summary + " | " + m.hook + " | " + m.source + " | " +
             m.expectation + " |\n";
    }
    return s;
}

} // namespace sinkscope
