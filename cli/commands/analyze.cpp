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

struct AnalyzeOptions {
    ModelOptions model;
    TokenOptions tokens;
    MetricsOptions metrics; // epsilon and threshold; the rest set when the model is known
    std::string dir, sinks, path = "auto";
    std::string formats = figuresAvailable ? "png" : ""; // figures by default where they can be drawn
    std::string heatmapMetric = "first_token_mass";
    int topHeads = 4;
    bool json = false, noFigures = false;
};

constexpr const char *kProse =
    R"(Computes every sink metric (docs/metrics.md) for every layer and head and writes DIR/metrics.json (all
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
        if (!r && r.error().code == ErrorCode::OutOfMemory) {
            // The metrics and the other figures stand without the maps.
            log << "note: no head maps: " << r.error().message << "\n";
        } else if (!r) {
            throw Failure{r.error().message};
        } else {
            attention = std::move(r).value();
        }
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

int runAnalyze(const AnalyzeOptions &o, std::ostream &out, std::ostream &err)
{
    MetricsOptions options = o.metrics;
    int64_t materializeUpTo = kStreamingAboveTokens;
    options.sinkPositions = parseIds(o.sinks);
    if (o.path == "materialized") {
        options.path = MetricsPath::Materialized;
        materializeUpTo = std::numeric_limits<int64_t>::max();
    } else if (o.path == "streaming") {
        options.path = MetricsPath::Streaming;
        materializeUpTo = 0;
    }
    std::string problem;
    const std::vector<std::string> formats =
        o.noFigures ? std::vector<std::string>{} : parseFormatList(o.formats, &problem);
    const std::string &heatmapMetric = o.heatmapMetric;
    requirePromptOrIds(o.tokens); // before the model loads
    warnIfSlowBlas(err);
    DevicePlan device;
    auto model = loadModel(o.model, err, &device);
    options.device = device.kernelDevice; // the streaming statistics (the CUDA kernels on a GPU)
    const auto tokens = promptTokens(*model, o.tokens);
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
    std::filesystem::create_directories(o.dir, ec);
    const std::string json = (*metrics)->toJson();
    for (const auto &[name, text] :
         {std::pair{std::string("metrics.json"), json}, std::pair{std::string("heads.csv"), (*metrics)->headsCsv()}}) {
        writeOutputFile((std::filesystem::path(o.dir) / name).string(), text);
    }
    if (o.json) {
        out << json << "\n";
    } else {
        out << "wrote " << o.dir << "/metrics.json and " << o.dir << "/heads.csv (" << (*metrics)->layers
            << " layers x " << (*metrics)->heads << " heads, " << tokens.size() << " tokens, "
            << ((*metrics)->path == MetricsPath::Streaming ? "streaming" : "materialised") << " path)\n";
    }
    if (formats.empty()) {
        return 0;
    }
    if (!figuresAvailable) {
        throw Failure{"figures need a build with SINKSCOPE_BUILD_GUI=ON (this one has no Qt); " + o.dir +
                      "/metrics.json and heads.csv were written"};
    }
    writeAnalyzeFiguresFor(*model, tokens, *metrics, o.dir, formats, heatmapMetric, o.topHeads, o.json ? err : out);
    return 0;
}

} // namespace

Command addAnalyzeCommand(CLI::App &cli)
{
    auto o = std::make_shared<AnalyzeOptions>();
    CLI::App *cmd = cli.add_subcommand("analyze", "sink metrics for every layer and head: metrics.json and heads.csv");
    cmd->footer(kProse);
    addModelOptions(*cmd, o->model);
    addTokenOptions(*cmd, o->tokens);
    cmd->add_option("--out", o->dir, "the folder for metrics.json, heads.csv and the figures")
        ->type_name("DIR")
        ->required();
    cmd->add_option("--sinks", o->sinks, "the sink positions for sink_set_mass (default: the detected sinks)")
        ->type_name("LIST")
        ->check(idList());
    cmd->add_option("--epsilon", o->metrics.sinkEpsilon, "a head is a sink head when alpha_1 > epsilon")
        ->type_name("E")
        ->check(between(0.0, 1.0));
    cmd->add_option("--threshold", o->metrics.sinkThreshold,
                    "a key is a sink when its normalised received attention exceeds this")
        ->type_name("X")
        ->check(between(0.0, 1.0));
    cmd->add_option("--path", o->path,
                    "the attention statistics: auto (streaming for long prompts), materialized or streaming")
        ->type_name("PATH")
        ->check(oneOf({"auto", "materialized", "streaming"}));
    cmd->add_flag("--json", o->json, "also print metrics.json to stdout");
    auto *format = cmd->add_option("--format", o->formats, "figure formats, any of png,svg,pdf")
                       ->type_name("LIST")
                       ->check(figureFormatList());
    cmd->add_flag("--no-figures", o->noFigures, "metrics.json and heads.csv only")->excludes(format);
    cmd->add_option("--heatmap-metric", o->heatmapMetric, "the per-head metric of the heatmap and of the top heads")
        ->type_name("NAME");
    cmd->add_option("--top-heads", o->topHeads, "heads with the largest value of that metric to draw attention maps of")
        ->type_name("N")
        ->check(between(0, 64));
    return {cmd, [o](std::ostream &out, std::ostream &err) { return runAnalyze(*o, out, err); }};
}

} // namespace sinkscope::cli
