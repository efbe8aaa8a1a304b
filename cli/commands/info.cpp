#include "commands.h"
#include "common.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <iomanip>
#include <sstream>

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

// What sets the family's forward pass apart, in a few words.
std::string familyFeatures(const ModelConfig &c)
{
    std::vector<std::string> f;
    if (c.qkNorm != QkNorm::None) {
        f.push_back(c.qkNorm == QkNorm::PerHead ? "QK-norm per head" : "QK-norm over all heads");
    }
    if (c.normPlacement == NormPlacement::Sandwich) {
        f.push_back("norms before and after attention and MLP");
    } else if (c.normPlacement == NormPlacement::Post) {
        f.push_back("norms after attention and MLP only");
    }
    if (c.qkvBias) {
        f.push_back("q/k/v biases");
    }
    if (c.parallelResidual) {
        f.push_back("parallel residual");
    }
    if (c.learnedSinks) {
        f.push_back("learned per-head sink logits");
    }
    if (c.mlpKind == MlpKind::Experts) {
        f.push_back(std::to_string(c.experts) + " experts, top-" + std::to_string(c.expertsPerToken));
    }
    if (c.embedScale != 1.0) {
        f.push_back("embeddings scaled");
    }
    if (c.finalLogitSoftcap > 0) {
        std::ostringstream cap;
        cap << "logit soft-cap " << c.finalLogitSoftcap;
        f.push_back(cap.str());
    }
    if (c.attnScale > 0 && std::abs(c.attnScale * std::sqrt(static_cast<double>(c.headDim)) - 1.0) > 1e-9) {
        std::ostringstream scale;
        scale << "attention scale " << c.attnScale;
        f.push_back(scale.str());
    }
    std::string text;
    for (const auto &s : f) {
        text += (text.empty() ? "" : ", ") + s;
    }
    return text;
}

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
            j["attention_layout"] = c.attentionLayout();
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
        out << "family         " << architectureName(c.architecture) << "\n";
        out << "attention      " << c.attentionLayout() << "\n";
        if (const std::string features = familyFeatures(c); !features.empty()) {
            out << "features       " << features << "\n";
        }
        out << "layers         " << c.layers << "\n";
        out << "heads          " << c.heads << " (head dim " << c.headDim << ")\n";
        out << "kv heads       " << c.kvHeads << (c.kvHeads != c.heads ? " (grouped-query attention)" : "") << "\n";
        out << "embedding      " << c.embedding << ", feed-forward " << c.feedForward << "\n";
        out << "context        " << c.contextLength << " tokens\n";
        out << "vocabulary     " << c.vocabSize << "\n";
        out << "parameters     " << c.parameterCount << " (" << std::fixed << std::setprecision(1)
            << static_cast<double>(c.parameterCount) / 1e6 << "M)\n";
        if (c.architecture != Architecture::Gpt2) {
            out << "rope           theta " << std::defaultfloat << c.ropeTheta;
            if (c.ropeLocalTheta > 0) {
                out << " (sliding layers " << c.ropeLocalTheta << ")";
            }
            out << ", dims " << c.ropeDim << " of " << c.headDim;
            if (c.ropeScaling.type != "none") {
                out << ", scaling " << c.ropeScaling.type;
                if (c.ropeScaling.factor > 0) {
                    out << " x" << c.ropeScaling.factor;
                }
                if (c.ropeScaling.originalContext > 0) {
                    out << " (original context " << c.ropeScaling.originalContext << ")";
                }
            } else if (c.ropeScale != 1.0) {
                out << ", scale " << c.ropeScale;
            }
            out << "\n";
        }
        out << "output         " << (c.tiedOutput ? "tied to the token embedding" : "separate matrix") << "\n";
        out << "source         " << c.sourceFile << " (" << c.sourceQuantization << ")\n";
    }
    if (tok) {
        out << "tokenizer      " << (tok->data().model == "llama" ? "SentencePiece-style BPE" : "byte-level BPE")
            << " (" << tok->data().model << ", pre-tokenizer " << (tok->data().pre.empty() ? "none" : tok->data().pre)
            << "), " << tok->vocabSize() << " tokens, BOS " << (tok->data().addBos ? "added" : "not added") << "\n";
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
