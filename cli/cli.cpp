#include "cli.h"
#include "cli_figures.h"
#include "cli_probe.h"

#include "sinkscope/analysis/attention_stats.h"
#include "sinkscope/analysis/metrics.h"
#include "sinkscope/common/csv.h"
#include "sinkscope/config.h"
#include "sinkscope/interventions/effects.h"
#include "sinkscope/interventions/mitigation.h"
#include "sinkscope/interventions/streaming.h"
#include "sinkscope/model/convert.h"
#include "sinkscope/model/model.h"
#include "sinkscope/runtime/device.h"
#include "sinkscope/runtime/paths.h"
#include "sinkscope/runtime/runtime.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
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
  info        describe a model (architecture, sizes, tokenizer, contract)
  convert     convert a GGUF file into a SinkScope model archive
  run         one forward pass: tokens, top-k next tokens, first-token attention mass per layer and head
  generate    continue a prompt, streaming tokens as they come
  doctor      check the runtime: LibTorch, threads, BLAS speed
  analyze     sink metrics for every layer and head: metrics.json and heads.csv
  compare     a prompt with and without mitigations (top-k, KL, perplexity, attention change, continuation)
  mitigations the mitigation methods: parameters, ranges, defaults, head scopes and sources
  act-search  the heads ACT calibration should act on, searched one head at a time on probe texts
  stream-ppl  the StreamingLLM evaluation: per-token NLL with a rolling KV cache (dense, window, sinks)
  probe       hallucination probes: accuracy and answer log-probability per mitigation setting

Every command that takes --model uses the default model (SmolLM2-135M-Instruct) without it, and takes
--device cpu|cuda|cuda:N (default cpu; 'doctor' lists the devices): the model runs there when LibTorch has
CUDA, and analyze's streaming statistics use SinkScope's CUDA kernels there when they are built
(docs/gpu.md). An unavailable device is an error that says why.
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

constexpr const char *kRunHelp =
    R"(Usage: sinkscope-cli run --prompt TEXT [--model FILE] [--top-k K] [--bos | --no-bos] [--ids 1,2,3] [--json]

Runs one forward pass and prints the tokens (id, text, special tokens marked), the top-k next tokens with
probabilities, and per layer and head the mean attention that queries 1..T-1 pay to the first token.
--ids passes token ids instead of a prompt (needed for models without a tokenizer).
JSON keys: model, tokens, top_k, first_token_mass ([layer][head]), seconds.
)";

constexpr const char *kGenerateHelp =
    R"(Usage: sinkscope-cli generate --prompt TEXT [--model FILE] [-n N] [--temperature T --seed S] [--bos | --no-bos]

Continues the prompt, printing tokens as they come. Greedy by default; --temperature > 0 samples with the
given --seed (reproducible).
)";

constexpr const char *kAnalyzeHelp =
    R"(Usage: sinkscope-cli analyze --prompt TEXT --out DIR [--model FILE] [--bos | --no-bos] [--ids 1,2,3]
                             [--sinks 0,5] [--epsilon E] [--threshold X] [--path auto|materialized|streaming] [--json]
                             [--format png,svg,pdf | --no-figures] [--heatmap-metric NAME] [--top-heads N]

Computes every sink metric (docs/metrics.md) for every layer and head and writes DIR/metrics.json (all
metrics with the model, tokens and settings) and DIR/heads.csv (one row per layer and head; the first
columns are layer,head,first_token_mass). --json also prints metrics.json to stdout. Long prompts use the
streaming path automatically (no T x T matrix per head is held).

Figures (the window's own figure code, drawn headless; default --format png): sink-heatmap (layer x head
heatmap of --heatmap-metric, default first_token_mass, with the massive activation of each layer beside
it), head-L<l>-H<h> (attention maps of the --top-heads heads, default 4, with the largest value of that
metric; prompts up to 2048 tokens), received (attention received per token, detected sinks highlighted)
and massive-activations (largest |h| over the median per layer, token and dimension labelled). Figures
need a build with SINKSCOPE_BUILD_GUI=ON; in other builds --format is an error after metrics.json and
heads.csv are written.
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

// --device (default cpu): where the model and the statistics kernels run (sinkscope/device.h).
DevicePlan chosenDevice(const Args &a)
{
    const auto id = a.get("--device");
    if (!id || *id == "cpu") {
        return DevicePlan{};
    }
    auto plan = planDevice(*id, availableDevices());
    if (!plan) {
        throw Failure{plan.error().message};
    }
    return *plan;
}

// `plan` (optional) receives the --device plan the model was loaded by (the registry is queried once).
std::shared_ptr<const Model> loadModel(const Args &a, std::ostream &err, DevicePlan *plan = nullptr)
{
    const DevicePlan device = chosenDevice(a);
    if (plan) {
        *plan = device;
    }
    if (device.device.kind == DeviceKind::Cuda && device.modelDevice == "cpu") {
        err << "note: the model runs on the CPU (" << device.device.id << ": " << device.device.note << ")\n";
    }
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
    LoadOptions options;
    options.device = device.modelDevice;
    auto model = Model::load(path, options);
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

void requirePromptOrIds(const Args &a)
{
    if (a.has("--ids") && a.has("--prompt")) {
        throw UsageError{"--prompt and --ids exclude each other"};
    }
    if (!a.has("--ids") && !a.has("--prompt")) {
        throw UsageError{"--prompt is required"};
    }
    (void)bosOption(a);
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
        case '\n':
            out += "\\n";
            break;
        case '\t':
            out += "\\t";
            break;
        case '\r':
            out += "\\r";
            break;
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

int cmdGenerate(const Args &a, std::ostream &out, std::ostream &err)
{
    GenerateOptions opt;
    opt.maxNewTokens = static_cast<int>(a.number("-n", 20, 0, 1e6));
    opt.temperature = a.number("--temperature", 0, 0, 100);
    opt.seed = static_cast<uint64_t>(a.number("--seed", 0, 0, 1e15));
    requirePromptOrIds(a);
    warnIfSlowBlas(err);
    auto model = loadModel(a, err);
    const auto tokens = promptTokens(*model, a);
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

// The standard figures of `analyze`: the head maps need the attention of the top heads' layers, which
// the metrics pass does not keep (or, on the streaming path, never had): a second forward pass captures
// just those layers.
void writeAnalyzeFiguresFor(const Model &model, const std::vector<int64_t> &tokens,
                            const std::shared_ptr<const SinkMetrics> &metrics, const std::string &dir,
                            const std::vector<std::string> &formats, const std::string &heatmapMetric, int topHeads,
                            std::ostream &log)
{
    constexpr size_t kMaxMapTokens = 2048; // [H, T, T] per layer: 150 MiB for SmolLM2 at 2048
    AnalyzeFigures request;
    request.dir = dir;
    request.formats = formats;
    request.metrics = metrics;
    request.heatmapMetric = heatmapMetric;
    request.topHeads = topHeads;
    std::vector<int> layers;
    {
        // Top heads by the metric, as ui::topHeadsBy picks them (ties in reading order).
        const HeadMetric *m = metrics->headMetric(heatmapMetric);
        std::vector<int64_t> order;
        for (int64_t i = 0; m && i < static_cast<int64_t>(m->values.data.size()); ++i) {
            if (std::isfinite(m->values.data[size_t(i)])) {
                order.push_back(i);
            }
        }
        std::stable_sort(order.begin(), order.end(),
                         [&](int64_t x, int64_t y) { return m->values.data[size_t(x)] > m->values.data[size_t(y)]; });
        for (size_t i = 0; i < order.size() && static_cast<int>(i) < topHeads; ++i) {
            const int layer = static_cast<int>(order[i] / metrics->heads);
            if (std::find(layers.begin(), layers.end(), layer) == layers.end()) {
                layers.push_back(layer);
            }
        }
    }
    ForwardResult attention;
    if (!layers.empty() && tokens.size() <= kMaxMapTokens) {
        auto r = model.forward(
            ForwardRequest{.tokens = tokens, .capture = {.attentionLayers = layers, .lastLogitsOnly = true}});
        if (!r) {
            throw Failure{r.error().message};
        }
        attention = std::move(r).value();
        for (int layer : layers) {
            if (layer < static_cast<int>(attention.attention.size()) && !attention.attention[size_t(layer)].empty()) {
                request.attention[layer] = &attention.attention[size_t(layer)];
            }
        }
    }
    std::string text;
    for (const auto &t : metrics->tokenTexts) {
        text += t;
    }
    if (text.size() > 160) {
        text = text.substr(0, 157) + "...";
    }
    request.caption = "Model: " + model.config().name + " (" +
                      std::filesystem::path(model.info().path).filename().string() + "). Prompt (" +
                      std::to_string(tokens.size()) + " tokens): \"" + text + "\". " +
                      "Metrics: " + metricsPathName(metrics->path) + " path, epsilon " +
                      std::to_string(metrics->settings.sinkEpsilon).substr(0, 4) + ", sink threshold " +
                      std::to_string(metrics->settings.sinkThreshold).substr(0, 4) + ". sinkscope-cli " +
                      SINKSCOPE_VERSION + " analyze.";
    std::vector<std::string> written, notes;
    std::string error;
    if (!writeAnalyzeFigures(request, &written, &notes, &error)) {
        throw Failure{error};
    }
    if (tokens.size() > kMaxMapTokens) {
        notes.push_back("no head attention maps above " + std::to_string(kMaxMapTokens) + " tokens");
    }
    log << "wrote " << written.size() << " figure file(s) into " << dir << "\n";
    for (const auto &n : notes) {
        log << "  note: " << n << "\n";
    }
}

int cmdAnalyze(const Args &a, std::ostream &out, std::ostream &err)
{
    const auto dir = a.get("--out");
    if (!dir) {
        throw UsageError{"--out DIR is required"};
    }
    MetricsOptions options;
    int64_t materializeUpTo = kStreamingAboveTokens;
    options.sinkEpsilon = a.number("--epsilon", options.sinkEpsilon, 0, 1);
    options.sinkThreshold = a.number("--threshold", options.sinkThreshold, 0, 1);
    if (auto sinks = a.get("--sinks")) {
        options.sinkPositions = parseIds(*sinks);
    }
    if (auto path = a.get("--path")) {
        if (*path == "auto") {
            options.path = MetricsPath::Auto;
        } else if (*path == "materialized") {
            options.path = MetricsPath::Materialized;
            materializeUpTo = std::numeric_limits<int64_t>::max();
        } else if (*path == "streaming") {
            options.path = MetricsPath::Streaming;
            materializeUpTo = 0;
        } else {
            throw UsageError{"--path: '" + *path + "' is not auto, materialized or streaming"};
        }
    }
    std::vector<std::string> formats;
    if (a.has("--no-figures") && a.has("--format")) {
        throw UsageError{"--format and --no-figures exclude each other"};
    }
    if (auto list = a.get("--format")) {
        std::string problem;
        formats = parseFormatList(*list, &problem);
        if (formats.empty()) {
            throw UsageError{"--format: " + problem};
        }
    } else if (figuresAvailable && !a.has("--no-figures")) {
        formats = {"png"};
    }
    const std::string heatmapMetric = a.get("--heatmap-metric").value_or("first_token_mass");
    const int topHeads = static_cast<int>(a.number("--top-heads", 4, 0, 64));
    requirePromptOrIds(a);
    warnIfSlowBlas(err);
    DevicePlan device;
    auto model = loadModel(a, err, &device);
    options.device = device.kernelDevice; // the streaming statistics (the CUDA kernels on a GPU)
    const auto tokens = promptTokens(*model, a);
    auto metrics = analyzeTokens(*model, tokens, options, materializeUpTo);
    if (!metrics) {
        throw Failure{metrics.error().message};
    }
    if (!formats.empty() && !(*metrics)->headMetric(heatmapMetric)) {
        std::string names;
        for (const auto &m : (*metrics)->headMetrics) {
            names += (names.empty() ? "" : ", ") + m.name;
        }
        throw UsageError{"--heatmap-metric: '" + heatmapMetric + "' is not a per-head metric (" + names + ")"};
    }
    std::error_code ec;
    std::filesystem::create_directories(*dir, ec);
    const std::string json = (*metrics)->toJson();
    for (const auto &[name, text] :
         {std::pair{std::string("metrics.json"), json}, std::pair{std::string("heads.csv"), (*metrics)->headsCsv()}}) {
        const auto path = (std::filesystem::path(*dir) / name).string();
        std::ofstream f(path, std::ios::binary);
        f << text;
        if (!f) {
            throw Failure{path + ": cannot write"};
        }
    }
    if (a.has("--json")) {
        out << json << "\n";
    } else {
        out << "wrote " << *dir << "/metrics.json and " << *dir << "/heads.csv (" << (*metrics)->layers << " layers x "
            << (*metrics)->heads << " heads, " << tokens.size() << " tokens, "
            << ((*metrics)->path == MetricsPath::Streaming ? "streaming" : "materialised") << " path)\n";
    }
    if (formats.empty()) {
        return 0;
    }
    if (!figuresAvailable) {
        throw Failure{"figures need a build with SINKSCOPE_BUILD_GUI=ON (this one has no Qt); " + *dir +
                      "/metrics.json and heads.csv were written"};
    }
    writeAnalyzeFiguresFor(*model, tokens, *metrics, *dir, formats, heatmapMetric, topHeads,
                           a.has("--json") ? err : out);
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
        for (const auto &d : availableDevices()) {
            j["devices"].push_back({{"id", d.id},
                                    {"name", d.name},
                                    {"total_memory", d.totalMemory},
                                    {"runs_model", d.runsModel},
                                    {"kernels", d.kernels},
                                    {"note", d.note}});
        }
        out << j.dump(2) << "\n";
    } else {
        out << runtimeSummary() << "\n";
        out << "matmul " << check.n << "x" << check.n << " fp32: " << std::fixed << std::setprecision(1) << check.gflops
            << " GFLOP/s" << (check.slow ? "  <-- SLOW" : "") << "\n";
        if (check.slow) {
            out << check.message << "\n";
        }
        out << describeDevices() << "\n";
    }
    return check.slow ? 1 : 0;
}

constexpr const char *kStreamPplHelp = R"(Usage: sinkscope-cli stream-ppl --text FILE [--model FILE] [--tokens N]
                             (--dense | --window W [--sinks S] [--recompute] | --sweep [--window C])
                             [--csv FILE] [--plot FILE] [--json]
       sinkscope-cli stream-ppl --replot RUNS.json[,RUNS.json...] [--csv FILE] [--plot FILE]

The StreamingLLM evaluation (Xiao et al., ICLR 2024): decodes the text one token at a time with a real
rolling key/value cache (keys cached before RoPE and re-rotated with their positions inside the cache)
and records the NLL of every next token. The token being decoded sees at most S + W keys, itself
included: the first S tokens and the W most recent ones.

  --dense        no eviction (the attention span grows with the text)
  --window W     keep the W most recent tokens; with --sinks S also the first S (default 0: window only)
  --recompute    sliding window with re-computation: rerun the S + W context from scratch every token
  --sweep        the standard set at a total cache C (--window, default 256): dense, window 0+C,
                 sinks S+(C-S) for S = 1, 2, 4, 8, and re-computation 0+C
  --tokens N     evaluate the first N tokens of the text (default: all)
  --csv FILE     per-token NLL, one column per method (for plotting NLL against position)
  --plot FILE    that plot (.png, .svg or .pdf): log PPL so far against position, one line per method
                 (needs the GUI build)
  --replot FILES redraw --plot/--csv from earlier --json outputs (one run or a sweep each) without
                 running the model again

Text: perplexity over all tokens and over the tokens decoded once the cache is full, tokens per second.
JSON: one object per method with keys method, sinks, window, tokens, ppl, ppl_after_cache, mean_nll,
seconds, tokens_per_second and nll (per token, nats); --sweep prints {"runs": [...]}.
)";

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

std::string compareHelp()
{
    return R"(Usage: sinkscope-cli compare --prompt TEXT --mitigation SPEC[,SPEC...] [--model FILE] [--top-k K]
                           [-n N] [--bos | --no-bos] [--ids 1,2,3] [--json]

Runs the prompt without controls (the baseline) and with each mitigation, and reports against the
baseline on the same tokens: the next-token top-k, KL(baseline || mitigated) at the last position,
prompt perplexity, the per-head attention change (mean total variation over queries, layer x head) and
N greedy tokens side by side (default 16; 0 skips them).

Spec grammar (docs/mitigations.md): none | step+step..., step = method[:param=value,...,heads=L2H3+L5],
methods )" +
           mitigationMethodNames() +
           R"( ('sinkscope-cli mitigations' describes each).
Example: --mitigation none,mask-sink,act:beta=0.4,thres=0.1,heads=L2H3+L5H0
In compare, streaming is applied as a sink + window attention mask with the original positions; the
rolling cache with in-cache positions is stream-ppl.
)";
}

constexpr const char *kMitigationsHelp = R"(Usage: sinkscope-cli mitigations [--markdown | --json]

Lists every mitigation method a spec (compare --mitigation, probe --compare, the window's Mitigations
tab) can name: its parameters with their ranges and defaults, the heads it covers without heads=, the
model archives it needs and its source. --markdown prints the table of docs/mitigations.md; --json the
same registry as data (methods[i].name, .params[j].min/.max/.default/.required/.choices, ...).
)";

int cmdMitigations(const Args &a, std::ostream &out, std::ostream &)
{
    if (a.has("--markdown") && a.has("--json")) {
        throw UsageError{"--markdown and --json exclude each other"};
    }
    if (a.has("--markdown")) {
        out << mitigationMarkdownTable();
        return 0;
    }
    if (!a.has("--json")) {
        out << "Spec: none | step+step..., step = method[:param=value,...,heads=SCOPE] (docs/mitigations.md)\n\n"
            << mitigationReference();
        return 0;
    }
    nlohmann::json methods = nlohmann::json::array();
    for (const auto &m : mitigationMethods()) {
        nlohmann::json params = nlohmann::json::array();
        for (const auto &p : m.params) {
            nlohmann::json jp{{"name", p.name},
                              {"required", p.required},
                              {"min", p.min},
                              {"max", p.max},
                              {"integer", p.integer},
                              {"choices", p.choices},
                              {"description", p.description}};
            jp["default"] = p.required ? nlohmann::json() : nlohmann::json(p.defaultValue);
            params.push_back(std::move(jp));
        }
        nlohmann::json families = nlohmann::json::array();
        for (auto arch : m.families) {
            families.push_back(architectureName(arch));
        }
        methods.push_back({{"name", m.name},
                           {"code", m.code},
                           {"title", m.title},
                           {"usage", m.usage()},
                           {"summary", m.summary},
                           {"source", m.source},
                           {"params", params},
                           {"takes_heads", m.takesHeads},
                           {"default_scope", m.defaultScope},
                           {"min_contract", m.minContract},
                           {"families", families}});
    }
    out << nlohmann::json{{"methods", methods}}.dump(2) << "\n";
    return 0;
}

// Splits "a:x=1,y=2,b,c:z=3" into specs: a piece holding '=' before any ':' continues the spec before it.
std::vector<std::string> splitSpecList(const std::string &text)
{
    std::vector<std::string> specs;
    std::stringstream ss(text);
    std::string piece;
    while (std::getline(ss, piece, ',')) {
        const auto eq = piece.find('='), colon = piece.find(':');
        if (!specs.empty() && eq != std::string::npos && (colon == std::string::npos || eq < colon)) {
            specs.back() += "," + piece;
        } else {
            specs.push_back(piece);
        }
    }
    if (specs.empty()) {
        throw UsageError{"--mitigation is empty"};
    }
    return specs;
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

int cmdCompare(const Args &a, std::ostream &out, std::ostream &err)
{
    warnIfSlowBlas(err);
    const auto specText = a.get("--mitigation");
    if (!specText) {
        throw UsageError{"--mitigation is required"};
    }
    std::vector<MitigationSpec> specs;
    for (const auto &s : splitSpecList(*specText)) {
        auto spec = parseMitigation(s);
        if (!spec) {
            throw UsageError{spec.error().message};
        }
        specs.push_back(std::move(spec).value());
    }
    auto model = loadModel(a, err);
    for (const auto &spec : specs) {
        if (auto ok = validateMitigation(spec, *model); !ok) {
            throw Failure{ok.error().message};
        }
    }
    const auto tokens = promptTokens(*model, a);
    EffectsOptions opt;
    opt.topK = static_cast<int>(a.number("--top-k", 5, 1, 1000));
    opt.continuationTokens = static_cast<int>(a.number("-n", 16, 0, 10000));
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
    if (a.has("--json")) {
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

nlohmann::ordered_json streamJson(const StreamingResult &r, double pplAfter)
{
    nlohmann::ordered_json j;
    j["method"] = r.options.label();
    j["sinks"] = r.options.mode == StreamingMode::Dense ? 0 : r.options.sinks;
    j["window"] = r.options.mode == StreamingMode::Dense ? 0 : r.options.window;
    j["tokens"] = r.tokens;
    j["ppl"] = r.perplexity;
    j["ppl_after_cache"] = pplAfter;
    j["mean_nll"] = r.meanNll;
    j["seconds"] = r.seconds;
    j["tokens_per_second"] = r.tokensPerSecond;
    j["nll"] = r.nll;
    return j;
}

// Perplexity over the tokens predicted once the cache has been full (where evictions can matter).
double pplAfterCache(const StreamingResult &r)
{
    const int64_t from = r.options.mode == StreamingMode::Dense ? 0 : r.options.sinks + r.options.window;
    double sum = 0;
    int64_t count = 0;
    for (size_t i = static_cast<size_t>(std::max<int64_t>(from - 1, 0)); i < r.nll.size(); ++i) {
        sum += r.nll[i];
        ++count;
    }
    return count > 0 ? std::exp(sum / static_cast<double>(count)) : std::nan("");
}

// --csv (per-token NLL, one column per method) and --plot (log PPL so far against position).
void writeStreamOutputs(const Args &a, const std::vector<StreamingResult> &results, const std::string &modelName,
                        const std::string &textName, std::ostream &err)
{
    if (auto csv = a.get("--csv")) {
        std::ofstream f(*csv);
        std::vector<std::string> header = {"position"};
        for (const auto &r : results) {
            header.push_back(r.options.label());
        }
        f << csvRow(header);
        size_t rows = 0;
        for (const auto &r : results) {
            rows = std::max(rows, r.nll.size());
        }
        for (size_t i = 0; i < rows; ++i) {
            f << i + 1;
            for (const auto &r : results) {
                f << ",";
                if (i < r.nll.size()) {
                    f << r.nll[i]; // runs of different lengths leave their tail empty
                }
            }
            f << "\n";
        }
        if (!f) {
            throw Failure{*csv + ": cannot write"};
        }
    }
    if (auto plot = a.get("--plot")) {
        if (!figuresAvailable) {
            throw Failure{"--plot needs a build with SINKSCOPE_BUILD_GUI=ON (this one has no Qt)"};
        }
        // NLL against position as a trailing mean over kSpan tokens (the local log perplexity), one line
        // per method: per-token NLL is too noisy to compare by eye, and a running mean from the start
        // would hide a late blow-up under the early tokens.
        constexpr size_t kSpan = 128;
        LineFigure figure;
        figure.path = *plot;
        size_t longest = 0;
        for (const auto &r : results) {
            longest = std::max(longest, r.nll.size());
        }
        figure.title = "NLL against position (" + std::to_string(longest) + " tokens, mean over the last " +
                       std::to_string(kSpan) + ")";
        figure.xLabel = "position (tokens decoded)";
        figure.yLabel = "NLL, trailing mean over " + std::to_string(kSpan) + " tokens (nats)";
        figure.caption = "Model: " + modelName + ". Text: " + textName +
                         ". Per-token NLL of each cache policy (StreamingLLM evaluation, Xiao et al. 2024), averaged "
                         "over the previous " +
                         std::to_string(kSpan) + " positions. sinkscope-cli stream-ppl.";
        for (const auto &r : results) {
            figure.names.push_back(r.options.label());
            std::vector<double> x, y;
            double sum = 0;
            for (size_t i = 0; i < r.nll.size(); ++i) {
                sum += r.nll[i];
                if (i >= kSpan) {
                    sum -= r.nll[i - kSpan];
                }
                if (i + 1 >= std::min(kSpan, r.nll.size())) {
                    x.push_back(static_cast<double>(i + 1));
                    y.push_back(sum / static_cast<double>(std::min(i + 1, kSpan)));
                }
            }
            figure.x.push_back(std::move(x));
            figure.y.push_back(std::move(y));
        }
        std::string error;
        if (!writeLineFigure(figure, &error)) {
            throw Failure{error};
        }
        err << "stream-ppl: wrote " << *plot << "\n";
    }
}

// Runs read back from earlier --json outputs (--replot): the label, cache and per-token NLL.
std::vector<StreamingResult> readStreamRuns(const std::string &files, std::string *modelName, std::string *textName)
{
    std::vector<StreamingResult> results;
    std::vector<std::string> paths;
    std::stringstream list(files);
    for (std::string item; std::getline(list, item, ',');) {
        if (!item.empty()) {
            paths.push_back(item);
        }
    }
    for (const auto &file : paths) {
        std::ifstream in(file, std::ios::binary);
        if (!in) {
            throw Failure{file + ": cannot open the runs file"};
        }
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(in);
        } catch (const nlohmann::json::exception &e) {
            throw Failure{file + ": not JSON (" + std::string(e.what()) + ")"};
        }
        const nlohmann::json runs = j.is_object() && j.contains("runs") ? j["runs"] : nlohmann::json::array({j});
        if (j.is_object()) {
            *modelName = j.value("model", *modelName);
            *textName = j.contains("text") ? std::filesystem::path(j.value("text", "")).filename().string() : *textName;
        }
        for (const auto &run : runs) {
            try {
                StreamingResult r;
                const std::string method = run.at("method").get<std::string>();
                r.options.mode = method == "dense"                   ? StreamingMode::Dense
                                 : method.rfind("recompute", 0) == 0 ? StreamingMode::Recompute
                                                                     : StreamingMode::Cache;
                r.options.sinks = run.at("sinks").get<int>();
                r.options.window = run.at("window").get<int>();
                r.nll = run.at("nll").get<std::vector<float>>();
                r.tokens = static_cast<int64_t>(r.nll.size()) + 1;
                r.meanNll = run.value("mean_nll", 0.0);
                r.perplexity = run.value("ppl", std::exp(r.meanNll));
                r.seconds = run.value("seconds", 0.0);
                r.tokensPerSecond = run.value("tokens_per_second", 0.0);
                results.push_back(std::move(r));
            } catch (const nlohmann::json::exception &e) {
                throw Failure{file + ": a run lacks method/sinks/window/nll (" + std::string(e.what()) + ")"};
            }
        }
    }
    if (results.empty()) {
        throw Failure{files + ": no runs"};
    }
    return results;
}

int cmdStreamPpl(const Args &a, std::ostream &out, std::ostream &err)
{
    if (auto replot = a.get("--replot")) {
        if (a.has("--text") || a.has("--sweep") || a.has("--dense") || a.has("--window") || a.has("--json")) {
            throw UsageError{"--replot takes only --csv and --plot"};
        }
        std::string modelName = "?", textName = "?";
        auto results = readStreamRuns(*replot, &modelName, &textName);
        writeStreamOutputs(a, results, modelName, textName, err);
        return 0;
    }
    warnIfSlowBlas(err);
    const auto textPath = a.get("--text");
    if (!textPath) {
        throw UsageError{"--text FILE is required"};
    }
    const bool sweep = a.has("--sweep"), dense = a.has("--dense");
    if (static_cast<int>(sweep) + static_cast<int>(dense) + static_cast<int>(a.has("--window") && !sweep) != 1) {
        throw UsageError{"choose one of --dense, --window W or --sweep"};
    }
    if ((a.has("--sinks") || a.has("--recompute")) && (sweep || dense)) {
        throw UsageError{"--sinks and --recompute go with --window W"};
    }
    std::ifstream in(*textPath, std::ios::binary);
    if (!in) {
        throw Failure{*textPath + ": cannot open the text file"};
    }
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    auto model = loadModel(a, err);
    auto tok = model->tokenizer();
    if (!tok) {
        throw Failure{model->info().path + ": the model carries no tokenizer"};
    }
    const std::vector<int64_t> tokens = tok->encode(text, EncodeOptions{});
    if (tokens.size() < 2) {
        throw Failure{*textPath + ": the text has fewer than two tokens"};
    }
    const auto maxTokens = static_cast<int64_t>(a.number("--tokens", 0, 2, 1e9));
    std::vector<StreamingOptions> runs;
    if (sweep) {
        runs = standardStreamingSweep(static_cast<int>(a.number("--window", 256, 2, 1e7)));
    } else if (dense) {
        runs.push_back({.mode = StreamingMode::Dense, .sinks = 0, .window = 0});
    } else {
        runs.push_back({.mode = a.has("--recompute") ? StreamingMode::Recompute : StreamingMode::Cache,
                        .sinks = static_cast<int>(a.number("--sinks", 0, 0, 1e7)),
                        .window = static_cast<int>(a.number("--window", 256, 1, 1e7))});
    }
    auto evaluator = StreamingEvaluator::create(model);
    if (!evaluator) {
        throw Failure{evaluator.error().message};
    }
    std::vector<StreamingResult> results;
    for (auto &o : runs) {
        o.maxTokens = maxTokens;
        if (sweep) {
            err << "stream-ppl: " << o.label() << "...\n";
        }
        auto r = (*evaluator)->run(tokens, o);
        if (!r) {
            throw Failure{r.error().message};
        }
        results.push_back(std::move(r).value());
    }
    writeStreamOutputs(a, results, model->config().name, std::filesystem::path(*textPath).filename().string(), err);
    if (a.has("--json")) {
        if (!sweep) {
            auto j = streamJson(results.front(), pplAfterCache(results.front()));
            j["model"] = model->config().name;
            j["text"] = *textPath;
            out << j.dump(2) << "\n";
        } else {
            nlohmann::ordered_json j;
            j["text"] = *textPath;
            j["model"] = model->config().name;
            j["runs"] = nlohmann::ordered_json::array();
            for (const auto &r : results) {
                j["runs"].push_back(streamJson(r, pplAfterCache(r)));
            }
            out << j.dump(2) << "\n";
        }
        return 0;
    }
    out << *textPath << ": " << results.front().tokens << " tokens, model " << model->config().name << "\n";
    out << "  method               ppl    ppl once full   tokens/s\n";
    for (const auto &r : results) {
        std::string label = r.options.label();
        label.resize(std::max<size_t>(label.size(), 18), ' ');
        out << "  " << label << std::fixed << std::setprecision(2) << std::setw(8) << r.perplexity << std::setw(16)
            << pplAfterCache(r) << std::setw(11) << std::setprecision(1) << r.tokensPerSecond << "\n";
    }
    return 0;
}

constexpr const char *kProbeHelp =
    R"(Usage: sinkscope-cli probe [--set FILE] [--model FILE] [--compare SPEC[,SPEC...]] [--category C]
                           [--limit N] [--json] [--detector [--sink-excluded]] [--out DIR]

Runs a probe set (default: <data>/probes/default.json, <data> being share/sinkscope beside the program's
bin/; docs/probes.md) under each mitigation setting (default: none) and prints accuracy, mean answer
log-probability and entropy per setting, accuracy per category, and which probes flipped right -> wrong
or wrong -> right against the first setting. With one setting it lists every probe. --json: per setting accuracy, mean_logprob, categories, flips and per-probe
scores. --detector fits the Lookback-ratio logistic regression on the first setting's grounded probes
(held-out AUROC, per-head weights); --out DIR writes scores_<i>.csv, detector.json, detector_weights.csv.
A bad set file is an error naming file:line and the field.
)";

int cmdProbe(const Args &a, std::ostream &out, std::ostream &err)
{
    ProbeCommandOptions options;
    for (const auto &s : splitSpecList(a.get("--compare").value_or("none"))) {
        auto spec = parseMitigation(s);
        if (!spec) {
            throw UsageError{spec.error().message};
        }
        options.settings.push_back(std::move(spec).value());
    }
    options.probe.category = a.get("--category").value_or("");
    options.probe.limit = static_cast<int>(a.number("--limit", 0, 0, 1e6));
    options.json = a.has("--json");
    options.detector = a.has("--detector");
    options.sinkExcluded = a.has("--sink-excluded");
    options.outDir = a.get("--out").value_or("");
    if (options.sinkExcluded && !options.detector) {
        throw UsageError{"--sink-excluded goes with --detector"};
    }
    auto set = loadProbeSet(a.get("--set").value_or(defaultProbeSetPath()));
    if (!set) {
        throw Failure{set.error().message};
    }
    warnIfSlowBlas(err);
    auto model = loadModel(a, err);
    for (const auto &spec : options.settings) {
        if (auto ok = validateMitigation(spec, *model); !ok) {
            throw Failure{ok.error().message};
        }
    }
    return runProbeCommand(*model, *set, options, out, err);
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
        std::string help;
        std::vector<std::string> switches, valued;
        int (*fn)(const Args &, std::ostream &, std::ostream &);
    };
    std::map<std::string, Command> commands{
        {"info", {kInfoHelp, {"--json"}, {"--model"}, cmdInfo}},
        {"convert", {kConvertHelp, {}, {"-o", "--output"}, cmdConvert}},
        {"run", {kRunHelp, {"--json", "--bos", "--no-bos"}, {"--model", "--prompt", "--top-k", "--ids"}, cmdRun}},
        {"generate",
         {kGenerateHelp,
          {"--bos", "--no-bos"},
          {"--model", "--prompt", "-n", "--temperature", "--seed", "--ids"},
          cmdGenerate}},
        {"doctor", {kDoctorHelp, {"--json"}, {}, cmdDoctor}},
        {"analyze",
         {kAnalyzeHelp,
          {"--json", "--bos", "--no-bos", "--no-figures"},
          {"--model", "--prompt", "--ids", "--out", "--sinks", "--epsilon", "--threshold", "--path", "--format",
           "--heatmap-metric", "--top-heads"},
          cmdAnalyze}},
        {"stream-ppl",
         {kStreamPplHelp,
          {"--json", "--dense", "--recompute", "--sweep"},
          {"--model", "--text", "--tokens", "--window", "--sinks", "--csv", "--plot", "--replot"},
          cmdStreamPpl}},
        {"probe",
         {kProbeHelp,
          {"--json", "--detector", "--sink-excluded"},
          {"--model", "--set", "--compare", "--category", "--limit", "--out"},
          cmdProbe}},
        {"act-search",
         {kActSearchHelp,
          {"--json"},
          {"--model", "--text", "--prompt", "--layers", "--beta", "--thres", "--min-gain", "--top", "--max-tokens"},
          cmdActSearch}},
        {"compare",
         {compareHelp(),
          {"--json", "--bos", "--no-bos"},
          {"--model", "--prompt", "--mitigation", "--top-k", "-n", "--ids"},
          cmdCompare}},
        {"mitigations", {kMitigationsHelp, {"--markdown", "--json"}, {}, cmdMitigations}},
    };
    auto it = commands.find(cmd);
    if (it != commands.end() &&
        std::find(it->second.valued.begin(), it->second.valued.end(), "--model") != it->second.valued.end()) {
        it->second.valued.push_back("--device");
    }
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
