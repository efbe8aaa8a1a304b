#include "tokenizer/unicode.h"

#include <algorithm>
#include <array>
#include <iterator>
#include <string>
#include <utility>

namespace sinkscope::unicode {

namespace {

struct UnicodeRange {
    char32_t first;
    char32_t last;
    CharClass cls;
};

#include "tokenizer/unicode_tables.inc"

static_assert(std::size(kUnicodeRanges) > 0);

// Most text is ASCII; a flat table keeps the common case free of the binary search.
constexpr std::array<CharClass, 128> makeAsciiTable()
{
    std::array<CharClass, 128> table{};
    for (const UnicodeRange &r : kUnicodeRanges) {
        for (char32_t cp = r.first; cp <= r.last && cp < 128; ++cp) {
            table[cp] = r.cls;
        }
    }
    return table;
}

constexpr std::array<CharClass, 128> kAscii = makeAsciiTable();

} // namespace

CharClass charClass(char32_t cp)
{
    if (cp < 128) {
        return kAscii[cp];
    }
    const auto *end = std::end(kUnicodeRanges);
    const auto *it = std::upper_bound(std::begin(kUnicodeRanges), end, cp,
                                      [](char32_t c, const UnicodeRange &r) { return c < r.first; });
    if (it == std::begin(kUnicodeRanges)) {
        return CharClass::Other;
    }
    --it;
    return cp <= it->last ? it->cls : CharClass::Other;
}

Utf8Char decodeUtf8(std::string_view text, size_t pos)
{
    const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
    const unsigned char b0 = byte(pos);
    const Utf8Char invalid{b0, 1, false};
    if (b0 < 0x80) {
        return {b0, 1, true};
    }
    int length = 0;
    char32_t cp = 0;
    char32_t minimum = 0;
    if ((b0 & 0xE0) == 0xC0) {
        length = 2, cp = b0 & 0x1F, minimum = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
        length = 3, cp = b0 & 0x0F, minimum = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
        length = 4, cp = b0 & 0x07, minimum = 0x10000;
    } else {
        return invalid;
    }
    if (pos + size_t(length) > text.size()) {
        return invalid;
    }
    for (int i = 1; i < length; ++i) {
        const unsigned char b = byte(pos + size_t(i));
        if ((b & 0xC0) != 0x80) {
            return invalid;
        }
        cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < minimum || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return invalid;
    }
    return {cp, static_cast<uint8_t>(length), true};
}

void appendUtf8(std::string &out, char32_t cp)
{
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

} // namespace sinkscope::unicode

// ---- NFC and letter cases ---------------------------------------------------------------------------

namespace sinkscope::unicode {

namespace {

struct CombiningRange {
    char32_t first;
    char32_t last;
    uint8_t ccc;
};

struct Decomposition {
    char32_t cp;
    char32_t first;
    char32_t second; // 0 for a singleton
};

struct Composition {
    char32_t first;
    char32_t second;
    char32_t composite;
};

struct LetterCaseRange {
    char32_t first;
    char32_t last;
    LetterCase value;
};

#include "tokenizer/unicode_nfc_tables.inc"

template <typename Range> const Range *findRange(const Range *begin, const Range *end, char32_t cp)
{
    const Range *it = std::upper_bound(begin, end, cp, [](char32_t c, const Range &r) { return c < r.first; });
    if (it == begin) {
        return nullptr;
    }
    --it;
    return cp <= it->last ? it : nullptr;
}

uint8_t combiningClass(char32_t cp)
{
    if (cp < 0x300) {
        return 0;
    }
    const CombiningRange *r = findRange(std::begin(kCombiningClasses), std::end(kCombiningClasses), cp);
    return r ? r->ccc : 0;
}

constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

void decompose(char32_t cp, std::u32string &out)
{
    if (cp >= kSBase && cp < kSBase + kSCount) {
        const char32_t s = cp - kSBase;
        out += kLBase + s / kNCount;
        out += kVBase + (s % kNCount) / kTCount;
        if (s % kTCount != 0) {
            out += kTBase + s % kTCount;
        }
        return;
    }
    const auto *end = std::end(kDecompositions);
    const auto *it = std::lower_bound(std::begin(kDecompositions), end, cp,
                                      [](const Decomposition &d, char32_t c) { return d.cp < c; });
    if (it == end || it->cp != cp) {
        out += cp;
        return;
    }
    decompose(it->first, out);
    if (it->second != 0) {
        decompose(it->second, out);
    }
}

char32_t compose(char32_t first, char32_t second)
{
    if (first >= kLBase && first < kLBase + kLCount && second >= kVBase && second < kVBase + kVCount) {
        return kSBase + ((first - kLBase) * kVCount + (second - kVBase)) * kTCount;
    }
    if (first >= kSBase && first < kSBase + kSCount && (first - kSBase) % kTCount == 0 && second > kTBase &&
        second < kTBase + kTCount) {
        return first + (second - kTBase);
    }
    const auto *end = std::end(kCompositions);
    const auto *it = std::lower_bound(std::begin(kCompositions), end, std::pair{first, second},
                                      [](const Composition &c, const std::pair<char32_t, char32_t> &key) {
                                          return std::pair{c.first, c.second} < key;
                                      });
    return it != end && it->first == first && it->second == second ? it->composite : 0;
}

// NFC of a run of valid code points.
void nfcRun(const std::u32string &run, std::string &out)
{
    std::u32string d;
    for (const char32_t cp : run) {
        decompose(cp, d);
    }
    // Canonical ordering: a stable sort of each stretch of non-starters by combining class.
    for (size_t i = 0; i < d.size();) {
        if (combiningClass(d[i]) == 0) {
            ++i;
            continue;
        }
        size_t j = i;
        while (j < d.size() && combiningClass(d[j]) != 0) {
            ++j;
        }
        std::stable_sort(d.begin() + std::ptrdiff_t(i), d.begin() + std::ptrdiff_t(j),
                         [](char32_t a, char32_t b) { return combiningClass(a) < combiningClass(b); });
        i = j;
    }
    // Canonical composition: each character joins the last starter unless a character in between
    // has a combining class >= its own (blocked), or is a starter itself.
    std::u32string c;
    size_t starter = std::u32string::npos;
    int lastClass = -1;
    for (const char32_t cp : d) {
        const int cls = combiningClass(cp);
        if (starter != std::u32string::npos &&
            (lastClass < cls || (lastClass == 0 && cls == 0 && starter == c.size() - 1))) {
            if (const char32_t composite = compose(c[starter], cp)) {
                c[starter] = composite;
                continue;
            }
        }
        if (cls == 0) {
            starter = c.size();
            lastClass = 0;
        } else {
            lastClass = cls;
        }
        c += cp;
    }
    for (const char32_t cp : c) {
        appendUtf8(out, cp);
    }
}

} // namespace

LetterCase letterCase(char32_t cp)
{
    const LetterCaseRange *r = findRange(std::begin(kLetterCases), std::end(kLetterCases), cp);
    return r ? r->value : LetterCase::None;
}

std::string nfc(std::string_view text)
{
    // Below U+0300 every character is already NFC and never combines with what follows it.
    if (std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0xCC; })) {
        return std::string(text);
    }
    std::string out;
    out.reserve(text.size());
    std::u32string run;
    for (size_t pos = 0; pos < text.size();) {
        const Utf8Char ch = decodeUtf8(text, pos);
        if (ch.valid) {
            run += ch.cp;
        } else {
            nfcRun(run, out);
            run.clear();
            out += text[pos];
        }
        pos += ch.length;
    }
    nfcRun(run, out);
    return out;
}

} // namespace sinkscope::unicode
