#include "lesson_session.h"

#include "sinkscope/runtime/paths.h"

#include <QDir>
#include <QFileInfo>
#include <QJsonArray>

namespace sinkscope::ui {

namespace {

// The view ids and keys the views' restoreState() read (head_view.cpp, overview_view.cpp, ...).
const QString kHead = QStringLiteral("head");
const QString kTokens = QStringLiteral("tokens");
const QString kOverview = QStringLiteral("overview");
const QString kMitigations = QStringLiteral("mitigations");
const QString kProbes = QStringLiteral("probes");
const QString kStreaming = QStringLiteral("streaming");
const QString kScale = QStringLiteral("scale");
const QString kWindow = QStringLiteral("window");
// A window past any map: the head map clamps it to the whole map ("zoom: off").
constexpr qint64 kWholeMap = 1 << 30;

QString q(const std::string &s)
{
    return QString::fromStdString(s);
}

// "default[, category]" or "path[, category]" -> the probes panel's set path and category.
std::pair<QString, QString> probeSet(const std::string &value, const QString &lessonDir)
{
    QString set = q(value).trimmed(), category;
    if (const qsizetype comma = set.indexOf(QLatin1Char(',')); comma >= 0) {
        category = set.mid(comma + 1).trimmed();
        set = set.left(comma).trimmed();
    }
    if (set == QLatin1String("default")) {
        set = q(defaultProbeSetPath());
    } else if (QFileInfo(set).isRelative() && !lessonDir.isEmpty()) {
        set = QDir(lessonDir).filePath(set);
    }
    return {set, category};
}

} // namespace

Session sessionFromLessonState(const lessons::LessonState &state, const QString &modelPath, const QString &lessonDir,
                               const Session &base)
{
    Session s = base;
    if (state.model) {
        s.modelPath = modelPath;
        s.modelSha256.clear();
    }
    if (state.prompt) {
        s.prompt = q(*state.prompt);
    }
    if (state.bos) {
        s.prependBos = *state.bos;
    }
    if (s.prompt != base.prompt || s.prependBos != base.prependBos || s.modelPath != base.modelPath) {
        s.tokens.clear(); // the window tokenizes the new prompt
    }
    if (state.tab) {
        s.currentView = q(*state.tab);
    }
    if (state.colours) {
        s.colourMap = q(*state.colours);
    }
    if (state.select) {
        s.selected = QVector<qint64>(state.select->begin(), state.select->end());
    }

    QJsonObject head = s.views.value(kHead).toObject();
    QJsonObject scale = head.value(kScale).toObject();
    if (state.layer) {
        head.insert(QStringLiteral("layer"), qint64(*state.layer));
        QJsonObject tokens = s.views.value(kTokens).toObject();
        tokens.insert(QStringLiteral("layer"), qint64(*state.layer));
        s.views.insert(kTokens, tokens);
    }
    if (state.head) {
        head.insert(QStringLiteral("head"), qint64(*state.head));
    }
    if (state.scale) {
        scale.insert(QStringLiteral("mapping"), q(*state.scale));
    }
    if (state.clamp) {
        scale.insert(QStringLiteral("clamp_percentile"), *state.clamp > 0);
        if (*state.clamp > 0) {
            scale.insert(QStringLiteral("percentile"), *state.clamp);
        }
    }
    if (state.withoutSink) {
        scale.insert(QStringLiteral("without_sink"), *state.withoutSink);
    }
    if (state.zoom) {
        const auto &z = *state.zoom;
        head.insert(kWindow, z.size() == 4 ? QJsonArray{qint64(z[0]), qint64(z[1]), qint64(z[2]), qint64(z[3])}
                                           : QJsonArray{0, kWholeMap, 0, kWholeMap});
    }
    head.insert(kScale, scale);
    s.views.insert(kHead, head);

    if (state.metric) {
        QJsonObject overview = s.views.value(kOverview).toObject();
        overview.insert(QStringLiteral("metric"), q(*state.metric));
        s.views.insert(kOverview, overview);
    }
    if (state.mitigation) {
        QJsonObject mitigations = s.views.value(kMitigations).toObject();
        mitigations.insert(QStringLiteral("spec"), *state.mitigation == "none" ? QString() : q(*state.mitigation));
        mitigations.insert(QStringLiteral("enabled"), true);
        s.views.insert(kMitigations, mitigations);
    }
    if (state.probes) {
        const auto [set, category] = probeSet(*state.probes, lessonDir);
        QJsonObject probes = s.views.value(kProbes).toObject();
        probes.insert(QStringLiteral("set"), set);
        probes.insert(QStringLiteral("category"), category);
        s.views.insert(kProbes, probes);
    }
    if (state.streamingCache) {
        QJsonObject streaming = s.views.value(kStreaming).toObject();
        streaming.insert(QStringLiteral("cache"), *state.streamingCache);
        s.views.insert(kStreaming, streaming);
    }
    return s;
}

std::optional<Session> lessonSession(const lessons::Lesson &lesson, size_t step, const Session &base, QString *error)
{
    lessons::LessonState state = lesson.stateAt(step);
    if (state.model && *state.model == "gemma3" && gemma3GgufPath().empty()) {
        state.model.reset(); // not installed: the step stays on the current model and the panel says why
    }
    QString modelPath;
    if (state.model) {
        auto resolved = lessons::resolveLessonModel(lesson, step);
        if (!resolved) {
            if (error) {
                *error = q(resolved.error().message);
            }
            return std::nullopt;
        }
        modelPath = q(resolved.value());
    }
    const QString dir = lesson.origin.empty() ? QString() : QFileInfo(q(lesson.origin)).absolutePath();
    return sessionFromLessonState(state, modelPath, dir, base);
}

lessons::LessonState lessonStateFromSession(const Session &session)
{
    lessons::LessonState s;
    s.prompt = session.prompt.toStdString();
    s.bos = session.prependBos;
    if (!session.currentView.isEmpty()) {
        s.tab = session.currentView.toStdString();
    }
    if (!session.colourMap.isEmpty()) {
        s.colours = session.colourMap.toStdString();
    }
    s.select = std::vector<int64_t>(session.selected.begin(), session.selected.end());

    const QJsonObject head = session.views.value(kHead).toObject();
    if (!head.isEmpty()) {
        s.layer = head.value(QStringLiteral("layer")).toInteger();
        s.head = head.value(QStringLiteral("head")).toInteger();
        const QJsonObject scale = head.value(kScale).toObject();
        s.scale = scale.value(QStringLiteral("mapping")).toString(QStringLiteral("linear")).toStdString();
        s.clamp = scale.value(QStringLiteral("clamp_percentile")).toBool()
                      ? scale.value(QStringLiteral("percentile")).toDouble(99.0)
                      : 0.0;
        s.withoutSink = scale.value(QStringLiteral("without_sink")).toBool();
        const QJsonArray w = head.value(kWindow).toArray();
        // Without token ids only the lesson's own "whole map" window reads as no zoom.
        const qint64 last = session.tokens.isEmpty() ? kWholeMap : qint64(session.tokens.size()) - 1;
        if (w.size() == 4 &&
            !(w[0].toInteger() == 0 && w[2].toInteger() == 0 && w[1].toInteger() >= last && w[3].toInteger() >= last)) {
            s.zoom = std::vector<int64_t>{w[0].toInteger(), w[1].toInteger(), w[2].toInteger(), w[3].toInteger()};
        } else {
            s.zoom = std::vector<int64_t>{};
        }
    }
    const QJsonObject overview = session.views.value(kOverview).toObject();
    if (overview.contains(QStringLiteral("metric"))) {
        s.metric = overview.value(QStringLiteral("metric")).toString().toStdString();
    }
    const QJsonObject mitigations = session.views.value(kMitigations).toObject();
    if (mitigations.contains(QStringLiteral("spec"))) {
        const QString spec = mitigations.value(QStringLiteral("spec")).toString().trimmed();
        s.mitigation = spec.isEmpty() ? std::string("none") : spec.toStdString();
    }
    const QJsonObject probes = session.views.value(kProbes).toObject();
    if (const QString set = probes.value(QStringLiteral("set")).toString(); !set.isEmpty()) {
        std::string value = set == q(defaultProbeSetPath()) ? std::string("default") : set.toStdString();
        if (const QString category = probes.value(QStringLiteral("category")).toString(); !category.isEmpty()) {
            value += ", " + category.toStdString();
        }
        s.probes = value;
    }
    const QJsonObject streaming = session.views.value(kStreaming).toObject();
    if (streaming.contains(QStringLiteral("cache"))) {
        s.streamingCache = streaming.value(QStringLiteral("cache")).toInt();
    }
    return s;
}

lessons::LessonState lessonStateDiff(const lessons::LessonState &before, const lessons::LessonState &now)
{
    lessons::LessonState d;
    auto keep = [](auto &out, const auto &b, const auto &n) {
        if (n && (!b || *b != *n)) {
            out = n;
        }
    };
    keep(d.model, before.model, now.model);
    keep(d.prompt, before.prompt, now.prompt);
    keep(d.bos, before.bos, now.bos);
    keep(d.tab, before.tab, now.tab);
    keep(d.layer, before.layer, now.layer);
    keep(d.head, before.head, now.head);
    keep(d.metric, before.metric, now.metric);
    keep(d.scale, before.scale, now.scale);
    keep(d.clamp, before.clamp, now.clamp);
    keep(d.withoutSink, before.withoutSink, now.withoutSink);
    keep(d.colours, before.colours, now.colours);
    keep(d.mitigation, before.mitigation, now.mitigation);
    // An unset zoom or selection is the whole map / nothing selected.
    auto keepList = [](auto &out, const auto &b, const auto &n) {
        if (n && b.value_or(std::vector<int64_t>{}) != *n) {
            out = n;
        }
    };
    keepList(d.zoom, before.zoom, now.zoom);
    keepList(d.select, before.select, now.select);
    keep(d.streamingCache, before.streamingCache, now.streamingCache);
    keep(d.probes, before.probes, now.probes);
    return d;
}

} // namespace sinkscope::ui
