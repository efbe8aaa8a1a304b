// Lesson files (parse, write, validate, errors with file:line: field) and live numbers on the tiny Llama,
// against values computed independently from the core's own results.
#include "sinkscope/analysis/metrics.h"
#include "sinkscope/interventions/effects.h"
#include "sinkscope/interventions/streaming.h"
#include "sinkscope/lessons/lesson.h"
#include "sinkscope/lessons/lesson_live.h"
#include "sinkscope/model/model.h"
#include "support/test_paths.h"
#include "support/tiny_model_files.h"
#include "support/tiny_models.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

using namespace sinkscope;
using namespace sinkscope::lessons;
namespace st = sinkscope::testing;

namespace {

const char *kLesson = R"(---
sinkscope-lesson: 1
id: demo-lesson
title: A demo
audience: a class
duration: 12 min
needs: streaming
sources: Xiao et al. 2024
---

## First step
prompt: the cat sat\non the mat
bos: off
tab: head
layer: 1
head: 3
metric: first_token_mass
scale: log
clamp: 99
without_sink: on
colours: magma
mitigation: mask-sink
zoom: 0 5 0 5
select: 0, 2 3
streaming: cache 16
probes: default, dates
check: share(first_token_mass > 0.5, layers 1..) >= 50% and mean(first_token_mass) > 0
question: Where does the attention go?
answer: To the first token,
  mostly.

The caption, with a formula $\alpha_1$ and a live number {{mean(first_token_mass, layer 1) | %}}.

More caption.

## Second step
tab: overview
layer: 0

Only the tab and the layer change.
)";

Lesson parsed(const std::string &text)
{
    auto l = parseLesson(text, "demo.md");
    EXPECT_TRUE(l.ok()) << (l.ok() ? "" : l.error().message);
    return l.ok() ? l.value() : Lesson{};
}

std::string errorOf(const std::string &text)
{
    auto l = parseLesson(text, "bad.md");
    return l.ok() ? std::string("(parsed)") : l.error().message;
}

std::string withStep(const std::string &fields)
{
    return "---\nsinkscope-lesson: 1\nid: x\ntitle: X\naudience: a\nduration: 5\n---\n\n## Step\nprompt: hi\n" + fields;
}

} // namespace

TEST(LessonFile, ParsesEveryFieldAndTheCaption)
{
    const Lesson l = parsed(kLesson);
    EXPECT_EQ(l.id, "demo-lesson");
    EXPECT_EQ(l.durationMinutes, 12);
    ASSERT_EQ(l.needs.size(), 1u);
    ASSERT_EQ(l.steps.size(), 2u);
    const LessonStep &s = l.steps[0];
    EXPECT_EQ(s.line, 11);
    EXPECT_EQ(*s.state.prompt, "the cat sat\non the mat");
    EXPECT_FALSE(*s.state.bos);
    EXPECT_EQ(*s.state.layer, 1);
    EXPECT_EQ(*s.state.head, 3);
    EXPECT_EQ(*s.state.clamp, 99.0);
    EXPECT_TRUE(*s.state.withoutSink);
    EXPECT_EQ(*s.state.zoom, (std::vector<int64_t>{0, 5, 0, 5}));
    EXPECT_EQ(*s.state.select, (std::vector<int64_t>{0, 2, 3}));
    EXPECT_EQ(*s.state.streamingCache, 16);
    EXPECT_EQ(s.answer, "To the first token, mostly.");
    EXPECT_EQ(s.lineOf("check"), 27);
    EXPECT_EQ(s.caption, "The caption, with a formula $\\alpha_1$ and a live number {{mean(first_token_mass, layer 1) "
                         "| %}}.\n\nMore caption.");
    // Steps are cumulative.
    const LessonState at1 = l.stateAt(1);
    EXPECT_EQ(*at1.tab, "overview");
    EXPECT_EQ(*at1.layer, 0);
    EXPECT_EQ(*at1.head, 3);
    EXPECT_EQ(*at1.prompt, "the cat sat\non the mat");
    EXPECT_FALSE(l.steps[1].state.prompt.has_value());
}

TEST(LessonFile, WritesWhatItReads)
{
    const Lesson l = parsed(kLesson);
    const std::string text = formatLesson(l);
    const Lesson again = parsed(text);
    EXPECT_EQ(formatLesson(again), text);
    ASSERT_EQ(again.steps.size(), l.steps.size());
    for (size_t i = 0; i < l.steps.size(); ++i) {
        EXPECT_EQ(again.steps[i].title, l.steps[i].title);
        EXPECT_EQ(again.steps[i].caption, l.steps[i].caption);
        EXPECT_EQ(again.steps[i].check, l.steps[i].check);
        EXPECT_EQ(again.steps[i].answer, l.steps[i].answer);
        for (const std::string &key : LessonState::keys()) {
            EXPECT_EQ(again.steps[i].lineOf(key) > 0, true);
        }
        EXPECT_EQ(again.steps[i].state.prompt, l.steps[i].state.prompt);
        EXPECT_EQ(again.steps[i].state.zoom, l.steps[i].state.zoom);
        EXPECT_EQ(again.steps[i].state.clamp, l.steps[i].state.clamp);
    }
}

// `\n` is a newline in every field's value; the writer escapes them all. A model path or probe set
// holding "\n## x" once came back as a second step (found by fuzz_lesson).
TEST(LessonFile, ANewlineInAnyFieldIsWrittenOnOneLine)
{
    Lesson l;
    l.id = "escapes";
    l.title = "Escapes";
    l.audience = "a fuzzer";
    LessonStep step;
    step.title = "Only";
    step.state.prompt = "two\nlines \\ and a backslash";
    step.state.model = "model\n## not a step";
    step.state.probes = "probes.txt\nprompt: not a field";
    l.steps.push_back(step);
    const std::string text = formatLesson(l);
    auto again = parseLesson(text, "escapes.md");
    ASSERT_TRUE(again.ok()) << again.error().message << "\n" << text;
    ASSERT_EQ(again->steps.size(), 1u) << text;
    EXPECT_EQ(again->steps[0].state.prompt, step.state.prompt);
    EXPECT_EQ(again->steps[0].state.model, step.state.model);
    EXPECT_EQ(again->steps[0].state.probes, step.state.probes);
    EXPECT_EQ(formatLesson(*again), text);
}

TEST(LessonFile, ARecordedLessonWithoutDurationOrCaptionsIsWrittenReadably)
{
    // What the window's Record step makes: state only, no caption, no duration yet.
    Lesson l;
    l.id = "my-lesson";
    l.title = "Recorded";
    l.audience = "a class";
    for (int i = 0; i < 3; ++i) {
        LessonStep step;
        step.title = "Step " + std::to_string(i + 1);
        step.state.prompt = "The cat sat " + std::to_string(i);
        step.state.layer = i;
        l.steps.push_back(step);
    }
    auto again = parseLesson(formatLesson(l), "recorded.md");
    ASSERT_TRUE(again.ok()) << again.error().message;
    EXPECT_EQ(again->durationMinutes, 15);
    ASSERT_EQ(again->steps.size(), 3u);
    EXPECT_EQ(again->steps[2].state.layer, 2);
    EXPECT_TRUE(again->steps[2].caption.empty());
}

TEST(LessonFile, BadInputNamesFileLineAndField)
{
    EXPECT_EQ(errorOf(withStep("colour: magma\n")),
              "bad.md:11: colour: unknown field (fields: model, prompt, bos, tab, layer, head, metric, scale, clamp, "
              "without_sink, colours, mitigation, zoom, select, streaming, probes, check, question, answer)");
    EXPECT_EQ(errorOf(withStep("tab: heads\n")).rfind("bad.md:11: tab: unknown tab 'heads' (tabs: overview, head", 0),
              0u);
    EXPECT_EQ(errorOf(withStep("mitigation: mask-sink:sinks=zero\n")).rfind("bad.md:11: mitigation: ", 0), 0u);
    EXPECT_EQ(errorOf(withStep("layer: -1\n")), "bad.md:11: layer: '-1' is not a non-negative whole number");
    EXPECT_EQ(errorOf(withStep("zoom: 5 1 0 3\n")),
              "bad.md:11: zoom: '5 1 0 3' is not off or 'first-query last-query first-key last-key'");
    EXPECT_EQ(errorOf(withStep("answer: 42\n")), "bad.md:11: answer: an answer needs a question (question: ...)");
    EXPECT_EQ(errorOf(withStep("bos: maybe\n")), "bad.md:11: bos: 'maybe' is not on or off");
    EXPECT_EQ(errorOf(withStep("prompt: again\n")), "bad.md:11: prompt: given twice in this step");
    EXPECT_EQ(errorOf(withStep("check: mean(first_token_mass)\n"))
                  .rfind("bad.md:11: check: 'mean(first_token_mass)': "
                         "expected a comparison",
                         0),
              0u);
    EXPECT_EQ(errorOf(withStep("check: frobnicate > 1\n"))
                  .rfind("bad.md:11: check: 'frobnicate > 1': unknown quantity "
                         "'frobnicate'",
                         0),
              0u);
    EXPECT_EQ(errorOf(withStep("\nA caption {{mean(first_token_mass) | pct}}\n")),
              "bad.md:12: caption: live number '{{mean(first_token_mass) | pct}}': format 'pct' is not % or .0 to .6");
    EXPECT_EQ(errorOf(withStep("\nLine one\nA {{share(first_token_mass >)}}\n"))
                  .rfind("bad.md:13: caption: live number "
                         "'share(first_token_mass >)': "
                         "expected a number",
                         0),
              0u);
    EXPECT_EQ(errorOf(withStep("Here the caption starts without a blank line.\n")),
              "bad.md:11: step: expected 'field: value' right after the step's title (leave a blank line before the "
              "caption)");
    EXPECT_EQ(
        errorOf("## Step\nprompt: x\n"),
        "bad.md:1: header: a lesson starts with a '---' header (sinkscope-lesson: 1, id, title, audience, duration)");
    EXPECT_EQ(errorOf("---\nsinkscope-lesson: 2\n---\n"),
              "bad.md:2: sinkscope-lesson: version '2' is not supported (this build reads version 1)");
    EXPECT_EQ(errorOf("---\nsinkscope-lesson: 1\nid: x\ntitle: t\nduration: 5\n---\n## S\nprompt: p\n"),
              "bad.md:6: audience: missing from the header");
    EXPECT_EQ(errorOf("---\nsinkscope-lesson: 1\nid: x\n"),
              "bad.md:3: header: the '---' header is not closed by a second "
              "'---' line");
    EXPECT_EQ(errorOf("---\nsinkscope-lesson: 1\nid: x\ntitle: t\naudience: a\nduration: 5\n---\n"),
              "bad.md:7: steps: the lesson has no step (a step starts with a line '## Its title')");
    EXPECT_EQ(errorOf("---\nsinkscope-lesson: 1\nid: x\ntitle: t\naudience: a\nduration: 5\nneeds: gpu\n---\n## S\n"
                      "prompt: p\n"),
              "bad.md:7: needs: unknown feature 'gpu' (features: mitigations, streaming, probes, compare, gemma3)");
    EXPECT_EQ(errorOf("---\nsinkscope-lesson: 1\nid: x\ntitle: t\naudience: a\nduration: 5\n---\n## S\ntab: head\n"),
              "bad.md:8: prompt: the first step must set a prompt (prompt: ...)");
}

TEST(LessonFile, ValidationAgainstTheModelNamesTheLine)
{
    const Lesson l = parsed(withStep("layer: 99\n"));
    ModelConfig config;
    config.layers = 30;
    config.heads = 9;
    const std::vector<std::string> metrics = {"first_token_mass", "row_entropy"};
    auto ok = validateLesson(l, config, metrics);
    ASSERT_FALSE(ok.ok());
    EXPECT_EQ(ok.error().message, "demo.md:11: layer: 99 is out of range: the model has 30 layers (0..29)");

    auto head = validateLesson(parsed(withStep("head: 9\n")), config, metrics);
    ASSERT_FALSE(head.ok());
    EXPECT_EQ(head.error().message, "demo.md:11: head: 9 is out of range: the model has 9 heads per layer (0..8)");

    auto metric = validateLesson(parsed(withStep("metric: sink_mass\n")), config, metrics);
    ASSERT_FALSE(metric.ok());
    EXPECT_EQ(metric.error().message, "demo.md:11: metric: unknown metric 'sink_mass' (first_token_mass, row_entropy)");

    auto check =
        validateLesson(parsed(withStep("check: mean(first_token_mass, layers 28..40) > 0\n")), config, metrics);
    ASSERT_FALSE(check.ok());
    EXPECT_EQ(check.error().message,
              "demo.md:11: check: layer 40 is out of range: the model has 30 layers (0..29) in 'mean(first_token_mass, "
              "layers 28..40) > 0'");
    EXPECT_TRUE(validateLesson(parsed(kLesson), config, metrics).ok());
}

TEST(LessonFile, MissingModelFileIsNamed)
{
    st::TempDir dir;
    const std::string path = dir.file("lesson.md");
    std::ofstream(path) << withStep("model: models/mine.gguf\n");
    auto l = loadLesson(path);
    ASSERT_TRUE(l.ok()) << l.error().message;
    auto ok = checkLessonModels(l.value());
    ASSERT_FALSE(ok.ok());
    EXPECT_EQ(ok.error().message, path + ":11: model: " + dir.file("models/mine.gguf") + " does not exist");
    auto missing = loadLesson(dir.file("nope.md"));
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().message, dir.file("nope.md") + ": cannot be read (missing or no permission)");
}

TEST(LessonExpression, ParsesPrecedenceRangesAndPercent)
{
    auto e = parseCheck("ppl(mask-sink) > 1.5 * ppl(none) + 2 and share(first_token_mass >= 30%, layers ..3) < 1");
    ASSERT_TRUE(e.ok()) << e.error().message;
    EXPECT_EQ(expressionMetrics(*e.value()), std::vector<std::string>{"first_token_mass"});
    EXPECT_EQ(expressionLayers(*e.value()), std::vector<int64_t>{3});
    auto v = parseValue("value(first_token_mass, 2, 5)");
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(expressionLayers(*v.value()), std::vector<int64_t>{2});
    EXPECT_FALSE(parseValue("1 < 2").ok());
    EXPECT_FALSE(parseCheck("mean(first_token_mass, layers 4..2) > 0").ok());
    EXPECT_FALSE(parseCheck("stream_ppl(window) > 0").ok());
    EXPECT_FALSE(parseCheck("lookback(maybe) > 0").ok());
    EXPECT_FALSE(parseCheck("mean(first_token_mass > 0").ok());
    auto p = findPlaceholders("a {{x}} b {{ y | .2 }}");
    ASSERT_TRUE(p.ok());
    ASSERT_EQ(p->size(), 2u);
    EXPECT_EQ((*p)[1].expression, "y");
    EXPECT_EQ((*p)[1].format, ".2");
    EXPECT_FALSE(findPlaceholders("a {{x").ok());
}

class LessonLive : public ::testing::Test
{
protected:
    static void SetUpTestSuite()
    {
        s_dir = std::make_unique<st::TempDir>();
        s_model = st::convertAndLoadTiny(*s_dir, "tiny", st::writeTinyLlamaGguf);
    }
    static void TearDownTestSuite()
    {
        s_model.reset();
        s_dir.reset();
    }
    static LessonStep step(const std::string &check, const std::string &caption = {})
    {
        LessonStep s;
        s.title = "t";
        s.check = check;
        s.caption = caption;
        return s;
    }
    static LessonState state()
    {
        LessonState s;
        s.prompt = "the cat sat on the mat and the dog sat on the log";
        s.bos = true;
        return s;
    }
    static std::unique_ptr<st::TempDir> s_dir;
    static std::shared_ptr<const Model> s_model;
};
std::unique_ptr<st::TempDir> LessonLive::s_dir;
std::shared_ptr<const Model> LessonLive::s_model;

TEST_F(LessonLive, HeadQuantitiesMatchTheAnalysis)
{
    ASSERT_TRUE(s_model);
    LiveEvaluator live(s_model);
    auto tokens = lessonTokens(*s_model, *state().prompt, true);
    ASSERT_TRUE(tokens.ok());
    EXPECT_EQ(tokens->front(), st::tiny::kEndOfText); // BOS
    auto metrics = analyzeTokens(*s_model, tokens.value());
    ASSERT_TRUE(metrics.ok());
    const HeadMetric *m = metrics.value()->headMetric("first_token_mass");
    ASSERT_TRUE(m);
    // Independent: layer 1's heads.
    double sum = 0;
    int above = 0;
    for (int64_t h = 0; h < st::tiny::kHeads; ++h) {
        const float v = m->values.data[size_t(st::tiny::kHeads + h)];
        sum += v;
        above += v > 0.2f;
    }
    auto mean = parseValue("mean(first_token_mass, layer 1)");
    auto share = parseValue("share(first_token_mass > 0.2, layers 1..)");
    auto one = parseValue("value(first_token_mass, 1, 2)");
    ASSERT_TRUE(mean.ok() && share.ok() && one.ok());
    EXPECT_NEAR(live.value(*mean.value(), state()).value(), sum / st::tiny::kHeads, 1e-6);
    EXPECT_NEAR(live.value(*share.value(), state()).value(), above / double(st::tiny::kHeads), 1e-12);
    EXPECT_NEAR(live.value(*one.value(), state()).value(), m->values.data[size_t(st::tiny::kHeads + 2)], 1e-7);
    EXPECT_EQ(live.value(*parseValue("tokens").value(), state()).value(), double(tokens->size()));

    const double threshold = sum / st::tiny::kHeads;
    auto yes = live.evaluate(step("mean(first_token_mass, layer 1) > " + std::to_string(threshold - 1e-4),
                                  "mean {{mean(first_token_mass, layer 1) | .3}}, {{sink_fraction | %}} of heads"),
                             state());
    ASSERT_TRUE(yes.ok()) << yes.error().message;
    EXPECT_EQ(yes->check.status, CheckStatus::Confirmed);
    char expected[64];
    std::snprintf(expected, sizeof expected, "mean %.3f, ", threshold);
    EXPECT_EQ(yes->caption.rfind(expected, 0), 0u) << yes->caption;
    EXPECT_EQ(yes->caption.back(), 's');
    auto no = live.evaluate(step("mean(first_token_mass, layer 1) > " + std::to_string(threshold + 1e-4)), state());
    ASSERT_TRUE(no.ok());
    EXPECT_EQ(no->check.status, CheckStatus::NotConfirmed);
}

TEST_F(LessonLive, PerplexitiesMatchTheirOwnComputation)
{
    ASSERT_TRUE(s_model);
    LiveEvaluator live(s_model);
    const auto tokens = lessonTokens(*s_model, *state().prompt, true).value();
    ForwardRequest request;
    request.tokens = tokens;
    auto forward = s_model->forward(request);
    ASSERT_TRUE(forward.ok());
    const double ppl = std::exp(meanNextTokenNll(forward->logits, tokens));
    EXPECT_NEAR(live.value(*parseValue("ppl(none)").value(), state()).value(), ppl, 1e-6 * ppl);

    auto evaluator = StreamingEvaluator::create(s_model);
    ASSERT_TRUE(evaluator.ok());
    StreamingOptions window;
    window.sinks = 0;
    window.window = 6;
    auto r = evaluator.value()->run(tokens, window);
    ASSERT_TRUE(r.ok());
    EXPECT_NEAR(live.value(*parseValue("stream_ppl(window 6)").value(), state()).value(), r->perplexity,
                1e-9 * r->perplexity);

    // A mitigation the model rejects makes the check unavailable, with the reason; never an error.
    auto bad = live.evaluate(step("kl(mask-sink:heads=7.0) > 0", "KL {{kl(mask-sink:heads=7.0)}}"), state());
    ASSERT_TRUE(bad.ok()) << bad.error().message;
    EXPECT_EQ(bad->check.status, CheckStatus::Unavailable);
    EXPECT_FALSE(bad->check.detail.empty());
    EXPECT_EQ(bad->caption.rfind("KL n/a (", 0), 0u) << bad->caption;
    auto masked = live.evaluate(step("ppl(mask-sink) != ppl(none)"), state());
    ASSERT_TRUE(masked.ok());
    EXPECT_EQ(masked->check.status, CheckStatus::Confirmed) << masked->check.detail;
}

TEST_F(LessonLive, EmptyPromptAndCancelAreErrors)
{
    ASSERT_TRUE(s_model);
    LiveEvaluator live(s_model);
    LessonState empty;
    empty.prompt = "";
    empty.bos = false;
    EXPECT_FALSE(live.evaluate(step("tokens > 0"), empty).ok());
    CancelToken cancel;
    cancel.cancel();
    auto r = live.evaluate(step("tokens > 0"), state(), {}, &cancel);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, ErrorCode::Cancelled);
}
