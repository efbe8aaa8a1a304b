// BPE as Hugging Face `tokenizers` runs it (the pipeline the vocabularies were trained with), which
// llama.cpp follows too. Reference points:
// - added tokens: tokenizers' AddedVocabulary (leftmost-longest match before normalization, lstrip and
//   rstrip take the neighbouring whitespace);
// - normalizers, pre-tokenizers and decoders: tokenizers' NFC/Replace/Prepend, Split/ByteLevel/Digits/
//   Metaspace, and the decoders' decode_chain;
// - merges: tokenizers' Word::merge_all (lowest rank first, ties to the leftmost pair); unknown
//   characters: BPE::merge_word (byte fallback, then unk_token, fused when fuse_unk).
#include "sinkscope/tokenizer/tokenizer.h"

#include "tokenizer/split_regex.h"
#include "tokenizer/tokenizer_private.h"
#include "tokenizer/unicode.h"

#include <algorithm>
#include <array>
#include <limits>
#include <queue>
#include <string_view>
#include <utility>

namespace sinkscope {

using unicode::CharClass;
namespace tk = sinkscope::tokenizer;

namespace {

constexpr std::string_view kMetaspace = "\xE2\x96\x81"; // U+2581 "▁"

struct PreTokenizerChoice {
    std::vector<PreTokenizerStep> steps;
    bool ignoreMerges = false;
    bool known = true;
};

PreTokenizerStep byteLevelStep(bool useRegex)
{
    PreTokenizerStep s;
    s.kind = PreTokenizerStep::Kind::ByteLevel;
    s.useRegex = useRegex;
    return s;
}

PreTokenizerStep regexSplitStep(SplitRegex regex)
{
    PreTokenizerStep s;
    s.kind = PreTokenizerStep::Kind::Split;
    s.regex = regex;
    s.pattern = std::string(tk::splitRegexName(regex));
    return s;
}

// Names as llama.cpp's tokenizer.ggml.pre (llama-vocab.cpp), grouped by the regexes it runs for them,
// written as the tokenizer.json pipelines they stand for.
PreTokenizerChoice choosePreTokenizer(const std::string &name)
{
    static const std::array kGpt2 = {"", "default", "gpt2", "gpt-2", "mpt", "olmo", "jais"};
    static const std::array kDigitsGpt2 = {"smollm",    "starcoder", "refact",    "command-r",
                                           "codeshell", "exaone",    "minerva-7b"};
    // Llama-3's tokenizer.json sets ignore_merges; llama.cpp does so for its LLAMA3 group only.
    static const std::array kLlama3 = {"llama3",    "llama-v3", "llama-bpe", "falcon3",
                                       "falcon-h1", "pixtral",  "midm-2.0",  "lfm2"};
    static const std::array kLlama3Regex = {"dbrx", "smaug-bpe"};
    static const std::array kQwen2 = {"qwen2", "deepseek-r1-qwen", "megrez"};
    static const std::array kO200k = {"gpt-4o", "llama4"};
    const auto in = [&](const auto &names) { return std::find(names.begin(), names.end(), name) != names.end(); };
    if (in(kDigitsGpt2)) {
        PreTokenizerStep digits;
        digits.kind = PreTokenizerStep::Kind::Digits;
        digits.individualDigits = true;
        return {{digits, byteLevelStep(true)}, false, true};
    }
    const bool llama3 = in(kLlama3);
    if (llama3 || in(kLlama3Regex)) {
        return {{regexSplitStep(SplitRegex::Llama3), byteLevelStep(false)}, llama3, true};
    }
    if (in(kQwen2)) {
        return {{regexSplitStep(SplitRegex::Qwen2), byteLevelStep(false)}, false, true};
    }
    if (in(kO200k)) {
        return {{regexSplitStep(SplitRegex::O200k), byteLevelStep(false)}, false, true};
    }
    return {{byteLevelStep(true)}, false, in(kGpt2)};
}

// GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves, the other 68 bytes are moved
// to U+0100.. in byte order, so every byte has a visible, non-space symbol.
std::array<char32_t, 256> makeByteToUnicode()
{
    std::array<char32_t, 256> table{};
    char32_t next = 256;
    for (int b = 0; b < 256; ++b) {
        const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        table[size_t(b)] = printable ? char32_t(b) : next++;
    }
    return table;
}

const std::array<char32_t, 256> &byteToUnicode()
{
    static const std::array<char32_t, 256> table = makeByteToUnicode();
    return table;
}

// Inverse mapping; the symbols all lie below U+0144.
constexpr char32_t kByteSymbolLimit = 0x200;

const std::array<int16_t, kByteSymbolLimit> &unicodeToByte()
{
    static const std::array<int16_t, kByteSymbolLimit> table = [] {
        std::array<int16_t, kByteSymbolLimit> t{};
        t.fill(-1);
        const auto &forward = byteToUnicode();
        for (size_t b = 0; b < forward.size(); ++b) {
            t[forward[b]] = static_cast<int16_t>(b);
        }
        return t;
    }();
    return table;
}

std::string byteMapped(std::string_view bytes)
{
    std::string out;
    out.reserve(bytes.size() * 2);
    for (const char c : bytes) {
        unicode::appendUtf8(out, byteToUnicode()[static_cast<unsigned char>(c)]);
    }
    return out;
}

// Bytes a vocabulary entry stands for: byte symbols back to bytes, any other character kept as UTF-8.
std::string byteUnmapped(std::string_view piece)
{
    std::string out;
    out.reserve(piece.size());
    for (size_t pos = 0; pos < piece.size();) {
        const unicode::Utf8Char ch = unicode::decodeUtf8(piece, pos);
        const int byte = ch.valid && ch.cp < kByteSymbolLimit ? unicodeToByte()[ch.cp] : -1;
        if (byte >= 0) {
            out += static_cast<char>(byte);
        } else {
            out.append(piece.substr(pos, ch.length));
        }
        pos += ch.length;
    }
    return out;
}

std::string replaceAll(std::string_view text, std::string_view pattern, std::string_view content)
{
    std::string out;
    if (pattern.empty()) {
        return std::string(text);
    }
    size_t pos = 0;
    for (size_t hit = text.find(pattern); hit != std::string_view::npos; hit = text.find(pattern, pos)) {
        out.append(text.substr(pos, hit - pos));
        out.append(content);
        pos = hit + pattern.size();
    }
    out.append(text.substr(pos));
    return out;
}

// "<0xNN>" (as tokenizers writes byte-fallback tokens) -> the byte, else -1.
int byteFallbackValue(std::string_view piece)
{
    if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') {
        return -1;
    }
    int value = 0;
    for (const char c : piece.substr(3, 2)) {
        const int digit = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
        if (digit < 0) {
            return -1;
        }
        value = value * 16 + digit;
    }
    return value;
}

bool isWhitespaceAt(std::string_view text, size_t pos, size_t &length)
{
    const unicode::Utf8Char ch = unicode::decodeUtf8(text, pos);
    length = ch.length;
    return ch.valid && unicode::charClass(ch.cp) == CharClass::Whitespace;
}

struct MergeRule {
    int32_t rank;
    int32_t result;
};

uint64_t pairKey(int32_t left, int32_t right)
{
    return (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
}

std::string quoted(const std::string &s)
{
    return "'" + s + "'";
}

// Text flowing through the pre-tokenizers; `atStart` when it begins at the start of the input
// (Metaspace's prepend_scheme "first").
struct Piece {
    std::string text;
    bool atStart;
};

// One matcher per kind of added token (matched in the input, or in the normalized text).
class AddedMatcher
{
public:
    struct Entry {
        std::string content;
        int32_t id;
        bool special;
        bool lstrip;
        bool rstrip;
    };
    struct Segment {
        size_t first;
        size_t last;
        int32_t id; // -1: text
    };

    void add(Entry e)
    {
        const auto b = static_cast<unsigned char>(e.content[0]);
        m_buckets[b].push_back(std::move(e));
        m_empty = false;
    }
    void finish()
    {
        for (auto &bucket : m_buckets) {
            std::stable_sort(bucket.begin(), bucket.end(),
                             [](const Entry &a, const Entry &b) { return a.content.size() > b.content.size(); });
        }
    }
    bool empty() const { return m_empty; }

    // Leftmost-longest matches; the text between them as id -1 segments (empty ones left out).
    std::vector<Segment> split(std::string_view text, bool parseSpecial) const
    {
        std::vector<Segment> out;
        size_t textStart = 0;
        for (size_t i = 0; i < text.size();) {
            const Entry *found = nullptr;
            for (const Entry &e : m_buckets[static_cast<unsigned char>(text[i])]) {
                if ((parseSpecial || !e.special) && text.compare(i, e.content.size(), e.content) == 0) {
                    found = &e;
                    break;
                }
            }
            if (!found) {
                ++i;
                continue;
            }
            size_t first = i;
            size_t last = i + found->content.size();
            if (found->lstrip) {
                // The last non-whitespace character before the match ends the text in front of it.
                size_t keep = textStart;
                for (size_t p = textStart, len = 1; p < first; p += len) {
                    if (!isWhitespaceAt(text, p, len)) {
                        keep = p + len;
                    }
                }
                first = keep;
            }
            if (found->rstrip) {
                for (size_t len = 1; last < text.size() && isWhitespaceAt(text, last, len);) {
                    last += len;
                }
            }
            if (first > textStart) {
                out.push_back({textStart, first, -1});
            }
            out.push_back({first, last, found->id});
            i = last;
            textStart = last;
        }
        if (textStart < text.size()) {
            out.push_back({textStart, text.size(), -1});
        }
        return out;
    }

private:
    std::array<std::vector<Entry>, 256> m_buckets;
    bool m_empty = true;
};

} // namespace

// ---- merges rebuilt from the vocabulary -----------------------------------------------------------

namespace tokenizer {

std::vector<std::pair<std::string, std::string>> generateMerges(const std::vector<std::string> &tokens,
                                                                const std::vector<double> &priority)
{
    // transformers' generate_merges: every split of a token into two tokens is a merge; sorted by the
    // token's priority (highest first), then the longer left part, then the longer right part; ties
    // keep vocabulary order, and the splits of one token are ordered by the ids of their parts.
    std::unordered_map<std::string_view, int32_t> ids;
    ids.reserve(tokens.size());
    for (size_t i = 0; i < tokens.size(); ++i) {
        ids[tokens[i]] = static_cast<int32_t>(i); // a repeated entry maps to its last id, as a dict would
    }
    struct Candidate {
        double priority;
        uint32_t leftChars;
        uint32_t rightChars;
        int32_t leftId;
        int32_t rightId;
        uint32_t splitAt; // byte offset in the token
        int32_t token;
    };
    std::vector<Candidate> all;
    std::vector<Candidate> local;
    std::unordered_map<std::string_view, bool> seen;
    for (size_t i = 0; i < tokens.size(); ++i) {
        const std::string_view t = tokens[i];
        if (!seen.emplace(t, true).second) {
            continue;
        }
        local.clear();
        std::vector<size_t> bounds;
        for (size_t pos = 0; pos < t.size();) {
            pos += unicode::decodeUtf8(t, pos).length;
            bounds.push_back(pos);
        }
        const auto chars = static_cast<uint32_t>(bounds.size());
        for (uint32_t k = 0; k + 1 < chars; ++k) {
            const size_t at = bounds[k];
            const auto l = ids.find(t.substr(0, at));
            if (l == ids.end()) {
                continue;
            }
            const auto r = ids.find(t.substr(at));
            if (r == ids.end()) {
                continue;
            }
            local.push_back({priority[i], k + 1, chars - k - 1, l->second, r->second, static_cast<uint32_t>(at),
                             static_cast<int32_t>(i)});
        }
        std::sort(local.begin(), local.end(), [](const Candidate &a, const Candidate &b) {
            return std::pair{a.leftId, a.rightId} < std::pair{b.leftId, b.rightId};
        });
        all.insert(all.end(), local.begin(), local.end());
    }
    std::stable_sort(all.begin(), all.end(), [](const Candidate &a, const Candidate &b) {
        if (a.priority != b.priority) {
            return a.priority > b.priority;
        }
        if (a.leftChars != b.leftChars) {
            return a.leftChars > b.leftChars;
        }
        return a.rightChars > b.rightChars;
    });
    std::vector<std::pair<std::string, std::string>> merges;
    merges.reserve(all.size());
    for (const Candidate &c : all) {
        const std::string &t = tokens[size_t(c.token)];
        merges.emplace_back(t.substr(0, c.splitAt), t.substr(c.splitAt));
    }
    return merges;
}

} // namespace tokenizer

// ---- Impl ------------------------------------------------------------------------------------------

struct Tokenizer::Impl {
    bool byteLevel = true;
    std::vector<NormalizerStep> normalizers;
    std::vector<PreTokenizerStep> preTokenizers;
    bool ignoreMerges = false;
    std::string warning;
    std::unordered_map<std::string, int32_t, tk::StringHash, std::equal_to<>> vocab; // piece -> lowest id
    std::array<int32_t, 256> byteIds{};     // byte-level: id of each byte's symbol, -1 if absent
    std::array<int32_t, 256> fallbackIds{}; // id of <0xNN>, -1 if absent or no byte fallback
    bool byteFallback = false;
    int32_t unkId = -1; // produced for unknown characters ("llama" only)
    bool fuseUnk = false;
    std::unordered_map<uint64_t, MergeRule> merges; // (left, right) -> rank and merged id
    AddedMatcher rawAdded;                          // matched in the input
    AddedMatcher normalizedAdded;                   // matched in the normalized text
    std::vector<std::string> decoded;               // id -> text after the per-token decoder steps
    std::vector<uint8_t> special;                   // id -> control or user-defined
    // Decoder steps that act on the whole sequence. Metaspace's decoder drops every replacement
    // character of the first token (not only a leading one), so those tokens get a second text.
    std::unordered_map<int32_t, std::string> decodedFirst;
    std::string stripContent; // Strip decoder after a fusing step
    int32_t stripStart = 0;
    int32_t stripStop = 0;

    static Result<std::shared_ptr<const Impl>> build(const TokenizerData &data);
    // Returns an error message, or "".
    std::string buildDecoder(const TokenizerData &data, const std::vector<DecoderStep> &steps,
                             const std::vector<uint8_t> &added);
    void encodeWord(std::string_view piece, std::vector<int64_t> &out) const;
    std::vector<Piece> preTokenize(std::string text, bool atStart) const;
    void encodeText(std::string_view text, bool atStart, std::vector<int64_t> &out) const;
    std::string normalize(std::string_view text) const;
};

namespace {

std::vector<DecoderStep> defaultDecoders(const TokenizerData &data)
{
    if (data.model != "llama") {
        return {DecoderStep{}}; // ByteLevel
    }
    DecoderStep replace;
    replace.kind = DecoderStep::Kind::Replace;
    replace.pattern = std::string(kMetaspace);
    replace.content = " ";
    DecoderStep fallback;
    fallback.kind = DecoderStep::Kind::ByteFallback;
    DecoderStep fuse;
    fuse.kind = DecoderStep::Kind::Fuse;
    std::vector<DecoderStep> steps = {replace, fallback, fuse};
    if (data.addSpacePrefix) {
        DecoderStep strip;
        strip.kind = DecoderStep::Kind::Strip;
        strip.content = " ";
        strip.start = 1;
        steps.push_back(strip);
    }
    return steps;
}

std::vector<PreTokenizerStep> defaultLlamaPreTokenizers(const TokenizerData &data)
{
    PreTokenizerStep metaspace;
    metaspace.kind = PreTokenizerStep::Kind::Metaspace;
    metaspace.prependScheme = data.addSpacePrefix ? PrependScheme::First : PrependScheme::Never;
    metaspace.split = false;
    return {metaspace};
}

// Up to `count` copies of the character `content` off one end of `s`.
void stripChars(std::string &s, const std::string &content, int32_t count, bool front)
{
    if (content.empty()) {
        return;
    }
    for (int32_t i = 0; i < count; ++i) {
        if (front && s.compare(0, content.size(), content) == 0) {
            s.erase(0, content.size());
        } else if (!front && s.size() >= content.size() &&
                   s.compare(s.size() - content.size(), content.size(), content) == 0) {
            s.erase(s.size() - content.size());
        } else {
            return;
        }
    }
}

} // namespace

namespace {

// One per-token decoder step on a token's text; `first` when it is the first token of the sequence.
void applyDecoderStep(const DecoderStep &s, std::string &t, bool first)
{
    switch (s.kind) {
    case DecoderStep::Kind::ByteLevel:
        t = byteUnmapped(t);
        break;
    case DecoderStep::Kind::Replace:
        t = replaceAll(t, s.pattern, s.content);
        break;
    case DecoderStep::Kind::ByteFallback:
        if (const int b = byteFallbackValue(t); b >= 0) {
            t = std::string(1, static_cast<char>(b));
        }
        break;
    case DecoderStep::Kind::Fuse:
        break;
    case DecoderStep::Kind::Strip:
        stripChars(t, s.content, s.start, true);
        stripChars(t, s.content, s.stop, false);
        break;
    case DecoderStep::Kind::Metaspace:
        t = replaceAll(t, s.replacement, first && s.prependScheme != PrependScheme::Never ? "" : " ");
        break;
    }
}

} // namespace

std::string Tokenizer::Impl::buildDecoder(const TokenizerData &data, const std::vector<DecoderStep> &steps,
                                          const std::vector<uint8_t> &added)
{
    // Every step but a Strip after a fusing one (Fuse, or ByteLevel, which joins too) acts on each token
    // alone, so it is applied once here; that Strip acts on the whole text in decode(), which also picks
    // the first token's text where Metaspace treats it differently.
    bool fused = false;
    std::vector<const DecoderStep *> perToken;
    for (const DecoderStep &s : steps) {
        switch (s.kind) {
        case DecoderStep::Kind::ByteLevel:
        case DecoderStep::Kind::Fuse:
            perToken.push_back(&s);
            fused = true;
            break;
        case DecoderStep::Kind::Strip:
            if (fused) {
                if (!stripContent.empty()) {
                    return "decoder: two Strip steps after a Fuse";
                }
                stripContent = s.content;
                stripStart = s.start;
                stripStop = s.stop;
            } else {
                perToken.push_back(&s);
            }
            break;
        default:
            perToken.push_back(&s);
            break;
        }
    }
    for (size_t i = 0; i < data.tokens.size(); ++i) {
        if (added[i]) {
            continue; // set by the caller: added tokens decode to their content
        }
        std::string t = data.tokens[i];
        std::optional<std::string> first; // the text as the first token, when that differs
        for (const DecoderStep *s : perToken) {
            if (first) {
                applyDecoderStep(*s, *first, true);
            }
            if (s->kind == DecoderStep::Kind::Metaspace && s->prependScheme != PrependScheme::Never &&
                t.find(s->replacement) != std::string::npos && !first) {
                first = t;
                applyDecoderStep(*s, *first, true);
            }
            applyDecoderStep(*s, t, false);
        }
        if (first) {
            decodedFirst.emplace(static_cast<int32_t>(i), std::move(*first));
        }
        decoded[i] = std::move(t);
    }
    return "";
}

Result<std::shared_ptr<const Tokenizer::Impl>> Tokenizer::Impl::build(const TokenizerData &data)
{
    const size_t n = data.tokens.size();
    if (data.model != "gpt2" && data.model != "llama") {
        return makeError(
            ErrorCode::Unsupported,
            "tokenizer model " + quoted(data.model) +
                " is not supported; only byte-level BPE ('gpt2') and SentencePiece-style BPE ('llama') are");
    }
    if (n == 0) {
        return makeError(ErrorCode::Corrupt, "empty vocabulary");
    }
    if (n > size_t(std::numeric_limits<int32_t>::max())) {
        return makeError(ErrorCode::Unsupported, "vocabulary of " + std::to_string(n) + " tokens is too large");
    }
    if (!data.types.empty() && data.types.size() != n) {
        return makeError(ErrorCode::Corrupt,
                         std::to_string(data.types.size()) + " token types for " + std::to_string(n) + " tokens");
    }
    if (!data.scores.empty() && data.scores.size() != n) {
        return makeError(ErrorCode::Corrupt,
                         std::to_string(data.scores.size()) + " token scores for " + std::to_string(n) + " tokens");
    }
    for (size_t i = 0; i < data.types.size(); ++i) {
        if (!tk::isValidTokenType(static_cast<int64_t>(data.types[i]))) {
            return makeError(ErrorCode::Corrupt, "token " + std::to_string(i) + " has unknown type " +
                                                     std::to_string(static_cast<int32_t>(data.types[i])));
        }
    }
    const std::pair<const char *, const std::optional<int64_t> *> ids[] = {
        {"bos", &data.bosId}, {"eos", &data.eosId}, {"unknown", &data.unkId}, {"padding", &data.padId}};
    for (const auto &[name, id] : ids) {
        if (*id && (**id < 0 || **id >= int64_t(n))) {
            return makeError(ErrorCode::Corrupt, std::string(name) + " token id " + std::to_string(**id) +
                                                     " is out of range (vocabulary has " + std::to_string(n) +
                                                     " tokens)");
        }
    }

    auto impl = std::make_shared<Impl>();
    impl->byteLevel = data.model == "gpt2";
    if (data.normalizers) {
        impl->normalizers = *data.normalizers;
    }
    const PreTokenizerChoice choice = choosePreTokenizer(data.pre);
    if (data.preTokenizers) {
        impl->preTokenizers = *data.preTokenizers;
    } else if (impl->byteLevel) {
        impl->preTokenizers = choice.steps;
        if (!choice.known) {
            impl->warning = "unknown pre-tokenizer " + quoted(data.pre) +
                            "; using the GPT-2 regex, so some texts "
                            "may be split differently from the model's own tokenizer";
        }
    } else {
        impl->preTokenizers = defaultLlamaPreTokenizers(data);
    }
    for (PreTokenizerStep &s : impl->preTokenizers) {
        if (s.kind == PreTokenizerStep::Kind::Split && !s.regex && s.pattern.empty()) {
            return makeError(ErrorCode::Corrupt, "Split pre-tokenizer with an empty pattern");
        }
        if (s.kind == PreTokenizerStep::Kind::Metaspace && s.replacement.empty()) {
            return makeError(ErrorCode::Corrupt, "Metaspace pre-tokenizer with an empty replacement");
        }
    }
    impl->ignoreMerges = data.ignoreMerges.value_or(impl->byteLevel && !data.preTokenizers && choice.ignoreMerges);
    impl->byteFallback = data.byteFallback;
    impl->fuseUnk = data.fuseUnk;
    if (!impl->byteLevel && data.unkId) {
        impl->unkId = static_cast<int32_t>(*data.unkId);
    }

    impl->vocab.reserve(n);
    impl->decoded.resize(n);
    impl->special.resize(n);
    for (size_t i = 0; i < n; ++i) {
        impl->vocab.emplace(data.tokens[i], static_cast<int32_t>(i));
        const TokenType type = data.types.empty() ? TokenType::Normal : data.types[i];
        impl->special[i] = type == TokenType::Control || type == TokenType::UserDefined;
    }

    // Added tokens: given, or every control / user-defined token.
    std::vector<AddedToken> addedTokens;
    if (data.addedTokens) {
        addedTokens = *data.addedTokens;
    } else {
        for (size_t i = 0; i < n; ++i) {
            if (impl->special[i] && !data.tokens[i].empty()) {
                const bool control = data.types[i] == TokenType::Control;
                addedTokens.push_back({int64_t(i), data.tokens[i], control, false, false, false});
            }
        }
    }
    std::vector<uint8_t> isAdded(n, 0);
    for (const AddedToken &a : addedTokens) {
        if (a.id < 0 || a.id >= int64_t(n)) {
            return makeError(ErrorCode::Corrupt, "added token " + quoted(a.content) + " has id " +
                                                     std::to_string(a.id) + ", outside the vocabulary of " +
                                                     std::to_string(n) + " tokens");
        }
        if (a.content.empty()) {
            return makeError(ErrorCode::Corrupt, "added token " + std::to_string(a.id) + " has no content");
        }
        AddedMatcher &m = a.normalized && !impl->normalizers.empty() ? impl->normalizedAdded : impl->rawAdded;
        m.add({a.content, static_cast<int32_t>(a.id), a.special, a.lstrip, a.rstrip});
        isAdded[size_t(a.id)] = 1;
        impl->decoded[size_t(a.id)] = a.content;
    }
    impl->rawAdded.finish();
    impl->normalizedAdded.finish();

    for (size_t b = 0; b < 256; ++b) {
        std::string symbol;
        unicode::appendUtf8(symbol, byteToUnicode()[b]);
        const auto it = impl->vocab.find(symbol);
        impl->byteIds[b] = it == impl->vocab.end() ? -1 : it->second;
        static const char *hex = "0123456789ABCDEF";
        const std::string fallback = std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">";
        const auto f = impl->vocab.find(fallback);
        impl->fallbackIds[b] = f == impl->vocab.end() || !data.byteFallback ? -1 : f->second;
    }

    if (const std::string e = impl->buildDecoder(data, data.decoders ? *data.decoders : defaultDecoders(data), isAdded);
        !e.empty()) {
        return makeError(ErrorCode::Unsupported, e);
    }

    std::vector<std::pair<std::string, std::string>> derived;
    if (data.merges.empty() && !data.scores.empty() && data.model == "llama") {
        derived = tk::generateMerges(data.tokens, std::vector<double>(data.scores.begin(), data.scores.end()));
    }
    const auto &merges = data.merges.empty() ? derived : data.merges;
    impl->merges.reserve(merges.size());
    for (size_t rank = 0; rank < merges.size(); ++rank) {
        const auto &[left, right] = merges[rank];
        const auto where = [&, &l = left, &r = right] {
            return "merge " + std::to_string(rank) + " " + quoted(l + " " + r);
        };
        const auto l = impl->vocab.find(left);
        const auto r = impl->vocab.find(right);
        for (const auto &[part, it] : {std::pair{&left, l}, std::pair{&right, r}}) {
            if (it == impl->vocab.end()) {
                return makeError(ErrorCode::Corrupt,
                                 where() + " names token " + quoted(*part) + ", which is not in the vocabulary");
            }
        }
        const auto merged = impl->vocab.find(left + right);
        if (merged == impl->vocab.end()) {
            return makeError(ErrorCode::Corrupt,
                             where() + " makes " + quoted(left + right) + ", which is not in the vocabulary");
        }
        // A repeated pair keeps its first (best) rank, as llama.cpp and tokenizers do.
        impl->merges.emplace(pairKey(l->second, r->second), MergeRule{static_cast<int32_t>(rank), merged->second});
    }
    return std::shared_ptr<const Impl>(std::move(impl));
}

void Tokenizer::Impl::encodeWord(std::string_view piece, std::vector<int64_t> &out) const
{
    if (piece.empty()) {
        return;
    }
    if (ignoreMerges) {
        const auto it = byteLevel ? vocab.find(byteMapped(piece)) : vocab.find(piece);
        if (it != vocab.end()) {
            out.push_back(it->second);
            return;
        }
    }

    struct Symbol {
        int32_t id;
        int32_t prev;
        int32_t next;
    };
    struct Candidate {
        int32_t rank;
        int32_t pos;
        int32_t left;
        int32_t right;
        int32_t result;
        bool operator>(const Candidate &o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
    };

    std::vector<Symbol> symbols;
    symbols.reserve(piece.size());
    const auto push = [&](int32_t id) {
        const auto index = static_cast<int32_t>(symbols.size());
        symbols.push_back({id, index - 1, index + 1});
    };
    if (byteLevel) {
        // Bytes without a symbol in the vocabulary are left out before merging (tokenizers' BPE without
        // unk_token), so their neighbours become adjacent.
        for (const char c : piece) {
            if (const int32_t id = byteIds[static_cast<unsigned char>(c)]; id >= 0) {
                push(id);
            }
        }
    } else {
        bool lastWasUnk = false;
        for (size_t pos = 0; pos < piece.size();) {
            const size_t len = unicode::decodeUtf8(piece, pos).length;
            const std::string_view ch = piece.substr(pos, len);
            pos += len;
            if (const auto it = vocab.find(ch); it != vocab.end()) {
                push(it->second);
                lastWasUnk = false;
                continue;
            }
            if (byteFallback && std::all_of(ch.begin(), ch.end(),
                                            [&](char c) { return fallbackIds[static_cast<unsigned char>(c)] >= 0; })) {
                for (const char c : ch) {
                    push(fallbackIds[static_cast<unsigned char>(c)]);
                }
                lastWasUnk = false;
                continue;
            }
            if (unkId >= 0 && !(fuseUnk && lastWasUnk)) {
                push(unkId);
                lastWasUnk = true;
            }
        }
    }
    if (symbols.empty()) {
        return;
    }
    symbols.back().next = -1;

    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
    const auto consider = [&](int32_t pos) {
        if (pos < 0 || symbols[size_t(pos)].next < 0) {
            return;
        }
        const int32_t left = symbols[size_t(pos)].id;
        const int32_t right = symbols[size_t(symbols[size_t(pos)].next)].id;
        if (const auto it = merges.find(pairKey(left, right)); it != merges.end()) {
            queue.push({it->second.rank, pos, left, right, it->second.result});
        }
    };
    for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) {
        consider(i);
    }
    while (!queue.empty()) {
        const Candidate top = queue.top();
        queue.pop();
        Symbol &s = symbols[size_t(top.pos)];
        // Entries go stale when either symbol has since been merged; the ids tell.
        if (s.id != top.left || s.next < 0 || symbols[size_t(s.next)].id != top.right) {
            continue;
        }
        Symbol &gone = symbols[size_t(s.next)];
        s.id = top.result;
        s.next = gone.next;
        gone.id = -1;
        if (s.next >= 0) {
            symbols[size_t(s.next)].prev = top.pos;
        }
        consider(s.prev);
        consider(top.pos);
    }
    for (int32_t i = 0; i >= 0; i = symbols[size_t(i)].next) {
        out.push_back(symbols[size_t(i)].id);
    }
}

std::string Tokenizer::Impl::normalize(std::string_view text) const
{
    std::string s(text);
    for (const NormalizerStep &step : normalizers) {
        switch (step.kind) {
        case NormalizerStep::Kind::Nfc:
            s = unicode::nfc(s);
            break;
        case NormalizerStep::Kind::Replace:
            s = replaceAll(s, step.pattern, step.content);
            break;
        case NormalizerStep::Kind::Prepend:
            if (!s.empty()) {
                s.insert(0, step.content);
            }
            break;
        }
    }
    return s;
}

std::vector<Piece> Tokenizer::Impl::preTokenize(std::string text, bool atStart) const
{
    std::vector<Piece> pieces;
    pieces.push_back({std::move(text), atStart});
    std::vector<Piece> next;
    const auto splitInto = [&next](const Piece &p, const std::vector<tk::Range> &ranges) {
        for (const auto &[first, last] : ranges) {
            if (last > first) {
                next.push_back({p.text.substr(first, last - first), p.atStart && first == 0});
            }
        }
    };
    for (const PreTokenizerStep &step : preTokenizers) {
        next.clear();
        for (Piece &p : pieces) {
            switch (step.kind) {
            case PreTokenizerStep::Kind::Split: {
                const auto matches =
                    step.regex ? tk::regexMatches(p.text, *step.regex) : tk::literalMatches(p.text, step.pattern);
                splitInto(p, tk::splitByMatches(p.text.size(), matches, step.behavior, step.invert));
                break;
            }
            case PreTokenizerStep::Kind::ByteLevel:
                if (step.addPrefixSpace && p.text.compare(0, 1, " ") != 0) {
                    p.text.insert(0, " ");
                }
                if (step.useRegex) {
                    splitInto(p, tk::regexMatches(p.text, SplitRegex::Gpt2));
                } else {
                    next.push_back(std::move(p));
                }
                break;
            case PreTokenizerStep::Kind::Digits:
                splitInto(p, tk::splitByMatches(p.text.size(), tk::digitMatches(p.text, step.individualDigits),
                                                SplitBehavior::Isolated, false));
                break;
            case PreTokenizerStep::Kind::Metaspace: {
                p.text = replaceAll(p.text, " ", step.replacement);
                const bool prepend = step.prependScheme == PrependScheme::Always ||
                                     (step.prependScheme == PrependScheme::First && p.atStart);
                if (prepend && p.text.compare(0, step.replacement.size(), step.replacement) != 0) {
                    p.text.insert(0, step.replacement);
                }
                if (step.split) {
                    splitInto(p, tk::splitByMatches(p.text.size(), tk::literalMatches(p.text, step.replacement),
                                                    SplitBehavior::MergedWithNext, false));
                } else {
                    next.push_back(std::move(p));
                }
                break;
            }
            }
        }
        std::swap(pieces, next);
    }
    return pieces;
}

void Tokenizer::Impl::encodeText(std::string_view text, bool atStart, std::vector<int64_t> &out) const
{
    if (text.empty()) {
        return;
    }
    const std::string normalized = normalize(text);
    const auto run = [&](std::string_view part, bool start) {
        for (const Piece &p : preTokenize(std::string(part), start)) {
            encodeWord(p.text, out);
        }
    };
    if (normalizedAdded.empty()) {
        run(normalized, atStart);
        return;
    }
    for (const auto &seg : normalizedAdded.split(normalized, true)) {
        if (seg.id >= 0) {
            out.push_back(seg.id);
        } else {
            run(std::string_view(normalized).substr(seg.first, seg.last - seg.first), atStart && seg.first == 0);
        }
    }
}

// ---- Tokenizer -------------------------------------------------------------------------------------

Tokenizer::Tokenizer(TokenizerData data) : m_data(std::move(data)) {}

Result<std::shared_ptr<const Tokenizer>> Tokenizer::create(TokenizerData data)
{
    auto impl = Impl::build(data);
    if (!impl) {
        return impl.error();
    }
    std::shared_ptr<Tokenizer> tokenizer(new Tokenizer(std::move(data)));
    tokenizer->m_impl = std::move(impl).value();
    return std::shared_ptr<const Tokenizer>(std::move(tokenizer));
}

const std::string &Tokenizer::warning() const
{
    return m_impl->warning;
}

std::vector<int64_t> Tokenizer::encode(const std::string &text, const EncodeOptions &options) const
{
    std::vector<int64_t> out;
    out.reserve(text.size() / 3 + 2);
    if (options.addBos.value_or(m_data.addBos) && m_data.bosId) {
        out.push_back(*m_data.bosId);
    }
    if (m_impl->rawAdded.empty()) {
        m_impl->encodeText(text, true, out);
    } else {
        for (const auto &seg : m_impl->rawAdded.split(text, options.parseSpecial)) {
            if (seg.id >= 0) {
                out.push_back(seg.id);
            } else {
                m_impl->encodeText(std::string_view(text).substr(seg.first, seg.last - seg.first), seg.first == 0, out);
            }
        }
    }
    if (m_data.addEos && m_data.eosId) {
        out.push_back(*m_data.eosId);
    }
    return out;
}

std::vector<std::string> Tokenizer::preTokenize(const std::string &text) const
{
    std::vector<std::string> out;
    for (Piece &p : m_impl->preTokenize(m_impl->normalize(text), true)) {
        out.push_back(std::move(p.text));
    }
    return out;
}

std::string Tokenizer::decode(const std::vector<int64_t> &ids) const
{
    std::string out;
    bool first = true;
    for (const int64_t id : ids) {
        if (id < 0 || id >= vocabSize()) {
            continue;
        }
        const auto alt = first ? m_impl->decodedFirst.find(static_cast<int32_t>(id)) : m_impl->decodedFirst.end();
        out += alt != m_impl->decodedFirst.end() ? alt->second : m_impl->decoded[size_t(id)];
        first = false;
    }
    stripChars(out, m_impl->stripContent, m_impl->stripStart, true);
    stripChars(out, m_impl->stripContent, m_impl->stripStop, false);
    return out;
}

std::string Tokenizer::tokenText(int64_t id) const
{
    return id >= 0 && id < vocabSize() ? m_impl->decoded[size_t(id)] : std::string();
}

const std::string &Tokenizer::tokenPiece(int64_t id) const
{
    static const std::string empty;
    return id >= 0 && id < vocabSize() ? m_data.tokens[size_t(id)] : empty;
}

bool Tokenizer::isSpecial(int64_t id) const
{
    return id >= 0 && id < vocabSize() && m_impl->special[size_t(id)] != 0;
}

} // namespace sinkscope
