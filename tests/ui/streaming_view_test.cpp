// The Streaming tab: its policies and plot from hand-made runs (the curves of `stream-ppl --plot`), and the
// tab in the window on the tiny Llama: it decodes the prompt on the compute thread when shown, its
// perplexities are the core StreamingEvaluator's on the same tokens, a cache change reuses the dense run,
// sessions keep {"cache": N}, Cancel drops the run, and the figure exports as PNG, SVG and PDF.
#include "compute_bridge.h"
#include "streaming_view.h"
#include "tiny_window.h"

#include "sinkscope/interventions/streaming.h"

#include <qcustomplot.h>

#include <QFileInfo>
#include <QSignalSpy>
#include <QTableWidget>
#include <QTest>

#include <gtest/gtest.h>

#include <cmath>

namespace sinkscope::testing {
namespace {

// A prompt long enough for a cache of 6 to evict (the tiny tokenizer splits it into ~25 tokens).
const QString kPrompt = QStringLiteral("hello world, hello world. the cat sat on the mat and the dog sat on the log.");
constexpr int kSmallCache = 6;

StreamingResult handRun(StreamingOptions options, std::vector<float> nll)
{
    StreamingResult r;
    r.options = options;
    r.nll = std::move(nll);
    r.tokens = static_cast<int64_t>(r.nll.size()) + 1;
    return r;
}

TEST(StreamingTab, PoliciesAreDenseWindowAndSinksAtOneCache)
{
    const auto policies = cacheComparison(32);
    ASSERT_EQ(policies.size(), 3u);
    EXPECT_EQ(policies[0].label(), "dense");
    EXPECT_EQ(policies[1].label(), "window 0+32");
    EXPECT_EQ(policies[2].label(), "sinks 4+28");
    // The lesson language's stream_ppl(window 32) / stream_ppl(sinks 4+28) name the same runs.
    EXPECT_EQ(cacheComparison(5)[2].label(), "sinks 4+1");
    EXPECT_EQ(cacheComparison(2)[2].label(), "sinks 1+1"); // a lesson's smallest `streaming: cache 2`
}

TEST(StreamingTab, CurvesAreTrailingMeansAndTheCacheIsMarked)
{
    ui::StreamingOutcome outcome;
    outcome.cache = 4;
    std::vector<float> nll;
    for (int i = 0; i < 40; ++i) {
        nll.push_back(float(i % 5));
    }
    outcome.runs.push_back(handRun({.mode = StreamingMode::Dense, .sinks = 0, .window = 0}, nll));
    nll[20] = 100; // one outlier: the window's curve carries it for `span` points
    outcome.runs.push_back(handRun({.mode = StreamingMode::Cache, .sinks = 0, .window = 4}, nll));
    const ui::LinePlot plot = ui::streamingLinePlot(outcome);
    const size_t span = nllCurveSpan(40);
    EXPECT_EQ(span, 5u); // an eighth of 40
    ASSERT_EQ(plot.series.size(), 2u);
    EXPECT_EQ(plot.series[1].name, QStringLiteral("window 0+4"));
    const auto &s = plot.series[1];
    ASSERT_EQ(s.x.size(), 40 - span + 1);
    for (size_t k = 0; k < s.x.size(); ++k) {
        const size_t last = size_t(s.x[k]) - 1; // the newest prediction in the mean
        double sum = 0;
        for (size_t i = last + 1 - span; i <= last; ++i) {
            sum += nll[i];
        }
        EXPECT_NEAR(s.y[k], sum / double(span), 1e-9) << "point " << k;
    }
    ASSERT_EQ(plot.marks.size(), 1u);
    EXPECT_EQ(plot.marks[0].x, 4.0);
    EXPECT_TRUE(plot.yLabel.contains(QStringLiteral("5 tokens")));
}

TEST(StreamingTab, PerplexityOnceFullSkipsThePredictionsBeforeTheCacheFills)
{
    const StreamingResult r = handRun({.mode = StreamingMode::Cache, .sinks = 1, .window = 2}, {9, 9, 1, 3});
    // Tokens 0..2 fill the cache of 3; the predictions made with a full cache are nll[2] and nll[3].
    EXPECT_NEAR(perplexityOnceFull(r), std::exp(2.0), 1e-9);
    const StreamingResult shortRun = handRun({.mode = StreamingMode::Cache, .sinks = 0, .window = 8}, {1, 2});
    EXPECT_TRUE(std::isnan(perplexityOnceFull(shortRun)));
}

class StreamingViewTest : public TinyWindowTest
{
protected:
    static ui::StreamingView *tab(ui::MainWindow *w) { return w->findChild<ui::StreamingView *>(); }

    static std::vector<int64_t> tokensOf(const ui::MainWindow &w)
    {
        std::vector<int64_t> ids;
        for (const auto &t : w.snapshot()->tokens) {
            ids.push_back(t.id);
        }
        return ids;
    }
};

TEST_F(StreamingViewTest, ComputesWhenShownAndMatchesTheCoreEvaluator)
{
    auto w = openAndRun({.modelPath = s_model, .prompt = kPrompt});
    ui::StreamingView *view = tab(w.get());
    ASSERT_NE(view, nullptr);
    EXPECT_EQ(view->cache(), ui::StreamingView::kDefaultCache);
    view->setCache(kSmallCache);
    EXPECT_FALSE(view->outcome()); // hidden: nothing runs yet
    QSignalSpy shown(view, &ui::StreamingView::resultShown);
    w->show();
    w->showView(QStringLiteral("streaming"));
    ASSERT_TRUE(shown.wait(60000)) << view->noteText().toStdString();
    const auto outcome = view->outcome();
    ASSERT_TRUE(outcome);
    const std::vector<int64_t> tokens = tokensOf(*w);
    ASSERT_GT(tokens.size(), size_t(kSmallCache) + 4) << "the prompt must be longer than the cache";
    EXPECT_EQ(outcome->tokens, tokens);
    ASSERT_EQ(outcome->runs.size(), 3u);

    // The same numbers as the core evaluator on the same ids (what stream-ppl and the lessons' stream_ppl run).
    auto evaluator = StreamingEvaluator::create(w->model());
    ASSERT_TRUE(evaluator.ok()) << evaluator.error().message;
    const auto policies = cacheComparison(kSmallCache);
    for (size_t i = 0; i < policies.size(); ++i) {
        auto expected = (*evaluator)->run(tokens, policies[i]);
        ASSERT_TRUE(expected.ok()) << expected.error().message;
        EXPECT_EQ(outcome->runs[i].options.label(), policies[i].label());
        EXPECT_NEAR(outcome->runs[i].perplexity, expected->perplexity, 1e-6 * expected->perplexity) << i;
        ASSERT_EQ(outcome->runs[i].nll.size(), tokens.size() - 1);
        // The table lists each policy's perplexity as shown.
        EXPECT_EQ(view->table()->item(int(i), 2)->text(), QString::number(expected->perplexity, 'f', 2)) << i;
    }
    // One graph per policy, each with the curve's points.
    ASSERT_EQ(view->plot()->graphCount(), 3);
    const NllCurve dense = trailingMeanNll(outcome->runs[0], nllCurveSpan(tokens.size() - 1));
    EXPECT_EQ(view->plot()->graph(0)->dataCount(), int(dense.position.size()));
    EXPECT_EQ(view->currentData().rows.size(), qsizetype(tokens.size() - 1));
}

TEST_F(StreamingViewTest, CacheChangeReusesDenseAndSessionsKeepTheCache)
{
    auto w = openAndRun({.modelPath = s_model, .prompt = kPrompt});
    ui::StreamingView *view = tab(w.get());
    QSignalSpy shown(view, &ui::StreamingView::resultShown);
    view->setCache(kSmallCache);
    w->show();
    w->showView(QStringLiteral("streaming"));
    ASSERT_TRUE(shown.wait(60000));
    const auto first = view->outcome();

    // A lesson's `streaming: cache 8` arrives as the view's state.
    EXPECT_EQ(w->currentSession().views.value(QStringLiteral("streaming")).toObject().value("cache").toInt(),
              kSmallCache);
    view->restoreState(QJsonObject{{QStringLiteral("cache"), 8}});
    EXPECT_EQ(view->cache(), 8);
    EXPECT_EQ(view->saveState().value(QStringLiteral("cache")).toInt(), 8);
    ASSERT_TRUE(shown.wait(60000));
    const auto second = view->outcome();
    ASSERT_NE(first, second);
    EXPECT_EQ(second->cache, 8);
    EXPECT_EQ(second->runs[0].nll, first->runs[0].nll);
    EXPECT_EQ(second->runs[0].seconds, first->runs[0].seconds); // the same dense run, not decoded again
    EXPECT_EQ(second->runs[1].options.label(), "window 0+8");

    // The figure exports like every view's.
    for (const char *name : {"streaming.png", "streaming.svg", "streaming.pdf"}) {
        const QString path = file(name);
        QString error;
        ui::FigureOptions options = w->defaultFigureOptions();
        options.pixelSize = QSize(900, 600);
        ASSERT_TRUE(w->exportCurrentView(path, options, &error)) << error.toStdString();
        EXPECT_GT(QFileInfo(path).size(), 1000) << name;
    }
    // An older session without the key gets the default.
    view->restoreState(QJsonObject{});
    EXPECT_EQ(view->cache(), ui::StreamingView::kDefaultCache);
}

TEST_F(StreamingViewTest, CancelDropsTheRunAndComputeStartsAgain)
{
    auto w = openAndRun({.modelPath = s_model, .prompt = kPrompt});
    ui::StreamingView *view = tab(w.get());
    QSignalSpy shown(view, &ui::StreamingView::resultShown);
    view->compute(); // hidden, but asked for
    EXPECT_TRUE(view->isBusy());
    view->cancel();
    EXPECT_FALSE(view->isBusy());
    EXPECT_FALSE(shown.wait(1500));
    EXPECT_FALSE(view->outcome());
    view->compute();
    ASSERT_TRUE(shown.wait(60000));
    EXPECT_TRUE(view->outcome());
    EXPECT_FALSE(view->isBusy());

    // Esc (the window's Cancel: every job) also ends the tab's run.
    view->setCache(kSmallCache + 1);
    view->compute();
    EXPECT_TRUE(view->isBusy());
    w->bridge()->cancelAll();
    QTRY_VERIFY_WITH_TIMEOUT(!view->isBusy(), 2000);
    EXPECT_EQ(view->outcome()->cache, ui::StreamingView::kDefaultCache);
}

} // namespace
} // namespace sinkscope::testing
