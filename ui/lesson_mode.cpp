#include "lesson_mode.h"

#include "lesson_session.h"
#include "main_window.h"

#include "sinkscope/runtime/paths.h"

#include <QAbstractSpinBox>
#include <QApplication>
#include <QComboBox>
#include <QDockWidget>
#include <QFileDialog>
#include <QFileInfo>
#include <QKeyEvent>
#include <QLayout>
#include <QLineEdit>
#include <QMenu>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QRegularExpression>
#include <QSaveFile>
#include <QScreen>
#include <QTextEdit>
#include <QTimer>

namespace sinkscope::ui {

namespace {

// The widest page of the views but Compare, in presenter mode (the Mitigations tab's controls).
constexpr int kPresenterTabsWidth = 740;

QString q(const std::string &s)
{
    return QString::fromStdString(s);
}

QString featureName(const std::string &feature)
{
    return feature == "gemma3" ? QObject::tr("Gemma 3 270M") : q(feature);
}

// A focused widget that takes arrow keys as text editing.
bool isTextInput(const QWidget *w)
{
    if (!w) {
        return false;
    }
    if (const auto *combo = qobject_cast<const QComboBox *>(w)) {
        return combo->isEditable();
    }
    return qobject_cast<const QLineEdit *>(w) || qobject_cast<const QPlainTextEdit *>(w) ||
           (qobject_cast<const QTextEdit *>(w) && !static_cast<const QTextEdit *>(w)->isReadOnly()) ||
           qobject_cast<const QAbstractSpinBox *>(w);
}

} // namespace

LessonMode::LessonMode(MainWindow *window) : QObject(window), m_window(window)
{
    m_runner = new LessonRunner(window->bridge(), this);
    m_panel = new LessonPanel;
    m_dock = new QDockWidget(tr("Lesson"), window);
    m_dock->setObjectName(QStringLiteral("lessonDock"));
    m_dock->setWidget(m_panel);
    m_dock->setFeatures(QDockWidget::DockWidgetMovable | QDockWidget::DockWidgetFloatable);
    m_dock->setMinimumWidth(360);
    window->addDockWidget(Qt::RightDockWidgetArea, m_dock);
    m_dock->hide();

    connect(m_panel, &LessonPanel::nextRequested, this, &LessonMode::next);
    connect(m_panel, &LessonPanel::previousRequested, this, &LessonMode::previous);
    connect(m_panel, &LessonPanel::exitRequested, this, &LessonMode::exit);
    connect(m_panel, &LessonPanel::stepEdited, this, &LessonMode::onEdited);
    connect(m_runner, &LessonRunner::evaluated, this,
            [this](int step, std::shared_ptr<const lessons::StepNumbers> numbers) {
                if (!m_active || step != m_step) {
                    return;
                }
                m_panel->showNumbers(*numbers,
                                     !stepUsesLessonModel(step) && !m_window->runController()->modelSource().isEmpty());
                emit numbersShown(step);
            });
    connect(m_runner, &LessonRunner::failed, this, [this](int step, const QString &message) {
        if (m_active && step == m_step) {
            m_panel->showFailure(message);
        }
    });
}

void LessonMode::buildMenu(QMenu *menu)
{
    m_builtinMenu = menu->addMenu(tr("&Built-in lessons"));
    m_builtinMenu->setToolTipsVisible(true);
    connect(m_builtinMenu, &QMenu::aboutToShow, this, &LessonMode::rebuildBuiltins);
    rebuildBuiltins();
    menu->addAction(tr("&Open lesson file\u2026"), this, &LessonMode::openFileDialog);
    menu->addSeparator();
    menu->addAction(tr("&New lesson (record)"), this, &LessonMode::newLesson);
    QAction *record = menu->addAction(tr("&Record step"), QKeySequence(QStringLiteral("Ctrl+Shift+R")), this,
                                      &LessonMode::recordStep);
    record->setToolTip(tr("Add the window's state as a step after the current one (a new lesson if none is open)"));
    QAction *save = menu->addAction(tr("&Save lesson\u2026"), this, &LessonMode::saveDialog);
    QAction *exitAction = menu->addAction(tr("E&xit lesson"), this, &LessonMode::exit);
    m_activeActions = {save, exitAction};
    updateActions();
}

void LessonMode::rebuildBuiltins()
{
    m_builtinMenu->clear();
    auto entries = lessons::builtinLessons();
    if (!entries || entries.value().empty()) {
        m_builtinMenu
            ->addAction(entries ? tr("(none in %1)").arg(q(lessons::lessonsDir())) : q(entries.error().message))
            ->setEnabled(false);
        return;
    }
    for (const lessons::LessonEntry &e : entries.value()) {
        QAction *a = m_builtinMenu->addAction(tr("%1 (%2 min)").arg(q(e.title)).arg(e.durationMinutes), this,
                                              [this, path = q(e.path)] { open(path); });
        a->setToolTip(tr("%1: %n step(s)", nullptr, e.steps).arg(q(e.id)));
    }
}

void LessonMode::setStyle(bool presenter, bool dark)
{
    // Presenter mode: large text, and a panel narrow enough that the views keep their room at 1600 pixels.
    m_panel->setTextStyle(presenter ? 18 : 0, dark);
    m_presenter = presenter;
    m_dock->setMinimumWidth(presenter ? 380 : 320);
    fitPanel();
}

void LessonMode::fitPanel()
{
    // At a projector's 1600 pixels the panel and the views fit side by side only when the tab area may
    // be narrower than its widest page (the Compare tab's two grids): a presented lesson lets it be as
    // narrow as the other pages need, and leaving presenter mode or the lesson gives the width back.
    m_window->tabs()->setMinimumWidth(m_active && m_presenter ? kPresenterTabsWidth : 0);
}

void LessonMode::updateActions()
{
    for (QAction *a : m_activeActions) {
        a->setEnabled(m_active);
    }
}

bool LessonMode::open(const QString &idOrPath)
{
    auto lesson = lessons::findLesson(idOrPath.toStdString());
    if (!lesson) {
        m_window->messageBar()->showError(q(lesson.error().message));
        return false;
    }
    return start(lesson.value());
}

bool LessonMode::start(lessons::Lesson lesson)
{
    if (auto ok = lessons::checkLessonModels(lesson); !ok) {
        m_window->messageBar()->showError(q(ok.error().message));
        return false;
    }
    if (m_active && !confirmDiscard()) {
        return false;
    }
    m_unsaved = false;
    if (!m_active) {
        m_saved = m_window->currentSession();
        m_active = true;
        qApp->installEventFilter(this);
        emit activeChanged(true);
    }
    m_runner->setLesson(std::move(lesson));
    m_panel->setEditing(false);
    fitPanel();
    m_dock->show();
    m_window->resizeDocks({m_dock}, {m_presenter ? 420 : 360}, Qt::Horizontal);
    // The panel takes its width from the views, not from beyond the screen's edge (once the layouts have
    // taken the narrower tab area into account).
    QTimer::singleShot(150, m_window, [window = m_window] {
        window->layout()->activate();
        const QScreen *screen = window->screen();
        if (screen && !window->isMaximized() && window->width() > screen->availableGeometry().width()) {
            window->resize(screen->availableGeometry().width(), window->height());
        }
    });
    updateActions();
    m_step = -1;
    if (stepCount() == 0) {
        m_panel->showEmpty(q(this->lesson().title),
                           tr("Set the window up (model, prompt, tab, head, scale...) and choose Lessons \u25b8 Record "
                              "step for each step; edit the caption with Edit; then Save lesson."));
        return true;
    }
    goTo(0);
    return true;
}

void LessonMode::newLesson()
{
    lessons::Lesson lesson;
    lesson.id = "my-lesson";
    lesson.title = tr("My lesson").toStdString();
    lesson.audience = tr("students").toStdString();
    start(std::move(lesson));
}

QString LessonMode::noticeFor(int step) const
{
    QStringList notes;
    for (const std::string &missing : lessons::missingFeatures(lesson())) {
        notes << tr("This lesson needs %1, which is not installed here: run tools/setup.sh.").arg(featureName(missing));
    }
    const auto state = lesson().stateAt(size_t(step));
    if (state.model && *state.model == "gemma3" && gemma3GgufPath().empty() && notes.isEmpty()) {
        notes << tr("This step uses Gemma 3 270M, which is not installed here: run tools/setup.sh. It is shown on "
                    "the current model.");
    }
    return notes.join(QLatin1Char(' '));
}

bool LessonMode::stepUsesLessonModel(int step) const
{
    return step >= 0 && step < stepCount() && lesson().stateAt(size_t(step)).model.has_value();
}

void LessonMode::goTo(int step)
{
    if (!m_active || step < 0 || step >= stepCount()) {
        return;
    }
    disconnect(m_waitForModel);
    m_step = step;
    const lessons::Lesson &l = lesson();
    const lessons::LessonState state = l.stateAt(size_t(step));
    QString notice = noticeFor(step);
    const Session base = m_window->currentSession();
    QString error;
    auto session = lessonSession(l, size_t(step), base, &error);
    if (!session) {
        m_window->messageBar()->showError(error);
        session = base;
    }
    if (state.model && *state.model == "gemma3") {
        const bool installed = !gemma3GgufPath().empty();
        if (!installed || (!m_window->gemmaTermsAccepted() && !m_window->showGemmaTerms(true))) {
            session->modelPath = base.modelPath; // stays on the current model
            session->tokens = base.prompt == session->prompt && base.prependBos == session->prependBos
                                  ? base.tokens
                                  : QVector<qint64>{};
            if (installed) {
                notice += (notice.isEmpty() ? QString() : QStringLiteral(" ")) +
                          tr("Gemma 3 270M was not loaded: its terms of use were not accepted.");
            }
        }
    }
    m_panel->showStep(q(l.title), step, stepCount(), l.steps[size_t(step)], notice);
    fitPanel();
    const bool loading = m_window->applySession(*session);
    emit stepShown(step);
    if (loading) {
        m_panel->showComputing(tr("Loading the step's model\u2026"));
        m_waitForModel = connect(m_window, &MainWindow::modelReady, this, [this, step] {
            disconnect(m_waitForModel);
            evaluateWhenReady(step);
        });
    } else {
        evaluateWhenReady(step);
    }
}

void LessonMode::evaluateWhenReady(int step)
{
    if (!m_active || step != m_step) {
        return;
    }
    if (!m_runner->evaluate(size_t(step), m_window->model())) {
        m_panel->showComputing(tr("Computing the live numbers\u2026"));
    }
}

bool LessonMode::confirmDiscard()
{
    if (!m_active || !m_unsaved) {
        return true;
    }
    const auto answer = QMessageBox::question(
        m_window, tr("Unsaved lesson"),
        tr("The lesson \u201c%1\u201d has recorded steps or edits that are not saved. Save them first?")
            .arg(q(lesson().title)),
        QMessageBox::Save | QMessageBox::Discard | QMessageBox::Cancel, QMessageBox::Save);
    if (answer == QMessageBox::Save) {
        saveDialog();
        return !m_unsaved;
    }
    return answer == QMessageBox::Discard;
}

bool LessonMode::exit()
{
    if (!m_active) {
        return true;
    }
    if (!confirmDiscard()) {
        return false;
    }
    m_unsaved = false;
    disconnect(m_waitForModel);
    m_runner->cancel();
    qApp->removeEventFilter(this);
    m_active = false;
    m_step = -1;
    m_panel->setEditing(false);
    m_dock->hide();
    fitPanel();
    updateActions();
    if (m_saved) {
        m_window->applySession(*m_saved); // the user's own state comes back
        m_saved.reset();
    }
    emit activeChanged(false);
    return true;
}

void LessonMode::recordStep()
{
    if (!m_active) {
        newLesson();
    }
    const Session now = m_window->currentSession();
    lessons::LessonState state = lessonStateFromSession(now);
    const QString source = m_window->runController()->modelSource();
    state.model = source.isEmpty() ? std::string("default") : QFileInfo(source).absoluteFilePath().toStdString();
    lessons::Lesson l = lesson();
    const lessons::LessonState before = m_step >= 0 ? l.stateAt(size_t(m_step)) : lessons::LessonState{};
    lessons::LessonStep step;
    step.title = tr("Step %1").arg(l.steps.size() + 1).toStdString();
    step.state = lessonStateDiff(before, state);
    const size_t at = size_t(m_step + 1);
    l.steps.insert(l.steps.begin() + std::ptrdiff_t(at), step);
    m_runner->setLesson(std::move(l));
    m_unsaved = true;
    m_panel->setEditing(false);
    goTo(int(at));
}

void LessonMode::onEdited(const QString &lessonTitle, const QString &title, const QString &caption,
                          const QString &question, const QString &answer)
{
    if (!m_active || m_step < 0 || m_step >= stepCount()) {
        return;
    }
    if (auto found = lessons::findPlaceholders(caption.toStdString()); !found) {
        m_window->messageBar()->showError(tr("Caption of step %1: %2").arg(m_step + 1).arg(q(found.error().message)));
        return;
    }
    lessons::Lesson l = lesson();
    l.title = lessonTitle.trimmed().isEmpty() ? l.title : lessonTitle.trimmed().toStdString();
    lessons::LessonStep content = l.steps[size_t(m_step)];
    content.title = title.trimmed().isEmpty() ? content.title : title.trimmed().toStdString();
    content.caption = caption.trimmed().toStdString();
    content.question = question.trimmed().toStdString();
    content.answer = answer.trimmed().toStdString();
    if (l.title != lesson().title) {
        const int step = m_step;
        l.steps[size_t(step)] = content;
        m_runner->setLesson(std::move(l));
        m_step = step;
    } else {
        m_runner->updateStep(size_t(m_step), content);
    }
    m_unsaved = true;
    m_panel->showStep(q(lesson().title), m_step, stepCount(), lesson().steps[size_t(m_step)], noticeFor(m_step));
    evaluateWhenReady(m_step);
}

bool LessonMode::save(const QString &path, QString *error)
{
    auto fail = [&](const QString &message) {
        if (error) {
            *error = QStringLiteral("%1: %2").arg(path, message);
        }
        return false;
    };
    if (!m_active || stepCount() == 0) {
        return fail(tr("the lesson has no steps: record one first (Lessons \u25b8 Record step)"));
    }
    lessons::Lesson l = lesson();
    if (l.durationMinutes <= 0) {
        l.durationMinutes = std::max(5, 5 * int(l.steps.size()));
    }
    if (l.id.empty() || l.id == "my-lesson") {
        QString id = QFileInfo(path).completeBaseName().toLower();
        id.replace(QRegularExpression(QStringLiteral("[^a-z0-9]+")), QStringLiteral("-"));
        id.remove(QRegularExpression(QStringLiteral("^-+|-+$")));
        l.id = id.isEmpty() ? std::string("my-lesson") : id.toStdString();
    }
    const std::string text = lessons::formatLesson(l);
    if (auto check = lessons::parseLesson(text, path.toStdString()); !check) {
        return fail(tr("the lesson would not read back: %1").arg(q(check.error().message)));
    }
    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly) || file.write(text.data(), qint64(text.size())) < 0 || !file.commit()) {
        return fail(tr("cannot write: %1").arg(file.errorString()));
    }
    l.origin = QFileInfo(path).absoluteFilePath().toStdString();
    const int step = m_step;
    m_runner->setLesson(std::move(l));
    m_step = step;
    m_unsaved = false;
    return true;
}

void LessonMode::openFileDialog()
{
    const QString path = QFileDialog::getOpenFileName(m_window, tr("Open lesson"), QString(),
                                                      tr("SinkScope lessons (*.md);;All files (*)"));
    if (!path.isEmpty()) {
        open(path);
    }
}

void LessonMode::saveDialog()
{
    const QString path = QFileDialog::getSaveFileName(m_window, tr("Save lesson"), QStringLiteral("my-lesson.md"),
                                                      tr("SinkScope lessons (*.md)"));
    QString error;
    if (!path.isEmpty() && !save(path, &error)) {
        m_window->messageBar()->showError(error);
    }
}

bool LessonMode::eventFilter(QObject *watched, QEvent *event)
{
    if (!m_active || (event->type() != QEvent::KeyPress && event->type() != QEvent::ShortcutOverride)) {
        return QObject::eventFilter(watched, event);
    }
    auto *key = static_cast<QKeyEvent *>(event);
    if (key->modifiers() & ~(Qt::KeypadModifier)) {
        return false; // Alt+Left and the like keep their meaning
    }
    // Only events meant for this window (not a dialog's), once each (the filter sees every hop).
    auto *target = qobject_cast<QWidget *>(watched);
    QWidget *focus = QApplication::focusWidget();
    if (!target || target->window() != m_window || (focus ? target != focus : !target->isWindow())) {
        return false;
    }
    const bool editing = m_panel->isEditing();
    const bool text = isTextInput(focus);
    std::function<void()> action;
    switch (key->key()) {
    case Qt::Key_PageDown:
        action = editing ? nullptr : std::function<void()>([this] { next(); });
        break;
    case Qt::Key_PageUp:
        action = editing ? nullptr : std::function<void()>([this] { previous(); });
        break;
    case Qt::Key_Right:
        action = text ? nullptr : std::function<void()>([this] { next(); });
        break;
    case Qt::Key_Left:
        action = text ? nullptr : std::function<void()>([this] { previous(); });
        break;
    case Qt::Key_Home:
        action = text ? nullptr : std::function<void()>([this] { goTo(0); });
        break;
    case Qt::Key_End:
        action = text ? nullptr : std::function<void()>([this] { goTo(stepCount() - 1); });
        break;
    case Qt::Key_Escape:
        action = text ? nullptr : std::function<void()>([this] { exit(); });
        break;
    default:
        break;
    }
    if (!action) {
        return false;
    }
    if (event->type() == QEvent::ShortcutOverride) {
        event->accept(); // the key comes as a key press, ahead of the window's shortcuts (Esc cancels work)
        return true;
    }
    action();
    return true;
}

} // namespace sinkscope::ui
