// The window's run controller without the window: loading, tokenizing, running, the continuation, the
// devices it offers and the refusals it explains.
#include "run_controller.h"
#include "tiny_window.h"

#include "sinkscope/analysis/metrics.h"

#include <QSignalSpy>

#include <gtest/gtest.h>

using namespace sinkscope;
using namespace sinkscope::ui;

namespace {

class RunControllerTest : public sinkscope::testing::TinyWindowTest
{
protected:
    // A controller with the tiny model loaded.
    static std::unique_ptr<RunController> loaded()
    {
        auto run = std::make_unique<RunController>();
        QSignalSpy ready(run.get(), &RunController::modelLoaded);
        run->loadModel(s_model);
        EXPECT_TRUE(ready.wait(60000));
        return run;
    }
};

} // namespace

TEST_F(RunControllerTest, LoadsTokenizesRunsAndContinues)
{
    auto run = loaded();
    ASSERT_TRUE(run->model());
    EXPECT_EQ(run->modelPath(), s_model);
    EXPECT_EQ(run->deviceId(), QStringLiteral("cpu"));
    QSignalSpy hashed(run.get(), &RunController::modelHashed);
    ASSERT_TRUE(hashed.count() > 0 || hashed.wait(60000));
    EXPECT_EQ(run->modelHash().size(), 64);

    EXPECT_EQ(run->tokenize(QStringLiteral("hello world, hello"), false), QString());
    const std::vector<int64_t> tokens = run->tokens();
    EXPECT_EQ(tokens, run->model()->tokenizer()->encode("hello world, hello"));
    QSignalSpy ready(run.get(), &RunController::snapshotReady);
    EXPECT_EQ(run->run(), QString());
    ASSERT_TRUE(ready.wait(60000));
    const auto snap = run->snapshot();
    ASSERT_TRUE(snap && snap->metrics);
    EXPECT_EQ(int64_t(snap->tokens.size()), int64_t(tokens.size()));
    EXPECT_EQ(int(snap->top.size()), RunController::kTopK);
    auto direct = analyzeTokens(*run->model(), tokens);
    ASSERT_TRUE(direct) << direct.error().message;
    EXPECT_EQ(snap->metrics->headsCsv(), (*direct)->headsCsv());

    QSignalSpy finished(run.get(), &RunController::continuationFinished);
    run->generate();
    ASSERT_TRUE(finished.wait(60000));
    auto greedy = run->model()->generate(tokens, GenerateOptions{.maxNewTokens = RunController::kGreedyTokens});
    ASSERT_TRUE(greedy);
    EXPECT_EQ(run->generated(), *greedy);
    EXPECT_EQ(run->continuationText(), QString::fromStdString(run->model()->tokenizer()->decode(*greedy)));
}

TEST_F(RunControllerTest, LongRunsComputeTheAskedHeadFromTheKeptQueriesAndKeys)
{
    auto run = std::make_unique<RunController>(4); // maps up to 4 tokens only
    QSignalSpy loadedSpy(run.get(), &RunController::modelLoaded);
    run->loadModel(s_model);
    ASSERT_TRUE(loadedSpy.wait(60000));
    run->tokenize(QStringLiteral("hello world, hello world"), false);
    QSignalSpy ready(run.get(), &RunController::snapshotReady);
    ASSERT_EQ(run->run(), QString());
    ASSERT_TRUE(ready.wait(60000));
    ASSERT_TRUE(run->snapshot()->mapsOnDemand);
    QSignalSpy map(run.get(), &RunController::headMapReady);
    run->requestHeadMap(1, 0);
    ASSERT_TRUE(map.wait(60000));
    const auto shown = map.last().at(3).value<std::shared_ptr<const FloatArray>>();
    auto want = computeHeadMap(*run->snapshot(), 1, 0);
    ASSERT_TRUE(shown && want);
    EXPECT_EQ(shown->data, want->data);
}

TEST_F(RunControllerTest, ExplainsWhatItCannotDo)
{
    RunController run;
    EXPECT_EQ(run.run(), QStringLiteral("No model is loaded."));
    QSignalSpy failed(&run, &RunController::failed);
    run.loadModel(QStringLiteral("/nonexistent/model.pt"));
    ASSERT_TRUE(failed.wait(60000));
    EXPECT_EQ(failed.last().at(0).toString(), QLatin1String(ComputeBridge::kModelTag));
    EXPECT_EQ(failed.last().at(1).toString(), QStringLiteral("Could not load the model"));
    EXPECT_TRUE(failed.last().at(2).toString().contains(QStringLiteral("/nonexistent/model.pt")));

    auto withModel = loaded();
    withModel->tokenize(QString(), false);
    EXPECT_TRUE(withModel->run().contains(QStringLiteral("The prompt is empty")));

    // Devices: the CPU always comes first; a device from last time that is not here falls back to it.
    RunController devices;
    devices.setDeviceId(QStringLiteral("cuda:1"));
    QSignalSpy notice(&devices, &RunController::notice);
    devices.setDevices({});
    ASSERT_EQ(devices.devices().size(), 1u);
    EXPECT_EQ(devices.devices().front().id, "cpu");
    EXPECT_EQ(devices.deviceId(), QStringLiteral("cpu"));
    ASSERT_EQ(notice.count(), 1);
    EXPECT_TRUE(notice.last().at(0).toString().contains(QStringLiteral("cuda:1")));
    EXPECT_FALSE(devices.chooseDevice(QStringLiteral("cuda:3")).isEmpty());
    EXPECT_EQ(devices.deviceId(), QStringLiteral("cpu"));

    EXPECT_EQ(RunController::parseTokenIds(QStringLiteral("1 2,3")), (std::vector<int64_t>{1, 2, 3}));
    EXPECT_TRUE(RunController::parseTokenIds(QStringLiteral("1 two")).empty());
}
