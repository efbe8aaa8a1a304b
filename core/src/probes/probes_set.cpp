// Probe-set files: parsing with line numbers, schema validation, prompt text and answer matching.
#include "sinkscope/probes/probes.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cassert>
#include <cctype>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <sstream>

namespace sinkscope {

namespace {

using nlohmann::json;

// A char iterator that publishes how far the JSON lexer has read, so the parser callback can tell the
// line of each key and value (nlohmann::json reports positions only in parse errors).
class TrackingIterator
{
public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = char;
    using difference_type = std::ptrdiff_t;
    using pointer = const char *;
    using reference = const char &;

    TrackingIterator() = default;
    TrackingIterator(const char *p, const char **cursor) : m_p(p), m_cursor(cursor) {}
    reference operator*() const { return *m_p; }
    TrackingIterator &operator++()
    {
        ++m_p;
        if (m_cursor) {
            *m_cursor = m_p;
        }
        return *this;
    }
    TrackingIterator operator++(int)
    {
        TrackingIterator old = *this;
        ++*this;
        return old;
    }
    bool operator==(const TrackingIterator &o) const { return m_p == o.m_p; }
    bool operator!=(const TrackingIterator &o) const { return m_p != o.m_p; }

private:
    const char *m_p = nullptr;
    const char **m_cursor = nullptr;
};

class LineIndex
{
public:
    explicit LineIndex(const std::string &text)
    {
        for (size_t i = 0; i < text.size(); ++i) {
            if (text[i] == '\n') {
                m_newlines.push_back(i);
            }
        }
    }
    // 1-based line of the byte at `offset`.
    int lineOf(size_t offset) const
    {
        return 1 +
               static_cast<int>(std::lower_bound(m_newlines.begin(), m_newlines.end(), offset) - m_newlines.begin());
    }

private:
    std::vector<size_t> m_newlines;
};

// Paths in messages: probes[3].answers[1].
struct Located {
    json value;
    std::map<std::string, int> lines; // path -> line of its key (object members) or first character
};

Result<Located> parseLocated(const std::string &text, const std::string &origin)
{
    const LineIndex index(text);
    const char *begin = text.data();
    const char *cursor = begin;
    struct Frame {
        bool array = false;
        int index = 0;
        std::string key;
        std::string path;
    };
    std::vector<Frame> stack;
    Located out;
    auto childPath = [&]() -> std::string {
        if (stack.empty()) {
            return "";
        }
        const Frame &f = stack.back();
        if (f.array) {
            return f.path + "[" + std::to_string(f.index) + "]";
        }
        return f.path.empty() ? f.key : f.path + "." + f.key;
    };
    // The lexer has read up to `cursor`; the last character it consumed belongs to the token just parsed
    // (or is the one after a number, which never starts a new line before the token ends).
    auto currentLine = [&]() { return index.lineOf(cursor > begin ? static_cast<size_t>(cursor - begin - 1) : 0); };
    const json::parser_callback_t callback = [&](int, json::parse_event_t event, json &parsed) {
        const int line = currentLine();
        switch (event) {
        case json::parse_event_t::object_start:
        case json::parse_event_t::array_start: {
            const std::string p = childPath();
            out.lines.emplace(p, line);
            stack.push_back({event == json::parse_event_t::array_start, 0, {}, p});
            break;
        }
        case json::parse_event_t::key:
            if (!stack.empty()) {
                stack.back().key = parsed.is_string() ? parsed.get<std::string>() : std::string();
                out.lines.emplace(childPath(), line);
            }
            break;
        case json::parse_event_t::value:
            out.lines.emplace(childPath(), line);
            if (!stack.empty() && stack.back().array) {
                ++stack.back().index;
            }
            break;
        case json::parse_event_t::object_end:
        case json::parse_event_t::array_end:
            if (!stack.empty()) {
                stack.pop_back();
            }
            if (!stack.empty() && stack.back().array) {
                ++stack.back().index;
            }
            break;
        }
        return true;
    };
    try {
        out.value =
            json::parse(TrackingIterator(begin, &cursor), TrackingIterator(begin + text.size(), nullptr), callback);
    } catch (const json::parse_error &e) {
        std::string what = e.what();
        // "[json.exception.parse_error.101] parse error at line 3, column 5: syntax error ..." -> the reason.
        if (auto p = what.find("parse error"); p != std::string::npos) {
            if (auto colon = what.find(": ", p); colon != std::string::npos) {
                what = what.substr(colon + 2);
            }
        }
        const size_t byte = e.byte > 0 ? e.byte - 1 : 0;
        return makeError(ErrorCode::Corrupt, origin + ":" + std::to_string(index.lineOf(std::min(byte, text.size()))) +
                                                 ": not valid JSON: " + what);
    } catch (const json::out_of_range &) {
        // A number past double's range (1e999): nlohmann reports it with no position; the lexer stopped there.
        return makeError(ErrorCode::Corrupt,
                         origin + ":" + std::to_string(currentLine()) + ": not valid JSON: a number is out of range");
    }
    return out;
}

class Validator
{
public:
    Validator(const Located &doc, std::string origin) : m_doc(doc), m_origin(std::move(origin)) {}

    // The line of `path`, or of its nearest ancestor that has one.
    int lineOf(std::string path) const
    {
        while (true) {
            if (auto it = m_doc.lines.find(path); it != m_doc.lines.end()) {
                return it->second;
            }
            const auto cut = path.find_last_of(".[");
            if (cut == std::string::npos) {
                return path.empty() ? 1 : lineOf("");
            }
            path = path.substr(0, cut);
        }
    }
    Error fail(const std::string &path, const std::string &problem) const
    {
        return makeError(ErrorCode::InvalidArgument, m_origin + ":" + std::to_string(lineOf(path)) + ": " +
                                                         (path.empty() ? std::string("top level") : path) + ": " +
                                                         problem);
    }

private:
    const Located &m_doc;
    std::string m_origin;
};

std::string member(const std::string &parent, const std::string &key)
{
    return parent.empty() ? key : parent + "." + key;
}

bool endsWithSpace(const std::string &s)
{
    return !s.empty() && std::isspace(static_cast<unsigned char>(s.back()));
}

std::string lower(std::string s)
{
    for (char &c : s) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return s;
}

} // namespace

const char *probeKindName(ProbeKind kind)
{
    return kind == ProbeKind::Factual ? "factual" : "grounded";
}

std::vector<std::string> ProbeSet::categories() const
{
    std::vector<std::string> out;
    for (const auto &p : probes) {
        if (std::find(out.begin(), out.end(), p.category) == out.end()) {
            out.push_back(p.category);
        }
    }
    return out;
}

Result<ProbeSet> parseProbeSet(const std::string &text, const std::string &origin)
{
    auto located = parseLocated(text, origin);
    if (!located) {
        return located.error();
    }
    const json &doc = located->value;
    const Validator v(*located, origin);
    if (!doc.is_object()) {
        return v.fail("", "must be an object with \"format\": \"sinkscope-probes\"");
    }
    static const std::set<std::string> topKeys = {"format",      "version",           "name",
                                                  "description", "grounded_template", "probes"};
    for (const auto &[key, value] : doc.items()) {
        if (!topKeys.count(key)) {
            return v.fail(key,
                          "unknown field (expected format, version, name, description, grounded_template, probes)");
        }
    }
    std::string groundedTemplate = kDefaultGroundedTemplate;
    if (doc.contains("grounded_template")) {
        const json &t = doc["grounded_template"];
        const std::string tmpl = t.is_string() ? t.get<std::string>() : std::string();
        const auto passage = tmpl.find("{passage}"), question = tmpl.find("{question}");
        if (passage == std::string::npos || question == std::string::npos || question < passage ||
            endsWithSpace(tmpl)) {
            return v.fail("grounded_template",
                          "must be a string with {passage} before {question}, not ending with whitespace");
        }
        groundedTemplate = tmpl;
    }
    if (!doc.contains("format") || doc["format"] != "sinkscope-probes") {
        return v.fail("format", "must be \"sinkscope-probes\"");
    }
    if (!doc.contains("version") || !doc["version"].is_number_integer() || doc["version"].get<int64_t>() != 1) {
        return v.fail("version", "must be 1");
    }
    ProbeSet set;
    set.origin = origin;
    for (const char *key : {"name", "description"}) {
        if (doc.contains(key)) {
            if (!doc[key].is_string()) {
                return v.fail(key, "must be a string");
            }
            (std::string(key) == "name" ? set.name : set.description) = doc[key].get<std::string>();
        }
    }
    if (!doc.contains("probes") || !doc["probes"].is_array() || doc["probes"].empty()) {
        return v.fail("probes", "must be a non-empty array of probes");
    }
    static const std::set<std::string> probeKeys = {"id",       "kind",    "category",       "prompt",    "passage",
                                                    "question", "answers", "counterfactual", "memorised", "note"};
    std::map<std::string, std::string> seen; // id -> path
    for (size_t i = 0; i < doc["probes"].size(); ++i) {
        const json &p = doc["probes"][i];
        const std::string path = "probes[" + std::to_string(i) + "]";
        if (!p.is_object()) {
            return v.fail(path, "must be an object");
        }
        for (const auto &[key, value] : p.items()) {
            if (!probeKeys.count(key)) {
                return v.fail(member(path, key), "unknown field");
            }
        }
        Probe probe;
        probe.line = v.lineOf(path);
        probe.groundedTemplate = groundedTemplate;
        auto requireString = [&](const char *key, std::string &to) -> std::optional<Error> {
            if (!p.contains(key)) {
                return v.fail(path, std::string("missing field '") + key + "'");
            }
            if (!p[key].is_string() || p[key].get<std::string>().empty()) {
                return v.fail(member(path, key), "must be a non-empty string");
            }
            to = p[key].get<std::string>();
            return std::nullopt;
        };
        auto stringList = [&](const char *key, std::vector<std::string> &to) -> std::optional<Error> {
            const json &a = p[key];
            if (!a.is_array() || a.empty()) {
                return v.fail(member(path, key), "must be a non-empty array of strings");
            }
            for (size_t k = 0; k < a.size(); ++k) {
                const std::string ap = member(path, key) + "[" + std::to_string(k) + "]";
                if (!a[k].is_string() || normalizedWords(a[k].get<std::string>()).empty()) {
                    return v.fail(ap, "must be a string with at least one word (letters or digits)");
                }
                to.push_back(a[k].get<std::string>());
            }
            return std::nullopt;
        };
        if (auto e = requireString("id", probe.id)) {
            return *e;
        }
        if (auto [it, inserted] = seen.emplace(probe.id, path); !inserted) {
            return v.fail(member(path, "id"), "duplicate id '" + probe.id + "' (first used by " + it->second + ")");
        }
        std::string kind;
        if (auto e = requireString("kind", kind)) {
            return *e;
        }
        if (kind == "factual") {
            probe.kind = ProbeKind::Factual;
        } else if (kind == "grounded") {
            probe.kind = ProbeKind::Grounded;
        } else {
            return v.fail(member(path, "kind"), "must be \"factual\" or \"grounded\", not \"" + kind + "\"");
        }
        if (auto e = requireString("category", probe.category)) {
            return *e;
        }
        if (!p.contains("answers")) {
            return v.fail(path, "missing field 'answers'");
        }
        if (auto e = stringList("answers", probe.answers)) {
            return *e;
        }
        if (p.contains("note")) {
            if (!p["note"].is_string()) {
                return v.fail(member(path, "note"), "must be a string");
            }
            probe.note = p["note"].get<std::string>();
        }
        if (probe.kind == ProbeKind::Factual) {
            for (const char *key : {"passage", "question", "counterfactual", "memorised"}) {
                if (p.contains(key)) {
                    return v.fail(member(path, key), "only grounded probes have this field");
                }
            }
            if (auto e = requireString("prompt", probe.prompt)) {
                return *e;
            }
            if (endsWithSpace(probe.prompt)) {
                return v.fail(member(path, "prompt"), "must not end with whitespace (answers get a leading space)");
            }
        } else {
            if (p.contains("prompt")) {
                return v.fail(member(path, "prompt"), "grounded probes have passage and question instead");
            }
            if (auto e = requireString("passage", probe.passage)) {
                return *e;
            }
            if (auto e = requireString("question", probe.question)) {
                return *e;
            }
            if (p.contains("counterfactual")) {
                if (!p["counterfactual"].is_boolean()) {
                    return v.fail(member(path, "counterfactual"), "must be true or false");
                }
                probe.counterfactual = p["counterfactual"].get<bool>();
            }
            if (p.contains("memorised")) {
                if (!probe.counterfactual) {
                    return v.fail(member(path, "memorised"), "only counterfactual probes have a memorised answer");
                }
                if (auto e = stringList("memorised", probe.memorised)) {
                    return *e;
                }
            }
            const std::string passage = lower(probe.passage);
            const bool found = std::any_of(probe.answers.begin(), probe.answers.end(), [&](const std::string &a) {
                return passage.find(lower(a)) != std::string::npos;
            });
            if (!found) {
                return v.fail(member(path, "answers"), "no accepted answer occurs in the passage");
            }
        }
        set.probes.push_back(std::move(probe));
    }
    return set;
}

Result<ProbeSet> loadProbeSet(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return makeError(ErrorCode::Io, path + ": cannot open the probe set");
    }
    const std::string text((std::istreambuf_iterator<char>(in)), {});
    return parseProbeSet(text, path);
}

ProbeText probeText(const Probe &probe)
{
    if (probe.kind == ProbeKind::Factual) {
        return {probe.prompt, ""};
    }
    const std::string &t = probe.groundedTemplate;
    const auto passage = t.find("{passage}"), question = t.find("{question}");
    assert(passage != std::string::npos && question != std::string::npos && passage < question);
    const std::string context =
        t.substr(0, passage) + probe.passage + t.substr(passage + 9, question - passage - 9) + probe.question;
    return {context, t.substr(question + 10)};
}

std::string answerContinuation(const std::string &answer)
{
    if (!answer.empty() && std::isspace(static_cast<unsigned char>(answer.front()))) {
        return answer;
    }
    return " " + answer;
}

namespace {

bool isWordByte(unsigned char c)
{
    return std::isalnum(c) || c >= 0x80;
}

bool isArticle(const std::string &w)
{
    return w == "a" || w == "an" || w == "the";
}

// Words of `text` with articles dropped; `lastComplete` tells whether a separator follows the last word.
std::vector<std::string> words(const std::string &text, bool &lastComplete)
{
    std::vector<std::string> out;
    std::string cur;
    for (unsigned char c : text) {
        if (isWordByte(c)) {
            cur += static_cast<char>(std::tolower(c));
        } else if (!cur.empty()) {
            if (!isArticle(cur)) {
                out.push_back(cur);
            }
            cur.clear();
        }
    }
    lastComplete = cur.empty();
    if (!cur.empty()) {
        out.push_back(cur); // an unfinished word may still grow: not dropped as an article yet
    }
    return out;
}

bool startsWith(const std::string &s, const std::string &prefix)
{
    return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

} // namespace

std::vector<std::string> normalizedWords(const std::string &text)
{
    bool complete = false;
    auto w = words(text + " ", complete);
    return w;
}

AnswerMatch matchAnswer(const std::string &generated, const std::vector<std::string> &answers, bool finished)
{
    bool complete = false;
    std::vector<std::string> g = words(generated, complete);
    if (finished && !complete && !g.empty() && isArticle(g.back())) {
        g.pop_back();
    }
    complete = complete || finished;
    bool open = false;
    for (const auto &answer : answers) {
        const std::vector<std::string> a = normalizedWords(answer);
        if (a.empty()) {
            continue;
        }
        // Match: the answer's words, then either more words or a completed last word.
        if (g.size() >= a.size() && std::equal(a.begin(), a.end(), g.begin()) && (g.size() > a.size() || complete)) {
            return AnswerMatch::Match;
        }
        if (finished) {
            continue;
        }
        // Still open: every complete generated word agrees with the answer and the unfinished one (if any)
        // is a prefix of the answer's word or could be a growing article.
        const size_t full = complete ? g.size() : g.size() - 1;
        if (full > a.size() || !std::equal(g.begin(), g.begin() + static_cast<std::ptrdiff_t>(full), a.begin())) {
            continue;
        }
        if (complete) {
            open = open || full < a.size();
            continue;
        }
        const std::string &partial = g.back();
        if ((full < a.size() && startsWith(a[full], partial)) || startsWith("the", partial) ||
            startsWith("an", partial)) {
            open = true;
        }
    }
    return open ? AnswerMatch::Undecided : AnswerMatch::NoMatch;
}

} // namespace sinkscope
