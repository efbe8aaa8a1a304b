// Session files: everything needed to reproduce a figure. JSON with a format version; the model is
// named by path and identified by the SHA-256 of its contents, the prompt by its text and the exact
// token ids that were run (BOS included), and the views by their own saved state.
#pragma once

#include <QJsonObject>
#include <QString>
#include <QVector>

#include <optional>

namespace sinkscope::ui {

struct Session {
    static constexpr int kVersion = 1;
    QString modelPath;
    QString modelSha256; // empty when unknown at save time
    QString prompt;
    bool prependBos = true;
    QVector<qint64> tokens;
    QString currentView;      // AnalysisView::viewId()
    QString colourMap;        // colourMapKey()
    QString theme;            // "light" / "dark"
    QJsonObject views;        // viewId -> AnalysisView::saveState()
    QVector<qint64> selected; // selected token positions (chips and head map outline); "selected", optional

    QJsonObject toJson() const;
    // nullopt and *error set for a file that is not a SinkScope session or has a newer version.
    static std::optional<Session> fromJson(const QJsonObject &json, QString *error);
    bool save(const QString &path, QString *error) const;
    static std::optional<Session> load(const QString &path, QString *error);
};

} // namespace sinkscope::ui
