// Lesson mode end to end on the tiny Llama (offscreen): a lesson file opens in the window, its steps
// apply as sessions (prompt, tab, head, selection), the live numbers and the check's outcome arrive from
// the compute thread, keys page through the steps, Reveal shows the answer, and Exit brings the user's
// own state back. Recording: New lesson, Record step (only changes written), Edit, Save, reopen.
#include "head_view.h"
#include "heatmap_plot.h"
#include "lesson_mode.h"
#include "lesson_panel.h"
#include "tiny_window.h"

#include <QFile>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QTabWidget>
#include <QTest>

#include <gtest/gtest.h>

using namespace sinkscope;
using namespace sinkscope::ui;

namespace {

class LessonModeTest : public sinkscope::testing::TinyWindowTest
{
protected:
    static QString writeLesson()
    {
        const QString path = file("tour.md");
        QFile f(path);
        EXPECT_TRUE(f.open(QIODevice::WriteOnly));
        f.write(R"(---
sinkscope-lesson: 1
id: tiny-tour
title: A tour of the tiny model
audience: tests
duration: 5
---

## The first token
model: tiny-llama.pt
prompt: hello world, hello
tab: overview
metric: first_token_mass
check: mean(first_token_mass) >= 0
question: Where does the attention go?
answer: To the first token.

The mean first-token mass is **{{mean(first_token_mass) | .3}}**, written $\alpha_1$.

## One head
tab: head
layer: 1
head: 2
scale: log
select: 0 2

Head 2 of layer 1 on a log scale.

## Another prompt
prompt: the cat sat on the mat
tab: tokens
check: mean(first_token_mass) > 2

{{tokens}} tokens now; a share above 2 cannot hold.
)");
        return path;
    }

    static QString tabOf(MainWindow *w)
    {
        return qobject_cast<AnalysisView *>(w->findChild<QTabWidget *>()->currentWidget())->viewId();
    }

    // Waits until step `step`'s numbers are in the panel (reported after the spy's first `after` signals).
    static void waitNumbers(LessonMode *mode, QSignalSpy &spy, int step, int after = -1)
    {
        auto arrived = [&] { return spy.count() > std::max(0, after) && spy.last().at(0).toInt() == step; };
        for (int i = 0; i < 200 && !arrived(); ++i) {
            spy.wait(300);
        }
        ASSERT_TRUE(arrived()) << "no numbers for step " << step;
        ASSERT_EQ(mode->currentStep(), step);
    }
};

} // namespace

TEST_F(LessonModeTest, StepsApplyNumbersArriveKeysPageAndExitRestores)
{
    auto window = openAndRun({.modelPath = s_model, .prompt = QStringLiteral("my own prompt here")});
    window->showView(QStringLiteral("metrics"));
    LessonMode *mode = window->lessonMode();
    LessonPanel *panel = mode->panel();
    QSignalSpy numbers(mode, &LessonMode::numbersShown);

    ASSERT_TRUE(mode->open(writeLesson())) << window->messageBar()->text().toStdString();
    EXPECT_TRUE(mode->isActive());
    EXPECT_TRUE(mode->dock()->isVisibleTo(window.get()));
    waitNumbers(mode, numbers, 0);
    EXPECT_EQ(panel->progressText(), QStringLiteral("1/3"));
    EXPECT_EQ(window->promptEditor()->toPlainText(), QStringLiteral("hello world, hello"));
    EXPECT_EQ(tabOf(window.get()), QStringLiteral("overview"));
    const QString caption = panel->captionText();
    EXPECT_TRUE(caption.startsWith(QStringLiteral("The mean first-token mass is 0."))) << caption.toStdString();
    EXPECT_FALSE(caption.contains(QStringLiteral("{{")));
    EXPECT_TRUE(caption.contains(QStringLiteral("α"))) << caption.toStdString();
    EXPECT_TRUE(panel->checkText().contains(QStringLiteral("\u2713 confirmed"))) << panel->checkText().toStdString();

    // Reveal.
    EXPECT_FALSE(panel->isAnswerShown());
    panel->revealButton()->click();
    EXPECT_TRUE(panel->isAnswerShown());

    // Page Down (a presenter's clicker): the same prompt, so only the views change; the selection is outlined.
    QTest::keyClick(window.get(), Qt::Key_PageDown);
    waitNumbers(mode, numbers, 1);
    EXPECT_EQ(tabOf(window.get()), QStringLiteral("head"));
    EXPECT_EQ(window->headView()->model().layer(), 1);
    EXPECT_EQ(window->headView()->model().head(), 2);
    EXPECT_EQ(window->selectedTokens(), (QVector<qint64>{0, 2}));
    EXPECT_EQ(window->headView()->heatmap()->highlightItemCount(), 4); // a row and a column per token
    EXPECT_FALSE(panel->isAnswerShown());

    // Right: a new prompt runs; the check cannot hold.
    QTest::keyClick(window.get(), Qt::Key_Right);
    waitNumbers(mode, numbers, 2);
    EXPECT_EQ(window->promptEditor()->toPlainText(), QStringLiteral("the cat sat on the mat"));
    EXPECT_EQ(tabOf(window.get()), QStringLiteral("tokens"));
    EXPECT_TRUE(panel->checkText().contains(QStringLiteral("\u2717 not confirmed")))
        << panel->checkText().toStdString();
    EXPECT_FALSE(panel->nextButton()->isEnabled());
    QTest::keyClick(window.get(), Qt::Key_Right); // past the end: stays
    EXPECT_EQ(mode->currentStep(), 2);

    // Left and Home come back; cached numbers arrive at once.
    const int before = numbers.count();
    QTest::keyClick(window.get(), Qt::Key_Left);
    EXPECT_EQ(mode->currentStep(), 1);
    EXPECT_GT(numbers.count(), before); // no model work for the numbers
    QTest::keyClick(window.get(), Qt::Key_Home);
    EXPECT_EQ(mode->currentStep(), 0);
    EXPECT_EQ(panel->progressText(), QStringLiteral("1/3"));

    // Left/Right while a text field has focus edit the text, not the lesson.
    window->show();
    window->activateWindow();
    window->promptEditor()->setFocus();
    if (QApplication::focusWidget() == window->promptEditor()) {
        QTest::keyClick(window->promptEditor(), Qt::Key_Right);
        EXPECT_EQ(mode->currentStep(), 0);
        window->promptEditor()->clearFocus();
    }

    // Esc leaves the lesson: the user's prompt and tab come back.
    QSignalSpy applied(window.get(), &MainWindow::sessionApplied);
    QTest::keyClick(window.get(), Qt::Key_Escape);
    EXPECT_FALSE(mode->isActive());
    ASSERT_TRUE(applied.count() > 0 || applied.wait(60000));
    EXPECT_EQ(window->promptEditor()->toPlainText(), QStringLiteral("my own prompt here"));
    EXPECT_EQ(tabOf(window.get()), QStringLiteral("metrics"));
    EXPECT_FALSE(mode->dock()->isVisibleTo(window.get()));
    EXPECT_TRUE(window->selectedTokens().isEmpty());
}

TEST_F(LessonModeTest, RecordEditSaveAndReopen)
{
    auto window = openAndRun({.modelPath = s_model, .prompt = QStringLiteral("hello world, hello")});
    LessonMode *mode = window->lessonMode();
    LessonPanel *panel = mode->panel();
    QSignalSpy numbers(mode, &LessonMode::numbersShown);

    QString error;
    EXPECT_FALSE(mode->save(file("empty.md"), &error));
    mode->newLesson();
    EXPECT_TRUE(mode->isActive());
    EXPECT_FALSE(mode->save(file("empty.md"), &error));
    EXPECT_TRUE(error.startsWith(file("empty.md") + QStringLiteral(": the lesson has no steps")))
        << error.toStdString();

    EXPECT_FALSE(mode->hasUnsavedChanges());
    mode->recordStep();
    waitNumbers(mode, numbers, 0);
    ASSERT_EQ(mode->stepCount(), 1);
    EXPECT_TRUE(mode->hasUnsavedChanges()) << "leaving or closing now asks first";
    const lessons::LessonState first = mode->lesson().steps[0].state;
    EXPECT_EQ(first.prompt, std::optional<std::string>("hello world, hello"));
    EXPECT_EQ(first.model, std::optional<std::string>(s_model.toStdString()));

    // Edit the caption, question and answer in place.
    panel->setEditing(true);
    ASSERT_TRUE(panel->captionEditor()->isVisibleTo(panel));
    panel->lessonTitleEditor()->setText(QStringLiteral("Recorded on the tiny model"));
    panel->titleEditor()->setText(QStringLiteral("The overview"));
    panel->captionEditor()->setPlainText(QStringLiteral("Mass {{mean(first_token_mass) | .2}} for $x_i$."));
    panel->questionEditor()->setText(QStringLiteral("Which token?"));
    panel->answerEditor()->setPlainText(QStringLiteral("The first."));
    const int edited = numbers.count();
    panel->setEditing(false);
    waitNumbers(mode, numbers, 0, edited);
    EXPECT_TRUE(panel->captionText().startsWith(QStringLiteral("Mass 0."))) << panel->captionText().toStdString();
    EXPECT_EQ(panel->stepTitleText(), QStringLiteral("The overview"));

    // A second step: only the tab, layer and head change.
    window->headView()->showHead(1, 3);
    window->showView(QStringLiteral("head"));
    mode->recordStep();
    waitNumbers(mode, numbers, 1);
    ASSERT_EQ(mode->stepCount(), 2);
    const lessons::LessonState second = mode->lesson().steps[1].state;
    EXPECT_EQ(second.tab, std::optional<std::string>("head"));
    EXPECT_EQ(second.layer, std::optional<int64_t>(1));
    EXPECT_EQ(second.head, std::optional<int64_t>(3));
    EXPECT_FALSE(second.prompt);
    EXPECT_FALSE(second.model);
    EXPECT_FALSE(second.scale);

    const QString path = file("recorded-lesson.md");
    ASSERT_TRUE(mode->save(path, &error)) << error.toStdString();
    EXPECT_FALSE(mode->hasUnsavedChanges());
    auto reread = lessons::loadLesson(path.toStdString());
    ASSERT_TRUE(reread.ok()) << reread.error().message;
    const lessons::Lesson &l = reread.value();
    EXPECT_EQ(l.id, "recorded-lesson");
    EXPECT_EQ(l.title, "Recorded on the tiny model");
    EXPECT_EQ(l.durationMinutes, 10);
    ASSERT_EQ(l.steps.size(), 2u);
    EXPECT_EQ(l.steps[0].title, "The overview");
    EXPECT_EQ(l.steps[0].caption, "Mass {{mean(first_token_mass) | .2}} for $x_i$.");
    EXPECT_EQ(l.steps[0].question, "Which token?");
    EXPECT_EQ(l.steps[0].answer, "The first.");
    EXPECT_EQ(l.steps[1].state.tab, second.tab);
    EXPECT_EQ(l.steps[1].state.head, second.head);
    EXPECT_FALSE(l.steps[1].state.prompt);
    EXPECT_EQ(l.stateAt(1).prompt, first.prompt);

    // Reopen: the same lesson, and its first step's numbers.
    mode->exit();
    ASSERT_TRUE(mode->open(path));
    waitNumbers(mode, numbers, 0);
    EXPECT_EQ(mode->stepCount(), 2);
    EXPECT_EQ(panel->progressText(), QStringLiteral("1/2"));
    EXPECT_EQ(lessons::formatLesson(mode->lesson()), lessons::formatLesson(l));
    mode->exit();
}

TEST_F(LessonModeTest, BadLessonFileIsOneLineNamingIt)
{
    auto window = openAndRun({.modelPath = s_model});
    const QString path = file("bad.md");
    QFile f(path);
    ASSERT_TRUE(f.open(QIODevice::WriteOnly));
    f.write("---\nsinkscope-lesson: 1\nid: bad\ntitle: Bad\naudience: a\nduration: 5\n---\n\n## S\nprompt: x\ntab: "
            "nowhere\n");
    f.close();
    EXPECT_FALSE(window->lessonMode()->open(path));
    EXPECT_FALSE(window->lessonMode()->isActive());
    const QString message = window->messageBar()->text();
    EXPECT_TRUE(message.contains(path)) << message.toStdString();
    EXPECT_FALSE(message.contains(QLatin1Char('\n')));
}
