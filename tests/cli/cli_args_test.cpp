// The argument layer of sinkscope::cli in-process (runCli with string streams): the help built from
// the option definitions, the exit codes and one-line messages of usage errors, and option aliases.
#include "cli.h"

#include "support/test_paths.h"
#include "support/tiny_models.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Result {
    int code = -1;
    std::string out, err;
};

Result cli(const std::vector<std::string> &args)
{
    std::ostringstream out, err;
    const int code = sinkscope::cli::runCli(args, out, err);
    return {code, out.str(), err.str()};
}

// The help entry of `option` ("  --top-k K   ..." and its wrapped lines, joined by single spaces), empty
// when the help has none.
std::string optionEntry(const std::string &help, const std::string &option)
{
    std::istringstream in(help);
    std::string entry;
    for (std::string line; std::getline(in, line);) {
        const bool starts = line.rfind("  " + option + " ", 0) == 0 || line.rfind("  " + option + ",", 0) == 0;
        if (entry.empty() && starts) {
            entry = line;
        } else if (!entry.empty() && line.rfind("    ", 0) == 0) {
            entry += " " + line.substr(line.find_first_not_of(' '));
        } else if (!entry.empty()) {
            break;
        }
    }
    return entry;
}

const std::vector<std::string> kCommands{"info",    "convert",     "run",        "generate",   "doctor", "analyze",
                                         "compare", "mitigations", "act-search", "stream-ppl", "probe"};

} // namespace

TEST(CliArgs, EveryCommandsHelpShowsItsOptionsWithTheirDefaults)
{
    for (const auto &cmd : kCommands) {
        const Result r = cli({cmd, "--help"});
        EXPECT_EQ(r.code, 0) << cmd;
        EXPECT_NE(r.out.find("Usage: sinkscope-cli " + cmd), std::string::npos) << r.out;
        EXPECT_FALSE(optionEntry(r.out, "-h, --help").empty()) << cmd;
        if (!optionEntry(r.out, "--model").empty()) {
            EXPECT_NE(optionEntry(r.out, "--device DEVICE").find("default cpu"), std::string::npos) << cmd;
        }
    }
    struct Default {
        std::string cmd, option, shown;
    };
    for (const auto &d : std::vector<Default>{{"run", "--top-k", "(1 to 1000; default 10)"},
                                              {"generate", "-n", "default 20"},
                                              {"compare", "--top-k", "default 5"},
                                              {"compare", "--mitigation", "required"},
                                              {"analyze", "--epsilon", "(0 to 1; default 0.3)"},
                                              {"analyze", "--path", "auto|materialized|streaming; default auto"},
                                              {"act-search", "--max-tokens", "default 64"},
                                              {"act-search", "--beta", "default 0.4"},
                                              {"stream-ppl", "--window", "default 256"},
                                              {"probe", "--compare", "default none"}}) {
        const std::string line = optionEntry(cli({d.cmd, "--help"}).out, d.option);
        EXPECT_NE(line.find(d.shown), std::string::npos) << d.cmd << " " << d.option << ": " << line;
    }
}

TEST(CliArgs, OverviewListsEveryCommand)
{
    const Result none = cli({});
    EXPECT_EQ(none.code, 2);
    const Result help = cli({"--help"});
    EXPECT_EQ(help.code, 0);
    EXPECT_EQ(help.out, none.out);
    const std::string block = help.out.substr(help.out.find("Commands:\n"));
    for (const auto &cmd : kCommands) {
        EXPECT_NE(block.find("\n  " + cmd + " "), std::string::npos) << cmd;
    }
    EXPECT_EQ(cli({"--version"}).out.rfind("sinkscope-cli ", 0), 0u);
}

// Parse errors come before any model loads: exit 2 and one line that names the option.
TEST(CliArgs, UsageErrorsExitTwoWithOneLineNamingTheOption)
{
    struct Case {
        std::vector<std::string> args;
        std::string option;
    };
    for (const auto &c : std::vector<Case>{{{"run", "--prompt", "x", "--top-k", "0"}, "--top-k"}, // range
                                           {{"run", "--prompt", "x", "--bogus"}, "--bogus"},      // unknown
                                           {{"analyze", "--prompt", "x"}, "--out"},               // required
                                           {{"analyze", "--prompt", "x", "--out", "d", "--path", "fast"}, "--path"},
                                           {{"run", "--prompt", "x", "--ids", "1,2"}, "--ids"}, // excluded
                                           {{"generate", "--prompt", "x", "--temperature", "nan"}, "--temperature"},
                                           {{"run", "--prompt", "x", "--top-k"}, "--top-k needs a value"}}) {
        const Result r = cli(c.args);
        EXPECT_EQ(r.code, 2) << c.args[0] << " " << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
        EXPECT_EQ(r.err.rfind("sinkscope-cli " + c.args[0] + ": ", 0), 0u) << r.err;
        EXPECT_NE(r.err.find(c.option), std::string::npos) << r.err;
        EXPECT_NE(r.err.find("(try 'sinkscope-cli " + c.args[0] + " --help')"), std::string::npos) << r.err;
        EXPECT_TRUE(r.out.empty()) << r.out;
    }
}

// Found by fuzzing (tests/fuzz/regressions/cli_lists/id-past-int64): an id past int64 passed the check
// and became 9223372036854775807. It is a usage error before any model loads.
TEST(CliArgs, IdsPastInt64AreUsageErrors)
{
    for (const char *ids : {"99999999999999999999", "1,9223372036854775808", "-9223372036854775809,2"}) {
        const Result r = cli({"run", "--ids", ids});
        EXPECT_EQ(r.code, 2) << ids << ": " << r.err;
        EXPECT_NE(r.err.find("--ids"), std::string::npos) << r.err;
        EXPECT_NE(r.err.find("is not a 64-bit integer"), std::string::npos) << r.err;
    }
}

TEST(CliArgs, OutputIsAnAliasOfO)
{
    sinkscope::testing::TempDir dir;
    sinkscope::testing::writeTinyLlamaGguf(dir.file("tiny.gguf"));
    for (const auto &flag : {"-o", "--output"}) {
        const std::string archive = dir.file(std::string("tiny") + flag + ".pt");
        const Result r = cli({"convert", dir.file("tiny.gguf"), flag, archive});
        EXPECT_EQ(r.code, 0) << flag << " " << r.err;
        EXPECT_TRUE(std::filesystem::exists(archive)) << flag;
    }
    const Result equals = cli({"convert", dir.file("tiny.gguf"), "--output=" + dir.file("eq.pt")});
    EXPECT_EQ(equals.code, 0) << equals.err;
    EXPECT_TRUE(std::filesystem::exists(dir.file("eq.pt")));
}
