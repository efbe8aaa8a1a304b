// The mitigation methods: one table that the spec parser (parseMitigation), validateMitigation, the
// CLI's help and `sinkscope-cli mitigations`, the window's builder and docs/mitigations.md all read.
// Adding a method means one row here and its case in buildControls(); MitigationRegistry tests fail
// until the parser, the help, the builder and the docs table know it.
#pragma once

#include "sinkscope/model/model_config.h"

#include <string>
#include <string_view>
#include <vector>

namespace sinkscope {

enum class MitigationMethod {
    MaskSink,
    Streaming,
    Act,
    ZeroTune,
    Softmax1,
    SinkLogit,
    Temperature,
    ValueZero,
    Resid,
    HeadZero,
    MoveToBos,
};

// ACT's released defaults (Yu et al. 2024), used by the spec, the head search and the window.
inline constexpr double kActDefaultBeta = 0.4;
inline constexpr double kActDefaultThres = 0.1;

struct MitigationParam {
    std::string name;
    bool required = false;            // must be given in the spec (no default)
    double defaultValue = 0;          // the value when omitted (not required)
    double example = 0;               // where the window's builder starts and the help's example: the default if any
    double min = 0, max = 0;          // inclusive
    bool integer = false;             // whole numbers only
    int decimals = 0;                 // digits the window shows (0 for integers)
    std::vector<std::string> choices; // named values, value = index (resid's mode: zero, mean); empty: a number
    std::string placeholder;          // the usage's stand-in for a required value ("G", "zero|mean")
    std::string description;

    std::string valueText(double value) const; // "0.4", "mean"
    std::string choicesText() const;           // "zero or mean"
};

struct MitigationMethodInfo {
    MitigationMethod method;
    std::string name;        // spec name, e.g. "mask-sink"
    std::string code;        // SINKS.md's intervention id, e.g. "I2"
    std::string title;       // short title, e.g. "Mask sinks"
    std::string summary;     // one line: what it does
    std::string description; // a paragraph: what, the source, what to expect (the window's tooltip)
    std::string source;      // citation
    std::string hook;        // the controls it sets (control_keys.h), as Markdown
    std::string expectation; // on a model not trained with it: "works", "counterfactual", ...
    std::vector<MitigationParam> params;
    bool takesHeads = true;             // heads= allowed
    std::string defaultScope;           // the heads it covers without heads=
    int minContract = 1;                // the archive contract version it needs (model_config.h)
    std::vector<Architecture> families; // architectures whose archives implement its controls

    std::string usage() const; // e.g. "mask-sink[:sinks=1]", "zerotune:gamma=G"
    const MitigationParam *param(std::string_view name) const;
    bool supports(Architecture arch) const;
};

// Every method, in the order the help, the window and the docs list them.
const std::vector<MitigationMethodInfo> &mitigationMethods();
const MitigationMethodInfo &mitigationMethod(MitigationMethod method);
const MitigationMethodInfo *findMitigationMethod(std::string_view name); // nullptr when unknown
const char *mitigationMethodName(MitigationMethod method);               // the spec name, e.g. "mask-sink"
std::string mitigationMethodNames();                                     // "mask-sink, streaming, ..."

// Plain-text reference of every method and parameter (the help of `sinkscope-cli mitigations`).
std::string mitigationReference();
// The methods table of docs/mitigations.md (Markdown, one row per method).
std::string mitigationMarkdownTable();

} // namespace sinkscope
