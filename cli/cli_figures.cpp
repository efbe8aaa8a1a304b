#include "cli_figures.h"

#include "figure_app.h"
#include "figures.h"
#include "profile_figures.h"

#include <QDir>

namespace sinkscope::cli {

bool writeAnalyzeFigures(const AnalyzeFigures &request, std::vector<std::string> *written,
                         std::vector<std::string> *notes, std::string *error)
{
    FigureApp app;
    ui::StandardFigureSet set;
    set.metrics = request.metrics;
    set.attention = request.attention;
    set.heatmapMetric = request.heatmapMetric;
    set.topHeads = request.topHeads;
    set.caption = QString::fromStdString(request.caption);
    QList<ui::FigureFormat> formats;
    for (const std::string &f : request.formats) {
        ui::FigureFormat format;
        if (ui::figureFormatForPath(QStringLiteral("x.") + QString::fromStdString(f), &format)) {
            formats.append(format);
        }
    }
    QStringList files, skipped;
    QString message;
    const bool ok =
        ui::writeStandardFigures(QString::fromStdString(request.dir), formats, set, &files, &skipped, &message);
    for (const QString &f : files) {
        written->push_back(QDir::toNativeSeparators(f).toStdString());
    }
    for (const QString &n : skipped) {
        notes->push_back(n.toStdString());
    }
    if (!ok && error) {
        *error = message.toStdString();
    }
    return ok;
}

namespace {

QList<ui::FigureFormat> figureFormats(const std::vector<std::string> &names)
{
    QList<ui::FigureFormat> formats;
    for (const std::string &f : names) {
        ui::FigureFormat format;
        if (ui::figureFormatForPath(QStringLiteral("x.") + QString::fromStdString(f), &format)) {
            formats.append(format);
        }
    }
    return formats;
}

} // namespace

bool writeProfileFigures(const ProfileFigures &request, std::vector<std::string> *written,
                         std::vector<std::string> *notes, std::string *error)
{
    FigureApp app;
    ui::ProfileFigureSet set;
    set.profile = request.profile;
    set.summaries = request.summaries;
    set.caption = QString::fromStdString(request.caption);
    QStringList files, skipped;
    QString message;
    const bool ok = ui::writeProfileFigures(QString::fromStdString(request.dir), figureFormats(request.formats), set,
                                            &files, &skipped, &message);
    for (const QString &f : files) {
        if (written) {
            written->push_back(QDir::toNativeSeparators(f).toStdString());
        }
    }
    for (const QString &n : skipped) {
        if (notes) {
            notes->push_back(n.toStdString());
        }
    }
    if (!ok && error) {
        *error = message.toStdString();
    }
    return ok;
}

bool writeLineFigure(const LineFigure &figure, std::string *error)
{
    FigureApp app;
    ui::LinePlot plot;
    plot.xLabel = QString::fromStdString(figure.xLabel);
    plot.yLabel = QString::fromStdString(figure.yLabel);
    for (size_t i = 0; i < figure.names.size() && i < figure.x.size() && i < figure.y.size(); ++i) {
        plot.series.push_back({QString::fromStdString(figure.names[i]), figure.x[i], figure.y[i]});
    }
    ui::FigureOptions options;
    options.pixelSize = QSize(2400, 1500);
    options.dpi = 200;
    options.title = QString::fromStdString(figure.title);
    options.caption = QString::fromStdString(figure.caption);
    QString message;
    if (!ui::writeLinePlot(QString::fromStdString(figure.path), plot, options, &message)) {
        if (error) {
            *error = message.toStdString();
        }
        return false;
    }
    return true;
}

} // namespace sinkscope::cli
