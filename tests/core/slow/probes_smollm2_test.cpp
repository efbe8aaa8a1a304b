// The default probe set on the default model (SmolLM2-135M-Instruct), baseline setting: accuracy and mean
// answer log-probability must match the figures in docs/probes.md, so a regression in the model path, the
// tokenizer or the scorer fails here. Takes about 1-2 minutes on two cores (label slow).
#include "sinkscope/model/model.h"
#include "sinkscope/probes/probes.h"
#include "sinkscope/runtime/paths.h"

#include <gtest/gtest.h>

#include <iostream>

using namespace sinkscope;

namespace {

// docs/probes.md, "Baseline on SmolLM2-135M-Instruct".
constexpr int kDocumentedCorrect = 73;
constexpr int kDocumentedCount = 129;
constexpr double kDocumentedMeanLogProb = -2.111;
// A near-tie probe may flip with another BLAS or thread count; more than three is a regression.
constexpr int kToleranceProbes = 3;

} // namespace

TEST(ProbeSmolLM2, DefaultSetBaselineMatchesTheDocumentedFigure)
{
    auto path = ensureDefaultModel();
    if (!path) {
        GTEST_SKIP() << "default model not installed (run tools/setup.sh): " << path.error().message;
    }
    auto model = Model::load(*path);
    ASSERT_TRUE(model) << model.error().message;
    auto set = loadProbeSet(defaultProbeSetPath());
    ASSERT_TRUE(set) << set.error().message;
    // Accuracy does not depend on the Lookback ratios; leaving out the attention capture saves time.
    auto run = runProbes(**model, *set, MitigationSpec{}, ProbeOptions{.lookback = false});
    ASSERT_TRUE(run) << run.error().message;
    const ProbeRun &r = **run;
    std::cout << "baseline: " << r.overall.correct << "/" << r.overall.count << " right, mean log-prob "
              << r.overall.meanLogProbability << ", " << r.forwardPasses << " passes in " << r.seconds << " s\n";
    for (const auto &c : r.byCategory) {
        std::cout << "  " << c.category << ": " << c.correct << "/" << c.count << "\n";
    }
    EXPECT_EQ(r.overall.count, kDocumentedCount);
    EXPECT_NEAR(r.overall.correct, kDocumentedCorrect, kToleranceProbes);
    EXPECT_NEAR(r.overall.meanLogProbability, kDocumentedMeanLogProb, 0.05);
    // Sanity of the scores themselves: probabilities in range, the log-probability of a whole answer never
    // above that of its first content token.
    for (const auto &s : r.scores) {
        EXPECT_GT(s.firstTokenProbability, 0.0) << s.id;
        EXPECT_LE(s.firstTokenProbability, 1.0) << s.id;
        EXPECT_GE(s.firstTokenRank, 1) << s.id;
        EXPECT_LE(s.answerLogProbability, 1e-6) << s.id;
        EXPECT_FALSE(s.greedyTokens.empty()) << s.id;
    }
}
