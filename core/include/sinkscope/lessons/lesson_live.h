// Live numbers for lessons: the expression language of checks and caption placeholders, and its
// evaluation on the model in use (docs/lessons.md, "Checks and live numbers").
//
//   check      := comparison (("and" | "or") comparison)*
//   comparison := expr ("<" | "<=" | ">" | ">=" | "==" | "!=") expr
//   expr       := term (("+" | "-") term)*;  term := factor (("*" | "/") factor)*
//   factor     := number ["%"] | "(" expr ")" | "-" factor | quantity
//   layers     := "layers" A ".." B | "layers" A ".." | "layers" ".." B | "layer" A      (0-based, inclusive)
//
// Quantities (per-head metrics are the names of docs/metrics.md; the analysis is the step's prompt
// without mitigation, exactly what the window's overview shows):
//   share(METRIC CMP X [, layers])  fraction of heads (0..1) whose metric compares true
//   mean(METRIC [, layers]), min(..), max(..), median(..)   over heads of those layers
//   value(METRIC, L, H)             one head
//   first_layer(METRIC CMP X)       first layer whose head mean compares true (NaN: none)
//   sink_fraction                   Sink_1^eps over all heads (eps = 0.3), 0..1
//   activation_ratio(L)             top |h| / median |h| of layer L's residual stream
//   massive_layer                   first layer with a massive activation (Sun et al.: |h| > 100 and > 1000 x median)
//   tokens, layers, heads           the prompt's length (BOS included) and the model's shape
//   ppl(SPEC)                       prompt perplexity under teacher forcing with a mitigation ("none")
//   kl(SPEC)                        KL(baseline || mitigated) of the next-token distribution, nats
//   same_top1(SPEC)                 1 when the mitigation keeps the most probable next token, else 0
//   stream_ppl(dense | window N | sinks S+W)   streaming perplexity of the prompt text (KV cache of N or S+W)
//   probe_accuracy(SPEC)            greedy accuracy on the step's probe set (`probes:`), 0..1
//   lookback(correct | wrong)       mean Lookback ratio (Chuang et al. 2024) over heads, on the probes
//                                   answered correctly / wrongly (no mitigation)
//   abs(X)
// A quantity the model cannot give (no hidden states, no probes answered wrongly, a mitigation the
// model rejects) makes its check Unavailable with the reason, never a failure of the lesson.
#pragma once

#include "sinkscope/common/result.h"
#include "sinkscope/lessons/lesson.h"
#include "sinkscope/model/model.h"

#include <memory>
#include <string>
#include <vector>

namespace sinkscope {
struct MitigationEffects;
struct SinkMetrics;
struct StreamingOptions;
struct StreamingResult;
} // namespace sinkscope

namespace sinkscope::lessons {

struct Expression; // parsed, immutable

// A check (needs a comparison at the top) or a value (a placeholder: no comparison).
Result<std::shared_ptr<const Expression>> parseCheck(const std::string &text);
Result<std::shared_ptr<const Expression>> parseValue(const std::string &text);

// The metric names an expression uses, and the layers it names (for validateLesson).
std::vector<std::string> expressionMetrics(const Expression &expression);
std::vector<int64_t> expressionLayers(const Expression &expression);

// A placeholder in a caption: {{expr}}, {{expr | %}}, {{expr | .N}}.
struct Placeholder {
    size_t begin = 0, end = 0; // the byte range of "{{...}}" in the caption
    std::string expression;
    std::string format; // "", "%", ".0" ... ".6"
};
// The placeholders of a caption; an unclosed "{{" or a bad format is an error naming its text.
Result<std::vector<Placeholder>> findPlaceholders(const std::string &caption);

enum class CheckStatus { Confirmed, NotConfirmed, Unavailable };
const char *checkStatusName(CheckStatus status); // "confirmed", "not confirmed", "unavailable"

struct CheckOutcome {
    CheckStatus status = CheckStatus::Unavailable;
    std::string expression; // as written
    std::string detail;     // the numbers compared ("0.83 > 0.5"), or why it is unavailable
};

struct StepNumbers {
    bool hasCheck = false;
    CheckOutcome check;
    std::string caption; // the caption with every placeholder replaced by its live value ("n/a" + reason)
    std::vector<int64_t> tokens;
    double seconds = 0;
};

// The token ids of a prompt as the window makes them (BOS when asked and the tokenizer has one). A model
// without a tokenizer takes ids typed as text ("1 2 3").
Result<std::vector<int64_t>> lessonTokens(const Model &model, const std::string &prompt, bool bos);

// Evaluates steps on one model, caching analyses, mitigated runs, streaming runs and probe runs by their
// inputs (so moving back and forth through a lesson is free). Not thread safe: use one evaluator from
// one thread at a time (the window's compute thread, the CLI's main thread).
class LiveEvaluator
{
public:
    explicit LiveEvaluator(std::shared_ptr<const Model> model);
    ~LiveEvaluator();
    LiveEvaluator(const LiveEvaluator &) = delete;
    LiveEvaluator &operator=(const LiveEvaluator &) = delete;

    const Model &model() const;
    // The check and caption of `step` under `state` (Lesson::stateAt). `lessonDir` resolves relative
    // probe-set paths. Errors: an empty prompt, a prompt over the context, Cancelled. Quantities that
    // fail make the check Unavailable and their placeholder "n/a".
    Result<StepNumbers> evaluate(const LessonStep &step, const LessonState &state, const std::string &lessonDir = {},
                                 const CancelToken *cancel = nullptr, const ProgressCallback &progress = {});
    // One value expression on the state (used by placeholders; NaN never: an Error says why).
    Result<double> value(const Expression &expression, const LessonState &state, const std::string &lessonDir = {},
                         const CancelToken *cancel = nullptr);

    // The data behind a step's figure (handouts), from the same caches as the numbers: the analysis of
    // the state's prompt (overview, head, tokens and metrics tabs), a streaming run (cached with the
    // stream_ppl quantity's runs) and a mitigation's effects against the baseline.
    Result<std::shared_ptr<const SinkMetrics>> analysis(const LessonState &state, const CancelToken *cancel = nullptr);
    Result<std::shared_ptr<const StreamingResult>> streaming(const LessonState &state, const StreamingOptions &options,
                                                             const CancelToken *cancel = nullptr);
    Result<std::shared_ptr<const MitigationEffects>> effects(const LessonState &state, const std::string &spec,
                                                             const CancelToken *cancel = nullptr);

    struct Impl;

private:
    std::unique_ptr<Impl> m_impl;
};

} // namespace sinkscope::lessons
