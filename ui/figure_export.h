// Figures and data out of the window: PNG (chosen pixel size and DPI), SVG and PDF with a title, the
// plot (axis labels and colour bar included) and a caption naming the model and the prompt; and the
// data of a view as CSV or JSON.
//
// Every format is drawn by the same code at 96 logical DPI: raster output scales the painter by
// dpi / 96, so a PNG at 300 DPI is the SVG/PDF figure, rasterised, with the DPI recorded in the file.
#pragma once

#include <QColor>
#include <QJsonObject>
#include <QSize>
#include <QString>

#include <functional>

class QCPPainter;

namespace sinkscope::ui {

enum class FigureFormat { Png, Svg, Pdf };

// From the file suffix (.png, .svg, .pdf); nullopt-like false when unknown.
bool figureFormatForPath(const QString &path, FigureFormat *format);

struct FigureOptions {
    QSize pixelSize{2400, 1800}; // PNG size in pixels; SVG/PDF use the same size at `dpi` as physical size
    int dpi = 300;
    QString title;
    QString caption;
    QColor background = Qt::white;
    QColor foreground = Qt::black;
};

// Draws the figure content into a rectangle given in logical (96 DPI) units; the painter is already
// translated so the rectangle starts at (0, 0).
using FigureContent = std::function<void(QCPPainter *painter, const QSize &size)>;

// Writes the figure; on failure returns false and sets *error to a message naming the file.
bool exportFigure(const QString &path, FigureFormat format, const FigureOptions &options, const FigureContent &content,
                  QString *error);

// The data behind a view: a flat CSV table and a JSON document with the same numbers plus context.
struct ViewData {
    QStringList columns;
    QVector<QStringList> rows;
    QJsonObject json;
    QString toCsv() const;
};

bool writeViewData(const QString &path, const ViewData &data, QString *error); // .csv or .json by suffix

} // namespace sinkscope::ui
