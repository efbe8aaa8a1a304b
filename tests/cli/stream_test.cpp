// sinkscope-cli stream-ppl and compare as a user runs them, on the tiny Llama.
#include "support/cli_runner.h"
#include "support/test_paths.h"
#include "support/tiny_models.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sys/wait.h>

namespace st = sinkscope::testing;

namespace {

using StreamRun = st::CliRun;

StreamRun runCli(const std::vector<std::string> &args)
{
    return st::runCli(args, "SINKSCOPE_TORCH_THREADS=1");
}

class StreamCli : public ::testing::Test
{
protected:
    static void SetUpTestSuite()
    {
        s_dir = std::make_unique<st::TempDir>();
        const StreamRun r = st::convertTinyLlama(*s_dir);
        ASSERT_EQ(r.code, 0) << r.err;
        // Our own words: the tiny vocabulary turns them into about 60 byte-level tokens.
        std::ofstream(s_dir->file("text.txt"))
            << "the cat sat on the mat and then the dog ran to the park to see the ducks";
    }
    static void TearDownTestSuite() { s_dir.reset(); }
    static std::string model() { return s_dir->file("tiny.pt"); }
    static std::string textFile() { return s_dir->file("text.txt"); }
    static std::unique_ptr<st::TempDir> s_dir;
};
std::unique_ptr<st::TempDir> StreamCli::s_dir;

} // namespace

TEST_F(StreamCli, Help)
{
    for (const char *cmd : {"stream-ppl", "compare"}) {
        const StreamRun r = runCli({cmd, "--help"});
        EXPECT_EQ(r.code, 0);
        EXPECT_NE(r.out.find("Usage: sinkscope-cli " + std::string(cmd)), std::string::npos);
    }
    EXPECT_NE(runCli({"--help"}).out.find("stream-ppl"), std::string::npos);
}

TEST_F(StreamCli, DenseAndWindowJson)
{
    const StreamRun dense =
        runCli({"stream-ppl", "--model", model(), "--text", textFile(), "--tokens", "30", "--dense", "--json"});
    ASSERT_EQ(dense.code, 0) << dense.err;
    const auto d = nlohmann::json::parse(dense.out);
    ASSERT_EQ(d["nll"].size(), 29u);
    double sum = 0;
    for (double v : d["nll"]) {
        sum += v;
    }
    EXPECT_NEAR(d["ppl"].get<double>(), std::exp(sum / 29), 1e-3 * d["ppl"].get<double>());
    EXPECT_EQ(d["method"], "dense");

    const StreamRun w = runCli({"stream-ppl", "--model", model(), "--text", textFile(), "--tokens", "30", "--window",
                                "6", "--sinks", "2", "--json"});
    ASSERT_EQ(w.code, 0) << w.err;
    const auto j = nlohmann::json::parse(w.out);
    EXPECT_EQ(j["method"], "sinks 2+6");
    ASSERT_EQ(j["nll"].size(), 29u);
    for (size_t i = 0; i < 7; ++i) { // the cache is not full yet: dense, bit for bit
        EXPECT_EQ(j["nll"][i].get<double>(), d["nll"][i].get<double>()) << i;
    }
}

TEST_F(StreamCli, SweepAndCsv)
{
    st::TempDir dir;
    const StreamRun r = runCli({"stream-ppl", "--model", model(), "--text", textFile(), "--tokens", "16", "--sweep",
                                "--window", "10", "--csv", dir.file("nll.csv"), "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j["runs"].size(), 7u);
    EXPECT_EQ(j["runs"][4]["method"], "sinks 4+6");
    EXPECT_EQ(j["runs"][6]["method"], "recompute 0+10");
    std::ifstream csv(dir.file("nll.csv"));
    std::string header;
    std::getline(csv, header);
    EXPECT_EQ(header, "position,dense,window 0+10,sinks 1+9,sinks 2+8,sinks 4+6,sinks 8+2,recompute 0+10");
}

TEST_F(StreamCli, AFullDiskLeavesTheOldCsvWhole)
{
    // A file-size limit of one block stands in for a full disk: the CSV (about 2 KB) cannot be written.
    st::TempDir dir;
    const std::string csv = dir.file("nll.csv");
    std::ofstream(csv) << "the old table\n";
    const StreamRun r = st::runCli({"stream-ppl", "--model", model(), "--text", textFile(), "--tokens", "30", "--sweep",
                                    "--window", "10", "--csv", csv},
                                   "ulimit -f 1 && SINKSCOPE_TORCH_THREADS=1");
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("sinkscope-cli stream-ppl: error: " + csv +
                         ": the file is larger than this process may write (file size limit)"),
              std::string::npos)
        << r.err;
    std::ifstream in(csv);
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line, "the old table");
    EXPECT_FALSE(st::siblingStartingWith(csv, ".partial")) << "the temporary is removed";
}

TEST_F(StreamCli, UsageErrors)
{
    const StreamRun both = runCli({"stream-ppl", "--model", model(), "--text", textFile(), "--dense", "--window", "4"});
    EXPECT_EQ(both.code, 2);
    EXPECT_NE(both.err.find("choose one of"), std::string::npos);
    const StreamRun missing = runCli({"stream-ppl", "--model", model(), "--dense"});
    EXPECT_EQ(missing.code, 2);
    EXPECT_NE(missing.err.find("--text FILE is required"), std::string::npos);
    const StreamRun badFile = runCli({"stream-ppl", "--model", model(), "--text", "/nonexistent.txt", "--dense"});
    EXPECT_EQ(badFile.code, 1);
    EXPECT_NE(badFile.err.find("/nonexistent.txt"), std::string::npos);
    const StreamRun badSpec =
        runCli({"compare", "--model", model(), "--prompt", "the cat", "--mitigation", "none,mask-snk"});
    EXPECT_EQ(badSpec.code, 2);
    EXPECT_NE(badSpec.err.find("unknown method 'mask-snk'"), std::string::npos);
}

TEST_F(StreamCli, CompareJson)
{
    const StreamRun r = runCli({"compare", "--model", model(), "--prompt", "the cat sat on", "--mitigation",
                                "none,streaming:sinks=1,window=3,head-zero:heads=L0H1+L1H2", "-n", "2", "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j["mitigations"].size(), 3u);
    EXPECT_EQ(j["mitigations"][0]["spec"], "none");
    EXPECT_EQ(j["mitigations"][0]["kl"].get<double>(), 0.0);
    EXPECT_EQ(j["mitigations"][1]["spec"], "streaming:sinks=1,window=3");
    EXPECT_TRUE(j["mitigations"][1]["streaming_as_mask"].get<bool>());
    EXPECT_EQ(j["mitigations"][2]["spec"], "head-zero:heads=L0H1+L1H2");
    EXPECT_GT(j["mitigations"][2]["kl"].get<double>(), 0.0);
    EXPECT_EQ(j["mitigations"][2]["continuation"].size(), 2u);
    EXPECT_EQ(j["mitigations"][2]["head_difference"].size(), 2u);
    const StreamRun text =
        runCli({"compare", "--model", model(), "--prompt", "the cat sat on", "--mitigation", "mask-sink", "-n", "0"});
    ASSERT_EQ(text.code, 0) << text.err;
    EXPECT_NE(text.out.find("== mask-sink:sinks=1"), std::string::npos);
    EXPECT_NE(text.out.find("KL(baseline || mitigated)"), std::string::npos);
}

TEST_F(StreamCli, ActSearchRanksHeadsAndPrintsAUsableSpec)
{
    const StreamRun r =
        runCli({"act-search", "--model", model(), "--prompt", "the cat sat on the mat and the dog sat on the cat",
                "--layers", "0-1", "--min-gain", "-1e9", "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_GT(j["baseline_nll"].get<double>(), 0.0);
    EXPECT_EQ(j["probes"].get<int>(), 1);
    // With no minimum gain every head of the searched layers is kept, best first.
    const auto &gains = j["gains"];
    ASSERT_EQ(gains.size(), static_cast<size_t>(2 * st::tiny::kHeads));
    for (size_t i = 1; i < gains.size(); ++i) {
        EXPECT_GE(gains[i - 1]["gain"].get<double>(), gains[i]["gain"].get<double>());
        EXPECT_LE(gains[i]["layer"].get<int>(), 1);
    }
    const std::string spec = j["spec"].get<std::string>();
    EXPECT_EQ(spec.rfind("act:beta=0.4,thres=0.1,heads=L", 0), 0u) << spec;
    // The printed spec is accepted as it stands.
    const StreamRun c =
        runCli({"compare", "--model", model(), "--prompt", "the cat sat", "--mitigation", spec, "-n", "0", "--json"});
    EXPECT_EQ(c.code, 0) << c.err;
    // --top keeps the best heads only, in the same order.
    const StreamRun top =
        runCli({"act-search", "--model", model(), "--prompt", "the cat sat on the mat and the dog sat on the cat",
                "--layers", "0-1", "--min-gain", "-1e9", "--top", "2", "--json"});
    ASSERT_EQ(top.code, 0) << top.err;
    const auto t = nlohmann::json::parse(top.out);
    ASSERT_EQ(t["gains"].size(), 2u);
    EXPECT_EQ(t["gains"][0], gains[0]);
    const std::string best =
        "L" + std::to_string(gains[0]["layer"].get<int>()) + "H" + std::to_string(gains[0]["head"].get<int>());
    EXPECT_EQ(t["spec"].get<std::string>().rfind("act:beta=0.4,thres=0.1,heads=" + best + "+L", 0), 0u) << t["spec"];

    EXPECT_EQ(runCli({"act-search", "--model", model()}).code, 2);                                          // no probes
    EXPECT_EQ(runCli({"act-search", "--model", model(), "--prompt", "x y z", "--layers", "0-99"}).code, 2); // outside
    const StreamRun missing = runCli({"act-search", "--model", model(), "--text", s_dir->file("absent.txt")});
    EXPECT_EQ(missing.code, 1);
    EXPECT_NE(missing.err.find("absent.txt"), std::string::npos) << missing.err;
}

TEST_F(StreamCli, ReplotRedrawsCsvFromSavedRuns)
{
    const StreamRun w = runCli({"stream-ppl", "--model", model(), "--text", textFile(), "--tokens", "30", "--window",
                                "8", "--sinks", "2", "--json"});
    ASSERT_EQ(w.code, 0) << w.err;
    std::ofstream(s_dir->file("run.json")) << w.out;
    const StreamRun d =
        runCli({"stream-ppl", "--model", model(), "--text", textFile(), "--tokens", "20", "--dense", "--json"});
    ASSERT_EQ(d.code, 0) << d.err;
    std::ofstream(s_dir->file("dense.json")) << d.out;
    const StreamRun r = runCli({"stream-ppl", "--replot", s_dir->file("run.json") + "," + s_dir->file("dense.json"),
                                "--csv", s_dir->file("replot.csv")});
    ASSERT_EQ(r.code, 0) << r.err;
    std::ifstream csv(s_dir->file("replot.csv"));
    std::string header, first;
    std::getline(csv, header);
    std::getline(csv, first);
    EXPECT_EQ(header, "position,sinks 2+8,dense");
    const auto saved = nlohmann::json::parse(w.out)["nll"];
    EXPECT_NEAR(std::stod(first.substr(first.find(',') + 1)), saved[0].get<double>(), 1e-4);
    int rows = 1;
    for (std::string line; std::getline(csv, line);) {
        ++rows;
        if (rows > 19) {
            EXPECT_EQ(line.back(), ',') << line; // the shorter dense run leaves its tail empty
        }
    }
    EXPECT_EQ(rows, 29);
    const StreamRun bad = runCli({"stream-ppl", "--replot", textFile(), "--csv", s_dir->file("x.csv")});
    EXPECT_EQ(bad.code, 1);
    EXPECT_NE(bad.err.find("text.txt"), std::string::npos) << bad.err;
}
