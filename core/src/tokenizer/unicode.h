// Private: the little Unicode the tokenizer needs. UTF-8 decoding/encoding and the character classes
// used by the pre-tokenizer regexes (\p{L}, \p{N}, \s). The class table is generated from the regex
// engine the reference tokenizers use (tools/make_unicode_tables.py), so "letter" here means exactly
// what \p{L} means to Hugging Face tokenizers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sinkscope::unicode {

// Disjoint classes: every code point is in exactly one.
enum class CharClass : uint8_t {
    Other,      // [^\s\p{L}\p{N}]: punctuation, symbols, marks, controls, unassigned, invalid bytes
    Letter,     // \p{L}: Lu, Ll, Lt, Lm, Lo
    Number,     // \p{N}: Nd, Nl, No
    Whitespace, // \s: Unicode White_Space (\t \n \v \f \r, space, U+0085, U+00A0, U+1680, U+2000-200A, ...)
};

CharClass charClass(char32_t cp);

// The case of a letter, or Mark for a combining mark (\p{M}); None for everything else, caseless
// letters (Lm, Lo) included. Only the GPT-4o split regex needs it.
enum class LetterCase : uint8_t { None, Upper, Lower, Title, Mark };

LetterCase letterCase(char32_t cp);

// Unicode Normalization Form C (canonical decomposition, canonical ordering, canonical composition).
// Ill-formed UTF-8 bytes are kept as they are and block composition across them.
std::string nfc(std::string_view text);

// One decoded unit of a UTF-8 string. An ill-formed sequence (stray continuation byte, overlong form,
// surrogate, value above U+10FFFF, truncated sequence) decodes as a single byte with valid == false
// and cp == that byte, so callers can keep every input byte and stay in step.
struct Utf8Char {
    char32_t cp = 0;
    uint8_t length = 1; // bytes consumed, 1..4
    bool valid = true;
};

// Decodes the unit starting at text[pos]; pos must be < text.size().
Utf8Char decodeUtf8(std::string_view text, size_t pos);

// Appends cp (<= U+10FFFF, not a surrogate) as UTF-8.
void appendUtf8(std::string &out, char32_t cp);

} // namespace sinkscope::unicode
