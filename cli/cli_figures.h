// Figures for sinkscope-cli (analyze, stream-ppl --sweep, profile, merge): the window's own figure code (ui/figures.h),
// drawn headless. Built only with SINKSCOPE_BUILD_GUI (SINKSCOPE_CLI_FIGURES=1); without it
// figuresAvailable() is false and the commands say that figures need the GUI build.
#pragma once

#include "sinkscope/analysis/metrics.h"
#include "sinkscope/analysis/profile.h"
#include "sinkscope/common/array.h"

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace sinkscope::cli {

#if defined(SINKSCOPE_CLI_FIGURES) && SINKSCOPE_CLI_FIGURES
inline constexpr bool figuresAvailable = true;
#else
inline constexpr bool figuresAvailable = false;
#endif

// "png,svg,pdf" (any subset, any order): the suffixes, or empty with *error naming the bad entry.
inline std::vector<std::string> parseFormatList(const std::string &list, std::string *error)
{
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= list.size()) {
        const size_t end = std::min(list.find(',', start), list.size());
        const std::string item = list.substr(start, end - start);
        if (!item.empty()) {
            if (item != "png" && item != "svg" && item != "pdf") {
                *error = "'" + item + "' is not png, svg or pdf";
                return {};
            }
            if (std::find(out.begin(), out.end(), item) == out.end()) {
                out.push_back(item);
            }
        }
        start = end + 1;
    }
    if (out.empty()) {
        *error = "no figure format in '" + list + "' (png, svg, pdf)";
    }
    return out;
}

struct AnalyzeFigures {
    std::string dir;
    std::vector<std::string> formats; // from parseFormatList
    std::shared_ptr<const SinkMetrics> metrics;
    std::map<int64_t, const FloatArray *> attention; // layer -> [H, T, T] for the top heads' maps
    std::string heatmapMetric = "first_token_mass";
    int topHeads = 4;
    std::string caption;
};

struct LineFigure {
    std::string path; // .png, .svg or .pdf
    std::string title, caption, xLabel, yLabel;
    std::vector<std::string> names; // one per series
    std::vector<std::vector<double>> x, y;
};

// A profile's figures (ui/profile_figures.h): layers-<metric>, grid-<model>-<data>, table and, for a
// checkpoint series, checkpoints-sink_1, each in every format. The caption names models, data sets,
// samples, T, epsilon, seed and the bootstrap; `caption` goes before it.
struct ProfileFigures {
    std::string dir;
    std::vector<std::string> formats; // from parseFormatList
    const Profile *profile = nullptr;
    std::string caption;
    // summarizeAll(*profile) when the caller has it (else computed here).
    const ProfileSummaries *summaries = nullptr;
};

// They create a QApplication on the offscreen platform (QT_QPA_PLATFORM unless already set) for the
// duration of the call. They return false with *error set on failure; `written` gets the files and
// `notes` what was left out and why.
#if defined(SINKSCOPE_CLI_FIGURES) && SINKSCOPE_CLI_FIGURES
bool writeAnalyzeFigures(const AnalyzeFigures &request, std::vector<std::string> *written,
                         std::vector<std::string> *notes, std::string *error);
bool writeLineFigure(const LineFigure &figure, std::string *error);
bool writeProfileFigures(const ProfileFigures &request, std::vector<std::string> *written,
                         std::vector<std::string> *notes, std::string *error);
#else
inline bool writeAnalyzeFigures(const AnalyzeFigures &, std::vector<std::string> *, std::vector<std::string> *,
                                std::string *error)
{
    *error = "figures need a build with SINKSCOPE_BUILD_GUI=ON";
    return false;
}
inline bool writeLineFigure(const LineFigure &, std::string *error)
{
    *error = "figures need a build with SINKSCOPE_BUILD_GUI=ON";
    return false;
}
inline bool writeProfileFigures(const ProfileFigures &, std::vector<std::string> *, std::vector<std::string> *,
                                std::string *error)
{
    *error = "figures need a build with SINKSCOPE_BUILD_GUI=ON";
    return false;
}
#endif

} // namespace sinkscope::cli
