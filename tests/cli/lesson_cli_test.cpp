// sinkscope-cli lesson as a teacher runs it: --list (text and JSON), check (bad input named by file, line
// and field, in one line), run (--strict, --json, --handout with a page per step), on the tiny Llama; and
// the built-in course on the default model, every check confirmed, every handout page drawn.
#include "support/cli_runner.h"
#include "support/test_paths.h"
#include "support/tiny_models.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
namespace st = sinkscope::testing;

namespace {

st::CliRun cli(const std::vector<std::string> &args, const std::string &env = "")
{
    return st::runCli(args, "SINKSCOPE_TORCH_THREADS=1 " + env);
}

size_t lineCount(const std::string &text)
{
    size_t lines = 0;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        // Qt's note about XDG_RUNTIME_DIR on a bare machine is not ours.
        if (!line.empty() && line.rfind("QStandardPaths", 0) != 0) {
            ++lines;
        }
    }
    return lines;
}

std::string lessonText(const std::string &id, const std::string &steps)
{
    return "---\nsinkscope-lesson: 1\nid: " + id + "\ntitle: Lesson " + id +
           "\naudience: a test\nduration: 10\nsources: Xiao et al. 2024\n---\n" + steps;
}

// The steps used on the tiny model: every tab whose figure the handout draws differently.
const char *kTinySteps = R"(
## The first token
model: tiny.pt
prompt: 1 2 3 4 5 6 7 8 9 10 11 12
tab: overview
check: tokens >= 12
question: Where does the attention go?
answer: To the first token, mostly.

{{tokens}} tokens, first-token mass in layer 0: {{mean(first_token_mass, layer 0) | .3}}.

## One head, log scale
tab: head
layer: 1
head: 1
scale: log
zoom: 0 8 0 8

The map of $A_{q,k}$ for one head.

## Received per token
tab: tokens
layer: 0

What each token receives.

## The window and the sinks
tab: streaming
streaming: cache 6
check: stream_ppl(dense) > 0

Dense perplexity {{stream_ppl(dense) | .2}}.

## Masking the sink
tab: mitigations
mitigation: mask-sink
check: ppl(mask-sink) > 0
)";

// Page count and, per page, the share of non-white pixels (pdftoppm, 20 dpi, grey).
struct PdfPages {
    int pages = 0;
    std::vector<double> inked;
};

PdfPages readPdf(const std::string &pdf, const std::string &dir)
{
    PdfPages out;
    const std::string prefix = (fs::path(dir) / "page").string();
    if (std::system(("pdftoppm -r 20 -gray '" + pdf + "' '" + prefix + "'").c_str()) != 0) {
        return out;
    }
    std::vector<fs::path> files;
    for (const auto &e : fs::directory_iterator(dir)) {
        if (e.path().extension() == ".pgm") {
            files.push_back(e.path());
        }
    }
    std::sort(files.begin(), files.end());
    for (const fs::path &f : files) {
        std::ifstream in(f, std::ios::binary);
        std::string magic;
        int w = 0, h = 0, maxv = 0;
        in >> magic >> w >> h >> maxv;
        in.get();
        std::vector<unsigned char> px(size_t(w) * size_t(h));
        in.read(reinterpret_cast<char *>(px.data()), std::streamsize(px.size()));
        size_t ink = 0;
        for (unsigned char p : px) {
            ink += p < 200;
        }
        out.inked.push_back(px.empty() ? 0 : double(ink) / double(px.size()));
    }
    out.pages = int(files.size());
    return out;
}

class LessonCli : public ::testing::Test
{
protected:
    static void SetUpTestSuite()
    {
        s_dir = std::make_unique<st::TempDir>();
        const st::CliRun r = st::convertTinyLlama(*s_dir);
        ASSERT_EQ(r.code, 0) << r.err;
    }
    static void TearDownTestSuite() { s_dir.reset(); }
    static std::string write(const std::string &name, const std::string &text)
    {
        std::ofstream(s_dir->file(name)) << text;
        return s_dir->file(name);
    }
    static std::unique_ptr<st::TempDir> s_dir;
};
std::unique_ptr<st::TempDir> LessonCli::s_dir;

} // namespace

TEST_F(LessonCli, ListsTheLessonsOfItsFolderInOrder)
{
    st::TempDir folder;
    std::ofstream(folder.file("02-second.md")) << lessonText("second", "\n## A\nprompt: hi\n\n## B\n");
    std::ofstream(folder.file("01-first.md")) << lessonText("first", "\n## A\nprompt: hi\n");
    std::ofstream(folder.file("notes.txt")) << "not a lesson";
    const std::string env = "SINKSCOPE_LESSONS=" + st::shellQuote(folder.path());
    const st::CliRun json = cli({"lesson", "--list", "--json"}, env);
    ASSERT_EQ(json.code, 0) << json.err;
    const auto j = nlohmann::json::parse(json.out);
    ASSERT_EQ(j["lessons"].size(), 2u);
    EXPECT_EQ(j["lessons"][0]["id"], "first");
    EXPECT_EQ(j["lessons"][0]["title"], "Lesson first");
    EXPECT_EQ(j["lessons"][0]["steps"], 1);
    EXPECT_EQ(j["lessons"][1]["id"], "second");
    EXPECT_EQ(j["lessons"][1]["steps"], 2);

    const st::CliRun text = cli({"lesson", "--list"}, env);
    ASSERT_EQ(text.code, 0) << text.err;
    EXPECT_NE(text.out.find("first"), std::string::npos);
    EXPECT_LT(text.out.find("Lesson first"), text.out.find("Lesson second"));

    // A broken file in the folder is named, not skipped silently.
    std::ofstream(folder.file("03-broken.md")) << lessonText("broken", "\n## A\nprompt: hi\ncolour: red\n");
    const st::CliRun broken = cli({"lesson", "--list"}, env);
    EXPECT_EQ(broken.code, 1);
    EXPECT_NE(broken.err.find("03-broken.md:"), std::string::npos) << broken.err;
}

TEST_F(LessonCli, BadLessonFilesGetOneLineNamingFileLineAndField)
{
    struct Case {
        std::string name, steps, expected;
    };
    const std::vector<Case> cases = {
        {"unknown-field.md", "\n## A\nprompt: hi\ncolour: red\n", "unknown-field.md:12: colour:"},
        {"bad-spec.md", "\n## A\nprompt: hi\nmitigation: mask-sink:strength=lots\n", "bad-spec.md:12: mitigation:"},
        {"missing-model.md", "\n## A\nmodel: nowhere.pt\nprompt: hi\n", "missing-model.md:11: model:"},
        {"layer-99.md", "\n## A\nmodel: tiny.pt\nprompt: 1 2 3\ntab: head\nlayer: 99\n", "layer-99.md:14: layer:"},
        {"bad-check.md", "\n## A\nprompt: hi\ncheck: share(first_token_mass >, layers 2..)\n",
         "bad-check.md:12: check:"},
    };
    for (const Case &c : cases) {
        const std::string path = write(c.name, lessonText("bad", c.steps));
        const st::CliRun r = cli({"lesson", "check", path});
        EXPECT_EQ(r.code, 1) << c.name << ": " << r.out;
        EXPECT_EQ(lineCount(r.err), 1u) << r.err;
        EXPECT_NE(r.err.find(c.expected), std::string::npos) << c.name << ": " << r.err;
    }
    const st::CliRun missing = cli({"lesson", "check", "no-such-lesson"});
    EXPECT_EQ(missing.code, 1);
    EXPECT_EQ(lineCount(missing.err), 1u) << missing.err;
    EXPECT_NE(missing.err.find("no-such-lesson"), std::string::npos);

    const std::string good = write("good.md", lessonText("good", kTinySteps));
    const st::CliRun ok = cli({"lesson", "check", good});
    EXPECT_EQ(ok.code, 0) << ok.err;
    EXPECT_NE(ok.out.find("5 steps: valid"), std::string::npos) << ok.out;
}

TEST_F(LessonCli, StrictRunFailsInOneLineWhenACheckIsNotConfirmed)
{
    const std::string path = write("unconfirmed.md", lessonText("unconfirmed", R"(
## Too many tokens
model: tiny.pt
prompt: 1 2 3 4
check: tokens > 1000
)"));
    const st::CliRun lenient = cli({"lesson", "run", path, "--json"});
    ASSERT_EQ(lenient.code, 0) << lenient.err;
    const auto j = nlohmann::json::parse(lenient.out);
    EXPECT_EQ(j["checks"]["total"], 1);
    EXPECT_EQ(j["checks"]["not_confirmed"], 1);
    EXPECT_EQ(j["steps"][0]["check"]["status"], "not confirmed");

    const st::CliRun strict = cli({"lesson", "run", path, "--strict"});
    EXPECT_EQ(strict.code, 1);
    std::string last;
    std::istringstream lines(strict.err);
    for (std::string line; std::getline(lines, line);) {
        if (line.rfind("sinkscope-cli lesson:", 0) == 0) {
            EXPECT_TRUE(last.empty()) << "two failure lines: " << strict.err;
            last = line;
        }
    }
    EXPECT_NE(last.find("unconfirmed.md:13: step 1 \"Too many tokens\": check 'tokens > 1000' not confirmed"),
              std::string::npos)
        << strict.err;
}

TEST_F(LessonCli, RunsEveryStepAndWritesAHandoutPagePerStep)
{
    const std::string path = write("tiny-lesson.md", lessonText("tiny-lesson", kTinySteps));
    const st::CliRun r = cli({"lesson", "run", path, "--strict", "--json", "--handout", s_dir->file("tiny.pdf")});
    if (r.code != 0 && r.err.find("handouts need a build") != std::string::npos) {
        GTEST_SKIP() << "handouts need the GUI build";
    }
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["checks"]["total"], 3);
    EXPECT_EQ(j["checks"]["confirmed"], 3);
    EXPECT_EQ(j["steps"][0]["caption"].get<std::string>().find("{{"), std::string::npos) << "placeholders filled";
    const std::string tokens = std::to_string(j["steps"][0]["tokens"].get<int>()) + " tokens, first-token mass";
    EXPECT_EQ(j["steps"][0]["caption"].get<std::string>().rfind(tokens, 0), 0u) << j["steps"][0]["caption"];

    st::TempDir pages;
    const PdfPages pdf = readPdf(s_dir->file("tiny.pdf"), pages.path());
    ASSERT_EQ(pdf.pages, 6) << "a page per step and the answers";
    for (int i = 0; i < 5; ++i) {
        // A page with a figure is well above a page of text alone (under 1%).
        EXPECT_GT(pdf.inked[size_t(i)], 0.015) << "page " << i + 1;
    }
    EXPECT_GT(pdf.inked[5], 0.002) << "the answers page";

    const st::CliRun wrongSuffix = cli({"lesson", "run", path, "--handout", s_dir->file("tiny.png")});
    EXPECT_EQ(wrongSuffix.code, 2);
    const st::CliRun noFolder = cli({"lesson", "run", path, "--handout", s_dir->file("no/such/dir/x.pdf")});
    EXPECT_EQ(noFolder.code, 1);
    EXPECT_NE(noFolder.err.find("does not exist"), std::string::npos) << noFolder.err;
}

// The built-in course on the default model: what a teacher gets on a fresh installation. Slow in a
// sanitizer build (the streaming lesson decodes token by token), so it runs in the dev build only.
TEST(LessonCourse, EveryBuiltInLessonRunsWithEveryCheckConfirmedAndAFullHandout)
{
#if defined(__SANITIZE_ADDRESS__)
    GTEST_SKIP() << "the whole course runs in the dev build";
#endif
    if (st::smollm2GgufPath().empty()) {
        GTEST_SKIP() << "default model not installed (run tools/setup.sh)";
    }
    const st::CliRun list = cli({"lesson", "--list", "--json"});
    ASSERT_EQ(list.code, 0) << list.err;
    const auto lessons = nlohmann::json::parse(list.out)["lessons"];
    ASSERT_GE(lessons.size(), 6u) << "the built-in course";
    for (const auto &entry : lessons) {
        const std::string id = entry["id"];
        const int steps = entry["steps"];
        EXPECT_GE(steps, 5) << id;
        EXPECT_LE(steps, 10) << id;
        st::TempDir dir;
        const std::string pdf = dir.file(id + ".pdf");
        const st::CliRun r = st::runCli({"lesson", "run", id, "--strict", "--json", "--handout", pdf});
        if (r.code != 0 && r.err.find("handouts need a build") != std::string::npos) {
            GTEST_SKIP() << "handouts need the GUI build";
        }
        ASSERT_EQ(r.code, 0) << id << ": " << r.err;
        const auto j = nlohmann::json::parse(r.out);
        const auto &checks = j["checks"];
        // Steps skipped for a model that is not installed (Gemma 3 270M) have no check counted.
        EXPECT_EQ(checks["confirmed"], checks["total"]) << id;
        EXPECT_GT(checks["total"].get<int>(), 0) << id << ": a lesson without one check";
        st::TempDir pages;
        const PdfPages read = readPdf(pdf, pages.path());
        ASSERT_EQ(read.pages, steps + 1) << id;
        for (int i = 0; i < steps; ++i) {
            EXPECT_GT(read.inked[size_t(i)], 0.01) << id << " page " << i + 1;
        }
    }
}
