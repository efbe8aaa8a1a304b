// The Mitigations tab's controller without any widget: baseline and mitigated runs through the compute
// thread, the LRU cache of recent specs, on/off without model work, stale prompts, continuations, and the
// refusals it explains.
#include "compute_bridge.h"
#include "mitigation_controller.h"
#include "tiny_window.h"

#include "sinkscope/interventions/effects.h"

#include <QSignalSpy>

#include <gtest/gtest.h>

using namespace sinkscope;
using namespace sinkscope::ui;

namespace {

class MitigationControllerTest : public sinkscope::testing::TinyWindowTest
{
protected:
    void SetUp() override
    {
        auto loaded = Model::load(s_model.toStdString());
        ASSERT_TRUE(loaded) << loaded.error().message;
        m_model = *loaded;
        m_controller = std::make_unique<MitigationController>(&m_bridge, [this] { return m_model; });
        m_tokens = m_model->tokenizer()->encode("hello world, hello there");
        ASSERT_GT(m_tokens.size(), 3u);
    }

    // Applies `spec` and waits for it to be shown (at once when it needs no model work).
    bool applyAndWait(const QString &spec)
    {
        QSignalSpy shown(m_controller.get(), &MitigationController::effectsShown);
        m_controller->setSpec(spec);
        if (!m_controller->apply()) {
            return false;
        }
        return shown.count() > 0 || shown.wait(60000);
    }
    bool working() const { return m_bridge.isPending(QString::fromLatin1(MitigationController::kEffectsTag)); }

    ComputeBridge m_bridge;
    std::shared_ptr<const Model> m_model;
    std::unique_ptr<MitigationController> m_controller;
    std::vector<int64_t> m_tokens;
};

} // namespace

TEST_F(MitigationControllerTest, RunsBaselineAndMitigationAndShowsCachedRunsWithoutModelWork)
{
    m_controller->setTokens(m_tokens);
    EXPECT_TRUE(m_controller->stale()); // nothing computed for these tokens yet
    ASSERT_TRUE(applyAndWait(QStringLiteral("mask-sink")));
    EXPECT_FALSE(m_controller->stale());
    const auto baseline = m_controller->baseline();
    ASSERT_TRUE(baseline);
    EXPECT_EQ(baseline->tokens, m_tokens);
    const auto effects = m_controller->shownEffects();
    ASSERT_TRUE(effects);
    EXPECT_EQ(effects->spec, "mask-sink:sinks=1");

    // The same numbers as the core's own comparison.
    auto spec = parseMitigation("mask-sink");
    ASSERT_TRUE(spec);
    EffectsOptions options;
    options.continuationTokens = 0;
    auto direct = compareMitigation(*m_model, *baseline, *spec, options);
    ASSERT_TRUE(direct) << direct.error().message;
    EXPECT_NEAR(effects->nextTokenKl, direct->nextTokenKl, 1e-6);
    EXPECT_NEAR(effects->mitigatedPerplexity, direct->mitigatedPerplexity, 1e-4);

    // "none", then the cached spec again, and off / on: shown at once, no job.
    ASSERT_TRUE(applyAndWait(QStringLiteral("none")));
    EXPECT_FALSE(working());
    EXPECT_FALSE(m_controller->shownEffects());
    EXPECT_EQ(m_controller->baseline(), baseline);
    ASSERT_TRUE(applyAndWait(QStringLiteral("mask-sink:sinks=1")));
    EXPECT_FALSE(working());
    EXPECT_EQ(m_controller->shownEffects(), effects);
    QSignalSpy shown(m_controller.get(), &MitigationController::effectsShown);
    m_controller->setEnabled(false);
    EXPECT_EQ(shown.count(), 1);
    EXPECT_FALSE(m_controller->shownEffects());
    m_controller->setEnabled(true);
    EXPECT_EQ(shown.count(), 2);
    EXPECT_FALSE(working());
    EXPECT_EQ(m_controller->shownEffects(), effects);
}

TEST_F(MitigationControllerTest, KeepsTheMostRecentSpecsAndForgetsThemForNewTokens)
{
    m_controller->setTokens(m_tokens);
    QStringList applied;
    for (int i = 1; i <= MitigationController::kCachedSpecs + 1; ++i) {
        const QString spec = QStringLiteral("temperature:tau=1.%1").arg(i);
        ASSERT_TRUE(applyAndWait(spec)) << spec.toStdString();
        applied.prepend(spec);
    }
    const QStringList cached = m_controller->cachedSpecs();
    ASSERT_EQ(cached.size(), MitigationController::kCachedSpecs);
    EXPECT_EQ(cached, applied.mid(0, MitigationController::kCachedSpecs)); // the oldest fell out
    // Showing a cached spec again makes it the most recent.
    ASSERT_TRUE(applyAndWait(cached.last()));
    EXPECT_FALSE(working());
    EXPECT_EQ(m_controller->cachedSpecs().front(), cached.last());

    // Another prompt: the shown result is stale, and the next apply starts from a new baseline.
    const auto before = m_controller->baseline();
    std::vector<int64_t> other = m_tokens;
    other.pop_back();
    m_controller->setTokens(other);
    EXPECT_TRUE(m_controller->stale());
    ASSERT_TRUE(applyAndWait(QStringLiteral("softmax1")));
    ASSERT_TRUE(m_controller->baseline());
    EXPECT_NE(m_controller->baseline(), before);
    EXPECT_EQ(m_controller->baseline()->tokens, other);
    EXPECT_EQ(m_controller->cachedSpecs(), QStringList{QStringLiteral("softmax1")});
}

TEST_F(MitigationControllerTest, ContinuationsAndDormancyArriveFromTheComputeThread)
{
    m_controller->setTokens(m_tokens);
    QSignalSpy continued(m_controller.get(), &MitigationController::continuationShown);
    ASSERT_TRUE(applyAndWait(QStringLiteral("head-zero:heads=L0")));
    ASSERT_TRUE(continued.count() > 0 || continued.wait(60000));
    const auto *base = m_controller->continuation(QStringLiteral("none"));
    const auto *mitigated = m_controller->continuation(QStringLiteral("head-zero:heads=L0"));
    ASSERT_TRUE(base && mitigated);
    EXPECT_FALSE(base->empty());
    EXPECT_LE(base->size(), size_t(MitigationController::kContinuationTokens));
    auto greedy =
        m_model->generate(m_tokens, GenerateOptions{.maxNewTokens = MitigationController::kContinuationTokens});
    ASSERT_TRUE(greedy);
    EXPECT_EQ(*base, *greedy);

    QSignalSpy dormant(m_controller.get(), &MitigationController::dormancyShown);
    ASSERT_TRUE(m_controller->runDormancy(MitigationMethod::HeadZero));
    ASSERT_TRUE(dormant.wait(60000));
    auto direct = headLossChanges(*m_model, m_tokens, MitigationMethod::HeadZero);
    ASSERT_TRUE(direct);
    EXPECT_EQ(m_controller->dormancy().shape, direct->shape);
    EXPECT_EQ(m_controller->dormancyMethod(), QStringLiteral("head-zero"));
}

TEST_F(MitigationControllerTest, SaysWhyItCannotRun)
{
    QSignalSpy status(m_controller.get(), &MitigationController::status);
    m_controller->setSpec(QStringLiteral("mask-sink"));
    EXPECT_FALSE(m_controller->apply()); // no prompt yet
    ASSERT_EQ(status.count(), 1);
    EXPECT_EQ(status.last().at(0).toString(), QStringLiteral("Run a prompt first."));
    m_controller->setTokens(m_tokens);
    m_controller->setSpec(QStringLiteral("mask-snk"));
    EXPECT_TRUE(m_controller->canonicalSpec().isEmpty());
    EXPECT_TRUE(m_controller->specError().contains(QStringLiteral("unknown method 'mask-snk'")));
    EXPECT_FALSE(m_controller->apply());
    EXPECT_TRUE(status.last().at(0).toString().contains(QStringLiteral("mask-snk")));
    m_controller->setSpec(QStringLiteral("head-zero:heads=L9H0")); // the tiny model has 2 layers
    EXPECT_TRUE(m_controller->specError().contains(QStringLiteral("outside the model")));
    EXPECT_FALSE(m_controller->apply());
    EXPECT_FALSE(working());
    std::vector<int64_t> one = {m_tokens.front()};
    m_controller->setTokens(one);
    EXPECT_FALSE(m_controller->runDormancy(MitigationMethod::HeadZero));
}
