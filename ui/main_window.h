// The SinkScope window: model bar, prompt editor with live token chips, the analysis views (overview,
// head, tokens, outputs), export, sessions, themes.
//
// Threading: everything here runs on the UI thread. Model work goes through ComputeBridge; the window
// only ever holds immutable snapshots (std::shared_ptr<const ...>), so hovering, switching heads and
// exporting read memory and never run the model. Tokenizing the prompt for the chips uses the model's
// tokenizer directly: it is immutable, thread safe, LibTorch-free and takes microseconds.
#pragma once

#include "analysis_view.h"
#include "compute_bridge.h"
#include "figure_export.h"
#include "palettes.h"
#include "run_controller.h"
#include "session.h"

#include "sinkscope/runtime/device.h"

#include <QMainWindow>
#include <QTimer>

#include <functional>
#include <memory>
#include <optional>

class QAction;
class QCheckBox;
class QFileSystemWatcher;
class QComboBox;
class QLabel;
class QListView;
class QMenu;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;
class QSplitter;
class QTabWidget;
class QToolButton;

namespace sinkscope::ui {

class CompareView;
class HeadView;
class LessonMode;
class MetricsView;
class OverviewView;
class OutputsView;
class TokenChipModel;
class TokenView;

// A dismissable line above the views for errors (with their cause) and notices.
class MessageBar : public QWidget
{
    Q_OBJECT
public:
    explicit MessageBar(QWidget *parent = nullptr);
    void showError(const QString &text);
    void showInfo(const QString &text);
    QString text() const;
    bool isError() const { return m_error; }

private:
    void show(const QString &text, bool error);
    QLabel *m_label = nullptr;
    bool m_error = false;
};

struct MainWindowOptions {
    QString modelPath;       // empty: the last model used, else the default model
    QString sessionPath;     // a session to open once the window is up
    QString prompt;          // empty: the last prompt, else the default prompt
    bool useSettings = true; // read and write QSettings (tests turn this off)
    bool autoRun = true;     // run after loading and after typing pauses
    // The devices to offer (tests); unset: availableDevices(), queried once on the compute thread before
    // the first model loads.
    std::optional<std::vector<DeviceInfo>> devices;
    int64_t mapTokens = kMapTokens; // longer runs keep no attention maps (RunSnapshot::mapsOnDemand)
    // Asks the user to accept terms of use (the HTML file at the path); unset: the Accept/Cancel dialog.
    // Tests answer without a modal dialog.
    std::function<bool(const QString &termsPath)> askTerms;
    QString lesson; // a built-in lesson's id or a lesson file, opened in lesson mode after the first run
};

class MainWindow : public QMainWindow
{
    Q_OBJECT
public:
    explicit MainWindow(MainWindowOptions options = {}, QWidget *parent = nullptr);
    ~MainWindow() override;

    static QString defaultPrompt();
    // Token ids typed as the prompt of a model without a tokenizer ("1 2 3", "1,2,3"); empty when the
    // text is anything else.
    static std::vector<int64_t> parseTokenIds(const QString &text);

    // A model file (.pt, .gguf), a Hugging Face folder or its config.json; "" is the default model.
    void openModel(const QString &path);
    // A Models menu entry by id (model_catalog.h): "smollm2", or "gemma3" once its terms are accepted
    // (asked the first time). Returns false when the model is missing or the terms were declined.
    bool openCatalogModel(const QString &id);
    // Shows the Gemma Terms of Use; with `forLoading`, Accept records the acceptance. Returns acceptance.
    bool showGemmaTerms(bool forLoading);
    bool gemmaTermsAccepted() const;
    QMenu *modelsMenu() const { return m_modelsMenu; }
    // The work behind the window: model, devices, tokens, runs (run_controller.h).
    RunController *runController() const { return m_run; }
    // Loads the current model again on another device ("cpu", "cuda:N"; the model bar's picker). A
    // device the model cannot run on is refused with a message; a failed load keeps the current model.
    void chooseDevice(const QString &id);
    QString deviceId() const { return m_run->deviceId(); }
    QComboBox *deviceBox() const { return m_deviceBox; }
    void runPrompt();
    // A session file: load + applySession (an error naming the file goes to the message bar).
    void openSession(const QString &path);
    // Puts the window in a session's state: its model (loaded when it is not the one in use; "" is the
    // default model), prompt and tokens (empty: the prompt is tokenized), views, colour map, theme and
    // selected tokens. Runs the prompt unless the shown run already has those tokens; sessionApplied()
    // when the views show it. Returns true when a model is being loaded first (modelReady() follows).
    // Lesson steps go through here too (lesson_session.h).
    bool applySession(const Session &session);
    bool saveSession(const QString &path, QString *error);
    Session currentSession() const;
    // Token positions selected in the chips (outlined on the head map); saved in sessions.
    QVector<qint64> selectedTokens() const;
    void setSelectedTokens(const QVector<qint64> &positions);
    QListView *chipView() const { return m_chipView; }
    QTabWidget *tabs() const { return m_tabs; }
    LessonMode *lessonMode() const { return m_lessonMode; }
    bool exportCurrentView(const QString &path, const FigureOptions &options, QString *error);
    bool exportLayerGrid(const QString &path, const FigureOptions &options, QString *error);
    bool exportCurrentData(const QString &path, QString *error);
    // Title and caption for a figure of the current view (model, prompt, settings).
    FigureOptions defaultFigureOptions() const;
    void addView(AnalysisView *view);
    void showView(const QString &viewId);
    void setTheme(Theme theme);
    void setPresenterMode(bool on);
    void setColourMap(ColourMap map);

    ComputeBridge *bridge() const { return m_run->bridge(); }
    std::shared_ptr<const Model> model() const { return m_run->model(); }
    std::shared_ptr<const RunSnapshot> snapshot() const { return m_run->snapshot(); }
    const std::vector<int64_t> &promptTokens() const { return m_run->tokens(); }
    QPlainTextEdit *promptEditor() const { return m_prompt; }
    QCheckBox *bosToggle() const { return m_bosBox; }
    TokenChipModel *chipModel() const { return m_chips; }
    OverviewView *overviewView() const { return m_overview; }
    HeadView *headView() const { return m_headView; }
    TokenView *tokenView() const { return m_tokenView; }
    MetricsView *metricsView() const { return m_metricsView; }
    CompareView *compareView() const { return m_compareView; }
    OutputsView *outputsView() const { return m_outputs; }
    MessageBar *messageBar() const { return m_messages; }
    QString shortcutsText() const;

signals:
    void modelReady();
    void snapshotShown();
    void sessionApplied();

protected:
    void dragEnterEvent(QDragEnterEvent *event) override;
    void dropEvent(QDropEvent *event) override;
    void closeEvent(QCloseEvent *event) override;

private:
    void buildLayout();
    void connectWork();
    void connectViews();
    void start();
    void buildMenus();
    void buildModelsMenu();
    void openModelFileDialog();
    void openModelFolderDialog();
    void buildModelBar();
    QWidget *buildPromptPanel();
    void onModelLoaded();
    void onSnapshotReady();
    void onFailed(const QString &tag, const QString &what, const QString &message);
    void retokenize();
    // Marks the run's detected sinks in the chips when they show the run's tokens.
    void updateSinkChips();
    void updateModelBar();
    void rebuildDeviceBox(); // from the controller's devices
    void syncDeviceBox();
    // Opens the session or model of the options, once the devices are known.
    void startLoading();
    void updateBusy(bool busy);
    void addRecent(const QString &path);
    void rebuildRecentMenu();
    void applyStyle();
    void exportViewInteractive();
    void exportGridInteractive();
    void exportDataInteractive();
    void saveSettings() const;
    void restoreSettings();
    AnalysisView *currentView() const;
    void startGenerate();
    bool isCurrentModel(const QString &path) const;
    void restoreSessionViews(const Session &session);
    // The loaded archive and what it was converted from: a deletion or a change on disk is reported (the
    // loaded copy stays in use).
    void watchModelFiles();
    void onModelFileChanged(const QString &path);

    MainWindowOptions m_options;
    QFileSystemWatcher *m_modelWatcher = nullptr;
    QString m_settingsProblem; // an unreadable settings file, reported once the first model is in
    RunController *m_run = nullptr;
    std::optional<Session> m_pendingSession; // applied when its run arrives
    LessonMode *m_lessonMode = nullptr;
    bool m_runFromSession = false;

    MessageBar *m_messages = nullptr;
    QLabel *m_modelName = nullptr;
    QLabel *m_modelDetails = nullptr;
    QComboBox *m_deviceBox = nullptr;
    QToolButton *m_recentButton = nullptr;
    QMenu *m_recentMenu = nullptr;
    QMenu *m_modelsMenu = nullptr;
    bool m_termsAccepted = false; // without settings: for this window's life
    QPlainTextEdit *m_prompt = nullptr;
    QCheckBox *m_bosBox = nullptr;
    QCheckBox *m_autoRunBox = nullptr;
    QPushButton *m_runButton = nullptr;
    QLabel *m_tokenCount = nullptr;
    QListView *m_chipView = nullptr;
    TokenChipModel *m_chips = nullptr;
    QTabWidget *m_tabs = nullptr;
    QSplitter *m_splitter = nullptr;
    OverviewView *m_overview = nullptr;
    HeadView *m_headView = nullptr;
    TokenView *m_tokenView = nullptr;
    MetricsView *m_metricsView = nullptr;
    CompareView *m_compareView = nullptr;
    OutputsView *m_outputs = nullptr;
    QList<AnalysisView *> m_views;
    QProgressBar *m_progress = nullptr;
    QPushButton *m_cancelButton = nullptr;
    QLabel *m_statusLabel = nullptr;
    QString m_progressLabel; // the last progress stage shown in m_statusLabel
    QAction *m_darkAction = nullptr;
    QAction *m_presenterAction = nullptr;
    QList<QAction *> m_mapActions;
    QTimer m_tokenizeTimer;
    QTimer m_runTimer;
    QTimer m_progressDelay;
    Theme m_theme = Theme::Light;
    bool m_presenter = false;
    ColourMap m_colourMap = ColourMap::Viridis;
};

} // namespace sinkscope::ui
