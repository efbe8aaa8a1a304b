// runtime/parallel.h: the one parallel-for covers every item once, honours the thread settings and
// rethrows what the body throws.
#include "sinkscope/runtime/parallel.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

namespace sinkscope {
namespace {

// Restores LibTorch's thread count after a test changes it.
struct ThreadCount {
    int saved = at::get_num_threads();
    ~ThreadCount() { at::set_num_threads(saved); }
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
    at::set_num_threads(1);
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
    at::set_num_threads(2);
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
