// gu-table1 and sun-massive: Gu et al.'s Sink_1^epsilon and Sun et al.'s layer-wise massive activations,
// both averaged over samples by the sink-profile core (analysis/profile.h: ProfileSampler's samples,
// runProfileModel's per-sample values, summarize()'s means and bootstrap intervals).
#include "paper_tables.h"

#include "sinkscope/analysis/profile.h"

#include <algorithm>
#include <cmath>

namespace sinkscope::cli {
namespace {

constexpr double kEpsilon = 0.3; // Gu et al.
constexpr int64_t kGuTokens = 64, kGuSamples = 100;
constexpr int64_t kSunTokens = 256, kSunSamples = 10;

nlohmann::ordered_json statJson(const ProfileStat &s)
{
    return {{"mean", jsonNumber(s.mean)}, {"low", jsonNumber(s.low)}, {"high", jsonNumber(s.high)}, {"n", s.n}};
}

std::string statText(const nlohmann::ordered_json &s, int digits)
{
    if (s["mean"].is_null()) {
        return "n/a";
    }
    std::string text = fixed(s["mean"].get<double>(), digits);
    if (!s["low"].is_null() && !s["high"].is_null()) {
        text += " [" + fixed(s["low"].get<double>(), digits) + ", " + fixed(s["high"].get<double>(), digits) + "]";
    }
    return text;
}

// The profile of one model on `dataList`, run by the core; progress lines go to `err`.
Profile profileOf(const PaperModel &m, const std::string &dataList, const ProfileSettings &settings, std::ostream &err)
{
    auto sets = parseProfileDataList(dataList);
    if (!sets) {
        throw Failure{sets.error().message};
    }
    const ModelConfig &config = m.model->config();
    if (config.contextLength > 0 && settings.tokens > config.contextLength) {
        throw Failure{"--tokens " + std::to_string(settings.tokens) + " is longer than " + m.name + "'s context (" +
                      std::to_string(config.contextLength) + " tokens)"};
    }
    std::vector<ProfileTexts> texts;
    for (const auto &set : *sets) {
        auto loaded = loadProfileTexts(set);
        if (!loaded) {
            throw Failure{loaded.error().message};
        }
        texts.push_back(std::move(loaded).value());
    }
    Profile profile;
    profile.settings = settings;
    profile.data = *sets;
    profile.createdBy = "sinkscope-cli paper";
    ProfileModel info;
    info.key = m.name;
    info.path = m.given;
    info.name = m.name;
    info.family = m.family;
    info.layers = config.layers;
    info.heads = config.heads;
    profile.models.push_back(info);
    ProfileRunHooks hooks;
    hooks.log = [&](const std::string &line) { err << "paper: " << line << "\n"; };
    if (Status s = runProfileModel(*m.model, info, texts, profile, hooks); !s) {
        throw Failure{m.name + ": " + s.error().message};
    }
    return profile;
}

// One cell's summaries (the bootstrap of every value, computed once) and its layout.
struct CellSummary {
    const ProfileCell *cell = nullptr;
    std::vector<ProfileStat> stats;

    // The summaries of one block: its values' mean, count and interval.
    std::vector<ProfileStat> block(const std::string &name) const
    {
        const ProfileBlock *b = cell->layout.block(name);
        if (!b) {
            throw Failure{cell->model + ": the profile layout lacks " + name};
        }
        return {stats.begin() + b->offset, stats.begin() + b->offset + b->size};
    }
};

CellSummary summaryOf(const Profile &profile, const std::string &model, const std::string &data)
{
    const ProfileCell *cell = profile.cell(model, data);
    if (!cell) {
        throw Failure{model + ": the profile has no " + data + " samples"};
    }
    return {cell, summarize(*cell, profile.settings)};
}

nlohmann::ordered_json modelJson(const PaperModel &m)
{
    return {{"model", m.name},
            {"family", m.family},
            {"path", m.given.empty() ? "(default model)" : m.given},
            {"layers", m.model->config().layers},
            {"heads", m.model->config().heads}};
}

ProfileSettings settingsFor(const PaperRequest &request, int64_t samples, int64_t tokens)
{
    ProfileSettings s;
    s.samples = request.samples.value_or(samples);
    s.tokens = request.tokens.value_or(tokens);
    s.seed = request.seed;
    s.epsilon = kEpsilon;
    s.bootstrap = request.bootstrap;
    s.confidence = 0.95;
    return s;
}

} // namespace

PaperResult runGuTable1(const PaperSource &, const PaperRequest &request, std::ostream &err)
{
    const ProfileSettings settings = settingsFor(request, kGuSamples, kGuTokens);
    PaperResult result;
    result.json["protocol"] = {
        {"epsilon", settings.epsilon},
        {"tokens", settings.tokens},
        {"samples", settings.samples},
        {"seed", settings.seed},
        {"bootstrap", settings.bootstrap},
        {"confidence", settings.confidence},
        {"natural", "paragraph-start windows of the licence texts in /usr/share/common-licenses"},
        {"random", "T ids uniform over the vocabulary, no BOS"},
        {"repeated", "one id uniform over the vocabulary, T times, no BOS"},
        {"metric", "model.sink_1 of the profile: % of heads with alpha_1 > epsilon, per "
                   "sample; mean over samples and percentile bootstrap interval"}};
    result.json["models"] = nlohmann::ordered_json::array();
    for (const auto &m : request.models) {
        const Profile profile = profileOf(m, "natural,random,repeated", settings, err);
        nlohmann::ordered_json j = modelJson(m);
        for (const char *data : {"natural", "random", "repeated"}) {
            const CellSummary summary = summaryOf(profile, m.name, data);
            j[data] = statJson(summary.block("model.sink_1").at(0));
            j[data]["distinct"] = profile.cell(m.name, data)->distinct;
        }
        result.json["models"].push_back(j);
    }
    return result;
}

void renderGuTable1(const PaperSource &source, const nlohmann::ordered_json &output, std::ostream &out)
{
    const auto &p = output["reproduced"]["protocol"];
    const auto &pub = source.data["protocol"];
    out << "Protocol (paper): Sink_1^" << pub["epsilon"].dump()
        << " (% of heads with alpha_1 > epsilon), T = " << pub["tokens"].dump() << ", " << pub["samples"].dump()
        << " samples per data set, eager attention.\n"
        << "Protocol (here): Sink_1^" << p["epsilon"].dump() << ", T = " << p["tokens"].dump() << ", "
        << p["samples"].dump() << " samples per data set (seed " << p["seed"].dump()
        << "); natural: " << p["natural"].get<std::string>() << "; random / repeated: ids uniform over the "
        << "vocabulary, no BOS. Reproduced cells: mean [" << static_cast<int>(p["confidence"].get<double>() * 100)
        << "% bootstrap interval, " << p["bootstrap"].dump() << " resamples].\n\n";
    size_t first = 16;
    const size_t width = 24;
    for (const auto &m : output["reproduced"]["models"]) {
        first = std::max(first, m["model"].get<std::string>().size() + 9);
    }
    for (const auto &row : source.data["rows"]) {
        first = std::max(first, row["model"].get<std::string>().size() + 10);
    }
    out << padRight("model", first);
    for (const auto &c : source.data["columns"]) {
        out << padLeft(c.get<std::string>(), width);
    }
    out << "\n";
    for (const auto &m : output["reproduced"]["models"]) {
        out << padRight(m["model"].get<std::string>() + " (here)", first);
        for (const auto &c : source.data["columns"]) {
            out << padLeft(statText(m[c.get<std::string>()], 2), width);
        }
        out << "\n";
    }
    for (const auto &row : source.data["rows"]) {
        out << padRight(row["model"].get<std::string>() + " (paper)", first);
        for (const auto &v : row["values"]) {
            out << padLeft(fixed(v.get<double>(), 2), width);
        }
        out << "\n";
    }
    for (const auto &m : output["reproduced"]["models"]) {
        const int64_t distinct = m["natural"]["distinct"].get<int64_t>();
        if (distinct >= 0 && distinct < p["samples"].get<int64_t>()) {
            out << m["model"].get<std::string>() << ": natural has " << distinct
                << " distinct paragraph starts of T tokens; the samples repeat them.\n";
        }
    }
}

PaperResult runSunMassive(const PaperSource &, const PaperRequest &request, std::ostream &err)
{
    const ProfileSettings settings = settingsFor(request, kSunSamples, kSunTokens);
    PaperResult result;
    result.json["protocol"] = {{"samples", settings.samples},
                               {"tokens", settings.tokens},
                               {"seed", settings.seed},
                               {"bootstrap", settings.bootstrap},
                               {"confidence", settings.confidence},
                               {"data", "natural: paragraph-start windows of the licence texts in "
                                        "/usr/share/common-licenses (the tokenizer's BOS policy)"},
                               {"hidden", "the residual stream after each decoder layer (SinkMetrics M6)"},
                               {"layers", "counted from 0 (Sun et al. count from 1: their layer 2 is layer 1 here)"},
                               {"metric", "layer.massive_top1..3 and layer.massive_median of the profile, per "
                                          "sample; mean over samples (as main_llm.py --exp2 averages its 10 "
                                          "sequences)"}};
    result.json["models"] = nlohmann::ordered_json::array();
    for (const auto &m : request.models) {
        const Profile profile = profileOf(m, "natural", settings, err);
        nlohmann::ordered_json j = modelJson(m);
        const CellSummary natural = summaryOf(profile, m.name, "natural");
        const auto top1 = natural.block("layer.massive_top1");
        const auto top2 = natural.block("layer.massive_top2");
        const auto top3 = natural.block("layer.massive_top3");
        const auto median = natural.block("layer.massive_median");
        j["per_layer"] = nlohmann::ordered_json::array();
        for (size_t l = 0; l < top1.size(); ++l) {
            j["per_layer"].push_back({{"layer", l},
                                      {"top1", statJson(top1[l])},
                                      {"top2", statJson(top2[l])},
                                      {"top3", statJson(top3[l])},
                                      {"median", statJson(median[l])},
                                      {"ratio", jsonNumber(top1[l].mean / median[l].mean)}});
        }
        result.json["models"].push_back(j);
    }
    return result;
}

void renderSunMassive(const PaperSource &source, const nlohmann::ordered_json &output, std::ostream &out)
{
    const auto &p = output["reproduced"]["protocol"];
    const auto &pub = source.data["protocol"];
    out << "Protocol (paper): per layer, the top-3 and the median |h| of the decoder-layer output, averaged over "
        << pub["sequences"].dump() << " sequences (" << pub["data"].get<std::string>() << ").\n"
        << "Protocol (here): the same statistics over " << p["samples"].dump()
        << " samples of T = " << p["tokens"].dump() << " tokens (seed " << p["seed"].dump() << "), "
        << p["data"].get<std::string>() << "; mean over samples, top-1 and median with ["
        << static_cast<int>(p["confidence"].get<double>() * 100) << "% bootstrap interval]. Layers counted from 0.\n";
    for (const auto &m : output["reproduced"]["models"]) {
        out << "\n"
            << m["model"].get<std::string>() << " (here)\n"
            << padLeft("layer", 6) << padLeft("top-1 |h|", 28) << padLeft("top-2", 11) << padLeft("top-3", 11)
            << padLeft("median |h|", 26) << padLeft("top-1/median", 14) << "\n";
        for (const auto &l : m["per_layer"]) {
            out << padLeft(l["layer"].dump(), 6) << padLeft(statText(l["top1"], 1), 28)
                << padLeft(statText({{"mean", l["top2"]["mean"]}, {"low", nullptr}, {"high", nullptr}}, 1), 11)
                << padLeft(statText({{"mean", l["top3"]["mean"]}, {"low", nullptr}, {"high", nullptr}}, 1), 11)
                << padLeft(statText(l["median"], 3), 26)
                << padLeft(l["ratio"].is_null() ? "n/a" : fixed(l["ratio"].get<double>(), 0), 14) << "\n";
        }
    }
    out << "\nPublished (" << source.text("provenance") << "):\n"
        << padRight("model", 12) << padLeft("layer", 7) << padLeft("token", 13) << padLeft("dim", 6)
        << padLeft("value", 10) << "\n";
    for (const auto &row : source.data["rows"]) {
        out << padRight(row["model"].get<std::string>(), 12) << padLeft(row["layer"].dump(), 7)
            << padLeft(row["token"].get<std::string>(), 13) << padLeft(row["dim"].dump(), 6)
            << padLeft(fixed(row["value"].get<double>(), 2), 10) << "\n";
    }
    out << "Their layer 2 (counted from 1) is layer 1 here. The paper's per-layer top-3 and median curves (Fig. 2) "
           "are a figure; SINKS.md gives no numbers for them, so only these values are shown.\n";
}

} // namespace sinkscope::cli
