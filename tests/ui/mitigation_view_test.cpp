// The mitigation panel: the spec builder's output parses, a mitigation reruns on the compute thread and
// shows baseline, mitigated and difference maps that match the core's numbers, toggling off and on shows
// cached results without running the model, the dormancy test fills the layer x head map with the core's
// values, and bad specs are refused with the parser's message.
#include "compute_bridge.h"
#include "heatmap_plot.h"
#include "main_window.h"
#include "mitigation_view.h"
#include "tiny_window.h"

#include "sinkscope/interventions/effects.h"
#include "sinkscope/interventions/mitigation.h"
#include "sinkscope/model/convert.h"
#include "support/test_paths.h"
#include "support/tiny_models.h"

#include <QComboBox>
#include <QFile>
#include <QPushButton>
#include <QSignalSpy>
#include <QTableWidget>
#include <QXmlStreamReader>

#include <gtest/gtest.h>

#include <cmath>

using namespace sinkscope;
using namespace sinkscope::ui;

namespace {

class MitigationViewTest : public sinkscope::testing::TinyWindowTest
{
protected:
    // The window after its first run, with the mitigation tab in front.
    static std::unique_ptr<MainWindow> open(MitigationView **view)
    {
        auto window = openAndRun({.modelPath = s_model, .prompt = QStringLiteral("hello world, hello there")});
        *view = window->findChild<MitigationView *>();
        EXPECT_NE(*view, nullptr);
        window->showView(QStringLiteral("mitigations"));
        return window;
    }
};

double cell(HeatmapPlot *plot, int key, int query)
{
    return plot->colourMap()->data()->cell(key, query);
}

} // namespace

TEST(MitigationBuilder, StepTextForEveryMethodParses)
{
    for (const MitigationMethodInfo &method : mitigationMethods()) {
        std::vector<double> values;
        for (const auto &p : method.params) {
            values.push_back(p.example);
        }
        const QString step = mitigationStepText(method, values, QStringLiteral("L1H0+L0"));
        auto parsed = parseMitigation(step.toStdString());
        ASSERT_TRUE(parsed.ok()) << step.toStdString() << ": " << parsed.error().message;
        EXPECT_EQ(parsed->steps.size(), 1u);
        EXPECT_EQ(mitigationMethodName(parsed->steps[0].method), method.name);
        EXPECT_EQ(parsed->steps[0].scoped, method.takesHeads) << step.toStdString();
    }
    const auto &zerotune = *std::find_if(mitigationMethods().begin(), mitigationMethods().end(),
                                         [](const auto &m) { return std::string(m.name) == "zerotune"; });
    EXPECT_EQ(mitigationStepText(zerotune, {0.25}, QStringLiteral("L2H3")),
              QStringLiteral("zerotune:gamma=0.25,heads=L2H3"));
    const auto &resid = *std::find_if(mitigationMethods().begin(), mitigationMethods().end(),
                                      [](const auto &m) { return std::string(m.name) == "resid"; });
    EXPECT_EQ(mitigationStepText(resid, {1, 3}, QStringLiteral("L0")), QStringLiteral("resid:mode=mean,layer=3"));
}

TEST(MitigationBuilder, HeadScopeTextCompressesWholeLayers)
{
    std::vector<std::vector<bool>> chosen(3, std::vector<bool>(2, false));
    EXPECT_EQ(headScopeText(chosen), QString()); // none: the default scope
    chosen[1] = {true, true};
    chosen[2][1] = true;
    EXPECT_EQ(headScopeText(chosen), QStringLiteral("L1+L2H1"));
    for (auto &row : chosen) {
        row = {true, true};
    }
    EXPECT_EQ(headScopeText(chosen), QString()); // all: the default scope
    // What the dialog writes reads back through the core's scope parser.
    HeadScopeDialog dialog(3, 2, QStringLiteral("L1+L2H1"), nullptr);
    EXPECT_EQ(dialog.scope(), QStringLiteral("L1+L2H1"));
}

// The builder is the registry's: one entry per method, in its order, and Add with the fields as they
// open writes a step that parses back to that method with the registry's example values.
TEST_F(MitigationViewTest, BuilderOffersEveryRegisteredMethodWithItsParameters)
{
    MitigationView *view = nullptr;
    auto window = open(&view);
    ASSERT_TRUE(view);
    QComboBox *methods = nullptr;
    for (auto *box : view->findChildren<QComboBox *>()) {
        if (box->count() > 0 && box->itemData(0).toString() == QString::fromStdString(mitigationMethods()[0].name)) {
            methods = box;
        }
    }
    ASSERT_TRUE(methods);
    ASSERT_EQ(size_t(methods->count()), mitigationMethods().size());
    QPushButton *add = nullptr;
    for (auto *button : view->findChildren<QPushButton *>()) {
        add = button->text() == QLatin1String("Add") ? button : add;
    }
    ASSERT_TRUE(add);
    for (int i = 0; i < methods->count(); ++i) {
        const auto &m = mitigationMethods()[size_t(i)];
        EXPECT_EQ(methods->itemData(i).toString().toStdString(), m.name);
        EXPECT_EQ(methods->itemData(i, Qt::ToolTipRole).toString().toStdString(), m.description);
        view->setSpec(QStringLiteral("none"));
        methods->setCurrentIndex(i);
        add->click();
        auto spec = parseMitigation(view->canonicalSpec().toStdString());
        ASSERT_TRUE(spec) << m.name << ": " << view->canonicalSpec().toStdString();
        ASSERT_EQ(spec->steps.size(), 1u) << m.name;
        EXPECT_EQ(spec->steps[0].method, m.method);
        for (const auto &p : m.params) {
            EXPECT_EQ(spec->steps[0].params.at(p.name), p.example) << m.name << "." << p.name;
        }
    }
}

TEST_F(MitigationViewTest, MaskSinkShowsBaselineMitigatedAndDifferenceAndCachesBoth)
{
    MitigationView *view = nullptr;
    auto window = open(&view);
    ASSERT_TRUE(view);
    const auto snapshot = window->snapshot();
    const int T = int(snapshot->tokenCount());
    ASSERT_GT(T, 3);

    view->setSpec(QStringLiteral("mask-sink"));
    EXPECT_TRUE(view->specError().isEmpty()) << view->specError().toStdString();
    EXPECT_EQ(view->canonicalSpec(), QStringLiteral("mask-sink:sinks=1"));
    QSignalSpy shown(view, &MitigationView::effectsShown);
    view->apply();
    ASSERT_TRUE(shown.wait(60000)) << window->messageBar()->text().toStdString();
    auto effects = view->shownEffects();
    ASSERT_TRUE(effects);
    EXPECT_EQ(effects->spec, "mask-sink:sinks=1");
    ASSERT_TRUE(view->baseline());
    EXPECT_EQ(view->baseline()->tokens, window->promptTokens());

    // The core's numbers for the same comparison.
    auto model = window->model();
    const auto spec = parseMitigation("mask-sink").value();
    auto base = runBaseline(*model, window->promptTokens(), {.continuationTokens = 0}).value();
    auto expected = compareMitigation(*model, base, spec, {.continuationTokens = 0}).value();
    EXPECT_NEAR(effects->nextTokenKl, expected.nextTokenKl, 1e-6);

    view->showHead(1, 0);
    const FloatArray &attention = base.forward.attention[1];
    const auto at = [&](int q, int k) { return attention.data[size_t(q * T + k)]; }; // head 0
    for (int q = 1; q < T; ++q) {
        EXPECT_NEAR(cell(view->baselinePlot(), 0, q), at(q, 0), 1e-6) << q;
        EXPECT_NEAR(cell(view->mitigatedPlot(), 0, q), 0.0, 1e-6) << q;        // the sink is masked
        EXPECT_NEAR(cell(view->differencePlot(), 0, q), -at(q, 0), 1e-6) << q; // all its mass moved
        double row = 0;
        for (int k = 0; k <= q; ++k) {
            row += cell(view->mitigatedPlot(), k, q);
        }
        EXPECT_NEAR(row, 1.0, 1e-4) << q; // the other keys renormalise
    }
    EXPECT_GT(view->outputsTable()->rowCount(), 0);

    // Continuations follow in their own job, both sides.
    QSignalSpy continued(view, &MitigationView::continuationShown);
    ASSERT_TRUE(continued.wait(60000)) << window->messageBar()->text().toStdString();
    EXPECT_FALSE(view->continuationText(false).isEmpty());
    EXPECT_FALSE(view->continuationText(true).isEmpty());

    // Off shows the cached baseline at once, on the cached mitigated run: nothing is submitted.
    shown.clear();
    view->setMitigationEnabled(false);
    EXPECT_EQ(shown.count(), 1);
    EXPECT_FALSE(window->bridge()->isBusy());
    EXPECT_FALSE(view->shownEffects());
    EXPECT_NEAR(cell(view->mitigatedPlot(), 0, 2), at(2, 0), 1e-6);
    view->setMitigationEnabled(true);
    EXPECT_EQ(shown.count(), 2);
    EXPECT_FALSE(window->bridge()->isBusy());
    EXPECT_EQ(view->shownEffects(), effects);
    EXPECT_NEAR(cell(view->mitigatedPlot(), 0, 2), 0.0, 1e-6);

    // Export: the three panels in one vector figure.
    const QString svg = file("mitigation.svg");
    QString error;
    ASSERT_TRUE(window->exportCurrentView(svg, window->defaultFigureOptions(), &error)) << error.toStdString();
    QFile f(svg);
    ASSERT_TRUE(f.open(QIODevice::ReadOnly));
    QXmlStreamReader xml(&f);
    int elements = 0;
    while (!xml.atEnd()) {
        if (xml.readNext() == QXmlStreamReader::StartElement) {
            ++elements;
        }
    }
    EXPECT_FALSE(xml.hasError()) << xml.errorString().toStdString();
    EXPECT_GT(elements, 50);
    const ViewData data = view->currentData();
    EXPECT_EQ(data.rows.size(), T * (T + 1) / 2);
    EXPECT_EQ(data.json.value(QStringLiteral("spec")).toString(), QStringLiteral("mask-sink:sinks=1"));
}

TEST_F(MitigationViewTest, DormancyTestMatchesTheCore)
{
    MitigationView *view = nullptr;
    auto window = open(&view);
    ASSERT_TRUE(view);
    QSignalSpy done(view, &MitigationView::dormancyShown);
    view->runDormancy(MitigationMethod::HeadZero);
    ASSERT_TRUE(done.wait(60000)) << window->messageBar()->text().toStdString();
    const auto expected = headLossChanges(*window->model(), window->promptTokens(), MitigationMethod::HeadZero).value();
    ASSERT_EQ(view->dormancy().shape, expected.shape);
    for (size_t i = 0; i < expected.data.size(); ++i) {
        EXPECT_NEAR(view->dormancy().data[i], expected.data[i], 1e-6) << i;
    }
    EXPECT_TRUE(view->headPlot()->hasData());
}

TEST_F(MitigationViewTest, BadSpecIsRefusedWithTheParserMessage)
{
    MitigationView *view = nullptr;
    auto window = open(&view);
    ASSERT_TRUE(view);
    view->setSpec(QStringLiteral("mask-snk"));
    EXPECT_NE(view->specError().toStdString().find("unknown method 'mask-snk'"), std::string::npos)
        << view->specError().toStdString();
    view->apply();
    EXPECT_FALSE(window->bridge()->isPending(QString::fromLatin1(MitigationView::kEffectsTag)));
    // A head outside the model is caught against the loaded model.
    view->setSpec(QStringLiteral("head-zero:heads=L99H0"));
    EXPECT_FALSE(view->specError().isEmpty());
    // Session state round trip.
    view->setSpec(QStringLiteral("zerotune:gamma=0.5"));
    view->showHead(1, 1);
    const QJsonObject state = view->saveState();
    view->setSpec(QStringLiteral("none"));
    view->restoreState(state);
    EXPECT_EQ(view->spec(), QStringLiteral("zerotune:gamma=0.5"));
    EXPECT_EQ(view->layer(), 1);
    EXPECT_EQ(view->head(), 1);
}
