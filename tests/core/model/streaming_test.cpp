// The StreamingLLM evaluation on the tiny Llama: the rolling cache against dense decoding and against
// teacher-forced forward passes.
#include "sinkscope/interventions/effects.h"
#include "sinkscope/interventions/streaming.h"
#include "sinkscope/model/convert.h"
#include "sinkscope/model/model.h"
#include "support/test_paths.h"
#include "support/tiny_model_files.h"
#include "support/tiny_models.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

using namespace sinkscope;
namespace st = sinkscope::testing;

namespace {

class Streaming : public ::testing::Test
{
protected:
    static void SetUpTestSuite()
    {
        s_dir = std::make_unique<st::TempDir>();
        s_model = st::convertAndLoadTiny(*s_dir, "tiny", st::writeTinyLlamaGguf);
        ASSERT_TRUE(s_model);
        auto e = StreamingEvaluator::create(s_model);
        ASSERT_TRUE(e) << e.error().message;
        s_eval = std::move(e).value();
    }
    static void TearDownTestSuite()
    {
        s_eval.reset();
        s_model.reset();
        s_dir.reset();
    }
    static std::vector<int64_t> text(int64_t n)
    {
        std::vector<int64_t> t;
        for (int64_t i = 0; i < n; ++i) {
            t.push_back((i * 37 + 11) % 300);
        }
        return t;
    }
    static StreamingResult run(const std::vector<int64_t> &tokens, StreamingOptions o)
    {
        auto r = s_eval->run(tokens, o);
        EXPECT_TRUE(r) << r.error().message;
        return *r;
    }

    static std::unique_ptr<st::TempDir> s_dir;
    static std::shared_ptr<const Model> s_model;
    static std::unique_ptr<StreamingEvaluator> s_eval;
};
std::unique_ptr<st::TempDir> Streaming::s_dir;
std::shared_ptr<const Model> Streaming::s_model;
std::unique_ptr<StreamingEvaluator> Streaming::s_eval;

} // namespace

TEST_F(Streaming, DenseMatchesTeacherForcedForward)
{
    const auto tokens = text(40);
    const StreamingResult dense = run(tokens, {.mode = StreamingMode::Dense});
    auto f = s_model->forward(ForwardRequest{.tokens = tokens});
    ASSERT_TRUE(f);
    const auto nll = nextTokenNll(f->logits, tokens);
    ASSERT_EQ(dense.nll.size(), nll.size());
    double sum = 0;
    for (size_t i = 0; i < nll.size(); ++i) {
        EXPECT_NEAR(dense.nll[i], nll[i], 2e-4) << i;
        sum += nll[i];
    }
    EXPECT_NEAR(dense.perplexity, std::exp(sum / static_cast<double>(nll.size())), 1e-3);
    EXPECT_EQ(dense.tokens, 40);
}

TEST_F(Streaming, CacheEqualsDenseUntilTheFirstEviction)
{
    const auto tokens = text(24);
    const StreamingResult dense = run(tokens, {.mode = StreamingMode::Dense});
    const StreamingResult big = run(tokens, {.mode = StreamingMode::Cache, .sinks = 4, .window = 60});
    EXPECT_EQ(big.nll, dense.nll); // never full: the same computation, bit for bit
    const StreamingResult sinks = run(tokens, {.mode = StreamingMode::Cache, .sinks = 2, .window = 8});
    const StreamingResult window = run(tokens, {.mode = StreamingMode::Cache, .sinks = 0, .window = 10});
    // The token at index i sees min(i + 1, 10) keys: identical to dense while i < 10.
    for (size_t i = 0; i < 10; ++i) {
        EXPECT_EQ(sinks.nll[i], dense.nll[i]) << i;
        EXPECT_EQ(window.nll[i], dense.nll[i]) << i;
    }
    bool differs = false;
    for (size_t i = 10; i < dense.nll.size(); ++i) {
        differs = differs || sinks.nll[i] != dense.nll[i];
        EXPECT_NE(sinks.nll[i], window.nll[i]) << i; // the sinks change what the cache holds
    }
    EXPECT_TRUE(differs);
}

TEST_F(Streaming, RecomputeRerunsTheSameContextFromScratch)
{
    const auto tokens = text(30);
    const StreamingResult rec = run(tokens, {.mode = StreamingMode::Recompute, .sinks = 1, .window = 6});
    ASSERT_EQ(rec.nll.size(), 29u);
    // Index i with i >= 7 predicts token i + 1 from tokens {0} + {i-5..i}, positions 0..6.
    for (size_t i : {3u, 12u, 28u}) {
        std::vector<int64_t> ctx;
        if (i + 1 <= 7) {
            ctx.assign(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(i) + 1);
        } else {
            ctx = {tokens[0]};
            ctx.insert(ctx.end(), tokens.begin() + static_cast<std::ptrdiff_t>(i) - 5,
                       tokens.begin() + static_cast<std::ptrdiff_t>(i) + 1);
        }
        ForwardRequest r{.tokens = ctx};
        r.capture.lastLogitsOnly = true;
        auto f = s_model->forward(r);
        ASSERT_TRUE(f);
        const int64_t v = f->logits.shape[1];
        const float *row = f->logits.data.data();
        double m = row[0], sum = 0;
        for (int64_t k = 0; k < v; ++k) {
            m = std::max<double>(m, row[k]);
        }
        for (int64_t k = 0; k < v; ++k) {
            sum += std::exp(row[k] - m);
        }
        const double nll = m + std::log(sum) - row[tokens[i + 1]];
        EXPECT_NEAR(rec.nll[i], nll, 1e-4) << i;
    }
}

TEST_F(Streaming, OptionsLabelsSweepAndErrors)
{
    const auto sweep = standardStreamingSweep(256);
    ASSERT_EQ(sweep.size(), 7u);
    EXPECT_EQ(sweep[0].label(), "dense");
    EXPECT_EQ(sweep[1].label(), "window 0+256");
    EXPECT_EQ(sweep[4].label(), "sinks 4+252");
    EXPECT_EQ(sweep[6].label(), "recompute 0+256");
    auto shortText = s_eval->run({1}, {.mode = StreamingMode::Dense});
    ASSERT_FALSE(shortText);
    EXPECT_EQ(shortText.error().code, ErrorCode::InvalidArgument);
    auto limited = s_eval->run(text(40), {.mode = StreamingMode::Cache, .sinks = 1, .window = 4, .maxTokens = 12});
    ASSERT_TRUE(limited);
    EXPECT_EQ(limited->nll.size(), 11u);
    CancelToken cancel;
    cancel.cancel();
    auto cancelled = s_eval->run(text(10), {.mode = StreamingMode::Dense}, &cancel);
    ASSERT_FALSE(cancelled);
    EXPECT_EQ(cancelled.error().code, ErrorCode::Cancelled);
}

TEST_F(Streaming, SubstitutedSinksReplaceTheFirstTokensAndScoreTheRest)
{
    const auto tokens = text(30);
    const std::vector<int64_t> newlines = {7, 7, 7};
    StreamingOptions substituted{.mode = StreamingMode::Cache, .sinks = 3, .window = 6};
    substituted.sinkTokens = newlines;
    const StreamingResult r = run(tokens, substituted);
    EXPECT_EQ(r.options.label(), "sinks 3+6 (ids 7,7,7)");
    // The same decoding as a plain 3+6 cache over the text with its first three tokens replaced by hand.
    auto replaced = tokens;
    std::copy(newlines.begin(), newlines.end(), replaced.begin());
    const StreamingResult byHand = run(replaced, {.mode = StreamingMode::Cache, .sinks = 3, .window = 6});
    ASSERT_EQ(r.nll.size(), 29u);
    EXPECT_TRUE(std::isnan(r.nll[0]) && std::isnan(r.nll[1])) << "targets 1 and 2 are replaced sinks";
    double sum = 0;
    for (size_t i = 2; i < r.nll.size(); ++i) {
        EXPECT_EQ(r.nll[i], byHand.nll[i]) << i;
        sum += r.nll[i];
    }
    EXPECT_NEAR(r.meanNll, sum / 27.0, 1e-9);
    EXPECT_NEAR(r.perplexity, std::exp(sum / 27.0), 1e-6 * r.perplexity);
    // The sinks the cache keeps are the substitutes, not the text's own first tokens.
    const StreamingResult own = run(tokens, {.mode = StreamingMode::Cache, .sinks = 3, .window = 6});
    EXPECT_NE(r.nll[20], own.nll[20]);
    StreamingOptions recompute{.mode = StreamingMode::Recompute, .sinks = 3, .window = 6};
    recompute.sinkTokens = newlines;
    const StreamingResult rec = run(tokens, recompute);
    const StreamingResult recByHand = run(replaced, {.mode = StreamingMode::Recompute, .sinks = 3, .window = 6});
    EXPECT_EQ(rec.nll[25], recByHand.nll[25]);
    EXPECT_EQ(rec.options.label(), "recompute 3+6 (ids 7,7,7)");
}

TEST_F(Streaming, SubstitutedSinksErrors)
{
    StreamingOptions wrongCount{.mode = StreamingMode::Cache, .sinks = 4, .window = 6};
    wrongCount.sinkTokens = {7, 7};
    auto a = s_eval->run(text(20), wrongCount);
    ASSERT_FALSE(a);
    EXPECT_EQ(a.error().code, ErrorCode::InvalidArgument);
    EXPECT_NE(a.error().message.find("2 substitute sink tokens for 4 sinks"), std::string::npos) << a.error().message;
    StreamingOptions dense{.mode = StreamingMode::Dense};
    dense.sinkTokens = {7};
    EXPECT_FALSE(s_eval->run(text(20), dense));
    StreamingOptions outside{.mode = StreamingMode::Cache, .sinks = 1, .window = 6};
    outside.sinkTokens = {301};
    auto b = s_eval->run(text(20), outside);
    ASSERT_FALSE(b);
    EXPECT_NE(b.error().message.find("301"), std::string::npos);
    StreamingOptions tooShort{.mode = StreamingMode::Cache, .sinks = 2, .window = 6};
    tooShort.sinkTokens = {7, 7};
    EXPECT_FALSE(s_eval->run(text(2), tooShort));
}

TEST(StreamingGpt2, RefusesPositionsPastTheTable)
{
    st::TempDir dir;
    st::writeTinyGpt2Gguf(dir.file("g.gguf"));
    ASSERT_TRUE(convertGguf(dir.file("g.gguf"), dir.file("g.pt")));
    auto m = Model::load(dir.file("g.pt"));
    ASSERT_TRUE(m);
    auto e = StreamingEvaluator::create(*m);
    ASSERT_TRUE(e);
    std::vector<int64_t> tokens(80, 5);
    auto dense = (*e)->run(tokens, {.mode = StreamingMode::Dense});
    ASSERT_FALSE(dense);
    EXPECT_NE(dense.error().message.find("learned positions"), std::string::npos);
    auto window = (*e)->run(tokens, {.mode = StreamingMode::Cache, .sinks = 2, .window = 14});
    ASSERT_TRUE(window) << window.error().message; // in-cache positions stay inside the table
    EXPECT_EQ(window->nll.size(), 79u);
}
