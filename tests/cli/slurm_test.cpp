// tools/slurm (docs/scale-out.md) on a fake Slurm: tests/cli/fake_slurm/sbatch and srun, first on PATH,
// run a job array's tasks on this machine at the same time and a dependent job after them. The sweep
// (two tiny models, two data sets, three shards) merged must equal the unsharded `sinkscope-cli profile`
// run to 1e-9 in every number of profile.json; a failing shard keeps the merge from running and makes
// the wrapper fail, and --resume reruns only that shard.
#include "support/cli_runner.h"
#include "support/test_paths.h"
#include "support/tiny_models.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

using namespace sinkscope;
namespace st = sinkscope::testing;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr double kTolerance = 1e-9;

std::string sourcePath(const std::string &relative)
{
    return fs::weakly_canonical(fs::path(SINKSCOPE_TEST_DATA_DIR) / ".." / ".." / relative).string();
}

struct Shell {
    int code = -1;
    std::string output;
};

// Runs a bash command line with the fake Slurm first on PATH; stdout and stderr together.
Shell shell(const std::string &command, const std::string &state)
{
    st::TempDir dir;
    const std::string line = "PATH=" + st::shellQuote(sourcePath("tests/cli/fake_slurm")) + ":\"$PATH\" " +
                             "FAKE_SLURM_STATE=" + st::shellQuote(state) + " timeout 600 bash -c " +
                             st::shellQuote(command) + " >" + st::shellQuote(dir.file("out")) + " 2>&1 </dev/null";
    Shell r;
    const int status = std::system(line.c_str());
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream in(dir.file("out"));
    r.output.assign(std::istreambuf_iterator<char>(in), {});
    return r;
}

std::string slurp(const std::string &path)
{
    std::ifstream in(path);
    EXPECT_TRUE(in.good()) << path;
    return {std::istreambuf_iterator<char>(in), {}};
}

json readJson(const std::string &path)
{
    std::ifstream in(path);
    if (!in) {
        ADD_FAILURE() << "cannot read " << path;
        return {};
    }
    return json::parse(in, nullptr, false);
}

// Every difference between two JSON documents, numbers compared to kTolerance (relative above 1).
void compareJson(const json &a, const json &b, const std::string &path, std::vector<std::string> &diffs)
{
    if (diffs.size() > 20) {
        return;
    }
    if (a.is_number() && b.is_number()) {
        const double x = a.get<double>(), y = b.get<double>();
        if (!(std::abs(x - y) <= kTolerance * std::max(1.0, std::abs(x)))) {
            diffs.push_back(path + ": " + a.dump() + " vs " + b.dump());
        }
        return;
    }
    if (a.type() != b.type()) {
        diffs.push_back(path + ": " + a.dump().substr(0, 80) + " vs " + b.dump().substr(0, 80));
        return;
    }
    if (a.is_object()) {
        for (const auto &[key, value] : a.items()) {
            if (!b.contains(key)) {
                diffs.push_back(path + "/" + key + ": missing in the second");
            } else {
                compareJson(value, b.at(key), path + "/" + key, diffs);
            }
        }
        for (const auto &[key, value] : b.items()) {
            if (!a.contains(key)) {
                diffs.push_back(path + "/" + key + ": missing in the first");
            }
        }
    } else if (a.is_array()) {
        if (a.size() != b.size()) {
            diffs.push_back(path + ": " + std::to_string(a.size()) + " vs " + std::to_string(b.size()) + " entries");
            return;
        }
        for (size_t i = 0; i < a.size(); ++i) {
            compareJson(a[i], b[i], path + "/" + std::to_string(i), diffs);
        }
    } else if (a != b) {
        diffs.push_back(path + ": " + a.dump() + " vs " + b.dump());
    }
}

void countNumbers(const json &j, size_t &n)
{
    if (j.is_number()) {
        ++n;
    } else if (j.is_structured()) {
        for (const auto &v : j) {
            countNumbers(v, n);
        }
    }
}

class Slurm : public ::testing::Test
{
protected:
    static void SetUpTestSuite()
    {
        s_dir = std::make_unique<st::TempDir>();
        st::writeTinyLlamaGguf(s_dir->file("tiny.gguf"));
        st::writeTinyLlamaCheckpointGguf(s_dir->file("tiny-step200.gguf"), 200);
        for (const char *name : {"tiny", "tiny-step200"}) {
            const st::CliRun r = st::runCli(
                {"convert", s_dir->file(std::string(name) + ".gguf"), "-o", s_dir->file(std::string(name) + ".pt")});
            ASSERT_EQ(r.code, 0) << r.err;
        }
        // The unsharded reference.
        std::vector<std::string> args = {"profile"};
        for (const std::string &a : profileArgs()) {
            args.push_back(a);
        }
        for (const std::string &a : {std::string("--no-figures"), std::string("--out"), s_dir->file("reference")}) {
            args.push_back(a);
        }
        const st::CliRun r = st::runCli(args);
        ASSERT_EQ(r.code, 0) << r.err;
    }
    static void TearDownTestSuite() { s_dir.reset(); }

    static std::vector<std::string> profileArgs()
    {
        return {"--model",     s_dir->file("tiny.pt"),
                "--model",     s_dir->file("tiny-step200.pt"),
                "--data",      "natural,random",
                "--samples",   "6",
                "--tokens",    "16",
                "--seed",      "3",
                "--bootstrap", "50"};
    }
    // `submit-profile.sh OPTIONS -- PROFILE ARGS` as one shell line.
    static std::string submit(const std::string &options, bool withProfileArgs = true)
    {
        std::string line = st::shellQuote(sourcePath("tools/slurm/submit-profile.sh")) + " " + options;
        if (withProfileArgs) {
            line += " --";
            for (const std::string &a : profileArgs()) {
                line += " " + st::shellQuote(a);
            }
        }
        return line;
    }
    static void expectEqualToReference(const std::string &merged)
    {
        json reference = readJson(s_dir->file("reference") + "/profile.json");
        json sharded = readJson(merged + "/profile.json");
        // The one field that says how the profile was made ("... profile" vs "... merge of 3 shard(s)").
        reference.erase("created_by");
        sharded.erase("created_by");
        size_t numbers = 0;
        countNumbers(reference, numbers);
        EXPECT_GT(numbers, 100u); // the comparison covers the summaries, not just the settings
        std::vector<std::string> diffs;
        compareJson(reference, sharded, "", diffs);
        EXPECT_TRUE(diffs.empty()) << diffs.size() << " differences, first: " << diffs.front();
        for (const char *csv : {"profile_heads.csv", "profile_layers.csv", "profile_models.csv"}) {
            EXPECT_EQ(slurp(s_dir->file("reference") + "/" + csv), slurp(merged + "/" + csv)) << csv;
        }
    }

    static inline std::unique_ptr<st::TempDir> s_dir;
};

} // namespace

TEST_F(Slurm, ArrayOfShardsThenMergeEqualsTheUnshardedProfile)
{
    st::TempDir work;
    const std::string out = work.file("sweep");
    const Shell r = shell(submit("--out " + st::shellQuote(out) + " --shards 3 --cpus 1 --wait --no-figures --cli " +
                                 st::shellQuote(SINKSCOPE_CLI_PATH)),
                          work.file("slurm"));
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_NE(r.output.find("array 1-3"), std::string::npos) << r.output;
    for (int k = 1; k <= 3; ++k) {
        EXPECT_TRUE(fs::exists(out + "/shard-" + std::to_string(k) + "/profile.json")) << k;
        std::ifstream log(out + "/logs/shard-" + std::to_string(k) + ".out");
        const std::string text(std::istreambuf_iterator<char>(log), {});
        EXPECT_NE(text.find("shard " + std::to_string(k) + "/3 done"), std::string::npos) << text;
    }
    // The merge waited for the array: it was submitted with afterok on the array's job id.
    std::ifstream calls(work.file("slurm") + "/calls");
    const std::string submitted(std::istreambuf_iterator<char>(calls), {});
    EXPECT_NE(submitted.find("--array=1-3"), std::string::npos) << submitted;
    EXPECT_NE(submitted.find("--dependency=afterok:1001"), std::string::npos) << submitted;
    expectEqualToReference(out + "/merged");
}

TEST_F(Slurm, AFailedShardStopsTheMergeAndResumeRerunsOnlyIt)
{
    st::TempDir work;
    const std::string out = work.file("sweep");
    // A sinkscope-cli that fails on shard 2 of 3, as a node might.
    const std::string flaky = work.file("flaky-cli");
    std::ofstream(flaky) << "#!/usr/bin/env bash\n"
                         << "case \" $* \" in *' --shard 2/3 '*) echo 'flaky: shard 2 fails' >&2; exit 1 ;; esac\n"
                         << "exec " << st::shellQuote(SINKSCOPE_CLI_PATH) << " \"$@\"\n";
    fs::permissions(flaky, fs::perms::owner_all);
    const Shell failed = shell(submit("--out " + st::shellQuote(out) +
                                      " --shards 3 --cpus 1 --wait --no-figures --cli " + st::shellQuote(flaky)),
                               work.file("slurm"));
    EXPECT_NE(failed.code, 0) << failed.output;
    EXPECT_TRUE(fs::exists(out + "/shard-1/profile.json"));
    EXPECT_FALSE(fs::exists(out + "/shard-2"));
    EXPECT_TRUE(fs::exists(out + "/shard-3/profile.json"));
    EXPECT_FALSE(fs::exists(out + "/merged")); // the dependency was never satisfied
    std::ifstream log(out + "/logs/shard-2.out");
    const std::string text(std::istreambuf_iterator<char>(log), {});
    EXPECT_NE(text.find("failed with exit code 1"), std::string::npos) << text;

    // Other settings into the same folder are refused; --resume takes the saved ones.
    const Shell other =
        shell(submit("--out " + st::shellQuote(out) + " --shards 2 --cli " + st::shellQuote(SINKSCOPE_CLI_PATH)),
              work.file("slurm"));
    EXPECT_EQ(other.code, 2) << other.output;
    const Shell resumed = shell(submit("--out " + st::shellQuote(out) + " --resume --wait --no-figures --cli " +
                                           st::shellQuote(SINKSCOPE_CLI_PATH),
                                       false),
                                work.file("slurm"));
    ASSERT_EQ(resumed.code, 0) << resumed.output;
    EXPECT_NE(resumed.output.find("array 2"), std::string::npos) << resumed.output;
    expectEqualToReference(out + "/merged");
}
