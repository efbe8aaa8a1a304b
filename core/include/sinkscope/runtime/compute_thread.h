// The one thread that owns all model work (loading, conversion, forward passes, generation).
//
// Front ends never call Model::load / forward / generate themselves: they submit jobs here and get
// results back through callbacks (RenderDoc's ReplayManager, Hotspot's job tracker).
//
// Contract:
// - Jobs run one at a time, in submission order, on a single std::thread created by the constructor.
//   That thread holds LibTorch's InferenceMode for its whole life (the guard is thread-local).
// - Every job has a tag ("model", "run", "generate", ...). Submitting a job replaces a job with the
//   same tag that is still queued (the replaced job never runs and its callback is never called) and,
//   unless SubmitOptions::cancelRunning is false, cancels the running job with that tag through its
//   CancelToken.
// - Every submission increments the tag's generation and returns it. isCurrent(tag, generation) tells
//   a receiver whether a result is still wanted: a result from a superseded generation must be
//   dropped. cancel(tag) also bumps the generation, so results already in flight become stale.
// - Job bodies run inside a catch-all: an exception becomes an Error (Internal; LibTorch errors without
//   their backtrace) handed to the callback, never escaping the thread.
// - Callbacks run on the compute thread, right after the body; a Qt front end posts them to its own
//   thread (QMetaObject::invokeMethod with Qt::QueuedConnection) and re-checks isCurrent there.
// - The destructor cancels the running job, drops queued ones and joins the thread.
// All member functions are thread safe.
#pragma once

#include "sinkscope/common/result.h"
#include "sinkscope/model/model.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

namespace sinkscope {

struct SubmitOptions {
    bool cancelRunning = true; // a newer job with the same tag cancels the running one
};

class ComputeThread
{
public:
    // What a running job knows about itself. The token is the job's own; it is set when the job is
    // superseded or cancelled, and long calls must be handed it.
    struct Job {
        const CancelToken &cancel;
        uint64_t generation;
    };
    // Runs on the compute thread.
    using Body = std::function<void(const Job &job)>;

    ComputeThread();
    ~ComputeThread();
    ComputeThread(const ComputeThread &) = delete;
    ComputeThread &operator=(const ComputeThread &) = delete;

    // Untyped submission. An exception thrown by `body` is caught and handed to `onException` (with the
    // job's generation), when given. Returns the job's generation.
    uint64_t submitRaw(const std::string &tag, Body body,
                       std::function<void(uint64_t generation, const Error &)> onException = {},
                       SubmitOptions options = {});

    // Typed submission: `work` produces a Result<T>; `done` receives the generation and either the value
    // as an immutable snapshot or the error (also for exceptions and cancellation).
    template <typename T>
    uint64_t submit(const std::string &tag, std::function<Result<T>(const CancelToken &)> work,
                    std::function<void(uint64_t, Result<std::shared_ptr<const T>>)> done, SubmitOptions options = {});

    // True while `generation` is the newest submission of `tag` and the tag was not cancelled since.
    bool isCurrent(const std::string &tag, uint64_t generation) const;
    uint64_t generation(const std::string &tag) const;

    // Cancels the running job with this tag, drops a queued one and makes their results stale.
    void cancel(const std::string &tag);
    void cancelAll();

    // True while a job runs or waits.
    bool busy() const;
    // Blocks until the queue is empty and no job runs (tests, shutdown paths; never on a UI thread).
    void waitIdle() const;

    // Turns the exception being handled into an Error (call inside a catch block only).
    static Error currentExceptionError();

private:
    struct State;
    std::unique_ptr<State> m_state;
};

template <typename T>
uint64_t ComputeThread::submit(const std::string &tag, std::function<Result<T>(const CancelToken &)> work,
                               std::function<void(uint64_t, Result<std::shared_ptr<const T>>)> done,
                               SubmitOptions options)
{
    auto doneShared = std::make_shared<decltype(done)>(std::move(done));
    return submitRaw(
        tag,
        [work = std::move(work), doneShared](const Job &job) {
            Result<T> result = work(job.cancel);
            if (result.ok()) {
                (*doneShared)(job.generation, std::shared_ptr<const T>(std::make_shared<T>(std::move(result).value())));
            } else {
                (*doneShared)(job.generation, result.error());
            }
        },
        [doneShared](uint64_t generation, const Error &error) { (*doneShared)(generation, error); }, options);
}

} // namespace sinkscope
