// Lesson files (lesson.h): Markdown with a `---` header and one `##` section per step. The parser keeps
// the line of every field so that each error names file, line and field.
#include "sinkscope/lessons/lesson.h"

#include "sinkscope/interventions/mitigation.h"
#include "sinkscope/lessons/lesson_live.h"
#include "sinkscope/runtime/paths.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>

namespace fs = std::filesystem;

namespace sinkscope::lessons {
namespace {

const std::vector<std::string> kHeaderKeys = {"sinkscope-lesson", "id",    "title",  "audience",
                                              "duration",         "needs", "sources"};
const std::vector<std::string> kStepKeys = {"check", "question", "answer"};
const std::vector<std::string> kColourMaps = {"viridis", "magma", "greys"};

std::string trim(const std::string &s)
{
    const size_t b = s.find_first_not_of(" \t\r");
    const size_t e = s.find_last_not_of(" \t\r");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

std::string joined(const std::vector<std::string> &items)
{
    std::string out;
    for (const auto &i : items) {
        out += (out.empty() ? "" : ", ") + i;
    }
    return out;
}

std::string unescape(const std::string &s)
{
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 1 < s.size() && (s[i + 1] == 'n' || s[i + 1] == '\\')) {
            out += s[i + 1] == 'n' ? '\n' : '\\';
            ++i;
        } else {
            out += s[i];
        }
    }
    return out;
}

std::string escape(const std::string &s)
{
    std::string out;
    for (char c : s) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

std::string number(double v)
{
    std::ostringstream o;
    o << v;
    return o.str();
}

std::string ints(const std::vector<int64_t> &v)
{
    std::string out;
    for (int64_t i : v) {
        out += (out.empty() ? "" : " ") + std::to_string(i);
    }
    return out;
}

// "key: value" -> (key, value); nullopt for anything else.
std::optional<std::pair<std::string, std::string>> field(const std::string &line)
{
    const size_t colon = line.find(':');
    if (colon == std::string::npos || colon == 0) {
        return std::nullopt;
    }
    const std::string key = line.substr(0, colon);
    if (!std::all_of(key.begin(), key.end(),
                     [](char c) { return std::islower(static_cast<unsigned char>(c)) || c == '_' || c == '-'; })) {
        return std::nullopt;
    }
    if (colon + 1 < line.size() && line[colon + 1] != ' ' && line[colon + 1] != '\t') {
        return std::nullopt; // "http://..." and the like
    }
    return std::make_pair(key, trim(line.substr(colon + 1)));
}

class LessonParser
{
public:
    LessonParser(const std::string &text, std::string origin) : m_origin(std::move(origin))
    {
        std::istringstream in(text);
        for (std::string line; std::getline(in, line);) {
            if (!line.empty() && line.back() == '\r') {
                line.pop_back();
            }
            m_lines.push_back(line);
        }
    }

    Result<Lesson> parse()
    {
        try {
            Lesson lesson;
            lesson.origin = m_origin;
            size_t i = parseHeader(lesson);
            for (; i < m_lines.size(); ++i) {
                if (m_lines[i].rfind("## ", 0) == 0) {
                    break;
                }
                if (!trim(m_lines[i]).empty()) {
                    fail(int(i + 1), "text", "text before the first step (a step starts with a line '## Its title')");
                }
            }
            while (i < m_lines.size()) {
                i = parseStep(lesson, i);
            }
            if (lesson.steps.empty()) {
                fail(int(m_lines.size()), "steps", "the lesson has no step (a step starts with a line '## Its title')");
            }
            const LessonStep &first = lesson.steps.front();
            if (!first.state.prompt) {
                fail(first.line, "prompt", "the first step must set a prompt (prompt: ...)");
            }
            return lesson;
        } catch (const Error &e) {
            return e;
        }
    }

private:
    [[noreturn]] void fail(int line, const std::string &what, const std::string &problem) const
    {
        throw Error{ErrorCode::InvalidArgument, m_origin + ":" + std::to_string(line) + ": " + what + ": " + problem};
    }

    size_t parseHeader(Lesson &lesson)
    {
        size_t i = 0;
        while (i < m_lines.size() && trim(m_lines[i]).empty()) {
            ++i;
        }
        if (i >= m_lines.size() || trim(m_lines[i]) != "---") {
            fail(int(i + 1), "header",
                 "a lesson starts with a '---' header (sinkscope-lesson: 1, id, title, audience, duration)");
        }
        std::set<std::string> seen;
        for (++i; i < m_lines.size() && trim(m_lines[i]) != "---"; ++i) {
            const int line = int(i + 1);
            if (trim(m_lines[i]).empty() || trim(m_lines[i])[0] == '#') {
                continue;
            }
            const auto kv = field(m_lines[i]);
            if (!kv) {
                fail(line, "header", "expected 'key: value', got '" + trim(m_lines[i]) + "'");
            }
            const auto &[key, value] = *kv;
            if (std::find(kHeaderKeys.begin(), kHeaderKeys.end(), key) == kHeaderKeys.end()) {
                fail(line, key, "unknown header field (fields: " + joined(kHeaderKeys) + ")");
            }
            if (!seen.insert(key).second) {
                fail(line, key, "given twice");
            }
            if (key == "sinkscope-lesson") {
                if (value != "1") {
                    fail(line, key, "version '" + value + "' is not supported (this build reads version 1)");
                }
            } else if (key == "id") {
                if (value.empty() || !std::all_of(value.begin(), value.end(), [](char c) {
                        return std::islower(static_cast<unsigned char>(c)) ||
                               std::isdigit(static_cast<unsigned char>(c)) || c == '-';
                    })) {
                    fail(line, key, "'" + value + "' is not an id (lower-case letters, digits and '-')");
                }
                lesson.id = value;
            } else if (key == "title") {
                lesson.title = value;
            } else if (key == "audience") {
                lesson.audience = value;
            } else if (key == "duration") {
                char *end = nullptr;
                const long minutes = std::strtol(value.c_str(), &end, 10);
                const std::string rest = trim(end ? end : "");
                if (end == value.c_str() || minutes <= 0 || minutes > 600 ||
                    !(rest.empty() || rest == "min" || rest == "minutes")) {
                    fail(line, key, "'" + value + "' is not a duration in minutes (e.g. 15)");
                }
                lesson.durationMinutes = int(minutes);
            } else if (key == "needs") {
                std::istringstream items(value);
                for (std::string item; std::getline(items, item, ',');) {
                    item = trim(item);
                    if (item.empty()) {
                        continue;
                    }
                    if (std::find(std::begin(kLessonFeatures), std::end(kLessonFeatures), item) ==
                        std::end(kLessonFeatures)) {
                        std::vector<std::string> names(std::begin(kLessonFeatures), std::end(kLessonFeatures));
                        fail(line, key, "unknown feature '" + item + "' (features: " + joined(names) + ")");
                    }
                    lesson.needs.push_back(item);
                }
            } else if (key == "sources") {
                lesson.sources = value;
            }
        }
        if (i >= m_lines.size()) {
            fail(int(m_lines.size()), "header", "the '---' header is not closed by a second '---' line");
        }
        const int end = int(i + 1);
        for (const char *required : {"sinkscope-lesson", "id", "title", "audience", "duration"}) {
            if (!seen.count(required)) {
                fail(end, required, "missing from the header");
            }
        }
        return i + 1;
    }

    size_t parseStep(Lesson &lesson, size_t i)
    {
        LessonStep step;
        step.line = int(i + 1);
        step.title = trim(m_lines[i].substr(3));
        if (step.title.empty()) {
            fail(step.line, "title", "a step needs a title after '## '");
        }
        ++i;
        // The field block.
        std::string key, value;
        int keyLine = 0;
        auto flush = [&] {
            if (!key.empty()) {
                setField(step, key, unescape(value), keyLine);
            }
            key.clear();
        };
        for (; i < m_lines.size(); ++i) {
            const std::string &line = m_lines[i];
            if (trim(line).empty() || line.rfind("## ", 0) == 0) {
                break;
            }
            if (line.rfind("  ", 0) == 0 && !key.empty()) {
                value += " " + trim(line);
                continue;
            }
            const auto kv = field(line);
            if (!kv) {
                fail(int(i + 1), "step",
                     "expected 'field: value' right after the step's title (leave a blank line before the caption)");
            }
            flush();
            key = kv->first;
            value = kv->second;
            keyLine = int(i + 1);
        }
        flush();
        // The caption, up to the next step.
        const size_t captionStart = i;
        for (; i < m_lines.size() && m_lines[i].rfind("## ", 0) != 0; ++i) {
        }
        size_t first = captionStart, last = i;
        while (first < last && trim(m_lines[first]).empty()) {
            ++first;
        }
        while (last > first && trim(m_lines[last - 1]).empty()) {
            --last;
        }
        for (size_t k = first; k < last; ++k) {
            step.caption += m_lines[k] + (k + 1 < last ? "\n" : "");
        }
        if (first < last) {
            step.fieldLines["caption"] = int(first + 1);
        }
        checkCaption(step, int(first + 1));
        if (!step.answer.empty() && step.question.empty()) {
            fail(step.lineOf("answer"), "answer", "an answer needs a question (question: ...)");
        }
        lesson.steps.push_back(std::move(step));
        return i;
    }

    void checkCaption(const LessonStep &step, int firstLine) const
    {
        auto placeholders = findPlaceholders(step.caption);
        if (!placeholders) {
            fail(firstLine, "caption", placeholders.error().message);
        }
        for (const Placeholder &p : placeholders.value()) {
            if (auto e = parseValue(p.expression); !e) {
                const int line =
                    firstLine + int(std::count(step.caption.begin(), step.caption.begin() + long(p.begin), '\n'));
                fail(line, "caption", "live number " + e.error().message);
            }
        }
    }

    void setField(LessonStep &step, const std::string &key, const std::string &value, int line)
    {
        if (step.fieldLines.count(key)) {
            fail(line, key, "given twice in this step");
        }
        step.fieldLines[key] = line;
        LessonState &s = step.state;
        auto flag = [&]() -> bool {
            if (value == "on" || value == "true" || value == "yes") {
                return true;
            }
            if (value == "off" || value == "false" || value == "no") {
                return false;
            }
            fail(line, key, "'" + value + "' is not on or off");
        };
        auto integer = [&](const std::string &text) -> int64_t {
            char *end = nullptr;
            const long long v = std::strtoll(text.c_str(), &end, 10);
            if (text.empty() || *end != '\0' || v < 0 || v > 1000000) {
                fail(line, key, "'" + text + "' is not a non-negative whole number");
            }
            return v;
        };
        auto integers = [&](const std::string &text) {
            std::vector<int64_t> out;
            std::string item;
            std::istringstream in(text);
            while (in >> item) {
                std::istringstream parts(item);
                for (std::string part; std::getline(parts, part, ',');) {
                    if (!part.empty()) {
                        out.push_back(integer(part));
                    }
                }
            }
            return out;
        };
        if (key == "check") {
            if (auto e = parseCheck(value); !e) {
                fail(line, key, e.error().message);
            }
            step.check = value;
        } else if (key == "question") {
            step.question = value;
        } else if (key == "answer") {
            step.answer = value;
        } else if (key == "model") {
            if (value.empty()) {
                fail(line, key, "empty (default, smollm2, gemma3 or a model file)");
            }
            s.model = value;
        } else if (key == "prompt") {
            if (trim(value).empty()) {
                fail(line, key, "the prompt is empty");
            }
            s.prompt = value;
        } else if (key == "bos") {
            s.bos = flag();
        } else if (key == "tab") {
            if (std::find(std::begin(kLessonTabs), std::end(kLessonTabs), value) == std::end(kLessonTabs)) {
                fail(line, key,
                     "unknown tab '" + value + "' (tabs: " +
                         joined(std::vector<std::string>(std::begin(kLessonTabs), std::end(kLessonTabs))) + ")");
            }
            s.tab = value;
        } else if (key == "layer") {
            s.layer = integer(value);
        } else if (key == "head") {
            s.head = integer(value);
        } else if (key == "metric") {
            if (value.empty() || !std::all_of(value.begin(), value.end(), [](char c) {
                    return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
                           c == '_';
                })) {
                fail(line, key, "'" + value + "' is not a metric name (docs/metrics.md)");
            }
            s.metric = value;
        } else if (key == "scale") {
            if (value != "linear" && value != "log") {
                fail(line, key, "'" + value + "' is not linear or log");
            }
            s.scale = value;
        } else if (key == "clamp") {
            if (value == "off") {
                s.clamp = 0.0;
            } else {
                char *end = nullptr;
                const double p = std::strtod(value.c_str(), &end);
                if (end == value.c_str() || *end != '\0' || !(p > 0 && p <= 100)) {
                    fail(line, key, "'" + value + "' is not off or a percentile in (0, 100]");
                }
                s.clamp = p;
            }
        } else if (key == "without_sink") {
            s.withoutSink = flag();
        } else if (key == "colours") {
            if (std::find(kColourMaps.begin(), kColourMaps.end(), value) == kColourMaps.end()) {
                fail(line, key, "unknown colour map '" + value + "' (" + joined(kColourMaps) + ")");
            }
            s.colours = value;
        } else if (key == "mitigation") {
            if (auto spec = parseMitigation(value); !spec) {
                fail(line, key, spec.error().message);
            }
            s.mitigation = value;
        } else if (key == "zoom") {
            if (value == "off") {
                s.zoom = std::vector<int64_t>{};
            } else {
                auto v = integers(value);
                if (v.size() != 4 || v[0] > v[1] || v[2] > v[3]) {
                    fail(line, key, "'" + value + "' is not off or 'first-query last-query first-key last-key'");
                }
                s.zoom = v;
            }
        } else if (key == "select") {
            s.select = value == "none" ? std::vector<int64_t>{} : integers(value);
        } else if (key == "streaming") {
            std::string n = value;
            if (n.rfind("cache", 0) == 0) {
                n = trim(n.substr(5));
            }
            const int64_t cache = integer(n);
            if (cache < 2) {
                fail(line, key, "the cache must hold at least 2 tokens");
            }
            s.streamingCache = int(cache);
        } else if (key == "probes") {
            if (value.empty()) {
                fail(line, key, "empty (default or a probe-set file, then optionally ', category')");
            }
            s.probes = value;
        } else {
            auto names = LessonState::keys();
            names.insert(names.end(), kStepKeys.begin(), kStepKeys.end());
            fail(line, key, "unknown field (fields: " + joined(names) + ")");
        }
    }

    std::string m_origin;
    std::vector<std::string> m_lines;
};

std::string stateValue(const LessonState &s, const std::string &key)
{
    if (key == "model") {
        return s.model ? *s.model : "";
    }
    if (key == "prompt") {
        return s.prompt.value_or("");
    }
    if (key == "bos") {
        return s.bos ? (*s.bos ? "on" : "off") : "";
    }
    if (key == "tab") {
        return s.tab.value_or("");
    }
    if (key == "layer") {
        return s.layer ? std::to_string(*s.layer) : "";
    }
    if (key == "head") {
        return s.head ? std::to_string(*s.head) : "";
    }
    if (key == "metric") {
        return s.metric.value_or("");
    }
    if (key == "scale") {
        return s.scale.value_or("");
    }
    if (key == "clamp") {
        return s.clamp ? (*s.clamp == 0 ? "off" : number(*s.clamp)) : "";
    }
    if (key == "without_sink") {
        return s.withoutSink ? (*s.withoutSink ? "on" : "off") : "";
    }
    if (key == "colours") {
        return s.colours.value_or("");
    }
    if (key == "mitigation") {
        return s.mitigation.value_or("");
    }
    if (key == "zoom") {
        return s.zoom ? (s.zoom->empty() ? "off" : ints(*s.zoom)) : "";
    }
    if (key == "select") {
        return s.select ? (s.select->empty() ? "none" : ints(*s.select)) : "";
    }
    if (key == "streaming") {
        return s.streamingCache ? "cache " + std::to_string(*s.streamingCache) : "";
    }
    if (key == "probes") {
        return s.probes.value_or("");
    }
    return "";
}

std::string lessonDirOf(const Lesson &lesson)
{
    return lesson.origin.empty() ? std::string() : fs::path(lesson.origin).parent_path().string();
}

} // namespace

const std::vector<std::string> &LessonState::keys()
{
    static const std::vector<std::string> k = {"model",  "prompt", "bos",       "tab",          "layer",   "head",
                                               "metric", "scale",  "clamp",     "without_sink", "colours", "mitigation",
                                               "zoom",   "select", "streaming", "probes"};
    return k;
}

bool LessonState::empty() const
{
    return std::all_of(keys().begin(), keys().end(),
                       [this](const std::string &k) { return stateValue(*this, k).empty(); });
}

LessonState LessonState::overlaid(const LessonState &later) const
{
    LessonState s = *this;
    auto lay = [](auto &into, const auto &from) {
        if (from) {
            into = from;
        }
    };
    lay(s.model, later.model);
    lay(s.prompt, later.prompt);
    lay(s.bos, later.bos);
    lay(s.tab, later.tab);
    lay(s.layer, later.layer);
    lay(s.head, later.head);
    lay(s.metric, later.metric);
    lay(s.scale, later.scale);
    lay(s.clamp, later.clamp);
    lay(s.withoutSink, later.withoutSink);
    lay(s.colours, later.colours);
    lay(s.mitigation, later.mitigation);
    lay(s.zoom, later.zoom);
    lay(s.select, later.select);
    lay(s.streamingCache, later.streamingCache);
    lay(s.probes, later.probes);
    return s;
}

int LessonStep::lineOf(const std::string &key) const
{
    const auto it = fieldLines.find(key);
    return it == fieldLines.end() ? line : it->second;
}

LessonState Lesson::stateAt(size_t step) const
{
    LessonState s;
    for (size_t i = 0; i <= step && i < steps.size(); ++i) {
        s = s.overlaid(steps[i].state);
    }
    return s;
}

Result<Lesson> parseLesson(const std::string &text, const std::string &origin)
{
    return LessonParser(text, origin.empty() ? std::string("<lesson>") : origin).parse();
}

Result<Lesson> loadLesson(const std::string &path)
{
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
        return makeError(ErrorCode::Io, path + ": is a folder, not a lesson file");
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return makeError(ErrorCode::Io, path + ": cannot be read (missing or no permission)");
    }
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.size() > (4u << 20)) {
        return makeError(ErrorCode::InvalidArgument, path + ": over 4 MiB, not a lesson file");
    }
    return parseLesson(text, path);
}

std::string formatLesson(const Lesson &lesson)
{
    std::ostringstream out;
    // A lesson recorded in the window has no duration yet: five minutes a step is a first estimate the
    // teacher edits (the parser takes 1..600 minutes only).
    const int minutes =
        lesson.durationMinutes > 0 ? lesson.durationMinutes : std::clamp(5 * int(lesson.steps.size()), 5, 600);
    out << "---\nsinkscope-lesson: " << kLessonVersion << "\nid: " << lesson.id << "\ntitle: " << lesson.title
        << "\naudience: " << lesson.audience << "\nduration: " << minutes << "\n";
    if (!lesson.needs.empty()) {
        out << "needs: " << joined(lesson.needs) << "\n";
    }
    if (!lesson.sources.empty()) {
        out << "sources: " << lesson.sources << "\n";
    }
    out << "---\n";
    // The parser reads `\n` as a newline in every field's value (a model path or probe set is no
    // exception), so every value is written escaped: one that holds a newline stays one line.
    for (const LessonStep &step : lesson.steps) {
        out << "\n## " << step.title << "\n";
        for (const std::string &key : LessonState::keys()) {
            if (const std::string v = stateValue(step.state, key); !v.empty()) {
                out << key << ": " << escape(v) << "\n";
            }
        }
        if (!step.check.empty()) {
            out << "check: " << escape(step.check) << "\n";
        }
        if (!step.question.empty()) {
            out << "question: " << escape(step.question) << "\n";
        }
        if (!step.answer.empty()) {
            out << "answer: " << escape(step.answer) << "\n";
        }
        if (!step.caption.empty()) {
            out << "\n" << step.caption << "\n";
        }
    }
    return out.str();
}

Status validateLesson(const Lesson &lesson, const ModelConfig &config, const std::vector<std::string> &headMetricNames,
                      const std::vector<size_t> *steps)
{
    const std::string &origin = lesson.origin.empty() ? std::string("<lesson>") : lesson.origin;
    auto error = [&](int line, const std::string &what, const std::string &problem) -> Status {
        return makeError(ErrorCode::InvalidArgument,
                         origin + ":" + std::to_string(line) + ": " + what + ": " + problem);
    };
    const int64_t layers = config.layers, heads = config.heads;
    auto layerProblem = [&](int64_t layer) {
        return std::to_string(layer) + " is out of range: the model has " + std::to_string(layers) + " layers (0.." +
               std::to_string(layers - 1) + ")";
    };
    auto knownMetric = [&](const std::string &m) {
        return std::find(headMetricNames.begin(), headMetricNames.end(), m) != headMetricNames.end();
    };
    for (size_t i = 0; i < lesson.steps.size(); ++i) {
        if (steps && std::find(steps->begin(), steps->end(), i) == steps->end()) {
            continue;
        }
        const LessonStep &step = lesson.steps[i];
        const LessonState &s = step.state;
        if (s.layer && layers > 0 && *s.layer >= layers) {
            return error(step.lineOf("layer"), "layer", layerProblem(*s.layer));
        }
        if (s.head && heads > 0 && *s.head >= heads) {
            return error(step.lineOf("head"), "head",
                         std::to_string(*s.head) + " is out of range: the model has " + std::to_string(heads) +
                             " heads per layer (0.." + std::to_string(heads - 1) + ")");
        }
        if (s.metric && !headMetricNames.empty() && !knownMetric(*s.metric)) {
            return error(step.lineOf("metric"), "metric",
                         "unknown metric '" + *s.metric + "' (" + joined(headMetricNames) + ")");
        }
        if (s.zoom && !s.zoom->empty() && config.contextLength > 0 && (*s.zoom)[3] >= config.contextLength) {
            return error(step.lineOf("zoom"), "zoom",
                         "key " + std::to_string((*s.zoom)[3]) + " is past the model's context");
        }
        std::vector<std::pair<std::string, int>> expressions;
        if (!step.check.empty()) {
            expressions.emplace_back(step.check, step.lineOf("check"));
        }
        if (auto placeholders = findPlaceholders(step.caption)) {
            for (const Placeholder &p : placeholders.value()) {
                expressions.emplace_back(p.expression, step.lineOf("caption"));
            }
        }
        for (const auto &[text, line] : expressions) {
            auto e = text == step.check ? parseCheck(text) : parseValue(text);
            if (!e) {
                return error(line, "check", e.error().message);
            }
            for (const std::string &m : expressionMetrics(*e.value())) {
                if (!headMetricNames.empty() && !knownMetric(m)) {
                    return error(line, text == step.check ? "check" : "caption",
                                 "unknown metric '" + m + "' in '" + text + "' (" + joined(headMetricNames) + ")");
                }
            }
            for (int64_t layer : expressionLayers(*e.value())) {
                if (layers > 0 && layer >= layers) {
                    return error(line, text == step.check ? "check" : "caption",
                                 "layer " + layerProblem(layer) + " in '" + text + "'");
                }
            }
        }
    }
    return Ok{};
}

Result<std::string> resolveLessonModel(const Lesson &lesson, size_t step)
{
    const LessonState s = lesson.stateAt(step);
    const std::string model = s.model.value_or("default");
    size_t setter = 0;
    for (size_t i = 0; i <= step && i < lesson.steps.size(); ++i) {
        if (lesson.steps[i].state.model) {
            setter = i;
        }
    }
    const int line = lesson.steps.empty() ? 1 : lesson.steps[setter].lineOf("model");
    const std::string where =
        (lesson.origin.empty() ? std::string("<lesson>") : lesson.origin) + ":" + std::to_string(line) + ": model: ";
    if (model == "default" || model == "smollm2") {
        return std::string();
    }
    if (model == "gemma3") {
        const std::string path = gemma3GgufPath();
        if (path.empty()) {
            return makeError(ErrorCode::Io, where + "Gemma 3 270M is not installed (tools/setup.sh installs it)");
        }
        return path;
    }
    fs::path path(model);
    if (path.is_relative() && !lesson.origin.empty()) {
        path = fs::path(lessonDirOf(lesson)) / path;
    }
    std::error_code ec;
    if (!fs::exists(path, ec)) {
        return makeError(ErrorCode::Io, where + path.string() + " does not exist");
    }
    return path.string();
}

Status checkLessonModels(const Lesson &lesson)
{
    for (size_t i = 0; i < lesson.steps.size(); ++i) {
        if (!lesson.steps[i].state.model || *lesson.steps[i].state.model == "gemma3") {
            continue;
        }
        if (auto r = resolveLessonModel(lesson, i); !r) {
            return r.error();
        }
    }
    return Ok{};
}

std::vector<std::string> missingFeatures(const Lesson &lesson)
{
    std::vector<std::string> out;
    for (const std::string &need : lesson.needs) {
        if (need == "gemma3" && gemma3GgufPath().empty()) {
            out.push_back(need);
        }
        std::error_code ec;
        if (need == "probes" && !fs::exists(defaultProbeSetPath(), ec)) {
            out.push_back(need);
        }
    }
    return out;
}

std::string lessonsDir()
{
    if (const char *v = std::getenv("SINKSCOPE_LESSONS"); v && *v) {
        return v;
    }
    return (fs::path(dataDir()) / "lessons").string();
}

Result<std::vector<LessonEntry>> builtinLessons()
{
    const fs::path dir(lessonsDir());
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
        return makeError(ErrorCode::Io,
                         dir.string() + ": the lessons folder is missing (reinstall, or set SINKSCOPE_LESSONS)");
    }
    std::vector<fs::path> files;
    for (const auto &entry : fs::directory_iterator(dir, ec)) {
        if (entry.path().extension() == ".md" && entry.path().filename() != "README.md") {
            files.push_back(entry.path());
        }
    }
    std::sort(files.begin(), files.end());
    std::vector<LessonEntry> out;
    for (const fs::path &file : files) {
        auto lesson = loadLesson(file.string());
        if (!lesson) {
            return lesson.error();
        }
        out.push_back({lesson->id, lesson->title, file.string(), int(lesson->steps.size()), lesson->durationMinutes});
    }
    return out;
}

Result<Lesson> findLesson(const std::string &idOrPath)
{
    std::error_code ec;
    if (idOrPath.find('/') != std::string::npos ||
        (idOrPath.size() > 3 && idOrPath.substr(idOrPath.size() - 3) == ".md") || fs::is_regular_file(idOrPath, ec)) {
        return loadLesson(idOrPath);
    }
    auto lessons = builtinLessons();
    if (!lessons) {
        return makeError(lessons.error().code, "'" + idOrPath + "' is no lesson file, and " + lessons.error().message);
    }
    std::string ids;
    for (const LessonEntry &e : lessons.value()) {
        if (e.id == idOrPath) {
            return loadLesson(e.path);
        }
        ids += (ids.empty() ? "" : ", ") + e.id;
    }
    return makeError(ErrorCode::InvalidArgument,
                     "no built-in lesson '" + idOrPath + "' and no such file (built-in: " + ids + ")");
}

} // namespace sinkscope::lessons
