#include "commands.h"
#include "common.h"

#include "sinkscope/analysis/attention_stats.h"
#include "sinkscope/interventions/effects.h"
#include "sinkscope/interventions/mitigation.h"
#include "sinkscope/interventions/mitigation_registry.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

namespace sinkscope::cli {
namespace {

struct CompareOptions {
    ModelOptions model;
    TokenOptions tokens;
    std::string mitigations;
    EffectsOptions effects{.topK = 5};
    bool json = false;
};

// The method names come from the core's registry.
std::string prose()
{
    return R"(Runs the prompt without controls (the baseline) and with each mitigation, and reports against the
baseline on the same tokens: the next-token top-k, KL(baseline || mitigated) at the last position,
prompt perplexity, the per-head attention change (mean total variation over queries, layer x head) and
N greedy tokens side by side (default 16; 0 skips them).

Spec grammar (docs/mitigations.md): none | step+step..., step = method[:param=value,...,heads=L2H3+L5].
Methods ('sinkscope-cli mitigations' describes each):
  )" + mitigationMethodNames() +
           R"(
Example: --mitigation none,mask-sink,act:beta=0.4,thres=0.1,heads=L2H3+L5H0
In compare, streaming is applied as a sink + window attention mask with the original positions; the
rolling cache with in-cache positions is stream-ppl.
)";
}

std::string continuationText(const Model &model, const std::vector<int64_t> &ids)
{
    if (auto tok = model.tokenizer()) {
        return visible(tok->decode(ids));
    }
    std::string s;
    for (int64_t id : ids) {
        s += (s.empty() ? "" : " ") + std::to_string(id);
    }
    return s;
}

nlohmann::ordered_json topKJson(const Model &model, const std::vector<TopToken> &top)
{
    auto arr = nlohmann::ordered_json::array();
    for (const auto &t : top) {
        arr.push_back({{"id", t.id},
                       {"token", nlohmann::ordered_json::parse(jsonSafe(tokenString(model, t.id)))},
                       {"probability", t.probability}});
    }
    return arr;
}

int runCompare(const CompareOptions &o, std::ostream &out, std::ostream &err)
{
    requirePromptOrIds(o.tokens); // before the model loads
    warnIfSlowBlas(err);
    std::vector<MitigationSpec> specs;
    for (const auto &s : splitSpecList(o.mitigations)) {
        auto spec = parseMitigation(s);
        if (!spec) {
            throw UsageError{spec.error().message};
        }
        specs.push_back(std::move(spec).value());
    }
    auto model = loadModel(o.model, err);
    for (const auto &spec : specs) {
        if (auto ok = validateMitigation(spec, *model); !ok) {
            throw Failure{ok.error().message};
        }
    }
    const auto tokens = promptTokens(*model, o.tokens);
    const EffectsOptions &opt = o.effects;
    auto baseline = runBaseline(*model, tokens, opt);
    if (!baseline) {
        throw Failure{baseline.error().message};
    }
    std::vector<MitigationEffects> effects;
    for (const auto &spec : specs) {
        auto e = compareMitigation(*model, *baseline, spec, opt);
        if (!e) {
            throw Failure{e.error().message};
        }
        effects.push_back(std::move(e).value());
    }
    const int64_t vocab = baseline->forward.logits.shape.at(1);
    const auto baseTop =
        topK(baseline->forward.logits.data.data() + (static_cast<int64_t>(tokens.size()) - 1) * vocab, vocab, opt.topK);
    const double basePpl = std::exp(meanNextTokenNll(baseline->forward.logits, tokens));
    if (o.json) {
        nlohmann::ordered_json j;
        j["model"] = model->info().path;
        j["tokens"] = tokens;
        j["baseline"] = {{"top_k", topKJson(*model, baseTop)},
                         {"ppl", basePpl},
                         {"continuation", baseline->continuation},
                         {"continuation_text",
                          nlohmann::ordered_json::parse(jsonSafe(continuationText(*model, baseline->continuation)))}};
        j["mitigations"] = nlohmann::ordered_json::array();
        for (const auto &e : effects) {
            nlohmann::ordered_json m;
            m["spec"] = e.spec;
            m["top_k"] = topKJson(*model, e.mitigatedTop);
            m["kl"] = e.nextTokenKl;
            m["position_kl"] = e.positionKl;
            m["ppl"] = e.mitigatedPerplexity;
            m["baseline_ppl"] = e.baselinePerplexity;
            auto heads = nlohmann::ordered_json::array();
            if (e.headDifference.shape.size() == 2) {
                for (int64_t l = 0; l < e.headDifference.shape[0]; ++l) {
                    std::vector<float> row(e.headDifference.data.begin() + l * e.headDifference.shape[1],
                                           e.headDifference.data.begin() + (l + 1) * e.headDifference.shape[1]);
                    heads.push_back(row);
                }
            }
            m["head_difference"] = heads;
            m["continuation"] = e.mitigatedContinuation;
            m["continuation_text"] =
                nlohmann::ordered_json::parse(jsonSafe(continuationText(*model, e.mitigatedContinuation)));
            m["streaming_as_mask"] = e.streamingAsMask;
            m["seconds"] = e.seconds;
            j["mitigations"].push_back(m);
        }
        out << j.dump(2) << "\n";
        return 0;
    }
    out << std::fixed;
    out << "prompt: " << tokens.size() << " tokens\n";
    for (const auto &e : effects) {
        out << "\n== " << e.spec << (e.streamingAsMask ? "  (streaming as a sink + window mask)" : "") << "\n";
        out << "  next token            baseline                      mitigated\n";
        for (size_t i = 0; i < std::max(baseTop.size(), e.mitigatedTop.size()); ++i) {
            auto cell = [&](const std::vector<TopToken> &v) {
                if (i >= v.size()) {
                    return std::string(28, ' ');
                }
                std::ostringstream s;
                s << std::setprecision(4) << v[i].probability << " '" << visible(tokenString(*model, v[i].id)) << "'";
                std::string str = s.str();
                str.resize(std::max<size_t>(str.size(), 28), ' ');
                return str;
            };
            out << "  " << std::setw(2) << i + 1 << "                    " << cell(baseTop) << "  "
                << cell(e.mitigatedTop) << "\n";
        }
        out << std::setprecision(6) << "  KL(baseline || mitigated), last position: " << e.nextTokenKl << " nats\n";
        out << std::setprecision(3) << "  prompt perplexity: baseline " << e.baselinePerplexity << ", mitigated "
            << e.mitigatedPerplexity << "\n";
        if (e.headDifference.shape.size() == 2) {
            const int64_t heads = e.headDifference.shape[1];
            out << "  attention change per head (mean total variation over queries), layer x head:\n    layer";
            for (int64_t h = 0; h < heads; ++h) {
                out << std::setw(6) << ("h" + std::to_string(h));
            }
            out << "\n";
            for (int64_t l = 0; l < e.headDifference.shape[0]; ++l) {
                out << "    " << std::setw(5) << l;
                for (int64_t h = 0; h < heads; ++h) {
                    out << std::setw(6) << std::setprecision(2)
                        << e.headDifference.data[static_cast<size_t>(l * heads + h)];
                }
                out << "\n";
            }
        }
        if (opt.continuationTokens > 0) {
            out << "  continuation, baseline:  " << continuationText(*model, baseline->continuation) << "\n";
            out << "  continuation, mitigated: " << continuationText(*model, e.mitigatedContinuation) << "\n";
        }
    }
    return 0;
}

} // namespace

Command addCompareCommand(CLI::App &cli)
{
    auto o = std::make_shared<CompareOptions>();
    CLI::App *cmd = cli.add_subcommand(
        "compare", "a prompt with and without mitigations (top-k, KL, perplexity, attention change, continuation)");
    cmd->footer(prose());
    addModelOptions(*cmd, o->model);
    addTokenOptions(*cmd, o->tokens);
    cmd->add_option("--mitigation", o->mitigations, "the mitigations to compare with the baseline, comma-separated")
        ->type_name("SPEC[,SPEC...]")
        ->required();
    cmd->add_option("--top-k", o->effects.topK, "next tokens to list per side")
        ->type_name("K")
        ->check(between(1, 1000));
    cmd->add_option("-n", o->effects.continuationTokens, "greedy tokens per side; 0 skips them")
        ->type_name("N")
        ->check(between(0, 10000));
    cmd->add_flag("--json", o->json, "print JSON instead of text");
    return {cmd, [o](std::ostream &out, std::ostream &err) { return runCompare(*o, out, err); }};
}

} // namespace sinkscope::cli
