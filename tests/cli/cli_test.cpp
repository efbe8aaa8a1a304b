// sinkscope-cli as a user runs it: subprocesses, exit codes, stdout and stderr.
#include "support/cli_runner.h"
#include "support/gguf_writer.h"
#include "support/test_paths.h"
#include "support/tiny_models.h"

#include "sinkscope/interventions/mitigation_registry.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <fstream>
#include <sys/wait.h>

using namespace sinkscope;
namespace st = sinkscope::testing;
using sinkscope::testing::TempDir;

namespace {

using st::CliRun;

CliRun cli(const std::vector<std::string> &args, const std::string &env = "")
{
    return st::runCli(args, env);
}

// One converted tiny Llama for the whole suite.
class Cli : public ::testing::Test
{
protected:
    static void SetUpTestSuite()
    {
        s_dir = std::make_unique<TempDir>();
        const CliRun r = st::convertTinyLlama(*s_dir);
        ASSERT_EQ(r.code, 0) << r.err;
    }
    static void TearDownTestSuite() { s_dir.reset(); }
    static std::string tinyModel() { return s_dir->file("tiny.pt"); }
    static std::unique_ptr<TempDir> s_dir;
};
std::unique_ptr<TempDir> Cli::s_dir;

} // namespace

TEST_F(Cli, HelpOnEverySubcommand)
{
    for (const char *cmd : {"info", "convert", "run", "generate", "doctor", "analyze", "compare", "act-search",
                            "stream-ppl", "probe", "mitigations", "profile", "merge", "paper"}) {
        const CliRun r = cli({cmd, "--help"});
        EXPECT_EQ(r.code, 0) << cmd;
        EXPECT_NE(r.out.find("Usage: sinkscope-cli " + std::string(cmd)), std::string::npos) << cmd;
    }
    const CliRun top = cli({"--help"});
    EXPECT_EQ(top.code, 0);
    EXPECT_NE(top.out.find("Commands:"), std::string::npos);
}

// The CLI's help and `mitigations` come from the core's registry: every method appears in both, with
// its parameters, ranges and defaults as the registry holds them.
TEST_F(Cli, MitigationHelpAndListingCoverEveryRegisteredMethod)
{
    const CliRun compare = cli({"compare", "--help"});
    ASSERT_EQ(compare.code, 0);
    const CliRun listing = cli({"mitigations"});
    ASSERT_EQ(listing.code, 0) << listing.err;
    const CliRun json = cli({"mitigations", "--json"});
    ASSERT_EQ(json.code, 0) << json.err;
    const auto j = nlohmann::json::parse(json.out);
    ASSERT_EQ(j.at("methods").size(), mitigationMethods().size());
    for (size_t i = 0; i < mitigationMethods().size(); ++i) {
        const auto &m = mitigationMethods()[i];
        EXPECT_NE(compare.out.find(" " + m.name), std::string::npos) << m.name;
        EXPECT_NE(listing.out.find(m.usage()), std::string::npos) << m.name;
        const auto &jm = j["methods"][i];
        EXPECT_EQ(jm.at("name"), m.name);
        EXPECT_EQ(jm.at("takes_heads"), m.takesHeads);
        ASSERT_EQ(jm.at("params").size(), m.params.size()) << m.name;
        for (size_t k = 0; k < m.params.size(); ++k) {
            const auto &p = m.params[k];
            EXPECT_EQ(jm["params"][k].at("name"), p.name);
            EXPECT_EQ(jm["params"][k].at("min").get<double>(), p.min) << m.name << "." << p.name;
            EXPECT_EQ(jm["params"][k].at("max").get<double>(), p.max) << m.name << "." << p.name;
            EXPECT_EQ(jm["params"][k].at("default").is_null(), p.required) << m.name << "." << p.name;
        }
    }
    const CliRun markdown = cli({"mitigations", "--markdown"});
    ASSERT_EQ(markdown.code, 0);
    EXPECT_EQ(markdown.out, mitigationMarkdownTable());
    EXPECT_EQ(cli({"mitigations", "--markdown", "--json"}).code, 2);
}

TEST_F(Cli, UsageErrorsExitTwoWithOneLine)
{
    for (const auto &args : std::vector<std::vector<std::string>>{{"frobnicate"},
                                                                  {"run", "--bogus"},
                                                                  {"run", "--model", tinyModel()},
                                                                  {"run", "--top-k", "zero", "--prompt", "x"},
                                                                  {"convert", "a.gguf"}}) {
        const CliRun r = cli(args);
        EXPECT_EQ(r.code, 2) << args[0];
        EXPECT_EQ(r.errLines(), 1) << r.err;
    }
}

TEST_F(Cli, InfoDescribesTheModel)
{
    const CliRun r = cli({"info", "--model", tinyModel(), "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["contract"], "sinkscope");
    EXPECT_EQ(j["config"]["architecture"], "llama");
    EXPECT_EQ(j["config"]["layers"], 2);
    EXPECT_EQ(j["config"]["kv_heads"], 2);
    EXPECT_GT(j["config"]["parameter_count"].get<int64_t>(), 0);
    EXPECT_TRUE(j.contains("tokenizer"));
    const CliRun text = cli({"info", "--model", tinyModel()});
    EXPECT_NE(text.out.find("grouped-query attention"), std::string::npos);
}

TEST_F(Cli, RunJsonHasTokensTopKAndFirstTokenMass)
{
    const CliRun r = cli({"run", "--model", tinyModel(), "--prompt", "the cat", "--top-k", "5", "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_TRUE(j["tokens"].is_array());
    EXPECT_GT(j["tokens"].size(), 0u);
    EXPECT_TRUE(j["tokens"][0].contains("id"));
    ASSERT_EQ(j["top_k"].size(), 5u);
    double prev = 1.0;
    for (const auto &t : j["top_k"]) {
        EXPECT_LE(t["probability"].get<double>(), prev);
        prev = t["probability"].get<double>();
    }
    ASSERT_EQ(j["first_token_mass"].size(), 2u);    // layers
    ASSERT_EQ(j["first_token_mass"][0].size(), 4u); // heads
    for (const auto &row : j["first_token_mass"]) {
        for (const auto &m : row) {
            EXPECT_GE(m.get<double>(), 0.0);
            EXPECT_LE(m.get<double>(), 1.0 + 1e-6);
        }
    }
}

TEST_F(Cli, GenerateStreamsTokensAndIsReproducible)
{
    const CliRun a =
        cli({"generate", "--model", tinyModel(), "--prompt", "the", "-n", "8", "--temperature", "0.8", "--seed", "7"});
    const CliRun b =
        cli({"generate", "--model", tinyModel(), "--prompt", "the", "-n", "8", "--temperature", "0.8", "--seed", "7"});
    ASSERT_EQ(a.code, 0) << a.err;
    EXPECT_EQ(a.out, b.out);
    EXPECT_EQ(a.out.rfind("the", 0), 0u) << "output starts with the prompt";
    EXPECT_GT(a.out.size(), 4u);
}

TEST_F(Cli, DeviceOptionRunsOnTheCpuAndRefusesDevicesThatAreNotThere)
{
    const CliRun cpu = cli({"run", "--model", tinyModel(), "--prompt", "the cat", "--device", "cpu", "--json"});
    ASSERT_EQ(cpu.code, 0) << cpu.err;
    const CliRun plain = cli({"run", "--model", tinyModel(), "--prompt", "the cat", "--json"});
    ASSERT_EQ(plain.code, 0) << plain.err;
    EXPECT_EQ(nlohmann::json::parse(cpu.out)["top_k"], nlohmann::json::parse(plain.out)["top_k"]);

    // No machine this suite runs on has 8 GPUs; the message names the device and what there is.
    for (const auto &args : std::vector<std::vector<std::string>>{
             {"run", "--model", tinyModel(), "--prompt", "x", "--device", "cuda:7"},
             {"analyze", "--model", tinyModel(), "--prompt", "x", "--out", s_dir->file("never"), "--device", "gpu"},
             {"generate", "--model", tinyModel(), "--prompt", "x", "--device", "cuda:x"}}) {
        const CliRun r = cli(args);
        EXPECT_EQ(r.code, 1) << args[0];
        EXPECT_EQ(r.errLines(), 1) << r.err;
        EXPECT_NE(r.err.find("device '" + args.back() + "'"), std::string::npos) << r.err;
        EXPECT_NE(r.err.find("devices here: cpu"), std::string::npos) << r.err;
    }
    const CliRun convert = cli({"convert", "a.gguf", "-o", "b.pt", "--device", "cpu"});
    EXPECT_EQ(convert.code, 2) << "convert takes no --device";
}

TEST_F(Cli, BadInputGivesOneLineNamingTheProblem)
{
    TempDir dir;
    const std::string junk = dir.file("junk.gguf");
    std::ofstream(junk) << "definitely not a gguf file";
    struct Case {
        std::vector<std::string> args;
        std::string needle;
    };
    const std::vector<Case> cases{
        {{"convert", junk, "-o", dir.file("x.pt")}, junk},
        {{"info", "--model", dir.file("missing.pt")}, "missing.pt"},
        {{"run", "--model", junk, "--prompt", "x"}, junk},
        {{"run", "--model", tinyModel(), "--prompt", ""}, "empty"},
        {{"run", "--model", tinyModel(), "--prompt", std::string(400, 'z')}, "context"},
        {{"run", "--model", tinyModel(), "--ids", "1,99999"}, "99999"},
    };
    for (const auto &c : cases) {
        const CliRun r = cli(c.args);
        EXPECT_EQ(r.code, 1) << c.args[0] << " " << r.err;
        EXPECT_NE(r.err.find(c.needle), std::string::npos) << r.err;
        EXPECT_EQ(r.errLines(), 1) << r.err;
    }
    std::error_code ec;
    EXPECT_FALSE(std::filesystem::exists(dir.file("x.pt"), ec)) << "no half-written archive";
    EXPECT_FALSE(sinkscope::testing::siblingStartingWith(dir.file("x.pt"), ".partial"));
}

TEST(CliDefaultModel, RunWithoutModelFlagUsesSmolLM2)
{
    if (st::smollm2GgufPath().empty()) {
        GTEST_SKIP() << "default model not installed (run tools/setup.sh)";
    }
    const CliRun r = cli({"run", "--prompt", "The capital of France is", "--json"});
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["first_token_mass"].size(), 30u);
    EXPECT_EQ(j["first_token_mass"][0].size(), 9u);
    EXPECT_EQ(j["top_k"][0]["token"], " Paris");
}

TEST(CliDoctor, ReportsTheBlasSpeedItMeasured)
{
    // The speed itself is the doctor's verdict, not a test's (a shared machine can be slow for a while):
    // the report carries the measured rate, the library and a verdict that matches the exit code.
    const CliRun r = cli({"doctor", "--json"});
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_TRUE(j["matmul_gflops"].is_number()) << r.out;
    EXPECT_GT(j["matmul_gflops"].get<double>(), 0.0);
    EXPECT_GT(j["matmul_n"].get<int>(), 0);
    EXPECT_TRUE(j["blas_library"].is_string());
    EXPECT_EQ(r.code, j["slow_blas"].get<bool>() ? 1 : 0) << r.out;
}

// Debian's reference BLAS (package libblas3) put in front of OpenBLAS: the check must notice, the
// doctor must fail, and every forward-pass command must warn with the fix.
TEST_F(Cli, ReferenceBlasIsDetectedAndExplained)
{
    const std::string referenceDir = "/usr/lib/x86_64-linux-gnu/blas";
    if (!std::filesystem::exists(referenceDir + "/libblas.so.3")) {
        GTEST_SKIP() << "reference BLAS (libblas3) not installed";
    }
    const std::string env = "LD_LIBRARY_PATH=" + referenceDir;
    const CliRun doctor = cli({"doctor", "--json"}, env);
    EXPECT_EQ(doctor.code, 1) << doctor.out;
    const auto j = nlohmann::json::parse(doctor.out);
    EXPECT_TRUE(j["slow_blas"].get<bool>());
    EXPECT_LT(j["matmul_gflops"].get<double>(), 15.0);

    const CliRun run = cli({"run", "--model", tinyModel(), "--prompt", "the cat"}, env);
    EXPECT_EQ(run.code, 0) << run.err;
    EXPECT_NE(run.err.find("warning:"), std::string::npos) << run.err;
    EXPECT_NE(run.err.find("apt-get install libopenblas0-pthread"), std::string::npos) << run.err;
}

TEST_F(Cli, AnalyzeWritesMetricsJsonAndHeadsCsvOnBothPaths)
{
    TempDir out;
    std::string materialised, streaming;
    for (const char *path : {"materialized", "streaming"}) {
        const std::string dir = out.file(path);
        const CliRun r = cli({"analyze", "--model", tinyModel(), "--prompt", "the cat sat on the mat", "--out", dir,
                              "--path", path, "--json"});
        ASSERT_EQ(r.code, 0) << r.err;
        const auto j = nlohmann::json::parse(r.out);
        EXPECT_TRUE(j.is_object());
        std::ifstream csv(dir + "/heads.csv");
        std::string header, line;
        std::getline(csv, header);
        EXPECT_EQ(header.rfind("layer,head,first_token_mass", 0), 0u) << header;
        int rows = 0;
        std::string firstRows;
        while (std::getline(csv, line)) {
            ++rows;
            // layer,head,first_token_mass: the same numbers from both paths.
            auto third = line.find(',', line.find(',') + 1);
            firstRows += line.substr(0, line.find(',', third + 1)) + "\n";
        }
        EXPECT_EQ(rows, 2 * 4); // layers x heads
        EXPECT_TRUE(std::filesystem::exists(dir + "/metrics.json"));
        (std::string(path) == "streaming" ? streaming : materialised) = firstRows;
    }
    EXPECT_EQ(materialised.substr(0, 8), streaming.substr(0, 8));
    const CliRun bad =
        cli({"analyze", "--model", tinyModel(), "--prompt", "x", "--out", out.file("b"), "--path", "fast"});
    EXPECT_EQ(bad.code, 2);
}

TEST_F(Cli, AnalyzeFiguresNeedTheGuiBuildOrAreWritten)
{
    TempDir out;
    // A bad format is a usage error before any work.
    const CliRun bad =
        cli({"analyze", "--model", tinyModel(), "--prompt", "x", "--out", out.file("a"), "--format", "png,bmp"});
    EXPECT_EQ(bad.code, 2);
    EXPECT_NE(bad.err.find("'bmp' is not png, svg or pdf"), std::string::npos) << bad.err;
    const CliRun both = cli({"analyze", "--model", tinyModel(), "--prompt", "x", "--out", out.file("a"), "--format",
                             "png", "--no-figures"});
    EXPECT_EQ(both.code, 2);
    // --no-figures: metrics only, in every build.
    const CliRun none =
        cli({"analyze", "--model", tinyModel(), "--prompt", "the cat", "--out", out.file("n"), "--no-figures"});
    ASSERT_EQ(none.code, 0) << none.err;
    EXPECT_TRUE(std::filesystem::exists(out.file("n") + "/metrics.json"));
    EXPECT_FALSE(std::filesystem::exists(out.file("n") + "/sink-heatmap.png"));
    // --format png: the figures (GUI build), or metrics.json and heads.csv plus an error that says why
    // there are no figures (a build without Qt, e.g. the ASan preset).
    const std::string dir = out.file("f");
    const CliRun r = cli({"analyze", "--model", tinyModel(), "--prompt", "the cat", "--out", dir, "--format", "png"},
                         "env -u DISPLAY -u QT_QPA_PLATFORM");
    EXPECT_TRUE(std::filesystem::exists(dir + "/metrics.json"));
    EXPECT_TRUE(std::filesystem::exists(dir + "/heads.csv"));
    if (r.code == 0) {
        std::ifstream png(dir + "/sink-heatmap.png", std::ios::binary);
        std::string magic(8, '\0');
        png.read(magic.data(), 8);
        EXPECT_EQ(magic, std::string("\x89PNG\r\n\x1a\n", 8));
    } else {
        EXPECT_EQ(r.code, 1);
        EXPECT_NE(r.err.find("figures need a build with SINKSCOPE_BUILD_GUI=ON"), std::string::npos) << r.err;
        EXPECT_FALSE(std::filesystem::exists(dir + "/sink-heatmap.png"));
    }
}
