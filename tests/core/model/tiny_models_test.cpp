// Conversion and forward passes of both architecture families on tiny formula-weight GGUF files written
// by the tests (tests/support/tiny_models.h), compared with transformers loading the same files
// (tests/data/reference/tiny_*.json, made by tools/make_tiny_models.py). Also the controls door and
// the key/value cache, which every later mitigation builds on.
#include "sinkscope/model/convert.h"
#include "sinkscope/model/model.h"
#include "support/gguf_writer.h"
#include "support/test_paths.h"
#include "support/tiny_model_files.h"
#include "support/tiny_models.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/script.h>

#include <cmath>
#include <fstream>
#include <limits>

using namespace sinkscope;
namespace st = sinkscope::testing;
using nlohmann::json;
using sinkscope::testing::TempDir;

namespace {

json reference(const std::string &name)
{
    std::ifstream in(st::testDataDir() + "/reference/" + name + ".json");
    return json::parse(in);
}

using st::convertAndLoadTiny;

double maxAbsDiff(const FloatArray &ours, const std::vector<std::vector<double>> &theirs)
{
    double d = 0;
    const size_t cols = theirs.empty() ? 0 : theirs[0].size();
    for (size_t r = 0; r < theirs.size(); ++r) {
        for (size_t c = 0; c < cols; ++c) {
            d = std::max(d, std::abs(ours.data[r * cols + c] - theirs[r][c]));
        }
    }
    return d;
}

struct Family {
    const char *name;
    void (*write)(const std::string &);
};

class TinyFamily : public ::testing::TestWithParam<Family>
{
};

} // namespace

// Logits of every position within 1e-4 (values up to ~6), argmax where the reference margin exceeds
// 1e-3, layer-0 head-0 attention within 1e-5, and greedy continuations token for token.
TEST_P(TinyFamily, MatchesTransformers)
{
    TempDir dir;
    auto model = convertAndLoadTiny(dir, GetParam().name, GetParam().write);
    ASSERT_TRUE(model);
    const json ref = reference(GetParam().name);
    EXPECT_EQ(model->config().layers, ref["config"]["num_layers"].get<int64_t>());
    EXPECT_EQ(model->config().vocabSize, ref["config"]["vocab_size"].get<int64_t>());
    for (const auto &seq : ref["sequences"]) {
        const auto ids = seq["input_ids"].get<std::vector<int64_t>>();
        SCOPED_TRACE("T = " + std::to_string(ids.size()));
        auto r = model->forward(ForwardRequest{.tokens = ids, .capture = {.attentionLayers = {0}}});
        ASSERT_TRUE(r) << r.error().message;
        EXPECT_LT(maxAbsDiff(r->logits, seq["logits"].get<std::vector<std::vector<double>>>()), 1e-4);
        const auto argmax = seq["argmax_ids"].get<std::vector<int64_t>>();
        const auto margin = seq["argmax_margin"].get<std::vector<double>>();
        const int64_t v = r->logits.shape[1];
        for (size_t q = 0; q < ids.size(); ++q) {
            if (margin[q] > 1e-3) {
                const float *row = r->logits.data.data() + static_cast<int64_t>(q) * v;
                EXPECT_EQ(std::max_element(row, row + v) - row, argmax[q]) << "position " << q;
            }
        }
        if (seq.contains("attention_layer0_head0")) {
            const auto att = seq["attention_layer0_head0"].get<std::vector<std::vector<double>>>();
            FloatArray head0{{static_cast<int64_t>(ids.size()), static_cast<int64_t>(ids.size())}, {}};
            head0.data.assign(r->attention[0].data.begin(), r->attention[0].data.begin() + head0.numel());
            EXPECT_LT(maxAbsDiff(head0, att), 1e-5);
        }
        auto gen = model->generate(ids, GenerateOptions{.maxNewTokens = 10, .stopAtEos = false});
        ASSERT_TRUE(gen) << gen.error().message;
        EXPECT_EQ(*gen, seq["greedy_ids"].get<std::vector<int64_t>>());
    }
}

// The key/value cache (generate) and full recomputation give the same logits.
TEST_P(TinyFamily, CachedDecodingEqualsRecomputation)
{
    TempDir dir;
    auto model = convertAndLoadTiny(dir, GetParam().name, GetParam().write);
    ASSERT_TRUE(model);
    std::vector<int64_t> seq{5, 17, 200, 33};
    auto gen = model->generate(seq, GenerateOptions{.maxNewTokens = 12, .stopAtEos = false});
    ASSERT_TRUE(gen);
    for (int64_t next : *gen) {
        auto full = model->forward(ForwardRequest{.tokens = seq, .capture = {.lastLogitsOnly = true}});
        ASSERT_TRUE(full);
        const auto &l = full->logits.data;
        EXPECT_EQ(std::max_element(l.begin(), l.end()) - l.begin(), next);
        seq.push_back(next);
    }
}

TEST_P(TinyFamily, CapturesHaveTheDocumentedShapes)
{
    TempDir dir;
    auto model = convertAndLoadTiny(dir, GetParam().name, GetParam().write);
    ASSERT_TRUE(model);
    const auto &c = model->config();
    const std::vector<int64_t> ids{1, 2, 3, 4, 5, 6};
    const int64_t t = 6;
    auto r = model->forward(ForwardRequest{
        .tokens = ids,
        .capture = {
            .allAttention = true, .hidden = true, .valueNorms = true, .qkLayers = {1}, .lastLogitsOnly = true}});
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->logits.shape, (std::vector<int64_t>{1, c.vocabSize}));
    ASSERT_EQ(r->attention.size(), static_cast<size_t>(c.layers));
    for (const auto &a : r->attention) {
        ASSERT_EQ(a.shape, (std::vector<int64_t>{c.heads, t, t}));
        for (int64_t h = 0; h < c.heads; ++h) {
            for (int64_t q = 0; q < t; ++q) {
                double sum = 0;
                for (int64_t k = 0; k < t; ++k) {
                    const float p = a.data[static_cast<size_t>((h * t + q) * t + k)];
                    if (k > q) {
                        EXPECT_EQ(p, 0.0f) << "causal";
                    }
                    sum += p;
                }
                EXPECT_NEAR(sum, 1.0, 1e-5);
            }
        }
    }
    EXPECT_EQ(r->hidden.shape, (std::vector<int64_t>{c.layers, t, c.embedding}));
    EXPECT_EQ(r->valueNorms.shape, (std::vector<int64_t>{c.layers, c.heads, t}));
    for (float n : r->valueNorms.data) {
        EXPECT_GT(n, 0.0f);
    }
    ASSERT_EQ(r->queries.count(1), 1u);
    EXPECT_EQ(r->queries[1].shape, (std::vector<int64_t>{c.heads, t, c.headDim}));
    EXPECT_EQ(r->keys[1].shape, (std::vector<int64_t>{c.kvHeads, t, c.headDim}));
    EXPECT_EQ(r->queries.count(0), 0u);
}

// Neutral controls change nothing; each control moves what it should.
TEST_P(TinyFamily, ControlsReachTheAttentionStep)
{
    TempDir dir;
    auto model = convertAndLoadTiny(dir, GetParam().name, GetParam().write);
    ASSERT_TRUE(model);
    const auto &c = model->config();
    const std::vector<int64_t> ids{9, 8, 7, 6, 5, 4, 3};
    const int64_t t = 7, L = c.layers, H = c.heads;
    auto run = [&](Controls controls) {
        auto r = model->forward(
            ForwardRequest{.tokens = ids, .capture = {.allAttention = true}, .controls = std::move(controls)});
        EXPECT_TRUE(r) << r.error().message;
        return std::move(r).value();
    };
    auto filled = [](std::vector<int64_t> shape, float v) {
        FloatArray a{shape, {}};
        a.data.assign(static_cast<size_t>(a.numel()), v);
        return a;
    };
    const ForwardResult base = run({});

    Controls neutral;
    neutral.tensors["logit_bias"] = filled({L, H, t}, 0.0f);
    neutral.tensors["temperature"] = filled({L, H}, 1.0f);
    neutral.tensors["value_scale"] = filled({L, H, t}, 1.0f);
    neutral.tensors["head_gate"] = filled({L, H}, 1.0f);
    neutral.tensors["sink_logit"] = filled({L, H}, -std::numeric_limits<float>::infinity());
    const ForwardResult same = run(neutral);
    for (size_t i = 0; i < base.logits.data.size(); ++i) {
        ASSERT_NEAR(same.logits.data[i], base.logits.data[i], 1e-5);
    }

    // Masking key 0 in every head of layer 1: no attention lands there.
    Controls mask;
    mask.tensors["logit_bias"] = filled({L, H, t}, 0.0f);
    for (int64_t h = 0; h < H; ++h) {
        mask.tensors["logit_bias"].data[static_cast<size_t>((1 * H + h) * t + 0)] =
            -std::numeric_limits<float>::infinity();
    }
    const ForwardResult masked = run(mask);
    for (int64_t h = 0; h < H; ++h) {
        for (int64_t q = 1; q < t; ++q) {
            EXPECT_EQ(masked.attention[1].data[static_cast<size_t>((h * t + q) * t)], 0.0f);
        }
    }
    EXPECT_EQ(masked.attention[0].data, base.attention[0].data) << "layer 0 untouched";
    EXPECT_NE(masked.logits.data, base.logits.data);

    // head_mode 2 puts all attention of the head on key 0.
    Controls bos;
    bos.tensors["head_mode"] = filled({L, H}, 0.0f);
    bos.tensors["head_mode"].data[0] = 2.0f; // layer 0, head 0
    const ForwardResult moved = run(bos);
    for (int64_t q = 0; q < t; ++q) {
        EXPECT_EQ(moved.attention[0].data[static_cast<size_t>(q * t)], 1.0f);
    }

    // A sink logit of 0 on every head: rows sum to less than one (mass goes to the null slot).
    Controls sink;
    sink.tensors["sink_logit"] = filled({L, H}, 0.0f);
    const ForwardResult nulled = run(sink);
    double row = 0;
    for (int64_t k = 0; k < t; ++k) {
        row += nulled.attention[0].data[static_cast<size_t>((0 * t + 3) * t + k)];
    }
    EXPECT_LT(row, 1.0 - 1e-4);

    // Temperature -> infinity flattens attention to uniform over the visible keys.
    Controls hot;
    hot.tensors["temperature"] = filled({L, H}, 1e6f);
    const ForwardResult flat = run(hot);
    EXPECT_NEAR(flat.attention[0].data[static_cast<size_t>(3 * t + 0)], 0.25, 1e-4);
}

TEST_P(TinyFamily, RejectsBadTokens)
{
    TempDir dir;
    auto model = convertAndLoadTiny(dir, GetParam().name, GetParam().write);
    ASSERT_TRUE(model);
    auto empty = model->forward(ForwardRequest{});
    ASSERT_FALSE(empty);
    EXPECT_EQ(empty.error().code, ErrorCode::InvalidArgument);
    EXPECT_NE(empty.error().message.find("empty"), std::string::npos);

    auto tooLong = model->forward(ForwardRequest{.tokens = std::vector<int64_t>(65, 3)});
    ASSERT_FALSE(tooLong);
    EXPECT_NE(tooLong.error().message.find("context"), std::string::npos);

    auto outside = model->forward(ForwardRequest{.tokens = {1, 301}});
    ASSERT_FALSE(outside);
    EXPECT_NE(outside.error().message.find("301"), std::string::npos);

    auto emptyPrompt = model->tokenize("");
    ASSERT_FALSE(emptyPrompt);
    EXPECT_EQ(emptyPrompt.error().code, ErrorCode::InvalidArgument);
    auto longPrompt = model->tokenize(std::string(500, 'q'));
    ASSERT_FALSE(longPrompt);
    EXPECT_NE(longPrompt.error().message.find("context"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Families, TinyFamily,
                         ::testing::Values(Family{"tiny_gpt2", st::writeTinyGpt2Gguf},
                                           Family{"tiny_llama", st::writeTinyLlamaGguf}),
                         [](const auto &paramInfo) { return std::string(paramInfo.param.name); });

TEST(Convert, ArchiveCarriesCodeConfigAndTokenizer)
{
    TempDir dir;
    st::writeTinyLlamaGguf(dir.file("m.gguf"));
    ASSERT_TRUE(convertGguf(dir.file("m.gguf"), dir.file("m.pt")));
    torch::jit::ExtraFilesMap extra{
        {"sinkscope/config.json", ""}, {"sinkscope/tokenizer.json", ""}, {"sinkscope/format", ""}};
    auto module = torch::jit::load(dir.file("m.pt"), torch::kCPU, extra);
    EXPECT_EQ(extra["sinkscope/format"], "sinkscope-model\n");
    EXPECT_EQ(json::parse(extra["sinkscope/config.json"])["architecture"], "llama");
    EXPECT_EQ(json::parse(extra["sinkscope/tokenizer.json"])["tokens"].size(), 301u);
    // The architecture is TorchScript code inside the archive (not a C++ class of this build).
    ASSERT_TRUE(module.find_method("_attend"));
    ASSERT_TRUE(module.find_method("_probs")); // the softmax and its controls; _attend calls it per row block
    EXPECT_NE(module.get_method("_probs").graph()->toString().find("aten::softmax"), std::string::npos);
    EXPECT_NE(module.get_method("embed_input").graph()->toString().find("aten::embedding"), std::string::npos);
}

TEST(Convert, UnknownArchitectureIsUnsupported)
{
    TempDir dir;
    st::GgufWriter w;
    w.addString("general.architecture", "mamba");
    w.addTensorF32("token_embd.weight", {4, 4}, std::vector<float>(16, 0.1f));
    w.write(dir.file("mamba.gguf"));
    Status s = convertGguf(dir.file("mamba.gguf"), dir.file("out.pt"));
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, ErrorCode::Unsupported);
    EXPECT_NE(s.error().message.find("mamba"), std::string::npos);
    EXPECT_NE(s.error().message.find(dir.file("mamba.gguf")), std::string::npos);
    EXPECT_FALSE(std::filesystem::exists(dir.file("out.pt")));
}

namespace {

// A one-layer Llama header with the tiny vocabulary and only a token embedding.
st::GgufWriter llamaHeaderOnly()
{
    st::GgufWriter w;
    w.addString("general.architecture", "llama");
    w.addUint32("llama.block_count", 1);
    w.addUint32("llama.embedding_length", 256);
    w.addUint32("llama.feed_forward_length", 16);
    w.addUint32("llama.attention.head_count", 2);
    w.addUint32("llama.context_length", 16);
    w.addString("tokenizer.ggml.model", "gpt2");
    w.addStringArray("tokenizer.ggml.tokens", st::tinyVocabTokens());
    w.addInt32Array("tokenizer.ggml.token_type", st::tinyVocabTokenTypes());
    w.addStringArray("tokenizer.ggml.merges", st::tinyMerges());
    w.addTensorF32("token_embd.weight", {256, 301}, std::vector<float>(256 * 301, 0.01f));
    return w;
}

} // namespace

TEST(Convert, MissingTensorIsNamed)
{
    TempDir dir;
    llamaHeaderOnly().write(dir.file("missing.gguf"));
    Status s = convertGguf(dir.file("missing.gguf"), dir.file("out.pt"));
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, ErrorCode::Corrupt);
    EXPECT_NE(s.error().message.find("blk.0.attn_norm.weight"), std::string::npos) << s.error().message;
    EXPECT_NE(s.error().message.find(dir.file("missing.gguf")), std::string::npos) << s.error().message;
}

// A tensor the converter does not use is refused, not dropped: a QK-norm weight in a llama file would
// otherwise be ignored and the model would attend wrongly without a word.
TEST(Convert, TensorTheConverterDoesNotImplementIsRefusedByName)
{
    TempDir dir;
    auto other = st::tinyLlamaGgufWriter();
    other.addTensorF32("blk.0.attn_q_norm.weight", {st::tiny::kLlamaHeadDim},
                       std::vector<float>(size_t(st::tiny::kLlamaHeadDim), 1.0f));
    other.write(dir.file("qknorm.gguf"));
    Status s = convertGguf(dir.file("qknorm.gguf"), dir.file("out.pt"));
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, ErrorCode::Unsupported);
    EXPECT_NE(s.error().message.find(dir.file("qknorm.gguf")), std::string::npos) << s.error().message;
    EXPECT_FALSE(std::filesystem::exists(dir.file("out.pt")));
    EXPECT_NE(s.error().message.find("'blk.0.attn_q_norm.weight' is not implemented for llama models"),
              std::string::npos)
        << s.error().message;
}

// A metadata key of the architecture that the decoder does not implement is refused by name (it might
// change the forward pass: clamping, soft-capping, a scaling detail), as are an unknown RoPE scaling type
// and experts in a family that has none.
TEST(Convert, MetadataTheConverterDoesNotImplementIsRefusedByName)
{
    TempDir dir;
    struct Case {
        const char *name;
        void (*add)(st::GgufWriter &);
        const char *expected;
    };
    const Case cases[] = {
        {"clamp", [](st::GgufWriter &w) { w.addFloat32("llama.attention.clamp_kqv", 8.0f); },
         "'llama.attention.clamp_kqv' is not implemented"},
        {"scaling", [](st::GgufWriter &w) { w.addString("llama.rope.scaling.type", "dynamic"); },
         "RoPE scaling 'dynamic' is not supported"},
        {"experts", [](st::GgufWriter &w) { w.addUint32("llama.expert_count", 8); },
         "mixture-of-experts llama models are not implemented"},
        {"softcap", [](st::GgufWriter &w) { w.addFloat32("llama.attn_logit_softcapping", 50.0f); },
         "attention logit soft-capping"},
    };
    for (const Case &c : cases) {
        SCOPED_TRACE(c.name);
        auto w = st::tinyLlamaGgufWriter();
        c.add(w);
        const std::string in = dir.file(std::string(c.name) + ".gguf");
        w.write(in);
        Status s = convertGguf(in, dir.file("out.pt"));
        ASSERT_FALSE(s);
        EXPECT_EQ(s.error().code, ErrorCode::Unsupported);
        EXPECT_NE(s.error().message.find(c.expected), std::string::npos) << s.error().message;
        EXPECT_NE(s.error().message.find(in), std::string::npos) << s.error().message;
        EXPECT_FALSE(std::filesystem::exists(dir.file("out.pt")));
    }
}

TEST(Convert, UnsupportedTensorTypeIsNamed)
{
    TempDir dir;
    auto w = llamaHeaderOnly();
    // IQ2_XXS: 256 elements in a 66-byte block; SinkScope does not dequantize it.
    w.addRawTensor("blk.0.attn_norm.weight", {256}, GgmlType::IQ2_XXS, std::vector<uint8_t>(66, 0));
    w.write(dir.file("iq2.gguf"));
    Status s = convertGguf(dir.file("iq2.gguf"), dir.file("out.pt"));
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, ErrorCode::Unsupported);
    EXPECT_NE(s.error().message.find("IQ2_XXS"), std::string::npos) << s.error().message;
    EXPECT_NE(s.error().message.find(dir.file("iq2.gguf")), std::string::npos) << s.error().message;
}

// Value norms ||v_j W_O^h|| (SINKS.md M9) recomputed by hand from the archive's weights for layer 0 of
// the tiny Llama: RMSNorm of the embeddings, the value projection, each query head's KV group, and
// that head's slice of the output projection.
TEST(ValueNorms, MatchDirectComputationOnLayerZero)
{
    TempDir dir;
    st::writeTinyLlamaGguf(dir.file("m.gguf"));
    ASSERT_TRUE(convertGguf(dir.file("m.gguf"), dir.file("m.pt")));
    auto model = Model::load(dir.file("m.pt"));
    ASSERT_TRUE(model);
    const std::vector<int64_t> ids{3, 14, 15, 92, 65};
    auto r = (*model)->forward(ForwardRequest{.tokens = ids, .capture = {.valueNorms = true}});
    ASSERT_TRUE(r) << r.error().message;

    auto module = torch::jit::load(dir.file("m.pt"));
    const auto &c = (*model)->config();
    auto emb = module.attr("tok_embd").toTensor();
    auto x = emb.index_select(0, torch::tensor(ids));
    auto h = module.attr("attn_norm").toTensor()[0] * (x * torch::rsqrt(x.pow(2).mean(-1, true) + c.normEps));
    auto v = torch::matmul(h, module.attr("wv").toTensor()[0].t()).view({5, c.kvHeads, c.headDim}); // [T, Hkv, d]
    auto wo = module.attr("wo").toTensor()[0];                                                      // [D, H*d]
    const int64_t group = c.heads / c.kvHeads;
    for (int64_t head = 0; head < c.heads; ++head) {
        auto woh = wo.narrow(1, head * c.headDim, c.headDim);       // [D, d]
        auto f = torch::matmul(v.select(1, head / group), woh.t()); // [T, D]
        auto norms = f.norm(2, {1});
        for (int64_t j = 0; j < 5; ++j) {
            EXPECT_NEAR(r->valueNorms.data[static_cast<size_t>((0 * c.heads + head) * 5 + j)], norms[j].item<float>(),
                        1e-5)
                << "head " << head << " key " << j;
        }
    }
}

TEST(Forward, ReportsProgressPerLayerAndCancelsBetweenLayers)
{
    TempDir dir;
    st::writeTinyGpt2Gguf(dir.file("m.gguf"));
    ASSERT_TRUE(convertGguf(dir.file("m.gguf"), dir.file("m.pt")));
    auto model = Model::load(dir.file("m.pt"));
    ASSERT_TRUE(model);
    std::vector<double> seen;
    auto r = (*model)->forward(ForwardRequest{.tokens = {1, 2, 3}}, nullptr, [&](double f, const std::string &) {
        seen.push_back(f);
        return true;
    });
    ASSERT_TRUE(r);
    EXPECT_EQ(seen, (std::vector<double>{0.0, 0.5, 1.0}));

    // Stop after the first layer: Cancelled, no result.
    auto stopped = (*model)->forward(ForwardRequest{.tokens = {1, 2, 3}}, nullptr,
                                     [](double f, const std::string &) { return f < 0.4; });
    ASSERT_FALSE(stopped);
    EXPECT_EQ(stopped.error().code, ErrorCode::Cancelled);

    CancelToken token;
    token.cancel();
    auto cancelled = (*model)->forward(ForwardRequest{.tokens = {1, 2, 3}}, &token);
    ASSERT_FALSE(cancelled);
    EXPECT_EQ(cancelled.error().code, ErrorCode::Cancelled);
}

TEST(Convert, ArchiveConfigReadsWithoutLoading)
{
    TempDir dir;
    st::writeTinyGpt2Gguf(dir.file("m.gguf"));
    ASSERT_TRUE(convertGguf(dir.file("m.gguf"), dir.file("m.pt")));
    auto config = readArchiveConfig(dir.file("m.pt"));
    ASSERT_TRUE(config) << config.error().message;
    EXPECT_EQ(config->architecture, Architecture::Gpt2);
    EXPECT_EQ(config->contractVersion, kContractVersion);

    std::ofstream(dir.file("junk.pt")) << "junk";
    auto junk = readArchiveConfig(dir.file("junk.pt"));
    ASSERT_FALSE(junk);
    EXPECT_EQ(junk.error().code, ErrorCode::NotAModel);
    EXPECT_NE(junk.error().message.find(dir.file("junk.pt")), std::string::npos);
}
