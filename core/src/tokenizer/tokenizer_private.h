// Private: what tokenizer.cpp, tokenizer_gguf.cpp and tokenizer_json.cpp share.
#pragma once

#include "sinkscope/tokenizer/tokenizer.h"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sinkscope::tokenizer {

// Lets std::unordered_map<std::string, ...> be searched with a std::string_view.
struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

inline bool isValidTokenType(int64_t t)
{
    return t >= 0 && t <= static_cast<int64_t>(TokenType::Byte);
}

// transformers' generate_merges: the merges a vocabulary implies, best `priority` (per token id) first.
std::vector<std::pair<std::string, std::string>> generateMerges(const std::vector<std::string> &tokens,
                                                                const std::vector<double> &priority);

// The pipeline steps as SinkScope's archive JSON writes them ({"type": "Split", ...}); fromArchiveJson
// returns an error message naming the problem, or "" on success.
nlohmann::json toArchiveJson(const NormalizerStep &s);
nlohmann::json toArchiveJson(const PreTokenizerStep &s);
nlohmann::json toArchiveJson(const DecoderStep &s);
nlohmann::json toArchiveJson(const AddedToken &a);
std::string fromArchiveJson(const nlohmann::json &j, NormalizerStep &s);
std::string fromArchiveJson(const nlohmann::json &j, PreTokenizerStep &s);
std::string fromArchiveJson(const nlohmann::json &j, DecoderStep &s);
std::string fromArchiveJson(const nlohmann::json &j, AddedToken &a);

// Names as tokenizers spells them in tokenizer.json ("Isolated", "first", ...).
std::string_view splitBehaviorName(SplitBehavior b);
std::optional<SplitBehavior> splitBehaviorFromName(std::string_view name); // also accepts snake_case
std::string_view prependSchemeName(PrependScheme p);
std::optional<PrependScheme> prependSchemeFromName(std::string_view name);

} // namespace sinkscope::tokenizer
