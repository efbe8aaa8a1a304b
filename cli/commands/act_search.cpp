#include "commands.h"
#include "common.h"
#include "sinkscope/interventions/mitigation.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <iomanip>
#include <sstream>

namespace sinkscope::cli {
namespace {

constexpr const char *kActSearchHelp =
    R"(Usage: sinkscope-cli act-search (--text FILE | --prompt TEXT) [--model FILE] [--layers A-B]
                              [--beta B] [--thres T] [--min-gain G] [--top N] [--max-tokens N] [--json]

Finds the heads ACT attention calibration (Yu et al., ICML 2024) should act on: applies ACT to one head
at a time and keeps the heads that lower the mean next-token NLL over the probe texts by more than
--min-gain nats (default 0), at most --top N of them (best first; default all). Probe texts: every non-empty line of --text (each cut to --max-tokens,
default 64), or --prompt. --layers limits the search (default: every layer); one forward pass per head
and probe. Prints the heads ranked by gain and the spec to use, e.g.
  sinkscope-cli compare --mitigation 'act:beta=0.4,thres=0.1,heads=L3H1+L7H4' --prompt ...
JSON: spec (null when no head gains), baseline_nll, probes, gains of the kept heads (layer, head, gain in
nats; best first).
)";

int cmdActSearch(const Args &a, std::ostream &out, std::ostream &err)
{
    warnIfSlowBlas(err);
    if (a.has("--text") == a.has("--prompt")) {
        throw UsageError{"give one of --text FILE or --prompt TEXT"};
    }
    auto model = loadModel(a, err);
    auto tok = model->tokenizer();
    if (!tok) {
        throw Failure{model->info().path + ": the model carries no tokenizer"};
    }
    std::vector<std::string> texts;
    if (auto file = a.get("--text")) {
        std::ifstream in(*file, std::ios::binary);
        if (!in) {
            throw Failure{*file + ": cannot open the probe text file"};
        }
        for (std::string line; std::getline(in, line);) {
            if (line.find_first_not_of(" \t\r") != std::string::npos) {
                texts.push_back(line);
            }
        }
        if (texts.empty()) {
            throw Failure{*file + ": no non-empty lines to use as probes"};
        }
    } else {
        texts.push_back(*a.get("--prompt"));
    }
    const auto maxTokens = static_cast<size_t>(a.number("--max-tokens", 64, 2, 1e6));
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
    if (auto range = a.get("--layers")) {
        int first = 0, last = 0;
        char dash = 0;
        std::istringstream in(*range);
        in >> first;
        if (in >> dash) {
            if (dash != '-' || !(in >> last)) {
                throw UsageError{"--layers: '" + *range + "' is not A-B or A"};
            }
        } else {
            last = first;
        }
        if (first < 0 || last < first || last >= layers) {
            throw UsageError{"--layers: '" + *range + "' is outside the model's layers 0-" +
                             std::to_string(layers - 1)};
        }
        for (int l = first; l <= last; ++l) {
            searchLayers.push_back(l);
        }
    }
    const MitigationMethodInfo &act = mitigationMethod(MitigationMethod::Act);
    const MitigationParam &betaParam = *act.param("beta"), &thresParam = *act.param("thres");
    const double beta = a.number("--beta", betaParam.defaultValue, betaParam.min, betaParam.max);
    const double thres = a.number("--thres", thresParam.defaultValue, thresParam.min, thresParam.max);
    const double minGain = a.number("--min-gain", 0.0, -1e9, 1e9);
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
    if (a.has("--top")) {
        const auto keep = static_cast<size_t>(a.number("--top", 0, 1, 1e6));
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
    if (a.has("--json")) {
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

} // namespace

Command actSearchCommand()
{
    return {"act-search",
            kActSearchHelp,
            {"--json"},
            {"--model", "--text", "--prompt", "--layers", "--beta", "--thres", "--min-gain", "--top", "--max-tokens"},
            cmdActSearch};
}

} // namespace sinkscope::cli
