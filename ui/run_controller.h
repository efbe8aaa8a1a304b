// The window's work without its widgets: the devices and the one the model runs on, the loaded model,
// the prompt's tokens, runs and their snapshots, the greedy continuation and on-demand head maps of long
// runs, all through one ComputeBridge. MainWindow shows what it holds and forwards the user's actions;
// tests drive it without a window (tests/ui/run_controller_test.cpp).
#pragma once

#include "compute_bridge.h"

#include "sinkscope/runtime/device.h"

#include <QObject>
#include <QString>

#include <memory>
#include <vector>

namespace sinkscope::ui {

class RunController : public QObject
{
    Q_OBJECT
public:
    static constexpr int kTopK = 10;         // next-token candidates a run keeps
    static constexpr int kGreedyTokens = 20; // the continuation after each run

    explicit RunController(int64_t mapTokens = kMapTokens, QObject *parent = nullptr);
    ~RunController() override;

    ComputeBridge *bridge() const { return m_bridge; }

    // The devices to offer, the CPU first (added when missing). When the current device is not among
    // those that run the model, the CPU is chosen and notice() says so.
    void setDevices(std::vector<DeviceInfo> devices);
    const std::vector<DeviceInfo> &devices() const { return m_devices; }
    // Where the model is (or is being) loaded: "cpu", "cuda:N".
    QString deviceId() const { return m_deviceId; }
    void setDeviceId(const QString &id) { m_deviceId = id; } // before the first load (saved settings)
    // Loads the current model again on another device. Returns why not ("" when done or nothing to do).
    QString chooseDevice(const QString &id);

    // Loads a model (.pt, .gguf, a Hugging Face folder or its config.json; "" is the default model) on
    // deviceId(), converting on the compute thread when needed; modelLoaded() or failed().
    void loadModel(const QString &path);
    std::shared_ptr<const Model> model() const { return m_model; }
    QString modelPath() const { return m_modelPath; }     // the archive loaded
    QString modelSource() const { return m_modelSource; } // what was opened (a GGUF, a folder; "" = default)
    QString modelHash() const { return m_modelHash; }     // sha256 of the file, once hashed

    // The prompt as tokens: the model's tokenizer (with a BOS when asked and the model has one), or for a
    // model without one, the token ids typed ("1 2 3"). Returns a problem to show ("" when none).
    QString tokenize(const QString &text, bool prependBos);
    void setTokens(std::vector<int64_t> tokens) { m_tokens = std::move(tokens); } // a session's own ids
    const std::vector<int64_t> &tokens() const { return m_tokens; }
    // Runs the tokens; snapshotReady() when done. Returns why it cannot run ("" when submitted).
    QString run();
    std::shared_ptr<const RunSnapshot> snapshot() const { return m_snapshot; }
    // The greedy continuation of the shown run (SinkScope archives only); continuationChanged() per token.
    void generate();
    const std::vector<int64_t> &generated() const { return m_generated; }
    QString continuationText() const;
    // One head's map of a long run, computed from its kept q/k; headMapReady() when done.
    void requestHeadMap(int64_t layer, int64_t head);

    // Token ids typed as the prompt of a model without a tokenizer ("1 2 3", "1,2,3"); empty otherwise.
    static std::vector<int64_t> parseTokenIds(const QString &text);

signals:
    void modelLoaded(); // model() and modelPath() are the new ones; snapshot() is empty
    void modelHashed(const QString &path, const QString &hash);
    void snapshotReady(); // snapshot() is the new run
    void continuationChanged();
    void continuationFinished();
    void headMapReady(std::shared_ptr<const RunSnapshot> snapshot, int64_t layer, int64_t head,
                      std::shared_ptr<const FloatArray> map);
    void deviceChanged(); // deviceId() or devices() changed
    // A job failed: `tag` is the ComputeBridge tag, `what` names the job for the user.
    void failed(const QString &tag, const QString &what, const QString &message);
    void notice(const QString &text);

private:
    void onModelLoaded(std::shared_ptr<const Model> model, const QString &path, const QString &source);
    void onRunFinished(std::shared_ptr<const RunSnapshot> snapshot);
    void onFailed(const QString &tag, const QString &message);

    ComputeBridge *m_bridge = nullptr;
    int64_t m_mapTokens = kMapTokens;
    std::vector<DeviceInfo> m_devices;
    QString m_deviceId = QStringLiteral("cpu");
    std::shared_ptr<const Model> m_model;
    QString m_modelPath;
    QString m_modelSource;
    QString m_modelHash;
    std::vector<int64_t> m_tokens;
    std::shared_ptr<const RunSnapshot> m_snapshot;
    std::vector<int64_t> m_generated;
};

} // namespace sinkscope::ui
