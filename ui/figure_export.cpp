#include "figure_export.h"

#include "sinkscope/common/atomic_file.h"
#include "sinkscope/common/csv.h"

#include <qcustomplot.h>

#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QPdfWriter>
#include <QSaveFile>
#include <QSvgGenerator>
#include <QTextDocument>

namespace sinkscope::ui {

namespace {

constexpr double kLogicalDpi = 96.0;

// Lays out title, content and caption in logical units and draws them.
void paintFigure(QCPPainter *painter, const QSize &logical, const FigureOptions &options, const FigureContent &content)
{
    painter->fillRect(QRect(QPoint(0, 0), logical), options.background);
    const int margin = std::max(8, logical.width() / 60);
    int top = margin;
    if (!options.title.isEmpty()) {
        QFont font = painter->font();
        font.setPointSizeF(std::max(10.0, logical.width() / 70.0));
        font.setBold(true);
        painter->setFont(font);
        painter->setPen(options.foreground);
        const QRect titleRect(margin, top, logical.width() - 2 * margin, QFontMetrics(font).height() * 2);
        const QRect used = painter->boundingRect(titleRect, Qt::AlignHCenter | Qt::TextWordWrap, options.title);
        painter->drawText(titleRect, Qt::AlignHCenter | Qt::TextWordWrap, options.title);
        top += used.height() + margin / 2;
    }
    int bottom = logical.height() - margin;
    if (!options.caption.isEmpty()) {
        QFont font = painter->font();
        font.setBold(false);
        font.setPointSizeF(std::max(7.0, logical.width() / 120.0));
        painter->setFont(font);
        const QRect area(margin, 0, logical.width() - 2 * margin, logical.height() / 4);
        const QRect used = painter->boundingRect(area, Qt::AlignLeft | Qt::TextWordWrap, options.caption);
        bottom -= used.height();
        painter->setPen(options.foreground);
        painter->drawText(QRect(margin, bottom, area.width(), used.height()), Qt::AlignLeft | Qt::TextWordWrap,
                          options.caption);
        bottom -= margin / 2;
    }
    const QSize contentSize(logical.width() - 2 * margin, std::max(50, bottom - top));
    painter->save();
    painter->translate(margin, top);
    content(painter, contentSize);
    painter->restore();
}

} // namespace

bool figureFormatForPath(const QString &path, FigureFormat *format)
{
    const QString suffix = QFileInfo(path).suffix().toLower();
    if (suffix == QLatin1String("png")) {
        *format = FigureFormat::Png;
    } else if (suffix == QLatin1String("svg")) {
        *format = FigureFormat::Svg;
    } else if (suffix == QLatin1String("pdf")) {
        *format = FigureFormat::Pdf;
    } else {
        return false;
    }
    return true;
}

namespace {

// Draws the figure into `path` (the temporary exportFigure commits); messages name `target`.
bool drawFigure(const QString &path, const QString &target, FigureFormat format, const FigureOptions &options,
                const FigureContent &content, QString *error)
{
    const int dpi = std::clamp(options.dpi, 36, 1200);
    const double scale = double(dpi) / kLogicalDpi;
    const QSize pixels = options.pixelSize.expandedTo(QSize(64, 64));
    const QSize logical(std::max(64, int(pixels.width() / scale)), std::max(64, int(pixels.height() / scale)));
    auto fail = [&](const QString &what) {
        if (error) {
            *error = QObject::tr("Cannot write %1: %2").arg(target, what);
        }
        return false;
    };
    switch (format) {
    case FigureFormat::Png: {
        QImage image(pixels, QImage::Format_ARGB32_Premultiplied);
        image.fill(options.background);
        {
            QCPPainter painter(&image);
            painter.setRenderHint(QPainter::Antialiasing);
            painter.setRenderHint(QPainter::TextAntialiasing);
            painter.scale(scale, scale);
            paintFigure(&painter, logical, options, content);
        }
        // Set after painting: fonts were laid out at 96 DPI; the DPI only tells viewers the print size.
        const int dotsPerMeter = int(std::lround(dpi / 0.0254));
        image.setDotsPerMeterX(dotsPerMeter);
        image.setDotsPerMeterY(dotsPerMeter);
        if (!image.save(path, "PNG")) {
            return fail(QObject::tr("the PNG encoder failed"));
        }
        return true;
    }
    case FigureFormat::Svg: {
        QSvgGenerator generator;
        generator.setFileName(path);
        generator.setSize(logical);
        generator.setViewBox(QRect(QPoint(0, 0), logical));
        generator.setResolution(int(kLogicalDpi));
        generator.setTitle(options.title);
        generator.setDescription(options.caption);
        QCPPainter painter;
        if (!painter.begin(&generator)) {
            return fail(QObject::tr("cannot open the SVG file"));
        }
        painter.setMode(QCPPainter::pmVectorized);
        painter.setMode(QCPPainter::pmNoCaching);
        paintFigure(&painter, logical, options, content);
        painter.end();
        return QFileInfo(path).size() > 0 || fail(QObject::tr("nothing was written"));
    }
    case FigureFormat::Pdf: {
        QPdfWriter writer(path);
        writer.setResolution(int(kLogicalDpi));
        writer.setTitle(options.title);
        writer.setCreator(QStringLiteral("SinkScope"));
        const QSizeF points(logical.width() * 72.0 / kLogicalDpi, logical.height() * 72.0 / kLogicalDpi);
        writer.setPageSize(QPageSize(points, QPageSize::Point, QString(), QPageSize::ExactMatch));
        writer.setPageMargins(QMarginsF(0, 0, 0, 0));
        QCPPainter painter;
        if (!painter.begin(&writer)) {
            return fail(QObject::tr("cannot open the PDF file"));
        }
        painter.setMode(QCPPainter::pmVectorized);
        painter.setMode(QCPPainter::pmNoCaching);
        // The writer's page may round by a point; draw into what it actually offers.
        const QSize page = painter.viewport().size();
        paintFigure(&painter, page.isEmpty() ? logical : page, options, content);
        painter.end();
        return QFileInfo(path).size() > 0 || fail(QObject::tr("nothing was written"));
    }
    }
    return fail(QObject::tr("unknown format"));
}

} // namespace

bool exportFigure(const QString &path, FigureFormat format, const FigureOptions &options, const FigureContent &content,
                  QString *error)
{
    // Drawn into a temporary beside the file and renamed over it: a failure leaves the old figure whole.
    auto pending = PendingFile::create(path.toStdString());
    if (!pending) {
        if (error) {
            *error = QObject::tr("Cannot write %1").arg(QString::fromStdString(pending.error().message));
        }
        return false;
    }
    if (!drawFigure(QString::fromStdString(pending->tempPath()), path, format, options, content, error)) {
        return false;
    }
    if (auto ok = pending->commit(); !ok) {
        if (error) {
            *error = QObject::tr("Cannot write %1").arg(QString::fromStdString(ok.error().message));
        }
        return false;
    }
    return true;
}

QString ViewData::toCsv() const
{
    auto row = [](const QStringList &fields) {
        std::vector<std::string> out;
        out.reserve(size_t(fields.size()));
        for (const QString &f : fields) {
            out.push_back(f.toStdString());
        }
        return QString::fromStdString(csvRow(out));
    };
    QString out = row(columns);
    for (const QStringList &r : rows) {
        out += row(r);
    }
    return out;
}

bool writeViewData(const QString &path, const ViewData &data, QString *error)
{
    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly)) {
        if (error) {
            *error = QObject::tr("Cannot write %1: %2").arg(path, file.errorString());
        }
        return false;
    }
    if (QFileInfo(path).suffix().compare(QLatin1String("json"), Qt::CaseInsensitive) == 0) {
        file.write(QJsonDocument(data.json).toJson(QJsonDocument::Indented));
    } else {
        file.write(data.toCsv().toUtf8());
    }
    if (!file.commit()) {
        if (error) {
            *error = QObject::tr("Cannot write %1: %2").arg(path, file.errorString());
        }
        return false;
    }
    return true;
}

} // namespace sinkscope::ui
