#include "tokenizer/split_regex.h"

#include "tokenizer/unicode.h"

#include <algorithm>
#include <array>

namespace sinkscope::tokenizer {

using unicode::CharClass;

namespace {

struct KnownRegex {
    SplitRegex regex;
    std::string_view name;
    std::string_view pattern;
};

constexpr std::array kKnownRegexes = {
    KnownRegex{SplitRegex::Gpt2, "gpt2",
               R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)"},
    KnownRegex{
        SplitRegex::Llama3, "llama3",
        R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"},
    KnownRegex{
        SplitRegex::Qwen2, "qwen2",
        R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"},
    KnownRegex{
        SplitRegex::O200k, "o200k",
        R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
        R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?)"
        R"(|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)"},
};

struct Unit {
    size_t offset; // byte offset in the text
    char32_t cp;
    CharClass cls;
};

void decodeUnits(std::string_view text, std::vector<Unit> &units)
{
    units.clear();
    for (size_t pos = 0; pos < text.size();) {
        const unicode::Utf8Char ch = unicode::decodeUtf8(text, pos);
        // A stray byte is "other": it can only join runs of punctuation, never a word or a number.
        const CharClass cls = ch.valid ? unicode::charClass(ch.cp) : CharClass::Other;
        units.push_back({pos, ch.valid ? ch.cp : char32_t(0xFFFD), cls});
        pos += ch.length;
    }
    units.push_back({text.size(), 0, CharClass::Other}); // end sentinel
}

size_t runOf(const Unit *u, size_t i, size_t end, CharClass cls)
{
    while (i < end && u[i].cls == cls) {
        ++i;
    }
    return i;
}

bool isCrLf(char32_t cp)
{
    return cp == U'\r' || cp == U'\n';
}

// `\s+(?!\S)|\s+` at a whitespace unit: the greedy run backs off one unit when a non-space follows, so
// that unit can lead the next word (" world"), unless the run is a single unit.
size_t matchWhitespace(const Unit *u, size_t p, size_t end)
{
    const size_t q = runOf(u, p, end, CharClass::Whitespace);
    if (q == p) {
        return p + 1; // not reached: the callers route every other class elsewhere; keeps progress
    }
    return (q == end || q - p == 1) ? q : q - 1;
}

// `'s|'t|'re|'ve|'m|'ll|'d` with an optional case fold; returns the match end or 0.
size_t matchContraction(const Unit *u, size_t p, size_t end, bool ignoreCase)
{
    if (p >= end || u[p].cp != U'\'' || p + 1 >= end) {
        return 0;
    }
    const auto fold = [ignoreCase](char32_t c) -> char32_t {
        if (!ignoreCase) {
            return c;
        }
        if (c == U'\u017F') { // LATIN SMALL LETTER LONG S case-folds to 's' in Oniguruma
            return U's';
        }
        return (c >= U'A' && c <= U'Z') ? c + 32 : c;
    };
    const char32_t a = fold(u[p + 1].cp);
    if (a == U's' || a == U't' || a == U'm' || a == U'd') {
        return p + 2;
    }
    if (p + 2 < end) {
        const char32_t b = fold(u[p + 2].cp);
        if ((a == U'r' && b == U'e') || (a == U'v' && b == U'e') || (a == U'l' && b == U'l')) {
            return p + 3;
        }
    }
    return 0;
}

size_t matchGpt2(const Unit *u, size_t p, size_t end)
{
    if (const size_t m = matchContraction(u, p, end, false)) {
        return m;
    }
    // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: the unit's own class decides which can start here.
    for (const CharClass cls : {CharClass::Letter, CharClass::Number, CharClass::Other}) {
        if (u[p].cls == cls) {
            return runOf(u, p, end, cls);
        }
        if (u[p].cp == U' ' && p + 1 < end && u[p + 1].cls == cls) {
            return runOf(u, p + 1, end, cls);
        }
    }
    return matchWhitespace(u, p, end);
}

//  ?[^\s\p{L}\p{N}]+[\r\n<extra>]* ; returns 0 when it does not match at p.
size_t matchPunctuation(const Unit *u, size_t p, size_t end, bool slashToo)
{
    size_t start = end;
    if (u[p].cls == CharClass::Other) {
        start = p;
    } else if (u[p].cp == U' ' && p + 1 < end && u[p + 1].cls == CharClass::Other) {
        start = p + 1;
    }
    if (start == end) {
        return 0;
    }
    size_t q = runOf(u, start, end, CharClass::Other);
    while (q < end && (isCrLf(u[q].cp) || (slashToo && u[q].cp == U'/'))) {
        ++q;
    }
    return q;
}

// `\s*[\r\n]+|\s+(?!\S)|\s+` at a whitespace unit: backtracking leaves the first alternative right
// after the run's last line break.
size_t matchSpaceRun(const Unit *u, size_t p, size_t end)
{
    const size_t q = runOf(u, p, end, CharClass::Whitespace);
    for (size_t r = q; r > p; --r) {
        if (isCrLf(u[r - 1].cp)) {
            return r;
        }
    }
    return matchWhitespace(u, p, end);
}

size_t matchDigits(const Unit *u, size_t p, size_t end, size_t maxDigits)
{
    size_t q = p;
    while (q < end && q - p < maxDigits && u[q].cls == CharClass::Number) {
        ++q;
    }
    return q;
}

// Llama-3 (maxDigits 3) and Qwen2 (maxDigits 1).
size_t matchLlama3(const Unit *u, size_t p, size_t end, size_t maxDigits)
{
    if (const size_t m = matchContraction(u, p, end, true)) {
        return m;
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (u[p].cls == CharClass::Letter) {
        return runOf(u, p, end, CharClass::Letter);
    }
    if (p + 1 < end && u[p + 1].cls == CharClass::Letter && u[p].cls != CharClass::Number && !isCrLf(u[p].cp)) {
        return runOf(u, p + 1, end, CharClass::Letter);
    }
    if (u[p].cls == CharClass::Number) {
        return matchDigits(u, p, end, maxDigits);
    }
    if (const size_t m = matchPunctuation(u, p, end, false)) {
        return m;
    }
    return matchSpaceRun(u, p, end);
}

// GPT-4o / o200k. Letters are split by case: an upper-case run may lead a lower-case run ("Hello",
// "HTTPServer" -> "HTTPS", "erver"), and a contraction sticks to the word before it.
bool isUpperish(char32_t cp, CharClass cls) // [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
{
    const unicode::LetterCase c = unicode::letterCase(cp);
    return cls == CharClass::Letter ? c != unicode::LetterCase::Lower : c == unicode::LetterCase::Mark;
}

bool isLowerish(char32_t cp, CharClass cls) // [\p{Ll}\p{Lm}\p{Lo}\p{M}]
{
    const unicode::LetterCase c = unicode::letterCase(cp);
    return cls == CharClass::Letter ? (c != unicode::LetterCase::Upper && c != unicode::LetterCase::Title)
                                    : c == unicode::LetterCase::Mark;
}

// The word alternatives at q (after the optional lead): [U]*[L]+ (second == false) or [U]+[L]*, each
// followed by an optional contraction; 0 when it does not match.
size_t matchO200kWord(const Unit *u, size_t q, size_t end, bool second)
{
    const auto upper = [&](size_t i) { return i < end && isUpperish(u[i].cp, u[i].cls); };
    const auto lower = [&](size_t i) { return i < end && isLowerish(u[i].cp, u[i].cls); };
    size_t r = q;
    while (upper(r)) {
        ++r;
    }
    size_t wordEnd = 0;
    if (!second) {
        // Greedy [U]* backs off until [L]+ can take at least one unit.
        for (size_t s = r;; --s) {
            if (lower(s)) {
                wordEnd = s;
                while (lower(wordEnd)) {
                    ++wordEnd;
                }
                break;
            }
            if (s == q) {
                return 0;
            }
        }
    } else {
        if (r == q) {
            return 0;
        }
        wordEnd = r;
        while (lower(wordEnd)) {
            ++wordEnd;
        }
    }
    if (const size_t m = matchContraction(u, wordEnd, end, true)) {
        return m;
    }
    return wordEnd;
}

size_t matchO200k(const Unit *u, size_t p, size_t end)
{
    // Each word alternative with the optional lead [^\r\n\p{L}\p{N}] (greedy: tried first), then without.
    const bool canLead = u[p].cls != CharClass::Letter && u[p].cls != CharClass::Number && !isCrLf(u[p].cp);
    for (const bool second : {false, true}) {
        if (canLead && p + 1 < end) {
            if (const size_t m = matchO200kWord(u, p + 1, end, second)) {
                return m;
            }
        }
        if (const size_t m = matchO200kWord(u, p, end, second)) {
            return m;
        }
    }
    if (u[p].cls == CharClass::Number) {
        return matchDigits(u, p, end, 3);
    }
    if (const size_t m = matchPunctuation(u, p, end, true)) {
        return m;
    }
    if (u[p].cls == CharClass::Whitespace) {
        return matchSpaceRun(u, p, end);
    }
    return p + 1; // not reached: every unit is a word, a number, punctuation or whitespace
}

} // namespace

std::optional<SplitRegex> splitRegexFromPattern(std::string_view pattern)
{
    for (const KnownRegex &k : kKnownRegexes) {
        if (k.pattern == pattern) {
            return k.regex;
        }
    }
    return std::nullopt;
}

std::string_view splitRegexName(SplitRegex regex)
{
    for (const KnownRegex &k : kKnownRegexes) {
        if (k.regex == regex) {
            return k.name;
        }
    }
    return {};
}

std::optional<SplitRegex> splitRegexFromName(std::string_view name)
{
    for (const KnownRegex &k : kKnownRegexes) {
        if (k.name == name) {
            return k.regex;
        }
    }
    return std::nullopt;
}

std::vector<Range> regexMatches(std::string_view text, SplitRegex regex)
{
    std::vector<Range> out;
    if (text.empty()) {
        return out;
    }
    std::vector<Unit> units;
    decodeUnits(text, units);
    const Unit *u = units.data();
    const size_t end = units.size() - 1;
    for (size_t p = 0; p < end;) {
        size_t q = p + 1;
        switch (regex) {
        case SplitRegex::Gpt2:
            q = matchGpt2(u, p, end);
            break;
        case SplitRegex::Llama3:
            q = matchLlama3(u, p, end, 3);
            break;
        case SplitRegex::Qwen2:
            q = matchLlama3(u, p, end, 1);
            break;
        case SplitRegex::O200k:
            q = matchO200k(u, p, end);
            break;
        }
        out.emplace_back(u[p].offset, u[q].offset);
        p = q;
    }
    return out;
}

std::vector<Range> literalMatches(std::string_view text, std::string_view literal)
{
    std::vector<Range> out;
    if (literal.empty()) {
        return out;
    }
    for (size_t pos = text.find(literal); pos != std::string_view::npos; pos = text.find(literal, pos)) {
        out.emplace_back(pos, pos + literal.size());
        pos += literal.size();
    }
    return out;
}

std::vector<Range> digitMatches(std::string_view text, bool individual)
{
    std::vector<Range> out;
    for (size_t pos = 0; pos < text.size();) {
        const unicode::Utf8Char ch = unicode::decodeUtf8(text, pos);
        const bool digit = ch.valid && unicode::charClass(ch.cp) == CharClass::Number;
        if (digit) {
            if (!individual && !out.empty() && out.back().second == pos) {
                out.back().second = pos + ch.length;
            } else {
                out.emplace_back(pos, pos + ch.length);
            }
        }
        pos += ch.length;
    }
    return out;
}

std::vector<Range> splitByMatches(size_t length, const std::vector<Range> &matches, SplitBehavior behavior, bool invert)
{
    // Every byte of the text as a match or a gap, in order.
    std::vector<std::pair<Range, bool>> all;
    size_t pos = 0;
    for (const Range &m : matches) {
        if (m.first > pos) {
            all.push_back({{pos, m.first}, invert});
        }
        all.push_back({m, !invert});
        pos = m.second;
    }
    if (pos < length) {
        all.push_back({{pos, length}, invert});
    }

    std::vector<Range> out;
    switch (behavior) {
    case SplitBehavior::Removed:
        for (const auto &[range, isMatch] : all) {
            if (!isMatch) {
                out.push_back(range);
            }
        }
        break;
    case SplitBehavior::Isolated:
        for (const auto &[range, isMatch] : all) {
            out.push_back(range);
        }
        break;
    case SplitBehavior::MergedWithPrevious: {
        bool previousMatch = false;
        for (const auto &[range, isMatch] : all) {
            if (isMatch && !previousMatch && !out.empty()) {
                out.back().second = range.second;
            } else {
                out.push_back(range);
            }
            previousMatch = isMatch;
        }
        break;
    }
    case SplitBehavior::MergedWithNext: {
        bool nextMatch = false;
        for (auto it = all.rbegin(); it != all.rend(); ++it) {
            const auto &[range, isMatch] = *it;
            if (isMatch && !nextMatch && !out.empty()) {
                out.back().first = range.first;
            } else {
                out.push_back(range);
            }
            nextMatch = isMatch;
        }
        std::reverse(out.begin(), out.end());
        break;
    }
    case SplitBehavior::Contiguous: {
        bool previousMatch = false;
        for (const auto &[range, isMatch] : all) {
            if (isMatch && previousMatch) {
                out.back().second = range.second;
            } else {
                out.push_back(range);
            }
            previousMatch = isMatch;
        }
        break;
    }
    }
    return out;
}

} // namespace sinkscope::tokenizer
