#include "run_controller.h"

#include <QFileInfo>
#include <QRegularExpression>
#include <QThreadPool>

namespace sinkscope::ui {

RunController::RunController(int64_t mapTokens, QObject *parent)
    : QObject(parent), m_bridge(new ComputeBridge(this)), m_mapTokens(mapTokens)
{
    connect(m_bridge, &ComputeBridge::modelLoaded, this, &RunController::onModelLoaded);
    connect(m_bridge, &ComputeBridge::runFinished, this, &RunController::onRunFinished);
    connect(m_bridge, &ComputeBridge::failed, this, &RunController::onFailed);
    connect(m_bridge, &ComputeBridge::fileHashed, this, [this](const QString &path, const QString &hash) {
        if (path == m_modelPath) {
            m_modelHash = hash;
        }
        emit modelHashed(path, hash);
    });
    connect(m_bridge, &ComputeBridge::generatedToken, this, [this](qint64 id) {
        m_generated.push_back(id);
        emit continuationChanged();
    });
    connect(m_bridge, &ComputeBridge::generationFinished, this, [this](bool) { emit continuationFinished(); });
}

RunController::~RunController()
{
    // Stop model work before the snapshot it may still fill goes away.
    m_bridge->cancelAll();
}

std::vector<int64_t> RunController::parseTokenIds(const QString &text)
{
    std::vector<int64_t> ids;
    const QStringList parts = text.split(QRegularExpression(QStringLiteral("[\\s,]+")), Qt::SkipEmptyParts);
    for (const QString &part : parts) {
        bool ok = false;
        const qlonglong id = part.toLongLong(&ok);
        if (!ok || id < 0) {
            return {};
        }
        ids.push_back(id);
    }
    return ids;
}

void RunController::setDevices(std::vector<DeviceInfo> devices)
{
    if (devices.empty() || devices.front().kind != DeviceKind::Cpu) {
        DeviceInfo cpu; // the registry always lists the CPU first; this keeps the picker sane without it
        cpu.id = "cpu";
        cpu.name = "CPU";
        cpu.runsModel = cpu.kernels = true;
        devices.insert(devices.begin(), cpu);
    }
    m_devices = std::move(devices);
    auto plan = planDevice(m_deviceId.toStdString(), m_devices);
    if (!plan.ok() || plan->modelDevice != m_deviceId.toStdString()) {
        if (m_deviceId != QLatin1String("cpu")) {
            emit notice(
                tr("The device %1 used last time is not available here; the model runs on the CPU.").arg(m_deviceId));
        }
        m_deviceId = QStringLiteral("cpu");
    }
    emit deviceChanged();
}

QString RunController::chooseDevice(const QString &id)
{
    if (id == m_deviceId) {
        return {};
    }
    auto plan = planDevice(id.toStdString(), m_devices);
    if (!plan.ok()) {
        return QString::fromStdString(plan.error().message);
    }
    if (plan->modelDevice != id.toStdString()) {
        return tr("The model cannot run on %1: %2").arg(id, QString::fromStdString(plan->device.note));
    }
    m_deviceId = id;
    emit deviceChanged();
    if (m_model) {
        // The same model on the new device (a converted source finds its archive in the cache).
        loadModel(m_modelSource.isEmpty() ? m_modelPath : m_modelSource);
    }
    return {};
}

void RunController::loadModel(const QString &path)
{
    m_bridge->loadModel(path, m_deviceId);
}

void RunController::onModelLoaded(std::shared_ptr<const Model> model, const QString &path, const QString &source)
{
    m_model = std::move(model);
    m_deviceId = QString::fromStdString(m_model->info().device);
    m_modelPath = path;
    m_modelSource = source;
    m_modelHash.clear();
    m_snapshot.reset();
    emit deviceChanged();
    emit modelLoaded();
    m_bridge->hashFile(path);
}

QString RunController::tokenize(const QString &text, bool prependBos)
{
    if (!m_model) {
        return {};
    }
    const auto tokenizer = m_model->tokenizer();
    if (!tokenizer) {
        // A generic TorchScript file carries no tokenizer: the prompt is the token ids themselves.
        m_tokens = parseTokenIds(text);
        return {};
    }
    EncodeOptions options;
    options.addBos = prependBos && tokenizer->data().bosId.has_value();
    m_tokens = tokenizer->encode(text.toStdString(), options);
    const int64_t context = m_model->config().contextLength;
    if (context > 0 && int64_t(m_tokens.size()) > context) {
        return tr("The prompt has %1 tokens; the model's context is %2.").arg(m_tokens.size()).arg(context);
    }
    return {};
}

QString RunController::run()
{
    if (!m_model) {
        return tr("No model is loaded.");
    }
    if (m_tokens.empty()) {
        return m_model->tokenizer() ? tr("The prompt is empty: type some text or tick \u201cPrepend BOS\u201d.")
                                    : tr("This model has no tokenizer: type token ids separated by spaces or commas "
                                         "(e.g. 1 2 3).");
    }
    RunRequest request;
    request.tokens = m_tokens;
    request.mapTokens = m_mapTokens;
    request.topK = kTopK;
    m_bridge->run(m_model, std::move(request));
    return {};
}

void RunController::onRunFinished(std::shared_ptr<const RunSnapshot> snapshot)
{
    std::shared_ptr<const RunSnapshot> previous = std::move(m_snapshot);
    m_snapshot = std::move(snapshot);
    emit snapshotReady();
    if (m_snapshot && m_snapshot->mapsWouldNotFit) {
        emit notice(tr("The attention maps of these %1 tokens would not fit in the memory left, so this run keeps "
                       "none: its metrics come from the streaming path and the head view computes one head at a "
                       "time.")
                        .arg(m_snapshot->tokenCount()));
    }
    // The previous run's maps are a GiB at 1024 tokens: freeing them here stalled the UI for a
    // noticeable time, so the last reference goes to a pool thread (unless a view still holds one).
    if (previous) {
        QThreadPool::globalInstance()->start([previous]() mutable { previous.reset(); });
        previous.reset();
    }
}

void RunController::generate()
{
    if (!m_model || !m_snapshot || !m_model->hasContract()) {
        return;
    }
    m_generated.clear();
    emit continuationChanged();
    std::vector<int64_t> prompt;
    for (const TokenInfo &t : m_snapshot->tokens) {
        prompt.push_back(t.id);
    }
    m_bridge->generate(m_model, std::move(prompt), kGreedyTokens);
}

QString RunController::continuationText() const
{
    const auto tokenizer = m_model ? m_model->tokenizer() : nullptr;
    return tokenizer ? QString::fromStdString(tokenizer->decode(m_generated)) : QString();
}

void RunController::requestHeadMap(int64_t layer, int64_t head)
{
    const auto snapshot = m_snapshot;
    if (!snapshot || !snapshot->mapsOnDemand) {
        return;
    }
    m_bridge->submit<FloatArray>(
        QStringLiteral("headmap"), tr("Computing the map of layer %1, head %2").arg(layer).arg(head),
        [snapshot, layer, head](const CancelToken &, const ProgressCallback &) {
            return computeHeadMap(*snapshot, layer, head);
        },
        [this, snapshot, layer, head](std::shared_ptr<const FloatArray> map) {
            emit headMapReady(snapshot, layer, head, std::move(map));
        });
}

void RunController::onFailed(const QString &tag, const QString &message)
{
    QString what;
    if (tag == QLatin1String(ComputeBridge::kModelTag)) {
        what = tr("Could not load the model");
        if (m_model) { // the loaded model stays, and so does its device
            m_deviceId = QString::fromStdString(m_model->info().device);
        }
        emit deviceChanged();
    } else if (tag == QLatin1String(ComputeBridge::kDevicesTag)) {
        what = tr("Could not list the GPUs; the CPU is used");
    } else if (tag == QLatin1String(ComputeBridge::kRunTag)) {
        what = tr("The run failed");
    } else if (tag == QLatin1String(ComputeBridge::kGenerateTag)) {
        what = tr("Generation failed");
    } else {
        what = tr("Error");
    }
    if (tag == QLatin1String(ComputeBridge::kDevicesTag)) {
        setDevices({});
    }
    QString text = message;
    if ((tag == QLatin1String(ComputeBridge::kRunTag) || tag == QLatin1String(ComputeBridge::kGenerateTag)) &&
        m_model && m_model->info().device != "cpu") {
        // A GPU that failed or went away (a driver reset, an eGPU unplugged): the way back is the CPU.
        text += tr(" (The model runs on %1: if that GPU is gone, choose the CPU in the device picker; the prompt "
                   "and views stay.)")
                    .arg(QString::fromStdString(m_model->info().device));
    }
    emit failed(tag, what, text);
}

} // namespace sinkscope::ui
