// Loading model files: generic TorchScript modules and everything that is not a model.
#include "sinkscope/model/convert.h"
#include "sinkscope/model/model.h"
#include "support/generic_module.h"
#include "support/test_paths.h"

#include <gtest/gtest.h>
#include <torch/script.h>

#include <fstream>

using namespace sinkscope;
using sinkscope::testing::TempDir;
using sinkscope::testing::writeGenericModule;

namespace {

void writeBytes(const std::string &path, const std::string &bytes)
{
    std::ofstream(path, std::ios::binary) << bytes;
}

} // namespace

TEST(ModelLoading, GenericTorchScriptModuleLoadsWithItsLimitsStated)
{
    TempDir dir;
    const auto path = dir.file("generic.pt");
    writeGenericModule(path);
    auto model = Model::load(path);
    ASSERT_TRUE(model) << model.error().message;
    EXPECT_EQ((*model)->info().kind, ModelKind::Generic);
    EXPECT_FALSE((*model)->hasContract());
    EXPECT_FALSE((*model)->tokenizer());
    EXPECT_NE((*model)->info().limitation.find("no tokenizer"), std::string::npos);

    auto r = (*model)->forward(ForwardRequest{.tokens = {1, 2, 3, 6}});
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->logits.shape, (std::vector<int64_t>{4, 7}));
    ASSERT_EQ(r->attention.size(), 2u);
    EXPECT_EQ(r->attention[1].shape, (std::vector<int64_t>{2, 4, 4}));
    // Causal rows that sum to one.
    for (int q = 0; q < 4; ++q) {
        double sum = 0;
        for (int k = 0; k < 4; ++k) {
            sum += r->attention[0].data[q * 4 + k];
        }
        EXPECT_NEAR(sum, 1.0, 1e-5);
    }
    EXPECT_EQ(r->attention[0].data[0 * 4 + 1], 0.0f);

    // Controls need the SinkScope contract: a clear refusal, not a crash.
    Controls c;
    c.tensors["temperature"] = FloatArray{{1, 2}, {1, 1}};
    auto refused = (*model)->forward(ForwardRequest{.tokens = {1, 2}, .controls = c});
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, ErrorCode::Unsupported);
    EXPECT_NE(refused.error().message.find(path), std::string::npos);

    auto gen = (*model)->generate({1, 2}, GenerateOptions{.maxNewTokens = 3});
    ASSERT_TRUE(gen) << gen.error().message;
    EXPECT_EQ(gen->size(), 3u);
}

TEST(ModelLoading, MissingFileNamesThePath)
{
    auto model = Model::load("/nonexistent/model.pt");
    ASSERT_FALSE(model);
    EXPECT_EQ(model.error().code, ErrorCode::Io);
    EXPECT_NE(model.error().message.find("/nonexistent/model.pt"), std::string::npos);
}

TEST(ModelLoading, RandomBytesAreNotAModel)
{
    TempDir dir;
    const auto path = dir.file("junk.pt");
    writeBytes(path, std::string(1000, '\x42'));
    auto model = Model::load(path);
    ASSERT_FALSE(model);
    EXPECT_EQ(model.error().code, ErrorCode::NotAModel);
    EXPECT_NE(model.error().message.find(path), std::string::npos);
}

TEST(ModelLoading, ZipThatIsNotTorchScriptIsNotAModel)
{
    TempDir dir;
    const auto path = dir.file("fake.pt");
    // A zip signature followed by garbage: starts like an archive, fails to parse.
    writeBytes(path, std::string("PK\x03\x04", 4) + std::string(300, '\0'));
    auto model = Model::load(path);
    ASSERT_FALSE(model);
    EXPECT_EQ(model.error().code, ErrorCode::NotAModel);
    EXPECT_NE(model.error().message.find(path), std::string::npos);
}

TEST(ModelLoading, GgufFileAsksForConversion)
{
    TempDir dir;
    const auto path = dir.file("model.gguf");
    writeBytes(path, std::string("GGUF\x03\0\0\0", 8) + std::string(64, '\0'));
    auto model = Model::load(path);
    ASSERT_FALSE(model);
    EXPECT_EQ(model.error().code, ErrorCode::NotAModel);
    EXPECT_NE(model.error().message.find("convert"), std::string::npos);
}

TEST(ModelLoading, TorchScriptWithoutForwardIsNotAModel)
{
    TempDir dir;
    const auto path = dir.file("noforward.pt");
    torch::jit::Module m("NoForward");
    m.define("def helper(self, x: Tensor) -> Tensor:\n    return x\n");
    m.save(path);
    auto model = Model::load(path);
    ASSERT_FALSE(model);
    EXPECT_EQ(model.error().code, ErrorCode::NotAModel);
    EXPECT_NE(model.error().message.find("forward"), std::string::npos);
}

TEST(ModelLoading, ArchiveWithCorruptConfigNamesTheEntry)
{
    TempDir dir;
    const auto path = dir.file("badconfig.pt");
    torch::jit::Module m("BadConfig");
    m.define(
        "def forward(self, ids: Tensor, controls: Dict[str, Tensor]) -> Dict[str, Tensor]:\n    return controls\n");
    torch::jit::ExtraFilesMap extra{{"sinkscope/config.json", "{\"architecture\": \"llama\", \"layers\": 2"}};
    m.save(path, extra);
    auto model = Model::load(path);
    ASSERT_FALSE(model);
    EXPECT_EQ(model.error().code, ErrorCode::Corrupt);
    EXPECT_NE(model.error().message.find("sinkscope/config.json"), std::string::npos);
}

TEST(ModelLoading, DevicesThatLibTorchCannotUseAreRefusedByName)
{
    TempDir dir;
    const auto path = dir.file("generic.pt");
    writeGenericModule(path);
    // No machine this suite runs on has 65 GPUs, so this is refused on CPU and CUDA LibTorch alike.
    auto missing = Model::load(path, LoadOptions{.device = "cuda:64"});
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, ErrorCode::InvalidArgument);
    EXPECT_NE(missing.error().message.find(path + ": cannot load on cuda:64"), std::string::npos)
        << missing.error().message;

    auto bogus = Model::load(path, LoadOptions{.device = "tpu"});
    ASSERT_FALSE(bogus);
    EXPECT_NE(bogus.error().message.find("unknown device 'tpu'"), std::string::npos) << bogus.error().message;

    auto cpu = Model::load(path, LoadOptions{.device = "cpu"});
    ASSERT_TRUE(cpu) << cpu.error().message;
    EXPECT_EQ((*cpu)->info().device, "cpu");
}
