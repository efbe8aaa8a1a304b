#include "lesson_runner.h"

#include <QFileInfo>

namespace sinkscope::ui {

LessonRunner::LessonRunner(ComputeBridge *bridge, QObject *parent) : QObject(parent), m_bridge(bridge)
{
    connect(m_bridge, &ComputeBridge::failed, this, [this](const QString &tag, const QString &message) {
        if (tag == QLatin1String(kTag) && m_pendingStep >= 0) {
            const int step = m_pendingStep;
            m_pendingStep = -1;
            emit failed(step, message);
        }
    });
}

void LessonRunner::setLesson(lessons::Lesson lesson)
{
    cancel();
    m_lesson = std::move(lesson);
    m_cache.clear();
}

void LessonRunner::updateStep(size_t step, const lessons::LessonStep &content)
{
    if (step >= m_lesson.steps.size()) {
        return;
    }
    m_lesson.steps[step] = content;
    const QString suffix = QStringLiteral("|%1").arg(step);
    for (auto it = m_cache.begin(); it != m_cache.end();) {
        it = it.key().endsWith(suffix) ? m_cache.erase(it) : std::next(it);
    }
}

QString LessonRunner::key(size_t step, const Model *model) const
{
    // By the model's file and device, not its address: a model loaded later may reuse a freed one's.
    return QStringLiteral("%1|%2|%3")
        .arg(QString::fromStdString(model->info().path), QString::fromStdString(model->info().device))
        .arg(step);
}

std::shared_ptr<const lessons::StepNumbers> LessonRunner::cached(size_t step, const Model *model) const
{
    return m_cache.value(key(step, model));
}

bool LessonRunner::evaluate(size_t step, std::shared_ptr<const Model> model)
{
    if (!model || step >= m_lesson.steps.size()) {
        return false;
    }
    if (auto hit = cached(step, model.get())) {
        cancel();
        emit evaluated(int(step), hit);
        return true;
    }
    if (m_evaluatorModel != model.get()) {
        // Made here, used only inside jobs: construction touches nothing but the model pointer.
        m_evaluator = std::make_shared<lessons::LiveEvaluator>(model);
        m_evaluatorModel = model.get();
    }
    m_pendingStep = int(step);
    const QString cacheKey = key(step, model.get());
    const lessons::LessonStep content = m_lesson.steps[step];
    const lessons::LessonState state = m_lesson.stateAt(step);
    const std::string dir = m_lesson.origin.empty()
                                ? std::string()
                                : QFileInfo(QString::fromStdString(m_lesson.origin)).absolutePath().toStdString();
    m_bridge->submit<lessons::StepNumbers>(
        QString::fromLatin1(kTag), tr("Lesson step %1: live numbers").arg(step + 1),
        [evaluator = m_evaluator, content, state, dir](const CancelToken &cancel, const ProgressCallback &progress) {
            return evaluator->evaluate(content, state, dir, &cancel, progress);
        },
        [this, step, cacheKey](std::shared_ptr<const lessons::StepNumbers> numbers) {
            m_pendingStep = -1;
            m_cache.insert(cacheKey, numbers);
            emit evaluated(int(step), std::move(numbers));
        });
    return false;
}

void LessonRunner::cancel()
{
    if (m_pendingStep >= 0) {
        m_pendingStep = -1;
        m_bridge->cancel(QString::fromLatin1(kTag));
    }
}

bool LessonRunner::isBusy() const
{
    return m_pendingStep >= 0;
}

} // namespace sinkscope::ui
