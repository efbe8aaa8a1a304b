// The memory guard as a user meets it: sinkscope-cli under `ulimit -v` with requests that must and must
// not fit. A refusal is one line with the need, the limit and the way out, exit code 1; never a kill or a
// traceback. Uses the default model (skips without it).
#include "sinkscope/config.h"
#include "support/cli_runner.h"
#include "support/test_paths.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <string>

namespace st = sinkscope::testing;
using st::CliRun;

namespace {

// 6 GiB of address space: LibTorch, OpenBLAS and the model take 1-3 GiB of it at start-up (mostly
// reserved thread stacks and arenas), which leaves room for the lean passes and not for every map of a
// long prompt (9 GiB at 2048 tokens, twice).
constexpr const char *kLimit = "ulimit -v 6291456 && SINKSCOPE_TORCH_THREADS=1";

std::string ids(int n)
{
    std::string s;
    for (int i = 0; i < n; ++i) {
        s += (i ? "," : "") + std::to_string(100 + (i * 7919) % 40000);
    }
    return s;
}

// The error is one line: the last line of stderr, and no traceback anywhere (a BLAS warning may come
// first on a loaded machine).
bool oneErrorLine(const std::string &err)
{
    const size_t at = err.find(": error: ");
    return at != std::string::npos && err.find('\n', at) == err.size() - 1 &&
           err.find("Traceback") == std::string::npos && err.find("TorchScript") == std::string::npos;
}

class MemoryCli : public ::testing::Test
{
protected:
    void SetUp() override
    {
#if SINKSCOPE_SANITIZE
        GTEST_SKIP() << "ASan reserves terabytes of address space: a ulimit -v cannot apply to it";
#endif
        if (st::smollm2GgufPath().empty()) {
            GTEST_SKIP() << "default model not installed (run tools/setup.sh)";
        }
        // The default model's archive is converted once, without a limit, as a user's first run does.
        const CliRun warm = st::runCli({"info"}, "SINKSCOPE_TORCH_THREADS=1");
        ASSERT_EQ(warm.code, 0) << warm.err;
    }
};

} // namespace

TEST_F(MemoryCli, EveryMapOfALongPromptIsRefusedInOneLine)
{
    const CliRun r = st::runCli(
        {"analyze", "--path", "materialized", "--ids", ids(2048), "--no-figures", "--out", st::TempDir().path()},
        kLimit);
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_TRUE(oneErrorLine(r.err)) << r.err;
    EXPECT_NE(r.err.find("sinkscope-cli analyze: error: a forward pass of 2048 tokens needs about "), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("attention maps of 30 layers"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("is left under the address-space limit (ulimit -v) (6.0 GB)"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("the streaming path"), std::string::npos) << r.err;
}

TEST_F(MemoryCli, WhatFitsRunsUnderTheSameLimit)
{
    st::TempDir out;
    const CliRun maps = st::runCli(
        {"analyze", "--path", "materialized", "--ids", ids(256), "--no-figures", "--out", out.path()}, kLimit);
    EXPECT_EQ(maps.code, 0) << maps.err;
    // The automatic path streams a prompt whose maps would not fit, with the same metrics.
    const CliRun streamed =
        st::runCli({"analyze", "--ids", ids(1024), "--no-figures", "--out", out.path(), "--json"}, kLimit);
    ASSERT_EQ(streamed.code, 0) << streamed.err;
    const auto j = nlohmann::json::parse(streamed.out);
    EXPECT_EQ(j["tokens"].size(), 1024u);
    // The case: a 4096-token run keeps nothing quadratic.
    const CliRun run = st::runCli({"run", "--ids", ids(4096), "--json"}, kLimit);
    ASSERT_EQ(run.code, 0) << run.err;
    EXPECT_EQ(nlohmann::json::parse(run.out)["first_token_mass"].size(), 30u);
}

TEST_F(MemoryCli, AnAllocationFailureTheGuardLetsThroughIsStillOneLine)
{
    const CliRun r = st::runCli(
        {"analyze", "--path", "materialized", "--ids", ids(2048), "--no-figures", "--out", st::TempDir().path()},
        std::string(kLimit) + " SINKSCOPE_MEMORY_GUARD=off");
    EXPECT_EQ(r.code, 1) << r.err;
    EXPECT_TRUE(oneErrorLine(r.err)) << r.err;
    EXPECT_NE(r.err.find("out of memory"), std::string::npos) << r.err;
}
