// The bridge between the UI thread and the compute thread, without a model: a superseded job is
// cancelled and delivers nothing (neither its value nor its progress), cancel() drops results already in
// flight, many rapid requests settle on the newest of each tag, and a bridge destroyed mid-job joins.
// Cheap, and mostly there for the ThreadSanitizer run (docs/reliability.md), which watches every hand-off.
#include "compute_bridge.h"

#include <QSignalSpy>
#include <QTest>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <thread>
#include <vector>

using namespace sinkscope;
using namespace sinkscope::ui;

namespace {

using Work = std::function<Result<int>(const CancelToken &, const ProgressCallback &)>;

// Reports progress under `label` until the job is cancelled (the callback then returns false).
Work untilCancelled(const std::string &label, std::atomic<bool> *started = nullptr)
{
    return [label, started](const CancelToken &, const ProgressCallback &progress) -> Result<int> {
        if (started) {
            started->store(true);
        }
        while (progress(0.5, label)) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        return makeError(ErrorCode::Cancelled, label + " cancelled");
    };
}

Work returning(int value)
{
    return [value](const CancelToken &, const ProgressCallback &progress) -> Result<int> {
        progress(1.0, "value " + std::to_string(value));
        return value;
    };
}

bool waitIdle(const ComputeBridge &bridge)
{
    return QTest::qWaitFor([&] { return !bridge.isBusy(); }, 30000);
}

TEST(ComputeBridge, ASupersededJobIsCancelledAndDeliversNeitherValueNorProgress)
{
    ComputeBridge bridge;
    QSignalSpy failed(&bridge, &ComputeBridge::failed);
    std::vector<int> delivered;
    std::atomic<bool> started{false};
    bridge.submit<int>(QStringLiteral("job"), QStringLiteral("first"), untilCancelled("first", &started),
                       [&](std::shared_ptr<const int> v) { delivered.push_back(*v); });
    ASSERT_TRUE(QTest::qWaitFor([&] { return started.load(); }, 30000));
    // Progress of the first job is still in flight; none of it may arrive once it is superseded.
    QStringList labels;
    QObject::connect(&bridge, &ComputeBridge::progress,
                     [&](const QString &, double, const QString &label) { labels << label; });
    bridge.submit<int>(QStringLiteral("job"), QStringLiteral("second"), returning(2),
                       [&](std::shared_ptr<const int> v) { delivered.push_back(*v); });
    ASSERT_TRUE(waitIdle(bridge));
    EXPECT_EQ(delivered, std::vector<int>{2});
    EXPECT_FALSE(labels.contains(QStringLiteral("first"))) << labels.join(u',').toStdString();
    EXPECT_TRUE(labels.contains(QStringLiteral("value 2"))) << labels.join(u',').toStdString();
    EXPECT_EQ(failed.count(), 0); // a cancelled job is no failure
}

TEST(ComputeBridge, CancelDropsTheRunningJobsResult)
{
    ComputeBridge bridge;
    QSignalSpy busy(&bridge, &ComputeBridge::busyChanged);
    std::atomic<bool> started{false};
    bool delivered = false;
    bridge.submit<int>(QStringLiteral("job"), QStringLiteral("long"), untilCancelled("long", &started),
                       [&](std::shared_ptr<const int>) { delivered = true; });
    ASSERT_TRUE(QTest::qWaitFor([&] { return started.load(); }, 30000));
    bridge.cancel(QStringLiteral("job"));
    EXPECT_FALSE(bridge.isBusy());
    ASSERT_GE(busy.count(), 2);
    EXPECT_FALSE(busy.last().at(0).toBool());
    // Let the cancelled job's result and progress reach the UI thread, then check they were dropped.
    QTest::qWait(100);
    EXPECT_FALSE(delivered);
}

TEST(ComputeBridge, RapidRequestsSettleOnTheNewestOfEachTag)
{
    ComputeBridge bridge;
    QSignalSpy failed(&bridge, &ComputeBridge::failed);
    std::map<QString, std::vector<int>> delivered;
    const QStringList tags{QStringLiteral("a"), QStringLiteral("b"), QStringLiteral("c")};
    int last[3] = {-1, -1, -1};
    for (int i = 0; i < 60; ++i) {
        const int t = i % 3;
        const QString tag = tags[t];
        if (i % 7 == 6) {
            bridge.cancel(tag);
            last[t] = -1;
            continue;
        }
        bridge.submit<int>(tag, tag, returning(i),
                           [&delivered, tag](std::shared_ptr<const int> v) { delivered[tag].push_back(*v); });
        last[t] = i;
        if (i % 5 == 0) {
            QCoreApplication::processEvents(); // some results arrive between requests
        }
    }
    ASSERT_TRUE(waitIdle(bridge));
    EXPECT_EQ(failed.count(), 0);
    for (int t = 0; t < 3; ++t) {
        const auto &got = delivered[tags[t]];
        ASSERT_EQ(last[t], t == 0 ? 57 : (t == 1 ? 58 : 59)) << "the loop's last requests";
        ASSERT_FALSE(got.empty()) << tags[t].toStdString();
        EXPECT_EQ(got.back(), last[t]) << tags[t].toStdString();
        // Results arrive in submission order, each one current when it arrived.
        EXPECT_TRUE(std::is_sorted(got.begin(), got.end())) << tags[t].toStdString();
    }
}

TEST(ComputeBridge, DestroyedWhileAJobRunsCancelsAndJoins)
{
    auto bridge = std::make_unique<ComputeBridge>();
    std::atomic<bool> started{false};
    bool delivered = false;
    bridge->submit<int>(QStringLiteral("job"), QStringLiteral("long"), untilCancelled("long", &started),
                        [&](std::shared_ptr<const int>) { delivered = true; });
    bridge->submit<int>(QStringLiteral("other"), QStringLiteral("queued"), returning(1),
                        [&](std::shared_ptr<const int>) { delivered = true; });
    ASSERT_TRUE(QTest::qWaitFor([&] { return started.load(); }, 30000));
    bridge.reset(); // returns only once the compute thread has stopped
    QTest::qWait(50);
    EXPECT_FALSE(delivered);
}

} // namespace
