#include "commands.h"
#include "common.h"

#include "sinkscope/analysis/attention_stats.h"

#include <nlohmann/json.hpp>

#include <iomanip>

namespace sinkscope::cli {
namespace {

struct RunOptions {
    ModelOptions model;
    TokenOptions tokens;
    int topK = 10;
    bool json = false;
};

constexpr const char *kProse =
    R"(Runs one forward pass and prints the tokens (id, text, special tokens marked), the top-k next tokens with
probabilities, and per layer and head the mean attention that queries 1..T-1 pay to the first token.
--ids passes token ids instead of a prompt (needed for models without a tokenizer).
JSON keys: model, tokens, top_k, first_token_mass ([layer][head]), seconds.
)";

int runRun(const RunOptions &o, std::ostream &out, std::ostream &err)
{
    requirePromptOrIds(o.tokens); // before the model loads
    warnIfSlowBlas(err);
    auto model = loadModel(o.model, err);
    const auto tokens = promptTokens(*model, o.tokens);
    // What it prints needs no maps: contract-5 archives on the CPU give the first-token mass from the
    // attention engine's statistics; older archives, other devices and generic modules return their maps.
    ForwardRequest req{.tokens = tokens, .capture = {.lastLogitsOnly = true}};
    const bool engine = model->hasAttentionEngine();
    if (engine) {
        req.capture.allStats = true;
        req.capture.statsFirstMassOnly = true;
    } else {
        req.capture.allAttention = true;
    }
    auto result = model->forward(req);
    if (!result) {
        throw Failure{result.error().message};
    }
    const FloatArray &logits = result->logits;
    const int64_t vocab = logits.shape.back();
    const auto top = topK(logits.data.data() + (logits.numel() - vocab), vocab, o.topK);
    int64_t layers = static_cast<int64_t>(engine ? result->attentionStats.size() : result->attention.size());
    int64_t heads = 0;
    if (engine && layers > 0) {
        heads = result->attentionStats[0].heads;
    } else if (layers > 0 && !result->attention[0].shape.empty()) {
        heads = result->attention[0].shape[0];
    }
    const FloatArray mass = firstTokenMass(*result, layers, heads);
    auto tok = model->tokenizer();

    if (o.json) {
        nlohmann::ordered_json j;
        j["model"] = model->info().path;
        j["tokens"] = nlohmann::json::array();
        for (int64_t id : tokens) {
            j["tokens"].push_back({{"id", id},
                                   {"text", nlohmann::ordered_json::parse(jsonSafe(tokenString(*model, id)))},
                                   {"special", tok ? tok->isSpecial(id) : false}});
        }
        j["top_k"] = nlohmann::json::array();
        for (const auto &t : top) {
            j["top_k"].push_back({{"id", t.id},
                                  {"token", nlohmann::ordered_json::parse(jsonSafe(tokenString(*model, t.id)))},
                                  {"probability", t.probability},
                                  {"logit", t.logit}});
        }
        j["first_token_mass"] = nlohmann::json::array();
        for (int64_t l = 0; l < layers; ++l) {
            auto row = nlohmann::ordered_json::array();
            for (int64_t h = 0; h < heads; ++h) {
                row.push_back(mass.data[static_cast<size_t>(l * heads + h)]);
            }
            j["first_token_mass"].push_back(row);
        }
        j["seconds"] = result->seconds;
        out << j.dump(2) << "\n";
        return 0;
    }
    out << "tokens (" << tokens.size() << "):\n ";
    for (int64_t id : tokens) {
        const bool special = tok && tok->isSpecial(id);
        out << " " << (special ? "[" : "") << visible(tokenString(*model, id)) << (special ? "]" : "") << "·" << id;
    }
    out << "\n\nnext token (top " << top.size() << "):\n";
    for (const auto &t : top) {
        out << "  " << std::setw(7) << std::fixed << std::setprecision(4) << t.probability << "  " << std::setw(6)
            << t.id << "  '" << visible(tokenString(*model, t.id)) << "'\n";
    }
    out << "\nattention mass on the first token (mean over queries 1..T-1), layer x head:\n";
    out << "  layer";
    for (int64_t h = 0; h < heads; ++h) {
        out << std::setw(6) << ("h" + std::to_string(h));
    }
    out << "\n";
    for (int64_t l = 0; l < layers; ++l) {
        out << "  " << std::setw(5) << l;
        for (int64_t h = 0; h < heads; ++h) {
            out << std::setw(6) << std::setprecision(2) << mass.data[static_cast<size_t>(l * heads + h)];
        }
        out << "\n";
    }
    out << "\nforward pass: " << std::setprecision(3) << result->seconds << " s\n";
    return 0;
}

} // namespace

Command addRunCommand(CLI::App &cli)
{
    auto o = std::make_shared<RunOptions>();
    CLI::App *cmd = cli.add_subcommand(
        "run", "one forward pass: tokens, top-k next tokens, first-token attention mass per layer and head");
    cmd->footer(kProse);
    addModelOptions(*cmd, o->model);
    addTokenOptions(*cmd, o->tokens);
    cmd->add_option("--top-k", o->topK, "next tokens to list")->type_name("K")->check(between(1, 1000));
    cmd->add_flag("--json", o->json, "print JSON instead of text");
    return {cmd, [o](std::ostream &out, std::ostream &err) { return runRun(*o, out, err); }};
}

} // namespace sinkscope::cli
