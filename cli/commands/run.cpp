#include "commands.h"
#include "common.h"
#include "sinkscope/analysis/attention_stats.h"

#include <nlohmann/json.hpp>

#include <iomanip>

namespace sinkscope::cli {
namespace {

constexpr const char *kRunHelp =
    R"(Usage: sinkscope-cli run --prompt TEXT [--model FILE] [--top-k K] [--bos | --no-bos] [--ids 1,2,3] [--json]

Runs one forward pass and prints the tokens (id, text, special tokens marked), the top-k next tokens with
probabilities, and per layer and head the mean attention that queries 1..T-1 pay to the first token.
--ids passes token ids instead of a prompt (needed for models without a tokenizer).
JSON keys: model, tokens, top_k, first_token_mass ([layer][head]), seconds.
)";

int cmdRun(const Args &a, std::ostream &out, std::ostream &err)
{
    // Usage errors first: a bad flag must not wait for a model to load.
    const int k = static_cast<int>(a.number("--top-k", 10, 1, 1000));
    requirePromptOrIds(a);
    warnIfSlowBlas(err);
    auto model = loadModel(a, err);
    const auto tokens = promptTokens(*model, a);
    ForwardRequest req{.tokens = tokens, .capture = {.allAttention = true, .lastLogitsOnly = true}};
    auto result = model->forward(req);
    if (!result) {
        throw Failure{result.error().message};
    }
    const FloatArray &logits = result->logits;
    const int64_t vocab = logits.shape.back();
    const auto top = topK(logits.data.data() + (logits.numel() - vocab), vocab, k);
    int64_t layers = static_cast<int64_t>(result->attention.size());
    int64_t heads = layers > 0 && !result->attention[0].shape.empty() ? result->attention[0].shape[0] : 0;
    const FloatArray mass = firstTokenMass(*result, layers, heads);
    auto tok = model->tokenizer();

    if (a.has("--json")) {
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

Command runCommand()
{
    return {"run", kRunHelp, {"--json", "--bos", "--no-bos"}, {"--model", "--prompt", "--top-k", "--ids"}, cmdRun};
}

} // namespace sinkscope::cli
