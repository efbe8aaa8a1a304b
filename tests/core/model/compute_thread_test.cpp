// ComputeThread: ordering, replacement of queued jobs by tag, generations, cancellation, the catch-all.
#include "sinkscope/runtime/compute_thread.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using sinkscope::CancelToken;
using sinkscope::ComputeThread;
using sinkscope::ErrorCode;
using sinkscope::Result;

namespace {

// Blocks the compute thread until released, so that later submissions stay queued.
// Whether or not the gate job has started yet, jobs submitted after it stay queued until release.
struct Gate {
    std::promise<void> release;
    std::shared_future<void> released{release.get_future().share()};
    void block(ComputeThread &thread)
    {
        thread.submitRaw("gate", [this](const ComputeThread::Job &) { released.wait(); });
    }
};

} // namespace

TEST(ComputeThread, RunsJobsInOrderOnOneThread)
{
    ComputeThread thread;
    std::mutex mutex;
    std::vector<int> order;
    std::vector<std::thread::id> ids;
    for (int i = 0; i < 5; ++i) {
        thread.submitRaw("job" + std::to_string(i), [&, i](const ComputeThread::Job &) {
            std::lock_guard lock(mutex);
            order.push_back(i);
            ids.push_back(std::this_thread::get_id());
        });
    }
    thread.waitIdle();
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4}));
    ASSERT_EQ(ids.size(), 5u);
    for (const auto &id : ids) {
        EXPECT_EQ(id, ids.front());
        EXPECT_NE(id, std::this_thread::get_id());
    }
}

TEST(ComputeThread, NewRequestReplacesQueuedOneWithSameTag)
{
    ComputeThread thread;
    Gate gate;
    gate.block(thread);
    std::atomic<int> ranA{0}, ranB{0}, ranOther{0};
    const uint64_t first = thread.submitRaw("run", [&](const ComputeThread::Job &) { ++ranA; });
    thread.submitRaw("other", [&](const ComputeThread::Job &) { ++ranOther; });
    const uint64_t second = thread.submitRaw("run", [&](const ComputeThread::Job &) { ++ranB; });
    EXPECT_EQ(second, first + 1);
    EXPECT_FALSE(thread.isCurrent("run", first));
    EXPECT_TRUE(thread.isCurrent("run", second));
    gate.release.set_value();
    thread.waitIdle();
    EXPECT_EQ(ranA.load(), 0);
    EXPECT_EQ(ranB.load(), 1);
    EXPECT_EQ(ranOther.load(), 1);
}

TEST(ComputeThread, NewRequestCancelsTheRunningOneAndItsResultIsStale)
{
    ComputeThread thread;
    std::promise<void> started;
    std::atomic<bool> sawCancel{false};
    uint64_t deliveredGeneration = 0;
    bool deliveredCurrent = true;
    const uint64_t first = thread.submit<int>(
        "run",
        [&](const CancelToken &cancel) -> Result<int> {
            started.set_value();
            while (!cancel.isCancelled()) {
                std::this_thread::sleep_for(1ms);
            }
            sawCancel = true;
            return sinkscope::makeError(ErrorCode::Cancelled, "cancelled");
        },
        [&](uint64_t generation, Result<std::shared_ptr<const int>> result) {
            deliveredGeneration = generation;
            deliveredCurrent = thread.isCurrent("run", generation);
            EXPECT_FALSE(result.ok());
            EXPECT_EQ(result.error().code, ErrorCode::Cancelled);
        });
    started.get_future().wait();
    std::shared_ptr<const int> value;
    const uint64_t second = thread.submit<int>(
        "run", [](const CancelToken &) -> Result<int> { return 42; },
        [&](uint64_t, Result<std::shared_ptr<const int>> result) {
            ASSERT_TRUE(result.ok());
            value = *result;
        });
    thread.waitIdle();
    EXPECT_TRUE(sawCancel.load());
    EXPECT_EQ(deliveredGeneration, first);
    EXPECT_FALSE(deliveredCurrent);
    ASSERT_TRUE(value);
    EXPECT_EQ(*value, 42);
    EXPECT_TRUE(thread.isCurrent("run", second));
}

TEST(ComputeThread, CancelRunningCanBeTurnedOff)
{
    ComputeThread thread;
    std::promise<void> started;
    std::promise<void> release;
    auto released = release.get_future().share();
    std::atomic<bool> cancelled{false};
    thread.submitRaw("gen", [&](const ComputeThread::Job &job) {
        started.set_value();
        released.wait();
        cancelled = job.cancel.isCancelled();
    });
    started.get_future().wait();
    thread.submitRaw(
        "gen", [](const ComputeThread::Job &) {}, {}, sinkscope::SubmitOptions{.cancelRunning = false});
    release.set_value();
    thread.waitIdle();
    EXPECT_FALSE(cancelled.load());
}

TEST(ComputeThread, CancelByTagDropsQueuedAndMakesResultsStale)
{
    ComputeThread thread;
    Gate gate;
    gate.block(thread);
    std::atomic<int> ran{0};
    const uint64_t gen = thread.submitRaw("run", [&](const ComputeThread::Job &) { ++ran; });
    thread.cancel("run");
    EXPECT_FALSE(thread.isCurrent("run", gen));
    EXPECT_GT(thread.generation("run"), gen);
    gate.release.set_value();
    thread.waitIdle();
    EXPECT_EQ(ran.load(), 0);
    EXPECT_FALSE(thread.busy());
}

TEST(ComputeThread, ExceptionsBecomeErrorsAndTheThreadSurvives)
{
    ComputeThread thread;
    std::string message;
    ErrorCode code = ErrorCode::Io;
    thread.submit<int>(
        "boom", [](const CancelToken &) -> Result<int> { throw std::runtime_error("kaputt in layer 3"); },
        [&](uint64_t, Result<std::shared_ptr<const int>> result) {
            ASSERT_FALSE(result.ok());
            message = result.error().message;
            code = result.error().code;
        });
    std::string rawMessage;
    thread.submitRaw(
        "raw", [](const ComputeThread::Job &) { throw 17; },
        [&](uint64_t, const sinkscope::Error &error) { rawMessage = error.message; });
    int after = 0;
    thread.submit<int>(
        "after", [](const CancelToken &) -> Result<int> { return 7; },
        [&](uint64_t, Result<std::shared_ptr<const int>> result) { after = result.ok() ? **result : -1; });
    thread.waitIdle();
    EXPECT_EQ(code, ErrorCode::Internal);
    EXPECT_EQ(message, "kaputt in layer 3");
    EXPECT_EQ(rawMessage, "unknown exception");
    EXPECT_EQ(after, 7);
}

TEST(ComputeThread, DestructorCancelsRunningJob)
{
    std::atomic<bool> sawCancel{false};
    std::promise<void> started;
    {
        ComputeThread thread;
        thread.submitRaw("long", [&](const ComputeThread::Job &job) {
            started.set_value();
            while (!job.cancel.isCancelled()) {
                std::this_thread::sleep_for(1ms);
            }
            sawCancel = true;
        });
        started.get_future().wait();
    }
    EXPECT_TRUE(sawCancel.load());
}
