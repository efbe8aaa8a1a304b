// Lesson mode: the Lessons menu, the lesson panel in a dock, step navigation (Right / Page Down next, Left /
// Page Up previous, Home / End, Esc exits), live numbers through LessonRunner, and recording a lesson (New
// lesson, Record step, Save lesson). A step is applied as a session (lesson_session.h) through
// MainWindow::applySession, laid over the window's own state; entering a lesson saves currentSession() and
// leaving applies it again, so the user's state comes back. UI thread only.
#pragma once

#include "lesson_panel.h"
#include "lesson_runner.h"
#include "session.h"

#include <QObject>

#include <optional>

class QDockWidget;
class QMenu;

namespace sinkscope::ui {

class MainWindow;

class LessonMode : public QObject
{
    Q_OBJECT
public:
    explicit LessonMode(MainWindow *window);

    // Fills the Lessons menu (built-in lessons are listed each time it opens).
    void buildMenu(QMenu *menu);
    void setStyle(bool presenter, bool dark);

    // A built-in lesson's id or a lesson file. Returns false (and shows why) when it cannot be read.
    bool open(const QString &idOrPath);
    bool start(lessons::Lesson lesson);
    void newLesson();
    // Appends the window's state after the current step (only what differs from it), with an empty caption.
    void recordStep();
    bool save(const QString &path, QString *error);
    // Leaves the lesson (asks first when recorded steps or edits are not saved; false: the user kept it).
    bool exit();

    // Recorded steps or edited captions not saved yet.
    bool hasUnsavedChanges() const { return m_unsaved; }
    // True when there is nothing unsaved, or the user saved or discarded it; false when they cancelled.
    bool confirmDiscard();

    bool isActive() const { return m_active; }
    int currentStep() const { return m_step; }
    int stepCount() const { return int(m_runner->lesson().steps.size()); }
    const lessons::Lesson &lesson() const { return m_runner->lesson(); }
    void goTo(int step);
    void next() { goTo(m_step + 1); }
    void previous() { goTo(m_step - 1); }

    LessonPanel *panel() const { return m_panel; }
    LessonRunner *runner() const { return m_runner; }
    QDockWidget *dock() const { return m_dock; }

signals:
    void stepShown(int step);    // the step's session is applied (its numbers may follow)
    void numbersShown(int step); // the step's live numbers are in the panel
    void activeChanged(bool active);

protected:
    bool eventFilter(QObject *watched, QEvent *event) override;

private:
    void openFileDialog();
    void saveDialog();
    void rebuildBuiltins();
    void evaluateWhenReady(int step);
    void onEdited(const QString &lessonTitle, const QString &title, const QString &caption, const QString &question,
                  const QString &answer);
    QString noticeFor(int step) const;
    bool stepUsesLessonModel(int step) const;
    void updateActions();
    void fitPanel();

    MainWindow *m_window = nullptr;
    LessonRunner *m_runner = nullptr;
    LessonPanel *m_panel = nullptr;
    QDockWidget *m_dock = nullptr;
    QMenu *m_builtinMenu = nullptr;
    QList<QAction *> m_activeActions; // enabled only in lesson mode
    std::optional<Session> m_saved;   // the user's state before the lesson
    QMetaObject::Connection m_waitForModel;
    bool m_active = false;
    bool m_presenter = false;
    bool m_unsaved = false; // recorded or edited since the lesson was opened or saved
    int m_step = -1;
};

} // namespace sinkscope::ui
