#include "session.h"

#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QSaveFile>

namespace sinkscope::ui {

QJsonObject Session::toJson() const
{
    QJsonArray ids;
    for (qint64 id : tokens) {
        ids.append(id);
    }
    QJsonArray chosen;
    for (qint64 position : selected) {
        chosen.append(position);
    }
    QJsonObject json{{QStringLiteral("format"), QStringLiteral("sinkscope-session")},
                     {QStringLiteral("version"), kVersion},
                     {QStringLiteral("model"),
                      QJsonObject{{QStringLiteral("path"), modelPath}, {QStringLiteral("sha256"), modelSha256}}},
                     {QStringLiteral("prompt"), QJsonObject{{QStringLiteral("text"), prompt},
                                                            {QStringLiteral("prepend_bos"), prependBos},
                                                            {QStringLiteral("tokens"), ids}}},
                     {QStringLiteral("current_view"), currentView},
                     {QStringLiteral("colour_map"), colourMap},
                     {QStringLiteral("theme"), theme},
                     {QStringLiteral("views"), views}};
    if (!selected.isEmpty()) {
        json.insert(QStringLiteral("selected"), chosen);
    }
    return json;
}

std::optional<Session> Session::fromJson(const QJsonObject &json, QString *error)
{
    auto fail = [&](const QString &message) -> std::optional<Session> {
        if (error) {
            *error = message;
        }
        return std::nullopt;
    };
    if (json.value(QStringLiteral("format")).toString() != QLatin1String("sinkscope-session")) {
        return fail(QObject::tr("not a SinkScope session (missing \"format\": \"sinkscope-session\")"));
    }
    const int version = json.value(QStringLiteral("version")).toInt();
    if (version < 1 || version > kVersion) {
        return fail(
            QObject::tr("session version %1 is not supported (this build reads %2)").arg(version).arg(kVersion));
    }
    Session s;
    const QJsonObject model = json.value(QStringLiteral("model")).toObject();
    s.modelPath = model.value(QStringLiteral("path")).toString();
    s.modelSha256 = model.value(QStringLiteral("sha256")).toString();
    const QJsonObject prompt = json.value(QStringLiteral("prompt")).toObject();
    s.prompt = prompt.value(QStringLiteral("text")).toString();
    s.prependBos = prompt.value(QStringLiteral("prepend_bos")).toBool(true);
    for (const QJsonValue &v : prompt.value(QStringLiteral("tokens")).toArray()) {
        if (!v.isDouble()) {
            return fail(QObject::tr("prompt.tokens must be integers"));
        }
        s.tokens.push_back(v.toInteger());
    }
    s.currentView = json.value(QStringLiteral("current_view")).toString();
    s.colourMap = json.value(QStringLiteral("colour_map")).toString();
    s.theme = json.value(QStringLiteral("theme")).toString();
    s.views = json.value(QStringLiteral("views")).toObject();
    for (const QJsonValue &v : json.value(QStringLiteral("selected")).toArray()) {
        if (!v.isDouble()) {
            return fail(QObject::tr("selected must be token positions (integers)"));
        }
        s.selected.push_back(v.toInteger());
    }
    return s;
}

bool Session::save(const QString &path, QString *error) const
{
    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly) || file.write(QJsonDocument(toJson()).toJson(QJsonDocument::Indented)) < 0 ||
        !file.commit()) {
        if (error) {
            *error = QObject::tr("Cannot write %1: %2").arg(path, file.errorString());
        }
        return false;
    }
    return true;
}

std::optional<Session> Session::load(const QString &path, QString *error)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly)) {
        if (error) {
            *error = QObject::tr("Cannot read %1: %2").arg(path, file.errorString());
        }
        return std::nullopt;
    }
    QJsonParseError parseError;
    const QJsonDocument doc = QJsonDocument::fromJson(file.readAll(), &parseError);
    if (doc.isNull() || !doc.isObject()) {
        if (error) {
            *error = QObject::tr("%1: not JSON (%2)").arg(path, parseError.errorString());
        }
        return std::nullopt;
    }
    QString why;
    auto session = fromJson(doc.object(), &why);
    if (!session && error) {
        *error = QStringLiteral("%1: %2").arg(path, why);
    }
    return session;
}

} // namespace sinkscope::ui
