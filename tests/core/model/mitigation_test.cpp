// Mitigation specs and their controls, checked on the tiny Llama against hand computation: layer 0's
// attention depends only on the token embeddings, so its baseline scores (from captured q and k) are the
// input every method's formula starts from.
#include "sinkscope/interventions/effects.h"
#include "sinkscope/interventions/mitigation.h"
#include "sinkscope/model/convert.h"
#include "sinkscope/model/model.h"
#include "support/test_paths.h"
#include "support/tiny_model_files.h"
#include "support/tiny_models.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

using namespace sinkscope;
namespace st = sinkscope::testing;

namespace {

class Mitigation : public ::testing::Test
{
protected:
    static void SetUpTestSuite()
    {
        s_dir = std::make_unique<st::TempDir>();
        s_model = st::convertAndLoadTiny(*s_dir, "tiny", st::writeTinyLlamaGguf);
        ASSERT_TRUE(s_model);
    }
    static void TearDownTestSuite()
    {
        s_model.reset();
        s_dir.reset();
    }

    static const std::vector<int64_t> &tokens()
    {
        static const std::vector<int64_t> t{300, 72, 101, 108, 108, 111, 44, 32};
        return t;
    }
    static int64_t T() { return static_cast<int64_t>(tokens().size()); }

    static ForwardResult run(const std::string &spec, bool qk = false)
    {
        auto parsed = parseMitigation(spec);
        EXPECT_TRUE(parsed) << parsed.error().message;
        auto controls = buildControls(*s_model, *parsed, tokens());
        EXPECT_TRUE(controls) << controls.error().message;
        ForwardRequest r{.tokens = tokens(), .controls = *controls};
        r.capture.allAttention = true;
        r.capture.valueNorms = true;
        if (qk) {
            r.capture.qkLayers = {0};
        }
        auto f = s_model->forward(r);
        EXPECT_TRUE(f) << f.error().message;
        return *f;
    }

    // Scaled causal scores z[h][t][j] of layer 0 (q . k / sqrt(d)), -inf above the diagonal.
    static std::vector<double> scores0()
    {
        const ForwardResult f = run("none", true);
        const FloatArray &q = f.queries.at(0), &k = f.keys.at(0);
        const int64_t h = q.shape[0], t = q.shape[1], d = q.shape[2], group = h / k.shape[0];
        std::vector<double> z(static_cast<size_t>(h * t * t), -INFINITY);
        for (int64_t hh = 0; hh < h; ++hh) {
            for (int64_t i = 0; i < t; ++i) {
                for (int64_t j = 0; j <= i; ++j) {
                    double s = 0;
                    for (int64_t e = 0; e < d; ++e) {
                        s += static_cast<double>(q.data[static_cast<size_t>((hh * t + i) * d + e)]) *
                             k.data[static_cast<size_t>(((hh / group) * t + j) * d + e)];
                    }
                    z[static_cast<size_t>((hh * t + i) * t + j)] = s / std::sqrt(static_cast<double>(d));
                }
            }
        }
        return z;
    }

    static float at(const ForwardResult &f, int64_t layer, int64_t h, int64_t i, int64_t j)
    {
        return f.attention[static_cast<size_t>(layer)].data[static_cast<size_t>((h * T() + i) * T() + j)];
    }

    static std::unique_ptr<st::TempDir> s_dir;
    static std::shared_ptr<const Model> s_model;
};
std::unique_ptr<st::TempDir> Mitigation::s_dir;
std::shared_ptr<const Model> Mitigation::s_model;

constexpr double kTol = 2e-5;

} // namespace

TEST(MitigationSpec, ParsesAndPrintsCanonically)
{
    const std::pair<const char *, const char *> cases[] = {
        {"none", "none"},
        {"mask-sink", "mask-sink:sinks=1"},
        {"streaming:sinks=4,window=252", "streaming:sinks=4,window=252"},
        {"streaming", "streaming:sinks=4,window=252"},
        {"act:beta=0.4,thres=0.1,heads=L2H3+L5H0", "act:beta=0.4,thres=0.1,heads=L2H3+L5H0"},
        {"zerotune:gamma=1.5", "zerotune:gamma=1.5"},
        {"softmax1", "softmax1"},
        {"sink-logit:b=0", "sink-logit:b=0"},
        {"temperature:tau=0.8", "temperature:tau=0.8"},
        {"value-zero", "value-zero:sinks=1"},
        {"resid:mode=mean", "resid:mode=mean,abs=100,rel=1000"},
        {"head-zero:heads=L1-3H0-2+H5", "head-zero:heads=L1-3H0-2+H5"},
        {"move-to-bos:heads=L0", "move-to-bos:heads=L0"},
        {"act:heads=L2H3+L5H0+mask-sink:sinks=2+softmax1",
         "act:beta=0.4,thres=0.1,heads=L2H3+L5H0+mask-sink:sinks=2+softmax1"},
    };
    for (const auto &[in, canonical] : cases) {
        auto spec = parseMitigation(in);
        ASSERT_TRUE(spec) << in << ": " << spec.error().message;
        EXPECT_EQ(spec->toString(), canonical) << in;
        auto again = parseMitigation(spec->toString());
        ASSERT_TRUE(again) << canonical;
        EXPECT_EQ(again->toString(), canonical);
    }
    auto combo = parseMitigation("act:heads=L2H3+L5H0+mask-sink");
    ASSERT_TRUE(combo);
    ASSERT_EQ(combo->steps.size(), 2u);
    EXPECT_TRUE(combo->steps[0].scope.contains(5, 0));
    EXPECT_FALSE(combo->steps[0].scope.contains(5, 1));
    EXPECT_TRUE(combo->steps[1].scope.everything());
}

TEST(MitigationSpec, ErrorsNameTheBadPart)
{
    const std::pair<const char *, const char *> cases[] = {
        {"", "empty"},
        {"mask-sinks", "unknown method 'mask-sinks'"},
        {"zerotune", "'zerotune' needs gamma="},
        {"zerotune:gamma=abc", "gamma='abc' is not a number"},
        {"temperature:tau=0", "tau=0 is outside"},
        {"mask-sink:sinks=1.5", "sinks=1.5 is outside the integers"},
        {"streaming:sink=4", "'streaming' has no parameter 'sink'"},
        {"streaming:heads=L0", "'streaming' applies to every head"},
        {"act:heads=L2X3", "'L2X3' is not a head item"},
        {"head-zero:heads=L3-1", "a range must go upwards"},
        {"none+softmax1", "'none' cannot be combined"},
        {"softmax1+", "stray '+'"},
        {"resid:mode=half", "mode must be zero or mean, not 'half'"},
        {"mask-sink:sinks=1,sinks=2", "'sinks' given twice"},
        {"softmax1:", "nothing after ':'"},
    };
    for (const auto &[in, message] : cases) {
        auto spec = parseMitigation(in);
        ASSERT_FALSE(spec) << in;
        EXPECT_EQ(spec.error().code, ErrorCode::InvalidArgument);
        EXPECT_NE(spec.error().message.find(message), std::string::npos) << in << " -> " << spec.error().message;
    }
}

// Found by fuzzing (tests/fuzz/regressions/mitigation/head-number-past-int): a layer or head number
// with more digits than an int holds threw std::out_of_range out of the parser.
TEST(MitigationSpec, HeadNumbersTooLargeForAnIntAreErrors)
{
    for (const char *in : {"head-zero:heads=L3+L99999999999999999990-1+L3H2", "head-zero:heads=H2147483648",
                           "head-zero:heads=L0-99999999999"}) {
        auto spec = parseMitigation(in);
        ASSERT_FALSE(spec) << in;
        EXPECT_EQ(spec.error().code, ErrorCode::InvalidArgument);
        EXPECT_NE(spec.error().message.find("is too large for a layer or head number"), std::string::npos)
            << spec.error().message;
    }
    auto largest = parseMitigation("head-zero:heads=L2147483647H0");
    ASSERT_TRUE(largest) << largest.error().message;
    EXPECT_EQ(largest->steps[0].scope.items[0].firstLayer, 2147483647);
}

TEST_F(Mitigation, ValidateChecksHeadsAgainstTheModel)
{
    auto spec = parseMitigation("head-zero:heads=L2H0");
    ASSERT_TRUE(spec);
    auto ok = validateMitigation(*spec, *s_model);
    ASSERT_FALSE(ok);
    EXPECT_NE(ok.error().message.find("outside the model (2 layers"), std::string::npos) << ok.error().message;
    auto act = parseMitigation("act");
    ASSERT_TRUE(act);
    EXPECT_FALSE(validateMitigation(*act, *s_model)); // released range 2..L-2 is empty for 2 layers
}

TEST_F(Mitigation, NoneIsBitIdenticalToAPlainRun)
{
    auto none = parseMitigation("none");
    ASSERT_TRUE(none);
    auto controls = buildControls(*s_model, *none, tokens());
    ASSERT_TRUE(controls);
    EXPECT_TRUE(controls->empty());
    auto plain = s_model->forward(ForwardRequest{.tokens = tokens()});
    auto withNone = s_model->forward(ForwardRequest{.tokens = tokens(), .controls = *controls});
    ASSERT_TRUE(plain && withNone);
    ASSERT_EQ(plain->logits.data.size(), withNone->logits.data.size());
    EXPECT_EQ(
        std::memcmp(plain->logits.data.data(), withNone->logits.data.data(), plain->logits.data.size() * sizeof(float)),
        0);
}

TEST_F(Mitigation, MaskSinkRenormalisesOverTheOtherKeysOnScopedHeadsOnly)
{
    const ForwardResult base = run("none"), m = run("mask-sink:heads=L0H1");
    for (int64_t i = 0; i < T(); ++i) {
        for (int64_t j = 0; j <= i; ++j) {
            const double a0 = at(base, 0, 1, i, 0);
            const double expected = i == 0 ? 1.0 : (j == 0 ? 0.0 : at(base, 0, 1, i, j) / (1.0 - a0));
            EXPECT_NEAR(at(m, 0, 1, i, j), expected, kTol) << i << "," << j;
            EXPECT_EQ(at(m, 0, 0, i, j), at(base, 0, 0, i, j)); // out of scope: untouched
        }
    }
}

TEST_F(Mitigation, ZeroTuneScalesTheFirstTokenByGamma)
{
    const double g = 2.5;
    const ForwardResult base = run("none"), m = run("zerotune:gamma=2.5,heads=L0H2");
    for (int64_t i = 1; i < T(); ++i) {
        const double a0 = at(base, 0, 2, i, 0), norm = (g - 1) * a0 + 1;
        EXPECT_NEAR(at(m, 0, 2, i, 0), g * a0 / norm, kTol);
        for (int64_t j = 1; j <= i; ++j) {
            EXPECT_NEAR(at(m, 0, 2, i, j), at(base, 0, 2, i, j) / norm, kTol);
        }
    }
}

TEST_F(Mitigation, Softmax1SinkLogitAndTemperatureFollowTheFormulas)
{
    const auto z = scores0();
    const ForwardResult s1 = run("softmax1:heads=L0H0"), sl = run("sink-logit:b=1.5,heads=L0H0"),
                        tp = run("temperature:tau=0.5,heads=L0H0");
    for (int64_t i = 0; i < T(); ++i) {
        double sum = 0, sumT = 0;
        for (int64_t j = 0; j <= i; ++j) {
            sum += std::exp(z[static_cast<size_t>(i * T() + j)]);
            sumT += std::exp(z[static_cast<size_t>(i * T() + j)] / 0.5);
        }
        for (int64_t j = 0; j <= i; ++j) {
            const double e = std::exp(z[static_cast<size_t>(i * T() + j)]);
            EXPECT_NEAR(at(s1, 0, 0, i, j), e / (1.0 + sum), kTol);
            EXPECT_NEAR(at(sl, 0, 0, i, j), e / (std::exp(1.5) + sum), kTol);
            EXPECT_NEAR(at(tp, 0, 0, i, j), std::exp(z[static_cast<size_t>(i * T() + j)] / 0.5) / sumT, kTol);
        }
    }
}

TEST_F(Mitigation, ValueZeroHeadZeroAndMoveToBos)
{
    const ForwardResult base = run("none"), vz = run("value-zero:sinks=2,heads=L1H3");
    const auto &vn = vz.valueNorms; // [L, H, Tk]
    auto vnorm = [&](const FloatArray &a, int64_t l, int64_t h, int64_t j) {
        return a.data[static_cast<size_t>((l * 4 + h) * T() + j)];
    };
    EXPECT_EQ(vnorm(vn, 1, 3, 0), 0.0f);
    EXPECT_EQ(vnorm(vn, 1, 3, 1), 0.0f);
    EXPECT_GT(vnorm(vn, 1, 3, 2), 0.0f);
    EXPECT_EQ(vnorm(vn, 0, 3, 0), vnorm(base.valueNorms, 0, 3, 0));

    const ForwardResult hz = run("head-zero:heads=L0H1"), mb = run("move-to-bos:heads=L0H2");
    for (int64_t i = 0; i < T(); ++i) {
        for (int64_t j = 0; j <= i; ++j) {
            EXPECT_EQ(at(hz, 0, 1, i, j), 0.0f);
            EXPECT_EQ(at(mb, 0, 2, i, j), j == 0 ? 1.0f : 0.0f);
        }
    }
}

TEST_F(Mitigation, StreamingMasksOutsideSinksAndWindow)
{
    const ForwardResult base = run("none"), m = run("streaming:sinks=1,window=3");
    for (int64_t i = 0; i < T(); ++i) {
        double kept = 0;
        for (int64_t j = 0; j <= i; ++j) {
            if (j < 1 || i - j < 3) {
                kept += at(base, 0, 0, i, j);
            }
        }
        for (int64_t j = 0; j <= i; ++j) {
            const bool visible = j < 1 || i - j < 3;
            EXPECT_NEAR(at(m, 0, 0, i, j), visible ? at(base, 0, 0, i, j) / kept : 0.0, kTol) << i << "," << j;
        }
    }
}

TEST_F(Mitigation, ActMatchesTheReleasedAlgorithm)
{
    const double beta = 0.4, thres = 0.15;
    const ForwardResult base = run("none"), m = run("act:beta=0.4,thres=0.15,heads=L0H3");
    const int64_t t = T();
    // atten_process_eval, transcribed: column means over visible queries, drop the first sink column.
    std::vector<double> a(static_cast<size_t>(t * t));
    for (int64_t i = 0; i < t; ++i) {
        for (int64_t j = 0; j < t; ++j) {
            a[static_cast<size_t>(i * t + j)] = at(base, 0, 3, i, j);
        }
    }
    std::vector<int64_t> sinks;
    for (int64_t j = 0; j < t; ++j) {
        double col = 0;
        for (int64_t i = 0; i < t; ++i) {
            col += a[static_cast<size_t>(i * t + j)];
        }
        if (col / static_cast<double>(t - j) > thres) {
            sinks.push_back(j);
        }
    }
    ASSERT_GE(sinks.size(), 2u) << "pick a threshold that detects more than the first column";
    sinks.erase(sinks.begin());
    std::vector<double> out = a, copy = a;
    for (int64_t i = 0; i < t; ++i) {
        double budget = 0;
        for (int64_t j : sinks) {
            budget += a[static_cast<size_t>(i * t + j)];
            out[static_cast<size_t>(i * t + j)] *= beta;
            if (i >= 1) {
                copy[static_cast<size_t>(i * t + j)] = 0;
            }
        }
        budget *= 1 - beta;
        double rowSum = 0;
        for (int64_t j = 0; j < t; ++j) {
            rowSum += copy[static_cast<size_t>(i * t + j)];
        }
        for (int64_t j = 0; j < t; ++j) {
            out[static_cast<size_t>(i * t + j)] += budget * copy[static_cast<size_t>(i * t + j)] / rowSum;
        }
    }
    out[0] = 1;
    for (int64_t i = 0; i < t; ++i) {
        double sum = 0;
        for (int64_t j = 0; j < t; ++j) {
            EXPECT_NEAR(at(m, 0, 3, i, j), out[static_cast<size_t>(i * t + j)], kTol) << i << "," << j;
            sum += at(m, 0, 3, i, j);
            EXPECT_EQ(at(m, 0, 2, i, j), at(base, 0, 2, i, j)); // other heads untouched
        }
        EXPECT_NEAR(sum, 1.0, 1e-5);
    }
}

TEST_F(Mitigation, ResidPatchesTheMassiveActivations)
{
    ForwardRequest r{.tokens = tokens()};
    r.capture.hidden = true;
    auto base = s_model->forward(r);
    ASSERT_TRUE(base);
    // The tiny model has no massive activations; a low threshold picks its largest entries.
    float largest = 0;
    const int64_t d = base->hidden.shape[2];
    for (int64_t i = 0; i < T() * d; ++i) {
        largest = std::max(largest, std::fabs(base->hidden.data[static_cast<size_t>(i)]));
    }
    const auto found = findMassiveActivations(base->hidden, 0, 0.9 * largest, 0);
    ASSERT_FALSE(found.empty());
    auto spec = parseMitigation("resid:mode=zero,layer=0,abs=" + std::to_string(0.9 * largest) + ",rel=0");
    ASSERT_TRUE(spec) << spec.error().message;
    auto controls = buildControls(*s_model, *spec, tokens());
    ASSERT_TRUE(controls) << controls.error().message;
    r.controls = *controls;
    auto patched = s_model->forward(r);
    ASSERT_TRUE(patched);
    for (const auto &[tok, dim] : found) {
        EXPECT_EQ(patched->hidden.data[static_cast<size_t>(tok * d + dim)], 0.0f);
    }
    auto none = parseMitigation("resid:mode=zero,layer=0");
    ASSERT_TRUE(none);
    auto refused = buildControls(*s_model, *none, tokens());
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message.find("no massive activations"), std::string::npos);
}

TEST_F(Mitigation, EffectsAgainstTheBaseline)
{
    EffectsOptions opt;
    opt.continuationTokens = 3;
    auto baseline = runBaseline(*s_model, tokens(), opt);
    ASSERT_TRUE(baseline) << baseline.error().message;
    auto none = compareMitigation(*s_model, *baseline, MitigationSpec{}, opt);
    ASSERT_TRUE(none);
    EXPECT_EQ(none->nextTokenKl, 0.0);
    EXPECT_EQ(none->baselinePerplexity, none->mitigatedPerplexity);
    EXPECT_EQ(none->baselineContinuation, none->mitigatedContinuation);
    auto spec = parseMitigation("head-zero:heads=L0H1");
    ASSERT_TRUE(spec);
    auto e = compareMitigation(*s_model, *baseline, *spec, opt);
    ASSERT_TRUE(e) << e.error().message;
    EXPECT_GT(e->nextTokenKl, 0.0);
    EXPECT_NE(e->baselinePerplexity, e->mitigatedPerplexity);
    ASSERT_EQ(e->headDifference.shape, (std::vector<int64_t>{2, 4}));
    EXPECT_EQ(e->headDifference.data[0], 0.0f); // L0H0 out of scope, same input
    EXPECT_GT(e->headDifference.data[1], 0.0f); // L0H1 zeroed
    EXPECT_EQ(e->attentionDifference.size(), 2u);
    EXPECT_EQ(e->mitigatedContinuation.size(), 3u);
    // The baseline perplexity is exp of the mean teacher-forced NLL.
    const auto nll = nextTokenNll(baseline->forward.logits, tokens());
    ASSERT_EQ(nll.size(), tokens().size() - 1);
    double sum = 0;
    for (double v : nll) {
        sum += v;
    }
    EXPECT_NEAR(e->baselinePerplexity, std::exp(sum / static_cast<double>(nll.size())), 1e-9);
}

TEST_F(Mitigation, HeadLossChangesAndActSearch)
{
    auto delta = headLossChanges(*s_model, tokens(), MitigationMethod::HeadZero);
    ASSERT_TRUE(delta) << delta.error().message;
    ASSERT_EQ(delta->shape, (std::vector<int64_t>{2, 4}));
    for (float v : delta->data) {
        EXPECT_TRUE(std::isfinite(v));
    }
    auto search = searchActHeads(*s_model, {tokens()}, 0.4, 0.15, {0});
    ASSERT_TRUE(search) << search.error().message;
    for (size_t i = 1; i < search->gains.size(); ++i) {
        EXPECT_GE(std::get<2>(search->gains[i - 1]), std::get<2>(search->gains[i]));
    }
    for (const auto &[l, h, g] : search->gains) {
        EXPECT_EQ(l, 0);
        EXPECT_GT(g, 0.0);
        EXPECT_TRUE(search->heads.contains(l, h));
    }
}
