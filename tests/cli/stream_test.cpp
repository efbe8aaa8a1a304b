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
        st::writeTinyLlamaGguf(s_dir->file("tiny.gguf"));
        const StreamRun r = runCli({"convert", s_dir->file("tiny.gguf"), "-o", s_dir->file("tiny.pt")});
        ASSERT_EQ(r.code, 0) << r.err;
        // Our own words: the tiny vocabulary turns them into about 60 byte-level tokens.
        std::ofstream(s_dir->file("text.txt")) << "the cat sat on the mat and then the dog ran to the park to see the ducks";
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
    const StreamRun dense = runCli({"stream-ppl", "--model", model(), "--text", textFile(), "--tokens", "30", "--dense", "--json"});
    ASSERT_EQ(dense.code, 0) << dense.err;
    const auto d = nlohmann::json::parse(dense.out);
    ASSERT_EQ(d["nll"].size(), 29u);
    double sum = 0;
    for (double v : d["nll"]) {
        sum += v;
    }
    EXPECT_NEAR(d["ppl"].get<double>(), std::exp(sum / 29), 1e-3 * d["ppl"].get<double>());
    EXPECT_EQ(d["method"], "dense");

    const StreamRun w = runCli({"stream-ppl", "--model", model(), "--text", textFile(), "--tokens", "30", "--window", "6",
                          "--sinks", "2", "--json"});
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
    const StreamRun r = runCli({"stream-ppl", "--model", model(), "--text", textFile(), "--tokens", "16", "--sweep", "--window",
                          "10", "--csv", dir.file("nll.csv"), "--json"});
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
    const StreamRun badSpec = runCli({"compare", "--model", model(), "--prompt", "the cat", "--mitigation", "none,mask-snk"});
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
    const StreamRun text = runCli({"compare", "--model", model(), "--prompt", "the cat sat on", "--mitigation", "mask-sink", "-n", "0"});
    ASSERT_EQ(text.code, 0) << text.err;
    EXPECT_NE(text.out.find("== mask-sink:sinks=1"), std::string::npos);
    EXPECT_NE(text.out.find("KL(baseline || mitigated)"), std::string::npos);
}
