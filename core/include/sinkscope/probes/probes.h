// Hallucination probes (docs/probes.md; SINKS.md section 4): small question sets whose answers are known,
// run under a mitigation spec to see whether sinks and their mitigations change what the model gets right.
//
// Two kinds of probe:
// - factual: closed-book recall. The model reads `prompt` ("The capital of France is") and should
//   continue with one of `answers` ("Paris").
// - grounded: the model reads the set's grounded template with the passage and question filled in
//   (kDefaultGroundedTemplate unless the set has "grounded_template") and should answer from the
//   passage. Counterfactual passages contradict common knowledge; `memorised` then lists the
//   common-knowledge answer, so a run can tell reading the context from recalling a memorised fact.
//
// Answers are continuations: a single space is put in front of an answer that does not start with
// whitespace, so prompts must not end with whitespace (the validator says so).
//
// Scores per probe (all natural logs, nats), from forward passes with the spec's controls:
// - probability and rank (1 = most probable) of the answer's first token, best over the accepted
//   spellings. The first token that is not pure whitespace counts: SmolLM2's tokenizer writes " 1945" as
//   " ", "1", "9", ..., and p(" ") says nothing about the answer. Read from the teacher-forced pass;
// - the full answer's teacher-forced log-probability sum_i log p(a_i | prompt, a_<i), best over spellings;
// - the greedy answer and whether it matches an accepted spelling (normalised compare, below);
// - next-token entropy -sum p log p and top-1 margin p(1) - p(2) at the last prompt position;
// - the Lookback ratio (Chuang et al. 2024) per layer and head, averaged over the rows that produce the
//   first greedy answer tokens, and its sink-excluded variant (SINKS.md P2).
//
// Threading: the set and the results are immutable values; runProbes() calls Model::forward and may run
// on any thread (SinkScope front ends use the compute thread). Everything else is pure.
#pragma once

#include "sinkscope/common/array.h"
#include "sinkscope/common/result.h"
#include "sinkscope/interventions/mitigation.h"
#include "sinkscope/model/model.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sinkscope {

enum class ProbeKind { Factual, Grounded };

// What a grounded probe's model input looks like: {passage} and {question} are replaced; the text after
// {question} is the answer cue, which the Lookback ratio does not count as context.
inline constexpr const char *kDefaultGroundedTemplate =
    "Read the passage and answer in a few words.\n\nPassage: {passage}\n\nQuestion: {question}\nShort answer:";
const char *probeKindName(ProbeKind kind); // "factual", "grounded"

struct Probe {
    std::string id; // unique within the set
    ProbeKind kind = ProbeKind::Factual;
    std::string category;               // free text: geography, science, arithmetic, dates, people, ...
    std::string prompt;                 // factual: the text the model continues
    std::string passage;                // grounded: the context
    std::string question;               // grounded
    std::vector<std::string> answers;   // accepted spellings, first = canonical
    std::vector<std::string> memorised; // grounded counterfactual: the common-knowledge answer (optional)
    bool counterfactual = false;        // grounded: the passage contradicts common knowledge
    std::string note;                   // free text, not used by the scorer
    std::string groundedTemplate = kDefaultGroundedTemplate; // the set's "grounded_template"
    int line = 0; // line of the probe object in its file (1-based; 0 unknown)
};

struct ProbeSet {
    std::string name;
    std::string description;
    std::string origin; // the file it came from
    std::vector<Probe> probes;
    std::vector<std::string> categories() const; // in order of first appearance
};

// The probe-set file format (docs/probes.md): {"format": "sinkscope-probes", "version": 1, "name": ...,
// "description": ..., "grounded_template": ..., "probes": [...]}. Errors are InvalidArgument (schema) or Corrupt (not
// JSON) with a one-line message "origin:line: field: problem", e.g. "set.json:14: probes[3].answers: must be a
// non-empty array of strings". Unknown fields are errors (they are usually typos).
Result<ProbeSet> parseProbeSet(const std::string &text, const std::string &origin);
Result<ProbeSet> loadProbeSet(const std::string &path); // Io error naming the path when unreadable

// What the model reads for a probe, split where the Lookback ratio's context ends: context + cue. For a
// factual probe the cue is empty (the whole prompt is context); for a grounded one it is the template's
// text after {question} ("\nShort answer:" by default).
struct ProbeText {
    std::string context;
    std::string cue;
    std::string full() const { return context + cue; }
};
ProbeText probeText(const Probe &probe);
// An accepted spelling as a continuation: a leading space added unless it starts with whitespace.
std::string answerContinuation(const std::string &answer);

// Normalised compare (SQuAD-style): lower-case ASCII, every character that is not a letter, digit or
// non-ASCII byte separates words, the articles a / an / the are dropped.
std::vector<std::string> normalizedWords(const std::string &text);
enum class AnswerMatch { Undecided, Match, NoMatch };
// Whether generated text (possibly still growing) answers with one of `answers`: Match once its first
// words equal an answer's words and the last of them is complete (a separator follows, or `finished`);
// NoMatch once no answer can still match; Undecided otherwise (only while not finished).
AnswerMatch matchAnswer(const std::string &generated, const std::vector<std::string> &answers, bool finished);

// Next-token statistics of one logit row.
struct NextTokenStats {
    double entropy = 0; // -sum p log p, nats
    double top1Probability = 0;
    double top1Margin = 0; // p(1) - p(2)
    int64_t top1Token = 0;
};
NextTokenStats nextTokenStats(const float *logits, int64_t vocab);
double tokenLogProbability(const float *logits, int64_t vocab, int64_t token); // log softmax at token
int64_t tokenRank(const float *logits, int64_t vocab, int64_t token);          // 1 + tokens with a larger logit
// Teacher-forced log-probability of `answer` from logits [T, V]: row firstRow + i predicts answer[i].
double teacherForcedLogProbability(const FloatArray &logits, int64_t firstRow, const std::vector<int64_t> &answer);

// Lookback ratio (SINKS.md P1, Chuang et al. 2024, voidism/Lookback-Lens step01_extract_attns.py) from
// per-layer attention [H, T, T]: for each row t in [firstRow, lastRow],
//     LR_t = mean_{j < contextEnd} A[t, j] / (mean_{j < contextEnd} A[t, j] + mean_{contextEnd <= j <= t} A[t, j])
// averaged over the rows. The sink-excluded variant (P2) leaves the positions in `sinks` out of the
// context mean. Needs 0 < contextEnd <= firstRow <= lastRow < T. Results [L, H]; a row whose two means
// are both 0 counts as 0.5. Layers without attention give an empty result.
struct LookbackRatios {
    FloatArray ratio;       // [L, H]
    FloatArray ratioNoSink; // [L, H]
    int64_t rows = 0;
};
LookbackRatios lookbackRatios(const std::vector<FloatArray> &attention, int64_t contextEnd, int64_t firstRow,
                              int64_t lastRow, const std::vector<int64_t> &sinks = {0});

struct ProbeOptions {
    std::string category;             // run only this category (empty: all)
    int maxGreedyTokens = 16;         // hard cap on greedy tokens (longest answer + 1 is the usual need)
    bool lookback = true;             // capture attention and compute the Lookback ratios
    int lookbackTokens = 4;           // rows: those producing the first min(this, greedy length) tokens
    std::vector<int64_t> sinks = {0}; // positions left out by the sink-excluded Lookback ratio
    int limit = 0;                    // > 0: only the first `limit` probes (after the category filter)
};

struct ProbeScore {
    std::string id;
    std::string category;
    ProbeKind kind = ProbeKind::Factual;
    bool counterfactual = false;
    int64_t promptTokens = 0;
    int64_t contextEnd = 0;           // Lookback context: positions [0, contextEnd)
    double firstTokenProbability = 0; // best over spellings
    int64_t firstTokenRank = 0;
    double answerLogProbability = 0; // teacher-forced, best over spellings
    std::string bestAnswer;          // the spelling that gave answerLogProbability
    int64_t answerTokens = 0;        // its length in tokens
    std::vector<int64_t> greedyTokens;
    std::string greedyText;
    bool correct = false;           // greedy answer matches an accepted spelling
    bool recalledMemorised = false; // ... or, for counterfactual probes, the memorised answer
    NextTokenStats next;            // at the last prompt position
    LookbackRatios lookback;        // empty without ProbeOptions::lookback
};

struct ProbeAggregate {
    std::string category; // empty: the whole set
    int count = 0;
    int correct = 0;
    double accuracy = 0;
    double meanLogProbability = 0;
    double meanEntropy = 0;
    double meanFirstTokenProbability = 0;
};
ProbeAggregate aggregateScores(const std::vector<ProbeScore> &scores, const std::string &category = {});

struct ProbeRun {
    std::string setName;
    std::string spec;               // canonical mitigation spec
    std::vector<ProbeScore> scores; // in set order
    ProbeAggregate overall;
    std::vector<ProbeAggregate> byCategory; // in order of first appearance
    int64_t layers = 0, heads = 0;
    int64_t forwardPasses = 0;
    double seconds = 0; // wall time of the whole run
    const ProbeScore *find(const std::string &id) const;
};

// Runs every probe of the set (filtered by options) under `spec`. Errors: InvalidArgument for a spec the
// model rejects, a model without tokenizer or an over-long probe (naming the probe id); Cancelled when
// `cancel` or `progress` (fraction of probes done, probe id) asks to stop, checked between forward passes.
Result<std::shared_ptr<const ProbeRun>> runProbes(const Model &model, const ProbeSet &set, const MitigationSpec &spec,
                                                  const ProbeOptions &options = {}, const CancelToken *cancel = nullptr,
                                                  const ProgressCallback &progress = {});

// One CSV row per probe: id,category,kind,correct,first_token_probability,first_token_rank,answer_logprob,
// entropy,top1_margin,greedy; with a baseline, also baseline_correct and delta_first_token_probability.
std::string probeScoresCsv(const ProbeRun &run, const ProbeRun *baseline = nullptr);

// ---- Lookback detector: L2-regularised logistic regression on Lookback-ratio features ----

// Fitted on standardised features; predict() takes raw features.
struct LogisticModel {
    std::vector<double> mean, scale; // per feature (scale 1 for constant features)
    std::vector<double> weights;     // on standardised features
    double bias = 0;
    double predict(const std::vector<double> &features) const; // P(label 1)
};
// Newton-Raphson (IRLS) on the mean log-loss + l2/2 |w|^2 (the bias is not penalised). Deterministic.
// InvalidArgument for empty or ragged input or labels that are not 0/1.
Result<LogisticModel> fitLogistic(const std::vector<std::vector<double>> &x, const std::vector<int> &labels,
                                  double l2 = 1.0, int iterations = 50);
// Area under the ROC curve (Mann-Whitney U with ties as 1/2); NaN when a class is missing.
double auroc(const std::vector<double> &scores, const std::vector<int> &labels);

struct DetectorOptions {
    bool sinkExcluded = false; // features: LR' (P2) instead of LR (P1)
    bool groundedOnly = true;  // the Lookback Lens setting: contextual answers only
    double l2 = 1.0;
    int testEvery = 3;    // held-out split: every testEvery-th probe of each class (by set order)
    int minPerClass = 10; // fewer right or wrong answers in the test split: tooSmall
};

struct DetectorReport {
    std::string features; // "lookback" or "lookback_no_sink"
    int trainCount = 0, testCount = 0;
    int trainPositives = 0, testPositives = 0; // positives = correct answers
    double trainAuroc = 0, testAuroc = 0;      // NaN when a class is missing
    FloatArray headWeights; // [L, H]: weights on standardised features (positive: more lookback, more often right)
    double bias = 0;
    bool tooSmall = false;
    std::string caveat; // one line: why the figure means little, or empty
    std::vector<std::string> testIds;
    std::vector<double> testScores; // P(correct) of the held-out probes
    std::string toJson() const;
    std::string weightsCsv() const; // layer,head,weight
};
// InvalidArgument when the run has no Lookback ratios or fewer than two probes of a class in total.
Result<DetectorReport> fitLookbackDetector(const ProbeRun &run, const DetectorOptions &options = {});

} // namespace sinkscope
