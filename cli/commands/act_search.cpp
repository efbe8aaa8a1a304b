#include "commands.h"
#include "common.h"

#include "sinkscope/interventions/mitigation.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <iomanip>
#include <sstream>

namespace sinkscope::cli {
namespace {

struct ActSearchOptions {
    ModelOptions model;
    std::string text, prompt, layers;
    CLI::Option *textOption = nullptr, *promptOption = nullptr; // whether each was given
    double beta = 0, thres = 0, minGain = 0;                    // beta and thres: the registry's defaults
    int top = 0;                                                // 0: every head that gains
    int maxTokens = 64;
    bool json = false;
};

constexpr const char *kProse =
    R"(Finds the heads ACT attention calibration (Yu et al., ICML 2024) should act on: applies ACT to one head
at a time and keeps the heads that lower the mean next-token NLL over the probe texts by more than
--min-gain nats (default 0), at most --top N of them (best first; default all). Probe texts: every non-empty line of --text (each cut to --max-tokens,
default 64), or --prompt. --layers limits the search (default: every layer); one forward pass per head
and probe. Prints the heads ranked by gain and the spec to use, e.g.
  sinkscope-cli compare --mitigation 'act:beta=0.4,thres=0.1,heads=L3H1+L7H4' --prompt ...
JSON: spec (null when no head gains), baseline_nll, probes, gains of the kept heads (layer, head, gain in
nats; best first).
)";

int runActSearch(const ActSearchOptions &o, std::ostream &out, std::ostream &err)
{
    warnIfSlowBlas(err);
    if (o.textOption->count() == 0 && o.promptOption->count() == 0) {
        throw UsageError{"give one of --text FILE or --prompt TEXT"};
    }
    auto model = loadModel(o.model, err);
    auto tok = model->tokenizer();
    if (!tok) {
        throw Failure{model->info().path + ": the model carries no tokenizer"};
    }
    std::vector<std::string> texts;
    if (o.textOption->count() > 0) {
        std::ifstream in(o.text, std::ios::binary);
        if (!in) {
            throw Failure{o.text + ": cannot open the probe text file"};
        }
        for (std::string line; std::getline(in, line);) {
            if (line.find_first_not_of(" \t\r") != std::string::npos) {
                texts.push_back(line);
            }
        }
        if (texts.empty()) {
            throw Failure{o.text + ": no non-empty lines to use as probes"};
        }
    } else {
        texts.push_back(o.prompt);
    }
    const auto maxTokens = static_cast<size_t>(o.maxTokens);
    std::vector<std::vector<int64_t>> probes;
    for (const auto &t : texts) {
        auto ids = model->tokenize(t);
        if (!ids) {
            throw Failure{ids.error().message};
        }
        if (ids->size() > maxTokens) {
            ids->resize(maxTokens);
        }
        if (ids->size() >= 2) {
            probes.push_back(std::move(ids).value());
        }
    }
    if (probes.empty()) {
        throw Failure{"every probe text is shorter than two tokens"};
    }
    const int layers = static_cast<int>(model->config().layers);
    std::vector<int> searchLayers;
    if (!o.layers.empty()) {
        int first = 0, last = 0;
        char dash = 0;
        std::istringstream in(o.layers);
        in >> first;
        if (in >> dash) {
            if (dash != '-' || !(in >> last)) {
                throw UsageError{"--layers: '" + o.layers + "' is not A-B or A"};
            }
        } else {
            last = first;
        }
        if (first < 0 || last < first || last >= layers) {
            throw UsageError{"--layers: '" + o.layers + "' is outside the model's layers 0-" +
                             std::to_string(layers - 1)};
        }
        for (int l = first; l <= last; ++l) {
            searchLayers.push_back(l);
        }
    }
    const double beta = o.beta, thres = o.thres, minGain = o.minGain;
    int lastPercent = -1;
    auto result = searchActHeads(*model, probes, beta, thres, searchLayers, minGain, nullptr,
                                 [&](double f, const std::string &label) {
                                     const int percent = static_cast<int>(f * 100);
                                     if (percent / 10 != lastPercent / 10) {
                                         err << "act-search: " << percent << " % (" << label << ")\n";
                                     }
                                     lastPercent = percent;
                                     return true;
                                 });
    if (!result) {
        throw Failure{result.error().message};
    }
    if (o.top > 0) {
        const auto keep = static_cast<size_t>(o.top);
        if (result->gains.size() > keep) {
            result->gains.resize(keep);
            result->heads.items.resize(keep); // the scope lists the gains' heads in the same order
        }
    }
    std::ostringstream specText;
    specText << "act:beta=" << beta << ",thres=" << thres;
    if (!result->heads.everything()) {
        specText << ",heads=" << result->heads.toString();
    }
    const bool found = !result->heads.everything();
    if (o.json) {
        nlohmann::ordered_json j;
        j["spec"] = found ? nlohmann::ordered_json(specText.str()) : nlohmann::ordered_json(nullptr);
        j["baseline_nll"] = result->baselineNll;
        j["probes"] = probes.size();
        j["gains"] = nlohmann::ordered_json::array();
        for (const auto &[layer, head, gain] : result->gains) {
            j["gains"].push_back({{"layer", layer}, {"head", head}, {"gain", gain}});
        }
        out << j.dump(2) << "\n";
        return 0;
    }
    out << "baseline mean NLL " << std::fixed << std::setprecision(4) << result->baselineNll << " nats over "
        << probes.size() << " probe(s)\n";
    out << "  head      gain (nats)\n";
    size_t shown = 0;
    for (const auto &[layer, head, gain] : result->gains) {
        if (shown++ == 20) {
            out << "  ... (" << result->gains.size() - 20 << " more; --json lists all)\n";
            break;
        }
        out << "  L" << layer << "H" << head << std::string(layer < 10 ? 6 : 5, ' ') << std::showpos << gain
            << std::noshowpos << "\n";
    }
    if (found) {
        out << "spec: " << specText.str() << "\n";
    } else {
        out << "no head lowers the NLL by more than " << minGain << " nats: nothing to calibrate on these probes\n";
    }
    return 0;
}

// A parameter of ACT as an option: its range and default from the core's registry.
CLI::Option *addActParam(CLI::App &cmd, const std::string &name, const std::string &typeName, double &value)
{
    const MitigationParam &param = *mitigationMethod(MitigationMethod::Act).param(name);
    value = param.defaultValue;
    return cmd.add_option("--" + name, value, param.description)
        ->type_name(typeName)
        ->check(between(param.min, param.max));
}

} // namespace

Command addActSearchCommand(CLI::App &cli)
{
    auto o = std::make_shared<ActSearchOptions>();
    CLI::App *cmd = cli.add_subcommand(
        "act-search", "the heads ACT calibration should act on, searched one head at a time on probe texts");
    cmd->footer(kProse);
    addModelOptions(*cmd, o->model);
    o->textOption = cmd->add_option("--text", o->text, "probe texts, one per non-empty line")->type_name("FILE");
    o->promptOption =
        cmd->add_option("--prompt", o->prompt, "one probe text")->type_name("TEXT")->excludes(o->textOption);
    cmd->add_option("--layers", o->layers, "the layers to search, A-B or A (default: every layer)")->type_name("A-B");
    addActParam(*cmd, "beta", "B", o->beta);
    addActParam(*cmd, "thres", "T", o->thres);
    cmd->add_option("--min-gain", o->minGain, "keep heads that lower the mean NLL by more than G nats")
        ->type_name("G")
        ->check(between(-1e9, 1e9));
    cmd->add_option("--top", o->top, "keep at most N heads, best first")
        ->type_name("N")
        ->check(between(1, 1000000))
        ->default_str("all");
    cmd->add_option("--max-tokens", o->maxTokens, "cut each probe text to N tokens")
        ->type_name("N")
        ->check(between(2, 1000000));
    cmd->add_flag("--json", o->json, "print JSON instead of text");
    return {cmd, [o](std::ostream &out, std::ostream &err) { return runActSearch(*o, out, err); }};
}

} // namespace sinkscope::cli
