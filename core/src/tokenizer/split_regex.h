// Private: the split regexes of the supported tokenizers, hand-compiled into one matcher each, and
// tokenizers' rules for turning matches into pieces (SplitDelimiterBehavior).
//
// Each matcher reproduces one exact pattern string under Oniguruma's semantics (leftmost alternative
// wins, greedy quantifiers with backtracking), the engine Hugging Face tokenizers runs; the patterns
// are spelled out in kSplitRegexPatterns. Every one of them matches at every position, so its matches
// partition the text.
#pragma once

#include "sinkscope/tokenizer/tokenizer.h"

#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace sinkscope::tokenizer {

using Range = std::pair<size_t, size_t>; // byte range [first, second) of a text

// The regex a pattern string names, if it is one of the known ones (compared verbatim).
std::optional<SplitRegex> splitRegexFromPattern(std::string_view pattern);
std::string_view splitRegexName(SplitRegex regex);
std::optional<SplitRegex> splitRegexFromName(std::string_view name);

// The matches of a regex in text, in order; they cover the whole text.
std::vector<Range> regexMatches(std::string_view text, SplitRegex regex);
// The non-overlapping occurrences of a literal (non-empty) string, left to right.
std::vector<Range> literalMatches(std::string_view text, std::string_view literal);
// Runs of \p{N} characters (whole runs, or each character alone when `individual`).
std::vector<Range> digitMatches(std::string_view text, bool individual);

// Pieces of a text of `length` bytes given the matches, as tokenizers' Split does.
std::vector<Range> splitByMatches(size_t length, const std::vector<Range> &matches, SplitBehavior behavior,
                                  bool invert);

} // namespace sinkscope::tokenizer
