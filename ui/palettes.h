// Colour maps and window themes. QCustomPlot 2.1.0 has no perceptually uniform presets, so the maps are
// defined here from published control points (matplotlib's viridis and magma, sampled at 11 stops and
// interpolated in RGB). Viridis is the default: perceptually uniform, readable in grey and by the
// common colour-vision deficiencies.
#pragma once

#include <QColor>
#include <QFont>
#include <QString>
#include <QStringList>

class QCPColorGradient;
class QApplication;

namespace sinkscope::ui {

enum class ColourMap { Viridis, Magma, Greys };

QStringList colourMapNames();                   // display names in enum order
QString colourMapKey(ColourMap map);            // stable key for settings/session files ("viridis", ...)
ColourMap colourMapFromKey(const QString &key); // unknown keys give Viridis
QColor colourAt(ColourMap map, double t);       // t in [0, 1], clamped
QCPColorGradient makeGradient(ColourMap map);
// A diverging map for signed differences (blue - white - red, ColorBrewer RdBu, colour-blind safe):
// white is zero at the middle of a symmetric range (symmetricRange), whatever the sequential map.
QCPColorGradient divergingGradient();

enum class Theme { Light, Dark };

// What every plot takes from the window look: colours, fonts and line widths. Presenter mode scales
// fonts and lines and raises contrast for a projector.
struct PlotStyle {
    Theme theme = Theme::Light;
    bool presenter = false;
    QColor background;
    QColor foreground;
    QColor grid;
    QColor accent;   // bars, highlights
    QColor masked;   // cells a query cannot see
    QFont font;      // tick labels
    QFont titleFont; // axis labels, figure titles
    double lineWidth = 1.0;
};

PlotStyle plotStyle(Theme theme, bool presenter);
// Applies the palette and the base font to the whole application (Fusion style for a stable look).
void applyApplicationTheme(QApplication &app, Theme theme, bool presenter);

} // namespace sinkscope::ui
