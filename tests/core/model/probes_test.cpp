// Hallucination probes: scoring on hand-made logits and attention, the set validator's line/field errors,
// answer matching, logistic regression and AUROC on hand-made data, runProbes on the tiny Llama against
// direct forward passes, and the default set on SmolLM2 against the figure in docs/probes.md.
#include "sinkscope/interventions/effects.h"
#include "sinkscope/interventions/mitigation.h"
#include "sinkscope/model/convert.h"
#include "sinkscope/probes/probes.h"
#include "sinkscope/runtime/paths.h"
#include "support/test_paths.h"
#include "support/tiny_model_files.h"
#include "support/tiny_models.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>

using namespace sinkscope;
namespace st = sinkscope::testing;

namespace {

std::string errorOf(const std::string &text)
{
    auto set = parseProbeSet(text, "set.json");
    return set ? std::string("(parsed)") : set.error().message;
}

constexpr const char *kHeader = "{\n"                                   // 1
                                "  \"format\": \"sinkscope-probes\",\n" // 2
                                "  \"version\": 1,\n"                   // 3
                                "  \"probes\": [\n";                    // 4

// A factual probe spread over lines 5..11 whose answers (lines 10..13) are given by the caller.
std::string withSecondProbe(const std::string &answersLines, const std::string &extra = "")
{
    return std::string(kHeader) +
           "    {\"id\": \"a\", \"kind\": \"factual\", \"category\": \"c\", \"prompt\": \"The capital of France is\", "
           "\"answers\": [\"Paris\"]},\n"   // 5
           "    {\n"                        // 6
           "      \"id\": \"b\",\n"         // 7
           "      \"kind\": \"factual\",\n" // 8
           "      \"category\": \"c\",\n"   // 9
           + extra +                        // (extra lines shift what follows)
           "      \"prompt\": \"Two and two make\",\n" + answersLines +
           "    }\n"
           "  ]\n"
           "}\n";
}

} // namespace

TEST(ProbeScoring, NextTokenStatsOnHandMadeLogits)
{
    // p = (1/2, 1/4, 1/4): H = 1/2 ln 2 + 2 * 1/4 ln 4 = 1.5 ln 2; margin 1/4.
    const std::vector<float> logits{std::log(0.5f) + 3.0f, std::log(0.25f) + 3.0f, std::log(0.25f) + 3.0f};
    const NextTokenStats s = nextTokenStats(logits.data(), 3);
    EXPECT_NEAR(s.entropy, 1.5 * std::log(2.0), 1e-6);
    EXPECT_NEAR(s.top1Probability, 0.5, 1e-6);
    EXPECT_NEAR(s.top1Margin, 0.25, 1e-6);
    EXPECT_EQ(s.top1Token, 0);
    EXPECT_NEAR(tokenLogProbability(logits.data(), 3, 1), std::log(0.25), 1e-6);
    EXPECT_EQ(tokenRank(logits.data(), 3, 0), 1);
    EXPECT_EQ(tokenRank(logits.data(), 3, 2), 2); // ties share the better rank
    // A uniform row over 4 tokens: H = ln 4, margin 0.
    const std::vector<float> flat(4, -1.0f);
    EXPECT_NEAR(nextTokenStats(flat.data(), 4).entropy, std::log(4.0), 1e-9);
    EXPECT_NEAR(nextTokenStats(flat.data(), 4).top1Margin, 0.0, 1e-12);
}

TEST(ProbeScoring, TeacherForcedLogProbabilitySumsTheAnswerRows)
{
    // T = 3, V = 2. Row 1 predicts answer[0] = 1 with p = e^2 / (1 + e^2); row 2 predicts answer[1] = 0
    // with p = 1/2. Row 0 is the prompt's first position and must not count.
    FloatArray logits{{3, 2}, {5.0f, -5.0f, 0.0f, 2.0f, 1.0f, 1.0f}};
    const double expected = std::log(std::exp(2.0) / (1.0 + std::exp(2.0))) + std::log(0.5);
    EXPECT_NEAR(teacherForcedLogProbability(logits, 1, {1, 0}), expected, 1e-6);
    EXPECT_NEAR(teacherForcedLogProbability(logits, 2, {0}), std::log(0.5), 1e-6);
}

TEST(ProbeScoring, LookbackRatioOnHandBuiltAttention)
{
    // One layer, two heads, T = 4; context = positions 0, 1; rows 2 and 3 produce the answer.
    // Head 0, row 2: ctx mean (0.5 + 0.2) / 2 = 0.35, new mean 0.3 -> 0.35 / 0.65; without the sink (0):
    // 0.2 / (0.2 + 0.3) = 0.4. Row 3: ctx 0.3, new (0.1 + 0.3) / 2 = 0.2 -> 0.6; without sink 0.2 / 0.4.
    // Head 1 attends uniformly: every ratio is 0.5.
    const std::vector<float> head0{1, 0, 0, 0, 0.6f, 0.4f, 0, 0, 0.5f, 0.2f, 0.3f, 0, 0.4f, 0.2f, 0.1f, 0.3f};
    const std::vector<float> head1{1,        0,        0,        0, 0.5f,  0.5f,  0,     0,
                                   1 / 3.0f, 1 / 3.0f, 1 / 3.0f, 0, 0.25f, 0.25f, 0.25f, 0.25f};
    FloatArray layer{{2, 4, 4}, head0};
    layer.data.insert(layer.data.end(), head1.begin(), head1.end());
    const LookbackRatios r = lookbackRatios({layer}, 2, 2, 3, {0});
    ASSERT_EQ(r.ratio.shape, (std::vector<int64_t>{1, 2}));
    EXPECT_EQ(r.rows, 2);
    EXPECT_NEAR(r.ratio.data[0], (0.35 / 0.65 + 0.6) / 2, 1e-6);
    EXPECT_NEAR(r.ratioNoSink.data[0], (0.4 + 0.5) / 2, 1e-6);
    EXPECT_NEAR(r.ratio.data[1], 0.5, 1e-6);
    EXPECT_NEAR(r.ratioNoSink.data[1], 0.5, 1e-6);
    // One row only, no sinks excluded: both variants agree.
    const LookbackRatios one = lookbackRatios({layer}, 2, 2, 2, {});
    EXPECT_NEAR(one.ratio.data[0], 0.35 / 0.65, 1e-6);
    EXPECT_NEAR(one.ratioNoSink.data[0], 0.35 / 0.65, 1e-6);
}

TEST(ProbeMatching, NormalisedCompareOnGrowingText)
{
    EXPECT_EQ(normalizedWords(" The Pacific Ocean."), (std::vector<std::string>{"pacific", "ocean"}));
    EXPECT_EQ(normalizedWords("12,000"), (std::vector<std::string>{"12", "000"}));
    const std::vector<std::string> paris{"Paris"};
    EXPECT_EQ(matchAnswer(" Paris", paris, false), AnswerMatch::Undecided); // could still become "Parisian"
    EXPECT_EQ(matchAnswer(" Paris", paris, true), AnswerMatch::Match);
    EXPECT_EQ(matchAnswer(" Paris.", paris, false), AnswerMatch::Match);
    EXPECT_EQ(matchAnswer(" paris is", paris, false), AnswerMatch::Match);
    EXPECT_EQ(matchAnswer(" Parisian", paris, false), AnswerMatch::NoMatch);
    EXPECT_EQ(matchAnswer(" Par", paris, false), AnswerMatch::Undecided);
    EXPECT_EQ(matchAnswer(" Lyon", paris, false), AnswerMatch::NoMatch);
    EXPECT_EQ(matchAnswer(" the", paris, false), AnswerMatch::Undecided); // an article may come first
    EXPECT_EQ(matchAnswer(" the city", paris, false), AnswerMatch::NoMatch);
    EXPECT_EQ(matchAnswer("", paris, true), AnswerMatch::NoMatch);
    const std::vector<std::string> ocean{"Pacific Ocean", "Pacific"};
    EXPECT_EQ(matchAnswer(" the Pacific ", ocean, false), AnswerMatch::Match);
    EXPECT_EQ(matchAnswer(" THE PACIFIC OCEAN", ocean, true), AnswerMatch::Match);
    EXPECT_EQ(matchAnswer(" 1945", {"1945"}, false), AnswerMatch::Undecided);
    EXPECT_EQ(matchAnswer(" 19450", {"1945"}, false), AnswerMatch::NoMatch);
    EXPECT_EQ(matchAnswer(" 1945,", {"1945"}, false), AnswerMatch::Match);
    EXPECT_EQ(answerContinuation("Paris"), " Paris");
    EXPECT_EQ(answerContinuation("\nParis"), "\nParis");
}

TEST(ProbeSetFile, ValidSetParsesWithLines)
{
    const std::string text = withSecondProbe("      \"answers\": [\"four\", \"4\"]\n");
    auto set = parseProbeSet(text, "set.json");
    ASSERT_TRUE(set) << set.error().message;
    ASSERT_EQ(set->probes.size(), 2u);
    EXPECT_EQ(set->probes[0].line, 5);
    EXPECT_EQ(set->probes[1].line, 6);
    EXPECT_EQ(set->probes[1].answers, (std::vector<std::string>{"four", "4"}));
    EXPECT_EQ(set->categories(), std::vector<std::string>{"c"});
    EXPECT_EQ(probeText(set->probes[1]).full(), "Two and two make");
    Probe g;
    g.kind = ProbeKind::Grounded;
    g.passage = "P.";
    g.question = "Q?";
    EXPECT_EQ(probeText(g).context, "Read the passage and answer in a few words.\n\nPassage: P.\n\nQuestion: Q?");
    EXPECT_EQ(probeText(g).cue, "\nShort answer:");
    g.groundedTemplate = "<{passage}|{question}>";
    EXPECT_EQ(probeText(g).context, "<P.|Q?");
    EXPECT_EQ(probeText(g).cue, ">");
}

TEST(ProbeSetFile, ErrorsNameFileLineAndField)
{
    struct Case {
        std::string text, expected;
    };
    const std::vector<Case> cases{
        // An answer that is a number, on line 13 (answers open on line 11).
        {withSecondProbe("      \"answers\": [\n" // 11
                         "        \"four\",\n"    // 12
                         "        4\n"            // 13
                         "      ]\n"),
         "set.json:13: probes[1].answers[1]: must be a string"},
        // A missing field points at the probe's opening brace.
        {withSecondProbe("      \"note\": \"no answers\"\n"), "set.json:6: probes[1]: missing field 'answers'"},
        // A misspelt field points at its key.
        {withSecondProbe("      \"anwsers\": [\"four\"]\n"), "set.json:11: probes[1].anwsers: unknown field"},
        {withSecondProbe("      \"answers\": \"four\"\n"), "set.json:11: probes[1].answers: must be a non-empty array"},
        {withSecondProbe("      \"answers\": [\"four\"]\n", "      \"counterfactual\": true,\n"),
         "set.json:10: probes[1].counterfactual: only grounded probes"},
        {std::string(kHeader) + "    {\"id\": \"a\", \"kind\": \"factual\", \"category\": \"c\", \"prompt\": \"x\", "
                                "\"answers\": [\"y\"]},\n"
                                "    {\"id\": \"a\", \"kind\": \"factual\", \"category\": \"c\", \"prompt\": \"x\", "
                                "\"answers\": [\"y\"]}\n  ]\n}\n",
         "set.json:6: probes[1].id: duplicate id 'a' (first used by probes[0])"},
        {std::string(kHeader) + "    {\"id\": \"a\", \"kind\": \"closed\", \"category\": \"c\", \"prompt\": \"x\", "
                                "\"answers\": [\"y\"]}\n  ]\n}\n",
         "set.json:5: probes[0].kind: must be \"factual\" or \"grounded\""},
        {std::string(kHeader) + "    {\"id\": \"a\", \"kind\": \"factual\", \"category\": \"c\", \"prompt\": \"x \", "
                                "\"answers\": [\"y\"]}\n  ]\n}\n",
         "set.json:5: probes[0].prompt: must not end with whitespace"},
        {std::string(kHeader) + "    {\"id\": \"g\", \"kind\": \"grounded\", \"category\": \"c\",\n" // 5
                                "     \"passage\": \"Anna lives in Oslo.\",\n"                       // 6
                                "     \"question\": \"Where does Anna live?\",\n"                    // 7
                                "     \"answers\": [\"Bergen\"]}\n  ]\n}\n",                         // 8
         "set.json:8: probes[0].answers: no accepted answer occurs in the passage"},
        {"{\n  \"format\": \"sinkscope-probes\",\n  \"version\": 1,\n  \"grounded_template\": \"{question} "
         "{passage}\",\n  \"probes\": []\n}\n",
         "set.json:4: grounded_template: must be a string with {passage} before {question}"},
        {"{\n  \"format\": \"questions\",\n  \"version\": 1,\n  \"probes\": []\n}\n",
         "set.json:2: format: must be \"sinkscope-probes\""},
        {"{\n  \"format\": \"sinkscope-probes\",\n  \"version\": 1,\n  \"probes\": []\n}\n",
         "set.json:4: probes: must be a non-empty array"},
        // Not JSON: the missing comma is found at the next key, on line 3.
        {"{\n  \"format\": \"sinkscope-probes\"\n  \"version\": 1\n}\n", "set.json:3: not valid JSON"},
    };
    for (const auto &c : cases) {
        const std::string message = errorOf(c.text);
        EXPECT_EQ(message.rfind(c.expected, 0), 0u) << "expected: " << c.expected << "\n     got: " << message;
        EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
    auto missing = loadProbeSet("/nonexistent/set.json");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, ErrorCode::Io);
    EXPECT_NE(missing.error().message.find("/nonexistent/set.json"), std::string::npos);
}

// Found by fuzzing (tests/fuzz/regressions/probe_set/number-past-double): a number past double's range
// made nlohmann throw out_of_range, which escaped parseProbeSet.
TEST(ProbeSetFile, NumberPastDoubleIsAnErrorWithItsLine)
{
    const auto set =
        parseProbeSet("{\"format\": \"sinkscope-probes\",\n\"version\": 1,\n\"name\": 7E99999}", "set.json");
    ASSERT_FALSE(set);
    EXPECT_EQ(set.error().code, ErrorCode::Corrupt);
    EXPECT_EQ(set.error().message, "set.json:3: not valid JSON: a number is out of range");
}

TEST(ProbeSetFile, DefaultSetIsValidAndLargeEnough)
{
    auto set = loadProbeSet(defaultProbeSetPath());
    ASSERT_TRUE(set) << set.error().message;
    int factual = 0, grounded = 0, counterfactual = 0;
    for (const auto &p : set->probes) {
        (p.kind == ProbeKind::Factual ? factual : grounded) += 1;
        if (p.counterfactual) {
            ++counterfactual;
            EXPECT_FALSE(p.memorised.empty()) << p.id;
        }
    }
    EXPECT_GE(factual, 80);
    EXPECT_GE(grounded, 40);
    EXPECT_GE(counterfactual, 20);
    const auto cats = set->categories();
    for (const char *c : {"geography", "science", "arithmetic", "dates", "people", "counterfactual"}) {
        EXPECT_NE(std::find(cats.begin(), cats.end(), c), cats.end()) << c;
    }
}

TEST(ProbeDetector, LogisticRegressionOnASeparableSet)
{
    // 1-D, separable at 1.5. With L2 the fit is finite; at the optimum the unpenalised bias makes the
    // mean prediction equal the mean label, and the weight's gradient is zero.
    const std::vector<std::vector<double>> x{{0}, {1}, {2}, {3}, {0.5}, {2.5}};
    const std::vector<int> y{0, 0, 1, 1, 0, 1};
    const double l2 = 0.1;
    auto m = fitLogistic(x, y, l2);
    ASSERT_TRUE(m) << m.error().message;
    EXPECT_GT(m->weights[0], 0);
    std::vector<double> p;
    double meanP = 0, gradW = 0;
    for (size_t i = 0; i < x.size(); ++i) {
        p.push_back(m->predict(x[i]));
        meanP += p.back() / 6.0;
        gradW += (p.back() - y[i]) * (x[i][0] - m->mean[0]) / m->scale[0] / 6.0;
    }
    gradW += l2 * m->weights[0];
    EXPECT_NEAR(meanP, 0.5, 1e-9);
    EXPECT_NEAR(gradW, 0.0, 1e-9);
    EXPECT_DOUBLE_EQ(auroc(p, y), 1.0);
    auto again = fitLogistic(x, y, l2);
    EXPECT_EQ(again->weights, m->weights); // deterministic, bit for bit
    EXPECT_FALSE(fitLogistic({{1}, {2, 3}}, {0, 1}));
    EXPECT_FALSE(fitLogistic({{1}, {2}}, {0, 2}));
}

TEST(ProbeDetector, AurocCountsTiesAsHalf)
{
    EXPECT_DOUBLE_EQ(auroc({0.1, 0.4, 0.35, 0.8}, {0, 0, 1, 1}), 0.75);
    EXPECT_DOUBLE_EQ(auroc({0.5, 0.5}, {0, 1}), 0.5);
    EXPECT_DOUBLE_EQ(auroc({0.9, 0.1}, {0, 1}), 0.0);
    EXPECT_TRUE(std::isnan(auroc({0.1, 0.2}, {1, 1})));
}

TEST(ProbeDetector, FindsTheInformativeHeadAndSaysWhenTooSmall)
{
    // 30 grounded probes on a 2 x 3 model: head L1H2 looks back more when the answer is right; the other
    // heads are deterministic noise.
    ProbeRun run;
    run.layers = 2;
    run.heads = 3;
    for (int i = 0; i < 30; ++i) {
        ProbeScore s;
        s.id = "p" + std::to_string(i);
        s.kind = ProbeKind::Grounded;
        s.correct = i % 2 == 0;
        s.lookback.ratio = FloatArray{{2, 3}, {}};
        for (int f = 0; f < 6; ++f) {
            s.lookback.ratio.data.push_back(0.5f + 0.1f * static_cast<float>(std::sin(1.7 * i + 0.9 * f)));
        }
        s.lookback.ratio.data[5] = (s.correct ? 0.7f : 0.3f) + 0.05f * static_cast<float>(std::cos(2.3 * i));
        s.lookback.ratioNoSink = s.lookback.ratio;
        run.scores.push_back(s);
    }
    auto r = fitLookbackDetector(run, DetectorOptions{});
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->trainCount + r->testCount, 30);
    EXPECT_EQ(r->testCount, 10); // every third of each class
    EXPECT_EQ(r->testPositives, 5);
    EXPECT_DOUBLE_EQ(r->testAuroc, 1.0);
    const auto &w = r->headWeights.data;
    ASSERT_EQ(r->headWeights.shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(std::max_element(w.begin(), w.end(), [](float a, float b) { return std::fabs(a) < std::fabs(b); }) -
                  w.begin(),
              5);
    EXPECT_GT(w[5], 0);
    EXPECT_TRUE(r->tooSmall);
    EXPECT_NE(r->caveat.find("too small"), std::string::npos) << r->caveat;
    EXPECT_NE(r->toJson().find("\"head_weights\""), std::string::npos);
    EXPECT_EQ(r->weightsCsv().rfind("layer,head,weight\n0,0,", 0), 0u);

    // A run with only right answers cannot be fitted, and says why.
    for (auto &s : run.scores) {
        s.correct = true;
    }
    auto none = fitLookbackDetector(run, DetectorOptions{});
    ASSERT_FALSE(none);
    EXPECT_NE(none.error().message.find("0 wrong"), std::string::npos) << none.error().message;
}

namespace {

class ProbeTiny : public ::testing::Test
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
    static ProbeSet set()
    {
        ProbeSet s;
        s.name = "tiny";
        Probe f;
        f.id = "f";
        f.category = "x";
        f.prompt = "the cat sat on the";
        f.answers = {"mat", "rug"};
        Probe g;
        g.id = "g";
        g.kind = ProbeKind::Grounded;
        g.category = "y";
        g.passage = "Ann has a red hat.";
        g.question = "What colour is the hat?";
        g.answers = {"red"};
        g.groundedTemplate = "{passage} {question}\nA:"; // the tiny model's context is 64 tokens
        s.probes = {f, g};
        return s;
    }
    static std::unique_ptr<st::TempDir> s_dir;
    static std::shared_ptr<const Model> s_model;
};

std::unique_ptr<st::TempDir> ProbeTiny::s_dir;
std::shared_ptr<const Model> ProbeTiny::s_model;

} // namespace

// The scorer reuses teacher-forced passes for greedy steps when the setting is causal; every score must
// equal what direct forward passes give, for a causal setting and for ACT (which is not).
TEST_F(ProbeTiny, ScoresEqualDirectForwardPasses)
{
    ASSERT_TRUE(s_model);
    const Tokenizer &tok = *s_model->tokenizer();
    for (const char *specText : {"none", "mask-sink", "act:heads=L0-1"}) {
        SCOPED_TRACE(specText);
        auto spec = parseMitigation(specText);
        ASSERT_TRUE(spec) << spec.error().message;
        const ProbeSet probes = set();
        auto run = runProbes(*s_model, probes, *spec);
        ASSERT_TRUE(run) << run.error().message;
        ASSERT_EQ((*run)->scores.size(), 2u);
        EXPECT_EQ((*run)->spec, spec->toString());
        for (size_t i = 0; i < 2; ++i) {
            const Probe &p = probes.probes[i];
            const ProbeScore &s = (*run)->scores[i];
            const ProbeText text = probeText(p);
            std::vector<int64_t> prompt = *s_model->tokenize(text.context);
            const auto cue = tok.encode(text.cue, EncodeOptions{.addBos = false});
            prompt.insert(prompt.end(), cue.begin(), cue.end());
            EXPECT_EQ(s.promptTokens, static_cast<int64_t>(prompt.size()));
            EXPECT_EQ(s.contextEnd, p.kind == ProbeKind::Factual ? s.promptTokens - 1
                                                                 : s.promptTokens - static_cast<int64_t>(cue.size()));

            // Next-token statistics and first-token scores from a direct pass over the prompt.
            auto controls = buildControls(*s_model, *spec, prompt);
            ASSERT_TRUE(controls);
            auto direct = s_model->forward(ForwardRequest{.tokens = prompt, .controls = *controls});
            ASSERT_TRUE(direct);
            const int64_t v = direct->logits.shape[1];
            const float *last = direct->logits.data.data() + (static_cast<int64_t>(prompt.size()) - 1) * v;
            const NextTokenStats stats = nextTokenStats(last, v);
            EXPECT_NEAR(s.next.entropy, stats.entropy, 1e-4);
            EXPECT_NEAR(s.next.top1Margin, stats.top1Margin, 1e-5);
            double bestFirst = 0, bestFull = -1e30;
            for (const auto &a : p.answers) {
                const auto ids = tok.encode(answerContinuation(a), EncodeOptions{.addBos = false});
                std::vector<int64_t> seq = prompt;
                seq.insert(seq.end(), ids.begin(), ids.end());
                auto c2 = buildControls(*s_model, *spec, seq);
                auto full = s_model->forward(ForwardRequest{.tokens = seq, .controls = *c2});
                ASSERT_TRUE(full);
                // The tiny vocabulary writes " red" as " ", "r", "e", "d" (and " mat" as " m", ...): the
                // first token that is not a lone space counts, read teacher-forced.
                const size_t first = tok.tokenText(ids[0]) == " " ? 1 : 0;
                ASSERT_LT(first, ids.size());
                const float *row = full->logits.data.data() + (static_cast<int64_t>(prompt.size() + first) - 1) * v;
                bestFirst = std::max(bestFirst, std::exp(tokenLogProbability(row, v, ids[first])));
                bestFull = std::max(
                    bestFull, teacherForcedLogProbability(full->logits, static_cast<int64_t>(prompt.size()) - 1, ids));
            }
            EXPECT_NEAR(s.firstTokenProbability, bestFirst, 1e-5);
            EXPECT_NEAR(s.answerLogProbability, bestFull, 1e-4);
            EXPECT_LE(s.answerLogProbability, std::log(s.firstTokenProbability) + 1e-4);

            // Greedy answer: the step-by-step greedy continuation under the same setting.
            ASSERT_FALSE(s.greedyTokens.empty());
            auto greedy = greedyContinuation(*s_model, prompt, *spec, static_cast<int>(s.greedyTokens.size()));
            ASSERT_TRUE(greedy);
            EXPECT_EQ(s.greedyTokens, *greedy);
            EXPECT_EQ(s.correct, matchAnswer(s.greedyText, p.answers, true) == AnswerMatch::Match ||
                                     matchAnswer(s.greedyText, p.answers, false) == AnswerMatch::Match);

            // Lookback ratios from a direct pass over prompt + the greedy tokens the rows need.
            const auto m = std::min<int64_t>(4, static_cast<int64_t>(s.greedyTokens.size()));
            std::vector<int64_t> seq = prompt;
            seq.insert(seq.end(), s.greedyTokens.begin(), s.greedyTokens.begin() + (m - 1));
            auto c3 = buildControls(*s_model, *spec, seq);
            ForwardRequest req{.tokens = seq, .controls = *c3};
            req.capture.allAttention = true;
            auto att = s_model->forward(req);
            ASSERT_TRUE(att);
            const auto p0 = static_cast<int64_t>(prompt.size());
            const LookbackRatios expected = lookbackRatios(att->attention, s.contextEnd, p0 - 1, p0 + m - 2);
            ASSERT_EQ(s.lookback.ratio.shape, (std::vector<int64_t>{2, 4}));
            for (size_t k = 0; k < expected.ratio.data.size(); ++k) {
                EXPECT_NEAR(s.lookback.ratio.data[k], expected.ratio.data[k], 1e-5);
                EXPECT_NEAR(s.lookback.ratioNoSink.data[k], expected.ratioNoSink.data[k], 1e-5);
            }
        }
        EXPECT_EQ((*run)->overall.count, 2);
        EXPECT_EQ((*run)->byCategory.size(), 2u);
        EXPECT_NEAR((*run)->overall.meanLogProbability,
                    ((*run)->scores[0].answerLogProbability + (*run)->scores[1].answerLogProbability) / 2, 1e-12);
    }
}

TEST_F(ProbeTiny, FiltersCancelsAndWritesCsv)
{
    ASSERT_TRUE(s_model);
    auto onlyY = runProbes(*s_model, set(), MitigationSpec{}, ProbeOptions{.category = "y"});
    ASSERT_TRUE(onlyY) << onlyY.error().message;
    ASSERT_EQ((*onlyY)->scores.size(), 1u);
    EXPECT_EQ((*onlyY)->scores[0].id, "g");
    auto none = runProbes(*s_model, set(), MitigationSpec{}, ProbeOptions{.category = "nope"});
    ASSERT_FALSE(none);
    EXPECT_NE(none.error().message.find("nope"), std::string::npos);

    CancelToken cancel;
    cancel.cancel();
    auto cancelled = runProbes(*s_model, set(), MitigationSpec{}, {}, &cancel);
    ASSERT_FALSE(cancelled);
    EXPECT_EQ(cancelled.error().code, ErrorCode::Cancelled);
    int calls = 0;
    auto stopped = runProbes(*s_model, set(), MitigationSpec{}, {}, nullptr,
                             [&](double, const std::string &) { return ++calls < 2; });
    ASSERT_FALSE(stopped);
    EXPECT_EQ(stopped.error().code, ErrorCode::Cancelled);

    auto run = runProbes(*s_model, set(), MitigationSpec{});
    ASSERT_TRUE(run);
    const std::string csv = probeScoresCsv(**run, run->get());
    EXPECT_EQ(csv.rfind("id,category,kind,correct,first_token_probability", 0), 0u);
    EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 3);
    EXPECT_NE(csv.find("\ng,y,grounded,"), std::string::npos) << csv;
}
