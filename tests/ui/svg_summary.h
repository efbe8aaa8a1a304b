// What an exported SVG holds, read with Qt's XML reader: for the figure-export tests.
#pragma once

#include <QFile>
#include <QString>
#include <QXmlStreamReader>

#include <string>

namespace sinkscope::testing {

struct SvgSummary {
    bool wellFormed = false;
    bool svgRoot = false;
    int images = 0;
    int paths = 0; // path and polyline elements
    QString text;  // every <text> element's text, each followed by '|'
};

inline SvgSummary readSvg(const std::string &path)
{
    SvgSummary s;
    QFile file(QString::fromStdString(path));
    if (!file.open(QIODevice::ReadOnly)) {
        return s;
    }
    QXmlStreamReader xml(&file);
    while (!xml.atEnd()) {
        if (xml.readNext() != QXmlStreamReader::StartElement) {
            continue;
        }
        s.svgRoot |= xml.name() == QLatin1String("svg");
        s.images += xml.name() == QLatin1String("image");
        s.paths += xml.name() == QLatin1String("path") || xml.name() == QLatin1String("polyline");
        if (xml.name() == QLatin1String("text")) {
            s.text += xml.readElementText(QXmlStreamReader::IncludeChildElements) + QLatin1Char('|');
        }
    }
    s.wellFormed = !xml.hasError();
    return s;
}

} // namespace sinkscope::testing
