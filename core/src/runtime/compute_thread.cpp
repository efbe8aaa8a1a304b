#include "sinkscope/runtime/compute_thread.h"

#include "torch_util.h"

#include <c10/core/InferenceMode.h>
#include <c10/util/Exception.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <mutex>
#include <new>
#include <thread>

namespace sinkscope {

namespace {

struct QueuedJob {
    std::string tag;
    uint64_t generation = 0;
    std::shared_ptr<CancelToken> cancel;
    ComputeThread::Body body;
    std::function<void(uint64_t, const Error &)> onException;
};

} // namespace

struct ComputeThread::State {
    mutable std::mutex mutex;
    std::condition_variable wake;         // worker: a job arrived or stop was asked
    mutable std::condition_variable idle; // waitIdle(): queue drained and nothing running
    std::deque<QueuedJob> queue;
    std::map<std::string, uint64_t> generations;
    // The running job's tag and token, so that a newer submission can cancel it.
    std::string runningTag;
    std::shared_ptr<CancelToken> runningCancel;
    bool running = false;
    bool stop = false;
    std::thread thread;

    void loop();
};

void ComputeThread::State::loop()
{
    // Every forward pass of this process happens here: no autograd graph, no version counters.
    c10::InferenceMode inferenceGuard;
    for (;;) {
        QueuedJob job;
        {
            std::unique_lock lock(mutex);
            wake.wait(lock, [this] { return stop || !queue.empty(); });
            if (stop) {
                return;
            }
            job = std::move(queue.front());
            queue.pop_front();
            running = true;
            runningTag = job.tag;
            runningCancel = job.cancel;
        }
        try {
            job.body(Job{*job.cancel, job.generation});
        } catch (...) {
            const Error error = currentExceptionError();
            if (job.onException) {
                try {
                    job.onException(job.generation, error);
                } catch (...) {
                    // A failing error handler has nowhere left to report to; the thread must survive.
                }
            }
        }
        // Captured state (models, results) is released here, on the compute thread, not by a receiver.
        job = QueuedJob{};
        {
            std::lock_guard lock(mutex);
            running = false;
            runningTag.clear();
            runningCancel.reset();
            if (queue.empty()) {
                idle.notify_all();
            }
        }
    }
}

ComputeThread::ComputeThread() : m_state(std::make_unique<State>())
{
    m_state->thread = std::thread([state = m_state.get()] { state->loop(); });
}

ComputeThread::~ComputeThread()
{
    {
        std::lock_guard lock(m_state->mutex);
        m_state->stop = true;
        m_state->queue.clear();
        if (m_state->runningCancel) {
            m_state->runningCancel->cancel();
        }
    }
    m_state->wake.notify_all();
    m_state->thread.join();
}

uint64_t ComputeThread::submitRaw(const std::string &tag, Body body,
                                  std::function<void(uint64_t, const Error &)> onException, SubmitOptions options)
{
    uint64_t generation = 0;
    {
        std::lock_guard lock(m_state->mutex);
        generation = ++m_state->generations[tag];
        std::erase_if(m_state->queue, [&](const QueuedJob &queued) { return queued.tag == tag; });
        if (options.cancelRunning && m_state->running && m_state->runningTag == tag && m_state->runningCancel) {
            m_state->runningCancel->cancel();
        }
        m_state->queue.push_back(
            QueuedJob{tag, generation, std::make_shared<CancelToken>(), std::move(body), std::move(onException)});
    }
    m_state->wake.notify_one();
    return generation;
}

bool ComputeThread::isCurrent(const std::string &tag, uint64_t generation) const
{
    std::lock_guard lock(m_state->mutex);
    auto it = m_state->generations.find(tag);
    return it != m_state->generations.end() && it->second == generation;
}

uint64_t ComputeThread::generation(const std::string &tag) const
{
    std::lock_guard lock(m_state->mutex);
    auto it = m_state->generations.find(tag);
    return it == m_state->generations.end() ? 0 : it->second;
}

void ComputeThread::cancel(const std::string &tag)
{
    std::lock_guard lock(m_state->mutex);
    ++m_state->generations[tag];
    std::erase_if(m_state->queue, [&](const QueuedJob &queued) { return queued.tag == tag; });
    if (m_state->running && m_state->runningTag == tag && m_state->runningCancel) {
        m_state->runningCancel->cancel();
    }
    if (m_state->queue.empty() && !m_state->running) {
        m_state->idle.notify_all();
    }
}

void ComputeThread::cancelAll()
{
    std::lock_guard lock(m_state->mutex);
    for (auto &[tag, generation] : m_state->generations) {
        ++generation;
    }
    m_state->queue.clear();
    if (m_state->runningCancel) {
        m_state->runningCancel->cancel();
    }
    if (!m_state->running) {
        m_state->idle.notify_all();
    }
}

bool ComputeThread::busy() const
{
    std::lock_guard lock(m_state->mutex);
    return m_state->running || !m_state->queue.empty();
}

void ComputeThread::waitIdle() const
{
    std::unique_lock lock(m_state->mutex);
    m_state->idle.wait(lock, [this] { return !m_state->running && m_state->queue.empty(); });
}

Error ComputeThread::currentExceptionError()
{
    try {
        throw;
    } catch (const c10::Error &e) {
        return detail::torchError(e, "LibTorch");
    } catch (const std::bad_alloc &) {
        return makeError(ErrorCode::OutOfMemory, "out of memory; use fewer tokens or fewer attention maps");
    } catch (const std::exception &e) {
        return detail::torchErrorText(e.what(), "");
    } catch (...) {
        return makeError(ErrorCode::Internal, "unknown exception");
    }
}

} // namespace sinkscope
