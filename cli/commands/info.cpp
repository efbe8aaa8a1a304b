#include "commands.h"
#include "common.h"

#include <nlohmann/json.hpp>

#include <iomanip>

namespace sinkscope::cli {
namespace {

struct InfoOptions {
    ModelOptions model;
    bool json = false;
};

constexpr const char *kProse =
    R"(Prints the architecture, layers, heads, KV heads, context length, parameter count, tokenizer and the
model contract (SinkScope archive or generic TorchScript).
)";

int runInfo(const InfoOptions &o, std::ostream &out, std::ostream &err)
{
    auto model = loadModel(o.model, err);
    const ModelInfo &info = model->info();
    const ModelConfig &c = info.config;
    auto tok = model->tokenizer();
    const bool contract = model->hasContract();
    if (o.json) {
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

Command addInfoCommand(CLI::App &cli)
{
    auto o = std::make_shared<InfoOptions>();
    CLI::App *cmd = cli.add_subcommand("info", "describe a model (architecture, sizes, tokenizer, contract)");
    cmd->footer(kProse);
    addModelOptions(*cmd, o->model);
    cmd->add_flag("--json", o->json, "print JSON instead of text: path, contract, config, tokenizer");
    return {cmd, [o](std::ostream &out, std::ostream &err) { return runInfo(*o, out, err); }};
}

} // namespace sinkscope::cli
