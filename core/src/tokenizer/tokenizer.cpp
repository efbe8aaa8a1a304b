// Byte-level BPE, written to give the same ids as Hugging Face `tokenizers` (the pipeline the
// vocabularies were trained with) and llama.cpp. Reference points:
// - pre-tokenizer regexes: tokenizers' ByteLevel / Split(Regex) (Oniguruma semantics: leftmost
//   alternative wins, greedy quantifiers with backtracking), hand-compiled into one function each;
// - merges: tokenizers' Word::merge_all (lowest rank first, ties to the leftmost pair);
// - special tokens: tokenizers' AddedVocabulary (leftmost-longest match before pre-tokenization).
#include "sinkscope/tokenizer/tokenizer.h"

#include "sinkscope/format/gguf.h"
#include "tokenizer/unicode.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <limits>
#include <queue>
#include <string_view>
#include <utility>

namespace sinkscope {

using unicode::CharClass;

namespace {

enum class PreTokenizer {
    Gpt2,       // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    DigitsGpt2, // every \p{N} alone, then the GPT-2 regex on the text between
    Llama3,     // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}
                // | ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
};

struct PreTokenizerChoice {
    PreTokenizer kind = PreTokenizer::Gpt2;
    bool ignoreMerges = false;
    bool known = true;
};

// Names as llama.cpp's tokenizer.ggml.pre (llama-vocab.cpp), grouped by the regexes it runs for them.
PreTokenizerChoice choosePreTokenizer(const std::string &name)
{
    static const std::array kGpt2 = {"", "default", "gpt2", "gpt-2", "mpt", "olmo", "jais"};
    static const std::array kDigitsGpt2 = {"smollm",    "starcoder", "refact",    "command-r",
                                           "codeshell", "exaone",    "minerva-7b"};
    // Llama-3's tokenizer.json sets ignore_merges; llama.cpp does so for its LLAMA3 group only.
    static const std::array kLlama3 = {"llama3",    "llama-v3", "llama-bpe", "falcon3",
                                       "falcon-h1", "pixtral",  "midm-2.0",  "lfm2"};
    static const std::array kLlama3Regex = {"dbrx", "smaug-bpe"};
    const auto in = [&](const auto &names) { return std::find(names.begin(), names.end(), name) != names.end(); };
    if (in(kGpt2)) {
        return {PreTokenizer::Gpt2, false, true};
    }
    if (in(kDigitsGpt2)) {
        return {PreTokenizer::DigitsGpt2, false, true};
    }
    if (in(kLlama3)) {
        return {PreTokenizer::Llama3, true, true};
    }
    if (in(kLlama3Regex)) {
        return {PreTokenizer::Llama3, false, true};
    }
    return {PreTokenizer::Gpt2, false, false};
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

// ---- pre-tokenizer --------------------------------------------------------------------------------

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
    if (u[p].cp != U'\'' || p + 1 >= end) {
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

size_t matchLlama3(const Unit *u, size_t p, size_t end)
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
    // \p{N}{1,3}
    if (u[p].cls == CharClass::Number) {
        size_t q = p;
        while (q < end && q - p < 3 && u[q].cls == CharClass::Number) {
            ++q;
        }
        return q;
    }
    //  ?[^\s\p{L}\p{N}]+[\r\n]*
    size_t start = end;
    if (u[p].cls == CharClass::Other) {
        start = p;
    } else if (u[p].cp == U' ' && p + 1 < end && u[p + 1].cls == CharClass::Other) {
        start = p + 1;
    }
    if (start != end) {
        size_t q = runOf(u, start, end, CharClass::Other);
        while (q < end && isCrLf(u[q].cp)) {
            ++q;
        }
        return q;
    }
    // \s*[\r\n]+ : backtracking leaves the match right after the run's last line break.
    const size_t q = runOf(u, p, end, CharClass::Whitespace);
    for (size_t r = q; r > p; --r) {
        if (isCrLf(u[r - 1].cp)) {
            return r;
        }
    }
    return matchWhitespace(u, p, end);
}

using Piece = std::pair<size_t, size_t>; // byte range [first, second) of the text

void splitRegex(const std::vector<Unit> &units, size_t begin, size_t end, PreTokenizer kind, std::vector<Piece> &pieces)
{
    const Unit *u = units.data();
    for (size_t p = begin; p < end;) {
        const size_t q = kind == PreTokenizer::Llama3 ? matchLlama3(u, p, end) : matchGpt2(u, p, end);
        pieces.emplace_back(u[p].offset, u[q].offset);
        p = q;
    }
}

void preTokenizeInto(std::string_view text, PreTokenizer kind, std::vector<Unit> &units, std::vector<Piece> &pieces)
{
    pieces.clear();
    if (text.empty()) {
        return;
    }
    decodeUnits(text, units);
    const size_t n = units.size() - 1;
    if (kind != PreTokenizer::DigitsGpt2) {
        splitRegex(units, 0, n, kind, pieces);
        return;
    }
    // The digit split runs first and the regex sees each stretch between digits as a whole text, so
    // its lookahead stops at a digit ("a  1" gives "a", "  ", "1").
    for (size_t i = 0; i < n;) {
        if (units[i].cls == CharClass::Number) {
            pieces.emplace_back(units[i].offset, units[i + 1].offset);
            ++i;
            continue;
        }
        size_t j = i;
        while (j < n && units[j].cls != CharClass::Number) {
            ++j;
        }
        splitRegex(units, i, j, PreTokenizer::Gpt2, pieces);
        i = j;
    }
}

struct MergeRule {
    int32_t rank;
    int32_t result;
};

uint64_t pairKey(int32_t left, int32_t right)
{
    return (uint64_t(uint32_t(left)) << 32) | uint32_t(right);
}

struct Special {
    std::string text;
    int32_t id;
};

std::string quoted(const std::string &s)
{
    return "'" + s + "'";
}

bool isValidTokenType(int64_t t)
{
    return t >= 0 && t <= static_cast<int64_t>(TokenType::Byte);
}

} // namespace

// ---- Impl ------------------------------------------------------------------------------------------

struct Tokenizer::Impl {
    PreTokenizerChoice pre;
    std::string warning;
    std::unordered_map<std::string, int32_t> vocab; // piece -> lowest id spelling it
    std::array<int32_t, 256> byteIds{};             // id of each byte's symbol, -1 if absent
    std::unordered_map<uint64_t, MergeRule> merges; // (left, right) -> rank and merged id
    std::array<std::vector<Special>, 256> specials; // by first byte, longest first
    bool hasSpecials = false;
    std::vector<std::string> decoded; // id -> bytes
    std::vector<uint8_t> special;     // id -> control or user-defined

    static Result<std::shared_ptr<const Impl>> build(const TokenizerData &data);
    void encodePiece(std::string_view bytes, std::vector<int64_t> &out) const;
    void encodeChunk(std::string_view text, std::vector<int64_t> &out) const;
};

Result<std::shared_ptr<const Tokenizer::Impl>> Tokenizer::Impl::build(const TokenizerData &data)
{
    const size_t n = data.tokens.size();
    if (data.model != "gpt2") {
        return makeError(ErrorCode::Unsupported, "tokenizer model " + quoted(data.model) +
                                                     " is not supported; only byte-level BPE ('gpt2') is");
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
    for (size_t i = 0; i < data.types.size(); ++i) {
        if (!isValidTokenType(static_cast<int64_t>(data.types[i]))) {
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
    impl->pre = choosePreTokenizer(data.pre);
    if (!impl->pre.known) {
        impl->warning = "unknown pre-tokenizer " + quoted(data.pre) +
                        "; using the GPT-2 regex, so some texts "
                        "may be split differently from the model's own tokenizer";
    }

    impl->vocab.reserve(n);
    impl->decoded.resize(n);
    impl->special.resize(n);
    for (size_t i = 0; i < n; ++i) {
        const std::string &piece = data.tokens[i];
        impl->vocab.emplace(piece, static_cast<int32_t>(i));
        const TokenType type = data.types.empty() ? TokenType::Normal : data.types[i];
        const bool special = type == TokenType::Control || type == TokenType::UserDefined;
        impl->special[i] = special;
        impl->decoded[i] = special ? piece : byteUnmapped(piece);
        if (special && !piece.empty()) {
            impl->specials[static_cast<unsigned char>(piece[0])].push_back({piece, static_cast<int32_t>(i)});
            impl->hasSpecials = true;
        }
    }
    for (auto &bucket : impl->specials) {
        std::stable_sort(bucket.begin(), bucket.end(),
                         [](const Special &a, const Special &b) { return a.text.size() > b.text.size(); });
    }
    for (size_t b = 0; b < 256; ++b) {
        std::string symbol;
        unicode::appendUtf8(symbol, byteToUnicode()[b]);
        const auto it = impl->vocab.find(symbol);
        impl->byteIds[b] = it == impl->vocab.end() ? -1 : it->second;
    }

    impl->merges.reserve(data.merges.size());
    for (size_t rank = 0; rank < data.merges.size(); ++rank) {
        const std::string &merge = data.merges[rank];
        const auto where = [&] { return "merge " + std::to_string(rank) + " " + quoted(merge); };
        // Search from 1 so that a merge whose left part is itself " " still splits correctly.
        const size_t space = merge.find(' ', 1);
        if (space == std::string::npos || space + 1 >= merge.size()) {
            return makeError(ErrorCode::Corrupt, where() + " is not of the form 'left right'");
        }
        const std::string left = merge.substr(0, space);
        const std::string right = merge.substr(space + 1);
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
        // A repeated pair keeps its first (best) rank, as llama.cpp does.
        impl->merges.emplace(pairKey(l->second, r->second), MergeRule{static_cast<int32_t>(rank), merged->second});
    }
    return std::shared_ptr<const Impl>(std::move(impl));
}

void Tokenizer::Impl::encodePiece(std::string_view bytes, std::vector<int64_t> &out) const
{
    if (pre.ignoreMerges) {
        if (const auto it = vocab.find(byteMapped(bytes)); it != vocab.end()) {
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

    // Bytes without a symbol in the vocabulary are left out before merging (tokenizers' BPE without
    // unk_token), so their neighbours become adjacent.
    std::vector<Symbol> symbols;
    symbols.reserve(bytes.size());
    for (const char c : bytes) {
        const int32_t id = byteIds[static_cast<unsigned char>(c)];
        if (id >= 0) {
            const auto index = static_cast<int32_t>(symbols.size());
            symbols.push_back({id, index - 1, index + 1});
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

void Tokenizer::Impl::encodeChunk(std::string_view text, std::vector<int64_t> &out) const
{
    std::vector<Unit> units;
    std::vector<Piece> pieces;
    preTokenizeInto(text, pre.kind, units, pieces);
    for (const auto &[first, last] : pieces) {
        encodePiece(text.substr(first, last - first), out);
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
    const std::string_view view(text);
    size_t chunkStart = 0;
    if (options.parseSpecial && m_impl->hasSpecials) {
        for (size_t i = 0; i < view.size();) {
            const Special *found = nullptr;
            for (const Special &s : m_impl->specials[static_cast<unsigned char>(view[i])]) {
                if (view.compare(i, s.text.size(), s.text) == 0) {
                    found = &s;
                    break;
                }
            }
            if (!found) {
                ++i;
                continue;
            }
            m_impl->encodeChunk(view.substr(chunkStart, i - chunkStart), out);
            out.push_back(found->id);
            i += found->text.size();
            chunkStart = i;
        }
    }
    m_impl->encodeChunk(view.substr(chunkStart), out);
    if (m_data.addEos && m_data.eosId) {
        out.push_back(*m_data.eosId);
    }
    return out;
}

std::vector<std::string> Tokenizer::preTokenize(const std::string &text) const
{
    std::vector<Unit> units;
    std::vector<Piece> pieces;
    preTokenizeInto(text, m_impl->pre.kind, units, pieces);
    std::vector<std::string> out;
    out.reserve(pieces.size());
    for (const auto &[first, last] : pieces) {
        out.push_back(text.substr(first, last - first));
    }
    return out;
}

std::string Tokenizer::decode(const std::vector<int64_t> &ids) const
{
    std::string out;
    for (const int64_t id : ids) {
        if (id >= 0 && id < vocabSize()) {
            out += m_impl->decoded[size_t(id)];
        }
    }
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

// ---- GGUF ------------------------------------------------------------------------------------------

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
    if (*model != "gpt2") {
        const std::string kind = *model == "llama" ? " (SentencePiece)" : "";
        return makeError(ErrorCode::Unsupported, path + ": tokenizer model " + quoted(*model) + kind +
                                                     " is not supported; only byte-level BPE ('gpt2') is");
    }
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
            if (!isValidTokenType((*types)[i])) {
                return corrupt("tokenizer.ggml.token_type[" + std::to_string(i) + "] = " + std::to_string((*types)[i]) +
                               " is not a token type (0..6)");
            }
            data.types.push_back(static_cast<TokenType>((*types)[i]));
        }
    }

    std::optional<std::vector<std::string>> merges = file.getStringArray("tokenizer.ggml.merges");
    if (!merges) {
        return corrupt("tokenizer.ggml.merges is missing or not an array of strings (byte-level BPE needs its merges)");
    }
    data.merges = std::move(*merges);

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
    const std::pair<const char *, bool *> flags[] = {
        {"tokenizer.ggml.add_bos_token", &data.addBos},
        {"tokenizer.ggml.add_eos_token", &data.addEos},
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
    return data;
}

// ---- JSON ------------------------------------------------------------------------------------------

namespace {

constexpr int kJsonVersion = 1;

} // namespace

std::string Tokenizer::toJson() const
{
    nlohmann::json j;
    j["version"] = kJsonVersion;
    j["model"] = m_data.model;
    j["pre"] = m_data.pre;
    j["tokens"] = m_data.tokens;
    auto types = nlohmann::json::array();
    for (const TokenType t : m_data.types) {
        types.push_back(static_cast<int32_t>(t));
    }
    j["types"] = std::move(types);
    j["merges"] = m_data.merges;
    const auto optionalId = [](const std::optional<int64_t> &id) {
        return id ? nlohmann::json(*id) : nlohmann::json(); // null when absent
    };
    j["bosId"] = optionalId(m_data.bosId);
    j["eosId"] = optionalId(m_data.eosId);
    j["unkId"] = optionalId(m_data.unkId);
    j["padId"] = optionalId(m_data.padId);
    j["addBos"] = m_data.addBos;
    j["addEos"] = m_data.addEos;
    // Vocabulary entries are valid UTF-8 in every byte-level vocabulary (that is the point of the byte
    // mapping); replacing rather than throwing keeps a stray entry from making the archive unwritable.
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<std::shared_ptr<const Tokenizer>> Tokenizer::fromJson(const std::string &json, const std::string &origin)
{
    const auto bad = [&](const std::string &what) { return makeError(ErrorCode::Corrupt, origin + ": " + what); };
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(json);
    } catch (const nlohmann::json::parse_error &e) {
        return bad(std::string("not valid JSON (") + e.what() + ")");
    }
    if (!j.is_object()) {
        return bad("not a JSON object");
    }
    const auto field = [&](const char *name) -> const nlohmann::json * {
        const auto it = j.find(name);
        return it == j.end() ? nullptr : &*it;
    };
    const auto mustBe = [&](const char *name, const char *what) {
        return bad("field '" + std::string(name) + "' must be " + what);
    };

    if (const auto *v = field("version"); v && !(v->is_number_integer() && v->get<int64_t>() <= kJsonVersion)) {
        return bad("field 'version' must be an integer <= " + std::to_string(kJsonVersion) +
                   " (written by a newer SinkScope?)");
    }

    TokenizerData data;
    for (const auto &[name, target] : {std::pair{"model", &data.model}, std::pair{"pre", &data.pre}}) {
        if (const auto *v = field(name)) {
            if (!v->is_string()) {
                return mustBe(name, "a string");
            }
            *target = v->get<std::string>();
        }
    }
    for (const auto &[name, target] : {std::pair{"tokens", &data.tokens}, std::pair{"merges", &data.merges}}) {
        const auto *v = field(name);
        if (!v) {
            if (std::string_view(name) == "tokens") {
                return bad("field 'tokens' is missing");
            }
            continue;
        }
        if (!v->is_array()) {
            return mustBe(name, "an array of strings");
        }
        target->reserve(v->size());
        for (const auto &e : *v) {
            if (!e.is_string()) {
                return mustBe(name, "an array of strings");
            }
            target->push_back(e.get<std::string>());
        }
    }
    if (const auto *v = field("types")) {
        if (!v->is_array()) {
            return mustBe("types", "an array of token types (integers 0..6)");
        }
        data.types.reserve(v->size());
        for (const auto &e : *v) {
            if (!e.is_number_integer() || !isValidTokenType(e.get<int64_t>())) {
                return mustBe("types", "an array of token types (integers 0..6)");
            }
            data.types.push_back(static_cast<TokenType>(e.get<int64_t>()));
        }
    }
    for (const auto &[name, target] : {std::pair{"bosId", &data.bosId}, std::pair{"eosId", &data.eosId},
                                       std::pair{"unkId", &data.unkId}, std::pair{"padId", &data.padId}}) {
        if (const auto *v = field(name); v && !v->is_null()) {
            if (!v->is_number_integer()) {
                return mustBe(name, "an integer or null");
            }
            *target = v->get<int64_t>();
        }
    }
    for (const auto &[name, target] : {std::pair{"addBos", &data.addBos}, std::pair{"addEos", &data.addEos}}) {
        if (const auto *v = field(name)) {
            if (!v->is_boolean()) {
                return mustBe(name, "a boolean");
            }
            *target = v->get<bool>();
        }
    }

    auto tokenizer = create(std::move(data));
    if (!tokenizer) {
        return makeError(tokenizer.error().code, origin + ": " + tokenizer.error().message);
    }
    return tokenizer;
}

} // namespace sinkscope
