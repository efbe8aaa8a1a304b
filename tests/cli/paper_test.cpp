// sinkscope-cli paper as a user runs it, on the tiny Llama: the list, the errors, and every table's live
// rows against the same numbers computed here with the core, and its published rows against the data file.
#include "support/cli_runner.h"
#include "support/test_paths.h"
#include "support/tiny_models.h"

#include "sinkscope/analysis/metrics.h"
#include "sinkscope/analysis/profile.h"
#include "sinkscope/interventions/streaming.h"
#include "sinkscope/model/model.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

using namespace sinkscope;
namespace st = sinkscope::testing;

namespace {

const std::vector<std::string> kTables = {"gu-table1", "streamingllm-table1", "sun-massive"};

st::CliRun cli(const std::vector<std::string> &args)
{
    return st::runCli(args, "SINKSCOPE_TORCH_THREADS=1");
}

// The data file the CLI reads from the build tree's data folder (a link to resources/papers).
nlohmann::json dataFile(const std::string &id)
{
    const auto path = std::filesystem::path(SINKSCOPE_CLI_PATH).parent_path() / ".." / "share" / "sinkscope" /
                      "papers" / (id + ".json");
    std::ifstream in(path);
    EXPECT_TRUE(in) << path;
    return nlohmann::json::parse(in);
}

class PaperCli : public ::testing::Test
{
protected:
    static void SetUpTestSuite()
    {
        s_dir = std::make_unique<st::TempDir>();
        const st::CliRun r = st::convertTinyLlama(*s_dir);
        ASSERT_EQ(r.code, 0) << r.err;
        std::ofstream text(s_dir->file("text.txt"));
        for (int i = 0; i < 6; ++i) {
            text << "the cat sat on the mat and then the dog ran to the park to see the ducks.\n";
        }
    }
    static void TearDownTestSuite() { s_dir.reset(); }
    static std::string model() { return s_dir->file("tiny.pt"); }
    static std::string textFile() { return s_dir->file("text.txt"); }
    static std::shared_ptr<const Model> loaded()
    {
        auto m = Model::load(model());
        EXPECT_TRUE(m) << m.error().message;
        return m ? *m : nullptr;
    }
    static std::unique_ptr<st::TempDir> s_dir;
};
std::unique_ptr<st::TempDir> PaperCli::s_dir;

// Every published row of the output equals the data file's, with the citation fields.
void expectPublishedRowsFromTheDataFile(const nlohmann::json &out, const std::string &id)
{
    const nlohmann::json data = dataFile(id);
    EXPECT_EQ(out["id"], id);
    EXPECT_EQ(out["published"]["rows"], data["rows"]);
    EXPECT_EQ(out["published"]["protocol"], data["protocol"]);
    for (const char *key : {"title", "authors", "venue", "year", "arxiv", "url"}) {
        EXPECT_EQ(out["source"][key], data[key]) << key;
    }
    EXPECT_EQ(out["reproduced"]["computed_live"], true);
    EXPECT_GT(out["seconds"].get<double>(), 0);
}

// The samples of one data set as ProfileSampler gives them, each analysed with analyzeTokens (what the
// table's numbers must equal, computed without the CLI or the profile's run and summaries).
std::vector<std::shared_ptr<const SinkMetrics>> analysedSamples(const Model &model, const std::string &data,
                                                                const ProfileSettings &settings)
{
    auto sets = parseProfileDataList(data);
    EXPECT_TRUE(sets);
    auto texts = loadProfileTexts(sets->front());
    EXPECT_TRUE(texts) << texts.error().message;
    auto sampler =
        ProfileSampler::create(&*texts, sets->front(), model.tokenizer().get(), model.config().vocabSize, settings);
    EXPECT_TRUE(sampler) << sampler.error().message;
    std::vector<std::shared_ptr<const SinkMetrics>> out;
    for (int64_t i = 0; i < settings.samples; ++i) {
        auto ids = sampler->sample(i);
        EXPECT_TRUE(ids && *ids);
        MetricsOptions options;
        options.sinkEpsilon = settings.epsilon;
        auto metrics = analyzeTokens(model, **ids, options);
        EXPECT_TRUE(metrics) << metrics.error().message;
        out.push_back(*metrics);
    }
    return out;
}

} // namespace

TEST_F(PaperCli, ListNamesEveryTableWithItsSourceWhatItReproducesAndHowLong)
{
    const st::CliRun r = cli({"paper", "LIST"});
    ASSERT_EQ(r.code, 0) << r.err;
    for (const auto &id : kTables) {
        const nlohmann::json data = dataFile(id);
        EXPECT_NE(r.out.find("\n" + id + "\n"), std::string::npos) << id;
        EXPECT_NE(r.out.find(data["title"].get<std::string>()), std::string::npos) << id;
        EXPECT_NE(r.out.find(data["reproduces"].get<std::string>()), std::string::npos) << id;
        EXPECT_NE(r.out.find("arXiv " + data["arxiv"].get<std::string>()), std::string::npos) << id;
    }
    EXPECT_NE(r.out.find("takes:"), std::string::npos);

    const st::CliRun j = cli({"paper", "LIST", "--json"});
    ASSERT_EQ(j.code, 0) << j.err;
    const auto list = nlohmann::json::parse(j.out)["tables"];
    ASSERT_EQ(list.size(), kTables.size());
    for (size_t i = 0; i < kTables.size(); ++i) {
        EXPECT_EQ(list[i]["id"], kTables[i]);
        EXPECT_FALSE(list[i]["duration"].get<std::string>().empty());
        EXPECT_TRUE(std::filesystem::is_regular_file(list[i]["file"].get<std::string>()));
        EXPECT_NE(list[i]["citation"].get<std::string>().find(dataFile(kTables[i])["table"].get<std::string>()),
                  std::string::npos);
    }
}

TEST_F(PaperCli, BadTableIsAUsageErrorNamingTheValidOnes)
{
    const st::CliRun r = cli({"paper", "gu-table2"});
    EXPECT_EQ(r.code, 2);
    EXPECT_EQ(r.errLines(), 1) << r.err;
    EXPECT_NE(r.err.find("gu-table2"), std::string::npos) << r.err;
    for (const auto &id : kTables) {
        EXPECT_NE(r.err.find(id), std::string::npos) << r.err;
    }
    const st::CliRun noTable = cli({"paper"});
    EXPECT_EQ(noTable.code, 2);
    // An option the table does not read is refused, not ignored.
    const st::CliRun cache = cli({"paper", "sun-massive", "--model", model(), "--cache", "64"});
    EXPECT_EQ(cache.code, 2);
    EXPECT_NE(cache.err.find("--cache does not apply to sun-massive"), std::string::npos) << cache.err;
    const st::CliRun seed = cli({"paper", "streamingllm-table1", "--model", model(), "--seed", "2"});
    EXPECT_EQ(seed.code, 2);
    EXPECT_NE(seed.err.find("--seed does not apply to streamingllm-table1"), std::string::npos) << seed.err;
    const st::CliRun help = cli({"paper", "--help"});
    EXPECT_EQ(help.code, 0);
    EXPECT_NE(help.out.find("Usage: sinkscope-cli paper"), std::string::npos);
}

TEST_F(PaperCli, StreamingTable1MatchesTheStreamingCoreAndPrintsThePaperRow)
{
    const int64_t tokens = 60;
    const int cache = 16;
    const st::CliRun r = cli({"paper", "streamingllm-table1", "--model", model(), "--text", textFile(), "--tokens",
                              std::to_string(tokens), "--cache", std::to_string(cache), "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    const auto out = nlohmann::json::parse(r.out);
    expectPublishedRowsFromTheDataFile(out, "streamingllm-table1");
    EXPECT_EQ(out["published"]["rows"][0]["values"], nlohmann::json({5158.07, 5.40, 5.60}));
    const auto &m = out["reproduced"]["models"].at(0);
    EXPECT_EQ(m["tokens"], tokens);

    // The same three runs with the core, here.
    auto core = loaded();
    ASSERT_TRUE(core);
    std::ifstream in(textFile());
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    std::vector<int64_t> ids = core->tokenizer()->encode(text, EncodeOptions{});
    ASSERT_GT(static_cast<int64_t>(ids.size()), tokens);
    ids.resize(static_cast<size_t>(tokens));
    const auto newline = core->tokenizer()->encode("\n", EncodeOptions{.addBos = false, .parseSpecial = false});
    ASSERT_EQ(newline.size(), 1u);
    EXPECT_EQ(m["newline_token"], newline[0]);
    auto evaluator = StreamingEvaluator::create(core);
    ASSERT_TRUE(evaluator);
    StreamingOptions window{.mode = StreamingMode::Cache, .sinks = 0, .window = cache};
    StreamingOptions sinks{.mode = StreamingMode::Cache, .sinks = 4, .window = cache - 4};
    StreamingOptions newlines = sinks;
    newlines.sinkTokens.assign(4, newline[0]);
    const StreamingOptions runs[] = {window, sinks, newlines};
    ASSERT_EQ(m["columns"].size(), 3u);
    for (size_t c = 0; c < 3; ++c) {
        auto res = (*evaluator)->run(ids, runs[c]);
        ASSERT_TRUE(res) << res.error().message;
        // Targets at positions >= 4 (all), and >= cache (once full).
        for (const auto &[key, from] : {std::pair{"ppl", int64_t{4}}, std::pair{"ppl_once_full", int64_t{cache}}}) {
            double sum = 0;
            int n = 0;
            for (size_t i = static_cast<size_t>(from - 1); i < res->nll.size(); ++i) {
                sum += res->nll[i];
                ++n;
            }
            const double expected = std::exp(sum / n);
            const auto &col = m["columns"][c];
            EXPECT_EQ(col["method"], runs[c].label());
            EXPECT_NEAR(col[key].get<double>(), expected, 1e-4 * expected) << key << " " << col["method"];
        }
    }
    // The window loses the first tokens, the sinks keep them: the two differ once the cache is full.
    EXPECT_NE(m["columns"][0]["ppl_once_full"], m["columns"][1]["ppl_once_full"]);

    const st::CliRun human = cli({"paper", "streamingllm-table1", "--model", model(), "--text", textFile(), "--tokens",
                                  std::to_string(tokens), "--cache", std::to_string(cache)});
    ASSERT_EQ(human.code, 0) << human.err;
    for (const char *expected : {"Llama-2-13B (paper, cache 1024)", "5158.07", "Xiao et al.", "arXiv 2309.17453",
                                 "0+16 (window)", "4+12 (StreamingLLM)", "computed live", "runtime"}) {
        EXPECT_NE(human.out.find(expected), std::string::npos) << expected << "\n" << human.out;
    }
    EXPECT_NE(human.err.find("paper: "), std::string::npos) << "progress goes to stderr";
}

TEST_F(PaperCli, StreamingTable1RefusesACacheThatNeverFills)
{
    const st::CliRun r = cli(
        {"paper", "streamingllm-table1", "--model", model(), "--text", textFile(), "--tokens", "20", "--cache", "32"});
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("never fills"), std::string::npos) << r.err;
    EXPECT_EQ(r.errLines(), 1) << r.err;
}

TEST_F(PaperCli, GuTable1IsSink1OfTheProfileSamplesNextToThePapersRows)
{
    // T = 8 instead of the paper's 64: the tiny model's heads are too flat at 64 for alpha_1 to pass 0.3
    // (every sample would give 0), and a test of zeros could not tell a wrong mean from a right one.
    const int64_t samples = 6, tokens = 8;
    const st::CliRun r = cli({"paper", "gu-table1", "--model", model(), "--samples", std::to_string(samples), "--seed",
                              "3", "--tokens", std::to_string(tokens), "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    const auto out = nlohmann::json::parse(r.out);
    expectPublishedRowsFromTheDataFile(out, "gu-table1");
    EXPECT_EQ(out["published"]["rows"][0]["model"], "GPT2-XL");
    EXPECT_EQ(out["published"]["rows"][0]["values"], nlohmann::json({77.00, 70.29, 62.28}));
    const auto &p = out["reproduced"]["protocol"];
    EXPECT_EQ(p["epsilon"], 0.3);
    EXPECT_EQ(p["tokens"], tokens);
    EXPECT_EQ(p["samples"], samples);
    const auto &m = out["reproduced"]["models"].at(0);

    auto core = loaded();
    ASSERT_TRUE(core);
    ProfileSettings settings;
    settings.samples = samples;
    settings.tokens = tokens;
    settings.seed = 3;
    bool someDiffer = false;
    for (const char *data : {"natural", "random", "repeated"}) {
        double sum = 0;
        std::vector<double> values;
        for (const auto &metrics : analysedSamples(*core, data, settings)) {
            values.push_back(100.0 * metrics->sinkFraction);
            sum += values.back();
        }
        const double mean = sum / static_cast<double>(samples);
        EXPECT_NEAR(m[data]["mean"].get<double>(), mean, 1e-4) << data;
        EXPECT_EQ(m[data]["n"], samples) << data;
        // The bootstrap interval lies within the samples' range and holds the mean.
        const auto [lo, hi] = std::minmax_element(values.begin(), values.end());
        EXPECT_GE(m[data]["low"].get<double>(), *lo - 1e-4) << data;
        EXPECT_LE(m[data]["high"].get<double>(), *hi + 1e-4) << data;
        EXPECT_LE(m[data]["low"].get<double>(), mean + 1e-4) << data;
        EXPECT_GE(m[data]["high"].get<double>(), mean - 1e-4) << data;
        someDiffer = someDiffer || *lo != *hi;
    }
    EXPECT_TRUE(someDiffer) << "the samples should not all give the same Sink_1: " << m.dump();

    const st::CliRun human = cli({"paper", "gu-table1", "--model", model(), "--samples", std::to_string(samples),
                                  "--seed", "3", "--tokens", std::to_string(tokens)});
    ASSERT_EQ(human.code, 0) << human.err;
    for (const char *expected : {"GPT2-XL (paper)", "77.00", "LLaMA3-8B Base (paper)", "99.02", "Gu et al.",
                                 "arXiv 2410.10781", "T = 8", "computed live", "runtime", "bootstrap"}) {
        EXPECT_NE(human.out.find(expected), std::string::npos) << expected << "\n" << human.out;
    }
}

TEST_F(PaperCli, SunMassiveIsTheLayerwiseTopThreeAndMedianOverTheNaturalSamples)
{
    const int64_t samples = 3, tokens = 32;
    const st::CliRun r = cli({"paper", "sun-massive", "--model", model(), "--samples", std::to_string(samples),
                              "--tokens", std::to_string(tokens), "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    const auto out = nlohmann::json::parse(r.out);
    expectPublishedRowsFromTheDataFile(out, "sun-massive");
    EXPECT_EQ(out["published"]["rows"][0]["value"], 2546.8);
    const auto &m = out["reproduced"]["models"].at(0);
    ASSERT_EQ(m["per_layer"].size(), static_cast<size_t>(st::tiny::kLayers));

    auto core = loaded();
    ASSERT_TRUE(core);
    ProfileSettings settings;
    settings.samples = samples;
    settings.tokens = tokens;
    const auto analysed = analysedSamples(*core, "natural", settings);
    for (int64_t l = 0; l < st::tiny::kLayers; ++l) {
        double top[3] = {0, 0, 0}, median = 0;
        for (const auto &metrics : analysed) {
            const LayerActivations &a = metrics->activationsByLayer.at(static_cast<size_t>(l));
            for (int k = 0; k < 3; ++k) {
                top[k] += a.top[k] / static_cast<double>(samples);
            }
            median += a.median / static_cast<double>(samples);
        }
        const auto &row = m["per_layer"][static_cast<size_t>(l)];
        EXPECT_EQ(row["layer"], l);
        EXPECT_NEAR(row["top1"]["mean"].get<double>(), top[0], 1e-4 * top[0]) << l;
        EXPECT_NEAR(row["top2"]["mean"].get<double>(), top[1], 1e-4 * top[1]) << l;
        EXPECT_NEAR(row["top3"]["mean"].get<double>(), top[2], 1e-4 * top[2]) << l;
        EXPECT_NEAR(row["median"]["mean"].get<double>(), median, 1e-4 * median) << l;
        EXPECT_GE(row["top1"]["mean"].get<double>(), row["top2"]["mean"].get<double>());
    }

    const st::CliRun human = cli({"paper", "sun-massive", "--model", model(), "--samples", std::to_string(samples),
                                  "--tokens", std::to_string(tokens)});
    ASSERT_EQ(human.code, 0) << human.err;
    for (const char *expected : {"Sun et al.", "arXiv 2402.17762", "2546.80", "LLaMA2-13B", "-1223.50", "median |h|",
                                 "computed live", "runtime"}) {
        EXPECT_NE(human.out.find(expected), std::string::npos) << expected << "\n" << human.out;
    }
}
