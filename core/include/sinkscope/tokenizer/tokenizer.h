// Byte-level BPE tokenizer (GPT-2 family, Llama-3 / SmolLM style vocabularies) built from a model's own
// data: the vocabulary, merges, token types, special tokens and pre-tokenizer name found in a GGUF file
// (tokenizer.ggml.*) or in the tokenizer.json that SinkScope model archives carry.
//
// Contract:
// - encode() applies: special-token splitting (control/user-defined tokens matched verbatim when
//   parseSpecial is set), the pre-tokenizer regex (Unicode letter/number classes), the GPT-2 byte to
//   unicode mapping, then BPE merges by rank. Optional BOS is prepended per the policy / override.
// - Pre-tokenizers (TokenizerData::pre, llama.cpp's names): "gpt2"/"default" (GPT-2 regex),
//   "smollm" (each \p{N} alone, then the GPT-2 regex; also "starcoder", "refact", "command-r", ...),
//   "llama-bpe"/"llama3" (Llama-3 regex, and a pre-token found whole in the vocabulary skips the
//   merges, as Llama-3's ignore_merges). Any other name falls back to the GPT-2 regex and warning()
//   says so.
// - A byte whose symbol is missing from the vocabulary is dropped, as Hugging Face tokenizers (BPE
//   without unk_token) and llama.cpp do; unkId is recorded but never produced. Such text does not round
//   trip through decode().
// - BOS (when added) is prepended even if the text starts with the BOS token; EOS is appended when
//   addEos is set. Both need the id to be present.
// - decode() inverts the byte mapping; special tokens decode to their text; ids outside the vocabulary
//   decode to nothing (tokenText gives "" and tokenPiece an empty string for them).
// - create() validates the data: non-empty vocabulary, one type per token (or none), known model
//   ("gpt2"), ids in range, merges of the form "left right" whose parts and concatenation are tokens.
//   Errors carry no file name (callers prefix it); fromJson prefixes `origin`, dataFromGguf the path.
// - Immutable after construction; encode/decode are thread safe.
#pragma once

#include "sinkscope/common/result.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
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

struct TokenizerData {
    std::string model = "gpt2";      // tokenizer.ggml.model; only byte-level BPE ("gpt2") is supported
    std::string pre = "default";     // pre-tokenizer name (tokenizer.ggml.pre): "gpt2", "smollm", "llama-bpe", ...
    std::vector<std::string> tokens; // id -> token text (byte-mapped)
    std::vector<TokenType> types;    // id -> type; empty means all Normal
    std::vector<std::string> merges; // "a b" in rank order
    std::optional<int64_t> bosId, eosId, unkId, padId;
    bool addBos = false; // tokenizer.ggml.add_bos_token
    bool addEos = false;
};

struct EncodeOptions {
    std::optional<bool> addBos; // nullopt: the tokenizer's own policy
    bool parseSpecial = true;   // match special tokens written in the text
};

class Tokenizer
{
public:
    static Result<std::shared_ptr<const Tokenizer>> create(TokenizerData data);
    static Result<TokenizerData> dataFromGguf(const GgufFile &file);

    // JSON round trip for model archives (keys mirror TokenizerData).
    std::string toJson() const;
    static Result<std::shared_ptr<const Tokenizer>> fromJson(const std::string &json, const std::string &origin);

    std::vector<int64_t> encode(const std::string &text, const EncodeOptions &options = {}) const;
    // The pre-tokenizer's pieces of text (raw bytes, before byte mapping; no special-token splitting).
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
