// Reading a checkpoint's training step from its name, its folder or its config.
#include "sinkscope/model/checkpoint.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace sinkscope {
namespace {

namespace fs = std::filesystem;

TEST(Checkpoint, StepFromTheName)
{
    EXPECT_EQ(stepInName("step1000"), 1000);
    EXPECT_EQ(stepInName("pythia-70m-step143000"), 143000);
    EXPECT_EQ(stepInName("checkpoint-500"), 500);
    EXPECT_EQ(stepInName("ckpt_20"), 20);
    EXPECT_EQ(stepInName("model.iter=7"), 7);
    EXPECT_EQ(stepInName("Global_Step12"), 12);
    EXPECT_EQ(stepInName("tiny-llama-step2000"), 2000);
    EXPECT_EQ(stepInName("run-step5-checkpoint-6"), 6); // the last match
    EXPECT_FALSE(stepInName("footstep1000"));           // not a word of its own
    EXPECT_FALSE(stepInName("smollm2-135m"));
    EXPECT_FALSE(stepInName("step"));
    EXPECT_FALSE(stepInName("step99999999999999999999")); // too many digits: not a step
}

TEST(Checkpoint, StepFromFileFolderAndConfig)
{
    const fs::path root = fs::temp_directory_path() / ("sinkscope_series_" + std::to_string(::getpid()));
    fs::create_directories(root / "run" / "step300");
    fs::create_directories(root / "plain");
    fs::create_directories(root / "trainer");
    std::ofstream(root / "plain" / "config.json") << R"({"global_step": 42, "hidden_size": 8})";
    std::ofstream(root / "trainer" / "config.json") << R"({"hidden_size": 8})";
    std::ofstream(root / "trainer" / "trainer_state.json") << R"({"global_step": 77})";
    std::ofstream(root / "run" / "step300" / "model.safetensors") << "x";
    std::ofstream(root / "bad.json") << "{";

    EXPECT_EQ(checkpointStep((root / "m-step12.gguf").string()), 12); // the file's name (need not exist)
    EXPECT_EQ(checkpointStep((root / "run" / "step300").string()), 300);
    EXPECT_EQ(checkpointStep((root / "run" / "step300" / "").string()), 300);
    EXPECT_EQ(checkpointStep((root / "run" / "step300" / "model.safetensors").string()), 300);
    EXPECT_EQ(checkpointStep((root / "plain").string()), 42);
    EXPECT_EQ(checkpointStep((root / "trainer").string()), 77);
    EXPECT_FALSE(checkpointStep((root / "bad.json").string()));
    EXPECT_FALSE(checkpointStep((root / "nothing.gguf").string()));
    fs::remove_all(root);
}

TEST(Checkpoint, OrderBySteps)
{
    const std::vector<std::optional<int64_t>> steps = {3000, std::nullopt, 0, 1000, std::nullopt};
    EXPECT_EQ(orderBySteps(steps), (std::vector<size_t>{2, 3, 0, 1, 4}));
}

} // namespace
} // namespace sinkscope
