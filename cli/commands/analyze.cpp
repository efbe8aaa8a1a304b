#include "cli_figures.h"
#include "commands.h"
#include "common.h"
#include "sinkscope/analysis/metrics.h"
#include "sinkscope/config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

namespace sinkscope::cli {
namespace {

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

} // namespace

Command analyzeCommand()
{
    return {"analyze",
            kAnalyzeHelp,
            {"--json", "--bos", "--no-bos", "--no-figures"},
            {"--model", "--prompt", "--ids", "--out", "--sinks", "--epsilon", "--threshold", "--path", "--format",
             "--heatmap-metric", "--top-heads"},
            cmdAnalyze};
}

} // namespace sinkscope::cli
