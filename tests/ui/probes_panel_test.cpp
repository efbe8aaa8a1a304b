// The probes panel: the table model over hand-made runs (pass/fail, change against the baseline, category
// filter, CSV), and the panel in the window on the tiny Llama: a set runs with the Mitigations tab's spec
// on the compute thread and matches the core's scores; a click loads the probe with the answer marked.
#include "compute_bridge.h"
#include "main_window.h"
#include "mitigation_view.h"
#include "probes_panel.h"

#include "sinkscope/model/convert.h"
#include "support/test_paths.h"
#include "support/tiny_models.h"

#include <QAbstractItemModelTester>
#include <QFile>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QTableView>

#include <gtest/gtest.h>

using namespace sinkscope;
using namespace sinkscope::ui;

namespace {

std::shared_ptr<const ProbeRun> handRun(const std::string &spec,
                                        std::vector<std::tuple<std::string, std::string, bool, double>> rows)
{
    auto run = std::make_shared<ProbeRun>();
    run->spec = spec;
    for (const auto &[id, category, correct, p] : rows) {
        ProbeScore s;
        s.id = id;
        s.category = category;
        s.correct = correct;
        s.firstTokenProbability = p;
        s.answerLogProbability = std::log(p);
        s.greedyText = correct ? " yes" : " no";
        run->scores.push_back(s);
    }
    run->overall = aggregateScores(run->scores);
    return run;
}

} // namespace

TEST(ProbeTableModel, PassFailChangeAndCategoryFilter)
{
    ProbeTableModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::Fatal);
    auto base = handRun("none", {{"a", "geo", true, 0.8}, {"b", "geo", false, 0.1}, {"c", "sci", true, 0.5}});
    auto run =
        handRun("mask-sink:sinks=1", {{"a", "geo", false, 0.3}, {"b", "geo", true, 0.6}, {"c", "sci", true, 0.5}});
    model.setRuns(run, base);
    ASSERT_EQ(model.rowCount(), 3);
    EXPECT_EQ(model.data(model.index(0, ProbeTableModel::Pass)).toString(), "fail (was pass)");
    EXPECT_EQ(model.data(model.index(1, ProbeTableModel::Pass)).toString(), "pass (was fail)");
    EXPECT_EQ(model.data(model.index(2, ProbeTableModel::Pass)).toString(), "pass");
    EXPECT_EQ(model.data(model.index(0, ProbeTableModel::Change)).toString(), "-0.500");
    EXPECT_EQ(model.data(model.index(1, ProbeTableModel::Change)).toString(), "+0.500");
    model.setCategory("sci");
    ASSERT_EQ(model.rowCount(), 1);
    EXPECT_EQ(model.scoreAt(0)->id, "c");
    const ViewData d = model.viewData();
    EXPECT_EQ(d.columns.front(), "id");
    ASSERT_EQ(d.rows.size(), 1);
    EXPECT_EQ(d.rows[0][0], "c");
    EXPECT_EQ(d.toCsv().count('\n'), 2);
    // The baseline run itself: no change column.
    model.setCategory({});
    model.setRuns(base, base);
    EXPECT_EQ(model.data(model.index(0, ProbeTableModel::Change)).toString(), "");
}

TEST(ProbesPanel, RunsTheSetWithTheMitigationAndLoadsAProbe)
{
    sinkscope::testing::TempDir dir;
    sinkscope::testing::writeTinyLlamaGguf(dir.file("tiny.gguf"));
    ASSERT_TRUE(convertGguf(dir.file("tiny.gguf"), dir.file("tiny.pt")).ok());
    QFile set(QString::fromStdString(dir.file("set.json")));
    ASSERT_TRUE(set.open(QIODevice::WriteOnly));
    set.write(R"({"format": "sinkscope-probes", "version": 1, "name": "tiny",
  "grounded_template": "{passage} {question}\nA:",
  "probes": [
    {"id": "cat", "kind": "factual", "category": "animals", "prompt": "the cat sat on the", "answers": ["mat"]},
    {"id": "hat", "kind": "grounded", "category": "reading", "passage": "Ann has a red hat.", "question": "Colour?", "answers": ["red"]}
  ]})");
    set.close();

    MainWindowOptions options{.modelPath = QString::fromStdString(dir.file("tiny.pt")),
                              .prompt = QStringLiteral("hello world")};
    options.useSettings = false;
    MainWindow window(options);
    QSignalSpy shown(&window, &MainWindow::snapshotShown);
    ASSERT_TRUE(shown.wait(60000)) << window.messageBar()->text().toStdString();
    auto *view = window.findChild<ProbesView *>();
    ASSERT_NE(view, nullptr);
    auto *mitigations = window.findChild<MitigationView *>();
    ASSERT_NE(mitigations, nullptr);
    mitigations->setSpec(QStringLiteral("mask-sink"));
    ASSERT_TRUE(view->loadSet(QString::fromStdString(dir.file("set.json"))));
    EXPECT_FALSE(view->loadSet(QString::fromStdString(dir.file("missing.json"))));
    ASSERT_TRUE(view->loadSet(QString::fromStdString(dir.file("set.json"))));

    QSignalSpy ran(view, &ProbesView::runShown);
    view->runSet();
    ASSERT_TRUE(ran.wait(60000));
    auto run = view->shownRun();
    ASSERT_TRUE(run);
    EXPECT_EQ(run->spec, "mask-sink:sinks=1");
    ASSERT_EQ(view->tableModel()->rowCount(), 2);
    EXPECT_NE(view->aggregateText().indexOf("baseline: accuracy"), -1) << view->aggregateText().toStdString();

    // The same numbers as the core on the same model.
    auto model = Model::load(dir.file("tiny.pt"));
    ASSERT_TRUE(model.ok());
    auto parsed = loadProbeSet(dir.file("set.json"));
    ASSERT_TRUE(parsed.ok());
    auto direct = runProbes(**model, *parsed, *parseMitigation("mask-sink"));
    ASSERT_TRUE(direct.ok());
    for (size_t i = 0; i < 2; ++i) {
        EXPECT_NEAR(run->scores[i].firstTokenProbability, (*direct)->scores[i].firstTokenProbability, 1e-6);
        EXPECT_EQ(run->scores[i].greedyTokens, (*direct)->scores[i].greedyTokens);
    }

    // A click loads the probe as the prompt with the answer marked.
    auto *table = view->findChild<QTableView *>();
    ASSERT_NE(table, nullptr);
    emit table->clicked(view->tableModel()->index(1, 0));
    EXPECT_EQ(window.promptEditor()->toPlainText(), "Ann has a red hat. Colour?\nA: red");
    const auto marks = window.promptEditor()->extraSelections();
    ASSERT_EQ(marks.size(), 1);
    EXPECT_EQ(marks[0].cursor.selectedText(), " red");
    EXPECT_EQ(view->currentData().rows.size(), 2);
}
