// sinkscope-cli probe as a user runs it, on the tiny Llama: the side-by-side table, --json, the detector
// and errors (a bad set file names file:line and the field, exit 1; a bad spec is a usage error, exit 2).
#include "support/cli_runner.h"
#include "support/test_paths.h"
#include "support/tiny_models.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace st = sinkscope::testing;

namespace {

st::CliRun cli(const std::vector<std::string> &args)
{
    return st::runCli(args, "SINKSCOPE_TORCH_THREADS=1");
}

class ProbeCli : public ::testing::Test
{
protected:
    static void SetUpTestSuite()
    {
        s_dir = std::make_unique<st::TempDir>();
        const st::CliRun r = st::convertTinyLlama(*s_dir);
        ASSERT_EQ(r.code, 0) << r.err;
        std::ofstream(s_dir->file("set.json")) << R"({
  "format": "sinkscope-probes",
  "version": 1,
  "name": "tiny",
  "grounded_template": "{passage} {question}\nA:",
  "probes": [
    {"id": "cat", "kind": "factual", "category": "animals", "prompt": "the cat sat on the", "answers": ["mat", "rug"]},
    {"id": "dog", "kind": "factual", "category": "animals", "prompt": "the dog ran to the", "answers": ["park"]},
    {"id": "hat", "kind": "grounded", "category": "reading",
     "passage": "Ann has a red hat.", "question": "What colour is the hat?", "answers": ["red"]},
    {"id": "sky", "kind": "grounded", "category": "counterfactual",
     "passage": "Here the sky is green.", "question": "What colour is the sky?", "answers": ["green"],
     "counterfactual": true, "memorised": ["blue"]}
  ]
}
)";
        std::ofstream(s_dir->file("bad.json")) << R"({
  "format": "sinkscope-probes",
  "version": 1,
  "probes": [
    {"id": "cat", "kind": "factual", "category": "animals",
     "prompt": "the cat sat on the",
     "answers": []}
  ]
}
)";
    }
    static void TearDownTestSuite() { s_dir.reset(); }
    static std::string model() { return s_dir->file("tiny.pt"); }
    static std::string setFile() { return s_dir->file("set.json"); }
    static std::unique_ptr<st::TempDir> s_dir;
};
std::unique_ptr<st::TempDir> ProbeCli::s_dir;

} // namespace

TEST_F(ProbeCli, HelpIsListed)
{
    const st::CliRun r = cli({"probe", "--help"});
    EXPECT_EQ(r.code, 0);
    EXPECT_NE(r.out.find("Usage: sinkscope-cli probe"), std::string::npos);
    EXPECT_NE(cli({"--help"}).out.find("  probe "), std::string::npos);
}

TEST_F(ProbeCli, CompareJsonHasAccuracyLogProbAndScoresPerSetting)
{
    const st::CliRun r = cli(
        {"probe", "--model", model(), "--set", setFile(), "--compare", "none,mask-sink,zerotune:gamma=0.5", "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["set"], "tiny");
    EXPECT_EQ(j["probes"], 4);
    ASSERT_EQ(j["settings"].size(), 3u);
    EXPECT_EQ(j["settings"][0]["spec"], "none");
    EXPECT_EQ(j["settings"][1]["spec"], "mask-sink:sinks=1");
    for (const auto &s : j["settings"]) {
        const double acc = s["accuracy"].get<double>();
        EXPECT_GE(acc, 0.0);
        EXPECT_LE(acc, 1.0);
        ASSERT_EQ(s["scores"].size(), 4u);
        double sum = 0;
        int right = 0;
        for (const auto &p : s["scores"]) {
            sum += p["answer_logprob"].get<double>();
            right += p["correct"].get<bool>() ? 1 : 0;
            EXPECT_GT(p["first_token_probability"].get<double>(), 0.0);
            EXPECT_GE(p["first_token_rank"].get<int>(), 1);
            EXPECT_LT(p["answer_logprob"].get<double>(), 0.0);
        }
        EXPECT_NEAR(s["mean_logprob"].get<double>(), sum / 4, 1e-9);
        EXPECT_DOUBLE_EQ(acc, right / 4.0);
        EXPECT_TRUE(s["categories"].contains("animals"));
        EXPECT_TRUE(s["flips"]["right_to_wrong"].is_array());
    }
    // Masking the sink changes the answers' probabilities on this model.
    EXPECT_NE(j["settings"][0]["mean_logprob"], j["settings"][1]["mean_logprob"]);
}

TEST_F(ProbeCli, TableListsSettingsCategoriesAndFlips)
{
    const st::CliRun r = cli({"probe", "--model", model(), "--set", setFile(), "--compare", "none,mask-sink"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("setting"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("mask-sink:sinks=1"), std::string::npos);
    EXPECT_NE(r.out.find("accuracy by category"), std::string::npos);
    EXPECT_NE(r.out.find("counterfactual (1)"), std::string::npos);
    EXPECT_NE(r.out.find("flips against none"), std::string::npos);
    EXPECT_NE(r.out.find("right -> wrong"), std::string::npos);
    const st::CliRun one = cli({"probe", "--model", model(), "--set", setFile(), "--category", "animals"});
    ASSERT_EQ(one.code, 0) << one.err;
    EXPECT_NE(one.out.find("2 probes"), std::string::npos) << one.out;
    EXPECT_NE(one.out.find("cat "), std::string::npos);
    EXPECT_EQ(one.out.find("hat "), std::string::npos);
}

TEST_F(ProbeCli, DetectorAndOutputFiles)
{
    st::TempDir out;
    const st::CliRun r =
        cli({"probe", "--model", model(), "--set", setFile(), "--detector", "--out", out.path(), "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    // Two grounded probes cannot give two right and two wrong answers: the detector says so.
    ASSERT_TRUE(j.contains("detector"));
    EXPECT_TRUE(j["detector"].contains("error"));
    EXPECT_NE(j["detector"]["error"].get<std::string>().find("at least two right and two wrong"), std::string::npos);
    std::ifstream csv(out.file("scores_0.csv"));
    std::string header;
    std::getline(csv, header);
    EXPECT_EQ(header.rfind("id,category,kind,correct", 0), 0u) << header;
}

TEST_F(ProbeCli, BadSetFileNamesFileLineAndField)
{
    const std::string bad = s_dir->file("bad.json");
    const st::CliRun r = cli({"probe", "--model", model(), "--set", bad});
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find(bad + ":7: probes[0].answers: must be a non-empty array"), std::string::npos) << r.err;
    EXPECT_EQ(r.errLines(), 1) << r.err;
    const st::CliRun missing = cli({"probe", "--model", model(), "--set", s_dir->file("none.json")});
    EXPECT_EQ(missing.code, 1);
    EXPECT_NE(missing.err.find("none.json"), std::string::npos);
    const st::CliRun spec = cli({"probe", "--model", model(), "--set", setFile(), "--compare", "none,mask-snk"});
    EXPECT_EQ(spec.code, 2);
    EXPECT_NE(spec.err.find("mask-snk"), std::string::npos);
    const st::CliRun category = cli({"probe", "--model", model(), "--set", setFile(), "--category", "nope"});
    EXPECT_EQ(category.code, 1);
    EXPECT_NE(category.err.find("nope"), std::string::npos);
}
