// sinkscope-cli's figures, decoded with Qt: `analyze --format png,svg,pdf` and `stream-ppl --plot` run as
// a user runs them (subprocess, no display) on the tiny Llama model, and every file they write is read
// back: the PNG decodes at the requested size, the SVG is well-formed XML with the expected elements and
// text, the PDF has a page.
#include "sinkscope/model/convert.h"
#include "support/cli_runner.h"
#include "support/test_paths.h"
#include "support/tiny_models.h"
#include "svg_summary.h"

#include <QFile>
#include <QImage>
#include <QSet>
#include <QXmlStreamReader>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

using namespace sinkscope;
namespace st = sinkscope::testing;

namespace {

using sinkscope::testing::readSvg;
using sinkscope::testing::SvgSummary;

int pdfPages(const std::string &path)
{
    QFile file(QString::fromStdString(path));
    if (!file.open(QIODevice::ReadOnly)) {
        return -1;
    }
    const QByteArray bytes = file.readAll();
    if (!bytes.startsWith("%PDF-")) {
        return -1;
    }
    return int(bytes.count("/Type /Page\n") + bytes.count("/Type /Page\r") + bytes.count("/Type /Page ") +
               bytes.count("/Type /Page/") + bytes.count("/Type /Page>"));
}

class CliFigures : public ::testing::Test
{
protected:
    static void SetUpTestSuite()
    {
        s_dir = new st::TempDir;
        st::writeTinyLlamaGguf(s_dir->file("tiny.gguf"));
        const Status status = convertGguf(s_dir->file("tiny.gguf"), s_dir->file("tiny.pt"));
        ASSERT_TRUE(status.ok()) << status.error().message;
    }
    static void TearDownTestSuite()
    {
        delete s_dir;
        s_dir = nullptr;
    }
    static inline st::TempDir *s_dir = nullptr;
};

} // namespace

TEST_F(CliFigures, AnalyzeWritesTheStandardFiguresInEveryFormat)
{
    st::TempDir out;
    const std::string dir = out.file("figures");
    // No display: the CLI must pick the offscreen platform by itself.
    const st::CliRun r =
        st::runCli({"analyze", "--model", s_dir->file("tiny.pt"), "--prompt", "the cat sat on the mat. the cat",
                    "--out", dir, "--format", "png,svg,pdf", "--top-heads", "2"},
                   "env -u QT_QPA_PLATFORM -u DISPLAY -u WAYLAND_DISPLAY");
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(std::filesystem::exists(dir + "/metrics.json"));
    EXPECT_TRUE(std::filesystem::exists(dir + "/heads.csv"));
    std::vector<std::string> stems = {"sink-heatmap", "received", "massive-activations"};
    int heads = 0;
    for (const auto &entry : std::filesystem::directory_iterator(dir)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind("head-L", 0) == 0 && entry.path().extension() == ".png") {
            stems.push_back(entry.path().stem().string());
            ++heads;
        }
    }
    EXPECT_EQ(heads, 2); // --top-heads 2
    for (const std::string &stem : stems) {
        SCOPED_TRACE(stem);
        const QImage png(QString::fromStdString(dir + "/" + stem + ".png"));
        ASSERT_FALSE(png.isNull());
        EXPECT_EQ(png.size(), QSize(2400, 1800));
        // Not a blank page: many distinct colours (plot, colour map, text).
        QSet<QRgb> colours;
        for (int y = 0; y < png.height(); y += 7) {
            for (int x = 0; x < png.width(); x += 7) {
                colours.insert(png.pixel(x, y));
            }
        }
        EXPECT_GT(colours.size(), 20);
        const SvgSummary svg = readSvg(dir + "/" + stem + ".svg");
        EXPECT_TRUE(svg.wellFormed);
        EXPECT_TRUE(svg.svgRoot);
        EXPECT_TRUE(svg.text.contains(QStringLiteral("Model:"))) << svg.text.left(200).toStdString(); // caption
        EXPECT_GE(pdfPages(dir + "/" + stem + ".pdf"), 1);
    }
    // What each figure shows, from its SVG text.
    const SvgSummary heatmap = readSvg(dir + "/sink-heatmap.svg");
    EXPECT_GE(heatmap.images, 1); // the colour map raster
    EXPECT_TRUE(heatmap.text.contains(QStringLiteral("first_token_mass")));
    EXPECT_TRUE(heatmap.text.contains(QStringLiteral("max |h| / median |h|")));
    EXPECT_TRUE(heatmap.text.contains(QStringLiteral("layer")));
    EXPECT_TRUE(readSvg(dir + "/received.svg").text.contains(QStringLiteral("mean attention received")));
    EXPECT_TRUE(readSvg(dir + "/massive-activations.svg").text.contains(QStringLiteral("Massive activations")));
    const SvgSummary head =
        readSvg(stems.back() == "massive-activations" ? std::string() : dir + "/" + stems.back() + ".svg");
    EXPECT_TRUE(head.text.contains(QStringLiteral("Attention, layer")));
    EXPECT_TRUE(head.text.contains(QStringLiteral("key (attended token)")));

    // Another per-head metric for the heatmap; an unknown one is a usage error naming the choices.
    const st::CliRun other =
        st::runCli({"analyze", "--model", s_dir->file("tiny.pt"), "--prompt", "the cat", "--out", out.file("other"),
                    "--format", "svg", "--heatmap-metric", "alpha_first", "--top-heads", "0"});
    ASSERT_EQ(other.code, 0) << other.err;
    EXPECT_TRUE(readSvg(out.file("other") + "/sink-heatmap.svg").text.contains(QStringLiteral("alpha_first")));
    EXPECT_FALSE(std::filesystem::exists(out.file("other") + "/sink-heatmap.png"));
    const st::CliRun bad = st::runCli({"analyze", "--model", s_dir->file("tiny.pt"), "--prompt", "the cat", "--out",
                                       out.file("bad"), "--heatmap-metric", "nope"});
    EXPECT_EQ(bad.code, 2);
    EXPECT_NE(bad.err.find("first_token_mass"), std::string::npos) << bad.err;
}

TEST_F(CliFigures, StreamPplPlotsNllAgainstPosition)
{
    st::TempDir out;
    std::ofstream(out.file("text.txt")) << "the cat sat on the mat and the dog sat on the log. "
                                           "the cat sat on the mat and the dog sat on the log.";
    const st::CliRun r = st::runCli({"stream-ppl", "--model", s_dir->file("tiny.pt"), "--text", out.file("text.txt"),
                                     "--window", "8", "--sinks", "2", "--plot", out.file("nll.svg")},
                                    "env -u QT_QPA_PLATFORM -u DISPLAY");
    ASSERT_EQ(r.code, 0) << r.err;
    const SvgSummary svg = readSvg(out.file("nll.svg"));
    EXPECT_TRUE(svg.wellFormed);
    EXPECT_GE(svg.paths, 1);
    EXPECT_TRUE(svg.text.contains(QStringLiteral("position (tokens decoded)"))) << svg.text.toStdString();
    EXPECT_TRUE(svg.text.contains(QStringLiteral("NLL"))) << svg.text.toStdString();
    EXPECT_TRUE(svg.text.contains(QStringLiteral("sinks"))) << svg.text.toStdString(); // the series name
}
