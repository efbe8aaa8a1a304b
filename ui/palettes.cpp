#include "palettes.h"

#include <qcustomplot.h>

#include <QApplication>
#include <QPalette>
#include <QStyleFactory>

#include <algorithm>
#include <array>
#include <cmath>

namespace sinkscope::ui {

namespace {

using Stops = std::array<QRgb, 11>;

// matplotlib viridis / magma at 0.0, 0.1, ..., 1.0.
constexpr Stops kViridis = {0x440154, 0x482475, 0x414487, 0x355f8d, 0x2a788e, 0x21918c,
                            0x22a884, 0x44bf70, 0x7ad151, 0xbddf26, 0xfde725};
constexpr Stops kMagma = {0x000004, 0x140e36, 0x3b0f70, 0x641a80, 0x8c2981, 0xb73779,
                          0xde4968, 0xf7705c, 0xfe9f6d, 0xfecf92, 0xfcfdbf};
// Greys runs from white to black so that print figures put "no attention" on the paper colour.
constexpr Stops kGreys = {0xffffff, 0xf0f0f0, 0xd9d9d9, 0xbdbdbd, 0xa3a3a3, 0x898989,
                          0x6f6f6f, 0x525252, 0x363636, 0x1b1b1b, 0x000000};

const Stops &stopsOf(ColourMap map)
{
    switch (map) {
    case ColourMap::Magma:
        return kMagma;
    case ColourMap::Greys:
        return kGreys;
    case ColourMap::Viridis:
        break;
    }
    return kViridis;
}

} // namespace

QStringList colourMapNames()
{
    return {QObject::tr("Viridis"), QObject::tr("Magma"), QObject::tr("Greys")};
}

QString colourMapKey(ColourMap map)
{
    switch (map) {
    case ColourMap::Magma:
        return QStringLiteral("magma");
    case ColourMap::Greys:
        return QStringLiteral("greys");
    case ColourMap::Viridis:
        break;
    }
    return QStringLiteral("viridis");
}

ColourMap colourMapFromKey(const QString &key)
{
    if (key == QLatin1String("magma")) {
        return ColourMap::Magma;
    }
    if (key == QLatin1String("greys")) {
        return ColourMap::Greys;
    }
    return ColourMap::Viridis;
}

QColor colourAt(ColourMap map, double t)
{
    const Stops &stops = stopsOf(map);
    t = std::clamp(std::isnan(t) ? 0.0 : t, 0.0, 1.0) * double(stops.size() - 1);
    const auto i = std::min<size_t>(static_cast<size_t>(t), stops.size() - 2);
    const double f = t - double(i);
    const QColor a(stops[i]);
    const QColor b(stops[i + 1]);
    return QColor::fromRgbF(float(a.redF() + (b.redF() - a.redF()) * f),
                            float(a.greenF() + (b.greenF() - a.greenF()) * f),
                            float(a.blueF() + (b.blueF() - a.blueF()) * f));
}

QCPColorGradient divergingGradient()
{
    QCPColorGradient g;
    g.clearColorStops();
    g.setColorStopAt(0.0, QColor(0x05, 0x30, 0x61));
    g.setColorStopAt(0.2, QColor(0x21, 0x66, 0xac));
    g.setColorStopAt(0.4, QColor(0x92, 0xc5, 0xde));
    g.setColorStopAt(0.5, QColor(0xf7, 0xf7, 0xf7));
    g.setColorStopAt(0.6, QColor(0xf4, 0xa5, 0x82));
    g.setColorStopAt(0.8, QColor(0xb2, 0x18, 0x2b));
    g.setColorStopAt(1.0, QColor(0x67, 0x00, 0x1f));
    g.setNanHandling(QCPColorGradient::nhTransparent);
    return g;
}

QCPColorGradient makeGradient(ColourMap map)
{
    QCPColorGradient gradient;
    gradient.clearColorStops();
    const Stops &stops = stopsOf(map);
    for (size_t i = 0; i < stops.size(); ++i) {
        gradient.setColorStopAt(double(i) / double(stops.size() - 1), QColor(stops[i]));
    }
    gradient.setColorInterpolation(QCPColorGradient::ciRGB);
    gradient.setLevelCount(256);
    // Masked cells (NaN) are transparent: the axis background shows through.
    gradient.setNanHandling(QCPColorGradient::nhNanColor);
    gradient.setNanColor(Qt::transparent);
    return gradient;
}

PlotStyle plotStyle(Theme theme, bool presenter)
{
    PlotStyle s;
    s.theme = theme;
    s.presenter = presenter;
    if (theme == Theme::Dark) {
        s.background = QColor(0x20, 0x22, 0x26);
        s.foreground = presenter ? QColor(Qt::white) : QColor(0xe0, 0xe0, 0xe0);
        s.grid = QColor(0x44, 0x47, 0x4d);
        s.accent = QColor(0x5d, 0xc9, 0xe2);
        s.masked = QColor(0x2c, 0x2f, 0x35);
    } else {
        s.background = QColor(Qt::white);
        s.foreground = presenter ? QColor(Qt::black) : QColor(0x20, 0x20, 0x20);
        s.grid = QColor(0xdd, 0xdd, 0xdd);
        s.accent = QColor(0x21, 0x66, 0xac);
        s.masked = QColor(0xf2, 0xf2, 0xf2);
    }
    s.font = QFont(QApplication::font().family(), presenter ? 15 : 9);
    s.titleFont = QFont(QApplication::font().family(), presenter ? 18 : 10);
    s.titleFont.setBold(presenter);
    s.lineWidth = presenter ? 2.5 : 1.0;
    return s;
}

void applyApplicationTheme(QApplication &app, Theme theme, bool presenter)
{
    app.setStyle(QStyleFactory::create(QStringLiteral("Fusion")));
    QPalette p;
    if (theme == Theme::Dark) {
        const QColor window(0x2b, 0x2d, 0x31), base(0x20, 0x22, 0x26), text(presenter ? 0xffffff : 0xe6e6e6);
        p.setColor(QPalette::Window, window);
        p.setColor(QPalette::WindowText, text);
        p.setColor(QPalette::Base, base);
        p.setColor(QPalette::AlternateBase, window);
        p.setColor(QPalette::Text, text);
        p.setColor(QPalette::Button, window);
        p.setColor(QPalette::ButtonText, text);
        p.setColor(QPalette::ToolTipBase, base);
        p.setColor(QPalette::ToolTipText, text);
        p.setColor(QPalette::Highlight, QColor(0x3d, 0x8e, 0xc9));
        p.setColor(QPalette::HighlightedText, Qt::white);
        p.setColor(QPalette::PlaceholderText, QColor(0x90, 0x90, 0x90));
        p.setColor(QPalette::Disabled, QPalette::Text, QColor(0x80, 0x80, 0x80));
        p.setColor(QPalette::Disabled, QPalette::ButtonText, QColor(0x80, 0x80, 0x80));
        p.setColor(QPalette::Disabled, QPalette::WindowText, QColor(0x80, 0x80, 0x80));
    } else {
        p = app.style()->standardPalette();
        if (presenter) {
            p.setColor(QPalette::WindowText, Qt::black);
            p.setColor(QPalette::Text, Qt::black);
            p.setColor(QPalette::ButtonText, Qt::black);
        }
    }
    app.setPalette(p);
    QFont font = app.font();
    font.setPointSizeF(presenter ? 14 : 9.5);
    app.setFont(font);
}

} // namespace sinkscope::ui
