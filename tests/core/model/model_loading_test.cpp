// Loading model files: generic TorchScript modules and everything that is not a model.
#include "sinkscope/analysis/metrics.h"
#include "sinkscope/model/convert.h"
#include "sinkscope/model/model.h"
#include "support/reference_data.h"
#include "support/test_paths.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/script.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>

using namespace sinkscope;
using nlohmann::json;
using sinkscope::testing::TempDir;
namespace st = sinkscope::testing;

namespace {

// The traced module against transformers' eager float32 run (tests/data/families/traced/reference.json).
constexpr double kLogitsTolerance = 1e-4;
constexpr double kAttentionTolerance = 1e-5;

std::string tracedModelPath()
{
    return sinkscope::testing::testDataDir() + "/families/traced/llama_traced.pt";
}

json tracedReference()
{
    std::ifstream in(sinkscope::testing::testDataDir() + "/families/traced/reference.json");
    return json::parse(in);
}

std::string formatDiff(double d)
{
    char text[32];
    std::snprintf(text, sizeof text, "%.2e", d);
    return text;
}

void writeBytes(const std::string &path, const std::string &bytes)
{
    std::ofstream(path, std::ios::binary) << bytes;
}

} // namespace

// A real traced Hugging Face model (tests/data/families/traced/: torch.jit.trace of a tiny random Llama
// wrapped to return (logits, (attn_layer0, attn_layer1)), tools/make_family_models.py) loads as a
// generic module; its outputs match what transformers computed for the same input.
TEST(ModelLoading, TracedHuggingFaceModelLoadsAsGenericWithItsLimitsStated)
{
    const auto path = tracedModelPath();
    auto model = Model::load(path);
    ASSERT_TRUE(model) << model.error().message;
    EXPECT_EQ((*model)->info().kind, ModelKind::Generic);
    EXPECT_FALSE((*model)->hasContract());
    EXPECT_FALSE((*model)->tokenizer());
    EXPECT_NE((*model)->info().limitation.find("no tokenizer"), std::string::npos);

    const json ref = tracedReference();
    const int64_t layers = ref["config"]["num_hidden_layers"], heads = ref["config"]["num_attention_heads"];
    const int64_t vocab = ref["config"]["vocab_size"];
    double worstLogits = 0, worstAttention = 0;
    for (const auto &seq : ref["sequences"]) {
        const auto ids = seq["input_ids"].get<std::vector<int64_t>>();
        const auto t = static_cast<int64_t>(ids.size());
        SCOPED_TRACE("T = " + std::to_string(t));
        auto r = (*model)->forward(ForwardRequest{.tokens = ids, .capture = {.allAttention = true}});
        ASSERT_TRUE(r) << r.error().message;
        EXPECT_EQ(r->logits.shape, (std::vector<int64_t>{t, vocab}));
        const double logitsDiff = st::maxAbsDiff(r->logits.data, st::flattenJson(seq["logits"]));
        EXPECT_LT(logitsDiff, kLogitsTolerance);
        worstLogits = std::max(worstLogits, logitsDiff);
        ASSERT_EQ(r->attention.size(), static_cast<size_t>(layers));
        for (int64_t l = 0; l < layers; ++l) {
            EXPECT_EQ(r->attention[size_t(l)].shape, (std::vector<int64_t>{heads, t, t}));
            const double d =
                st::maxAbsDiff(r->attention[size_t(l)].data, st::flattenJson(seq["attentions"][size_t(l)]));
            EXPECT_LT(d, kAttentionTolerance) << "layer " << l;
            worstAttention = std::max(worstAttention, d);
        }
    }
    // For docs/models.md (--gtest_output=json:...).
    RecordProperty("max_abs_diff_logits", formatDiff(worstLogits));
    RecordProperty("max_abs_diff_attention", formatDiff(worstAttention));

    // Layers and heads are inferred from what the module returns; the metrics that need only attention
    // are computed.
    const auto ids = ref["sequences"][1]["input_ids"].get<std::vector<int64_t>>();
    auto run = analyzeRun(**model, ids);
    ASSERT_TRUE(run) << run.error().message;
    EXPECT_EQ(run->layers, layers);
    EXPECT_EQ(run->heads, heads);
    ASSERT_TRUE(run->metrics) << (run->metricsError ? run->metricsError->message : "");
    EXPECT_EQ(run->metrics->layers, layers);

    // Controls need the SinkScope contract: a clear refusal, not a crash.
    Controls c;
    c.tensors["temperature"] = FloatArray{{1, 2}, {1, 1}};
    auto refused = (*model)->forward(ForwardRequest{.tokens = {1, 2}, .controls = c});
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, ErrorCode::Unsupported);
    EXPECT_NE(refused.error().message.find(path), std::string::npos);

    // Generation reruns the whole sequence per token; its first pick is the reference's last argmax.
    auto gen = (*model)->generate(ids, GenerateOptions{.maxNewTokens = 3, .stopAtEos = false});
    ASSERT_TRUE(gen) << gen.error().message;
    ASSERT_EQ(gen->size(), 3u);
    EXPECT_EQ(gen->front(), ref["sequences"][1]["argmax_ids"].back().get<int64_t>());
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
    const auto path = tracedModelPath();
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
