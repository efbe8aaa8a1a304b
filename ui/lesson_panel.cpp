#include "lesson_panel.h"

#include "lesson_text.h"

#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QTextBrowser>
#include <QTextDocument>
#include <QVBoxLayout>

namespace sinkscope::ui {

namespace {

QString q(const std::string &s)
{
    return QString::fromStdString(s);
}

// The caption with "…" for each {{placeholder}} (its number is being computed).
QString withEllipses(const std::string &caption)
{
    auto found = lessons::findPlaceholders(caption);
    if (!found) {
        return q(caption);
    }
    std::string out = caption;
    const auto &placeholders = found.value();
    for (auto it = placeholders.rbegin(); it != placeholders.rend(); ++it) {
        out.replace(it->begin, it->end - it->begin, "\u2026");
    }
    return q(out);
}

QLabel *wrappedLabel(QWidget *parent)
{
    auto *label = new QLabel(parent);
    label->setWordWrap(true);
    label->setTextFormat(Qt::RichText);
    label->setTextInteractionFlags(Qt::TextBrowserInteraction);
    label->setOpenExternalLinks(true);
    return label;
}

} // namespace

LessonPanel::LessonPanel(QWidget *parent) : QWidget(parent)
{
    setObjectName(QStringLiteral("lessonPanel"));
    auto *layout = new QVBoxLayout(this);
    auto *top = new QHBoxLayout;
    m_lessonTitle = wrappedLabel(this);
    m_progress = new QLabel(this);
    m_progress->setObjectName(QStringLiteral("lessonProgress"));
    top->addWidget(m_lessonTitle, 1);
    top->addWidget(m_progress, 0, Qt::AlignTop);
    layout->addLayout(top);
    m_stepTitle = wrappedLabel(this);
    layout->addWidget(m_stepTitle);
    m_notice = wrappedLabel(this);
    m_notice->setAutoFillBackground(true);
    m_notice->setMargin(6);
    m_notice->hide();
    layout->addWidget(m_notice);

    m_caption = new QTextBrowser(this);
    m_caption->setObjectName(QStringLiteral("lessonCaption"));
    m_caption->setOpenExternalLinks(true);
    m_caption->setFrameShape(QFrame::NoFrame);
    layout->addWidget(m_caption, 1);

    m_editors = new QWidget(this);
    auto *form = new QFormLayout(m_editors);
    form->setContentsMargins(0, 0, 0, 0);
    m_lessonTitleEdit = new QLineEdit(m_editors);
    m_titleEdit = new QLineEdit(m_editors);
    m_captionEdit = new QPlainTextEdit(m_editors);
    m_captionEdit->setPlaceholderText(
        tr("Markdown; formulas between $...$; live numbers as {{mean(first_token_mass)}}"));
    m_questionEdit = new QLineEdit(m_editors);
    m_answerEdit = new QPlainTextEdit(m_editors);
    m_answerEdit->setMaximumHeight(90);
    form->addRow(tr("Lesson"), m_lessonTitleEdit);
    form->addRow(tr("Step"), m_titleEdit);
    form->addRow(tr("Caption"), m_captionEdit);
    form->addRow(tr("Question"), m_questionEdit);
    form->addRow(tr("Answer"), m_answerEdit);
    m_editors->hide();
    layout->addWidget(m_editors, 1);

    m_question = wrappedLabel(this);
    layout->addWidget(m_question);
    m_reveal = new QPushButton(tr("Reveal the answer"), this);
    layout->addWidget(m_reveal, 0, Qt::AlignLeft);
    m_answer = wrappedLabel(this);
    m_answer->hide();
    layout->addWidget(m_answer);
    m_check = wrappedLabel(this);
    m_check->setObjectName(QStringLiteral("lessonCheck"));
    layout->addWidget(m_check);
    m_checkNotice = wrappedLabel(this);
    m_checkNotice->hide();
    layout->addWidget(m_checkNotice);
    m_status = new QLabel(this);
    m_status->setWordWrap(true);
    layout->addWidget(m_status);

    auto *buttons = new QHBoxLayout;
    m_previous = new QPushButton(tr("\u2190 Previous"), this);
    m_previous->setToolTip(tr("Previous step (Left, Page Up)"));
    m_next = new QPushButton(tr("Next \u2192"), this);
    m_next->setToolTip(tr("Next step (Right, Page Down)"));
    m_edit = new QPushButton(tr("Edit"), this);
    m_edit->setCheckable(true);
    m_edit->setToolTip(tr("Edit the step's title, caption, question and answer"));
    m_exit = new QPushButton(tr("Exit"), this);
    m_exit->setToolTip(tr("Leave the lesson; the window comes back as it was (Esc)"));
    buttons->addWidget(m_previous);
    buttons->addWidget(m_next);
    buttons->addStretch(1);
    buttons->addWidget(m_edit);
    buttons->addWidget(m_exit);
    layout->addLayout(buttons);
    for (QPushButton *b : {m_previous, m_next, m_edit, m_exit, m_reveal}) {
        b->setFocusPolicy(Qt::NoFocus); // arrow keys stay with the lesson, not with a focused button
    }

    connect(m_previous, &QPushButton::clicked, this, &LessonPanel::previousRequested);
    connect(m_next, &QPushButton::clicked, this, &LessonPanel::nextRequested);
    connect(m_exit, &QPushButton::clicked, this, &LessonPanel::exitRequested);
    connect(m_reveal, &QPushButton::clicked, this, &LessonPanel::reveal);
    connect(m_edit, &QPushButton::toggled, this, [this](bool on) {
        if (m_editing == on) {
            return;
        }
        m_editing = on;
        updateEditors();
        if (!on) {
            emit stepEdited(m_lessonTitleEdit->text(), m_titleEdit->text(), m_captionEdit->toPlainText(),
                            m_questionEdit->text(), m_answerEdit->toPlainText());
        }
    });
}

void LessonPanel::setTextStyle(double pointSize, bool dark)
{
    m_pointSize = pointSize;
    m_dark = dark;
    QFont f = font();
    if (pointSize > 0) {
        f.setPointSizeF(pointSize * 0.8);
    }
    for (QWidget *w : std::initializer_list<QWidget *>{m_question, m_answer, m_check, m_checkNotice, m_notice, m_status,
                                                       m_progress}) {
        w->setFont(f);
    }
    QFont big = f;
    big.setBold(true);
    big.setPointSizeF(f.pointSizeF() * 1.25);
    m_stepTitle->setFont(big);
    QFont lessonFont = f;
    lessonFont.setItalic(true);
    m_lessonTitle->setFont(lessonFont);
    QPalette p = m_notice->palette();
    p.setColor(QPalette::Window, dark ? QColor(0x4a, 0x3b, 0x10) : QColor(0xff, 0xf3, 0xcd));
    p.setColor(QPalette::WindowText, dark ? QColor(0xff, 0xe0, 0x8a) : QColor(0x66, 0x4d, 0x03));
    m_notice->setPalette(p);
    m_checkNotice->setPalette(p);
    m_checkNotice->setAutoFillBackground(true);
    renderCaption();
}

void LessonPanel::showStep(const QString &lessonTitle, int index, int count, const lessons::LessonStep &step,
                           const QString &notice)
{
    m_hasStep = true;
    m_lessonTitleText = lessonTitle;
    m_step = step;
    m_lessonTitle->setText(lessonTitle.toHtmlEscaped());
    m_progress->setText(QStringLiteral("%1/%2").arg(index + 1).arg(count));
    m_stepTitle->setText(q(step.title).toHtmlEscaped());
    m_notice->setText(notice.toHtmlEscaped());
    m_notice->setVisible(!notice.isEmpty());
    m_captionMarkdown = withEllipses(step.caption);
    renderCaption();
    m_question->setText(
        step.question.empty()
            ? QString()
            : QStringLiteral("<b>%1</b> %2").arg(tr("Question:"), inlineMarkdownToHtml(q(step.question), m_dark)));
    m_question->setVisible(!step.question.empty());
    m_reveal->setVisible(!step.question.empty() && !step.answer.empty());
    m_answer->setText(QStringLiteral("<b>%1</b> %2").arg(tr("Answer:"), inlineMarkdownToHtml(q(step.answer), m_dark)));
    m_answer->hide();
    m_check->setText(step.check.empty() ? QString()
                                        : tr("Check <code>%1</code>: \u2026").arg(q(step.check).toHtmlEscaped()));
    m_check->setVisible(!step.check.empty());
    m_checkNotice->hide();
    m_status->clear();
    m_previous->setEnabled(index > 0);
    m_next->setEnabled(index + 1 < count);
    m_edit->setEnabled(true);
    updateEditors();
}

void LessonPanel::showEmpty(const QString &lessonTitle, const QString &hint)
{
    m_hasStep = false;
    m_lessonTitleText = lessonTitle;
    m_step = {};
    m_lessonTitle->setText(lessonTitle.toHtmlEscaped());
    m_progress->setText(QStringLiteral("0/0"));
    m_stepTitle->setText(tr("No steps yet"));
    m_notice->setText(hint.toHtmlEscaped());
    m_notice->show();
    m_captionMarkdown.clear();
    renderCaption();
    for (QWidget *w : std::initializer_list<QWidget *>{m_question, m_reveal, m_answer, m_check, m_checkNotice}) {
        w->hide();
    }
    m_previous->setEnabled(false);
    m_next->setEnabled(false);
    m_edit->setChecked(false);
    m_edit->setEnabled(false);
}

void LessonPanel::showNumbers(const lessons::StepNumbers &numbers, bool userModel)
{
    m_captionMarkdown = q(numbers.caption);
    renderCaption();
    m_status->setText(
        tr("Live numbers on %n token(s), %1 s", nullptr, int(numbers.tokens.size())).arg(numbers.seconds, 0, 'f', 1));
    if (!numbers.hasCheck) {
        m_check->hide();
        m_checkNotice->hide();
        return;
    }
    const lessons::CheckOutcome &c = numbers.check;
    const QString expression = q(c.expression).toHtmlEscaped();
    const QString detail = q(c.detail).toHtmlEscaped();
    switch (c.status) {
    case lessons::CheckStatus::Confirmed:
        m_check->setText(tr("<span style=\"color:%1\">\u2713 confirmed</span>: <code>%2</code> (%3)")
                             .arg(m_dark ? QStringLiteral("#7ee787") : QStringLiteral("#1a7f37"), expression, detail));
        m_checkNotice->hide();
        break;
    case lessons::CheckStatus::NotConfirmed:
        m_check->setText(tr("<span style=\"color:%1\">\u2717 not confirmed</span>: <code>%2</code> (%3)")
                             .arg(m_dark ? QStringLiteral("#ff7b72") : QStringLiteral("#cf222e"), expression, detail));
        m_checkNotice->setText(userModel ? tr("This model does not show the phenomenon this step describes: the "
                                              "lesson was written for another model, and the numbers above are this "
                                              "model's own.")
                                         : tr("The model did not confirm this step's check on this prompt."));
        m_checkNotice->show();
        break;
    case lessons::CheckStatus::Unavailable:
        m_check->setText(tr("\u2013 unavailable: <code>%1</code> (%2)").arg(expression, detail));
        m_checkNotice->hide();
        break;
    }
    m_check->show();
}

void LessonPanel::showComputing(const QString &label)
{
    m_status->setText(label);
}

void LessonPanel::showFailure(const QString &message)
{
    m_status->setText(tr("Live numbers failed: %1").arg(message));
}

void LessonPanel::setEditing(bool on)
{
    m_edit->setChecked(on);
}

void LessonPanel::reveal()
{
    m_answer->show();
    m_reveal->hide();
}

bool LessonPanel::isAnswerShown() const
{
    return m_answer->isVisibleTo(this);
}

QString LessonPanel::captionText() const
{
    return m_caption->toPlainText();
}

QString LessonPanel::checkText() const
{
    QTextDocument doc;
    doc.setHtml(m_check->text() + QLatin1Char(' ') +
                (m_checkNotice->isVisibleTo(this) ? m_checkNotice->text() : QString()));
    return doc.toPlainText();
}

QString LessonPanel::noticeText() const
{
    return m_notice->isVisibleTo(this) ? m_notice->text() : QString();
}

QString LessonPanel::progressText() const
{
    return m_progress->text();
}

QString LessonPanel::stepTitleText() const
{
    return m_stepTitle->text();
}

void LessonPanel::renderCaption()
{
    m_captionHtml = lessonTextToHtml(m_captionMarkdown, LessonTextStyle{m_pointSize, m_dark});
    m_caption->setHtml(m_captionHtml);
}

void LessonPanel::updateEditors()
{
    if (m_editing) {
        m_lessonTitleEdit->setText(m_lessonTitleText);
        m_titleEdit->setText(q(m_step.title));
        m_captionEdit->setPlainText(q(m_step.caption));
        m_questionEdit->setText(q(m_step.question));
        m_answerEdit->setPlainText(q(m_step.answer));
    }
    m_editors->setVisible(m_editing);
    m_caption->setVisible(!m_editing);
}

} // namespace sinkscope::ui
