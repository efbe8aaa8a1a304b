#include "compute_bridge.h"

#include "model_source.h"

#include "sinkscope/runtime/memory.h"
#include "sinkscope/runtime/paths.h"

#include <QCryptographicHash>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QProgressBar>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <utility>

namespace sinkscope::ui {

void showJobProgress(QProgressBar *bar, double fraction, const QString &label)
{
    bar->setVisible(true);
    bar->setRange(0, fraction < 0 ? 0 : 1000);
    bar->setValue(int(std::max(0.0, fraction) * 1000));
    bar->setFormat(label);
}

namespace {

QString errorText(const Error &error)
{
    return QString::fromStdString(error.message);
}

} // namespace

ComputeBridge::ComputeBridge(QObject *parent) : QObject(parent) {}

ComputeBridge::~ComputeBridge()
{
    // Jobs still running get their tokens set; ~ComputeThread (a member, so destroyed before the
    // QObject base) joins. Callbacks post to `this`, which therefore outlives every job; events still
    // queued for it are discarded by Qt when it goes.
    m_thread.cancelAll();
}

void ComputeBridge::postToUi(std::function<void()> call)
{
    bool wake = false;
    {
        std::lock_guard lock(m_postedMutex);
        m_posted.push_back(std::move(call));
        wake = !std::exchange(m_drainQueued, true);
    }
    if (wake) {
        // By name: the queued event is then made and freed inside QtCore, and carries no data of ours.
        QMetaObject::invokeMethod(this, "drainPosted", Qt::QueuedConnection);
    }
}

void ComputeBridge::drainPosted()
{
    std::vector<std::function<void()>> calls;
    {
        std::lock_guard lock(m_postedMutex);
        calls.swap(m_posted);
        m_drainQueued = false;
    }
    for (auto &call : calls) {
        call();
    }
    calls.clear(); // with them the results of superseded jobs
    if (!isBusy()) {
        // Every result is delivered and whatever it replaced released: the allocator's free memory goes
        // back to the system, on the compute thread (a queued trim is replaced by a newer one).
        m_thread.submitRaw(
            kReclaimTag, [](const ComputeThread::Job &) { releaseFreeMemory(); }, {},
            SubmitOptions{.cancelRunning = false});
    }
}

void ComputeBridge::begin(const QString &tag, uint64_t generation)
{
    const bool wasBusy = isBusy();
    m_pending.insert(tag, generation);
    if (!wasBusy) {
        emit busyChanged(true);
    }
}

void ComputeBridge::finish(const QString &tag, uint64_t generation)
{
    auto it = m_pending.find(tag);
    if (it == m_pending.end() || it.value() != generation) {
        return;
    }
    m_pending.erase(it);
    if (!isBusy()) {
        emit busyChanged(false);
    }
}

bool ComputeBridge::isCurrent(const QString &tag, uint64_t generation) const
{
    auto it = m_pending.find(tag);
    return it != m_pending.end() && it.value() == generation;
}

ProgressCallback ComputeBridge::progressPoster(ComputeBridge *self, const QString &tag,
                                               std::shared_ptr<const uint64_t> generation, const CancelToken &cancel)
{
    // Runs on the compute thread: throttle here, and compare generations only on the UI thread.
    auto last = std::make_shared<std::chrono::steady_clock::time_point>();
    return [self, tag, generation, last, &cancel](double fraction, const std::string &label) {
        const auto now = std::chrono::steady_clock::now();
        if (fraction >= 1.0 || now - *last > std::chrono::milliseconds(50)) {
            *last = now;
            const QString text = QString::fromStdString(label);
            self->postToUi([self, tag, generation, fraction, text] {
                if (self->isCurrent(tag, *generation)) {
                    emit self->progress(tag, fraction, text);
                }
            });
        }
        return !cancel.isCancelled();
    };
}

QString ComputeBridge::convertedPathFor(const QString &source)
{
    return QString::fromStdString(convertedArchivePath(source.toStdString()));
}

template <typename T, typename Done>
void ComputeBridge::submitJob(const QString &tag, const std::shared_ptr<uint64_t> &generation,
                              std::function<Result<T>(const CancelToken &)> work, Done done)
{
    ComputeBridge *self = this;
    const uint64_t gen = m_thread.submit<T>(
        tag.toStdString(), std::move(work),
        [self, tag, generation, done = std::move(done)](uint64_t, Result<std::shared_ptr<const T>> result) {
            self->postToUi([self, tag, generation, done, result = std::move(result)] {
                if (!self->isCurrent(tag, *generation)) {
                    return;
                }
                self->finish(tag, *generation);
                done(result);
            });
        });
    *generation = gen;
    begin(tag, gen);
}

void ComputeBridge::loadModel(const QString &path, const QString &device)
{
    // A new model makes every result of the old one meaningless.
    cancel(QString::fromLatin1(kRunTag));
    cancel(QString::fromLatin1(kGenerateTag));
    const QString tag = QString::fromLatin1(kModelTag);
    ComputeBridge *self = this;
    auto generation = std::make_shared<uint64_t>(0);
    struct Loaded {
        std::shared_ptr<const Model> model;
        QString path;
    };
    submitJob<Loaded>(
        tag, generation,
        [self, tag, generation, path, device = device.toStdString()](const CancelToken &cancel) -> Result<Loaded> {
            auto loaded = loadModelSource(path.toStdString(), device, progressPoster(self, tag, generation, cancel));
            if (!loaded.ok()) {
                return loaded.error();
            }
            return Loaded{std::move(loaded.value().model), QString::fromStdString(loaded.value().archive)};
        },
        [self, tag, path](const Result<std::shared_ptr<const Loaded>> &result) {
            if (result.ok()) {
                emit self->modelLoaded(result.value()->model, result.value()->path, path);
            } else {
                emit self->failed(tag, errorText(result.error()));
            }
        });
}

void ComputeBridge::run(std::shared_ptr<const Model> model, RunRequest request)
{
    cancel(QString::fromLatin1(kGenerateTag));
    const QString tag = QString::fromLatin1(kRunTag);
    ComputeBridge *self = this;
    auto generation = std::make_shared<uint64_t>(0);
    submitJob<RunSnapshot>(
        tag, generation,
        [self, tag, generation, model, request = std::move(request)](const CancelToken &cancel) -> Result<RunSnapshot> {
            if (!model) {
                return makeError(ErrorCode::InvalidArgument, "no model loaded");
            }
            return computeRunSnapshot(*model, request, cancel, progressPoster(self, tag, generation, cancel));
        },
        [self, tag](const Result<std::shared_ptr<const RunSnapshot>> &result) {
            if (result.ok()) {
                emit self->runFinished(result.value());
            } else {
                emit self->failed(tag, errorText(result.error()));
            }
        });
    emit progress(tag, -1, tr("Running the model"));
}

void ComputeBridge::generate(std::shared_ptr<const Model> model, std::vector<int64_t> prompt, int maxNewTokens)
{
    const QString tag = QString::fromLatin1(kGenerateTag);
    ComputeBridge *self = this;
    auto generation = std::make_shared<uint64_t>(0);
    submitJob<std::vector<int64_t>>(
        tag, generation,
        [self, tag, generation, model = std::move(model), prompt = std::move(prompt),
         maxNewTokens](const CancelToken &cancel) -> Result<std::vector<int64_t>> {
            if (!model) {
                return makeError(ErrorCode::InvalidArgument, "no model loaded");
            }
            GenerateOptions options;
            options.maxNewTokens = maxNewTokens;
            return model->generate(
                prompt, options,
                [self, tag, generation](int64_t id) {
                    self->postToUi([self, tag, generation, id] {
                        if (self->isCurrent(tag, *generation)) {
                            emit self->generatedToken(id);
                        }
                    });
                },
                &cancel);
        },
        [self, tag](const Result<std::shared_ptr<const std::vector<int64_t>>> &result) {
            if (!result.ok() && result.error().code != ErrorCode::Cancelled) {
                emit self->failed(tag, errorText(result.error()));
            }
            emit self->generationFinished(result.ok());
        });
}

void ComputeBridge::hashFile(const QString &path)
{
    const QString tag = QString::fromLatin1(kHashTag);
    ComputeBridge *self = this;
    auto generation = std::make_shared<uint64_t>(0);
    submitJob<QString>(
        tag, generation,
        [path](const CancelToken &cancel) -> Result<QString> {
            QFile file(path);
            if (!file.open(QIODevice::ReadOnly)) {
                return makeError(ErrorCode::Io, path.toStdString() + ": " + file.errorString().toStdString());
            }
            QCryptographicHash hash(QCryptographicHash::Sha256);
            QByteArray chunk;
            while (!(chunk = file.read(1 << 20)).isEmpty()) {
                if (cancel.isCancelled()) {
                    return makeError(ErrorCode::Cancelled, "hashing cancelled");
                }
                hash.addData(chunk);
            }
            return QString::fromLatin1(hash.result().toHex());
        },
        [self, tag, path](const Result<std::shared_ptr<const QString>> &result) {
            if (result.ok()) {
                emit self->fileHashed(path, *result.value());
            } else if (result.error().code != ErrorCode::Cancelled) {
                emit self->failed(tag, errorText(result.error()));
            }
        });
}

void ComputeBridge::submitErased(const QString &tag, const QString &label, ErasedWork work,
                                 std::function<void(std::shared_ptr<const void>)> done)
{
    ComputeBridge *self = this;
    auto generation = std::make_shared<uint64_t>(0);
    submitJob<std::shared_ptr<const void>>(
        tag, generation,
        [self, tag, generation, work = std::move(work)](const CancelToken &cancel) {
            return work(cancel, progressPoster(self, tag, generation, cancel));
        },
        [self, tag, done = std::move(done)](const Result<std::shared_ptr<const std::shared_ptr<const void>>> &result) {
            if (result.ok()) {
                done(*result.value());
            } else if (result.error().code != ErrorCode::Cancelled) {
                emit self->failed(tag, errorText(result.error()));
            }
        });
    emit progress(tag, -1, label);
}

void ComputeBridge::cancel(const QString &tag)
{
    m_thread.cancel(tag.toStdString());
    auto it = m_pending.find(tag);
    if (it != m_pending.end()) {
        finish(tag, it.value());
    }
}

void ComputeBridge::cancelAll()
{
    m_thread.cancelAll();
    const auto tags = m_pending.keys();
    for (const QString &tag : tags) {
        finish(tag, m_pending.value(tag));
    }
}

} // namespace sinkscope::ui
