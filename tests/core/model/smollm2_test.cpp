// The default model end to end: convert the GGUF that tools/setup.sh installs, load it, and compare the
// forward pass with the reference (transformers loading the same GGUF, fp32, eager attention;
// tests/data/reference/smollm2.json, made by tools/make_reference_logits.py).
//
// Tolerances: logits within 0.01 absolute (values up to ~27; both sides fp32, different op order);
// top-10 ids equal as sets; argmax equal wherever the reference's top-1 margin exceeds 0.01; greedy
// continuation equal token for token (reference margins >= 0.1); first-token attention mass within 1e-3;
// hidden-state norms within 0.1 % relative.
#include "sinkscope/analysis/attention_stats.h"
#include "sinkscope/interventions/mitigation.h"
#include "sinkscope/interventions/mitigation_registry.h"
#include "sinkscope/model/convert.h"
#include "sinkscope/model/model.h"
#include "support/engine_parity.h"
#include "support/test_paths.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <set>

using namespace sinkscope;
namespace st = sinkscope::testing;
using nlohmann::json;

namespace {

class SmolLM2 : public ::testing::Test
{
protected:
    static void SetUpTestSuite()
    {
        const std::string gguf = st::smollm2GgufPath();
        if (gguf.empty()) {
            return;
        }
        s_dir = std::make_unique<st::TempDir>();
        const std::string out = s_dir->file("smollm2.pt");
        Status converted = convertGguf(gguf, out);
        ASSERT_TRUE(converted) << converted.error().message;
        auto model = Model::load(out);
        ASSERT_TRUE(model) << model.error().message;
        s_model = *model;
        std::ifstream in(st::testDataDir() + "/reference/smollm2.json");
        s_reference = json::parse(in);
    }
    static void TearDownTestSuite()
    {
        s_model.reset();
        s_dir.reset();
    }
    void SetUp() override
    {
        if (!s_model) {
            GTEST_SKIP() << "default model not installed (run tools/setup.sh)";
        }
    }

    static std::unique_ptr<st::TempDir> s_dir;
    static std::shared_ptr<const Model> s_model;
    static json s_reference;
};

std::unique_ptr<st::TempDir> SmolLM2::s_dir;
std::shared_ptr<const Model> SmolLM2::s_model;
json SmolLM2::s_reference;

} // namespace

TEST_F(SmolLM2, ConfigMatchesReference)
{
    const auto &c = s_model->config();
    const auto &ref = s_reference["config"];
    EXPECT_EQ(c.architecture, Architecture::Llama);
    EXPECT_EQ(c.layers, ref["num_layers"].get<int64_t>());
    EXPECT_EQ(c.heads, ref["num_heads"].get<int64_t>());
    EXPECT_EQ(c.kvHeads, ref["num_kv_heads"].get<int64_t>());
    EXPECT_EQ(c.embedding, ref["hidden_size"].get<int64_t>());
    EXPECT_EQ(c.feedForward, ref["intermediate_size"].get<int64_t>());
    EXPECT_EQ(c.vocabSize, ref["vocab_size"].get<int64_t>());
    EXPECT_DOUBLE_EQ(c.ropeTheta, ref["rope_theta"].get<double>());
    EXPECT_TRUE(c.tiedOutput);
    EXPECT_EQ(c.contextLength, 8192);
}

TEST_F(SmolLM2, LogitsMatchReference)
{
    for (const auto &p : s_reference["prompts"]) {
        SCOPED_TRACE(p["name"].get<std::string>());
        const auto ids = p["input_ids"].get<std::vector<int64_t>>();
        auto r = s_model->forward(ForwardRequest{.tokens = ids});
        ASSERT_TRUE(r) << r.error().message;
        const int64_t t = static_cast<int64_t>(ids.size()), v = r->logits.shape[1];
        ASSERT_EQ(r->logits.shape[0], t);
        const float *last = r->logits.data.data() + (t - 1) * v;

        const auto refTop = p["last"]["top_ids"].get<std::vector<int64_t>>();
        const auto refTopLogits = p["last"]["top_logits"].get<std::vector<double>>();
        double maxDiff = 0;
        for (size_t i = 0; i < refTop.size(); ++i) {
            maxDiff = std::max(maxDiff, std::abs(last[refTop[i]] - refTopLogits[i]));
        }
        const auto probes = s_reference["probe_ids"].get<std::vector<int64_t>>();
        const auto probeLogits = p["last"]["probe_logits"].get<std::vector<double>>();
        for (size_t i = 0; i < probes.size(); ++i) {
            maxDiff = std::max(maxDiff, std::abs(last[probes[i]] - probeLogits[i]));
        }
        EXPECT_LT(maxDiff, 0.01) << "max |delta logit| at the last position";

        const auto top = topK(last, v, 10);
        std::set<int64_t> ours, theirs(refTop.begin(), refTop.end());
        for (const auto &tt : top) {
            ours.insert(tt.id);
        }
        EXPECT_EQ(ours, theirs) << "top-10 ids";

        const auto argmax = p["argmax_ids"].get<std::vector<int64_t>>();
        const auto margins = p["argmax_margin"].get<std::vector<double>>();
        for (int64_t q = 0; q < t; ++q) {
            if (margins[static_cast<size_t>(q)] < 0.01) {
                continue;
            }
            const float *row = r->logits.data.data() + q * v;
            const int64_t best = std::max_element(row, row + v) - row;
            EXPECT_EQ(best, argmax[static_cast<size_t>(q)]) << "argmax at position " << q;
        }
    }
}

TEST_F(SmolLM2, GreedyContinuationsMatchReference)
{
    for (const auto &p : s_reference["prompts"]) {
        SCOPED_TRACE(p["name"].get<std::string>());
        const auto ids = p["input_ids"].get<std::vector<int64_t>>();
        const auto expected = p["greedy"]["ids"].get<std::vector<int64_t>>();
        auto out = s_model->generate(
            ids, GenerateOptions{.maxNewTokens = static_cast<int>(expected.size()), .stopAtEos = false});
        ASSERT_TRUE(out) << out.error().message;
        EXPECT_EQ(*out, expected);
    }
}

TEST_F(SmolLM2, CapitalOfFranceIsParis)
{
    auto ids = s_model->tokenize("The capital of France is");
    ASSERT_TRUE(ids) << ids.error().message;
    auto out = s_model->generate(*ids, GenerateOptions{.maxNewTokens = 20});
    ASSERT_TRUE(out) << out.error().message;
    EXPECT_NE(s_model->tokenizer()->decode(*out).find("Paris"), std::string::npos);
}

TEST_F(SmolLM2, AttentionAndHiddenStatesMatchReference)
{
    for (const auto &p : s_reference["prompts"]) {
        SCOPED_TRACE(p["name"].get<std::string>());
        const auto ids = p["input_ids"].get<std::vector<int64_t>>();
        auto r = s_model->forward(ForwardRequest{.tokens = ids, .capture = {.allAttention = true, .hidden = true}});
        ASSERT_TRUE(r) << r.error().message;
        const auto &c = s_model->config();
        const FloatArray mass = firstTokenMass(*r, c.layers, c.heads);
        const auto refMass = p["sink_mass"].get<std::vector<std::vector<double>>>();
        double maxDiff = 0;
        for (int64_t l = 0; l < c.layers; ++l) {
            for (int64_t h = 0; h < c.heads; ++h) {
                maxDiff = std::max(maxDiff, std::abs(mass.data[static_cast<size_t>(l * c.heads + h)] -
                                                     refMass[static_cast<size_t>(l)][static_cast<size_t>(h)]));
            }
        }
        EXPECT_LT(maxDiff, 1e-3) << "first-token attention mass";

        const auto refNorms = p["layer_output_norm_last_token"].get<std::vector<double>>();
        const int64_t t = static_cast<int64_t>(ids.size()), d = c.embedding;
        ASSERT_EQ(r->hidden.shape, (std::vector<int64_t>{c.layers, t, d}));
        for (int64_t l = 0; l < c.layers; ++l) {
            double sq = 0;
            const float *row = r->hidden.data.data() + (l * t + t - 1) * d;
            for (int64_t i = 0; i < d; ++i) {
                sq += static_cast<double>(row[i]) * row[i];
            }
            EXPECT_NEAR(std::sqrt(sq), refNorms[static_cast<size_t>(l)], 1e-3 * refNorms[static_cast<size_t>(l)])
                << "hidden norm after layer " << l;
        }
    }
}

TEST_F(SmolLM2, SinksPresentInMostHeadsAfterTheFirstLayers)
{
    // "The capital of France is": past the first two layers, most heads put over half their attention on
    // the first token (the attention-sink phenomenon this tool is about; the reference has 226 of 252).
    const auto &p = s_reference["prompts"][0];
    auto r = s_model->forward(
        ForwardRequest{.tokens = p["input_ids"].get<std::vector<int64_t>>(), .capture = {.allAttention = true}});
    ASSERT_TRUE(r) << r.error().message;
    const auto &c = s_model->config();
    const FloatArray mass = firstTokenMass(*r, c.layers, c.heads);
    int sinkHeads = 0, total = 0;
    for (int64_t l = 2; l < c.layers; ++l) {
        for (int64_t h = 0; h < c.heads; ++h) {
            sinkHeads += mass.data[static_cast<size_t>(l * c.heads + h)] > 0.5f;
            ++total;
        }
    }
    EXPECT_GT(sinkHeads, 2 * total / 3) << sinkHeads << " of " << total << " heads";
}

// Every registered mitigation on the real model: the attention engine (contract 5) and the archive's LibTorch
// attention step give the same pass (logits and per-head first-token mass), so moving the attention into the
// engine changed no method's semantics.
TEST_F(SmolLM2, EveryMitigationGivesTheSamePassOnTheEngineAsOnTheLibTorchStep)
{
    const auto ids = s_model->tokenize("The capital of France is Paris. The capital of Germany is Berlin. The "
                                       "capital of Italy is");
    ASSERT_TRUE(ids);
    for (const MitigationMethodInfo &m : mitigationMethods()) {
        std::string text = m.name;
        char sep = ':';
        for (const MitigationParam &p : m.params) {
            if (p.required) {
                text += sep + p.name + "=" + (p.choices.empty() ? std::to_string(p.example) : p.choices.front());
                sep = ',';
            }
        }
        SCOPED_TRACE(text);
        auto spec = parseMitigation(text);
        ASSERT_TRUE(spec) << spec.error().message;
        if (Status valid = validateMitigation(*spec, *s_model); !valid) {
            ADD_FAILURE() << valid.error().message;
            continue;
        }
        auto controls = buildControls(*s_model, *spec, *ids);
        ASSERT_TRUE(controls) << controls.error().message;
        const auto parity = st::compareEngineWithTorchStep(*s_model, *ids, *controls);
        EXPECT_LT(parity.logits, 2e-4);
        EXPECT_TRUE(parity.engineRan);
        EXPECT_LT(parity.firstTokenMass, 1e-5);
    }
}
