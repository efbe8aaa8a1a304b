// The lesson side panel: lesson and step titles, progress ("3/8"), the caption with its live numbers
// (rendered by lesson_text; "…" in place of each number while it is computed), the question with Reveal
// for the answer, the check's outcome, notices (features this installation lacks, a model that does not
// show what the lesson describes), Previous / Next / Exit, and an Edit toggle with plain-text editors for
// the step's title, caption, question and answer (recording a lesson). It only shows what it is given and
// reports the user's actions; LessonMode drives it.
#pragma once

#include "sinkscope/lessons/lesson.h"
#include "sinkscope/lessons/lesson_live.h"

#include <QWidget>

class QLabel;
class QLineEdit;
class QPlainTextEdit;
class QPushButton;
class QTextBrowser;

namespace sinkscope::ui {

class LessonPanel : public QWidget
{
    Q_OBJECT
public:
    explicit LessonPanel(QWidget *parent = nullptr);

    // Large text for presenter mode, colours for the dark palette.
    void setTextStyle(double pointSize, bool dark);
    // A step: its content, position and a notice ("" for none). The caption shows "…" for its numbers.
    void showStep(const QString &lessonTitle, int index, int count, const lessons::LessonStep &step,
                  const QString &notice);
    // An empty lesson being recorded.
    void showEmpty(const QString &lessonTitle, const QString &hint);
    // The step's numbers arrived. `userModel`: the lesson did not choose the model in use (the notice for a
    // check that is not confirmed then says the model may not show the phenomenon).
    void showNumbers(const lessons::StepNumbers &numbers, bool userModel);
    void showComputing(const QString &label);
    void showFailure(const QString &message);

    void setEditing(bool on);
    bool isEditing() const { return m_editing; }
    void reveal();
    bool isAnswerShown() const;

    // What a test (or a screenshot) reads.
    QString captionHtml() const { return m_captionHtml; }
    QString captionText() const;
    QString checkText() const;
    QString noticeText() const;
    QString progressText() const;
    QString stepTitleText() const;
    QPushButton *nextButton() const { return m_next; }
    QPushButton *previousButton() const { return m_previous; }
    QPushButton *revealButton() const { return m_reveal; }
    QPushButton *editButton() const { return m_edit; }
    QPushButton *exitButton() const { return m_exit; }
    QPlainTextEdit *captionEditor() const { return m_captionEdit; }
    QLineEdit *titleEditor() const { return m_titleEdit; }
    QLineEdit *lessonTitleEditor() const { return m_lessonTitleEdit; }
    QLineEdit *questionEditor() const { return m_questionEdit; }
    QPlainTextEdit *answerEditor() const { return m_answerEdit; }

signals:
    void previousRequested();
    void nextRequested();
    void exitRequested();
    // The Edit toggle was switched off: the edited texts.
    void stepEdited(const QString &lessonTitle, const QString &title, const QString &caption, const QString &question,
                    const QString &answer);

private:
    void renderCaption();
    void updateEditors();

    QLabel *m_lessonTitle = nullptr;
    QLabel *m_progress = nullptr;
    QLabel *m_stepTitle = nullptr;
    QLabel *m_notice = nullptr;
    QTextBrowser *m_caption = nullptr;
    QLabel *m_question = nullptr;
    QPushButton *m_reveal = nullptr;
    QLabel *m_answer = nullptr;
    QLabel *m_check = nullptr;
    QLabel *m_checkNotice = nullptr;
    QLabel *m_status = nullptr;
    QWidget *m_editors = nullptr;
    QLineEdit *m_lessonTitleEdit = nullptr;
    QLineEdit *m_titleEdit = nullptr;
    QPlainTextEdit *m_captionEdit = nullptr;
    QLineEdit *m_questionEdit = nullptr;
    QPlainTextEdit *m_answerEdit = nullptr;
    QPushButton *m_previous = nullptr;
    QPushButton *m_next = nullptr;
    QPushButton *m_edit = nullptr;
    QPushButton *m_exit = nullptr;

    QString m_lessonTitleText;
    lessons::LessonStep m_step;
    QString m_captionMarkdown; // the caption shown: with numbers, or "…" in their place
    QString m_captionHtml;
    double m_pointSize = 0;
    bool m_dark = false;
    bool m_editing = false;
    bool m_hasStep = false;
};

} // namespace sinkscope::ui
