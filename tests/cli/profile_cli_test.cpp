// sinkscope-cli profile and merge as a user runs them: a checkpoint series of tiny models, shards merged
// into exactly the unsharded profile, Ctrl-C, and bad input.
#include "support/cli_runner.h"
#include "support/test_paths.h"
#include "support/tiny_models.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

namespace st = sinkscope::testing;
using st::CliRun;
using st::TempDir;

namespace {

namespace fs = std::filesystem;

nlohmann::json readJson(const std::string &path)
{
    std::ifstream in(path);
    return nlohmann::json::parse(in, nullptr, false);
}

std::string slurp(const std::string &path)
{
    std::ifstream in(path);
    return {std::istreambuf_iterator<char>(in), {}};
}

// Every number of `a` equals the one at the same place in `b` to `tol` (null where the other is null).
void expectSameNumbers(const nlohmann::json &a, const nlohmann::json &b, const std::string &where, double tol,
                       int *compared)
{
    ASSERT_EQ(a.type(), b.type()) << where;
    if (a.is_object()) {
        ASSERT_EQ(a.size(), b.size()) << where;
        for (auto it = a.begin(); it != a.end(); ++it) {
            ASSERT_TRUE(b.contains(it.key())) << where << "." << it.key();
            expectSameNumbers(it.value(), b[it.key()], where + "." + it.key(), tol, compared);
        }
    } else if (a.is_array()) {
        ASSERT_EQ(a.size(), b.size()) << where;
        for (size_t i = 0; i < a.size(); ++i) {
            expectSameNumbers(a[i], b[i], where + "[" + std::to_string(i) + "]", tol, compared);
        }
    } else if (a.is_number()) {
        EXPECT_NEAR(a.get<double>(), b.get<double>(), tol) << where;
        ++*compared;
    } else {
        EXPECT_EQ(a, b) << where;
    }
}

// Tiny Llama checkpoints at steps 0, 1000 and 3000, converted once for the suite.
class CliProfile : public ::testing::Test
{
protected:
    static void SetUpTestSuite()
    {
        s_dir = std::make_unique<TempDir>();
        for (int step : {0, 1000, 3000}) {
            const std::string name = "tiny-step" + std::to_string(step);
            st::writeTinyLlamaCheckpointGguf(s_dir->file(name + ".gguf"), step);
            const CliRun r = st::runCli({"convert", s_dir->file(name + ".gguf"), "-o", s_dir->file(name + ".pt")});
            ASSERT_EQ(r.code, 0) << r.err;
        }
    }
    static void TearDownTestSuite() { s_dir.reset(); }
    static std::vector<std::string> models()
    {
        // Out of step order: the profile keeps the order given and reads each step.
        return {"--model", s_dir->file("tiny-step3000.pt"), "--model", s_dir->file("tiny-step0.pt"),
                "--model", s_dir->file("tiny-step1000.pt")};
    }
    static std::vector<std::string> profileArgs(const std::string &out, const std::vector<std::string> &extra = {})
    {
        std::vector<std::string> args = {"profile",  "--data",       "random,repeated", "--samples", "7",
                                         "--tokens", "16",           "--seed",          "5",         "--bootstrap",
                                         "100",      "--no-figures", "--out",           out};
        for (const auto &m : models()) {
            args.push_back(m);
        }
        args.insert(args.end(), extra.begin(), extra.end());
        return args;
    }
    static std::unique_ptr<TempDir> s_dir;
};
std::unique_ptr<TempDir> CliProfile::s_dir;

TEST_F(CliProfile, ShardsMergeIntoExactlyTheUnshardedProfile)
{
    TempDir out;
    const CliRun whole = st::runCli(profileArgs(out.file("whole")));
    ASSERT_EQ(whole.code, 0) << whole.err;
    EXPECT_NE(whole.out.find("Sink_1^0.3"), std::string::npos) << whole.out;
    EXPECT_NE(whole.err.find("tiny-step1000 (step 1000)"), std::string::npos) << whole.err;
    std::vector<std::string> merge = {"merge", "--no-figures", "--out", out.file("merged")};
    for (int k : {1, 2}) {
        const std::string dir = out.file("shard" + std::to_string(k));
        const CliRun r = st::runCli(profileArgs(dir, {"--shard", std::to_string(k) + "/2"}));
        ASSERT_EQ(r.code, 0) << r.err;
        merge.push_back(dir);
    }
    const nlohmann::json shard1 = readJson(out.file("shard1/profile.json"));
    EXPECT_EQ(shard1["cells"][0]["samples"], 3); // samples 0..2 of 7
    EXPECT_EQ(shard1["cells"][0]["sample_ranges"], nlohmann::json::parse("[[0, 3]]"));
    const CliRun merged = st::runCli(merge);
    ASSERT_EQ(merged.code, 0) << merged.err;

    nlohmann::json a = readJson(out.file("whole/profile.json"));
    nlohmann::json b = readJson(out.file("merged/profile.json"));
    ASSERT_FALSE(a.is_discarded());
    ASSERT_FALSE(b.is_discarded());
    a.erase("created_by");
    b.erase("created_by");
    int compared = 0;
    expectSameNumbers(a, b, "profile", 1e-9, &compared);
    EXPECT_GT(compared, 1000);
    for (const char *csv : {"profile_heads.csv", "profile_layers.csv", "profile_models.csv"}) {
        EXPECT_EQ(slurp(out.file(std::string("whole/") + csv)), slurp(out.file(std::string("merged/") + csv))) << csv;
    }
    EXPECT_EQ(whole.out, merged.out); // the same summary table

    // What the profile holds: the models in the given order with their steps, a cell per model and data set.
    ASSERT_EQ(a["models"].size(), 3u);
    EXPECT_EQ(a["models"][0]["key"], "tiny-step3000");
    EXPECT_EQ(a["models"][0]["step"], 3000);
    EXPECT_EQ(a["models"][1]["step"], 0);
    EXPECT_EQ(a["models"][2]["step"], 1000);
    ASSERT_EQ(a["cells"].size(), 6u);
    const auto &cell = a["cells"][0];
    EXPECT_EQ(cell["samples"], 7);
    const auto &sink = cell["stats"]["model"]["sink_1"];
    EXPECT_LE(sink["ci_low"].get<double>(), sink["mean"].get<double>());
    EXPECT_GE(sink["ci_high"].get<double>(), sink["mean"].get<double>());
    EXPECT_EQ(cell["stats"]["head"]["alpha_first"]["mean"].size(), 2u);    // [L][H]
    EXPECT_EQ(cell["stats"]["head"]["alpha_first"]["mean"][0].size(), 4u); // 4 heads
    EXPECT_EQ(cell["stats"]["layer"]["massive_top1"]["n"][1], 7);
    // Sharper attention later in "training": the checkpoints differ.
    EXPECT_NE(a["cells"][0]["stats"]["model"]["first_token_mass"]["mean"],
              a["cells"][2]["stats"]["model"]["first_token_mass"]["mean"]);
    const std::string models = slurp(out.file("whole/profile_models.csv"));
    EXPECT_EQ(models.rfind("model,step,data,statistic,mean,ci_low,ci_high,n,samples\n", 0), 0u);
    EXPECT_NE(models.find("tiny-step3000,3000,random,sink_1,"), std::string::npos);

    // The figures of a profile (re)drawn from its folder: a merge of the one whole run.
    if (!fs::exists(SINKSCOPE_CLI_PATH)) {
        return;
    }
    const CliRun figures = st::runCli({"merge", "--format", "svg", "--out", out.file("figures"), out.file("whole")});
    if (figures.code == 1 && figures.err.find("SINKSCOPE_BUILD_GUI") != std::string::npos) {
        return; // a build without Qt says so
    }
    ASSERT_EQ(figures.code, 0) << figures.err;
    for (const char *name : {"layers-sink_1.svg", "layers-first_token_mass.svg", "layers-massive_top1.svg", "table.svg",
                             "checkpoints-sink_1.svg", "grid-tiny-step1000-random.svg"}) {
        EXPECT_GT(fs::exists(out.file(std::string("figures/") + name))
                      ? fs::file_size(out.file(std::string("figures/") + name))
                      : 0u,
                  1000u)
            << name;
    }
}

TEST_F(CliProfile, CtrlCWritesAValidPartialProfile)
{
    TempDir out;
    // SIGINT after five seconds (the tiny model loads in one and runs a sample in milliseconds, even on a
    // busy machine); the run would take minutes.
    CliRun r = st::runCli({"profile", "--model", s_dir->file("tiny-step0.pt"), "--data", "random", "--samples",
                           "1000000", "--tokens", "16", "--no-figures", "--out", out.file("p")},
                          "timeout --preserve-status -s INT 5");
    EXPECT_EQ(r.code, 130) << r.err;
    EXPECT_NE(r.err.find("interrupted"), std::string::npos) << r.err;
    const nlohmann::json p = readJson(out.file("p/profile.json"));
    ASSERT_FALSE(p.is_discarded());
    EXPECT_EQ(p["complete"], false);
    EXPECT_GT(p["cells"][0]["samples"].get<int>(), 0);
    // A partial shard is not merged.
    r = st::runCli({"merge", "--no-figures", "--out", out.file("m"), out.file("p")});
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("is partial"), std::string::npos) << r.err;
}

TEST_F(CliProfile, BadInputIsOneClearLine)
{
    TempDir dir;
    std::ofstream(dir.file("bad.jsonl")) << "{\"text\": \"a fine line of text\"}\n{\"title\": \"no text\"}\n";
    fs::create_directories(dir.file("empty"));
    const std::string model = s_dir->file("tiny-step0.pt");
    struct Case {
        std::vector<std::string> args;
        int code;
        std::string message;
    };
    const std::vector<Case> cases = {
        {{"--data", dir.file("bad.jsonl"), "--tokens", "4"}, 1, dir.file("bad.jsonl") + ":2: no \"text\" field"},
        {{"--data", dir.file("empty"), "--tokens", "4"}, 1, dir.file("empty") + ": the folder has no .txt files"},
        {{"--data", "random,nonsense", "--tokens", "4"}, 2, "nonsense: no such file or folder"},
        {{"--data", "random", "--shard", "3/2"}, 2, "--shard: '3/2': K must be between 1 and N"},
        {{"--data", "random", "--shard", "two"}, 2, "--shard: 'two' is not K/N"},
        {{"--data", "random", "--tokens", "65"}, 1, "--tokens 65 is longer than tiny-step0's context (64 tokens)"},
    };
    for (const Case &c : cases) {
        std::vector<std::string> args = {"profile", "--model",      model,   "--samples",
                                         "2",       "--no-figures", "--out", dir.file("out")};
        args.insert(args.end(), c.args.begin(), c.args.end());
        const CliRun r = st::runCli(args);
        EXPECT_EQ(r.code, c.code) << c.args[1] << ": " << r.err;
        EXPECT_NE(r.err.find(c.message), std::string::npos) << r.err;
        // The error is one line (progress lines may come before it).
        const size_t error = r.err.find("sinkscope-cli profile: ");
        ASSERT_NE(error, std::string::npos) << r.err;
        EXPECT_EQ(r.err.find('\n', error), r.err.size() - 1) << r.err;
    }

    // merge: mismatched shards (another --tokens), a missing shard, not a profile folder.
    for (const auto &[name, tokens, shard] :
         {std::tuple{"s1", "8", "1/2"}, std::tuple{"s2", "9", "2/2"}, std::tuple{"t1", "8", "1/3"}}) {
        const CliRun r = st::runCli({"profile", "--model", model, "--data", "random", "--samples", "4", "--tokens",
                                     tokens, "--shard", shard, "--no-figures", "--out", dir.file(name)});
        ASSERT_EQ(r.code, 0) << r.err;
    }
    CliRun r = st::runCli({"merge", "--no-figures", "--out", dir.file("m"), dir.file("s1"), dir.file("s2")});
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find(dir.file("s2") + " (shard 2/2) ran with other settings"), std::string::npos) << r.err;
    r = st::runCli({"merge", "--no-figures", "--out", dir.file("m"), dir.file("t1")});
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("shard 2/3 is missing"), std::string::npos) << r.err;
    r = st::runCli({"merge", "--no-figures", "--out", dir.file("m"), dir.file("s1"), dir.file("t1")});
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("belongs to a run of 3 shards"), std::string::npos) << r.err;
    r = st::runCli({"merge", "--no-figures", "--out", dir.file("m"), dir.file("empty")});
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find(dir.file("empty") + "/profile.json: cannot open (not a profile folder)"), std::string::npos)
        << r.err;
}

} // namespace
