#include "commands.h"
#include "common.h"
#include "paper_tables.h"

#include "sinkscope/config.h"
#include "sinkscope/runtime/paths.h"

#include <chrono>
#include <ctime>
#include <filesystem>

namespace sinkscope::cli {
namespace {

struct PaperOptions {
    std::string id;
    std::vector<std::string> models;
    std::string device = "cpu";
    int64_t samples = 0, tokens = 0;
    int cache = 0;
    uint64_t seed = 0;
    std::string text;
    bool json = false;
    CLI::Option *samplesOption = nullptr, *tokensOption = nullptr, *cacheOption = nullptr, *textOption = nullptr,
                *seedOption = nullptr;
};

constexpr const char *kProse =
    R"(Reproduces a published table's protocol on the installed (or given) models and prints the reproduced rows
next to the published ones, with the source. The published rows are data files with their citations
(<data>/papers/<id>.json, <data> being share/sinkscope beside the program); the reproduced rows are
computed live, every time. 'paper LIST' lists the tables, what each reproduces and how long it takes.

Models: every --model given, in order; without --model the installed models: SmolLM2-135M-Instruct (the
default model) and Gemma 3 270M when tools/setup.sh installed it (provided under and subject to the Gemma
Terms of Use, https://ai.google.dev/gemma/terms).

Text: the protocol as run, the table (reproduced rows, then the paper's), the source and the runtime.
JSON (--json): keys id, source, published (protocol, columns, rows as in the data file), reproduced
(computed_live, protocol, models: one object per model), seconds, notices. Progress goes to stderr.
)";

std::string joinedIds()
{
    std::string ids = "LIST";
    for (const auto &t : paperTables()) {
        ids += std::string(", ") + t.id;
    }
    return ids;
}

const PaperTable &tableFor(const std::string &id)
{
    for (const auto &t : paperTables()) {
        if (id == t.id) {
            return t;
        }
    }
    throw UsageError{"unknown table '" + id + "'; the tables are " + joinedIds()};
}

int listTables(const PaperOptions &o, std::ostream &out)
{
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const auto &t : paperTables()) {
        const PaperSource source = loadPaperSource(t.id);
        list.push_back({{"id", t.id},
                        {"title", source.text("title")},
                        {"citation", source.citation()},
                        {"reproduces", source.text("reproduces")},
                        {"duration", t.duration},
                        {"options", t.options},
                        {"file", source.file}});
    }
    if (o.json) {
        out << nlohmann::ordered_json{{"tables", list}}.dump(2) << "\n";
        return 0;
    }
    out << "Published tables sinkscope-cli paper reproduces (data: " << papersDir() << "):\n";
    for (const auto &t : list) {
        out << "\n"
            << t["id"].get<std::string>() << "\n"
            << "  source:     " << t["citation"].get<std::string>() << "\n"
            << "  reproduces: " << t["reproduces"].get<std::string>() << "\n"
            << "  takes:      " << t["duration"].get<std::string>() << "\n"
            << "  options:    " << t["options"].get<std::string>() << "\n";
    }
    return 0;
}

std::string gemmaNotice(const std::string &family)
{
    if (family != "gemma3") {
        return {};
    }
    const std::string terms = gemma3TermsPath();
    return "Gemma is provided under and subject to the Gemma Terms of Use (https://ai.google.dev/gemma/terms" +
           (terms.empty() ? std::string() : "; a copy: " + terms) + ").";
}

std::vector<PaperModel> loadPaperModels(const PaperOptions &o, std::ostream &err)
{
    std::vector<std::string> given = o.models;
    if (given.empty()) {
        given.emplace_back(); // the default model
        if (const std::string gemma = gemma3GgufPath(); !gemma.empty()) {
            given.push_back(gemma);
        }
    }
    std::vector<PaperModel> models;
    for (const auto &path : given) {
        PaperModel m;
        m.given = path;
        m.model = loadModel(ModelOptions{.model = path, .device = o.device}, err);
        m.name = m.model->config().name;
        m.family = architectureName(m.model->config().architecture);
        m.notice = gemmaNotice(m.family);
        if (!m.notice.empty()) {
            err << "paper: " << m.name << ": " << m.notice << "\n";
        }
        models.push_back(std::move(m));
    }
    return models;
}

std::string today()
{
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    return buf;
}

int runPaper(const PaperOptions &o, std::ostream &out, std::ostream &err)
{
    if (o.id == "LIST" || o.id == "list") {
        return listTables(o, out);
    }
    const PaperTable &table = tableFor(o.id);
    // Options a table does not read are refused rather than silently ignored.
    const std::string reads = table.options;
    for (const auto &[option, name] :
         {std::pair{o.samplesOption, "--samples"}, std::pair{o.tokensOption, "--tokens"},
          std::pair{o.cacheOption, "--cache"}, std::pair{o.textOption, "--text"}, std::pair{o.seedOption, "--seed"}}) {
        if (option->count() > 0 && reads.find(name) == std::string::npos) {
            throw UsageError{std::string(name) + " does not apply to " + table.id + " (it reads " + reads + ")"};
        }
    }
    const PaperSource source = loadPaperSource(table.id);
    PaperRequest request;
    if (o.samplesOption->count() > 0) {
        request.samples = o.samples;
    }
    if (o.tokensOption->count() > 0) {
        request.tokens = o.tokens;
    }
    if (o.cacheOption->count() > 0) {
        request.cache = o.cache;
    }
    request.text = o.text;
    request.seed = o.seed;
    warnIfSlowBlas(err);
    const auto start = std::chrono::steady_clock::now();
    request.models = loadPaperModels(o, err);
    PaperResult result = table.run(source, request, err);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    nlohmann::ordered_json notices = nlohmann::ordered_json::array();
    for (const auto &m : request.models) {
        if (!m.notice.empty()) {
            notices.push_back(m.name + ": " + m.notice);
        }
    }
    nlohmann::ordered_json j;
    j["id"] = table.id;
    j["source"] = {{"citation", source.citation()}};
    for (const char *key : {"title", "authors", "venue", "year", "arxiv", "url", "code", "table", "provenance"}) {
        j["source"][key] = source.data.value(key, nlohmann::ordered_json());
    }
    j["source"]["file"] = source.file;
    j["published"] = {
        {"protocol", source.data["protocol"]}, {"columns", source.data["columns"]}, {"rows", source.data["rows"]}};
    j["reproduced"] = result.json;
    j["reproduced"]["computed_live"] = true;
    j["reproduced"]["by"] = std::string("sinkscope-cli ") + SINKSCOPE_VERSION;
    j["reproduced"]["date"] = today();
    j["seconds"] = seconds;
    j["notices"] = notices;
    if (o.json) {
        out << j.dump(2) << "\n";
        return 0;
    }
    out << source.text("title") << " — " << source.text("table") << " (" << table.id << ")\n"
        << "Source: " << source.citation() << ". " << source.text("url") << "; code " << source.text("code")
        << ". Published rows: " << source.text("provenance") << ".\n\n";
    table.render(source, j, out);
    out << "\nReproduced rows: computed live by sinkscope-cli " << SINKSCOPE_VERSION << " on " << today()
        << ", runtime " << fixed(seconds, 1)
        << " s (models loaded, all rows). Published rows: " << std::filesystem::path(source.file).filename().string()
        << ".\n";
    for (const auto &n : notices) {
        out << n.get<std::string>() << "\n";
    }
    return 0;
}

} // namespace

Command addPaperCommand(CLI::App &cli)
{
    auto o = std::make_shared<PaperOptions>();
    CLI::App *cmd = cli.add_subcommand("paper", "reproduce a published table (Gu et al., StreamingLLM, Sun et al.) "
                                                "next to the paper's numbers");
    cmd->footer(kProse);
    cmd->add_option("table", o->id, "LIST, or the table to reproduce: " + joinedIds())
        ->type_name("LIST|ID")
        ->required();
    cmd->add_option("--model", o->models, "a model to run (repeat for several); default: the installed models")
        ->type_name("M")
        ->expected(1)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    cmd->add_option("--device", o->device, "cpu, cuda or cuda:N")->type_name("DEVICE");
    o->samplesOption =
        cmd->add_option("--samples", o->samples, "samples per data set (gu-table1: 100, sun-massive: 10)")
            ->type_name("N")
            ->check(between<int64_t>(1, 100000))
            ->default_str("the paper's");
    o->tokensOption = cmd->add_option("--tokens", o->tokens,
                                      "tokens per sample (gu-table1: 64, sun-massive: 256); streamingllm-table1: "
                                      "tokens of the text to evaluate (1000)")
                          ->type_name("T")
                          ->check(between<int64_t>(2, 1000000))
                          ->default_str("the table's");
    o->cacheOption = cmd->add_option("--cache", o->cache, "streamingllm-table1: the total cache C (128)")
                         ->type_name("C")
                         ->check(between(8, 1000000))
                         ->default_str("128");
    o->textOption =
        cmd->add_option("--text", o->text, "streamingllm-table1: the text (default /usr/share/common-licenses/GPL-3)")
            ->type_name("FILE");
    o->seedOption = cmd->add_option("--seed", o->seed, "seed of the samples and the bootstrap")->type_name("S");
    cmd->add_flag("--json", o->json, "print JSON instead of text");
    return {cmd, [o](std::ostream &out, std::ostream &err) { return runPaper(*o, out, err); }};
}

} // namespace sinkscope::cli
