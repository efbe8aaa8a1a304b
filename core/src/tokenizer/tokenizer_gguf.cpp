// Tokenizer data from a GGUF file's tokenizer.ggml.* keys (llama.cpp's names; MODELS.md section 5).
#include "sinkscope/format/gguf.h"
#include "sinkscope/tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_private.h"
#include "tokenizer/unicode.h"

#include <algorithm>
#include <array>

namespace sinkscope {

namespace tk = sinkscope::tokenizer;

namespace {

constexpr std::string_view kMetaspace = "\xE2\x96\x81"; // U+2581 "▁"

std::string quoted(const std::string &s)
{
    return "'" + s + "'";
}

// A token made only of whitespace that includes a space (Python's `" " in t and not t.strip()`).
bool isSpaceRun(const std::string &t)
{
    if (t.find(' ') == std::string::npos) {
        return false;
    }
    for (size_t pos = 0; pos < t.size();) {
        const unicode::Utf8Char ch = unicode::decodeUtf8(t, pos);
        if (!ch.valid || unicode::charClass(ch.cp) != unicode::CharClass::Whitespace) {
            return false;
        }
        pos += ch.length;
    }
    return true;
}

size_t utf8Length(const std::string &t)
{
    size_t n = 0;
    for (size_t pos = 0; pos < t.size(); ++n) {
        pos += unicode::decodeUtf8(t, pos).length;
    }
    return n;
}

// transformers' gemma_tokenizer: Gemma files spell the tokens of two or more spaces with real spaces,
// while the tokenizer looks them up as "▁▁"; the merges follow file order, not the scores. The
// respelled tokens are no longer matched whole (transformers does not add them), so they become Normal.
void prepareGemma(TokenizerData &data)
{
    for (size_t i = 0; i < data.tokens.size(); ++i) {
        std::string &t = data.tokens[i];
        if (isSpaceRun(t)) {
            const size_t n = utf8Length(t);
            t.clear();
            for (size_t k = 0; k < n; ++k) {
                t += kMetaspace;
            }
            if (!data.types.empty() && data.types[i] == TokenType::UserDefined) {
                data.types[i] = TokenType::Normal;
            }
        }
    }
    if (data.merges.empty()) {
        std::vector<double> position(data.tokens.size());
        for (size_t i = 0; i < position.size(); ++i) {
            position[i] = -double(i);
        }
        data.merges = tk::generateMerges(data.tokens, position);
    }

    NormalizerStep replace;
    replace.kind = NormalizerStep::Kind::Replace;
    replace.pattern = " ";
    replace.content = std::string(kMetaspace);
    data.normalizers = std::vector<NormalizerStep>{replace};
    data.preTokenizers = std::vector<PreTokenizerStep>{};
    DecoderStep unreplace;
    unreplace.kind = DecoderStep::Kind::Replace;
    unreplace.pattern = std::string(kMetaspace);
    unreplace.content = " ";
    DecoderStep fallback;
    fallback.kind = DecoderStep::Kind::ByteFallback;
    DecoderStep fuse;
    fuse.kind = DecoderStep::Kind::Fuse;
    data.decoders = std::vector<DecoderStep>{unreplace, fallback, fuse};
}

// transformers' phi3_tokenizer: the prefix space comes from a normalizer, on every stretch of text.
void preparePhi3(TokenizerData &data)
{
    NormalizerStep prepend;
    prepend.kind = NormalizerStep::Kind::Prepend;
    prepend.content = std::string(kMetaspace);
    NormalizerStep replace;
    replace.kind = NormalizerStep::Kind::Replace;
    replace.pattern = " ";
    replace.content = std::string(kMetaspace);
    data.normalizers = std::vector<NormalizerStep>{prepend, replace};
    data.preTokenizers = std::vector<PreTokenizerStep>{};
}

} // namespace

Result<TokenizerData> Tokenizer::dataFromGguf(const GgufFile &file)
{
    const std::string &path = file.path();
    const auto corrupt = [&](const std::string &what) { return makeError(ErrorCode::Corrupt, path + ": " + what); };
    TokenizerData data;

    const std::optional<std::string> model = file.getString("tokenizer.ggml.model");
    if (!model) {
        return makeError(ErrorCode::NotAModel,
                         path + ": no tokenizer (tokenizer.ggml.model is missing or not a string)");
    }
    if (*model != "gpt2" && *model != "llama") {
        return makeError(ErrorCode::Unsupported,
                         path + ": tokenizer model " + quoted(*model) +
                             " is not supported; only byte-level BPE ('gpt2') and SentencePiece BPE ('llama') are");
    }
    const bool sentencePiece = *model == "llama";
    data.model = *model;
    if (file.find("tokenizer.ggml.pre")) {
        const std::optional<std::string> pre = file.getString("tokenizer.ggml.pre");
        if (!pre) {
            return corrupt("tokenizer.ggml.pre is not a string");
        }
        data.pre = *pre;
    }

    std::optional<std::vector<std::string>> tokens = file.getStringArray("tokenizer.ggml.tokens");
    if (!tokens) {
        return corrupt("tokenizer.ggml.tokens is missing or not an array of strings");
    }
    data.tokens = std::move(*tokens);

    if (file.find("tokenizer.ggml.token_type")) {
        const std::optional<std::vector<int64_t>> types = file.getIntArray("tokenizer.ggml.token_type");
        if (!types) {
            return corrupt("tokenizer.ggml.token_type is not an array of integers");
        }
        data.types.reserve(types->size());
        for (size_t i = 0; i < types->size(); ++i) {
            if (!tk::isValidTokenType((*types)[i])) {
                return corrupt("tokenizer.ggml.token_type[" + std::to_string(i) + "] = " + std::to_string((*types)[i]) +
                               " is not a token type (0..6)");
            }
            data.types.push_back(static_cast<TokenType>((*types)[i]));
        }
    }

    if (file.find("tokenizer.ggml.scores")) {
        const std::optional<std::vector<double>> scores = file.getFloatArray("tokenizer.ggml.scores");
        if (!scores) {
            return corrupt("tokenizer.ggml.scores is not an array of numbers");
        }
        if (scores->size() != data.tokens.size()) {
            return corrupt("tokenizer.ggml.scores has " + std::to_string(scores->size()) + " entries for " +
                           std::to_string(data.tokens.size()) + " tokens");
        }
        data.scores.assign(scores->begin(), scores->end());
    }

    if (file.find("tokenizer.ggml.merges") || !sentencePiece) {
        std::optional<std::vector<std::string>> merges = file.getStringArray("tokenizer.ggml.merges");
        if (!merges) {
            return corrupt(
                "tokenizer.ggml.merges is missing or not an array of strings (byte-level BPE needs its merges)");
        }
        data.merges.reserve(merges->size());
        for (size_t i = 0; i < merges->size(); ++i) {
            const std::string &m = (*merges)[i];
            // Search from 1 so that a merge whose left part is itself " " still splits correctly.
            const size_t space = m.find(' ', 1);
            if (space == std::string::npos || space + 1 >= m.size()) {
                return corrupt("tokenizer.ggml.merges[" + std::to_string(i) + "] = " + quoted(m) +
                               " is not of the form 'left right'");
            }
            data.merges.emplace_back(m.substr(0, space), m.substr(space + 1));
        }
    } else if (data.scores.empty()) {
        return corrupt("a SentencePiece ('llama') tokenizer needs tokenizer.ggml.scores or tokenizer.ggml.merges");
    }

    const std::pair<const char *, std::optional<int64_t> *> ids[] = {
        {"tokenizer.ggml.bos_token_id", &data.bosId},
        {"tokenizer.ggml.eos_token_id", &data.eosId},
        {"tokenizer.ggml.unknown_token_id", &data.unkId},
        {"tokenizer.ggml.padding_token_id", &data.padId},
    };
    for (const auto &[key, id] : ids) {
        if (file.find(key)) {
            *id = file.getInt(key);
            if (!*id) {
                return corrupt(std::string(key) + " is not an integer");
            }
        }
    }
    // llama.cpp adds BOS to a SentencePiece vocabulary that does not say otherwise.
    data.addBos = sentencePiece;
    data.addSpacePrefix = true;
    const std::pair<const char *, bool *> flags[] = {
        {"tokenizer.ggml.add_bos_token", &data.addBos},
        {"tokenizer.ggml.add_eos_token", &data.addEos},
        {"tokenizer.ggml.add_space_prefix", &data.addSpacePrefix},
    };
    for (const auto &[key, flag] : flags) {
        if (const GgufValue *v = file.find(key)) {
            const std::optional<int64_t> value = v->asInt();
            if (!value) {
                return corrupt(std::string(key) + " is not a boolean");
            }
            *flag = *value != 0;
        }
    }

    if (sentencePiece) {
        data.byteFallback = true;
        data.fuseUnk = true;
        const std::string arch = file.getString("general.architecture").value_or("");
        static const std::array kGemma = {"gemma", "gemma2", "gemma3"};
        if (std::find(kGemma.begin(), kGemma.end(), arch) != kGemma.end()) {
            prepareGemma(data);
        } else if (arch == "phi3") {
            preparePhi3(data);
        }
    }
    return data;
}

} // namespace sinkscope
