// Tokenizer data from a Hugging Face tokenizer.json (+ tokenizer_config.json). Field names and
// defaults follow tokenizers' serde of each component; a component or option this file does not
// implement is an error naming it, so a tokenizer is never run with part of its pipeline missing.
#include "sinkscope/tokenizer/tokenizer.h"
#include "tokenizer/split_regex.h"
#include "tokenizer/tokenizer_private.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <sstream>

namespace sinkscope {

namespace tk = sinkscope::tokenizer;
using nlohmann::json;

namespace {

constexpr std::string_view kMetaspace = "\xE2\x96\x81"; // U+2581 "▁"

// A failure while reading one file: the code and the message, which the caller prefixes with the path.
struct Failure {
    ErrorCode code;
    std::string message;
};

[[noreturn]] void fail(ErrorCode code, std::string message)
{
    throw Failure{code, std::move(message)};
}

[[noreturn]] void unsupported(const std::string &what)
{
    fail(ErrorCode::Unsupported, what + " is not supported");
}

std::string typeOf(const json &j, const std::string &where)
{
    if (!j.is_object()) {
        fail(ErrorCode::Corrupt, where + " must be an object");
    }
    const auto it = j.find("type");
    if (it == j.end() || !it->is_string()) {
        fail(ErrorCode::Corrupt, where + " has no 'type'");
    }
    return it->get<std::string>();
}

template <typename T> T get(const json &j, const char *key, const T &fallback, const std::string &where)
{
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) {
        return fallback;
    }
    try {
        return it->get<T>();
    } catch (const json::exception &) {
        fail(ErrorCode::Corrupt, where + ": '" + key + "' has the wrong type (" + it->dump() + ")");
    }
}

const json &member(const json &j, const char *key, const std::string &where)
{
    const auto it = j.find(key);
    if (it == j.end()) {
        fail(ErrorCode::Corrupt, where + " has no '" + key + "'");
    }
    return *it;
}

// tokenizers' Pattern: {"String": "..."} or {"Regex": "..."}.
struct Pattern {
    std::string text;
    bool regex = false;
};

Pattern patternOf(const json &j, const std::string &where)
{
    const json &p = member(j, "pattern", where);
    if (p.is_object() && p.size() == 1 && p.begin().value().is_string()) {
        if (p.contains("String")) {
            return {p["String"].get<std::string>(), false};
        }
        if (p.contains("Regex")) {
            return {p["Regex"].get<std::string>(), true};
        }
    }
    fail(ErrorCode::Corrupt, where + ": 'pattern' must be {\"String\": ...} or {\"Regex\": ...}");
}

// Metaspace's prepend_scheme, or the older add_prefix_space flag.
PrependScheme prependSchemeOf(const json &j, const std::string &where)
{
    if (j.contains("prepend_scheme")) {
        const std::string name = get<std::string>(j, "prepend_scheme", "always", where);
        if (const auto p = tk::prependSchemeFromName(name)) {
            return *p;
        }
        unsupported(where + " prepend_scheme '" + name + "'");
    }
    return get<bool>(j, "add_prefix_space", true, where) ? PrependScheme::Always : PrependScheme::Never;
}

void readNormalizer(const json &j, std::vector<NormalizerStep> &out)
{
    if (j.is_null()) {
        return;
    }
    const std::string type = typeOf(j, "normalizer");
    const std::string where = "normalizer " + type;
    NormalizerStep s;
    if (type == "Sequence") {
        const json &list = member(j, "normalizers", where);
        if (!list.is_array()) {
            fail(ErrorCode::Corrupt, where + ": 'normalizers' must be an array");
        }
        for (const json &e : list) {
            readNormalizer(e, out);
        }
        return;
    }
    if (type == "NFC") {
        s.kind = NormalizerStep::Kind::Nfc;
    } else if (type == "Replace") {
        const Pattern p = patternOf(j, where);
        if (p.regex) {
            unsupported(where + " with a regex pattern (" + p.text + ")");
        }
        s.kind = NormalizerStep::Kind::Replace;
        s.pattern = p.text;
        s.content = get<std::string>(j, "content", "", where);
    } else if (type == "Prepend") {
        s.kind = NormalizerStep::Kind::Prepend;
        s.content = get<std::string>(j, "prepend", "", where);
    } else {
        unsupported("normalizer '" + type + "'");
    }
    out.push_back(std::move(s));
}

void readPreTokenizer(const json &j, std::vector<PreTokenizerStep> &out)
{
    if (j.is_null()) {
        return;
    }
    const std::string type = typeOf(j, "pre_tokenizer");
    const std::string where = "pre_tokenizer " + type;
    PreTokenizerStep s;
    if (type == "Sequence") {
        const json &list = member(j, "pretokenizers", where);
        if (!list.is_array()) {
            fail(ErrorCode::Corrupt, where + ": 'pretokenizers' must be an array");
        }
        for (const json &e : list) {
            readPreTokenizer(e, out);
        }
        return;
    }
    if (type == "ByteLevel") {
        s.kind = PreTokenizerStep::Kind::ByteLevel;
        s.addPrefixSpace = get<bool>(j, "add_prefix_space", true, where);
        s.useRegex = get<bool>(j, "use_regex", true, where);
    } else if (type == "Split") {
        s.kind = PreTokenizerStep::Kind::Split;
        const Pattern p = patternOf(j, where);
        s.pattern = p.text;
        if (p.regex) {
            s.regex = tk::splitRegexFromPattern(p.text);
            if (!s.regex) {
                unsupported(where + " regex " + json(p.text).dump() +
                            " (known: the GPT-2, Llama-3, Qwen2 and GPT-4o/o200k patterns)");
            }
            s.pattern = std::string(tk::splitRegexName(*s.regex));
        } else if (p.text.empty()) {
            fail(ErrorCode::Corrupt, where + ": empty pattern");
        }
        const std::string behavior = get<std::string>(j, "behavior", "Isolated", where);
        const auto b = tk::splitBehaviorFromName(behavior);
        if (!b) {
            unsupported(where + " behavior '" + behavior + "'");
        }
        s.behavior = *b;
        s.invert = get<bool>(j, "invert", false, where);
    } else if (type == "Digits") {
        s.kind = PreTokenizerStep::Kind::Digits;
        s.individualDigits = get<bool>(j, "individual_digits", false, where);
    } else if (type == "Metaspace") {
        s.kind = PreTokenizerStep::Kind::Metaspace;
        s.replacement = get<std::string>(j, "replacement", std::string(kMetaspace), where);
        s.prependScheme = prependSchemeOf(j, where);
        s.split = get<bool>(j, "split", true, where);
        if (s.replacement.empty()) {
            fail(ErrorCode::Corrupt, where + ": empty replacement");
        }
    } else {
        unsupported("pre_tokenizer '" + type + "'");
    }
    out.push_back(std::move(s));
}

void readDecoder(const json &j, std::vector<DecoderStep> &out)
{
    if (j.is_null()) {
        return;
    }
    const std::string type = typeOf(j, "decoder");
    const std::string where = "decoder " + type;
    DecoderStep s;
    if (type == "Sequence") {
        const json &list = member(j, "decoders", where);
        if (!list.is_array()) {
            fail(ErrorCode::Corrupt, where + ": 'decoders' must be an array");
        }
        for (const json &e : list) {
            readDecoder(e, out);
        }
        return;
    }
    if (type == "ByteLevel") {
        s.kind = DecoderStep::Kind::ByteLevel;
    } else if (type == "Replace") {
        const Pattern p = patternOf(j, where);
        if (p.regex) {
            unsupported(where + " with a regex pattern (" + p.text + ")");
        }
        s.kind = DecoderStep::Kind::Replace;
        s.pattern = p.text;
        s.content = get<std::string>(j, "content", "", where);
    } else if (type == "ByteFallback") {
        s.kind = DecoderStep::Kind::ByteFallback;
    } else if (type == "Fuse") {
        s.kind = DecoderStep::Kind::Fuse;
    } else if (type == "Strip") {
        s.kind = DecoderStep::Kind::Strip;
        s.content = get<std::string>(j, "content", " ", where);
        s.start = get<int32_t>(j, "start", 0, where);
        s.stop = get<int32_t>(j, "stop", 0, where);
    } else if (type == "Metaspace") {
        s.kind = DecoderStep::Kind::Metaspace;
        s.replacement = get<std::string>(j, "replacement", std::string(kMetaspace), where);
        s.prependScheme = prependSchemeOf(j, where);
    } else {
        unsupported("decoder '" + type + "'");
    }
    out.push_back(std::move(s));
}

// The ids a post-processor adds around the text: at most one special token before $A and one after.
struct Template {
    std::optional<std::string> before;
    std::optional<std::string> after;
    std::map<std::string, int64_t> ids; // special token name -> id (special_tokens)
};

void readPostProcessor(const json &j, std::optional<Template> &out)
{
    if (j.is_null()) {
        return;
    }
    const std::string type = typeOf(j, "post_processor");
    const std::string where = "post_processor " + type;
    if (type == "Sequence") {
        const json &list = member(j, "processors", where);
        if (!list.is_array()) {
            fail(ErrorCode::Corrupt, where + ": 'processors' must be an array");
        }
        for (const json &e : list) {
            readPostProcessor(e, out);
        }
        return;
    }
    if (type == "ByteLevel") {
        return; // offsets only
    }
    if (type != "TemplateProcessing") {
        unsupported("post_processor '" + type + "'");
    }
    if (out) {
        unsupported(where + " twice in one Sequence");
    }
    Template t;
    const json &single = member(j, "single", where);
    if (!single.is_array()) {
        fail(ErrorCode::Corrupt, where + ": 'single' must be an array");
    }
    bool seenSequence = false;
    for (const json &piece : single) {
        if (piece.contains("Sequence")) {
            if (seenSequence) {
                unsupported(where + " with two sequences in 'single'");
            }
            seenSequence = true;
            continue;
        }
        if (!piece.contains("SpecialToken") || !piece["SpecialToken"].contains("id") ||
            !piece["SpecialToken"]["id"].is_string()) {
            fail(ErrorCode::Corrupt, where + ": 'single' has an entry that is neither Sequence nor SpecialToken");
        }
        std::optional<std::string> &slot = seenSequence ? t.after : t.before;
        if (slot) {
            unsupported(where + " with more than one special token on one side of the text");
        }
        slot = piece["SpecialToken"]["id"].get<std::string>();
    }
    if (!seenSequence) {
        fail(ErrorCode::Corrupt, where + ": 'single' has no Sequence");
    }
    const json specials = j.value("special_tokens", json::object());
    for (const auto &name : {t.before, t.after}) {
        if (!name) {
            continue;
        }
        const auto it = specials.find(*name);
        if (it == specials.end() || !it->contains("ids") || !(*it)["ids"].is_array() || (*it)["ids"].size() != 1 ||
            !(*it)["ids"][0].is_number_integer()) {
            fail(ErrorCode::Corrupt, where + ": special token '" + *name + "' has no single id in 'special_tokens'");
        }
        t.ids[*name] = (*it)["ids"][0].get<int64_t>();
    }
    out = std::move(t);
}

json readJsonFile(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        fail(ErrorCode::Io, "cannot be read");
    }
    std::stringstream ss;
    ss << in.rdbuf();
    try {
        json j = json::parse(ss.str());
        if (!j.is_object()) {
            fail(ErrorCode::Corrupt, "not a JSON object");
        }
        return j;
    } catch (const json::parse_error &e) {
        fail(ErrorCode::Corrupt, std::string("not valid JSON (") + e.what() + ")");
    }
}

// tokenizer_config.json names tokens as a string or as {"content": ...}.
std::optional<std::string> tokenName(const json &config, const char *key)
{
    const auto it = config.find(key);
    if (it == config.end() || it->is_null()) {
        return std::nullopt;
    }
    if (it->is_string()) {
        return it->get<std::string>();
    }
    if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
        return (*it)["content"].get<std::string>();
    }
    fail(ErrorCode::Corrupt, std::string("'") + key + "' must be a string or {\"content\": ...}");
}

AddedToken addedTokenOf(const json &e, const std::string &where)
{
    AddedToken a;
    a.id = get<int64_t>(e, "id", -1, where);
    a.content = get<std::string>(e, "content", "", where);
    a.special = get<bool>(e, "special", false, where);
    a.lstrip = get<bool>(e, "lstrip", false, where);
    a.rstrip = get<bool>(e, "rstrip", false, where);
    a.normalized = get<bool>(e, "normalized", !a.special, where);
    if (a.content.empty()) {
        fail(ErrorCode::Corrupt, where + " has no content");
    }
    if (get<bool>(e, "single_word", false, where)) {
        unsupported(where + " '" + a.content + "' with single_word");
    }
    return a;
}

TokenizerData readTokenizerJson(const json &j)
{
    TokenizerData data;
    data.pre = "";
    const json &model = member(j, "model", "tokenizer.json");
    const std::string modelType = model.is_object() && model.contains("type") ? typeOf(model, "model") : "";
    if (modelType != "BPE") {
        unsupported("model '" + (modelType.empty() ? std::string("(no type)") : modelType) +
                    "' (only BPE is implemented)");
    }
    const std::string where = "model BPE";
    if (get<double>(model, "dropout", 0.0, where) != 0.0) {
        unsupported(where + " with dropout");
    }
    for (const char *key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
        if (!get<std::string>(model, key, "", where).empty()) {
            unsupported(where + " with " + key);
        }
    }
    data.byteFallback = get<bool>(model, "byte_fallback", false, where);
    data.fuseUnk = get<bool>(model, "fuse_unk", false, where);
    data.ignoreMerges = get<bool>(model, "ignore_merges", false, where);

    // Vocabulary and added tokens give the ids; every id below the largest must have a token.
    const json &vocab = member(model, "vocab", where);
    if (!vocab.is_object()) {
        fail(ErrorCode::Corrupt, where + ": 'vocab' must be an object {token: id}");
    }
    std::vector<AddedToken> added;
    if (const auto it = j.find("added_tokens"); it != j.end() && !it->is_null()) {
        if (!it->is_array()) {
            fail(ErrorCode::Corrupt, "'added_tokens' must be an array");
        }
        for (size_t i = 0; i < it->size(); ++i) {
            added.push_back(addedTokenOf((*it)[i], "added_tokens[" + std::to_string(i) + "]"));
        }
    }
    int64_t maxId = -1;
    for (const auto &[token, id] : vocab.items()) {
        if (!id.is_number_integer() || id.get<int64_t>() < 0) {
            fail(ErrorCode::Corrupt, where + ": vocab entry " + json(token).dump() + " has no valid id");
        }
        maxId = std::max(maxId, id.get<int64_t>());
    }
    for (const AddedToken &a : added) {
        if (a.id < 0) {
            fail(ErrorCode::Corrupt, "added token '" + a.content + "' has no valid id");
        }
        maxId = std::max(maxId, a.id);
    }
    if (maxId < 0) {
        fail(ErrorCode::Corrupt, where + ": empty vocabulary");
    }
    if (maxId > 10'000'000) {
        fail(ErrorCode::Corrupt, where + ": token id " + std::to_string(maxId) + " is implausibly large");
    }
    const size_t n = size_t(maxId) + 1;
    data.tokens.assign(n, std::string());
    data.types.assign(n, TokenType::Normal);
    std::vector<uint8_t> have(n, 0);
    for (const auto &[token, id] : vocab.items()) {
        const size_t i = size_t(id.get<int64_t>());
        if (have[i]) {
            fail(ErrorCode::Corrupt, where + ": id " + std::to_string(i) + " is given to two tokens");
        }
        data.tokens[i] = token;
        have[i] = 1;
        if (data.byteFallback && token.size() == 6 && token.rfind("<0x", 0) == 0) {
            data.types[i] = TokenType::Byte;
        }
    }
    for (const AddedToken &a : added) {
        const size_t i = size_t(a.id);
        if (!have[i]) {
            data.tokens[i] = a.content;
            have[i] = 1;
        }
        data.types[i] = a.special ? TokenType::Control : TokenType::UserDefined;
    }
    for (size_t i = 0; i < n; ++i) {
        if (!have[i]) {
            fail(ErrorCode::Corrupt,
                 where + ": no token has id " + std::to_string(i) + " (ids run to " + std::to_string(maxId) + ")");
        }
    }
    data.addedTokens = std::move(added);

    if (const auto it = model.find("merges"); it != model.end() && !it->is_null()) {
        if (!it->is_array()) {
            fail(ErrorCode::Corrupt, where + ": 'merges' must be an array");
        }
        data.merges.reserve(it->size());
        for (size_t i = 0; i < it->size(); ++i) {
            const json &m = (*it)[i];
            if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
                data.merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
                continue;
            }
            const std::string s = m.is_string() ? m.get<std::string>() : std::string();
            const size_t space = s.find(' ', 1);
            if (space == std::string::npos || space + 1 >= s.size() || s.find(' ', space + 1) != std::string::npos) {
                fail(ErrorCode::Corrupt, where + ": merge " + std::to_string(i) + " " + m.dump() +
                                             " is neither \"left right\" nor [left, right]");
            }
            data.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
        }
    }
    if (const std::string unk = get<std::string>(model, "unk_token", "", where); !unk.empty()) {
        if (!vocab.contains(unk)) {
            fail(ErrorCode::Corrupt, where + ": unk_token '" + unk + "' is not in the vocabulary");
        }
        data.unkId = vocab[unk].get<int64_t>();
    }

    std::vector<NormalizerStep> normalizers;
    readNormalizer(j.value("normalizer", json()), normalizers);
    std::vector<PreTokenizerStep> preTokenizers;
    readPreTokenizer(j.value("pre_tokenizer", json()), preTokenizers);
    std::vector<DecoderStep> decoders;
    readDecoder(j.value("decoder", json()), decoders);
    const bool byteLevel = std::any_of(preTokenizers.begin(), preTokenizers.end(), [](const PreTokenizerStep &s) {
        return s.kind == PreTokenizerStep::Kind::ByteLevel;
    });
    for (size_t i = 0; byteLevel && i + 1 < preTokenizers.size(); ++i) {
        if (preTokenizers[i].kind == PreTokenizerStep::Kind::ByteLevel) {
            unsupported("pre_tokenizer ByteLevel followed by another pre-tokenizer");
        }
    }
    data.model = byteLevel ? "gpt2" : "llama";
    data.addSpacePrefix = false;
    data.normalizers = std::move(normalizers);
    data.preTokenizers = std::move(preTokenizers);
    data.decoders = std::move(decoders);

    std::optional<Template> post;
    readPostProcessor(j.value("post_processor", json()), post);
    if (post) {
        if (post->before) {
            data.addBos = true;
            data.bosId = post->ids[*post->before];
        }
        if (post->after) {
            data.addEos = true;
            data.eosId = post->ids[*post->after];
        }
    }
    return data;
}

// Ids of a token by its text: added tokens first, then the vocabulary.
std::optional<int64_t> idOf(const TokenizerData &data, const std::string &text)
{
    for (const AddedToken &a : *data.addedTokens) {
        if (a.content == text) {
            return a.id;
        }
    }
    for (size_t i = 0; i < data.tokens.size(); ++i) {
        if (data.tokens[i] == text) {
            return int64_t(i);
        }
    }
    return std::nullopt;
}

void applyConfig(const json &config, TokenizerData &data)
{
    // Tokens the config declares that tokenizer.json lacks (transformers adds them).
    if (const auto it = config.find("added_tokens_decoder"); it != config.end() && it->is_object()) {
        for (const auto &[key, e] : it->items()) {
            json entry = e;
            try {
                entry["id"] = std::stoll(key);
            } catch (const std::exception &) {
                fail(ErrorCode::Corrupt, "added_tokens_decoder key '" + key + "' is not an id");
            }
            AddedToken a = addedTokenOf(entry, "added_tokens_decoder[" + key + "]");
            const bool known = std::any_of(data.addedTokens->begin(), data.addedTokens->end(),
                                           [&](const AddedToken &b) { return b.id == a.id; });
            if (known) {
                continue;
            }
            if (a.id >= int64_t(data.tokens.size())) {
                if (a.id != int64_t(data.tokens.size())) {
                    fail(ErrorCode::Corrupt, "added_tokens_decoder[" + key + "] leaves a gap after id " +
                                                 std::to_string(data.tokens.size() - 1));
                }
                data.tokens.push_back(a.content);
                data.types.push_back(TokenType::Normal);
            }
            data.types[size_t(a.id)] = a.special ? TokenType::Control : TokenType::UserDefined;
            data.addedTokens->push_back(std::move(a));
        }
    }
    const std::pair<const char *, std::optional<int64_t> *> names[] = {
        {"bos_token", &data.bosId}, {"eos_token", &data.eosId}, {"pad_token", &data.padId}, {"unk_token", &data.unkId}};
    for (const auto &[key, target] : names) {
        if (const auto name = tokenName(config, key)) {
            const auto id = idOf(data, *name);
            if (!id) {
                fail(ErrorCode::Corrupt, std::string("'") + key + "' names '" + *name + "', which is not a token");
            }
            // The post-processor's own BOS/EOS stays the one it adds.
            if (!*target || !((key == std::string_view("bos_token") && data.addBos) ||
                              (key == std::string_view("eos_token") && data.addEos))) {
                *target = *id;
            }
        }
    }
    for (const auto &[key, target] :
         {std::pair{"add_bos_token", &data.addBos}, std::pair{"add_eos_token", &data.addEos}}) {
        const auto it = config.find(key);
        if (it == config.end() || it->is_null()) {
            continue;
        }
        if (!it->is_boolean()) {
            fail(ErrorCode::Corrupt, std::string("'") + key + "' must be a boolean");
        }
        *target = it->get<bool>();
    }
    if (data.addBos && !data.bosId) {
        fail(ErrorCode::Corrupt, "add_bos_token is set but no bos_token is named");
    }
    if (data.addEos && !data.eosId) {
        fail(ErrorCode::Corrupt, "add_eos_token is set but no eos_token is named");
    }
}

} // namespace

Result<TokenizerData> Tokenizer::dataFromTokenizerJson(const std::string &tokenizerJsonPath,
                                                       const std::string &tokenizerConfigPath)
{
    TokenizerData data;
    try {
        data = readTokenizerJson(readJsonFile(tokenizerJsonPath));
    } catch (const Failure &f) {
        return makeError(f.code, tokenizerJsonPath + ": " + f.message);
    } catch (const json::exception &e) {
        return makeError(ErrorCode::Corrupt, tokenizerJsonPath + ": " + e.what());
    }
    if (!tokenizerConfigPath.empty() && std::ifstream(tokenizerConfigPath)) {
        try {
            applyConfig(readJsonFile(tokenizerConfigPath), data);
        } catch (const Failure &f) {
            return makeError(f.code, tokenizerConfigPath + ": " + f.message);
        } catch (const json::exception &e) {
            return makeError(ErrorCode::Corrupt, tokenizerConfigPath + ": " + e.what());
        }
    }
    // Validate now so that a broken vocabulary (merges naming unknown tokens, ...) names this file.
    if (auto t = create(data); !t) {
        return makeError(t.error().code, tokenizerJsonPath + ": " + t.error().message);
    }
    return data;
}

} // namespace sinkscope
