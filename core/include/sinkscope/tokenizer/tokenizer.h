// BPE tokenizers built from a model's own data: the vocabulary, merges, token types, special tokens and
// text pipeline found in a GGUF file (tokenizer.ggml.*), in a Hugging Face tokenizer.json (+
// tokenizer_config.json), or in the tokenizer JSON that SinkScope model archives carry.
//
// Two models (TokenizerData::model, llama.cpp's names):
// - "gpt2": byte-level BPE (GPT-2, Llama-3, Qwen2/3, GPT-NeoX, OLMo 2, gpt-oss, SmolLM). The vocabulary
//   is spelled in GPT-2's byte alphabet; text bytes are mapped to it before the merges.
// - "llama": SentencePiece-style BPE over characters (Llama 2, Mistral, Phi-3, Gemma). A space is "▁";
//   a character missing from the vocabulary falls back to its UTF-8 bytes as <0xNN> tokens
//   (byteFallback), else to unkId, else it is dropped.
//
// encode() runs Hugging Face tokenizers' pipeline, written to give the same ids:
// 1. added tokens (TokenizerData::addedTokens) are matched whole, leftmost-longest, before anything
//    else; special ones only when EncodeOptions::parseSpecial is set, non-special ones always.
// 2. each stretch of text between them is normalized (normalizers), pre-tokenized (preTokenizers) and
//    each piece is merged: lowest merge rank first, ties to the leftmost pair; with ignoreMerges a
//    piece found whole in the vocabulary skips the merges.
// 3. BOS is prepended (policy addBos, or the EncodeOptions override) and EOS appended (addEos) when
//    their ids are known; a BOS already written in the text is kept.
// The split regexes of Split pre-tokenizers are hand-written matchers for the patterns the supported
// families ship (SplitRegex names); other patterns are refused, never approximated.
//
// decode() runs the decoder steps over the tokens' vocabulary entries; added tokens decode to their
// text. Bytes are returned as they are (no U+FFFD for an incomplete UTF-8 sequence); ids outside the
// vocabulary decode to nothing.
//
// create() validates the data (non-empty vocabulary, one type per token or none, ids in range, merges
// whose parts and concatenation are tokens, added tokens in range). Errors carry no file name (callers
// prefix it); fromJson prefixes `origin`, dataFromGguf and dataFromTokenizerJson the path.
// Immutable after construction; encode/decode are thread safe.
#pragma once

#include "sinkscope/common/result.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sinkscope {

class GgufFile;

enum class TokenType : int32_t { // numbered as llama.cpp's llama_token_type
    Undefined = 0,
    Normal = 1,
    Unknown = 2,
    Control = 3,
    UserDefined = 4,
    Unused = 5,
    Byte = 6,
};

// How a Split pre-tokenizer keeps the pattern's matches (tokenizers' SplitDelimiterBehavior).
enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

// Where Metaspace puts a "▁" in front of the text: every stretch, the one at the start of the input, none.
enum class PrependScheme { Always, First, Never };

// The split regexes known by name. Each is the exact pattern string its family ships:
//   Gpt2    's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   Llama3  (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*
//           |\s*[\r\n]+|\s+(?!\S)|\s+
//   Qwen2   as Llama3 with \p{N} for \p{N}{1,3}
//   O200k   GPT-4o / gpt-oss: [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+
//           (?i:'s|'t|'re|'ve|'m|'ll|'d)?|... (the full string is in split_regex.cpp)
enum class SplitRegex { Gpt2, Llama3, Qwen2, O200k };

struct NormalizerStep {
    enum class Kind { Nfc, Replace, Prepend };
    Kind kind = Kind::Nfc;
    std::string pattern; // Replace: the literal text replaced
    std::string content; // Replace: its replacement; Prepend: the prefix of a non-empty text
};

struct PreTokenizerStep {
    enum class Kind { Split, ByteLevel, Digits, Metaspace };
    Kind kind = Kind::ByteLevel;
    // Split: a literal string, or one of the known regexes when `regex` is set.
    std::string pattern;
    std::optional<SplitRegex> regex;
    SplitBehavior behavior = SplitBehavior::Isolated;
    bool invert = false;
    bool addPrefixSpace = false;              // ByteLevel: a space in front of a piece that lacks one
    bool useRegex = true;                     // ByteLevel: split with the GPT-2 regex
    bool individualDigits = false;            // Digits: each digit alone rather than runs of digits
    std::string replacement = "\xE2\x96\x81"; // Metaspace: "▁"
    PrependScheme prependScheme = PrependScheme::Always;
    bool split = true; // Metaspace: split before each replacement character
};

struct DecoderStep {
    enum class Kind { ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace };
    Kind kind = Kind::ByteLevel;
    std::string pattern;                                 // Replace
    std::string content;                                 // Replace: replacement; Strip: the character stripped
    int32_t start = 0;                                   // Strip: at most this many `content` characters off the front
    int32_t stop = 0;                                    // Strip: ... and off the back
    std::string replacement = "\xE2\x96\x81";            // Metaspace
    PrependScheme prependScheme = PrependScheme::Always; // Metaspace: not Never drops the first token's space
};

// A token matched whole in the input before normalization (tokenizers' AddedToken).
struct AddedToken {
    int64_t id = 0;
    std::string content;     // the text matched (may differ from the vocabulary entry, e.g. spaces in GPT-NeoX)
    bool special = true;     // matched only with EncodeOptions::parseSpecial
    bool lstrip = false;     // the match takes the whitespace on its left
    bool rstrip = false;     // ... and on its right
    bool normalized = false; // matched in the normalized text instead of the input
};

struct TokenizerData {
    std::string model = "gpt2";      // "gpt2" (byte-level BPE) or "llama" (SentencePiece-style BPE)
    std::string pre = "default";     // GGUF pre-tokenizer name (tokenizer.ggml.pre): "gpt2", "smollm", "llama-bpe", ...
    std::vector<std::string> tokens; // id -> vocabulary entry (byte-mapped for "gpt2", "▁" for space for "llama")
    std::vector<TokenType> types;    // id -> type; empty means all Normal
    std::vector<float> scores;       // id -> score (tokenizer.ggml.scores); empty when the file has none
    std::vector<std::pair<std::string, std::string>> merges; // (left, right) in rank order
    std::optional<int64_t> bosId, eosId, unkId, padId;
    bool addBos = false; // tokenizer.ggml.add_bos_token / the post-processor's template
    bool addEos = false;
    bool addSpacePrefix = true; // "llama" without explicit preTokenizers: "▁" in front of the text (GGUF key)
    bool byteFallback = false;  // <0xNN> tokens for characters missing from the vocabulary
    bool fuseUnk = false;       // consecutive unknown characters give one unkId

    // The text pipeline. nullopt means the GGUF defaults:
    // - normalizers: none;
    // - preTokenizers: "gpt2": the regexes llama.cpp runs for `pre` ("gpt2", "smollm", "llama-bpe",
    //   "qwen2", "gpt-4o", ...; an unknown name falls back to the GPT-2 regex, and warning() says so); "llama":
    //   Metaspace(prepend First when addSpacePrefix, else Never; no split);
    // - decoders: "gpt2": ByteLevel; "llama": Replace("▁", " "), ByteFallback, Fuse, and Strip(" ", 1)
    //   when addSpacePrefix;
    // - ignoreMerges: set for the Llama-3 names of `pre` ("llama3", "llama-bpe", ...);
    // - addedTokens: every Control token (special) and UserDefined token (not special), its
    //   vocabulary entry as content.
    std::optional<std::vector<NormalizerStep>> normalizers;
    std::optional<std::vector<PreTokenizerStep>> preTokenizers;
    std::optional<std::vector<DecoderStep>> decoders;
    std::optional<bool> ignoreMerges;
    std::optional<std::vector<AddedToken>> addedTokens;
};

struct EncodeOptions {
    std::optional<bool> addBos; // nullopt: the tokenizer's own policy
    bool parseSpecial = true;   // match special added tokens written in the text (non-special ones always match)
};

class Tokenizer
{
public:
    static Result<std::shared_ptr<const Tokenizer>> create(TokenizerData data);

    // From a GGUF file's tokenizer.ggml.* keys. "llama" (SentencePiece) files without merges get them
    // rebuilt from the vocabulary as transformers' GGUF loader does: best score first, or, for Gemma
    // (general.architecture gemma/gemma2/gemma3), file order, whose tokens spelled in real spaces are
    // respelled with "▁". Phi-3 gets transformers' Prepend("▁") + Replace(" ", "▁") normalizer.
    static Result<TokenizerData> dataFromGguf(const GgufFile &file);

    // From a Hugging Face tokenizer.json and, when tokenizerConfigPath is non-empty and the file exists,
    // its tokenizer_config.json (add_bos_token / add_eos_token override the post-processor; bos_token,
    // eos_token, pad_token, unk_token name the ids). Supported: model BPE (vocab, merges as "a b" or
    // [a, b], byte_fallback, ignore_merges, unk_token, fuse_unk); normalizers NFC, Replace (string),
    // Prepend, Sequence; pre-tokenizers ByteLevel, Split (string or known regex), Digits, Metaspace,
    // Sequence; decoders ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip, Sequence;
    // post-processors TemplateProcessing (one optional special token before and after $A), ByteLevel,
    // Sequence of those. A ByteLevel pre-tokenizer makes the model "gpt2", else it is "llama".
    // truncation and padding are ignored (transformers sets its own). Anything else is an error naming
    // the file and the component; the data is validated as create() does, errors naming the file.
    static Result<TokenizerData> dataFromTokenizerJson(const std::string &tokenizerJsonPath,
                                                       const std::string &tokenizerConfigPath = {});

    // JSON round trip for model archives (keys mirror TokenizerData). Archives written before the
    // pipeline keys existed load as before (their absence means the GGUF defaults above).
    std::string toJson() const;
    static Result<std::shared_ptr<const Tokenizer>> fromJson(const std::string &json, const std::string &origin);

    std::vector<int64_t> encode(const std::string &text, const EncodeOptions &options = {}) const;
    // The pre-tokenizer's pieces of text (normalized, before the byte mapping; no added-token splitting).
    std::vector<std::string> preTokenize(const std::string &text) const;
    std::string decode(const std::vector<int64_t> &ids) const;
    std::string tokenText(int64_t id) const;         // decoded bytes of one token (may be a partial UTF-8 sequence)
    const std::string &tokenPiece(int64_t id) const; // raw vocabulary entry
    bool isSpecial(int64_t id) const;                // control or user-defined

    int64_t vocabSize() const { return static_cast<int64_t>(m_data.tokens.size()); }
    const TokenizerData &data() const { return m_data; }
    // Non-fatal problem found at construction (unknown pre-tokenizer name), or empty.
    const std::string &warning() const;

private:
    explicit Tokenizer(TokenizerData data);
    struct Impl;
    TokenizerData m_data;
    std::shared_ptr<const Impl> m_impl;
};

} // namespace sinkscope
