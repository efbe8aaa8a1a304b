#include "cli_probe.h"
#include "commands.h"
#include "common.h"
#include "sinkscope/interventions/mitigation.h"
#include "sinkscope/runtime/paths.h"

namespace sinkscope::cli {
namespace {

constexpr const char *kProbeHelp =
    R"(Usage: sinkscope-cli probe [--set FILE] [--model FILE] [--compare SPEC[,SPEC...]] [--category C]
                           [--limit N] [--json] [--detector [--sink-excluded]] [--out DIR]

Runs a probe set (default: <data>/probes/default.json, <data> being share/sinkscope beside the program's
bin/; docs/probes.md) under each mitigation setting (default: none) and prints accuracy, mean answer
log-probability and entropy per setting, accuracy per category, and which probes flipped right -> wrong
or wrong -> right against the first setting. With one setting it lists every probe. --json: per setting accuracy, mean_logprob, categories, flips and per-probe
scores. --detector fits the Lookback-ratio logistic regression on the first setting's grounded probes
(held-out AUROC, per-head weights); --out DIR writes scores_<i>.csv, detector.json, detector_weights.csv.
A bad set file is an error naming file:line and the field.
)";

int cmdProbe(const Args &a, std::ostream &out, std::ostream &err)
{
    ProbeCommandOptions options;
    for (const auto &s : splitSpecList(a.get("--compare").value_or("none"))) {
        auto spec = parseMitigation(s);
        if (!spec) {
            throw UsageError{spec.error().message};
        }
        options.settings.push_back(std::move(spec).value());
    }
    options.probe.category = a.get("--category").value_or("");
    options.probe.limit = static_cast<int>(a.number("--limit", 0, 0, 1e6));
    options.json = a.has("--json");
    options.detector = a.has("--detector");
    options.sinkExcluded = a.has("--sink-excluded");
    options.outDir = a.get("--out").value_or("");
    if (options.sinkExcluded && !options.detector) {
        throw UsageError{"--sink-excluded goes with --detector"};
    }
    auto set = loadProbeSet(a.get("--set").value_or(defaultProbeSetPath()));
    if (!set) {
        throw Failure{set.error().message};
    }
    warnIfSlowBlas(err);
    auto model = loadModel(a, err);
    for (const auto &spec : options.settings) {
        if (auto ok = validateMitigation(spec, *model); !ok) {
            throw Failure{ok.error().message};
        }
    }
    return runProbeCommand(*model, *set, options, out, err);
}

} // namespace

Command probeCommand()
{
    return {"probe",
            kProbeHelp,
            {"--json", "--detector", "--sink-excluded"},
            {"--model", "--set", "--compare", "--category", "--limit", "--out"},
            cmdProbe};
}

} // namespace sinkscope::cli
