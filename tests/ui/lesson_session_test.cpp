// Lesson steps as sessions: the state in force laid over the window's session in the keys the views read,
// what a session records as a lesson state, the diff a recorded step writes, and `selected` in session files.
#include "lesson_session.h"

#include "sinkscope/runtime/paths.h"
#include "support/test_paths.h"

#include <QJsonArray>

#include <gtest/gtest.h>

#include <fstream>

using namespace sinkscope;
using namespace sinkscope::ui;

namespace {

const char *kLesson = R"(---
sinkscope-lesson: 1
id: session-test
title: Sessions
audience: tests
duration: 5
---

## First
model: tiny.pt
prompt: the cat sat
bos: off
tab: head
layer: 1
head: 3
scale: log
clamp: 99.5
without_sink: on
colours: magma
mitigation: mask-sink
zoom: 0 5 0 4
select: 0, 2
streaming: cache 16
probes: default, dates
metric: alpha_first

Caption.

## Second
tab: overview
clamp: off
zoom: off

Only the tab, the clamp and the zoom change.
)";

// The lesson's folder, with the model file it names.
const QString &lessonDir()
{
    static sinkscope::testing::TempDir dir;
    static const QString path = [] {
        std::ofstream(dir.file("tiny.pt")) << "not read";
        return QString::fromStdString(dir.path());
    }();
    return path;
}

lessons::Lesson lesson()
{
    auto l = lessons::parseLesson(kLesson, (lessonDir() + QStringLiteral("/session-test.md")).toStdString());
    EXPECT_TRUE(l.ok()) << (l.ok() ? "" : l.error().message);
    return l.ok() ? l.value() : lessons::Lesson{};
}

Session userSession()
{
    Session s;
    s.modelPath = QStringLiteral("/models/user.pt");
    s.prompt = QStringLiteral("my own prompt");
    s.prependBos = true;
    s.tokens = {1, 2, 3};
    s.currentView = QStringLiteral("metrics");
    s.colourMap = QStringLiteral("viridis");
    s.theme = QStringLiteral("dark");
    s.views.insert(QStringLiteral("head"),
                   QJsonObject{{"layer", 0},
                               {"head", 0},
                               {"pooling", "mean"},
                               {"scale", QJsonObject{{"mapping", "linear"}, {"shared", true}}}});
    s.views.insert(QStringLiteral("overview"), QJsonObject{{"metric", "first_token_mass"}, {"activations", false}});
    s.views.insert(QStringLiteral("metrics"), QJsonObject{{"sort", "row_entropy"}});
    return s;
}

} // namespace

TEST(LessonSession, StepStateBecomesTheViewsKeysOverTheUsersSession)
{
    const Session base = userSession();
    QString error;
    const auto s = lessonSession(lesson(), 0, base, &error);
    ASSERT_TRUE(s) << error.toStdString();
    EXPECT_EQ(s->modelPath, lessonDir() + QStringLiteral("/tiny.pt")); // relative to the lesson file
    EXPECT_EQ(s->prompt, QStringLiteral("the cat sat"));
    EXPECT_FALSE(s->prependBos);
    EXPECT_TRUE(s->tokens.isEmpty()); // a new prompt: the window tokenizes it
    EXPECT_EQ(s->currentView, QStringLiteral("head"));
    EXPECT_EQ(s->colourMap, QStringLiteral("magma"));
    EXPECT_EQ(s->theme, QStringLiteral("dark")); // not a lesson field: the user's
    EXPECT_EQ(s->selected, (QVector<qint64>{0, 2}));

    const QJsonObject head = s->views.value("head").toObject();
    EXPECT_EQ(head.value("layer").toInteger(), 1);
    EXPECT_EQ(head.value("head").toInteger(), 3);
    EXPECT_EQ(head.value("pooling").toString(), QStringLiteral("mean")); // kept
    EXPECT_EQ(head.value("window").toArray(), (QJsonArray{0, 5, 0, 4}));
    const QJsonObject scale = head.value("scale").toObject();
    EXPECT_EQ(scale.value("mapping").toString(), QStringLiteral("log"));
    EXPECT_TRUE(scale.value("clamp_percentile").toBool());
    EXPECT_DOUBLE_EQ(scale.value("percentile").toDouble(), 99.5);
    EXPECT_TRUE(scale.value("without_sink").toBool());
    EXPECT_TRUE(scale.value("shared").toBool()); // kept
    EXPECT_EQ(s->views.value("tokens").toObject().value("layer").toInteger(), 1);

    const QJsonObject overview = s->views.value("overview").toObject();
    EXPECT_EQ(overview.value("metric").toString(), QStringLiteral("alpha_first"));
    EXPECT_FALSE(overview.value("activations").toBool(true)); // kept
    EXPECT_EQ(s->views.value("metrics").toObject().value("sort").toString(), QStringLiteral("row_entropy"));
    EXPECT_EQ(s->views.value("mitigations").toObject().value("spec").toString(), QStringLiteral("mask-sink"));
    const QJsonObject probes = s->views.value("probes").toObject();
    EXPECT_EQ(probes.value("set").toString(), QString::fromStdString(defaultProbeSetPath()));
    EXPECT_EQ(probes.value("category").toString(), QStringLiteral("dates"));
    EXPECT_EQ(s->views.value("streaming").toObject(), (QJsonObject{{"cache", 16}}));
}

TEST(LessonSession, StepsAreCumulativeAndUnsetFieldsKeepTheUsersState)
{
    Session base = userSession();
    const auto s = lessonSession(lesson(), 1, base, nullptr);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->currentView, QStringLiteral("overview"));
    EXPECT_EQ(s->prompt, QStringLiteral("the cat sat")); // from the first step
    const QJsonObject head = s->views.value("head").toObject();
    EXPECT_EQ(head.value("layer").toInteger(), 1);
    EXPECT_FALSE(head.value("scale").toObject().value("clamp_percentile").toBool(true));
    const QJsonArray whole = head.value("window").toArray();
    ASSERT_EQ(whole.size(), 4); // "zoom: off": a window past any map, clamped to the whole map
    EXPECT_EQ(whole[0].toInteger(), 0);
    EXPECT_GT(whole[1].toInteger(), 1000000);

    // A lesson that names no model, prompt or BOS leaves them (and the exact token ids) to the user.
    lessons::Lesson l;
    l.steps.push_back(lessons::LessonStep{});
    l.steps[0].state.tab = "tokens";
    const auto own = lessonSession(l, 0, base, nullptr);
    ASSERT_TRUE(own);
    EXPECT_EQ(own->modelPath, base.modelPath);
    EXPECT_EQ(own->prompt, base.prompt);
    EXPECT_EQ(own->tokens, base.tokens);
    EXPECT_EQ(own->currentView, QStringLiteral("tokens"));
}

TEST(LessonSession, SessionGivesBackTheLessonStateAndRecordsOnlyChanges)
{
    const lessons::Lesson l = lesson();
    const lessons::LessonState first = l.stateAt(0);
    const Session s = sessionFromLessonState(first, QStringLiteral("/m.pt"), QStringLiteral("/lessons/here"), {});
    lessons::LessonState back = lessonStateFromSession(s);
    EXPECT_EQ(back.prompt, first.prompt);
    EXPECT_EQ(back.bos, first.bos);
    EXPECT_EQ(back.tab, first.tab);
    EXPECT_EQ(back.layer, first.layer);
    EXPECT_EQ(back.head, first.head);
    EXPECT_EQ(back.metric, first.metric);
    EXPECT_EQ(back.scale, first.scale);
    EXPECT_EQ(back.clamp, first.clamp);
    EXPECT_EQ(back.withoutSink, first.withoutSink);
    EXPECT_EQ(back.colours, first.colours);
    EXPECT_EQ(back.mitigation, first.mitigation);
    EXPECT_EQ(back.zoom, first.zoom);
    EXPECT_EQ(back.select, first.select);
    EXPECT_EQ(back.streamingCache, first.streamingCache);
    EXPECT_EQ(back.probes, first.probes);

    // The second step's state, recorded after the first: only what changed is written.
    const Session second = sessionFromLessonState(l.stateAt(1), QStringLiteral("/m.pt"), {}, {});
    lessons::LessonState now = lessonStateFromSession(second);
    now.model = first.model;
    const lessons::LessonState diff = lessonStateDiff(first, now);
    EXPECT_EQ(diff.tab, std::optional<std::string>("overview"));
    EXPECT_EQ(diff.clamp, std::optional<double>(0.0));
    EXPECT_FALSE(diff.prompt);
    EXPECT_FALSE(diff.layer);
    EXPECT_FALSE(diff.model);
    EXPECT_FALSE(diff.select);
    EXPECT_FALSE(diff.mitigation);
    // An unset selection or zoom equals an empty one: nothing to write.
    lessons::LessonState none, empty;
    empty.select = std::vector<int64_t>{};
    empty.zoom = std::vector<int64_t>{};
    EXPECT_TRUE(lessonStateDiff(none, empty).empty());
}

TEST(LessonSession, SelectedTokensRoundTripThroughSessionJson)
{
    Session s = userSession();
    s.selected = {0, 4};
    QString error;
    const auto back = Session::fromJson(s.toJson(), &error);
    ASSERT_TRUE(back) << error.toStdString();
    EXPECT_EQ(back->selected, (QVector<qint64>{0, 4}));
    // Older sessions have no "selected".
    QJsonObject old = userSession().toJson();
    EXPECT_FALSE(old.contains("selected"));
    EXPECT_TRUE(Session::fromJson(old, &error)->selected.isEmpty());
    old.insert("selected", QJsonArray{"x"});
    EXPECT_FALSE(Session::fromJson(old, &error));
    EXPECT_NE(error.indexOf("selected"), -1);
}
