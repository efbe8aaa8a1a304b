// streamingllm-table1: Xiao et al.'s Table 1 shape (window, 4 sinks, 4 "\n" sinks) at a cache scaled to
// small models, with the StreamingLLM evaluation of the core (interventions/streaming.h).
#include "paper_tables.h"

#include "sinkscope/interventions/streaming.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>

namespace sinkscope::cli {
namespace {

constexpr const char *kDefaultText = "/usr/share/common-licenses/GPL-3";
constexpr int64_t kDefaultTokens = 1000;
constexpr int kDefaultCache = 128;
constexpr int kSinks = 4; // the paper's initial tokens

// Perplexity over the targets at positions >= `from` (nll[i] predicts position i + 1), NaN entries left out.
double pplFrom(const StreamingResult &r, int64_t from, int64_t *count)
{
    double sum = 0;
    *count = 0;
    for (size_t i = static_cast<size_t>(std::max<int64_t>(from - 1, 0)); i < r.nll.size(); ++i) {
        if (!std::isnan(r.nll[i])) {
            sum += r.nll[i];
            ++*count;
        }
    }
    return *count > 0 ? std::exp(sum / static_cast<double>(*count)) : std::nan("");
}

struct Column {
    const char *key;
    const char *suffix; // after the cache in the table's header
};
constexpr Column kColumns[] = {{"window", " (window)"}, {"sinks", " (StreamingLLM)"}, {"newline-sinks", ""}};

nlohmann::ordered_json runOneModel(const PaperModel &m, const std::string &textPath, const std::string &text,
                                   int64_t maxTokens, int cache, std::ostream &err)
{
    auto tok = m.model->tokenizer();
    if (!tok) {
        throw Failure{m.model->info().path + ": the model carries no tokenizer"};
    }
    std::vector<int64_t> tokens = tok->encode(text, EncodeOptions{});
    if (static_cast<int64_t>(tokens.size()) > maxTokens) {
        tokens.resize(static_cast<size_t>(maxTokens));
    }
    const auto n = static_cast<int64_t>(tokens.size());
    if (n <= cache + 1) {
        throw Failure{textPath + ": " + std::to_string(n) + " tokens for " + m.name + ", the cache of " +
                      std::to_string(cache) + " never fills (give --tokens above --cache, or a longer --text)"};
    }
    const std::vector<int64_t> newline = tok->encode("\n", EncodeOptions{.addBos = false, .parseSpecial = false});
    auto evaluator = StreamingEvaluator::create(m.model);
    if (!evaluator) {
        throw Failure{evaluator.error().message};
    }
    nlohmann::ordered_json model;
    model["model"] = m.name;
    model["family"] = m.family;
    model["path"] = m.given.empty() ? "(default model)" : m.given;
    model["tokens"] = n;
    model["newline_token"] = newline.size() == 1 ? nlohmann::ordered_json(newline[0]) : nlohmann::ordered_json();
    model["columns"] = nlohmann::ordered_json::array();
    for (const Column &c : kColumns) {
        nlohmann::ordered_json col;
        col["key"] = c.key;
        StreamingOptions options{.mode = StreamingMode::Cache, .sinks = kSinks, .window = cache - kSinks};
        if (std::string(c.key) == "window") {
            options.sinks = 0;
            options.window = cache;
        } else if (std::string(c.key) == "newline-sinks") {
            if (newline.size() != 1) {
                col["method"] = nullptr;
                col["not_computed"] = "the tokenizer encodes \"\\n\" as " + std::to_string(newline.size()) +
                                      " tokens, not one: there is no single newline token to put in the sinks";
                model["columns"].push_back(col);
                continue;
            }
            options.sinkTokens.assign(kSinks, newline[0]);
        }
        col["method"] = options.label();
        int lastQuarter = -1;
        auto progress = [&](double fraction, const std::string &) {
            const int quarter = static_cast<int>(fraction * 4);
            if (quarter != lastQuarter) {
                lastQuarter = quarter;
                err << "paper: " << m.name << ": " << options.label() << " " << quarter * 25 << "%\n";
            }
            return true;
        };
        auto r = (*evaluator)->run(tokens, options, nullptr, progress);
        if (!r) {
            throw Failure{m.name + ": " + r.error().message};
        }
        int64_t scored = 0, scoredFull = 0;
        // The same targets in every column: the text's own tokens after the sinks, and those decoded once
        // the cache is full (where eviction matters).
        col["ppl"] = jsonNumber(pplFrom(*r, kSinks, &scored));
        col["ppl_once_full"] = jsonNumber(pplFrom(*r, cache, &scoredFull));
        col["scored"] = scored;
        col["scored_once_full"] = scoredFull;
        col["seconds"] = r->seconds;
        col["tokens_per_second"] = r->tokensPerSecond;
        model["columns"].push_back(col);
    }
    return model;
}

} // namespace

PaperResult runStreamingTable1(const PaperSource &, const PaperRequest &request, std::ostream &err)
{
    const std::string textPath = request.text.empty() ? kDefaultText : request.text;
    const int64_t maxTokens = request.tokens.value_or(kDefaultTokens);
    const int cache = request.cache.value_or(kDefaultCache);
    std::ifstream in(textPath, std::ios::binary);
    if (!in) {
        throw Failure{textPath + ": cannot open the text file"};
    }
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    PaperResult result;
    result.json["protocol"] = {
        {"text", textPath},
        {"tokens", maxTokens},
        {"cache", cache},
        {"sinks", kSinks},
        {"sink_token", "\n"},
        {"caches",
         {"0+" + std::to_string(cache), "4+" + std::to_string(cache - kSinks),
          "4x\"\\n\"+" + std::to_string(cache - kSinks)}},
        {"evaluation", "StreamingLLM evaluation (sinkscope stream-ppl): teacher-forced decoding one token at a time, "
                       "rolling key/value cache, keys re-rotated with their positions inside the cache"},
        {"ppl", "over the text's tokens at positions 4..N-1 (the same targets in every column: the \"\\n\" column's "
                "first four tokens are not the text's)"},
        {"ppl_once_full", "over the tokens at positions C..N-1, decoded once the cache is full"},
        {"scaled", "the paper's cache of 1024 (on 65K tokens) is scaled to C for 135M-270M models and a text of N "
                   "tokens that a 2-core machine decodes in minutes"}};
    result.json["models"] = nlohmann::ordered_json::array();
    for (const auto &m : request.models) {
        result.json["models"].push_back(runOneModel(m, textPath, text, maxTokens, cache, err));
    }
    return result;
}

void renderStreamingTable1(const PaperSource &source, const nlohmann::ordered_json &output, std::ostream &out)
{
    const auto &rep = output["reproduced"];
    const auto &p = rep["protocol"];
    const int cache = p["cache"].get<int>();
    const auto &pub = source.data["protocol"];
    out << "Protocol (paper): " << source.data["rows"][0]["model"].get<std::string>() << ", " << pub.value("text", "")
        << ", cache " << pub.value("cache", 0) << ": 0+1024 (window), 4+1020, 4x\"\\n\"+1020.\n"
        << "Protocol (here): " << p["text"].get<std::string>() << ", first " << p["tokens"].get<int64_t>()
        << " tokens (fewer if the text is shorter), cache C = " << cache << " (scaled down from 1024 for these "
        << "models and a run of minutes), " << kSinks << " sinks; the StreamingLLM evaluation of stream-ppl.\n"
        << "PPL: perplexity over the text's tokens at positions 4..N-1; once full: over positions " << cache
        << "..N-1 (the same targets in every column).\n\n";
    size_t first = 34;
    const size_t width = 24;
    for (const auto &m : rep["models"]) {
        first = std::max(first, m["model"].get<std::string>().size() + 19);
    }
    out << padRight("model", first);
    for (size_t i = 0; i < std::size(kColumns); ++i) {
        out << padLeft(p["caches"][i].get<std::string>() + kColumns[i].suffix, width);
    }
    out << "\n";
    for (const auto &m : rep["models"]) {
        for (const char *which : {"ppl_once_full", "ppl"}) {
            const std::string label =
                m["model"].get<std::string>() + (std::string(which) == "ppl" ? " (PPL)" : " (PPL once full)");
            out << padRight(label, first);
            for (const auto &col : m["columns"]) {
                out << padLeft(col.contains("not_computed") ? "not computed"
                               : col[which].is_null()       ? "n/a"
                                                            : fixed(col[which].get<double>(), 2),
                               width);
            }
            out << "\n";
        }
    }
    for (const auto &row : source.data["rows"]) {
        out << padRight(row["model"].get<std::string>() + " (paper, cache 1024)", first);
        for (const auto &v : row["values"]) {
            out << padLeft(fixed(v.get<double>(), 2), width);
        }
        out << "\n";
    }
    for (const auto &m : rep["models"]) {
        for (const auto &col : m["columns"]) {
            if (col.contains("not_computed")) {
                out << m["model"].get<std::string>() << ": " << col["key"].get<std::string>()
                    << " not computed: " << col["not_computed"].get<std::string>() << "\n";
            }
        }
        out << m["model"].get<std::string>() << ": " << m["tokens"].get<int64_t>() << " tokens decoded per column, "
            << "\"\\n\" = token " << (m["newline_token"].is_null() ? "none" : m["newline_token"].dump()) << "; "
            << fixed(m["columns"][0]["tokens_per_second"].get<double>(), 1) << " tokens/s.\n";
    }
}

} // namespace sinkscope::cli
