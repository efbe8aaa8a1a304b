// `sinkscope-cli convert <folder> -o out.pt` on Hugging Face folders, as a user runs it: a good folder
// converts; a broken one (tests/core/model/hf_bad_input_test.cpp has every case in-process) exits 1 with
// one line on stderr naming the file at fault, and leaves no archive behind.
#include "support/cli_runner.h"
#include "support/test_paths.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <functional>

namespace st = sinkscope::testing;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string sourceFolder()
{
    return st::testDataDir() + "/families/qwen2/hf";
}

class CliConvertFolder : public ::testing::Test
{
protected:
    void SetUp() override { fs::copy(sourceFolder(), folder(), fs::copy_options::recursive); }

    std::string folder() const { return m_dir.file("hf"); }
    std::string path(const std::string &name) const { return (fs::path(folder()) / name).string(); }
    std::string output() const { return m_dir.file("out.pt"); }

    void editConfig(const std::function<void(json &)> &edit) const
    {
        json j = json::parse(std::ifstream(path("config.json")));
        edit(j);
        std::ofstream(path("config.json"), std::ios::trunc) << j.dump(2);
    }

    // Runs convert and checks a refusal: exit 1, one line naming `fileAtFault` and `problem`, no archive.
    void expectRefused(const std::string &fileAtFault, const std::string &problem) const
    {
        const st::CliRun r = st::runCli({"convert", folder(), "-o", output()});
        EXPECT_EQ(r.code, 1) << r.err;
        EXPECT_EQ(r.errLines(), 1) << "not one line: " << r.err;
        EXPECT_NE(r.err.find(fileAtFault), std::string::npos) << "file at fault not named: " << r.err;
        EXPECT_NE(r.err.find(problem), std::string::npos) << "'" << problem << "' not in: " << r.err;
        std::error_code ec;
        EXPECT_FALSE(fs::exists(output(), ec)) << "an archive was written";
        EXPECT_FALSE(st::siblingStartingWith(output(), ".partial")) << "a partial archive was left behind";
    }

    st::TempDir m_dir;
};

} // namespace

TEST_F(CliConvertFolder, GoodFolderConverts)
{
    const st::CliRun r = st::runCli({"convert", folder(), "-o", output()});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("wrote " + output()), std::string::npos) << r.out;
    EXPECT_TRUE(fs::exists(output()));
    // Its config.json names the same folder.
    const st::CliRun viaConfig = st::runCli({"convert", path("config.json"), "-o", m_dir.file("b.pt")});
    EXPECT_EQ(viaConfig.code, 0) << viaConfig.err;
}

TEST_F(CliConvertFolder, MissingConfig)
{
    fs::remove(path("config.json"));
    expectRefused(folder(), "no config.json");
}

TEST_F(CliConvertFolder, GarbageConfig)
{
    std::ofstream(path("config.json"), std::ios::trunc) << "{\"model_type\": ";
    expectRefused(path("config.json"), "not a valid JSON object");
}

TEST_F(CliConvertFolder, UnknownModelType)
{
    editConfig([](json &j) { j["model_type"] = "mamba"; });
    expectRefused(path("config.json"), "model_type 'mamba' is not supported");
}

TEST_F(CliConvertFolder, TruncatedWeights)
{
    fs::resize_file(path("model.safetensors"), fs::file_size(path("model.safetensors")) / 2);
    expectRefused(path("model.safetensors"), "past the end of the data");
}

TEST_F(CliConvertFolder, MissingTokenizer)
{
    fs::remove(path("tokenizer.json"));
    expectRefused(folder(), "no tokenizer.json");
}
