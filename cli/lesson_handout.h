// Lesson handouts (sinkscope-cli lesson run --handout): a PDF with a page per step (the figure the step's
// tab shows, drawn by the window's own figure code, the caption with its live numbers, the question and the
// check's result) and a last page with the answers and the checks. The figure data is gathered here without
// Qt (lessonFigure, from the lesson's LiveEvaluator and its caches); drawing needs the GUI build
// (SINKSCOPE_LESSON_HANDOUT=1), else writeLessonHandout says that handouts need it.
#pragma once

#include "sinkscope/analysis/metrics.h"
#include "sinkscope/common/array.h"
#include "sinkscope/interventions/streaming.h"
#include "sinkscope/lessons/lesson.h"
#include "sinkscope/lessons/lesson_live.h"

#include <memory>
#include <string>
#include <vector>

namespace sinkscope::cli {

// What a step's page shows above its caption.
struct HandoutFigure {
    enum class Kind { None, HeadMetric, HeadMap, Received, Lines, Streaming };
    Kind kind = Kind::None;
    std::string title;
    std::string colours; // the step's colour map key ("" = the window's default)
    // HeadMetric: the layer x head grid of `metric` (with the massive-activation strip); Received: the
    // attention received per token of `layer` (< 0: mean over layers). HeadMap and Received use the
    // analysis' token texts.
    std::shared_ptr<const SinkMetrics> metrics;
    std::string metric;
    int64_t layer = -1;
    // HeadMap: the layer's attention [H, T, T], its head and the head view's scale settings.
    FloatArray attention;
    int64_t head = 0;
    bool logScale = false;
    double clampPercentile = 0; // 0: off
    bool withoutSink = false;
    std::vector<int64_t> zoom; // first query, last query, first key, last key; empty: the whole map
    int64_t slidingWindow = 0;
    // Streaming: the streaming tab's runs at a total cache (dense, window only, sinks + window), drawn as
    // the tab draws them.
    int cache = 0;
    std::vector<std::shared_ptr<const StreamingResult>> streams;
    // Lines: one series per name, x and y of equal length (NaN leaves a gap).
    std::string xLabel, yLabel;
    std::vector<std::string> names;
    std::vector<std::vector<double>> x, y;
};

struct HandoutStep {
    std::string title;
    std::string model;   // the model's name, for the page's header line
    std::string skipped; // why the step was not run ("" = it ran)
    lessons::StepNumbers numbers;
    std::string question, answer;
    HandoutFigure figure;
};

struct Handout {
    std::string path; // .pdf
    lessons::Lesson lesson;
    std::vector<HandoutStep> steps; // one per lesson step
};

// The figure of step `step` (the tab its state shows) on `evaluator`'s model, from the evaluator's caches.
// A figure that cannot be made (a mitigation the model rejects) comes back as Kind::None with the reason in
// its title.
HandoutFigure lessonFigure(lessons::LiveEvaluator &evaluator, const lessons::Lesson &lesson, size_t step);

#if defined(SINKSCOPE_LESSON_HANDOUT) && SINKSCOPE_LESSON_HANDOUT
inline constexpr bool handoutsAvailable = true;
// Writes the PDF (whole or not at all); false with *error (one line naming the file) on failure.
bool writeLessonHandout(const Handout &handout, std::string *error);
#else
inline constexpr bool handoutsAvailable = false;
inline bool writeLessonHandout(const Handout &, std::string *error)
{
    *error = "handouts need a build with SINKSCOPE_BUILD_GUI=ON";
    return false;
}
#endif

} // namespace sinkscope::cli
