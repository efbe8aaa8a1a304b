#include "cli.h"

#include "sinkscope/attention_stats.h"
#include "sinkscope/config.h"
#include "sinkscope/convert.h"
#include "sinkscope/model.h"
#include "sinkscope/paths.h"
#include "sinkscope/runtime.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include <unistd.h>

namespace sinkscope::cli {
namespace {

struct UsageError {
    std::string message;
};

// A small flag parser: --name value, --name=value, -n value, and boolean switches.
class Args
{
public:
    Args(std::vector<std::string> args, std::vector<std::string> switches, std::vector<std::string> valued)
    {
        for (size_t i = 0; i < args.size(); ++i) {
            std::string a = args[i];
            if (a.rfind("-", 0) == 0 && a != "-") {
                std::string value;
                bool hasValue = false;
                if (auto eq = a.find('='); eq != std::string::npos) {
                    value = a.substr(eq + 1);
                    a = a.substr(0, eq);
                    hasValue = true;
                }
                if (std::find(switches.begin(), switches.end(), a) != switches.end()) {
                    if (hasValue) {
                        throw UsageError{"option " + a + " takes no value"};
                    }
                    m_flags[a] = "1";
                } else if (std::find(valued.begin(), valued.end(), a) != valued.end()) {
                    if (!hasValue) {
                        if (i + 1 >= args.size()) {
                            throw UsageError{"option " + a + " needs a value"};
                        }
                        value = args[++i];
                    }
                    m_flags[a] = value;
                } else {
                    throw UsageError{"unknown option " + a};
                }
            } else {
                m_positional.push_back(a);
            }
        }
    }
    bool has(const std::string &k) const { return m_flags.count(k) > 0; }
    std::optional<std::string> get(const std::string &k) const
    {
        auto it = m_flags.find(k);
        return it == m_flags.end() ? std::nullopt : std::optional(it->second);
    }
    const std::vector<std::string> &positional() const { return m_positional; }

    double number(const std::string &k, double fallback, double lo, double hi) const
    {
        auto v = get(k);
        if (!v) {
            return fallback;
        }
        char *end = nullptr;
        const double d = std::strtod(v->c_str(), &end);
        if (v->empty() || *end != '\0' || !std::isfinite(d) || d < lo || d > hi) {
            std::ostringstream s;
            s << "option " << k << ": '" << *v << "' is not a number in [" << lo << ", " << hi << "]";
            throw UsageError{s.str()};
        }
        return d;
    }

private:
    std::map<std::string, std::string> m_flags;
    std::vector<std::string> m_positional;
};

constexpr const char *kMainHelp = R"(sinkscope-cli — attention sinks in language models, from the command line

Usage: sinkscope-cli <command> [options]

Commands:
  info       describe a model (architecture, sizes, tokenizer, contract)
  convert    convert a GGUF file into a SinkScope model archive
  run        one forward pass: tokens, top-k next tokens, first-token attention mass per layer and head
  generate   continue a prompt, streaming tokens as they come
  doctor     check the runtime: LibTorch, threads, BLAS speed

Every command that takes --model uses the default model (SmolLM2-135M-Instruct) without it.
Run 'sinkscope-cli <command> --help' for the options of a command.
)";

constexpr const char *kInfoHelp = R"(Usage: sinkscope-cli info [--model FILE] [--json]

Prints the architecture, layers, heads, KV heads, context length, parameter count, tokenizer and the
model contract (SinkScope archive or generic TorchScript).
)";

constexpr const char *kConvertHelp = R"(Usage: sinkscope-cli convert IN.gguf -o OUT.pt

Reads a GGUF file (llama or gpt2 family; F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K
tensors), dequantizes it to fp32 and writes a self-contained SinkScope model archive (TorchScript code,
weights, config and tokenizer).
)";

constexpr const char *kRunHelp = R"(Usage: sinkscope-cli run --prompt TEXT [--model FILE] [--top-k K] [--bos | --no-bos] [--ids 1,2,3] [--json]

Runs one forward pass and prints the tokens (id, text, special tokens marked), the top-k next tokens with
probabilities, and per layer and head the mean attention that queries 1..T-1 pay to the first token.
--ids passes token ids instead of a prompt (needed for models without a tokenizer).
JSON keys: model, tokens, top_k, first_token_mass ([layer][head]), seconds.
)";

constexpr const char *kGenerateHelp = R"(Usage: sinkscope-cli generate --prompt TEXT [--model FILE] [-n N] [--temperature T --seed S] [--bos | --no-bos]

Continues the prompt, printing tokens as they come. Greedy by default; --temperature > 0 samples with the
given --seed (reproducible).
)";

constexpr const char *kDoctorHelp = R"(Usage: sinkscope-cli doctor [--json]

Prints the LibTorch version, thread settings, the BLAS library and its measured matmul speed; exits 1 when
the BLAS is the slow reference implementation.
)";

bool wantsHelp(const std::vector<std::string> &args)
{
    return std::find(args.begin(), args.end(), "--help") != args.end() ||
           std::find(args.begin(), args.end(), "-h") != args.end();
}

struct Failure {
    std::string message;
};

std::shared_ptr<const Model> loadModel(const Args &a, std::ostream &err)
{
    std::string path;
    if (auto m = a.get("--model")) {
        path = *m;
    } else {
        bool announced = false;
        auto ensured = ensureDefaultModel([&](double, const std::string &) {
            if (!announced) {
                err << "converting the default model once (" << defaultGgufPath() << ")\n";
                announced = true;
            }
            return true;
        });
        if (!ensured) {
            throw Failure{ensured.error().message};
        }
        path = *ensured;
    }
    auto model = Model::load(path);
    if (!model) {
        throw Failure{model.error().message};
    }
    return *model;
}

void warnIfSlowBlas(std::ostream &err)
{
    const BlasCheck check = checkBlas();
    if (check.slow) {
        err << "warning: " << check.message << "\n";
    }
}

std::vector<int64_t> parseIds(const std::string &text)
{
    std::vector<int64_t> ids;
    std::stringstream ss(text);
    std::string part;
    while (std::getline(ss, part, ',')) {
        char *end = nullptr;
        const long long v = std::strtoll(part.c_str(), &end, 10);
        if (part.empty() || *end != '\0') {
            throw UsageError{"--ids: '" + part + "' is not a token id"};
        }
        ids.push_back(v);
    }
    return ids;
}

std::optional<bool> bosOption(const Args &a)
{
    if (a.has("--bos") && a.has("--no-bos")) {
        throw UsageError{"--bos and --no-bos exclude each other"};
    }
    if (a.has("--bos")) {
        return true;
    }
    if (a.has("--no-bos")) {
        return false;
    }
    return std::nullopt;
}

std::vector<int64_t> promptTokens(const Model &model, const Args &a)
{
    if (auto ids = a.get("--ids")) {
        if (a.has("--prompt")) {
            throw UsageError{"--prompt and --ids exclude each other"};
        }
        return parseIds(*ids);
    }
    auto prompt = a.get("--prompt");
    if (!prompt) {
        throw UsageError{"--prompt is required"};
    }
    auto ids = model.tokenize(*prompt, bosOption(a));
    if (!ids) {
        throw Failure{ids.error().message};
    }
    return *ids;
}

// Token text for display: control characters escaped so one token stays on one line.
std::string visible(const std::string &s)
{
    std::string out;
    for (unsigned char ch : s) {
        switch (ch) {
        case '\n': out += "\\n"; break;
        case '\t': out += "\\t"; break;
        case '\r': out += "\\r"; break;
        default:
            if (ch < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\x%02x", ch);
                out += buf;
            } else {
                out += static_cast<char>(ch);
            }
        }
    }
    return out;
}

std::string tokenString(const Model &model, int64_t id)
{
    auto tok = model.tokenizer();
    if (!tok || id < 0 || id >= tok->vocabSize()) {
        return "#" + std::to_string(id);
    }
    return tok->tokenText(id);
}

// JSON strings must be valid UTF-8; a token may hold a partial sequence.
std::string jsonSafe(const std::string &s)
{
    return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

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
            j["tokenizer"] = {{"model", tok->data().model}, {"pre", tok->data().pre}, {"vocab_size", tok->vocabSize()},
                              {"add_bos", tok->data().addBos}};
        }
        out << j.dump(2) << "\n";
        return 0;
    }
    out << "model          " << info.path << "\n";
    out << "contract       " << (contract ? "SinkScope archive, version " + std::to_string(c.contractVersion)
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

int cmdConvert(const Args &a, std::ostream &out, std::ostream &err)
{
    if (a.positional().size() != 1) {
        throw UsageError{"convert needs exactly one input GGUF file"};
    }
    auto output = a.get("-o");
    if (!output) {
        throw UsageError{"convert needs -o OUT.pt"};
    }
    const auto start = std::chrono::steady_clock::now();
    // A terminal gets a live percentage; a log file gets a line every 25 %.
    const bool tty = ::isatty(STDERR_FILENO) == 1;
    int lastPercent = -1;
    Status s = convertGguf(a.positional()[0], *output, ConvertOptions{.progress = [&](double f, const std::string &) {
                               const int p = static_cast<int>(f * 100);
                               const int step = tty ? 1 : 25;
                               if (p / step != lastPercent / step) {
                                   err << (tty ? "\r" : "") << "converting: " << p << "%" << (tty ? "" : "\n")
                                       << std::flush;
                                   lastPercent = p;
                               }
                               return true;
                           }});
    if (tty) {
        err << "\n";
    }
    if (!s) {
        throw Failure{s.error().message};
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    out << "wrote " << *output << " in " << std::fixed << std::setprecision(1) << secs << " s\n";
    return 0;
}

int cmdRun(const Args &a, std::ostream &out, std::ostream &err)
{
    warnIfSlowBlas(err);
    auto model = loadModel(a, err);
    const auto tokens = promptTokens(*model, a);
    const int k = static_cast<int>(a.number("--top-k", 10, 1, 1000));
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
        out << "  " << std::setw(7) << std::fixed << std::setprecision(4) << t.probability << "  " << std::setw(6) << t.id
            << "  '" << visible(tokenString(*model, t.id)) << "'\n";
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

int cmdGenerate(const Args &a, std::ostream &out, std::ostream &err)
{
    warnIfSlowBlas(err);
    auto model = loadModel(a, err);
    const auto tokens = promptTokens(*model, a);
    GenerateOptions opt;
    opt.maxNewTokens = static_cast<int>(a.number("-n", 20, 0, 1e6));
    opt.temperature = a.number("--temperature", 0, 0, 100);
    opt.seed = static_cast<uint64_t>(a.number("--seed", 0, 0, 1e15));
    auto tok = model->tokenizer();
    std::vector<int64_t> generated;
    size_t printed = 0;
    // Print only complete UTF-8 text: a token can end in the middle of a character.
    auto flush = [&](bool final) {
        if (!tok) {
            return;
        }
        const std::string text = tok->decode(generated);
        size_t end = text.size();
        if (!final) {
            size_t i = end;
            int back = 0;
            while (i > 0 && back < 4 && (static_cast<unsigned char>(text[i - 1]) & 0xC0) == 0x80) {
                --i;
                ++back;
            }
            if (i > 0) {
                const auto lead = static_cast<unsigned char>(text[i - 1]);
                const int need = lead >= 0xF0 ? 3 : lead >= 0xE0 ? 2 : lead >= 0xC0 ? 1 : 0;
                if (need > back) {
                    end = i - 1;
                }
            }
        }
        if (end > printed) {
            out << text.substr(printed, end - printed) << std::flush;
            printed = end;
        }
    };
    if (tok) {
        out << tok->decode(tokens) << std::flush;
    }
    auto r = model->generate(tokens, opt, [&](int64_t id) {
        generated.push_back(id);
        if (tok) {
            flush(false);
        } else {
            out << id << " " << std::flush;
        }
    });
    flush(true);
    out << "\n";
    if (!r) {
        throw Failure{r.error().message};
    }
    return 0;
}

int cmdDoctor(const Args &a, std::ostream &out, std::ostream &)
{
    const BlasCheck check = checkBlas();
    if (a.has("--json")) {
        nlohmann::ordered_json j;
        j["runtime"] = runtimeSummary();
        j["blas_library"] = check.library;
        j["matmul_gflops"] = check.gflops;
        j["matmul_n"] = check.n;
        j["slow_blas"] = check.slow;
        out << j.dump(2) << "\n";
    } else {
        out << runtimeSummary() << "\n";
        out << "matmul " << check.n << "x" << check.n << " fp32: " << std::fixed << std::setprecision(1) << check.gflops
            << " GFLOP/s" << (check.slow ? "  <-- SLOW" : "") << "\n";
        if (check.slow) {
            out << check.message << "\n";
        }
    }
    return check.slow ? 1 : 0;
}

} // namespace

int runCli(const std::vector<std::string> &args, std::ostream &out, std::ostream &err)
{
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        out << kMainHelp;
        return args.empty() ? 2 : 0;
    }
    if (args[0] == "--version") {
        out << "sinkscope-cli " << SINKSCOPE_VERSION << "\n";
        return 0;
    }
    const std::string cmd = args[0];
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    struct Command {
        const char *help;
        std::vector<std::string> switches, valued;
        int (*fn)(const Args &, std::ostream &, std::ostream &);
    };
    const std::map<std::string, Command> commands{
        {"info", {kInfoHelp, {"--json"}, {"--model"}, cmdInfo}},
        {"convert", {kConvertHelp, {}, {"-o", "--output"}, cmdConvert}},
        {"run", {kRunHelp, {"--json", "--bos", "--no-bos"}, {"--model", "--prompt", "--top-k", "--ids"}, cmdRun}},
        {"generate",
         {kGenerateHelp, {"--bos", "--no-bos"}, {"--model", "--prompt", "-n", "--temperature", "--seed", "--ids"}, cmdGenerate}},
        {"doctor", {kDoctorHelp, {"--json"}, {}, cmdDoctor}},
    };
    auto it = commands.find(cmd);
    if (it == commands.end()) {
        err << "sinkscope-cli: unknown command '" << cmd << "' (try --help)\n";
        return 2;
    }
    if (wantsHelp(rest)) {
        out << it->second.help;
        return 0;
    }
    try {
        std::vector<std::string> normalized = rest;
        for (auto &s : normalized) {
            if (s == "--output") {
                s = "-o";
            }
        }
        Args parsed(normalized, it->second.switches, it->second.valued);
        return it->second.fn(parsed, out, err);
    } catch (const UsageError &e) {
        err << "sinkscope-cli " << cmd << ": " << e.message << " (try 'sinkscope-cli " << cmd << " --help')\n";
        return 2;
    } catch (const Failure &f) {
        err << "sinkscope-cli " << cmd << ": error: " << f.message << "\n";
        return 1;
    } catch (const std::exception &e) {
        err << "sinkscope-cli " << cmd << ": error: " << e.what() << "\n";
        return 1;
    }
}

} // namespace sinkscope::cli
