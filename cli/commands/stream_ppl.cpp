#include "cli_figures.h"
#include "commands.h"
#include "common.h"

#include "sinkscope/common/csv.h"
#include "sinkscope/interventions/streaming.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

namespace sinkscope::cli {
namespace {

struct StreamPplOptions {
    ModelOptions model;
    std::string text, csv, plot, replot;
    int window = 256, sinks = 0;
    int64_t tokens = 0; // 0: the whole text
    bool dense = false, recompute = false, sweep = false, json = false;
    CLI::Option *windowOption = nullptr, *sinksOption = nullptr; // whether each was given
};

constexpr const char *kProse =
    R"(The StreamingLLM evaluation (Xiao et al., ICLR 2024): decodes the text one token at a time with a real
rolling key/value cache (keys cached before RoPE and re-rotated with their positions inside the cache)
and records the NLL of every next token. The token being decoded sees at most S + W keys, itself
included: the first S tokens and the W most recent ones.

With --text FILE, one of: --dense | --window W [--sinks S] [--recompute] | --sweep [--window C].
--replot RUNS.json[,RUNS.json...] [--csv FILE] [--plot FILE] redraws earlier runs instead.

Text: perplexity over all tokens and over the tokens decoded once the cache is full, tokens per second.
JSON: one object per method with keys method, sinks, window, tokens, ppl, ppl_after_cache, mean_nll,
seconds, tokens_per_second and nll (per token, nats); --sweep prints {"runs": [...]}.
)";

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

// --csv (per-token NLL, one column per method) and --plot (log PPL so far against position).
void writeStreamOutputs(const StreamPplOptions &o, const std::vector<StreamingResult> &results,
                        const std::string &modelName, const std::string &textName, std::ostream &err)
{
    if (!o.csv.empty()) {
        std::ostringstream f;
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
        writeOutputFile(o.csv, f.str());
    }
    if (!o.plot.empty()) {
        if (!figuresAvailable) {
            throw Failure{"--plot needs a build with SINKSCOPE_BUILD_GUI=ON (this one has no Qt)"};
        }
        // The window's Streaming tab draws the same curves (trailingMeanNll, nllCurveSpan).
        size_t longest = 0;
        for (const auto &r : results) {
            longest = std::max(longest, r.nll.size());
        }
        const size_t span = nllCurveSpan(longest);
        LineFigure figure;
        figure.path = o.plot;
        figure.title = "NLL against position (" + std::to_string(longest) + " tokens, mean over the last " +
                       std::to_string(span) + ")";
        figure.xLabel = "position (tokens decoded)";
        figure.yLabel = "NLL, trailing mean over " + std::to_string(span) + " tokens (nats)";
        figure.caption = "Model: " + modelName + ". Text: " + textName +
                         ". Per-token NLL of each cache policy (StreamingLLM evaluation, Xiao et al. 2024), averaged "
                         "over the previous " +
                         std::to_string(span) + " positions. sinkscope-cli stream-ppl.";
        for (const auto &r : results) {
            NllCurve curve = trailingMeanNll(r, span);
            figure.names.push_back(r.options.label());
            figure.x.push_back(std::move(curve.position));
            figure.y.push_back(std::move(curve.nll));
        }
        std::string error;
        if (!writeLineFigure(figure, &error)) {
            throw Failure{error};
        }
        err << "stream-ppl: wrote " << o.plot << "\n";
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

int runStreamPpl(const StreamPplOptions &o, std::ostream &out, std::ostream &err)
{
    if (!o.replot.empty()) {
        std::string modelName = "?", textName = "?";
        auto results = readStreamRuns(o.replot, &modelName, &textName);
        writeStreamOutputs(o, results, modelName, textName, err);
        return 0;
    }
    warnIfSlowBlas(err);
    if (o.text.empty()) {
        throw UsageError{"--text FILE is required"};
    }
    const bool sweep = o.sweep, dense = o.dense, window = o.windowOption->count() > 0 && !sweep;
    if (static_cast<int>(sweep) + static_cast<int>(dense) + static_cast<int>(window) != 1) {
        throw UsageError{"choose one of --dense, --window W or --sweep"};
    }
    if ((o.sinksOption->count() > 0 || o.recompute) && !window) {
        throw UsageError{"--sinks and --recompute go with --window W"};
    }
    if (sweep && o.window < 2) {
        throw UsageError{"--window: the sweep needs a cache of at least 2 tokens"};
    }
    std::ifstream in(o.text, std::ios::binary);
    if (!in) {
        throw Failure{o.text + ": cannot open the text file"};
    }
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    auto model = loadModel(o.model, err);
    auto tok = model->tokenizer();
    if (!tok) {
        throw Failure{model->info().path + ": the model carries no tokenizer"};
    }
    const std::vector<int64_t> tokens = tok->encode(text, EncodeOptions{});
    if (tokens.size() < 2) {
        throw Failure{o.text + ": the text has fewer than two tokens"};
    }
    std::vector<StreamingOptions> runs;
    if (sweep) {
        runs = standardStreamingSweep(o.window);
    } else if (dense) {
        runs.push_back({.mode = StreamingMode::Dense, .sinks = 0, .window = 0});
    } else {
        runs.push_back({.mode = o.recompute ? StreamingMode::Recompute : StreamingMode::Cache,
                        .sinks = o.sinks,
                        .window = o.window});
    }
    auto evaluator = StreamingEvaluator::create(model);
    if (!evaluator) {
        throw Failure{evaluator.error().message};
    }
    std::vector<StreamingResult> results;
    for (auto &policy : runs) {
        policy.maxTokens = o.tokens;
        if (sweep) {
            err << "stream-ppl: " << policy.label() << "...\n";
        }
        auto r = (*evaluator)->run(tokens, policy);
        if (!r) {
            throw Failure{r.error().message};
        }
        results.push_back(std::move(r).value());
    }
    writeStreamOutputs(o, results, model->config().name, std::filesystem::path(o.text).filename().string(), err);
    if (o.json) {
        if (!sweep) {
            auto j = streamJson(results.front(), perplexityOnceFull(results.front()));
            j["model"] = model->config().name;
            j["text"] = o.text;
            out << j.dump(2) << "\n";
        } else {
            nlohmann::ordered_json j;
            j["text"] = o.text;
            j["model"] = model->config().name;
            j["runs"] = nlohmann::ordered_json::array();
            for (const auto &r : results) {
                j["runs"].push_back(streamJson(r, perplexityOnceFull(r)));
            }
            out << j.dump(2) << "\n";
        }
        return 0;
    }
    out << o.text << ": " << results.front().tokens << " tokens, model " << model->config().name << "\n";
    out << "  method               ppl    ppl once full   tokens/s\n";
    for (const auto &r : results) {
        std::string label = r.options.label();
        label.resize(std::max<size_t>(label.size(), 18), ' ');
        out << "  " << label << std::fixed << std::setprecision(2) << std::setw(8) << r.perplexity << std::setw(16)
            << perplexityOnceFull(r) << std::setw(11) << std::setprecision(1) << r.tokensPerSecond << "\n";
    }
    return 0;
}

} // namespace

Command addStreamPplCommand(CLI::App &cli)
{
    auto o = std::make_shared<StreamPplOptions>();
    CLI::App *cmd = cli.add_subcommand(
        "stream-ppl", "the StreamingLLM evaluation: per-token NLL with a rolling KV cache (dense, window, sinks)");
    cmd->footer(kProse);
    auto *text = cmd->add_option("--text", o->text, "the text to evaluate")->type_name("FILE");
    addModelOptions(*cmd, o->model);
    cmd->add_option("--tokens", o->tokens, "evaluate the first N tokens of the text")
        ->type_name("N")
        ->check(between<int64_t>(2, 1000000000))
        ->default_str("all");
    auto *dense = cmd->add_flag("--dense", o->dense, "no eviction: the attention span grows with the text");
    o->windowOption =
        cmd->add_option("--window", o->window, "keep the W most recent tokens; with --sweep the total cache C")
            ->type_name("W")
            ->check(between(1, 10000000));
    o->sinksOption = cmd->add_option("--sinks", o->sinks, "with --window: also keep the first S tokens")
                         ->type_name("S")
                         ->check(between(0, 10000000));
    cmd->add_flag("--recompute", o->recompute,
                  "sliding window with re-computation: rerun the S + W context from scratch every token");
    auto *sweep = cmd->add_flag("--sweep", o->sweep,
                                "the standard set at a total cache C (--window): dense, window 0+C, sinks S+(C-S)\n"
                                "for S = 1, 2, 4, 8, and re-computation 0+C");
    cmd->add_option("--csv", o->csv, "write the per-token NLL there, one column per method")->type_name("FILE");
    cmd->add_option("--plot", o->plot,
                    "draw NLL against position there (.png, .svg or .pdf), one line per method; needs the GUI build")
        ->type_name("FILE");
    auto *json = cmd->add_flag("--json", o->json, "print JSON instead of text");
    cmd->add_option("--replot", o->replot,
                    "redraw --plot/--csv from earlier --json outputs, a run or a sweep each, without the model")
        ->type_name("RUNS.json[,...]")
        ->excludes(text)
        ->excludes(dense)
        ->excludes(o->windowOption)
        ->excludes(sweep)
        ->excludes(json);
    return {cmd, [o](std::ostream &out, std::ostream &err) { return runStreamPpl(*o, out, err); }};
}

} // namespace sinkscope::cli
