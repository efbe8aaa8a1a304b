// sinkscope-cli lesson: lists the built-in lessons, checks a lesson file, and runs a lesson headless on
// a model, evaluating every check (and, with --handout, writing the PDF handout through the window's own
// views).
#include "commands.h"
#include "common.h"

#include "sinkscope/analysis/metrics.h"
#include "sinkscope/lessons/lesson.h"
#include "sinkscope/lessons/lesson_live.h"
#include "sinkscope/runtime/paths.h"

#include "lesson_handout.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>

namespace fs = std::filesystem;

namespace sinkscope::cli {
namespace {

struct LessonOptions {
    bool list = false, json = false, strict = false;
    std::string action, target, handout;
    ModelOptions model;
};

constexpr const char *kProse =
    R"(Lessons are guided walks through the window for a class (docs/lessons.md): each step sets the window's
state, shows a caption with live numbers and may check a condition on the model's numbers.

  lesson --list [--json]        the built-in lessons (<data>/lessons; JSON: lessons: [{id, title, steps,
                                duration, file}])
  lesson check ID|FILE          validates a lesson: syntax, fields, mitigation specs, expressions, the
                                models it names, and layers/heads/metrics against each model
  lesson run ID|FILE            runs every step headless on the lesson's models (--model: on that model
                                instead) and evaluates every check; --handout out.pdf also writes a handout
                                (a page per step with its figure, caption, question and check; answers at
                                the end); --strict exits 1 when a check is not confirmed

A check that a model does not confirm is reported, not an error: a user's own model may not show the
phenomenon. Lessons that need something this installation lacks (Gemma 3 270M) say so and skip it.
)";

// The shape and metric names of a model, from a three-token analysis (validation needs them).
struct ModelShape {
    ModelConfig config;
    std::vector<std::string> metrics;
};

struct LoadedModel {
    std::shared_ptr<const Model> model;
    std::unique_ptr<lessons::LiveEvaluator> evaluator;
    ModelShape shape;
    std::string name;
};

ModelShape shapeOf(const Model &model)
{
    ModelShape shape{model.config(), {}};
    std::vector<int64_t> ids;
    if (auto t = lessons::lessonTokens(model, "The sink.", true)) {
        ids = t.value();
    } else {
        ids = {0, 1, 2};
    }
    auto metrics = analyzeTokens(model, ids);
    if (!metrics) {
        throw Failure{model.info().path + ": " + metrics.error().message};
    }
    for (const HeadMetric &m : metrics.value()->headMetrics) {
        shape.metrics.push_back(m.name);
    }
    shape.config.layers = metrics.value()->layers;
    shape.config.heads = metrics.value()->heads;
    return shape;
}

class Models
{
public:
    Models(const LessonOptions &o, std::ostream &err) : m_options(o), m_err(err) {}

    // The model of step i: --model when given, else the lesson's.
    LoadedModel &forStep(const lessons::Lesson &lesson, size_t step)
    {
        std::string path = m_options.model.model;
        if (path.empty()) {
            auto resolved = lessons::resolveLessonModel(lesson, step);
            if (!resolved) {
                throw Failure{resolved.error().message};
            }
            path = resolved.value();
        }
        auto &slot = m_models[path];
        if (!slot.model) {
            ModelOptions options = m_options.model;
            options.model = path;
            slot.model = loadModel(options, m_err);
            slot.evaluator = std::make_unique<lessons::LiveEvaluator>(slot.model);
            slot.shape = shapeOf(*slot.model);
            slot.name = fs::path(slot.model->info().path).stem().string();
        }
        return slot;
    }

private:
    const LessonOptions &m_options;
    std::ostream &m_err;
    std::map<std::string, LoadedModel> m_models;
};

lessons::Lesson findOrFail(const std::string &target)
{
    auto lesson = lessons::findLesson(target);
    if (!lesson) {
        throw Failure{lesson.error().message};
    }
    return lesson.value();
}

// Steps whose model is a missing optional feature (gemma3 not installed): skipped with a notice.
bool skipped(const lessons::Lesson &lesson, size_t step, const LessonOptions &o, std::string *why)
{
    if (!o.model.model.empty()) {
        return false;
    }
    const auto state = lesson.stateAt(step);
    if (state.model && *state.model == "gemma3" && gemma3GgufPath().empty()) {
        *why = "Gemma 3 270M is not installed (tools/setup.sh installs it)";
        return true;
    }
    return false;
}

int listLessons(const LessonOptions &o, std::ostream &out)
{
    auto entries = lessons::builtinLessons();
    if (!entries) {
        throw Failure{entries.error().message};
    }
    if (o.json) {
        nlohmann::ordered_json list = nlohmann::ordered_json::array();
        for (const auto &e : entries.value()) {
            list.push_back({{"id", e.id},
                            {"title", e.title},
                            {"steps", e.steps},
                            {"duration", e.durationMinutes},
                            {"file", e.path}});
        }
        out << nlohmann::ordered_json{{"lessons", list}}.dump(2) << "\n";
        return 0;
    }
    out << "Built-in lessons (" << lessons::lessonsDir() << "):\n";
    for (const auto &e : entries.value()) {
        out << "  " << e.id << std::string(e.id.size() < 28 ? 28 - e.id.size() : 1, ' ') << e.title << " (" << e.steps
            << " steps, " << e.durationMinutes << " min)\n";
    }
    out << "Run one: sinkscope-cli lesson run ID [--handout out.pdf]; in the window: Lessons menu.\n";
    return 0;
}

int checkLesson(const LessonOptions &o, std::ostream &out, std::ostream &err)
{
    const lessons::Lesson lesson = findOrFail(o.target);
    if (auto ok = lessons::checkLessonModels(lesson); !ok) {
        throw Failure{ok.error().message};
    }
    Models models(o, err);
    std::map<std::string, std::vector<size_t>> byModel;
    for (size_t i = 0; i < lesson.steps.size(); ++i) {
        std::string why;
        if (skipped(lesson, i, o, &why)) {
            err << "note: step " << i + 1 << " not checked against its model: " << why << "\n";
            continue;
        }
        LoadedModel &m = models.forStep(lesson, i);
        const std::vector<size_t> only{i};
        if (auto ok = lessons::validateLesson(lesson, m.shape.config, m.shape.metrics, &only); !ok) {
            throw Failure{ok.error().message};
        }
        byModel[m.name].push_back(i);
    }
    out << lesson.origin << ": " << lesson.id << " \"" << lesson.title << "\", " << lesson.steps.size()
        << " steps: valid";
    for (const auto &[name, steps] : byModel) {
        out << "; " << steps.size() << " step(s) checked against " << name;
    }
    out << "\n";
    return 0;
}

int runLesson(const LessonOptions &o, std::ostream &out, std::ostream &err)
{
    const lessons::Lesson lesson = findOrFail(o.target);
    if (auto ok = lessons::checkLessonModels(lesson); !ok) {
        throw Failure{ok.error().message};
    }
    if (!o.handout.empty() && fs::path(o.handout).extension() != ".pdf") {
        throw UsageError{"--handout must name a .pdf file, not '" + o.handout + "'"};
    }
    if (!o.handout.empty()) {
        // Said before the lesson runs, not after.
        if (!handoutsAvailable) {
            throw Failure{"handouts need a build with SINKSCOPE_BUILD_GUI=ON"};
        }
        const fs::path folder = fs::absolute(o.handout).parent_path();
        if (!fs::is_directory(folder)) {
            throw Failure{o.handout + ": the folder " + folder.string() + " does not exist"};
        }
    }
    const auto start = std::chrono::steady_clock::now();
    for (const std::string &missing : lessons::missingFeatures(lesson)) {
        err << "note: this lesson needs " << missing << ", which is not installed here; its steps are skipped\n";
    }
    std::vector<lessons::StepNumbers> results(lesson.steps.size());
    std::vector<std::string> skips(lesson.steps.size());
    std::vector<std::string> modelNames(lesson.steps.size());
    Handout handout{o.handout, lesson, std::vector<HandoutStep>(lesson.steps.size())};
    const std::string lessonDir = fs::path(lesson.origin).parent_path().string();
    Models models(o, err);
    for (size_t i = 0; i < lesson.steps.size(); ++i) {
        HandoutStep &page = handout.steps[i];
        page.title = lesson.steps[i].title;
        page.question = lesson.steps[i].question;
        page.answer = lesson.steps[i].answer;
        if (skipped(lesson, i, o, &skips[i])) {
            page.skipped = skips[i];
            continue;
        }
        LoadedModel &m = models.forStep(lesson, i);
        modelNames[i] = m.name;
        const std::vector<size_t> only{i};
        if (auto ok = lessons::validateLesson(lesson, m.shape.config, m.shape.metrics, &only); !ok) {
            throw Failure{ok.error().message};
        }
        err << "step " << i + 1 << "/" << lesson.steps.size() << ": " << lesson.steps[i].title << "\n";
        auto numbers = m.evaluator->evaluate(lesson.steps[i], lesson.stateAt(i), lessonDir);
        if (!numbers) {
            throw Failure{lesson.origin + ":" + std::to_string(lesson.steps[i].line) + ": " + numbers.error().message};
        }
        results[i] = numbers.value();
        page.model = m.name;
        page.numbers = results[i];
        if (!o.handout.empty()) {
            // The figure comes from the same evaluator, so what the numbers computed is not computed again.
            page.figure = lessonFigure(*m.evaluator, lesson, i);
        }
    }
    if (!o.handout.empty()) {
        if (std::string error; !writeLessonHandout(handout, &error)) {
            throw Failure{error};
        }
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

    int confirmed = 0, notConfirmed = 0, unavailable = 0, checks = 0;
    std::string firstFailure;
    for (size_t i = 0; i < results.size(); ++i) {
        if (!skips[i].empty() || !results[i].hasCheck) {
            continue;
        }
        ++checks;
        const auto &c = results[i].check;
        (c.status == lessons::CheckStatus::Confirmed      ? confirmed
         : c.status == lessons::CheckStatus::NotConfirmed ? notConfirmed
                                                          : unavailable)++;
        if (c.status != lessons::CheckStatus::Confirmed && firstFailure.empty()) {
            firstFailure = lesson.origin + ":" + std::to_string(lesson.steps[i].lineOf("check")) + ": step " +
                           std::to_string(i + 1) + " \"" + lesson.steps[i].title + "\": check '" + c.expression + "' " +
                           lessons::checkStatusName(c.status) + " on " + modelNames[i] + " (" + c.detail + ")";
        }
    }
    if (o.json) {
        nlohmann::ordered_json steps = nlohmann::ordered_json::array();
        for (size_t i = 0; i < results.size(); ++i) {
            nlohmann::ordered_json step{{"title", lesson.steps[i].title}, {"model", modelNames[i]}};
            if (!skips[i].empty()) {
                step["skipped"] = skips[i];
            } else {
                step["tokens"] = results[i].tokens.size();
                step["caption"] = results[i].caption;
                if (results[i].hasCheck) {
                    step["check"] = {{"expression", results[i].check.expression},
                                     {"status", lessons::checkStatusName(results[i].check.status)},
                                     {"detail", results[i].check.detail}};
                }
                step["seconds"] = results[i].seconds;
            }
            steps.push_back(step);
        }
        out << nlohmann::ordered_json{{"lesson", lesson.id},
                                      {"title", lesson.title},
                                      {"file", lesson.origin},
                                      {"steps", steps},
                                      {"checks",
                                       {{"total", checks},
                                        {"confirmed", confirmed},
                                        {"not_confirmed", notConfirmed},
                                        {"unavailable", unavailable}}},
                                      {"handout", o.handout},
                                      {"seconds", seconds}}
                   .dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace)
            << "\n";
    } else {
        out << lesson.title << " (" << lesson.id << "), " << lesson.steps.size() << " steps\n";
        for (size_t i = 0; i < results.size(); ++i) {
            out << "  " << i + 1 << ". " << lesson.steps[i].title;
            if (!skips[i].empty()) {
                out << " (skipped: " << skips[i] << ")\n";
                continue;
            }
            out << " [" << modelNames[i] << ", " << results[i].tokens.size() << " tokens]\n";
            if (results[i].hasCheck) {
                out << "     check " << results[i].check.expression << ": "
                    << lessons::checkStatusName(results[i].check.status) << " (" << results[i].check.detail << ")\n";
            }
        }
        out << checks << " check(s): " << confirmed << " confirmed, " << notConfirmed << " not confirmed, "
            << unavailable << " unavailable";
        if (!o.handout.empty()) {
            out << "; handout " << o.handout;
        }
        char time[32];
        std::snprintf(time, sizeof time, " (%.1f s)\n", seconds);
        out << time;
    }
    if (o.strict && !firstFailure.empty()) {
        err << "sinkscope-cli lesson: " << firstFailure << "\n";
        return 1;
    }
    return 0;
}

int runLessonCommand(const LessonOptions &o, std::ostream &out, std::ostream &err)
{
    if (o.list) {
        if (!o.action.empty()) {
            throw UsageError{"--list takes no action or lesson"};
        }
        return listLessons(o, out);
    }
    if (o.action.empty()) {
        throw UsageError{"name an action: --list, check ID|FILE or run ID|FILE"};
    }
    if (o.target.empty()) {
        throw UsageError{"'" + o.action + "' needs a lesson: a built-in id (lesson --list) or a lesson file"};
    }
    if (o.action == "check") {
        if (!o.handout.empty() || o.strict) {
            throw UsageError{"--handout and --strict go with 'run'"};
        }
        return checkLesson(o, out, err);
    }
    return runLesson(o, out, err);
}

} // namespace

Command addLessonCommand(CLI::App &cli)
{
    auto o = std::make_shared<LessonOptions>();
    CLI::App *cmd = cli.add_subcommand("lesson", "list, check and run lessons (guided steps with live checks); "
                                                 "write PDF handouts");
    cmd->footer(kProse);
    cmd->add_option("action", o->action, "check or run")->type_name("ACTION")->check(oneOf({"check", "run"}));
    cmd->add_option("lesson", o->target, "a built-in lesson's id or a lesson file")->type_name("ID|FILE");
    cmd->add_flag("--list", o->list, "list the built-in lessons");
    cmd->add_flag("--json", o->json, "print JSON instead of text (--list, run)");
    cmd->add_flag("--strict", o->strict, "run: exit 1 when a check is not confirmed");
    cmd->add_option("--handout", o->handout, "run: also write a PDF handout")->type_name("FILE.pdf");
    addModelOptions(*cmd, o->model);
    return {cmd, [o](std::ostream &out, std::ostream &err) { return runLessonCommand(*o, out, err); }};
}

} // namespace sinkscope::cli
