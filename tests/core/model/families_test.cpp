// Every decoder family on tiny random-weight models (tests/data/families/, tools/make_family_models.py):
// each form (GGUF, Hugging Face folder) is converted, run, and compared with transformers' float32 eager
// reference: logits within 1e-4, every layer's attention probabilities within 1e-5, greedy continuations
// token for token, and for gpt-oss the learned sink's share of every row.
#include "sinkscope/analysis/metrics.h"
#include "sinkscope/interventions/mitigation.h"
#include "sinkscope/interventions/mitigation_registry.h"
#include "sinkscope/model/convert.h"
#include "sinkscope/model/model.h"
#include "support/engine_parity.h"
#include "support/reference_data.h"
#include "support/test_paths.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/script.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

using namespace sinkscope;
namespace st = sinkscope::testing;
using nlohmann::json;

namespace {

struct Form {
    const char *family;
    const char *path; // relative to tests/data/families/<family>/
};

std::string familyDir(const char *family)
{
    return st::testDataDir() + "/families/" + family;
}

json reference(const char *family)
{
    std::ifstream in(familyDir(family) + "/reference.json");
    return json::parse(in);
}

std::string formName(const ::testing::TestParamInfo<Form> &info)
{
    std::string p = info.param.path;
    for (char &ch : p) {
        if (!std::isalnum(static_cast<unsigned char>(ch))) {
            ch = '_';
        }
    }
    return std::string(info.param.family) + "_" + p;
}

class FamilyForm : public ::testing::TestWithParam<Form>
{
protected:
    std::shared_ptr<const Model> convertAndLoad()
    {
        const std::string in = familyDir(GetParam().family) + "/" + GetParam().path;
        const std::string out = m_dir.file("model.pt");
        Status s = convertModel(in, out);
        EXPECT_TRUE(s) << s.error().message;
        if (!s) {
            return nullptr;
        }
        auto m = Model::load(out);
        EXPECT_TRUE(m) << m.error().message;
        return m ? *m : nullptr;
    }

    // The sequences the reference computed for this form: a GGUF form whose file cannot carry a setting
    // (llama.cpp writes no sliding window for qwen2 or arch llama) has its own reference run.
    json sequences(const json &ref) const
    {
        const bool gguf = std::string(GetParam().path).ends_with(".gguf");
        if (gguf && ref["gguf"].contains("gguf_sequences")) {
            return ref["gguf"]["gguf_sequences"];
        }
        return ref["sequences"];
    }

    st::TempDir m_dir;
};

} // namespace

TEST_P(FamilyForm, MatchesTransformers)
{
    auto model = convertAndLoad();
    ASSERT_TRUE(model);
    const json ref = reference(GetParam().family);
    const json seqs = sequences(ref);
    const ModelConfig &c = model->config();
    // The largest differences over both sequences go into the test report (--gtest_output=json:...), the
    // figures docs/models.md quotes.
    double worstLogits = 0, worstAttention = -1, worstSinkShare = -1; // -1: not compared
    for (const auto &seq : seqs) {
        const auto ids = seq["input_ids"].get<std::vector<int64_t>>();
        SCOPED_TRACE("T = " + std::to_string(ids.size()));
        auto r = model->forward(ForwardRequest{.tokens = ids, .capture = {.allAttention = true}});
        ASSERT_TRUE(r) << r.error().message;
        const double logitsDiff = st::maxAbsDiff(r->logits.data, st::flattenJson(seq["logits"]));
        EXPECT_LT(logitsDiff, 1e-4);
        worstLogits = std::max(worstLogits, logitsDiff);
        if (seq.contains("attentions")) {
            const json &att = seq["attentions"];
            ASSERT_EQ(static_cast<int64_t>(att.size()), c.layers);
            for (int64_t l = 0; l < c.layers; ++l) {
                const double d = st::maxAbsDiff(r->attention[static_cast<size_t>(l)].data, st::flattenJson(att[l]));
                EXPECT_LT(d, 1e-5) << "layer " << l;
                worstAttention = std::max(worstAttention, d);
            }
        }
        if (seq.contains("sink_share")) {
            ASSERT_EQ(r->sinkShare.size(), static_cast<size_t>(c.layers));
            for (int64_t l = 0; l < c.layers; ++l) {
                const double d =
                    st::maxAbsDiff(r->sinkShare[static_cast<size_t>(l)].data, st::flattenJson(seq["sink_share"][l]));
                EXPECT_LT(d, 1e-5) << "layer " << l;
                worstSinkShare = std::max(worstSinkShare, d);
            }
        }
        if (seq.contains("greedy_ids")) {
            auto gen = model->generate(ids, GenerateOptions{.maxNewTokens = 10, .stopAtEos = false});
            ASSERT_TRUE(gen) << gen.error().message;
            EXPECT_EQ(*gen, seq["greedy_ids"].get<std::vector<int64_t>>());
        }
    }
    auto record = [](const char *key, double v) {
        std::ostringstream text;
        text << std::scientific << std::setprecision(2) << v;
        ::testing::Test::RecordProperty(key, text.str());
    };
    record("max_abs_diff_logits", worstLogits);
    if (worstAttention >= 0) { // GGUF-only references (qwen2, mistral) have logits only
        record("max_abs_diff_attention", worstAttention);
    }
    if (worstSinkShare >= 0) { // only gpt-oss has learned sinks
        record("max_abs_diff_sink_share", worstSinkShare);
    }
}

// Decoding with the key/value cache (generate) picks what a full recomputation picks, on every family:
// sliding windows, learned sinks and longrope's sequence-length switch included.
TEST_P(FamilyForm, CachedDecodingEqualsRecomputation)
{
    auto model = convertAndLoad();
    ASSERT_TRUE(model);
    std::vector<int64_t> seq = sequences(reference(GetParam().family))[0]["input_ids"].get<std::vector<int64_t>>();
    seq.resize(12);
    auto gen = model->generate(seq, GenerateOptions{.maxNewTokens = 14, .stopAtEos = false});
    ASSERT_TRUE(gen) << gen.error().message;
    for (int64_t next : *gen) {
        auto full = model->forward(ForwardRequest{.tokens = seq, .capture = {.lastLogitsOnly = true}});
        ASSERT_TRUE(full);
        const auto &l = full->logits.data;
        EXPECT_EQ(std::max_element(l.begin(), l.end()) - l.begin(), next) << "after " << seq.size() << " tokens";
        seq.push_back(next);
    }
}

INSTANTIATE_TEST_SUITE_P(Gguf, FamilyForm,
                         ::testing::Values(Form{"llama", "model.gguf"}, Form{"mistral", "model.gguf"},
                                           Form{"qwen2", "model.gguf"}, Form{"qwen3", "model.gguf"},
                                           Form{"gpt_oss", "model.gguf"}, Form{"phi3", "model.gguf"},
                                           Form{"gpt_neox", "model.gguf"}, Form{"olmo2", "model.gguf"}),
                         formName);

INSTANTIATE_TEST_SUITE_P(HfFolder, FamilyForm,
                         ::testing::Values(Form{"llama", "hf"}, Form{"llama_yarn", "hf"}, Form{"llama_linear", "hf"},
                                           Form{"mistral", "hf"}, Form{"qwen2", "hf"}, Form{"qwen3", "hf/config.json"},
                                           Form{"gemma3", "hf"}, Form{"gpt_oss", "hf"}, Form{"gpt_oss", "hf_mxfp4"},
                                           Form{"phi3", "hf"}, Form{"gpt_neox", "hf"}, Form{"olmo2", "hf"}),
                         formName);

namespace {

std::map<std::string, at::Tensor> parameters(const std::string &archive)
{
    std::map<std::string, at::Tensor> out;
    auto module = torch::jit::load(archive);
    for (const auto &p : module.named_parameters(false)) {
        out[p.name] = p.value;
    }
    return out;
}

class FamilyBothForms : public ::testing::TestWithParam<const char *>
{
};

} // namespace

// The GGUF file and the Hugging Face folder of the same weights give the same archive weights: every
// stored transform (llama.cpp's Q/K permutation and [Q;K;V] reorder, Gemma's stored 1 + w, fused and
// de-interleaved expert tensors, MXFP4) is undone exactly. Storage rounding (bf16/f16 folders) is the same
// in both forms, so the weights must agree to float32 precision.
TEST_P(FamilyBothForms, GgufAndFolderGiveTheSameWeights)
{
    st::TempDir dir;
    const std::string family = GetParam();
    const std::string base = familyDir(GetParam());
    ASSERT_TRUE(convertModel(base + "/model.gguf", dir.file("gguf.pt")));
    ASSERT_TRUE(convertModel(base + "/hf", dir.file("hf.pt")));
    auto fromGguf = parameters(dir.file("gguf.pt"));
    auto fromHf = parameters(dir.file("hf.pt"));
    ASSERT_EQ(fromGguf.size(), fromHf.size());
    for (const auto &[name, t] : fromGguf) {
        ASSERT_TRUE(fromHf.count(name)) << name;
        ASSERT_EQ(t.sizes(), fromHf[name].sizes()) << name;
        if (t.numel() > 0) {
            EXPECT_LT((t - fromHf[name]).abs().max().item<double>(), 1e-6) << family << " " << name;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyBothForms,
                         ::testing::Values("llama", "mistral", "qwen2", "qwen3", "gemma3", "gpt_oss", "phi3",
                                           "gpt_neox", "olmo2"));

// Gemma 3 GGUF files carry no query_pre_attn_scalar: SinkScope follows llama.cpp, the format's owner, and
// scales by key_length^-0.5 (the same for every released Gemma 3 but 27B; transformers' GGUF loader assumes
// 256). The folder form keeps the config's scalar.
TEST(Gemma3Gguf, ScalesAttentionByTheKeyLength)
{
    st::TempDir dir;
    ASSERT_TRUE(convertModel(familyDir("gemma3") + "/model.gguf", dir.file("gguf.pt")));
    ASSERT_TRUE(convertModel(familyDir("gemma3") + "/hf", dir.file("hf.pt")));
    auto gguf = Model::load(dir.file("gguf.pt"));
    auto hf = Model::load(dir.file("hf.pt"));
    ASSERT_TRUE(gguf && hf);
    const ModelConfig &g = (*gguf)->config();
    EXPECT_DOUBLE_EQ(g.attnScale, 1.0 / std::sqrt(static_cast<double>(g.headDim)));
    EXPECT_DOUBLE_EQ((*hf)->config().attnScale, 1.0 / 16.0); // query_pre_attn_scalar 256
    EXPECT_EQ(g.layerWindows, (*hf)->config().layerWindows);
    EXPECT_EQ(g.attentionLayout(), "6 layers: 5 sliding (8), 1 global");
    EXPECT_DOUBLE_EQ(g.finalLogitSoftcap, 3.0);
}

namespace {

class FamilyMetricPaths : public ::testing::TestWithParam<const char *>
{
};

} // namespace

// The streaming metric path (long prompts: attention recomputed from q and k without a T x T map) sees
// the attention the model computes: its softmax scale (Gemma 3's query_pre_attn_scalar), sliding windows
// and learned sink logits. Both paths agree on every head metric, and gpt-oss gets learned_sink_mass.
TEST_P(FamilyMetricPaths, StreamingAndMaterializedAgree)
{
    st::TempDir dir;
    ASSERT_TRUE(convertModel(familyDir(GetParam()) + "/hf", dir.file("model.pt")));
    auto model = Model::load(dir.file("model.pt"));
    ASSERT_TRUE(model);
    const auto ids = reference(GetParam())["sequences"][0]["input_ids"].get<std::vector<int64_t>>();
    auto materialized = analyzeTokens(**model, ids, MetricsOptions{}, /*materializeUpTo=*/1 << 20);
    auto streamed = analyzeTokens(**model, ids, MetricsOptions{}, /*materializeUpTo=*/0);
    ASSERT_TRUE(materialized) << materialized.error().message;
    ASSERT_TRUE(streamed) << streamed.error().message;
    EXPECT_EQ((*materialized)->path, MetricsPath::Materialized);
    EXPECT_EQ((*streamed)->path, MetricsPath::Streaming);
    ASSERT_EQ((*materialized)->headMetrics.size(), (*streamed)->headMetrics.size());
    for (const auto &h : (*materialized)->headMetrics) {
        const HeadMetric *other = (*streamed)->headMetric(h.name);
        ASSERT_TRUE(other) << h.name;
        for (size_t i = 0; i < h.values.data.size(); ++i) {
            const float a = h.values.data[i], b = other->values.data[i];
            if (std::isnan(a) || std::isnan(b)) {
                EXPECT_EQ(std::isnan(a), std::isnan(b)) << h.name << " [" << i << "]";
            } else {
                EXPECT_NEAR(a, b, 2e-5) << h.name << " [" << i << "]";
            }
        }
    }
    const bool sinks = std::string(GetParam()) == "gpt_oss";
    EXPECT_EQ((*streamed)->headMetric("learned_sink_mass") != nullptr, sinks);
    if (sinks) {
        // Mean over queries of the reference's sink share, layer 0 head 0.
        const json share = reference("gpt_oss")["sequences"][0]["sink_share"][0][0];
        double mean = 0;
        for (const auto &v : share) {
            mean += v.get<double>() / static_cast<double>(share.size());
        }
        EXPECT_NEAR((*streamed)->headMetric("learned_sink_mass")->values.data[0], mean, 1e-5);
    }
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyMetricPaths,
                         ::testing::Values("llama", "mistral", "qwen2", "gemma3", "gpt_oss", "phi3", "gpt_neox"));

namespace {

// Each registered method with its required parameters at their examples, e.g. "zerotune:gamma=2".
std::vector<std::string> everyMethodSpec()
{
    std::vector<std::string> specs;
    for (const MitigationMethodInfo &m : mitigationMethods()) {
        std::string spec = m.name;
        char sep = ':';
        for (const MitigationParam &p : m.params) {
            if (p.required) {
                std::ostringstream v;
                v << (p.choices.empty() ? std::to_string(p.example) : p.choices.front());
                spec += sep + p.name + "=" + v.str();
                sep = ',';
            }
        }
        // Tiny models: ACT's released layer range 2..L-2 is empty below 4 layers, and their activations are
        // far from Sun et al.'s massive thresholds.
        if (m.name == "act") {
            spec += ":heads=L0-1";
        } else if (m.name == "resid") {
            spec += ",layer=0,abs=0,rel=1";
        }
        specs.push_back(spec);
    }
    return specs;
}

class FamilyMitigations : public ::testing::TestWithParam<const char *>
{
};

} // namespace

// Every mitigation works on every family — its controls reach the shared attention step and run — or is
// refused for it with the reason (streaming on a model with sliding-window layers).
TEST_P(FamilyMitigations, EveryMethodRunsOrIsRefusedWithTheReason)
{
    st::TempDir dir;
    ASSERT_TRUE(convertModel(familyDir(GetParam()) + "/hf", dir.file("model.pt")));
    auto model = Model::load(dir.file("model.pt"));
    ASSERT_TRUE(model);
    const auto ids = reference(GetParam())["sequences"][0]["input_ids"].get<std::vector<int64_t>>();
    auto plain = (*model)->forward(ForwardRequest{.tokens = ids, .capture = {.lastLogitsOnly = true}});
    ASSERT_TRUE(plain);
    for (const std::string &text : everyMethodSpec()) {
        SCOPED_TRACE(text);
        auto spec = parseMitigation(text);
        ASSERT_TRUE(spec) << spec.error().message;
        Status valid = validateMitigation(*spec, **model);
        if (!valid) {
            EXPECT_EQ(valid.error().code, ErrorCode::Unsupported) << valid.error().message;
            EXPECT_TRUE(text.rfind("streaming", 0) == 0 && (*model)->config().hasSlidingLayers())
                << valid.error().message;
            EXPECT_NE(valid.error().message.find("sliding-window"), std::string::npos) << valid.error().message;
            continue;
        }
        auto controls = buildControls(**model, *spec, ids);
        ASSERT_TRUE(controls) << controls.error().message;
        auto r = (*model)->forward(
            ForwardRequest{.tokens = ids, .capture = {.lastLogitsOnly = true}, .controls = *controls});
        ASSERT_TRUE(r) << r.error().message;
        for (float v : r->logits.data) {
            ASSERT_TRUE(std::isfinite(v));
        }
        // The attention engine and the archive's LibTorch step give the same pass under this method.
        const auto parity = st::compareEngineWithTorchStep(**model, ids, *controls);
        EXPECT_LT(parity.logits, 1e-4);
        EXPECT_TRUE(parity.engineRan);
        EXPECT_LT(parity.firstTokenMass, 1e-5);
    }
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyMitigations,
                         ::testing::Values("llama", "mistral", "qwen2", "qwen3", "gemma3", "gpt_oss", "phi3",
                                           "gpt_neox", "olmo2"));
