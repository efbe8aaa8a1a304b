// Lesson files: a guided walk through the window, one step at a time, for a class or a student at home
// (docs/lessons.md). A lesson is Markdown with a structured header, so that a teacher can write and read
// it in any editor, and its captions are Markdown already:
//
//   ---
//   sinkscope-lesson: 1
//   id: what-is-a-sink
//   title: What an attention sink is
//   audience: undergraduates who have seen self-attention
//   duration: 15                      (minutes)
//   needs: streaming                  (optional: features the lesson relies on, see kLessonFeatures)
//   sources: Xiao et al. 2024 (StreamingLLM); Gu et al. 2025   (optional)
//   ---
//
//   ## The first token takes the attention       <- a step: its title
//   prompt: The cat sat on the mat because it was tired.
//   tab: overview
//   metric: first_token_mass
//   check: share(first_token_mass > 0.5, layers 2..) > 0.5
//   question: Why would a model look at a token that means nothing?
//   answer: Softmax must give every query's attention somewhere ...
//
//   The caption: Markdown, formulas between $...$, live numbers as {{expression}} or
//   {{expression | %}} (percent) / {{expression | .2}} (decimals), computed on the model in use.
//
// A step's field block is the `key: value` lines right after its `##` title, up to the first blank line;
// a line starting with two spaces continues the previous value; "\n" in a value is a newline. Every
// other line up to the next `##` title is the caption. Steps are cumulative: a step sets the state it
// names and keeps the rest from the step before; the first step must set a prompt, and fields no step
// has set yet keep what the window shows (in the window: the model the user has open, so a lesson
// without `model:` runs on the user's own model; headless: the default model or --model; bos: on, tab:
// overview).
//
// Parsing needs no model; validateLesson() then checks a lesson against one (layer/head ranges, metric
// names, mitigation specs the model supports). Errors are one line: "<file>:<line>: <field>: <problem>".
#pragma once

#include "sinkscope/common/result.h"
#include "sinkscope/model/model_config.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sinkscope::lessons {

inline constexpr int kLessonVersion = 1;

// Features a lesson may name in `needs:`; the runner says which are absent instead of failing.
// "gemma3": the Gemma 3 270M model (installed by tools/setup.sh, terms accepted in the window).
inline constexpr const char *kLessonFeatures[] = {"mitigations", "streaming", "probes", "compare", "gemma3"};

// The tabs a step can show (the window's AnalysisView::viewId()s).
inline constexpr const char *kLessonTabs[] = {"overview", "head",    "tokens",  "metrics",  "mitigations",
                                              "probes",   "outputs", "compare", "streaming"};

// Window state a step sets. Unset fields keep the previous step's value. Field names are the file's keys.
struct LessonState {
    std::optional<std::string> model;           // "default", a catalog id ("smollm2", "gemma3") or a path
    std::optional<std::string> prompt;          // the prompt text
    std::optional<bool> bos;                    // prepend BOS
    std::optional<std::string> tab;             // kLessonTabs
    std::optional<int64_t> layer;               // head view / tokens view layer (0-based)
    std::optional<int64_t> head;                // head view head (0-based)
    std::optional<std::string> metric;          // overview metric (a head metric of docs/metrics.md)
    std::optional<std::string> scale;           // "linear" or "log" (head map colour scale)
    std::optional<double> clamp;                // percentile clamp of the head map; 0 = off ("clamp: off")
    std::optional<bool> withoutSink;            // "without_sink": renormalise rows without the sink
    std::optional<std::string> colours;         // colour map key ("viridis", "magma", "greys", ...)
    std::optional<std::string> mitigation;      // a mitigation spec ("none" = baseline), for the mitigations tab
    std::optional<std::vector<int64_t>> zoom;   // head map window: first query, last query, first key, last key
                                                // (empty vector: "zoom: off", the whole map)
    std::optional<std::vector<int64_t>> select; // selected token positions (chips and head map)
    std::optional<int> streamingCache;          // "streaming: cache N": the streaming tab's total cache (tokens)
    std::optional<std::string> probes;          // "probes: default" or a probe-set path [", category"]

    // Keys in the order the writer uses; each is the file's key.
    static const std::vector<std::string> &keys();
    bool empty() const;
    // This state with `later`'s set fields laid over it.
    LessonState overlaid(const LessonState &later) const;
};

struct LessonStep {
    int line = 0; // of the `##` title
    std::string title;
    LessonState state;
    std::string caption;                      // Markdown with $formulas$ and {{placeholders}}
    std::string question;                     // empty: none
    std::string answer;                       // hidden until Reveal
    std::string check;                        // a check expression (lesson_live.h), empty: none
    std::map<std::string, int> fieldLines;    // file key -> line, for messages
    int lineOf(const std::string &key) const; // the field's line, else the title's
};

struct Lesson {
    int version = kLessonVersion;
    std::string id; // [a-z0-9-]+
    std::string title;
    std::string audience;
    int durationMinutes = 0;
    std::vector<std::string> needs; // kLessonFeatures
    std::string sources;
    std::vector<LessonStep> steps;
    std::string origin; // the file it came from, for messages ("" for one built in memory)

    // The state in force at step i: every step's state up to and including i, laid over each other.
    LessonState stateAt(size_t step) const;
};

// Parses a lesson file's text. `origin` names it in errors. Checks the syntax and everything that needs
// no model: known fields, value types, tabs, mitigation spec syntax, check and placeholder expressions.
Result<Lesson> parseLesson(const std::string &text, const std::string &origin);
// Reads and parses a file (Io error naming the path when unreadable).
Result<Lesson> loadLesson(const std::string &path);
// The file text of a lesson (parseLesson(formatLesson(l)) gives l back). A lesson without a duration yet
// (0, one just recorded) is written with five minutes a step.
std::string formatLesson(const Lesson &lesson);

// The checks that need the model's shape: layer/head/zoom/select ranges, metric names (from
// `headMetricNames`, the names SinkMetrics::headMetrics has on this model). Errors name file, line, field.
// `steps`: only these step indices (a lesson whose steps use several models); null: all.
Status validateLesson(const Lesson &lesson, const ModelConfig &config, const std::vector<std::string> &headMetricNames,
                      const std::vector<size_t> *steps = nullptr);

// The models a lesson names: "default" and "" are the default model, "smollm2" the same, "gemma3" the
// installed Gemma 3 270M (empty when absent), anything else a path relative to the lesson file's folder.
// resolveLessonModel returns the path to open ("" for the default model) or an error naming the line.
Result<std::string> resolveLessonModel(const Lesson &lesson, size_t step);
// Every step's model resolved; a missing file is an error naming file, line and path. A lesson that
// needs gemma3 when it is not installed is not an error here (the runner says so).
Status checkLessonModels(const Lesson &lesson);
// The `needs:` features this installation lacks ("gemma3" when its GGUF is not installed), for notices.
std::vector<std::string> missingFeatures(const Lesson &lesson);

// The built-in course: <data>/lessons/*.md ($SINKSCOPE_LESSONS overrides the folder), sorted by file name.
std::string lessonsDir();
struct LessonEntry {
    std::string id, title, path;
    int steps = 0;
    int durationMinutes = 0;
};
Result<std::vector<LessonEntry>> builtinLessons();
// A built-in lesson's id or a lesson file's path.
Result<Lesson> findLesson(const std::string &idOrPath);

} // namespace sinkscope::lessons
