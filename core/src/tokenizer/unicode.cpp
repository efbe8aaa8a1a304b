#include "tokenizer/unicode.h"

#include <algorithm>
#include <array>
#include <iterator>

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
