#include "commands.h"
#include "common.h"

#include <nlohmann/json.hpp>

#include <iomanip>

namespace sinkscope::cli {
namespace {

constexpr const char *kInfoHelp = R"(Usage: sinkscope-cli info [--model FILE] [--json]

Prints the architecture, layers, heads, KV heads, context length, parameter count, tokenizer and the
model contract (SinkScope archive or generic TorchScript).
)";

int cmdInfo(const Args &a, std::ostream &out, std::ostream &err)
{
    auto model = loadModel(a, err);
    const ModelInfo &info = model->info();
    const ModelConfig &c = info.config;
    auto tok = model->tokenizer();
    const bool contract = model->hasContract();
    if (a.has("--json")) {
        nlohmann::ordered_json j;
        j["path"] = info.path;
        j["contract"] = contract ? "sinkscope" : "generic";
        j["contract_version"] = c.contractVersion;
        if (contract) {
            j["config"] = nlohmann::json::parse(c.toJson());
        } else {
            j["limitation"] = info.limitation;
        }
        if (tok) {
            j["tokenizer"] = {{"model", tok->data().model},
                              {"pre", tok->data().pre},
                              {"vocab_size", tok->vocabSize()},
                              {"add_bos", tok->data().addBos}};
        }
        out << j.dump(2) << "\n";
        return 0;
    }
    out << "model          " << info.path << "\n";
    out << "contract       "
        << (contract ? "SinkScope archive, version " + std::to_string(c.contractVersion)
                     : "generic TorchScript (" + info.limitation + ")")
        << "\n";
    if (contract) {
        out << "name           " << c.name << "\n";
        out << "architecture   " << architectureName(c.architecture) << "\n";
        out << "layers         " << c.layers << "\n";
        out << "heads          " << c.heads << " (head dim " << c.headDim << ")\n";
        out << "kv heads       " << c.kvHeads << (c.kvHeads != c.heads ? " (grouped-query attention)" : "") << "\n";
        out << "embedding      " << c.embedding << ", feed-forward " << c.feedForward << "\n";
        out << "context        " << c.contextLength << " tokens\n";
        out << "vocabulary     " << c.vocabSize << "\n";
        out << "parameters     " << c.parameterCount << " (" << std::fixed << std::setprecision(1)
            << static_cast<double>(c.parameterCount) / 1e6 << "M)\n";
        if (c.architecture == Architecture::Llama) {
            out << "rope           theta " << std::defaultfloat << c.ropeTheta << ", dims " << c.ropeDim << ", scale "
                << c.ropeScale << "\n";
        }
        out << "output         " << (c.tiedOutput ? "tied to the token embedding" : "separate matrix") << "\n";
        out << "source         " << c.sourceFile << " (" << c.sourceQuantization << ")\n";
    }
    if (tok) {
        out << "tokenizer      byte-level BPE (" << tok->data().model << ", pre-tokenizer " << tok->data().pre << "), "
            << tok->vocabSize() << " tokens, BOS " << (tok->data().addBos ? "added" : "not added") << "\n";
    } else {
        out << "tokenizer      none (pass token ids with --ids)\n";
    }
    return 0;
}

} // namespace

Command infoCommand()
{
    return {"info", kInfoHelp, {"--json"}, {"--model"}, cmdInfo};
}

} // namespace sinkscope::cli
