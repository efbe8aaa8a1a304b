// The UI side of the compute thread: submits model work to sinkscope::ComputeThread and delivers the
// results on the UI thread as signals. Nothing in ui/ calls Model::load/forward/generate any other way.
//
// Threading: every public function is called on the UI thread and returns at once. Results, errors and
// progress are posted back to the UI thread (postToUi: a queue under a std::mutex, drained by one queued
// call) and dropped there when a newer request with the same tag has been made since (so a result never
// lands on a prompt the user already changed). Cancel goes straight to the job's atomic token.
#pragma once

#include "run_snapshot.h"

#include "sinkscope/runtime/compute_thread.h"

#include <QElapsedTimer>
#include <QObject>
#include <QSet>
#include <QString>

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

class QProgressBar;

namespace sinkscope::ui {

// Shows a job's progress (ComputeBridge::progress) on a view's own bar: shown, a busy bar for a fraction
// below zero, the stage as its text.
void showJobProgress(QProgressBar *bar, double fraction, const QString &label);

class ComputeBridge : public QObject
{
    Q_OBJECT
public:
    // Tags of the jobs; a new request replaces (and cancels) the previous one with the same tag.
    static constexpr const char *kModelTag = "model";
    static constexpr const char *kRunTag = "run";
    static constexpr const char *kGenerateTag = "generate";
    static constexpr const char *kHashTag = "hash";
    static constexpr const char *kDevicesTag = "devices";
    // Not a request: the allocator's free memory returned to the system once the bridge falls idle.
    static constexpr const char *kReclaimTag = "reclaim";

    explicit ComputeBridge(QObject *parent = nullptr);
    ~ComputeBridge() override;

    // A SinkScope archive or TorchScript file (.pt), or a GGUF file or a Hugging Face folder (or its
    // config.json) converted first on the compute thread (archiveFor: into the cache folder, once per
    // source version; progress "Converting: ...", cancellable). An empty path means the default model
    // (converted if missing). `device` is LoadOptions::device ("cpu", "cuda:N").
    void loadModel(const QString &path, const QString &device = QStringLiteral("cpu"));
    void run(std::shared_ptr<const Model> model, RunRequest request);
    // Greedy continuation; tokens arrive one by one through generatedToken().
    void generate(std::shared_ptr<const Model> model, std::vector<int64_t> prompt, int maxNewTokens);
    // SHA-256 of a file's contents (session files record it).
    void hashFile(const QString &path);

    // Any other model work a panel needs (mitigation effects, dormancy tests, probe sets): `work` runs on
    // the compute thread with a throttled progress callback that also reports cancellation; `done` runs
    // on the UI thread with the value unless a newer job with the same tag superseded it. Errors other
    // than cancellation arrive through failed(tag, ...). `label` is shown as progress until the first
    // report.
    template <typename T>
    void submit(const QString &tag, const QString &label,
                std::function<Result<T>(const CancelToken &, const ProgressCallback &)> work,
                std::function<void(std::shared_ptr<const T>)> done)
    {
        submitErased(
            tag, label,
            [work = std::move(work)](const CancelToken &cancel,
                                     const ProgressCallback &progress) -> Result<std::shared_ptr<const void>> {
                auto result = work(cancel, progress);
                if (!result.ok()) {
                    return result.error();
                }
                return std::shared_ptr<const void>(std::make_shared<const T>(std::move(result.value())));
            },
            [done = std::move(done)](std::shared_ptr<const void> value) {
                done(std::static_pointer_cast<const T>(std::move(value)));
            });
    }

    void cancel(const QString &tag);
    void cancelAll();
    bool isBusy() const { return !m_pending.isEmpty(); }
    bool isPending(const QString &tag) const { return m_pending.contains(tag); }

    // Where a GGUF file or Hugging Face folder is converted to (runtime/paths.h convertedArchivePath):
    // <cache>/models/<name>-<size>-<mtime>.pt.
    static QString convertedPathFor(const QString &source);

signals:
    // `path` is the file loaded (the archive), `source` what was asked for (a GGUF file, a folder, the
    // archive itself; empty for the default model).
    void modelLoaded(std::shared_ptr<const sinkscope::Model> model, const QString &path, const QString &source);
    void runFinished(std::shared_ptr<const sinkscope::ui::RunSnapshot> snapshot);
    void generatedToken(qint64 id);
    void generationFinished(bool ok);
    void fileHashed(const QString &path, const QString &sha256);
    // `tag` is one of the k*Tag names; `message` names the cause (file, value).
    void failed(const QString &tag, const QString &message);
    // fraction < 0: indeterminate. Throttled to ~20 per second.
    void progress(const QString &tag, double fraction, const QString &label);
    void busyChanged(bool busy);

private:
    using ErasedWork =
        std::function<Result<std::shared_ptr<const void>>(const CancelToken &, const ProgressCallback &)>;
    void submitErased(const QString &tag, const QString &label, ErasedWork work,
                      std::function<void(std::shared_ptr<const void>)> done);
    // Runs `call` on the UI thread, after the calls posted before it (any thread). The closures, and the
    // results they carry, cross threads through m_posted under m_postedMutex; Qt only carries the wake-up
    // (drainPosted). Qt's queue alone would do at run time, but its locks are futexes inside QtCore,
    // which Debian builds without ThreadSanitizer: the tsan preset would see every result cross threads
    // unsynchronised (docs/reliability.md, "ThreadSanitizer").
    void postToUi(std::function<void()> call);
    Q_INVOKABLE void drainPosted();
    void begin(const QString &tag, uint64_t generation);
    void finish(const QString &tag, uint64_t generation);
    bool isCurrent(const QString &tag, uint64_t generation) const;
    // `generation` is written on the UI thread right after submission and read only there.
    static ProgressCallback progressPoster(ComputeBridge *self, const QString &tag,
                                           std::shared_ptr<const uint64_t> generation, const CancelToken &cancel);

    // Submits `work` under `tag`; `done` runs on the UI thread with the result unless a newer job with
    // the same tag superseded it. `generation` is filled in here, before any result can arrive.
    template <typename T, typename Done>
    void submitJob(const QString &tag, const std::shared_ptr<uint64_t> &generation,
                   std::function<Result<T>(const CancelToken &)> work, Done done);

    // Declared before m_thread: the compute thread posts until ~ComputeThread has joined it.
    std::mutex m_postedMutex;
    std::vector<std::function<void()>> m_posted; // under m_postedMutex, in posting order
    bool m_drainQueued = false;                  // under m_postedMutex: a drainPosted call is on its way
    ComputeThread m_thread;
    QHash<QString, uint64_t> m_pending; // tag -> generation awaited
};

} // namespace sinkscope::ui
