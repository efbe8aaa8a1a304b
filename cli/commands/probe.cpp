#include "cli_probe.h"
#include "commands.h"
#include "common.h"

#include "sinkscope/interventions/mitigation.h"
#include "sinkscope/runtime/paths.h"

namespace sinkscope::cli {
namespace {

struct ProbeOptions {
    ModelOptions model;
    std::string set;              // empty: defaultProbeSetPath()
    std::string compare = "none"; // the settings, parsed into command.settings
    ProbeCommandOptions command;
};

constexpr const char *kProse =
    R"(Runs a probe set (default: <data>/probes/default.json, <data> being share/sinkscope beside the program's
bin/; docs/probes.md) under each mitigation setting (default: none) and prints accuracy, mean answer
log-probability and entropy per setting, accuracy per category, and which probes flipped right -> wrong
or wrong -> right against the first setting. With one setting it lists every probe. --json: per setting accuracy, mean_logprob, categories, flips and per-probe
scores. --detector fits the Lookback-ratio logistic regression on the first setting's grounded probes
(held-out AUROC, per-head weights); --out DIR writes scores_<i>.csv, detector.json, detector_weights.csv.
A bad set file is an error naming file:line and the field.
)";

int runProbe(const ProbeOptions &o, std::ostream &out, std::ostream &err)
{
    ProbeCommandOptions options = o.command;
    for (const auto &s : splitSpecList(o.compare)) {
        auto spec = parseMitigation(s);
        if (!spec) {
            throw UsageError{spec.error().message};
        }
        options.settings.push_back(std::move(spec).value());
    }
    auto set = loadProbeSet(o.set.empty() ? defaultProbeSetPath() : o.set);
    if (!set) {
        throw Failure{set.error().message};
    }
    warnIfSlowBlas(err);
    auto model = loadModel(o.model, err);
    for (const auto &spec : options.settings) {
        if (auto ok = validateMitigation(spec, *model); !ok) {
            throw Failure{ok.error().message};
        }
    }
    return runProbeCommand(*model, *set, options, out, err);
}

} // namespace

Command addProbeCommand(CLI::App &cli)
{
    auto o = std::make_shared<ProbeOptions>();
    CLI::App *cmd =
        cli.add_subcommand("probe", "hallucination probes: accuracy and answer log-probability per mitigation setting");
    cmd->footer(kProse);
    cmd->add_option("--set", o->set, "the probe set, see docs/probes.md")
        ->type_name("FILE")
        ->default_str("<data>/probes/default.json");
    addModelOptions(*cmd, o->model);
    cmd->add_option("--compare", o->compare, "the mitigation settings, comma-separated; the first is the reference")
        ->type_name("SPEC[,SPEC...]");
    cmd->add_option("--category", o->command.probe.category, "only the probes of this category")->type_name("C");
    cmd->add_option("--limit", o->command.probe.limit, "at most N probes; 0: all")
        ->type_name("N")
        ->check(between(0, 1000000));
    cmd->add_flag("--json", o->command.json, "print JSON instead of text");
    auto *detector =
        cmd->add_flag("--detector", o->command.detector, "fit the Lookback-ratio detector on the first setting");
    cmd->add_flag("--sink-excluded", o->command.sinkExcluded, "detector features without the sink's attention")
        ->needs(detector);
    cmd->add_option("--out", o->command.outDir, "write scores_<i>.csv, detector.json and detector_weights.csv there")
        ->type_name("DIR");
    return {cmd, [o](std::ostream &out, std::ostream &err) { return runProbe(*o, out, err); }};
}

} // namespace sinkscope::cli
