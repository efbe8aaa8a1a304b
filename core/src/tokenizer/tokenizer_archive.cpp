// The tokenizer JSON that SinkScope model archives carry (keys mirror TokenizerData).
#include "sinkscope/tokenizer/tokenizer.h"
#include "tokenizer/split_regex.h"
#include "tokenizer/tokenizer_private.h"

#include <nlohmann/json.hpp>

#include <array>

namespace sinkscope {

namespace tk = sinkscope::tokenizer;
using nlohmann::json;

// ---- shared names and step serialization ------------------------------------------------------------

namespace tokenizer {

namespace {

constexpr std::array<std::pair<SplitBehavior, std::string_view>, 5> kBehaviors = {{
    {SplitBehavior::Removed, "Removed"},
    {SplitBehavior::Isolated, "Isolated"},
    {SplitBehavior::MergedWithPrevious, "MergedWithPrevious"},
    {SplitBehavior::MergedWithNext, "MergedWithNext"},
    {SplitBehavior::Contiguous, "Contiguous"},
}};
constexpr std::array<std::pair<std::string_view, SplitBehavior>, 5> kBehaviorsSnake = {{
    {"removed", SplitBehavior::Removed},
    {"isolated", SplitBehavior::Isolated},
    {"merged_with_previous", SplitBehavior::MergedWithPrevious},
    {"merged_with_next", SplitBehavior::MergedWithNext},
    {"contiguous", SplitBehavior::Contiguous},
}};
constexpr std::array<std::pair<PrependScheme, std::string_view>, 3> kSchemes = {{
    {PrependScheme::Always, "always"},
    {PrependScheme::First, "first"},
    {PrependScheme::Never, "never"},
}};

// Reads optional fields of one step; the first wrong type becomes the error.
class Fields
{
public:
    explicit Fields(const json &j) : m_j(j) {}
    template <typename T> void get(const char *name, T &target)
    {
        const auto it = m_j.find(name);
        if (it == m_j.end() || !m_error.empty()) {
            return;
        }
        if constexpr (std::is_same_v<T, bool>) {
            if (!it->is_boolean()) {
                m_error = std::string("'") + name + "' must be a boolean";
                return;
            }
        } else if constexpr (std::is_same_v<T, std::string>) {
            if (!it->is_string()) {
                m_error = std::string("'") + name + "' must be a string";
                return;
            }
        } else {
            if (!it->is_number_integer()) {
                m_error = std::string("'") + name + "' must be an integer";
                return;
            }
        }
        target = it->get<T>();
    }
    std::string type()
    {
        std::string t;
        if (!m_j.is_object() || !m_j.contains("type")) {
            m_error = "a step must be an object with a 'type'";
            return t;
        }
        get("type", t);
        return t;
    }
    void fail(std::string message)
    {
        if (m_error.empty()) {
            m_error = std::move(message);
        }
    }
    const std::string &error() const { return m_error; }

private:
    const json &m_j;
    std::string m_error;
};

} // namespace

std::string_view splitBehaviorName(SplitBehavior b)
{
    for (const auto &[value, name] : kBehaviors) {
        if (value == b) {
            return name;
        }
    }
    return {};
}

std::optional<SplitBehavior> splitBehaviorFromName(std::string_view name)
{
    for (const auto &[value, n] : kBehaviors) {
        if (n == name) {
            return value;
        }
    }
    for (const auto &[n, value] : kBehaviorsSnake) {
        if (n == name) {
            return value;
        }
    }
    return std::nullopt;
}

std::string_view prependSchemeName(PrependScheme p)
{
    for (const auto &[value, name] : kSchemes) {
        if (value == p) {
            return name;
        }
    }
    return {};
}

std::optional<PrependScheme> prependSchemeFromName(std::string_view name)
{
    for (const auto &[value, n] : kSchemes) {
        if (n == name) {
            return value;
        }
    }
    return std::nullopt;
}

json toArchiveJson(const NormalizerStep &s)
{
    switch (s.kind) {
    case NormalizerStep::Kind::Nfc:
        return {{"type", "NFC"}};
    case NormalizerStep::Kind::Replace:
        return {{"type", "Replace"}, {"pattern", s.pattern}, {"content", s.content}};
    case NormalizerStep::Kind::Prepend:
        return {{"type", "Prepend"}, {"content", s.content}};
    }
    return {};
}

std::string fromArchiveJson(const json &j, NormalizerStep &s)
{
    Fields f(j);
    const std::string type = f.type();
    if (type == "NFC") {
        s.kind = NormalizerStep::Kind::Nfc;
    } else if (type == "Replace") {
        s.kind = NormalizerStep::Kind::Replace;
    } else if (type == "Prepend") {
        s.kind = NormalizerStep::Kind::Prepend;
    } else {
        f.fail("unknown normalizer '" + type + "'");
    }
    f.get("pattern", s.pattern);
    f.get("content", s.content);
    return f.error();
}

json toArchiveJson(const PreTokenizerStep &s)
{
    switch (s.kind) {
    case PreTokenizerStep::Kind::Split:
        return {{"type", "Split"},
                {"pattern", s.pattern},
                {"regex", s.regex ? json(std::string(splitRegexName(*s.regex))) : json()},
                {"behavior", std::string(splitBehaviorName(s.behavior))},
                {"invert", s.invert}};
    case PreTokenizerStep::Kind::ByteLevel:
        return {{"type", "ByteLevel"}, {"addPrefixSpace", s.addPrefixSpace}, {"useRegex", s.useRegex}};
    case PreTokenizerStep::Kind::Digits:
        return {{"type", "Digits"}, {"individualDigits", s.individualDigits}};
    case PreTokenizerStep::Kind::Metaspace:
        return {{"type", "Metaspace"},
                {"replacement", s.replacement},
                {"prependScheme", std::string(prependSchemeName(s.prependScheme))},
                {"split", s.split}};
    }
    return {};
}

std::string fromArchiveJson(const json &j, PreTokenizerStep &s)
{
    Fields f(j);
    const std::string type = f.type();
    if (type == "Split") {
        s.kind = PreTokenizerStep::Kind::Split;
    } else if (type == "ByteLevel") {
        s.kind = PreTokenizerStep::Kind::ByteLevel;
    } else if (type == "Digits") {
        s.kind = PreTokenizerStep::Kind::Digits;
    } else if (type == "Metaspace") {
        s.kind = PreTokenizerStep::Kind::Metaspace;
    } else {
        f.fail("unknown pre-tokenizer '" + type + "'");
    }
    f.get("pattern", s.pattern);
    if (const auto it = j.find("regex"); f.error().empty() && it != j.end() && !it->is_null()) {
        const auto regex = it->is_string() ? splitRegexFromName(it->get<std::string>()) : std::nullopt;
        if (!regex) {
            f.fail("unknown split regex " + it->dump());
        }
        s.regex = regex;
    }
    std::string behavior(splitBehaviorName(s.behavior));
    f.get("behavior", behavior);
    if (const auto b = splitBehaviorFromName(behavior)) {
        s.behavior = *b;
    } else {
        f.fail("unknown split behavior '" + behavior + "'");
    }
    f.get("invert", s.invert);
    f.get("addPrefixSpace", s.addPrefixSpace);
    f.get("useRegex", s.useRegex);
    f.get("individualDigits", s.individualDigits);
    f.get("replacement", s.replacement);
    std::string scheme(prependSchemeName(s.prependScheme));
    f.get("prependScheme", scheme);
    if (const auto p = prependSchemeFromName(scheme)) {
        s.prependScheme = *p;
    } else {
        f.fail("unknown prepend scheme '" + scheme + "'");
    }
    f.get("split", s.split);
    return f.error();
}

json toArchiveJson(const DecoderStep &s)
{
    switch (s.kind) {
    case DecoderStep::Kind::ByteLevel:
        return {{"type", "ByteLevel"}};
    case DecoderStep::Kind::Replace:
        return {{"type", "Replace"}, {"pattern", s.pattern}, {"content", s.content}};
    case DecoderStep::Kind::ByteFallback:
        return {{"type", "ByteFallback"}};
    case DecoderStep::Kind::Fuse:
        return {{"type", "Fuse"}};
    case DecoderStep::Kind::Strip:
        return {{"type", "Strip"}, {"content", s.content}, {"start", s.start}, {"stop", s.stop}};
    case DecoderStep::Kind::Metaspace:
        return {{"type", "Metaspace"},
                {"replacement", s.replacement},
                {"prependScheme", std::string(prependSchemeName(s.prependScheme))}};
    }
    return {};
}

std::string fromArchiveJson(const json &j, DecoderStep &s)
{
    Fields f(j);
    const std::string type = f.type();
    static const std::array<std::pair<std::string_view, DecoderStep::Kind>, 6> kinds = {{
        {"ByteLevel", DecoderStep::Kind::ByteLevel},
        {"Replace", DecoderStep::Kind::Replace},
        {"ByteFallback", DecoderStep::Kind::ByteFallback},
        {"Fuse", DecoderStep::Kind::Fuse},
        {"Strip", DecoderStep::Kind::Strip},
        {"Metaspace", DecoderStep::Kind::Metaspace},
    }};
    const auto it = std::find_if(kinds.begin(), kinds.end(), [&](const auto &k) { return k.first == type; });
    if (it == kinds.end()) {
        f.fail("unknown decoder '" + type + "'");
    } else {
        s.kind = it->second;
    }
    f.get("pattern", s.pattern);
    f.get("content", s.content);
    f.get("start", s.start);
    f.get("stop", s.stop);
    f.get("replacement", s.replacement);
    std::string scheme(prependSchemeName(s.prependScheme));
    f.get("prependScheme", scheme);
    if (const auto p = prependSchemeFromName(scheme)) {
        s.prependScheme = *p;
    } else {
        f.fail("unknown prepend scheme '" + scheme + "'");
    }
    return f.error();
}

json toArchiveJson(const AddedToken &a)
{
    return {{"id", a.id},         {"content", a.content}, {"special", a.special},
            {"lstrip", a.lstrip}, {"rstrip", a.rstrip},   {"normalized", a.normalized}};
}

std::string fromArchiveJson(const json &j, AddedToken &a)
{
    if (!j.is_object() || !j.contains("id") || !j.contains("content")) {
        return "an added token must be an object with 'id' and 'content'";
    }
    Fields f(j);
    f.get("id", a.id);
    f.get("content", a.content);
    f.get("special", a.special);
    f.get("lstrip", a.lstrip);
    f.get("rstrip", a.rstrip);
    f.get("normalized", a.normalized);
    return f.error();
}

} // namespace tokenizer

// ---- archive JSON -------------------------------------------------------------------------------------

namespace {

// 1: byte-level BPE only. 2: pipeline keys, scores, merges as [left, right].
constexpr int kJsonVersion = 2;

template <typename T> json stepsToJson(const std::vector<T> &steps)
{
    json out = json::array();
    for (const T &s : steps) {
        out.push_back(tk::toArchiveJson(s));
    }
    return out;
}

} // namespace

std::string Tokenizer::toJson() const
{
    json j;
    j["version"] = kJsonVersion;
    j["model"] = m_data.model;
    j["pre"] = m_data.pre;
    j["tokens"] = m_data.tokens;
    auto types = json::array();
    for (const TokenType t : m_data.types) {
        types.push_back(static_cast<int32_t>(t));
    }
    j["types"] = std::move(types);
    j["scores"] = m_data.scores;
    auto merges = json::array();
    for (const auto &[left, right] : m_data.merges) {
        merges.push_back(json::array({left, right}));
    }
    j["merges"] = std::move(merges);
    const auto optionalId = [](const std::optional<int64_t> &id) {
        return id ? json(*id) : json(); // null when absent
    };
    j["bosId"] = optionalId(m_data.bosId);
    j["eosId"] = optionalId(m_data.eosId);
    j["unkId"] = optionalId(m_data.unkId);
    j["padId"] = optionalId(m_data.padId);
    j["addBos"] = m_data.addBos;
    j["addEos"] = m_data.addEos;
    j["addSpacePrefix"] = m_data.addSpacePrefix;
    j["byteFallback"] = m_data.byteFallback;
    j["fuseUnk"] = m_data.fuseUnk;
    // Absent keys mean "the defaults for model/pre" (see TokenizerData), so nullopt is left out.
    if (m_data.normalizers) {
        j["normalizers"] = stepsToJson(*m_data.normalizers);
    }
    if (m_data.preTokenizers) {
        j["preTokenizers"] = stepsToJson(*m_data.preTokenizers);
    }
    if (m_data.decoders) {
        j["decoders"] = stepsToJson(*m_data.decoders);
    }
    if (m_data.ignoreMerges) {
        j["ignoreMerges"] = *m_data.ignoreMerges;
    }
    if (m_data.addedTokens) {
        j["addedTokens"] = stepsToJson(*m_data.addedTokens);
    }
    // Vocabulary entries are valid UTF-8 in every vocabulary we read (byte-level ones by construction);
    // replacing rather than throwing keeps a stray entry from making the archive unwritable.
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<std::shared_ptr<const Tokenizer>> Tokenizer::fromJson(const std::string &text, const std::string &origin)
{
    const auto bad = [&](const std::string &what) { return makeError(ErrorCode::Corrupt, origin + ": " + what); };
    json j;
    try {
        j = json::parse(text);
    } catch (const json::exception &e) { // parse_error, and out_of_range for a number past double (1e999)
        return bad(std::string("not valid JSON (") + e.what() + ")");
    }
    if (!j.is_object()) {
        return bad("not a JSON object");
    }
    const auto field = [&](const char *name) -> const json * {
        const auto it = j.find(name);
        return it == j.end() ? nullptr : &*it;
    };
    const auto mustBe = [&](const char *name, const char *what) {
        return bad("field '" + std::string(name) + "' must be " + what);
    };

    if (const auto *v = field("version"); v && !(v->is_number_integer() && v->get<int64_t>() <= kJsonVersion)) {
        return bad("field 'version' must be an integer <= " + std::to_string(kJsonVersion) +
                   " (written by a newer SinkScope?)");
    }

    TokenizerData data;
    for (const auto &[name, target] : {std::pair{"model", &data.model}, std::pair{"pre", &data.pre}}) {
        if (const auto *v = field(name)) {
            if (!v->is_string()) {
                return mustBe(name, "a string");
            }
            *target = v->get<std::string>();
        }
    }
    const auto *tokens = field("tokens");
    if (!tokens) {
        return bad("field 'tokens' is missing");
    }
    if (!tokens->is_array()) {
        return mustBe("tokens", "an array of strings");
    }
    data.tokens.reserve(tokens->size());
    for (const auto &e : *tokens) {
        if (!e.is_string()) {
            return mustBe("tokens", "an array of strings");
        }
        data.tokens.push_back(e.get<std::string>());
    }
    if (const auto *v = field("merges")) {
        // Version 1 wrote "left right" strings; version 2 writes [left, right].
        const char *what = "an array of strings 'left right' or of pairs [left, right]";
        if (!v->is_array()) {
            return mustBe("merges", what);
        }
        data.merges.reserve(v->size());
        for (size_t i = 0; i < v->size(); ++i) {
            const json &e = (*v)[i];
            if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
                data.merges.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
                continue;
            }
            if (!e.is_string()) {
                return mustBe("merges", what);
            }
            const std::string m = e.get<std::string>();
            const size_t space = m.find(' ', 1);
            if (space == std::string::npos || space + 1 >= m.size()) {
                return bad("merge " + std::to_string(i) + " '" + m + "' is not of the form 'left right'");
            }
            data.merges.emplace_back(m.substr(0, space), m.substr(space + 1));
        }
    }
    if (const auto *v = field("types")) {
        if (!v->is_array()) {
            return mustBe("types", "an array of token types (integers 0..6)");
        }
        data.types.reserve(v->size());
        for (const auto &e : *v) {
            if (!e.is_number_integer() || !tk::isValidTokenType(e.get<int64_t>())) {
                return mustBe("types", "an array of token types (integers 0..6)");
            }
            data.types.push_back(static_cast<TokenType>(e.get<int64_t>()));
        }
    }
    if (const auto *v = field("scores")) {
        if (!v->is_array() || !std::all_of(v->begin(), v->end(), [](const json &e) { return e.is_number(); })) {
            return mustBe("scores", "an array of numbers");
        }
        data.scores = v->get<std::vector<float>>();
    }
    for (const auto &[name, target] : {std::pair{"bosId", &data.bosId}, std::pair{"eosId", &data.eosId},
                                       std::pair{"unkId", &data.unkId}, std::pair{"padId", &data.padId}}) {
        if (const auto *v = field(name); v && !v->is_null()) {
            if (!v->is_number_integer()) {
                return mustBe(name, "an integer or null");
            }
            *target = v->get<int64_t>();
        }
    }
    for (const auto &[name, target] :
         {std::pair{"addBos", &data.addBos}, std::pair{"addEos", &data.addEos},
          std::pair{"addSpacePrefix", &data.addSpacePrefix}, std::pair{"byteFallback", &data.byteFallback},
          std::pair{"fuseUnk", &data.fuseUnk}}) {
        if (const auto *v = field(name)) {
            if (!v->is_boolean()) {
                return mustBe(name, "a boolean");
            }
            *target = v->get<bool>();
        }
    }
    if (const auto *v = field("ignoreMerges")) {
        if (!v->is_boolean()) {
            return mustBe("ignoreMerges", "a boolean");
        }
        data.ignoreMerges = v->get<bool>();
    }
    const auto readSteps = [&](const char *name, auto &target) -> std::string {
        const auto *v = field(name);
        if (!v) {
            return {};
        }
        if (!v->is_array()) {
            return "field '" + std::string(name) + "' must be an array";
        }
        target.emplace();
        for (size_t i = 0; i < v->size(); ++i) {
            target->emplace_back();
            if (std::string e = tk::fromArchiveJson((*v)[i], target->back()); !e.empty()) {
                return "field '" + std::string(name) + "'[" + std::to_string(i) + "]: " + e;
            }
        }
        return {};
    };
    for (const std::string &e :
         {readSteps("normalizers", data.normalizers), readSteps("preTokenizers", data.preTokenizers),
          readSteps("decoders", data.decoders), readSteps("addedTokens", data.addedTokens)}) {
        if (!e.empty()) {
            return bad(e);
        }
    }

    auto tokenizer = create(std::move(data));
    if (!tokenizer) {
        return makeError(tokenizer.error().code, origin + ": " + tokenizer.error().message);
    }
    return tokenizer;
}

} // namespace sinkscope
