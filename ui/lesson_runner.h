// A lesson's live numbers in the window: evaluates a step's caption placeholders and check on the compute
// thread (through ComputeBridge, tag "lesson"), never on the UI thread, with progress in the status bar and
// cancellation; results are cached per model and step, so going back and forth is instant.
//
// Threading: called on the UI thread. One LiveEvaluator per loaded model lives behind a shared_ptr that only
// the compute thread's jobs touch (jobs run one at a time there, which is the evaluator's contract); a new
// model replaces it, and the old one dies with the last job that holds it. A new request supersedes the
// one in flight (its result is dropped), so paging quickly through steps costs only the step shown.
#pragma once

#include "compute_bridge.h"

#include "sinkscope/lessons/lesson.h"
#include "sinkscope/lessons/lesson_live.h"

#include <QHash>
#include <QObject>

#include <memory>

namespace sinkscope::ui {

class LessonRunner : public QObject
{
    Q_OBJECT
public:
    static constexpr const char *kTag = "lesson";

    explicit LessonRunner(ComputeBridge *bridge, QObject *parent = nullptr);

    // The lesson being shown; clears the cache.
    void setLesson(lessons::Lesson lesson);
    const lessons::Lesson &lesson() const { return m_lesson; }
    // Replaces one step (edited caption, question or check): its cached numbers are dropped.
    void updateStep(size_t step, const lessons::LessonStep &content);

    // The numbers of `step` on `model`: at once from the cache (evaluated() before returning, true), else
    // submitted to the compute thread (false; evaluated() or failed() later).
    bool evaluate(size_t step, std::shared_ptr<const Model> model);
    std::shared_ptr<const lessons::StepNumbers> cached(size_t step, const Model *model) const;
    void cancel();
    bool isBusy() const;

signals:
    void evaluated(int step, std::shared_ptr<const sinkscope::lessons::StepNumbers> numbers);
    void failed(int step, const QString &message);

private:
    QString key(size_t step, const Model *model) const;

    ComputeBridge *m_bridge = nullptr;
    lessons::Lesson m_lesson;
    std::shared_ptr<lessons::LiveEvaluator> m_evaluator; // of m_evaluatorModel; used on the compute thread only
    const Model *m_evaluatorModel = nullptr;
    QHash<QString, std::shared_ptr<const lessons::StepNumbers>> m_cache;
    int m_pendingStep = -1;
};

} // namespace sinkscope::ui
