// A lesson step as a window session: the state a lesson sets up to a step (Lesson::stateAt) turned into a
// Session, laid over the window's current session so that every field the lesson leaves unset keeps the
// user's own state. The window then applies it exactly as it opens a session file
// (MainWindow::applySession), so a lesson step and a session reach the views through one path.
//
// The per-view state uses the keys each view's restoreState() reads: head {layer, head, scale{mapping,
// clamp_percentile, percentile, without_sink}, window}, tokens {layer}, overview {metric}, mitigations
// {spec, enabled}, probes {set, category}, streaming {cache}. `select:` becomes Session::selected.
//
// And back: lessonStateFromSession() reads those keys from a session (Record step), and lessonStateDiff()
// keeps only the fields that differ from the state in force, so a recorded step writes what changed.
// Pure functions, UI thread or any.
#pragma once

#include "session.h"

#include "sinkscope/lessons/lesson.h"

#include <QString>

#include <optional>

namespace sinkscope::ui {

// The session of step `step` of `lesson` laid over `base`. The model is resolveLessonModel's path ("" =
// the default model) when the lesson names one, else base's. Tokens are left empty when the prompt, BOS
// or model differ from base (the window tokenizes the prompt); else base's tokens are kept. nullopt and
// *error (one line naming file and line) when the lesson's model cannot be resolved.
std::optional<Session> lessonSession(const lessons::Lesson &lesson, size_t step, const Session &base, QString *error);
// The same from a state (no model resolution: `modelPath` is used when state.model is set).
Session sessionFromLessonState(const lessons::LessonState &state, const QString &modelPath, const QString &lessonDir,
                               const Session &base);

// The lesson fields a session shows (model left unset: the caller names it).
lessons::LessonState lessonStateFromSession(const Session &session);
// The fields of `now` whose value differs from `before` (a field set in `now` and unset in `before`
// counts as different).
lessons::LessonState lessonStateDiff(const lessons::LessonState &before, const lessons::LessonState &now);

} // namespace sinkscope::ui
