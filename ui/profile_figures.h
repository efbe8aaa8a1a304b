// The figures of a sink profile (sinkscope/analysis/profile.h), drawn by the window's figure code for
// `sinkscope-cli profile` / `merge` (headless, through cli/cli_figures.h):
// - layers-<metric>: a per-layer block (layer.first_token_mass, layer.sink_1, layer.massive_top1) against
//   the layer, one panel per data set, one line per model, its bootstrap interval as a shaded band;
// - grid-<model>-<data>: the layer x head heatmap of the mean of head.alpha_first (Gu et al.'s alpha_1),
//   colour range fixed at 0..1 so grids compare across models;
// - table: model.sink_1 (Sink_1^epsilon, %) per model and data set as "mean [low, high]";
// - checkpoints-sink_1: model.sink_1 against the training step, one line per data set, when at least two
//   models of the profile carry a step.
// Every figure's caption names the models, data sets, samples, T, epsilon, seed and the bootstrap.
//
// Inputs are the core's plain values; nothing here runs a model. Qt GUI objects are created, so a
// Q(Gui)Application must exist. UI thread (or the CLI's main thread) only.
#pragma once

#include "figure_export.h"
#include "palettes.h"

#include "sinkscope/analysis/profile.h"

#include <QColor>
#include <QList>
#include <QString>
#include <QStringList>

#include <limits>
#include <string>
#include <vector>

class QCPPainter;

namespace sinkscope::ui {

// One line with its interval band: x ascending, NaN entries leave a gap.
struct BandSeries {
    QString name;
    QColor colour;
    std::vector<double> x, mean, low, high;
};
struct BandPanel {
    QString title; // above the panel
    std::vector<BandSeries> series;
};
// Panels side by side sharing the y range; one legend below them (series names of the first panel
// that has each name).
struct BandPlot {
    QString xLabel, yLabel;
    bool logX = false;
    bool logY = false;
    bool integerX = false;                                  // ticks on whole numbers (layers)
    double yMin = std::numeric_limits<double>::quiet_NaN(); // fixed y range where finite (0..1 for shares)
    double yMax = std::numeric_limits<double>::quiet_NaN();
    std::vector<BandPanel> panels;
};
void renderBandPlot(QCPPainter *painter, const QSize &size, const BandPlot &plot, const PlotStyle &style);

// A table of text cells: header row, header column, cells[row][column] with one or two lines each.
struct TextTable {
    QString corner;
    QStringList columns, rows;
    std::vector<std::vector<QString>> cells;   // main line
    std::vector<std::vector<QString>> details; // smaller second line (may be empty)
};
void renderTextTable(QCPPainter *painter, const QSize &size, const TextTable &table, const PlotStyle &style);

// The per-layer blocks drawn as layers-<metric> (name without "layer.").
const std::vector<std::string> &profileLayerFigureMetrics();

// "Models: ...; data: ...; n = ...; T = ...; epsilon ...; seed ...; bootstrap ..." for captions.
QString profileCaption(const Profile &profile);
// A file-name-safe form of a model key or data set name ("corpus/" -> "corpus", "a b" -> "a_b").
QString profileFileStem(const std::string &name);

struct ProfileFigureSet {
    const Profile *profile = nullptr; // required
    // summarizeAll(*profile) (the bootstrap of a large profile takes seconds); computed here when null.
    const ProfileSummaries *summaries = nullptr;
    QString caption; // put before profileCaption() (e.g. the command that made the profile)
    QSize pixelSize{2400, 1500};
    int dpi = 200;
    int maxGrids = 12; // grid-<model>-<data> figures at most; a note says how many were left out
};

// Writes the figures above into `dir` (created), each in every format. `written` receives the paths;
// `notes` what was left out and why. False with *error when a file cannot be written or nothing is given.
bool writeProfileFigures(const QString &dir, const QList<FigureFormat> &formats, const ProfileFigureSet &set,
                         QStringList *written, QStringList *notes, QString *error);

} // namespace sinkscope::ui
