#include "main_window.h"

#include "compare_view.h"
#include "head_view.h"
#include "heatmap_plot.h"
#include "lesson_mode.h"
#include "metrics_view.h"
#include "mitigation_view.h"
#include "model_catalog.h"
#include "overview_view.h"
#include "probes_panel.h"
#include "streaming_view.h"
#include "token_chips.h"
#include "token_view.h"

#include "sinkscope/config.h"
#include "sinkscope/runtime/paths.h"

#include <qcustomplot.h>

#include <QAction>
#include <QActionGroup>
#include <QApplication>
#include <QCheckBox>
#include <QCloseEvent>
#include <QComboBox>
#include <QDialog>
#include <QDialogButtonBox>
#include <QDir>
#include <QDragEnterEvent>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QFileSystemWatcher>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QJsonDocument>
#include <QLabel>
#include <QLineEdit>
#include <QListView>
#include <QMenu>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>
#include <QSplitter>
#include <QStandardItemModel>
#include <QStatusBar>
#include <QTabWidget>
#include <QTextBrowser>
#include <QToolBar>
#include <QToolButton>
#include <QVBoxLayout>

namespace sinkscope::ui {

namespace {

constexpr int kMaxRecent = 8;

// What the window opens as a model: an archive or TorchScript file, a GGUF file, or a Hugging Face
// folder (with config.json) or that config.json.
bool isModelFile(const QString &path)
{
    const QFileInfo info(path);
    if (info.isDir()) {
        return QFileInfo::exists(info.absoluteFilePath() + QStringLiteral("/config.json"));
    }
    const QString s = info.suffix().toLower();
    return s == QLatin1String("pt") || s == QLatin1String("gguf") || s == QLatin1String("ts") ||
           info.fileName() == QLatin1String("config.json");
}

} // namespace

MessageBar::MessageBar(QWidget *parent) : QWidget(parent)
{
    auto *layout = new QHBoxLayout(this);
    layout->setContentsMargins(8, 4, 4, 4);
    m_label = new QLabel(this);
    m_label->setWordWrap(true);
    m_label->setTextInteractionFlags(Qt::TextSelectableByMouse);
    auto *close = new QToolButton(this);
    close->setText(QStringLiteral("\u2715"));
    close->setAutoRaise(true);
    close->setToolTip(tr("Dismiss"));
    layout->addWidget(m_label, 1);
    layout->addWidget(close);
    connect(close, &QToolButton::clicked, this, &QWidget::hide);
    setAutoFillBackground(true);
    hide();
}

void MessageBar::show(const QString &text, bool error)
{
    m_error = error;
    m_label->setText(text);
    QPalette p = palette();
    p.setColor(QPalette::Window, error ? QColor(0xf8, 0xd7, 0xda) : QColor(0xd9, 0xed, 0xf7));
    p.setColor(QPalette::WindowText, error ? QColor(0x72, 0x1c, 0x24) : QColor(0x0c, 0x3c, 0x60));
    setPalette(p);
    m_label->setPalette(p);
    QWidget::show();
}

void MessageBar::showError(const QString &text)
{
    show(text, true);
}

void MessageBar::showInfo(const QString &text)
{
    show(text, false);
}

QString MessageBar::text() const
{
    return isVisibleTo(parentWidget()) ? m_label->text() : QString();
}

std::vector<int64_t> MainWindow::parseTokenIds(const QString &text)
{
    return RunController::parseTokenIds(text);
}

QString MainWindow::defaultPrompt()
{
    return QStringLiteral("The capital of France is Paris. The capital of Germany is");
}

MainWindow::MainWindow(MainWindowOptions options, QWidget *parent) : QMainWindow(parent), m_options(std::move(options))
{
    setWindowTitle(QStringLiteral("SinkScope"));
    setAcceptDrops(true);
    m_run = new RunController(m_options.mapTokens, this);
    m_chips = new TokenChipModel(this);

    buildLayout();
    connectWork();
    connectViews();
    start();
}

// The model bar, the prompt panel above the views, the output panel, the status bar and the menus.
void MainWindow::buildLayout()
{
    buildModelBar();
    auto *central = new QWidget(this);
    auto *layout = new QVBoxLayout(central);
    layout->setContentsMargins(6, 6, 6, 6);
    m_messages = new MessageBar(central);
    layout->addWidget(m_messages);
    m_splitter = new QSplitter(Qt::Vertical, central);
    m_splitter->addWidget(buildPromptPanel());
    auto *lower = new QSplitter(Qt::Horizontal, m_splitter);
    m_tabs = new QTabWidget(lower);
    m_overview = new OverviewView;
    m_headView = new HeadView;
    m_tokenView = new TokenView;
    m_outputs = new OutputsView;
    addView(m_overview);
    addView(m_headView);
    addView(m_tokenView);
    m_metricsView = new MetricsView;
    addView(m_metricsView);
    addView(new MitigationView(m_run->bridge(), [this] { return m_run->model(); }));
    addView(new ProbesView(
        m_run->bridge(), [this] { return m_run->model(); },
        [this] {
            auto *m = findChild<MitigationView *>();
            return m ? m->canonicalSpec() : QString();
        },
        m_prompt, [this] { runPrompt(); }));
    m_compareView = new CompareView(
        m_run->bridge(), [this] { return m_run->model(); }, [this] { return m_prompt->toPlainText(); },
        [this] { return m_run->deviceId(); });
    addView(m_compareView);
    connect(m_compareView, &CompareView::failed, m_messages, &MessageBar::showError);
    connect(m_compareView, &CompareView::comparisonShown, this, [this] {
        m_statusLabel->setText(tr("Comparison shown: %1 models").arg(m_compareView->result()->entries().size()));
    });
    addView(new StreamingView(m_run->bridge(), [this] { return m_run->model(); }));
    m_views.append(m_outputs);
    lower->addWidget(m_tabs);
    lower->addWidget(m_outputs);
    lower->setStretchFactor(0, 3);
    lower->setStretchFactor(1, 1);
    m_splitter->addWidget(lower);
    m_splitter->setStretchFactor(0, 0);
    m_splitter->setStretchFactor(1, 1);
    layout->addWidget(m_splitter, 1);
    setCentralWidget(central);

    m_statusLabel = new QLabel(this);
    m_progress = new QProgressBar(this);
    m_progress->setMaximumWidth(220);
    m_progress->setTextVisible(true);
    m_cancelButton = new QPushButton(tr("Cancel"), this);
    m_cancelButton->setToolTip(tr("Cancel the model work in progress (Esc)"));
    statusBar()->addWidget(m_statusLabel, 1);
    statusBar()->addPermanentWidget(m_progress);
    statusBar()->addPermanentWidget(m_cancelButton);
    m_progress->hide();
    m_cancelButton->hide();

    buildMenus();
}

// Typing, running, progress and cancel, and what the run controller reports.
void MainWindow::connectWork()
{
    m_tokenizeTimer.setSingleShot(true);
    m_tokenizeTimer.setInterval(120);
    m_runTimer.setSingleShot(true);
    m_runTimer.setInterval(500);
    // Quick jobs finish without a flicker of progress widgets.
    m_progressDelay.setSingleShot(true);
    m_progressDelay.setInterval(200);
    connect(&m_tokenizeTimer, &QTimer::timeout, this, &MainWindow::retokenize);
    connect(&m_runTimer, &QTimer::timeout, this, &MainWindow::runPrompt);
    connect(&m_progressDelay, &QTimer::timeout, this, [this] {
        if (bridge()->isBusy()) {
            m_progress->show();
            m_cancelButton->show();
        }
    });
    connect(m_prompt, &QPlainTextEdit::textChanged, this, [this] {
        m_tokenizeTimer.start();
        if (m_autoRunBox->isChecked()) {
            m_runTimer.start();
        }
    });
    connect(m_bosBox, &QCheckBox::toggled, this, [this] {
        retokenize();
        if (m_autoRunBox->isChecked()) {
            m_runTimer.start();
        }
    });
    connect(m_cancelButton, &QPushButton::clicked, this, [this] { bridge()->cancelAll(); });
    connect(m_run, &RunController::modelLoaded, this, &MainWindow::onModelLoaded);
    connect(m_run, &RunController::snapshotReady, this, &MainWindow::onSnapshotReady);
    connect(m_run, &RunController::failed, this, &MainWindow::onFailed);
    connect(m_run, &RunController::notice, m_messages, &MessageBar::showInfo);
    connect(m_run, &RunController::deviceChanged, this, &MainWindow::rebuildDeviceBox);
    connect(bridge(), &ComputeBridge::busyChanged, this, &MainWindow::updateBusy);
    connect(bridge(), &ComputeBridge::progress, this, [this](const QString &, double fraction, const QString &label) {
        if (fraction < 0) {
            m_progress->setRange(0, 0);
        } else {
            m_progress->setRange(0, 1000);
            m_progress->setValue(int(fraction * 1000));
        }
        m_progress->setFormat(label.left(40));
        m_statusLabel->setText(label);
        m_progressLabel = label;
    });
    connect(m_run, &RunController::modelHashed, this, [this] { updateModelBar(); });
    connect(m_run, &RunController::continuationChanged, this,
            [this] { m_outputs->setContinuation(m_run->continuationText()); });
    connect(m_run, &RunController::continuationFinished, this, [this] { m_outputs->setContinuationBusy(false); });
}

// The views' links to each other: a head picked in the overview or the metrics opens in the head view.
void MainWindow::connectViews()
{
    connect(m_outputs, &OutputsView::generateRequested, this, &MainWindow::startGenerate);
    connect(m_overview, &OverviewView::headActivated, this, [this](int64_t layer, int64_t head) {
        m_headView->showHead(layer, head);
        showView(QStringLiteral("head"));
    });
    connect(m_metricsView, &MetricsView::headActivated, this, [this](int64_t layer, int64_t head) {
        m_headView->showHead(layer, head);
        showView(QStringLiteral("head"));
    });
    connect(m_headView, &HeadView::headMapWanted, m_run, &RunController::requestHeadMap);
    connect(m_run, &RunController::headMapReady, this,
            [this](std::shared_ptr<const RunSnapshot> snapshot, int64_t layer, int64_t head,
                   std::shared_ptr<const FloatArray> map) {
                m_headView->setHeadMap(snapshot, layer, head, std::move(map));
                m_statusLabel->setText(
                    tr("Map of layer %1, head %2 computed from the kept queries and keys").arg(layer).arg(head));
            });
    connect(m_headView, &HeadView::headChanged, this, [this](int64_t layer, int64_t) {
        if (m_tokenView->layer() >= 0) {
            m_tokenView->setLayer(layer);
        }
    });
    connect(m_tokenView, &TokenView::valuesChanged, this, [this](const std::vector<float> &values) {
        float hi = 0;
        for (float v : values) {
            hi = std::max(hi, v);
        }
        std::vector<float> weights(values);
        for (float &w : weights) {
            w = hi > 0 ? w / hi : 0;
        }
        m_chips->setWeights(std::move(weights));
    });
}

// Saved settings and the prompt, then the devices and the first model (or session).
void MainWindow::start()
{
    if (m_options.useSettings) {
        restoreSettings();
    }
    if (m_prompt->toPlainText().isEmpty()) {
        const QSignalBlocker block(m_prompt);
        m_prompt->setPlainText(m_options.prompt.isEmpty() ? defaultPrompt() : m_options.prompt);
    }
    if (!m_options.prompt.isEmpty()) {
        const QSignalBlocker block(m_prompt);
        m_prompt->setPlainText(m_options.prompt);
    }
    applyStyle();
    resize(1400, 900);
    if (m_options.devices) {
        m_run->setDevices(*m_options.devices);
        startLoading();
    } else {
        // Queued before the model, so it loads on the saved device once the list is known.
        bridge()->submit<std::vector<DeviceInfo>>(
            QString::fromLatin1(ComputeBridge::kDevicesTag), tr("Looking for GPUs"),
            [](const CancelToken &, const ProgressCallback &) -> Result<std::vector<DeviceInfo>> {
                return availableDevices();
            },
            [this](std::shared_ptr<const std::vector<DeviceInfo>> devices) {
                m_run->setDevices(*devices);
                startLoading();
            });
    }
}

void MainWindow::startLoading()
{
    if (!m_options.lesson.isEmpty()) {
        connect(
            this, &MainWindow::snapshotShown, this, [this] { m_lessonMode->open(m_options.lesson); },
            Qt::SingleShotConnection);
    }
    if (!m_options.sessionPath.isEmpty()) {
        openSession(m_options.sessionPath);
    } else {
        openModel(m_options.modelPath);
    }
}

void MainWindow::rebuildDeviceBox()
{
    auto *items = new QStandardItemModel(m_deviceBox);
    auto gib = [](int64_t bytes) { return QString::number(double(bytes) / (1024.0 * 1024.0 * 1024.0), 'f', 1); };
    for (const DeviceInfo &d : m_run->devices()) {
        const QString id = QString::fromStdString(d.id);
        QString text = d.kind == DeviceKind::Cpu ? tr("CPU") : tr("GPU %1").arg(id);
        QStringList tip{QString::fromStdString(d.name)};
        if (d.totalMemory > 0) {
            tip << (d.freeMemory > 0 ? tr("%1 GiB memory, %2 GiB free").arg(gib(d.totalMemory), gib(d.freeMemory))
                                     : tr("%1 GiB memory").arg(gib(d.totalMemory)));
        }
        if (d.kind == DeviceKind::Cuda) {
            tip << tr("compute capability %1.%2").arg(d.computeMajor).arg(d.computeMinor)
                << tr("runs the model: %1; SinkScope kernels: %2")
                       .arg(d.runsModel ? tr("yes") : tr("no"), d.kernels ? tr("yes") : tr("no"));
            if (!d.runsModel) {
                text += d.kernels ? tr(" (kernels only)") : tr(" (unavailable)");
            }
        }
        if (!d.note.empty()) {
            tip << QString::fromStdString(d.note);
        }
        if (d.kind == DeviceKind::Cuda && !d.runsModel && d.kernels) {
            tip << tr("The window analyses where the model runs; sinkscope-cli analyze --device %1 uses the kernels.")
                       .arg(id);
        }
        auto *item = new QStandardItem(text);
        item->setData(id, Qt::UserRole);
        item->setToolTip(tip.join(QLatin1Char('\n')));
        if (!d.runsModel) {
            item->setFlags(item->flags() & ~Qt::ItemIsEnabled);
        }
        items->appendRow(item);
    }
    const QSignalBlocker block(m_deviceBox);
    m_deviceBox->setModel(items);
    syncDeviceBox();
}

void MainWindow::syncDeviceBox()
{
    const QSignalBlocker block(m_deviceBox);
    const int index = m_deviceBox->findData(m_run->deviceId(), Qt::UserRole);
    m_deviceBox->setCurrentIndex(std::max(0, index));
    if (index >= 0) {
        m_deviceBox->setToolTip(
            tr("Where the model runs\n%1").arg(m_deviceBox->itemData(index, Qt::ToolTipRole).toString()));
    }
}

void MainWindow::chooseDevice(const QString &id)
{
    if (const QString refused = m_run->chooseDevice(id); !refused.isEmpty()) {
        m_messages->showError(refused);
        syncDeviceBox();
    }
}

MainWindow::~MainWindow()
{
    // Stop model work before the views (and the snapshot they share) go away.
    bridge()->cancelAll();
}

void MainWindow::buildModelBar()
{
    auto *bar = addToolBar(tr("Model"));
    bar->setObjectName(QStringLiteral("modelBar"));
    bar->setMovable(false);
    auto *open = new QPushButton(tr("Open model\u2026"), bar);
    open->setToolTip(tr("Open a SinkScope (.pt), TorchScript or GGUF model (Ctrl+O); or drop a file or a Hugging "
                        "Face folder on the window"));
    connect(open, &QPushButton::clicked, this, &MainWindow::openModelFileDialog);
    auto *openFolder = new QPushButton(tr("Open model folder\u2026"), bar);
    openFolder->setToolTip(tr("Open a Hugging Face model folder (config.json, model.safetensors, tokenizer.json), "
                              "converted once into the cache (Ctrl+Shift+M)"));
    connect(openFolder, &QPushButton::clicked, this, &MainWindow::openModelFolderDialog);
    bar->addWidget(open);
    bar->addWidget(openFolder);
    m_recentButton = new QToolButton(bar);
    m_recentButton->setText(tr("Recent"));
    m_recentButton->setPopupMode(QToolButton::InstantPopup);
    m_recentMenu = new QMenu(m_recentButton);
    m_recentButton->setMenu(m_recentMenu);
    bar->addWidget(m_recentButton);
    bar->addSeparator();
    m_modelName = new QLabel(tr("No model"), bar);
    QFont bold = m_modelName->font();
    bold.setBold(true);
    m_modelName->setFont(bold);
    m_modelName->setContentsMargins(8, 0, 8, 0);
    bar->addWidget(m_modelName);
    m_modelDetails = new QLabel(bar);
    m_modelDetails->setTextInteractionFlags(Qt::TextSelectableByMouse);
    bar->addWidget(m_modelDetails);
    bar->addSeparator();
    auto *deviceLabel = new QLabel(tr("Device"), bar);
    deviceLabel->setContentsMargins(8, 0, 4, 0);
    bar->addWidget(deviceLabel);
    m_deviceBox = new QComboBox(bar);
    m_deviceBox->setObjectName(QStringLiteral("deviceBox"));
    m_deviceBox->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    m_deviceBox->addItem(tr("CPU"), QStringLiteral("cpu"));
    deviceLabel->setBuddy(m_deviceBox);
    connect(m_deviceBox, &QComboBox::activated, this,
            [this](int index) { chooseDevice(m_deviceBox->itemData(index, Qt::UserRole).toString()); });
    bar->addWidget(m_deviceBox);
}

QWidget *MainWindow::buildPromptPanel()
{
    auto *panel = new QWidget;
    auto *layout = new QVBoxLayout(panel);
    layout->setContentsMargins(0, 0, 0, 0);
    auto *row = new QHBoxLayout;
    m_prompt = new QPlainTextEdit(panel);
    m_prompt->setPlaceholderText(tr("Type a prompt"));
    m_prompt->setMaximumHeight(90);
    m_prompt->setTabChangesFocus(true);
    row->addWidget(m_prompt, 1);
    auto *side = new QVBoxLayout;
    m_runButton = new QPushButton(tr("Run"), panel);
    m_runButton->setToolTip(tr("Run the prompt (Ctrl+Return)"));
    m_runButton->setDefault(true);
    m_bosBox = new QCheckBox(tr("Prepend BOS"), panel);
    m_bosBox->setToolTip(tr("Put the tokenizer's beginning-of-sequence token first (set to the model's own "
                            "policy, add_bos_token, whenever a model is loaded)"));
    m_bosBox->setChecked(true);
    m_autoRunBox = new QCheckBox(tr("Run as I type"), panel);
    m_autoRunBox->setChecked(m_options.autoRun);
    side->addWidget(m_runButton);
    side->addWidget(m_bosBox);
    side->addWidget(m_autoRunBox);
    side->addStretch(1);
    row->addLayout(side);
    layout->addLayout(row);
    auto *chipsRow = new QHBoxLayout;
    m_tokenCount = new QLabel(panel);
    m_tokenCount->setMinimumWidth(80);
    m_chipView = new QListView(panel);
    m_chipView->setModel(m_chips);
    m_chipView->setItemDelegate(new TokenChipDelegate(m_chipView));
    m_chipView->setFlow(QListView::LeftToRight);
    m_chipView->setWrapping(true);
    m_chipView->setResizeMode(QListView::Adjust);
    m_chipView->setUniformItemSizes(false);
    m_chipView->setSelectionMode(QAbstractItemView::MultiSelection);
    m_chipView->setMaximumHeight(84);
    m_chipView->setFrameShape(QFrame::NoFrame);
    m_chipView->setToolTip(
        tr("Tokens as the model sees them; hover a chip for its id, click to select it (outlined on the head map)"));
    chipsRow->addWidget(m_tokenCount);
    chipsRow->addWidget(m_chipView, 1);
    layout->addLayout(chipsRow);
    connect(m_runButton, &QPushButton::clicked, this, &MainWindow::runPrompt);
    connect(m_chipView->selectionModel(), &QItemSelectionModel::selectionChanged, this, [this] {
        const QVector<qint64> chosen = selectedTokens();
        m_headView->heatmap()->setHighlightedTokens({chosen.begin(), chosen.end()});
    });
    return panel;
}

void MainWindow::buildMenus()
{
    QMenu *file = menuBar()->addMenu(tr("&File"));
    QAction *open = file->addAction(tr("Open &model\u2026"), this, &MainWindow::openModelFileDialog);
    open->setShortcut(QKeySequence::Open);
    file->addAction(tr("Open model &folder\u2026"), QKeySequence(QStringLiteral("Ctrl+Shift+M")), this,
                    &MainWindow::openModelFolderDialog);
    file->addAction(tr("&Compare with models…"), QKeySequence(QStringLiteral("Ctrl+Shift+C")), this, [this] {
        showView(QStringLiteral("compare"));
        m_compareView->openModelsDialog();
    });
    file->addAction(tr("Compare with a model fo&lder…"), this, [this] {
        showView(QStringLiteral("compare"));
        m_compareView->openFolderDialog();
    });
    QMenu *recent = file->addMenu(tr("Open &recent"));
    connect(m_recentMenu, &QMenu::aboutToShow, this, &MainWindow::rebuildRecentMenu);
    connect(recent, &QMenu::aboutToShow, this, [this, recent] {
        rebuildRecentMenu();
        recent->clear();
        recent->addActions(m_recentMenu->actions());
    });
    file->addAction(tr("Open &session\u2026"), QKeySequence(QStringLiteral("Ctrl+Shift+O")), this, [this] {
        const QString path =
            QFileDialog::getOpenFileName(this, tr("Open session"), QString(), tr("SinkScope sessions (*.json)"));
        if (!path.isEmpty()) {
            openSession(path);
        }
    });
    file->addAction(tr("&Save session\u2026"), QKeySequence::Save, this, [this] {
        const QString path = QFileDialog::getSaveFileName(this, tr("Save session"), QStringLiteral("session.json"),
                                                          tr("SinkScope sessions (*.json)"));
        QString error;
        if (!path.isEmpty() && !saveSession(path, &error)) {
            m_messages->showError(error);
        }
    });
    file->addSeparator();
    file->addAction(tr("&Export view\u2026"), QKeySequence(QStringLiteral("Ctrl+E")), this,
                    &MainWindow::exportViewInteractive);
    file->addAction(tr("Export all &heads of the layer\u2026"), QKeySequence(QStringLiteral("Ctrl+Shift+E")), this,
                    &MainWindow::exportGridInteractive);
    file->addAction(tr("Export view &data (CSV/JSON)\u2026"), QKeySequence(QStringLiteral("Ctrl+Alt+E")), this,
                    &MainWindow::exportDataInteractive);
    file->addSeparator();
    file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);

    buildModelsMenu();

    QMenu *run = menuBar()->addMenu(tr("&Run"));
    QAction *runAction = run->addAction(tr("&Run prompt"), this, &MainWindow::runPrompt);
    runAction->setShortcuts({QKeySequence(QStringLiteral("Ctrl+Return")), QKeySequence(QStringLiteral("Ctrl+Enter"))});
    run->addAction(tr("&Generate continuation"), QKeySequence(QStringLiteral("Ctrl+G")), this,
                   &MainWindow::startGenerate);
    run->addAction(tr("&Cancel"), QKeySequence(Qt::Key_Escape), this, [this] { bridge()->cancelAll(); });

    QMenu *view = menuBar()->addMenu(tr("&View"));
    view->addAction(tr("&Overview"), QKeySequence(QStringLiteral("Ctrl+1")), this,
                    [this] { showView(QStringLiteral("overview")); });
    view->addAction(tr("&Head"), QKeySequence(QStringLiteral("Ctrl+2")), this,
                    [this] { showView(QStringLiteral("head")); });
    view->addAction(tr("&Tokens"), QKeySequence(QStringLiteral("Ctrl+3")), this,
                    [this] { showView(QStringLiteral("tokens")); });
    view->addAction(tr("&Metrics"), QKeySequence(QStringLiteral("Ctrl+4")), this,
                    [this] { showView(QStringLiteral("metrics")); });
    view->addAction(tr("&Compare"), QKeySequence(QStringLiteral("Ctrl+5")), this,
                    [this] { showView(QStringLiteral("compare")); });
    view->addSeparator();
    view->addAction(tr("Next head"), QKeySequence(QStringLiteral("Alt+Right")), this,
                    [this] { m_headView->stepHead(+1); });
    view->addAction(tr("Previous head"), QKeySequence(QStringLiteral("Alt+Left")), this,
                    [this] { m_headView->stepHead(-1); });
    view->addAction(tr("Next layer"), QKeySequence(QStringLiteral("Alt+Down")), this,
                    [this] { m_headView->stepLayer(+1); });
    view->addAction(tr("Previous layer"), QKeySequence(QStringLiteral("Alt+Up")), this,
                    [this] { m_headView->stepLayer(-1); });
    view->addSeparator();
    QMenu *maps = view->addMenu(tr("Colour &map"));
    auto *mapGroup = new QActionGroup(this);
    const QStringList names = colourMapNames();
    for (int i = 0; i < names.size(); ++i) {
        QAction *a = maps->addAction(names[i], this, [this, i] { setColourMap(static_cast<ColourMap>(i)); });
        a->setCheckable(true);
        a->setChecked(i == int(m_colourMap));
        mapGroup->addAction(a);
        m_mapActions << a;
    }
    m_darkAction = view->addAction(tr("&Dark palette"), QKeySequence(QStringLiteral("Ctrl+Shift+D")), this,
                                   [this](bool on) { setTheme(on ? Theme::Dark : Theme::Light); });
    m_darkAction->setCheckable(true);
    m_presenterAction = view->addAction(tr("&Presenter mode"), QKeySequence(Qt::Key_F5), this,
                                        [this](bool on) { setPresenterMode(on); });
    m_presenterAction->setCheckable(true);

    m_lessonMode = new LessonMode(this);
    m_lessonMode->buildMenu(menuBar()->addMenu(tr("&Lessons")));

    QMenu *help = menuBar()->addMenu(tr("&Help"));
    help->addAction(tr("&Keyboard shortcuts"), QKeySequence::HelpContents, this,
                    [this] { QMessageBox::information(this, tr("Keyboard shortcuts"), shortcutsText()); });
    help->addAction(tr("Gemma Terms of Use\u2026"), this, [this] { showGemmaTerms(false); })
        ->setEnabled(!modelCatalog().back().termsPath.isEmpty());
    help->addAction(tr("&About SinkScope"), this, [this] {
        QMessageBox::about(this, tr("About SinkScope"),
                           tr("<b>SinkScope %1</b><br>Attention sinks, layer by layer and head by head. Runs offline.")
                               .arg(QStringLiteral(SINKSCOPE_VERSION)));
    });
}

void MainWindow::openModelFileDialog()
{
    const QString path =
        QFileDialog::getOpenFileName(this, tr("Open model"), QFileInfo(m_run->modelPath()).absolutePath(),
                                     tr("Models (*.pt *.ts *.gguf config.json);;All files (*)"));
    if (!path.isEmpty()) {
        openModel(path);
    }
}

void MainWindow::openModelFolderDialog()
{
    const QString dir = QFileDialog::getExistingDirectory(this, tr("Open Hugging Face model folder"),
                                                          QFileInfo(m_run->modelSource()).absolutePath());
    if (!dir.isEmpty()) {
        openModel(dir);
    }
}

// The installed models; Gemma 3 only when tools/setup.sh put it there (else disabled, saying how).
void MainWindow::buildModelsMenu()
{
    m_modelsMenu = menuBar()->addMenu(tr("M&odels"));
    m_modelsMenu->setToolTipsVisible(true);
    const std::vector<CatalogEntry> entries = modelCatalog();
    for (const CatalogEntry &e : entries) {
        QAction *a = m_modelsMenu->addAction(e.title, this, [this, id = e.id] { openCatalogModel(id); });
        a->setObjectName(QStringLiteral("model-") + e.id);
        a->setEnabled(e.available);
        a->setToolTip(e.toolTip);
    }
    m_modelsMenu->addSeparator();
    QAction *terms = m_modelsMenu->addAction(tr("Gemma Terms of Use\u2026"), this, [this] { showGemmaTerms(false); });
    terms->setObjectName(QStringLiteral("gemma-terms"));
    const bool haveTerms = entries.size() > 1 && !entries[1].termsPath.isEmpty();
    terms->setEnabled(haveTerms);
    terms->setToolTip(haveTerms ? entries[1].termsPath : tr("Installed with Gemma 3 270M by tools/setup.sh"));
}

bool MainWindow::gemmaTermsAccepted() const
{
    if (m_termsAccepted) {
        return true;
    }
    return m_options.useSettings && ::sinkscope::ui::gemmaTermsAccepted(QSettings());
}

bool MainWindow::showGemmaTerms(bool forLoading)
{
    const std::vector<CatalogEntry> entries = modelCatalog();
    const QString termsPath = entries.size() > 1 ? entries[1].termsPath : QString();
    const bool already = gemmaTermsAccepted();
    bool accepted = already;
    if (m_options.askTerms) {
        accepted = m_options.askTerms(termsPath) || already;
    } else {
        QDialog dialog(this);
        dialog.setWindowTitle(tr("Gemma Terms of Use"));
        dialog.resize(760, 640);
        auto *layout = new QVBoxLayout(&dialog);
        auto *intro = new QLabel(already || !forLoading
                                     ? tr("Gemma 3 270M is provided under and subject to the Gemma Terms of Use.")
                                     : tr("Gemma 3 270M is provided under and subject to the Gemma Terms of Use. "
                                          "Accept them to load the model."),
                                 &dialog);
        intro->setWordWrap(true);
        layout->addWidget(intro);
        auto *text = new QTextBrowser(&dialog);
        text->setOpenExternalLinks(true);
        text->setHtml(readTermsHtml(termsPath));
        layout->addWidget(text, 1);
        auto *buttons = new QDialogButtonBox(&dialog);
        if (already) {
            buttons->addButton(QDialogButtonBox::Close);
            connect(buttons, &QDialogButtonBox::rejected, &dialog, &QDialog::reject);
        } else {
            buttons->addButton(tr("Accept"), QDialogButtonBox::AcceptRole);
            buttons->addButton(QDialogButtonBox::Cancel);
            connect(buttons, &QDialogButtonBox::accepted, &dialog, &QDialog::accept);
            connect(buttons, &QDialogButtonBox::rejected, &dialog, &QDialog::reject);
        }
        layout->addWidget(buttons);
        accepted = dialog.exec() == QDialog::Accepted || already;
    }
    if (accepted && !already) {
        m_termsAccepted = true;
        if (m_options.useSettings) {
            QSettings settings;
            setGemmaTermsAccepted(settings, true);
        }
    }
    return accepted;
}

bool MainWindow::openCatalogModel(const QString &id)
{
    for (const CatalogEntry &e : modelCatalog()) {
        if (e.id != id) {
            continue;
        }
        if (!e.available) {
            m_messages->showError(e.toolTip);
            return false;
        }
        if (e.id == QLatin1String("gemma3") && !gemmaTermsAccepted() && !showGemmaTerms(true)) {
            m_statusLabel->setText(tr("Gemma 3 270M not loaded: its terms of use were not accepted."));
            return false;
        }
        openModel(e.path);
        return true;
    }
    return false;
}

QString MainWindow::shortcutsText() const
{
    QStringList lines;
    const auto menus = menuBar()->findChildren<QMenu *>();
    for (const QMenu *menu : menus) {
        for (const QAction *a : menu->actions()) {
            if (!a->shortcut().isEmpty()) {
                lines << QStringLiteral("%1\t%2").arg(a->shortcut().toString(QKeySequence::NativeText),
                                                      a->text().remove(QLatin1Char('&')));
            }
        }
    }
    lines.removeDuplicates();
    lines << tr("Left / Right\tprevious / next head (head map focused)")
          << tr("Up / Down\tprevious / next layer (head map focused)") << tr("Home, double-click\treset zoom")
          << tr("Mouse wheel, drag\tzoom, pan");
    return lines.join(QLatin1Char('\n'));
}

void MainWindow::addView(AnalysisView *view)
{
    m_views.append(view);
    m_tabs->addTab(view, view->viewTitle());
    view->setPlotStyle(plotStyle(m_theme, m_presenter));
    view->setColourMap(m_colourMap);
    if (snapshot()) {
        view->setSnapshot(snapshot());
    }
}

void MainWindow::showView(const QString &viewId)
{
    for (int i = 0; i < m_tabs->count(); ++i) {
        if (auto *v = qobject_cast<AnalysisView *>(m_tabs->widget(i)); v && v->viewId() == viewId) {
            m_tabs->setCurrentIndex(i);
            v->setFocus();
            return;
        }
    }
}

AnalysisView *MainWindow::currentView() const
{
    return qobject_cast<AnalysisView *>(m_tabs->currentWidget());
}

void MainWindow::openModel(const QString &path)
{
    m_runTimer.stop();
    m_statusLabel->setText(path.isEmpty()            ? tr("Loading the default model\u2026")
                           : QFileInfo(path).isDir() ? tr("Converting and loading the folder %1\u2026").arg(path)
                                                     : tr("Loading %1\u2026").arg(QFileInfo(path).fileName()));
    m_run->loadModel(path);
}

void MainWindow::onModelLoaded()
{
    const auto model = m_run->model();
    const QString path = m_run->modelPath();
    for (AnalysisView *v : m_views) {
        v->setSnapshot(nullptr);
    }
    // What the user opened (a folder, a GGUF file), so that reopening converts again if it changed.
    addRecent(m_run->modelSource().isEmpty() ? path : m_run->modelSource());
    updateModelBar();
    if (!model->info().limitation.empty()) {
        m_messages->showInfo(QString::fromStdString(model->info().limitation));
    } else if (!m_messages->isError()) {
        m_messages->hide();
    }
    m_statusLabel->setText(tr("Loaded %1").arg(path));
    if (!m_settingsProblem.isEmpty()) {
        m_messages->showInfo(m_settingsProblem); // a notice: a run does not clear it
        m_settingsProblem.clear();
    }
    watchModelFiles();
    emit modelReady();
    if (m_pendingSession) {
        const QSignalBlocker blockPrompt(m_prompt);
        const QSignalBlocker blockBos(m_bosBox);
        m_prompt->setPlainText(m_pendingSession->prompt);
        m_bosBox->setChecked(m_pendingSession->prependBos);
        if (m_pendingSession->tokens.isEmpty()) {
            retokenize(); // a lesson step names the prompt, not its ids
        } else {
            m_run->setTokens({m_pendingSession->tokens.begin(), m_pendingSession->tokens.end()});
            m_chips->setTokens(describeTokens(model->tokenizer().get(), m_run->tokens()));
            m_tokenCount->setText(tr("%n token(s)", nullptr, int(m_run->tokens().size())));
            m_runFromSession = true;
        }
        runPrompt();
    } else {
        {
            // The model's own policy (tokenizer.ggml.add_bos_token), as the CLI and generate use it.
            const auto tokenizer = model->tokenizer();
            const QSignalBlocker blockBos(m_bosBox);
            m_bosBox->setChecked(tokenizer && tokenizer->data().addBos && tokenizer->data().bosId.has_value());
            m_bosBox->setEnabled(tokenizer && tokenizer->data().bosId.has_value());
        }
        retokenize();
        if (m_options.autoRun) {
            runPrompt();
        }
    }
}

void MainWindow::updateModelBar()
{
    const auto model = m_run->model();
    const QString path = m_run->modelPath(), hash = m_run->modelHash();
    if (!model) {
        m_modelName->setText(tr("No model"));
        m_modelDetails->clear();
        return;
    }
    const ModelConfig &c = model->config();
    QString name = QString::fromStdString(c.name.empty() ? QFileInfo(path).fileName().toStdString() : c.name);
    if (const QFileInfo source(m_run->modelSource()); source.isDir() && name == source.fileName()) {
        // A Hugging Face folder is often named after its role ("hf", "model"): name its parent too.
        name = source.dir().dirName() + QLatin1Char('/') + name;
    }
    m_modelName->setText(name);
    // Family and attention layout: "gemma3 · 18 layers: 15 sliding (512), 3 global · 4 heads".
    QString details =
        tr("%1 \u00b7 %2 \u00b7 %3 heads")
            .arg(QString::fromLatin1(architectureName(c.architecture)), QString::fromStdString(c.attentionLayout()))
            .arg(c.heads);
    if (c.learnedSinks) {
        details += tr(" \u00b7 learned sinks");
    }
    if (!model->hasContract()) {
        details += tr(" \u00b7 generic TorchScript");
    }
    m_modelDetails->setText(details);
    m_modelDetails->setToolTip(path + (hash.isEmpty() ? QString() : QStringLiteral("\nsha256 ") + hash));
    setWindowTitle(QStringLiteral("SinkScope \u2014 %1").arg(m_modelName->text()));
}

void MainWindow::retokenize()
{
    const auto model = m_run->model();
    if (!model) {
        return;
    }
    const QString problem = m_run->tokenize(m_prompt->toPlainText(), m_bosBox->isChecked());
    const auto tokenizer = model->tokenizer();
    const auto &tokens = m_run->tokens();
    m_chips->setTokens(describeTokens(tokenizer.get(), tokens));
    updateSinkChips();
    if (!tokenizer) {
        m_tokenCount->setText(tokens.empty() ? tr("no tokenizer") : tr("%n token id(s)", nullptr, int(tokens.size())));
    } else {
        m_tokenCount->setText(tr("%n token(s)", nullptr, int(tokens.size())));
    }
    if (!problem.isEmpty()) {
        m_messages->showError(problem);
    }
}

void MainWindow::updateSinkChips()
{
    const auto snap = snapshot();
    if (!snap || !snap->metrics) {
        return;
    }
    const auto &chips = m_chips->tokens();
    if (chips.size() != snap->tokens.size() ||
        !std::equal(chips.begin(), chips.end(), snap->tokens.begin(),
                    [](const TokenInfo &a, const TokenInfo &b) { return a.id == b.id; })) {
        return; // the prompt changed since the run: its sinks belong to other tokens
    }
    // The chips mark the tokens that act as sinks across the model: detected in at least a quarter of
    // the layers. A key seen by few queries passes the threshold in a layer or two by chance (its
    // visibility-normalised score averages over few rows); the metrics tab and metrics.json list them all.
    std::vector<std::pair<int64_t, float>> sinks;
    for (const DetectedSink &s : snap->metrics->sinks) {
        if (int64_t(s.layers.size()) * 4 >= std::max<int64_t>(1, snap->layers)) {
            sinks.emplace_back(s.position, s.peakScore);
        }
    }
    m_chips->setSinks(sinks, snap->metrics->settings.sinkThreshold);
}

void MainWindow::runPrompt()
{
    m_runTimer.stop();
    if (!m_run->model()) {
        m_messages->showError(tr("No model is loaded."));
        return;
    }
    if (!m_runFromSession) {
        m_tokenizeTimer.stop();
        retokenize();
    }
    m_runFromSession = false;
    if (const QString refused = m_run->run(); !refused.isEmpty()) {
        m_messages->showError(refused);
    }
}

void MainWindow::onSnapshotReady()
{
    const auto snap = snapshot();
    for (AnalysisView *v : m_views) {
        v->setSnapshot(snap);
    }
    updateSinkChips();
    if (m_pendingSession) {
        const Session pending = *m_pendingSession;
        m_pendingSession.reset();
        restoreSessionViews(pending);
    }
    if (m_messages->isError()) {
        m_messages->hide();
    }
    m_statusLabel->setText(tr("%1 tokens: forward %2 ms, analysis %3 ms")
                               .arg(snap->tokenCount())
                               .arg(snap->forwardSeconds * 1000, 0, 'f', 0)
                               .arg(snap->analysisSeconds * 1000, 0, 'f', 0));
    emit snapshotShown();
    startGenerate();
}

void MainWindow::restoreSessionViews(const Session &s)
{
    if (!s.colourMap.isEmpty()) {
        setColourMap(colourMapFromKey(s.colourMap));
    }
    if (!s.theme.isEmpty()) {
        setTheme(s.theme == QLatin1String("dark") ? Theme::Dark : Theme::Light);
    }
    for (AnalysisView *v : m_views) {
        v->restoreState(s.views.value(v->viewId()).toObject());
    }
    showView(s.currentView);
    setSelectedTokens(s.selected);
    emit sessionApplied();
}

QVector<qint64> MainWindow::selectedTokens() const
{
    QVector<qint64> positions;
    for (const QModelIndex &i : m_chipView->selectionModel()->selectedIndexes()) {
        positions.push_back(i.row());
    }
    std::sort(positions.begin(), positions.end());
    return positions;
}

void MainWindow::setSelectedTokens(const QVector<qint64> &positions)
{
    QItemSelection selection;
    for (qint64 p : positions) {
        if (p >= 0 && p < m_chips->rowCount()) {
            const QModelIndex i = m_chips->index(int(p));
            selection.select(i, i);
        }
    }
    m_chipView->selectionModel()->select(selection, QItemSelectionModel::ClearAndSelect);
    const QVector<qint64> chosen = selectedTokens();
    m_headView->heatmap()->setHighlightedTokens({chosen.begin(), chosen.end()});
}

void MainWindow::startGenerate()
{
    const auto model = m_run->model();
    if (!model || !snapshot() || !model->hasContract()) {
        return;
    }
    m_outputs->clearContinuation();
    m_outputs->setContinuationBusy(true);
    m_run->generate();
}

void MainWindow::onFailed(const QString &tag, const QString &what, const QString &message)
{
    if (tag == QLatin1String(ComputeBridge::kModelTag) && m_pendingSession) {
        // A session naming a model that cannot be loaded: its prompt is kept on screen and the session
        // stays pending, so that opening the model (or another) restores the rest.
        {
            const QSignalBlocker blockPrompt(m_prompt);
            m_prompt->setPlainText(m_pendingSession->prompt);
        }
        if (m_run->model()) {
            retokenize(); // the chips show the prompt with the model still loaded
        }
        m_messages->showError(tr("%1: %2. The session's prompt is kept; open its model (or another) to restore "
                                 "its views.")
                                  .arg(what, message));
        m_statusLabel->setText(what);
        return;
    }
    if (tag == QLatin1String(ComputeBridge::kDevicesTag)) {
        startLoading(); // on the CPU
    } else if (tag == QLatin1String(ComputeBridge::kGenerateTag)) {
        m_outputs->setContinuationBusy(false);
    }
    m_messages->showError(QStringLiteral("%1: %2").arg(what, message));
    m_statusLabel->setText(what);
}

void MainWindow::updateBusy(bool busy)
{
    m_runButton->setText(busy ? tr("Run (busy)") : tr("Run"));
    if (busy) {
        m_progressDelay.start();
    } else {
        m_progressDelay.stop();
        m_progress->hide();
        m_cancelButton->hide();
        // A job that ended without a result line of its own (a lesson's numbers) leaves no stale stage.
        if (m_statusLabel->text() == m_progressLabel) {
            m_statusLabel->clear();
        }
    }
}

void MainWindow::addRecent(const QString &path)
{
    if (!m_options.useSettings) {
        return;
    }
    QSettings settings;
    QStringList recent = settings.value(QStringLiteral("recentModels")).toStringList();
    recent.removeAll(path);
    recent.prepend(path);
    while (recent.size() > kMaxRecent) {
        recent.removeLast();
    }
    settings.setValue(QStringLiteral("recentModels"), recent);
}

void MainWindow::rebuildRecentMenu()
{
    m_recentMenu->clear();
    const QStringList recent =
        m_options.useSettings ? QSettings().value(QStringLiteral("recentModels")).toStringList() : QStringList();
    for (const QString &path : recent) {
        QAction *a = m_recentMenu->addAction(QFileInfo(path).fileName(), this, [this, path] { openModel(path); });
        a->setToolTip(path);
        a->setEnabled(QFileInfo::exists(path));
    }
    if (recent.isEmpty()) {
        m_recentMenu->addAction(tr("(none yet)"))->setEnabled(false);
    }
}

void MainWindow::setTheme(Theme theme)
{
    m_theme = theme;
    if (m_darkAction) {
        m_darkAction->setChecked(theme == Theme::Dark);
    }
    applyStyle();
}

void MainWindow::setPresenterMode(bool on)
{
    m_presenter = on;
    if (m_presenterAction) {
        m_presenterAction->setChecked(on);
    }
    applyStyle();
}

void MainWindow::setColourMap(ColourMap map)
{
    m_colourMap = map;
    if (int(map) < m_mapActions.size()) {
        m_mapActions[int(map)]->setChecked(true);
    }
    for (AnalysisView *v : m_views) {
        v->setColourMap(map);
    }
}

void MainWindow::applyStyle()
{
    if (auto *app = qobject_cast<QApplication *>(QCoreApplication::instance())) {
        applyApplicationTheme(*app, m_theme, m_presenter);
    }
    const PlotStyle style = plotStyle(m_theme, m_presenter);
    for (AnalysisView *v : m_views) {
        v->setPlotStyle(style);
    }
    m_chipView->setMaximumHeight(m_presenter ? 130 : 84);
    m_prompt->setMaximumHeight(m_presenter ? 130 : 90);
    m_lessonMode->setStyle(m_presenter, m_theme == Theme::Dark);
}

Session MainWindow::currentSession() const
{
    Session s;
    s.modelPath = m_run->modelPath();
    s.modelSha256 = m_run->modelHash();
    s.prompt = m_prompt->toPlainText();
    s.prependBos = m_bosBox->isChecked();
    // The ids that produced the figure on screen, not a re-tokenization of the text.
    if (const auto snap = snapshot()) {
        for (const TokenInfo &t : snap->tokens) {
            s.tokens.push_back(t.id);
        }
    } else {
        for (int64_t id : m_run->tokens()) {
            s.tokens.push_back(id);
        }
    }
    if (AnalysisView *v = currentView()) {
        s.currentView = v->viewId();
    }
    s.colourMap = colourMapKey(m_colourMap);
    s.theme = m_theme == Theme::Dark ? QStringLiteral("dark") : QStringLiteral("light");
    s.selected = selectedTokens();
    for (AnalysisView *v : m_views) {
        s.views.insert(v->viewId(), v->saveState());
    }
    return s;
}

bool MainWindow::saveSession(const QString &path, QString *error)
{
    return currentSession().save(path, error);
}

void MainWindow::openSession(const QString &path)
{
    QString error;
    auto session = Session::load(path, &error);
    if (!session) {
        m_messages->showError(error);
        return;
    }
    const bool loading = applySession(*session);
    if (!loading) {
        const QString hash = m_run->modelHash();
        if (!session->modelSha256.isEmpty() && !hash.isEmpty() && session->modelSha256 != hash) {
            m_messages->showInfo(tr("The model file %1 changed since the session was saved (content hash differs).")
                                     .arg(m_run->modelPath()));
        }
    }
    if (loading && !session->modelSha256.isEmpty()) {
        // Checked when the hash of the (re)loaded file arrives; a hash of the model loaded before (still
        // queued on the compute thread) is not the one.
        const QString expected = session->modelSha256;
        const QFileInfo sessionModel(session->modelPath);
        auto *connection = new QMetaObject::Connection;
        *connection = connect(m_run, &RunController::modelHashed, this,
                              [this, expected, sessionModel, connection](const QString &path, const QString &hash) {
                                  if (QFileInfo(path) != sessionModel) {
                                      return;
                                  }
                                  if (hash != expected) {
                                      m_messages->showInfo(tr("The model file differs from the one the session was "
                                                              "saved with (sha256 %1\u2026, expected %2\u2026).")
                                                               .arg(hash.left(12), expected.left(12)));
                                  }
                                  disconnect(*connection);
                                  delete connection;
                              });
    }
}

void MainWindow::watchModelFiles()
{
    if (!m_modelWatcher) {
        m_modelWatcher = new QFileSystemWatcher(this);
        connect(m_modelWatcher, &QFileSystemWatcher::fileChanged, this, &MainWindow::onModelFileChanged);
    }
    if (const QStringList old = m_modelWatcher->files(); !old.isEmpty()) {
        m_modelWatcher->removePaths(old);
    }
    for (const QString &file : {m_run->modelPath(), m_run->modelSource()}) {
        if (!file.isEmpty() && QFileInfo(file).isFile()) {
            m_modelWatcher->addPath(file);
        }
    }
}

void MainWindow::onModelFileChanged(const QString &path)
{
    if (path != m_run->modelPath() && path != m_run->modelSource()) {
        return; // a model loaded since
    }
    const bool source = path == m_run->modelSource() && path != m_run->modelPath();
    if (!QFileInfo::exists(path)) {
        m_messages->showInfo(
            tr("The model file %1 was deleted or moved. The model stays loaded; sessions saved now name a file that "
               "is gone.")
                .arg(path));
        return;
    }
    // Replaced (a rename drops the watch) or rewritten: watch the new file, and say what is in use.
    if (!m_modelWatcher->files().contains(path)) {
        m_modelWatcher->addPath(path);
    }
    m_messages->showInfo(source ? tr("The model file %1 changed on disk. The model converted from the earlier "
                                     "version stays loaded; open the file again to convert the new one.")
                                      .arg(path)
                                : tr("The model file %1 changed on disk. The loaded copy stays in use; open the "
                                     "file again to load the new one.")
                                      .arg(path));
}

bool MainWindow::isCurrentModel(const QString &path) const
{
    if (!m_run->model()) {
        return false;
    }
    if (path.isEmpty()) {
        return m_run->modelSource().isEmpty(); // the default model
    }
    const QFileInfo info(path);
    return info == QFileInfo(m_run->modelPath()) ||
           (!m_run->modelSource().isEmpty() && info == QFileInfo(m_run->modelSource()));
}

bool MainWindow::applySession(const Session &session)
{
    m_runTimer.stop();
    if (!isCurrentModel(session.modelPath)) {
        m_pendingSession = session;
        openModel(session.modelPath);
        return true;
    }
    // The run on screen may already be the session's: then only the views change (a lesson's step that
    // switches the tab or the head costs no model work).
    const auto snap = snapshot();
    if (snap && !bridge()->isPending(QString::fromLatin1(ComputeBridge::kRunTag)) &&
        m_prompt->toPlainText() == session.prompt && m_bosBox->isChecked() == session.prependBos) {
        std::vector<int64_t> ids(session.tokens.begin(), session.tokens.end());
        if (ids.empty()) {
            ids = m_run->tokens();
        }
        const bool same =
            ids.size() == snap->tokens.size() && std::equal(ids.begin(), ids.end(), snap->tokens.begin(),
                                                            [](int64_t id, const TokenInfo &t) { return id == t.id; });
        if (same) {
            m_pendingSession.reset();
            restoreSessionViews(session);
            return false;
        }
    }
    m_pendingSession = session;
    onModelLoaded(); // the loaded model, with the session's prompt
    return false;
}

FigureOptions MainWindow::defaultFigureOptions() const
{
    FigureOptions o;
    const PlotStyle style = plotStyle(m_theme, m_presenter);
    o.background = style.background;
    o.foreground = style.foreground;
    if (AnalysisView *v = currentView()) {
        o.title = v->figureTitle();
    }
    QString prompt = m_prompt->toPlainText().simplified();
    if (prompt.size() > 160) {
        prompt = prompt.left(159) + QChar(0x2026);
    }
    o.caption = tr("Model: %1 (%2%3). Prompt (%4 tokens, BOS %5): \u201c%6\u201d. SinkScope %7.")
                    .arg(m_modelName->text(), QFileInfo(m_run->modelPath()).fileName(),
                         m_run->modelHash().isEmpty() ? QString() : tr(", sha256 %1").arg(m_run->modelHash().left(12)))
                    .arg(snapshot() ? snapshot()->tokenCount() : int64_t(m_run->tokens().size()))
                    .arg(m_bosBox->isChecked() ? tr("prepended") : tr("not prepended"), prompt,
                         QStringLiteral(SINKSCOPE_VERSION));
    return o;
}

bool MainWindow::exportCurrentView(const QString &path, const FigureOptions &options, QString *error)
{
    AnalysisView *view = currentView();
    FigureFormat format;
    if (!view || !figureFormatForPath(path, &format)) {
        if (error) {
            *error = tr("Cannot export %1: use a .png, .svg or .pdf file name").arg(path);
        }
        return false;
    }
    return exportFigure(
        path, format, options, [view](QCPPainter *p, const QSize &size) { view->renderFigure(p, size); }, error);
}

bool MainWindow::exportLayerGrid(const QString &path, const FigureOptions &options, QString *error)
{
    if (const auto snap = snapshot(); snap && snap->mapsOnDemand) {
        if (error && snap->mapsWouldNotFit) {
            *error = tr("The attention maps of this run would not fit in the memory left, so there is no grid of "
                        "every head; export the head view, one head at a time.");
        } else if (error) {
            *error =
                tr("This run has %1 tokens: runs over %2 tokens keep no attention maps, so there is no grid of every "
                   "head; export the head view, one head at a time.")
                    .arg(snap->tokenCount())
                    .arg(snap->mapTokens);
        }
        return false;
    }
    FigureFormat format;
    if (!figureFormatForPath(path, &format)) {
        if (error) {
            *error = tr("Cannot export %1: use a .png, .svg or .pdf file name").arg(path);
        }
        return false;
    }
    return exportFigure(
        path, format, options, [this](QCPPainter *p, const QSize &size) { m_headView->renderLayerGrid(p, size); },
        error);
}

bool MainWindow::exportCurrentData(const QString &path, QString *error)
{
    AnalysisView *view = currentView();
    if (!view) {
        return false;
    }
    ViewData data = view->currentData();
    data.json.insert(QStringLiteral("session"), currentSession().toJson());
    return writeViewData(path, data, error);
}

namespace {

// Asks for the figure's file, pixel size, DPI, title and caption.
bool askFigureOptions(QWidget *parent, const QString &title, QString *path, FigureOptions *options)
{
    QDialog dialog(parent);
    dialog.setWindowTitle(title);
    auto *form = new QFormLayout(&dialog);
    auto *file = new QLineEdit(*path, &dialog);
    auto *browse = new QPushButton(QObject::tr("Browse\u2026"), &dialog);
    auto *fileRow = new QHBoxLayout;
    fileRow->addWidget(file, 1);
    fileRow->addWidget(browse);
    form->addRow(QObject::tr("File (.png, .svg, .pdf)"), fileRow);
    auto *width = new QSpinBox(&dialog);
    auto *height = new QSpinBox(&dialog);
    auto *dpi = new QSpinBox(&dialog);
    width->setRange(200, 20000);
    height->setRange(200, 20000);
    dpi->setRange(72, 1200);
    width->setValue(options->pixelSize.width());
    height->setValue(options->pixelSize.height());
    dpi->setValue(options->dpi);
    form->addRow(QObject::tr("Width (px)"), width);
    form->addRow(QObject::tr("Height (px)"), height);
    form->addRow(QObject::tr("DPI"), dpi);
    auto *titleEdit = new QLineEdit(options->title, &dialog);
    form->addRow(QObject::tr("Title"), titleEdit);
    auto *caption = new QPlainTextEdit(options->caption, &dialog);
    caption->setMaximumHeight(80);
    form->addRow(QObject::tr("Caption"), caption);
    auto *buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, &dialog);
    form->addRow(buttons);
    QObject::connect(buttons, &QDialogButtonBox::accepted, &dialog, &QDialog::accept);
    QObject::connect(buttons, &QDialogButtonBox::rejected, &dialog, &QDialog::reject);
    QObject::connect(browse, &QPushButton::clicked, &dialog, [&] {
        const QString chosen =
            QFileDialog::getSaveFileName(&dialog, title, file->text(), QObject::tr("Figures (*.png *.svg *.pdf)"));
        if (!chosen.isEmpty()) {
            file->setText(chosen);
        }
    });
    if (dialog.exec() != QDialog::Accepted) {
        return false;
    }
    *path = file->text();
    options->pixelSize = QSize(width->value(), height->value());
    options->dpi = dpi->value();
    options->title = titleEdit->text();
    options->caption = caption->toPlainText();
    return true;
}

} // namespace

void MainWindow::exportViewInteractive()
{
    FigureOptions options = defaultFigureOptions();
    QString path = QStringLiteral("%1.pdf").arg(currentView() ? currentView()->viewId() : QStringLiteral("figure"));
    QString error;
    if (askFigureOptions(this, tr("Export view"), &path, &options) && !exportCurrentView(path, options, &error)) {
        m_messages->showError(error);
    } else if (error.isEmpty() && !path.isEmpty()) {
        m_statusLabel->setText(tr("Exported %1").arg(path));
    }
}

void MainWindow::exportGridInteractive()
{
    FigureOptions options = defaultFigureOptions();
    options.title = m_headView->layerGridTitle();
    QString path = QStringLiteral("layer-%1-heads.pdf").arg(m_headView->model().layer());
    QString error;
    if (askFigureOptions(this, tr("Export all heads of the layer"), &path, &options) &&
        !exportLayerGrid(path, options, &error)) {
        m_messages->showError(error);
    }
}

void MainWindow::exportDataInteractive()
{
    const QString path = QFileDialog::getSaveFileName(
        this, tr("Export view data"), QStringLiteral("%1.csv").arg(currentView() ? currentView()->viewId() : QString()),
        tr("CSV (*.csv);;JSON (*.json)"));
    QString error;
    if (!path.isEmpty() && !exportCurrentData(path, &error)) {
        m_messages->showError(error);
    }
}

void MainWindow::dragEnterEvent(QDragEnterEvent *event)
{
    for (const QUrl &url : event->mimeData()->urls()) {
        const QString path = url.toLocalFile();
        if (isModelFile(path) || path.endsWith(QLatin1String(".json"), Qt::CaseInsensitive)) {
            event->acceptProposedAction();
            return;
        }
    }
}

void MainWindow::dropEvent(QDropEvent *event)
{
    for (const QUrl &url : event->mimeData()->urls()) {
        const QString path = url.toLocalFile();
        // A model first: a Hugging Face config.json is a model, any other .json a session.
        if (isModelFile(path)) {
            openModel(path);
            return;
        }
        if (path.endsWith(QLatin1String(".json"), Qt::CaseInsensitive)) {
            openSession(path);
            return;
        }
    }
}

void MainWindow::closeEvent(QCloseEvent *event)
{
    if (m_lessonMode && !m_lessonMode->confirmDiscard()) {
        event->ignore(); // a recorded lesson is not lost to a stray close
        return;
    }
    if (m_options.useSettings) {
        saveSettings();
    }
    QMainWindow::closeEvent(event);
}

void MainWindow::saveSettings() const
{
    QSettings settings;
    settings.setValue(QStringLiteral("geometry"), saveGeometry());
    settings.setValue(QStringLiteral("lastModel"),
                      m_run->modelSource().isEmpty() ? m_run->modelPath() : m_run->modelSource());
    settings.setValue(QStringLiteral("device"), m_run->deviceId());
    settings.setValue(QStringLiteral("prompt"), m_prompt->toPlainText());
    settings.setValue(QStringLiteral("autoRun"), m_autoRunBox->isChecked());
    settings.setValue(QStringLiteral("colourMap"), colourMapKey(m_colourMap));
    settings.setValue(QStringLiteral("dark"), m_theme == Theme::Dark);
    settings.setValue(QStringLiteral("presenter"), m_presenter);
    QJsonObject views;
    for (AnalysisView *v : m_views) {
        views.insert(v->viewId(), v->saveState());
    }
    settings.setValue(QStringLiteral("views"), QString::fromUtf8(QJsonDocument(views).toJson(QJsonDocument::Compact)));
}

void MainWindow::restoreSettings()
{
    QSettings settings;
    if (const QSettings::Status status = settings.status(); status != QSettings::NoError) {
        // A settings file that cannot be read (truncated, garbage, no permission) costs nothing but the
        // settings: it is kept aside for the user, and the window starts from the defaults.
        const QString file = settings.fileName();
        const QString kept = file + QStringLiteral(".unreadable");
        QFile::remove(kept);
        const bool moved = QFile::rename(file, kept);
        settings.clear();
        // Shown once the first model is in (loading hides earlier notices).
        m_settingsProblem =
            ((status == QSettings::AccessError ? tr("The settings file %1 could not be read (access denied).")
                                               : tr("The settings file %1 is corrupt."))
                 .arg(file) +
             (moved ? tr(" It was kept as %1; the defaults are used.").arg(kept) : tr(" The defaults are used.")));
        return;
    }
    restoreGeometry(settings.value(QStringLiteral("geometry")).toByteArray());
    if (m_options.modelPath.isEmpty()) {
        const QString last = settings.value(QStringLiteral("lastModel")).toString();
        if (!last.isEmpty() && QFileInfo::exists(last)) {
            m_options.modelPath = last;
        }
    }
    m_run->setDeviceId(settings.value(QStringLiteral("device"), QStringLiteral("cpu")).toString());
    {
        const QSignalBlocker block(m_prompt);
        m_prompt->setPlainText(settings.value(QStringLiteral("prompt")).toString());
    }
    m_autoRunBox->setChecked(settings.value(QStringLiteral("autoRun"), m_options.autoRun).toBool());
    m_colourMap = colourMapFromKey(settings.value(QStringLiteral("colourMap")).toString());
    setColourMap(m_colourMap);
    m_theme = settings.value(QStringLiteral("dark")).toBool() ? Theme::Dark : Theme::Light;
    m_presenter = settings.value(QStringLiteral("presenter")).toBool();
    m_darkAction->setChecked(m_theme == Theme::Dark);
    m_presenterAction->setChecked(m_presenter);
    const QJsonObject views =
        QJsonDocument::fromJson(settings.value(QStringLiteral("views")).toString().toUtf8()).object();
    for (AnalysisView *v : m_views) {
        if (views.contains(v->viewId())) {
            v->restoreState(views.value(v->viewId()).toObject());
        }
    }
}

} // namespace sinkscope::ui
