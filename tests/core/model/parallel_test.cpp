// runtime/parallel.h: the one parallel-for covers every item once, honours its thread setting, runs nested
// calls inline, carries LibTorch's thread-local state into its chunks and rethrows what the body throws.
#include "sinkscope/runtime/parallel.h"

#include <c10/core/InferenceMode.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

namespace sinkscope {
namespace {

// Restores the pool's size after a test changes it.
struct ThreadCount {
    int saved = parallelThreads();
    ~ThreadCount() { setParallelThreads(saved); }
};

TEST(ParallelFor, CoversEveryItemExactlyOnce)
{
    for (int64_t count : {0, 1, 7, 128, 1001}) {
        for (int64_t grain : {1, 3, 64, 5000}) {
            std::vector<std::atomic<int>> hits(static_cast<size_t>(count));
            parallelFor(count, grain, [&](int64_t begin, int64_t end) {
                ASSERT_LE(0, begin);
                ASSERT_LT(begin, end);
                ASSERT_LE(end, count);
                for (int64_t i = begin; i < end; ++i) {
                    hits[static_cast<size_t>(i)]++;
                }
            });
            for (int64_t i = 0; i < count; ++i) {
                ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1)
                    << "count " << count << " grain " << grain << " item " << i;
            }
        }
    }
}

TEST(ParallelFor, OneThreadSettingRunsOnTheCallingThread)
{
    ThreadCount restore;
    setParallelThreads(1);
    EXPECT_EQ(parallelThreads(), 1);
    const auto caller = std::this_thread::get_id();
    std::mutex mutex;
    std::set<std::thread::id> seen;
    parallelFor(1000, 1, [&](int64_t, int64_t) {
        std::lock_guard lock(mutex);
        seen.insert(std::this_thread::get_id());
    });
    EXPECT_EQ(seen, std::set<std::thread::id>{caller});
}

TEST(ParallelFor, UsesNoMoreThreadsThanTheSettingAllows)
{
    ThreadCount restore;
    setParallelThreads(2);
    EXPECT_EQ(parallelThreads(), 2);
    std::mutex mutex;
    std::set<std::thread::id> seen;
    parallelFor(64, 1, [&](int64_t, int64_t) {
        std::lock_guard lock(mutex);
        seen.insert(std::this_thread::get_id());
    });
    EXPECT_GE(seen.size(), 1u);
    EXPECT_LE(seen.size(), 2u);
}

TEST(ParallelFor, SeveralThreadsTakePartAndNestedCallsRunInline)
{
    ThreadCount restore;
    setParallelThreads(4);
    EXPECT_EQ(parallelThreads(), 4);
    std::mutex mutex;
    std::set<std::thread::id> outer;
    std::atomic<int64_t> inner{0};
    parallelFor(64, 1, [&](int64_t begin, int64_t end) {
        const auto self = std::this_thread::get_id();
        {
            std::lock_guard lock(mutex);
            outer.insert(self);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2)); // long enough for the workers to join in
        for (int64_t i = begin; i < end; ++i) {
            parallelFor(10, 1, [&](int64_t b, int64_t e) {
                EXPECT_EQ(std::this_thread::get_id(), self); // nested: inline on the chunk's thread
                inner += e - b;
            });
        }
    });
    EXPECT_GT(outer.size(), 1u);
    EXPECT_LE(outer.size(), 4u);
    EXPECT_EQ(inner.load(), 640);
}

TEST(ParallelFor, ChunksRunInTheCallersInferenceMode)
{
    ThreadCount restore;
    setParallelThreads(3);
    for (bool enabled : {true, false}) {
        c10::InferenceMode mode(enabled);
        std::atomic<int> mismatches{0};
        parallelFor(48, 1, [&](int64_t, int64_t) {
            if (c10::InferenceMode::is_enabled() != enabled) {
                ++mismatches;
            }
        });
        EXPECT_EQ(mismatches.load(), 0) << "inference mode " << enabled;
    }
}

TEST(ParallelFor, UsableCoresIsWithinTheMachine)
{
    const int cores = usableCores();
    EXPECT_GE(cores, 1);
    EXPECT_LE(cores, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}

TEST(ParallelFor, RethrowsWhatTheBodyThrows)
{
    EXPECT_THROW(parallelFor(100, 1,
                             [](int64_t begin, int64_t end) {
                                 if (begin <= 50 && 50 < end) {
                                     throw std::runtime_error("item 50");
                                 }
                             }),
                 std::runtime_error);
}

} // namespace
} // namespace sinkscope
