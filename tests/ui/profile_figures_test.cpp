// A sink profile's figures (cli/cli_figures.h writeProfileFigures, ui/profile_figures.h), drawn from a
// profile built by hand: two models of different shapes, two data sets, five samples each with values
// chosen so the means are known. Every file is read back: the PNG decodes and is not blank, the SVG is
// well-formed and carries the expected text, the PDF starts with %PDF; the set of names is exact.
// SINKSCOPE_PROFILE_FIGURES_DIR=folder keeps the figures there to look at them.
#include "cli_figures.h"
#include "profile_figures.h"
#include "support/test_paths.h"

#include <QFile>
#include <QImage>
#include <QSet>
#include <QXmlStreamReader>

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <set>

using namespace sinkscope;
namespace st = sinkscope::testing;
namespace fs = std::filesystem;

namespace {

constexpr int kSamples = 5;

// The layout profileLayout() gives, reduced to the blocks the figures read.
ProfileLayout layoutOf(int64_t layers, int64_t heads)
{
    ProfileLayout layout;
    layout.layers = layers;
    layout.heads = heads;
    int64_t offset = 0;
    auto add = [&](const std::string &name, int64_t size) {
        layout.blocks.push_back(ProfileBlock{name, name, size, offset});
        offset += size;
    };
    add("head.alpha_first", layers * heads);
    add("head.first_token_mass", layers * heads);
    add("layer.first_token_mass", layers);
    add("layer.sink_1", layers);
    add("layer.massive_top1", layers);
    add("model.sink_1", 1);
    return layout;
}

// Sample i of a cell: alpha_1 is 1 in layer 0 and 0 in the last layer (every sample), a ramp between;
// the first-token mass falls with depth; Sink_1 of sample i is 10 (i + 1) + shift, so its mean is
// 30 + shift; the largest |h| grows by decades.
ProfileCell cellOf(const std::string &model, const std::string &data, int64_t layers, int64_t heads, double shift)
{
    ProfileCell cell;
    cell.model = model;
    cell.data = data;
    cell.layout = layoutOf(layers, heads);
    for (int i = 0; i < kSamples; ++i) {
        ProfileSample sample;
        sample.index = i;
        std::vector<double> &v = sample.values;
        const double jitter = 0.02 * (i - 2);
        for (int64_t l = 0; l < layers; ++l) {
            for (int64_t h = 0; h < heads; ++h) {
                const double ramp = 1.0 - double(l) / double(layers - 1);
                v.push_back(l == 0 || l == layers - 1 ? ramp : std::clamp(ramp + jitter - 0.05 * h, 0.0, 1.0));
            }
        }
        for (int64_t l = 0; l < layers * heads; ++l) {
            v.push_back(0.5 + jitter);
        }
        for (int64_t l = 0; l < layers; ++l) {
            v.push_back(std::clamp(0.9 - 0.1 * double(l) + jitter + shift / 100.0, 0.0, 1.0));
        }
        for (int64_t l = 0; l < layers; ++l) {
            v.push_back(std::clamp(100.0 * (1.0 - double(l) / double(layers)) + 10 * jitter + shift, 0.0, 100.0));
        }
        for (int64_t l = 0; l < layers; ++l) {
            v.push_back(std::pow(10.0, 0.5 + 0.5 * double(l)) * (1.0 + jitter));
        }
        v.push_back(10.0 * (i + 1) + shift);
        EXPECT_EQ(int64_t(v.size()), cell.layout.width());
        cell.samples.push_back(std::move(sample));
    }
    return cell;
}

Profile twoModelProfile(bool steps)
{
    Profile p;
    p.settings.samples = kSamples;
    p.settings.tokens = 64;
    p.settings.seed = 7;
    p.settings.epsilon = 0.3;
    p.settings.bootstrap = 200;
    p.data = {ProfileDataSet{ProfileDataKind::Natural, "natural", ""},
              ProfileDataSet{ProfileDataKind::Random, "random", ""}};
    const std::vector<std::pair<std::string, std::pair<int64_t, int64_t>>> models = {{"modelA", {4, 3}},
                                                                                     {"model B/x", {6, 2}}};
    for (size_t m = 0; m < models.size(); ++m) {
        ProfileModel info;
        info.key = models[m].first;
        info.name = "tiny-" + std::to_string(m);
        info.family = "llama";
        info.layers = models[m].second.first;
        info.heads = models[m].second.second;
        if (steps) {
            info.step = int64_t(1000 * (m + 1));
        }
        p.models.push_back(info);
        for (size_t d = 0; d < p.data.size(); ++d) {
            p.cells.push_back(
                cellOf(info.key, p.data[d].name, info.layers, info.heads, 20.0 * double(m) + 5.0 * double(d)));
        }
    }
    return p;
}

struct SvgSummary {
    bool wellFormed = false;
    bool svgRoot = false;
    QString text;
};

SvgSummary readSvg(const std::string &path)
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
        if (xml.name() == QLatin1String("text")) {
            s.text += xml.readElementText(QXmlStreamReader::IncludeChildElements) + QLatin1Char('|');
        }
    }
    s.wellFormed = !xml.hasError();
    return s;
}

bool startsWithPdf(const std::string &path)
{
    QFile file(QString::fromStdString(path));
    return file.open(QIODevice::ReadOnly) && file.read(5) == "%PDF-";
}

// Distinct colours on a coarse raster: a blank or near-blank page has a handful.
int distinctColours(const QImage &image)
{
    QSet<QRgb> colours;
    for (int y = 0; y < image.height(); y += 5) {
        for (int x = 0; x < image.width(); x += 5) {
            colours.insert(image.pixel(x, y));
        }
    }
    return int(colours.size());
}

bool hasColourNear(const QImage &image, QColor target, int tolerance)
{
    for (int y = 0; y < image.height(); y += 3) {
        for (int x = 0; x < image.width(); x += 3) {
            const QColor c = image.pixelColor(x, y);
            if (std::abs(c.red() - target.red()) <= tolerance && std::abs(c.green() - target.green()) <= tolerance &&
                std::abs(c.blue() - target.blue()) <= tolerance) {
                return true;
            }
        }
    }
    return false;
}

std::string outputDir(const st::TempDir &temp, const std::string &name)
{
    if (const char *keep = std::getenv("SINKSCOPE_PROFILE_FIGURES_DIR"); keep && *keep) {
        return (fs::path(keep) / name).string();
    }
    return temp.file(name);
}

std::set<std::string> filesIn(const std::string &dir)
{
    std::set<std::string> names;
    for (const auto &entry : fs::directory_iterator(dir)) {
        names.insert(entry.path().filename().string());
    }
    return names;
}

} // namespace

TEST(ProfileFigures, WritesEveryFigureInEveryFormat)
{
    st::TempDir temp;
    const std::string dir = outputDir(temp, "models");
    fs::remove_all(dir);
    const Profile profile = twoModelProfile(false);
    std::vector<std::string> written, notes;
    std::string error;
    ASSERT_TRUE(cli::writeProfileFigures({dir, {"png", "svg", "pdf"}, &profile, "sinkscope-cli profile (test)."},
                                         &written, &notes, &error))
        << error;
    EXPECT_TRUE(notes.empty()) << notes.front();

    const std::vector<std::string> stems = {
        "layers-first_token_mass", "layers-sink_1",          "layers-massive_top1",   "grid-modelA-natural",
        "grid-modelA-random",      "grid-model_B_x-natural", "grid-model_B_x-random", "table"};
    std::set<std::string> expected;
    for (const std::string &stem : stems) {
        for (const char *suffix : {".png", ".svg", ".pdf"}) {
            expected.insert(stem + suffix);
        }
    }
    EXPECT_EQ(filesIn(dir), expected); // no checkpoints-sink_1: no model has a step
    EXPECT_EQ(written.size(), expected.size());

    for (const std::string &stem : stems) {
        SCOPED_TRACE(stem);
        const QImage png(QString::fromStdString(dir + "/" + stem + ".png"));
        ASSERT_FALSE(png.isNull());
        EXPECT_GT(distinctColours(png), 20);
        const SvgSummary svg = readSvg(dir + "/" + stem + ".svg");
        EXPECT_TRUE(svg.wellFormed);
        EXPECT_TRUE(svg.svgRoot);
        // The caption: what was measured, how often, with which settings (its lines joined again).
        const QString caption = QString(svg.text).replace(QLatin1Char('|'), QLatin1Char(' ')).simplified();
        for (const char *part :
             {"sinkscope-cli profile (test).", "Models: modelA (tiny-0), model B/x (tiny-1)", "Data: natural, random",
              "n = 5 samples", "T = 64", "seed 7", "= 0.3", "95% percentile bootstrap", "200 resamples"}) {
            EXPECT_TRUE(caption.contains(QString::fromUtf8(part))) << part << " in " << caption.toStdString();
        }
        EXPECT_GT(fs::file_size(dir + "/" + stem + ".pdf"), 1000u);
        EXPECT_TRUE(startsWithPdf(dir + "/" + stem + ".pdf"));
    }

    // Layer figures: one panel per data set, one legend entry per model, the axes named.
    const SvgSummary layers = readSvg(dir + "/layers-first_token_mass.svg");
    for (const char *part : {"natural|", "random|", "modelA|", "model B/x|", "layer|", "first-token mass|"}) {
        EXPECT_TRUE(layers.text.contains(QString::fromUtf8(part))) << part << " in " << layers.text.toStdString();
    }
    EXPECT_EQ(layers.text.count(QStringLiteral("modelA|")), 1); // one legend for both panels
    EXPECT_TRUE(readSvg(dir + "/layers-massive_top1.svg").text.contains(QStringLiteral("log scale")));

    // The grid's colour range is 0..1: alpha_1 = 1 (layer 0) is viridis' yellow end, 0 (last layer) its
    // purple end.
    const QImage grid(QString::fromStdString(dir + "/grid-modelA-natural.png"));
    EXPECT_TRUE(hasColourNear(grid, QColor(0xfd, 0xe7, 0x25), 6));
    EXPECT_TRUE(hasColourNear(grid, QColor(0x44, 0x01, 0x54), 6));
    EXPECT_TRUE(readSvg(dir + "/grid-modelA-natural.svg").text.contains(QStringLiteral("colour range 0")));

    // The table: Sink_1 of modelA on natural has samples 10..50 (mean 30), model B/x on random 35 more.
    const SvgSummary table = readSvg(dir + "/table.svg");
    for (const char *part : {"30.0 [", "35.0 [", "50.0 [", "55.0 [", "n = 5|", "modelA|", "model B/x|", "natural|"}) {
        EXPECT_TRUE(table.text.contains(QString::fromUtf8(part))) << part << " in " << table.text.toStdString();
    }
    const std::vector<ProfileStat> stats = summarize(profile.cells[0], profile.settings);
    const ProfileStat &sink = stats[size_t(profile.cells[0].layout.block("model.sink_1")->offset)];
    EXPECT_DOUBLE_EQ(sink.mean, 30.0);
    EXPECT_TRUE(table.text.contains(QStringLiteral("30.0 [%1, %2]").arg(sink.low, 0, 'f', 1).arg(sink.high, 0, 'f', 1)))
        << table.text.toStdString();
}

TEST(ProfileFigures, CheckpointSeriesAddsSinkAgainstStep)
{
    st::TempDir temp;
    const std::string dir = outputDir(temp, "checkpoints");
    fs::remove_all(dir);
    const Profile profile = twoModelProfile(true);
    std::vector<std::string> written, notes;
    std::string error;
    ASSERT_TRUE(cli::writeProfileFigures({dir, {"svg", "png"}, &profile, ""}, &written, &notes, &error)) << error;
    const std::set<std::string> files = filesIn(dir);
    ASSERT_TRUE(files.count("checkpoints-sink_1.svg")) << written.size();
    EXPECT_TRUE(files.count("checkpoints-sink_1.png"));
    EXPECT_FALSE(files.count("table.pdf")); // only the formats asked for
    const SvgSummary svg = readSvg(dir + "/checkpoints-sink_1.svg");
    EXPECT_TRUE(svg.wellFormed);
    for (const char *part : {"training step|", "natural|", "random|", "steps 1000", "2000"}) {
        EXPECT_TRUE(svg.text.contains(QString::fromUtf8(part))) << part << " in " << svg.text.toStdString();
    }
    EXPECT_GT(distinctColours(QImage(QString::fromStdString(dir + "/checkpoints-sink_1.png"))), 20);
    // The table names the step of a model whose key does not.
    EXPECT_TRUE(readSvg(dir + "/table.svg").text.contains(QStringLiteral("modelA (step 1000)")));
}

TEST(ProfileFigures, ManyCellsAreCappedWithANote)
{
    st::TempDir temp;
    const Profile profile = twoModelProfile(false);
    ui::ProfileFigureSet set;
    set.profile = &profile;
    set.maxGrids = 1;
    QStringList written, notes;
    QString error;
    ASSERT_TRUE(ui::writeProfileFigures(QString::fromStdString(temp.file("capped")), {ui::FigureFormat::Svg}, set,
                                        &written, &notes, &error))
        << error.toStdString();
    int grids = 0;
    for (const QString &f : written) {
        grids += f.contains(QStringLiteral("/grid-"));
    }
    EXPECT_EQ(grids, 1);
    ASSERT_EQ(notes.size(), 1);
    EXPECT_TRUE(notes.front().contains(QStringLiteral("first 1 of 4"))) << notes.front().toStdString();

    // Summaries handed in must match the cells.
    const ProfileSummaries wrong(1);
    set.summaries = &wrong;
    EXPECT_FALSE(ui::writeProfileFigures(QString::fromStdString(temp.file("wrong")), {ui::FigureFormat::Svg}, set,
                                         &written, &notes, &error));
    EXPECT_TRUE(error.contains(QStringLiteral("summaries"))) << error.toStdString();
}

TEST(ProfileFigures, FileStemsAreSafe)
{
    EXPECT_EQ(ui::profileFileStem("SmolLM2-135M-Instruct"), QStringLiteral("SmolLM2-135M-Instruct"));
    EXPECT_EQ(ui::profileFileStem("corpus/"), QStringLiteral("corpus"));
    EXPECT_EQ(ui::profileFileStem("a b/c.jsonl"), QStringLiteral("a_b_c.jsonl"));
    EXPECT_EQ(ui::profileFileStem("../x"), QStringLiteral("x"));
    EXPECT_EQ(ui::profileFileStem("/"), QStringLiteral("x"));
}
