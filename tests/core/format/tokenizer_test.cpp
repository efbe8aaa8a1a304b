// Tokenizer: a tiny hand-made byte-level vocabulary for the mechanics (merge order, special tokens,
// BOS policy, errors, JSON and GGUF input), golden pre-tokenizer splits from Hugging Face tokenizers,
// and golden ids of the default model's tokenizer (tools/make_tokenizer_golden.py).
#include "sinkscope/format/gguf.h"
#include "sinkscope/tokenizer/tokenizer.h"
#include "support/gguf_writer.h"
#include "support/test_paths.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace sinkscope;
namespace sst = sinkscope::testing;

namespace {

using Ids = std::vector<int64_t>;
using Merges = std::vector<std::pair<std::string, std::string>>;

// Merges as GGUF spells them: "left right".
std::vector<std::string> mergeStrings(const Merges &merges)
{
    std::vector<std::string> out;
    for (const auto &[l, r] : merges) {
        out.push_back(l + " " + r);
    }
    return out;
}

// GPT-2's byte-to-unicode symbol of one byte, as UTF-8 (written out independently of the tokenizer).
std::string byteSymbol(unsigned b)
{
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    unsigned cp = b;
    if (!printable) {
        cp = 256;
        for (unsigned x = 0; x < b; ++x) {
            const bool p = (x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF);
            cp += p ? 0 : 1;
        }
    }
    std::string out;
    if (cp < 0x80) {
        out += char(cp);
    } else {
        out += char(0xC0 | (cp >> 6));
        out += char(0x80 | (cp & 0x3F));
    }
    return out;
}

// Ids 0..255 are the byte symbols (id == byte), then a few merged tokens and special tokens:
//   256 "bc"  257 "ab"  258 "abc"  259 "aa"  260 "Ġa"  261 "<x>" (control)  262 "<x><y>" (user-defined)
//   263 "<bos>" (control)  264 "<eos>" (control)
// Merge ranks: "b c" 0, "a b" 1, "a bc" 2, "a a" 3, "Ġ a" 4. So "abc" merges b+c first and ends as one
// token, although "a b" is also a merge.
constexpr int64_t kBc = 256, kAb = 257, kAbc = 258, kAa = 259, kSpaceA = 260, kX = 261, kXy = 262, kBos = 263,
                  kEos = 264;

TokenizerData tinyData()
{
    TokenizerData d;
    d.model = "gpt2";
    d.pre = "gpt2";
    for (unsigned b = 0; b < 256; ++b) {
        d.tokens.push_back(byteSymbol(b));
    }
    const std::string g = byteSymbol(' ');
    for (const std::string &t :
         std::vector<std::string>{"bc", "ab", "abc", "aa", g + "a", "<x>", "<x><y>", "<bos>", "<eos>"}) {
        d.tokens.push_back(t);
    }
    d.types.assign(d.tokens.size(), TokenType::Normal);
    d.types[kX] = TokenType::Control;
    d.types[kXy] = TokenType::UserDefined;
    d.types[kBos] = TokenType::Control;
    d.types[kEos] = TokenType::Control;
    d.merges = {{"b", "c"}, {"a", "b"}, {"a", "bc"}, {"a", "a"}, {g, "a"}};
    d.bosId = kBos;
    d.eosId = kEos;
    return d;
}

std::shared_ptr<const Tokenizer> make(TokenizerData d)
{
    auto t = Tokenizer::create(std::move(d));
    EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().message);
    return t.ok() ? std::move(t).value() : nullptr;
}

Ids bytesOf(const std::string &s)
{
    Ids out;
    for (const char c : s) {
        out.push_back(static_cast<unsigned char>(c));
    }
    return out;
}

void expectCreateError(TokenizerData d, ErrorCode code, std::initializer_list<std::string> fragments)
{
    const auto t = Tokenizer::create(std::move(d));
    ASSERT_FALSE(t.ok()) << "create succeeded but should not have";
    EXPECT_EQ(t.error().code, code) << errorCodeName(t.error().code) << ": " << t.error().message;
    for (const std::string &f : fragments) {
        EXPECT_NE(t.error().message.find(f), std::string::npos) << "'" << f << "' missing from: " << t.error().message;
    }
}

nlohmann::json readJson(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    EXPECT_TRUE(in.good()) << "cannot read " << path;
    std::stringstream ss;
    ss << in.rdbuf();
    return nlohmann::json::parse(ss.str());
}

// A deterministic English-like text of `words` words with punctuation, digits and newlines.
std::string longText(size_t words)
{
    static const char *vocabulary[] = {
        "the",  "attention", "sink",    "token", "receives", "a",    "large",   "share",   "of",          "probability",
        "mass", "in",        "every",   "layer", "and",      "head", "because", "softmax", "must",        "sum",
        "to",   "one",       "model's", "first", "position", "is",   "always",  "visible", "Transformer", "language"};
    std::mt19937 rng(7);
    std::string out;
    for (size_t i = 0; i < words; ++i) {
        out += vocabulary[rng() % std::size(vocabulary)];
        const unsigned r = rng() % 40;
        out += r == 0 ? ". " : r == 1 ? ", " : r == 2 ? "\n\n" : r == 3 ? " 2024 " : " ";
    }
    return out;
}

} // namespace

// ---- mechanics on the tiny vocabulary ------------------------------------------------------------

TEST(TokenizerTiny, MergesApplyByRankNotByPosition)
{
    const auto t = make(tinyData());
    ASSERT_TRUE(t);
    // "b c" (rank 0) beats "a b" (rank 1) although "a b" is further left; then "a bc" makes "abc".
    EXPECT_EQ(t->encode("abc"), Ids{kAbc});
    // Without a c, "a b" applies.
    EXPECT_EQ(t->encode("ab"), Ids{kAb});
    EXPECT_EQ(t->encode("abd"), (Ids{kAb, 'd'}));
    // Equal ranks: the leftmost pair wins, so "aaa" is "aa" + "a", never "a" + "aa".
    EXPECT_EQ(t->encode("aaa"), (Ids{kAa, 'a'}));
    EXPECT_EQ(t->encode("aaaa"), (Ids{kAa, kAa}));
    // The leading space joins the word (GPT-2 regex " ?\p{L}+") and merges with it.
    EXPECT_EQ(t->encode(" a"), Ids{kSpaceA});
    EXPECT_EQ(t->encode("x abc"), (Ids{'x', ' ', kAbc})); // " abc": "Ġ a" (rank 4) loses to "b c" and "a bc"
    // Merges never cross pre-token boundaries.
    EXPECT_EQ(t->encode("a.bc"), (Ids{'a', '.', kBc}));
}

TEST(TokenizerTiny, SpecialTokensAreSplitLongestFirst)
{
    const auto t = make(tinyData());
    ASSERT_TRUE(t);
    EXPECT_EQ(t->encode("<x>"), Ids{kX});
    EXPECT_EQ(t->encode("<x><y>"), Ids{kXy}); // longest match, not "<x>" + "<y>"
    EXPECT_EQ(t->encode("ab<x>abc<x><y>c"), (Ids{kAb, kX, kAbc, kXy, 'c'}));
    EXPECT_EQ(t->encode("<x<x>>"), (Ids{'<', 'x', kX, '>'}));
    // Text between specials is pre-tokenized on its own: "a " at the end of a chunk keeps its space.
    EXPECT_EQ(t->encode("a <x> a"), (Ids{'a', ' ', kX, kSpaceA}));
    // Not parsed: control tokens are plain text; user-defined ones still match whole (tokenizers'
    // non-special added tokens, llama.cpp's USER_DEFINED).
    EXPECT_EQ(t->encode("<x>", EncodeOptions{.parseSpecial = false}), bytesOf("<x>"));
    EXPECT_EQ(t->encode("<x><y>", EncodeOptions{.parseSpecial = false}), Ids{kXy});
    EXPECT_EQ(t->encode("<x>a<x><y>", EncodeOptions{.parseSpecial = false}), (Ids{'<', 'x', '>', 'a', kXy}));
    EXPECT_TRUE(t->isSpecial(kX));
    EXPECT_TRUE(t->isSpecial(kXy));
    EXPECT_FALSE(t->isSpecial(kAbc));
    EXPECT_FALSE(t->isSpecial(-1));
    EXPECT_FALSE(t->isSpecial(100000));
}

TEST(TokenizerTiny, BosAndEosPolicy)
{
    TokenizerData d = tinyData();
    auto t = make(d);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->encode("ab"), Ids{kAb}); // addBos false by default
    EXPECT_EQ(t->encode("ab", EncodeOptions{.addBos = true}), (Ids{kBos, kAb}));
    EXPECT_EQ(t->encode("", EncodeOptions{.addBos = true}), Ids{kBos});
    EXPECT_EQ(t->encode(""), Ids{});

    d.addBos = true;
    t = make(d);
    EXPECT_EQ(t->encode("ab"), (Ids{kBos, kAb}));
    EXPECT_EQ(t->encode("ab", EncodeOptions{.addBos = false}), Ids{kAb});
    // Not deduplicated: a BOS written in the text stays.
    EXPECT_EQ(t->encode("<bos>ab"), (Ids{kBos, kBos, kAb}));

    d.addEos = true;
    t = make(d);
    EXPECT_EQ(t->encode("ab"), (Ids{kBos, kAb, kEos}));

    d.bosId.reset();
    d.eosId.reset();
    t = make(d);
    EXPECT_EQ(t->encode("ab", EncodeOptions{.addBos = true}), Ids{kAb}); // no id, nothing to add
}

TEST(TokenizerTiny, DecodeInvertsTheByteMapping)
{
    const auto t = make(tinyData());
    ASSERT_TRUE(t);
    const std::vector<std::string> texts = {"",
                                            "abc",
                                            "hello, world!\n\tx",
                                            "caf\xc3\xa9 \xe4\xb8\xad\xf0\x9f\xa4\x97",
                                            "a <x> b<x><y>",
                                            "\xff\xfe not utf-8 \xc3",
                                            std::string("nul\0byte", 8)};
    for (const std::string &s : texts) {
        EXPECT_EQ(t->decode(t->encode(s)), s);
    }
    EXPECT_EQ(t->tokenText(kSpaceA), " a");
    EXPECT_EQ(t->tokenPiece(kSpaceA), byteSymbol(' ') + "a");
    EXPECT_EQ(t->tokenText(kXy), "<x><y>");
    EXPECT_EQ(t->tokenText(0xC3), "\xc3"); // half of a UTF-8 sequence
    EXPECT_EQ(t->tokenText(-1), "");
    EXPECT_EQ(t->tokenPiece(9999), "");
    EXPECT_EQ(t->decode({kAb, -5, 99999, kBc}), "abbc"); // out-of-range ids decode to nothing
    EXPECT_EQ(t->vocabSize(), 265);
}

TEST(TokenizerTiny, BytesMissingFromTheVocabularyAreDropped)
{
    TokenizerData d = tinyData();
    d.tokens['q'] = "unused-q"; // no symbol for the byte 'q' any more
    const auto t = make(d);
    ASSERT_TRUE(t);
    // Like tokenizers' BPE without unk_token: the byte disappears and its neighbours merge.
    EXPECT_EQ(t->encode("aqb"), Ids{kAb});
    EXPECT_EQ(t->encode("q"), Ids{});
}

TEST(TokenizerTiny, PreTokenizerNames)
{
    TokenizerData d = tinyData();
    auto t = make(d);
    EXPECT_EQ(t->warning(), "");
    EXPECT_EQ(t->preTokenize("a 12"), (std::vector<std::string>{"a", " 12"}));

    d.pre = "smollm";
    t = make(d);
    EXPECT_EQ(t->warning(), "");
    EXPECT_EQ(t->preTokenize("a 12"), (std::vector<std::string>{"a", " ", "1", "2"}));

    d.pre = "llama-bpe";
    t = make(d);
    EXPECT_EQ(t->warning(), "");
    EXPECT_EQ(t->preTokenize("a 1234 I'LL"), (std::vector<std::string>{"a", " ", "123", "4", " I", "'LL"}));

    d.pre = "no-such-pre";
    t = make(d);
    ASSERT_TRUE(t);
    EXPECT_NE(t->warning().find("'no-such-pre'"), std::string::npos) << t->warning();
    EXPECT_EQ(t->preTokenize("a 12"), (std::vector<std::string>{"a", " 12"})); // GPT-2 fallback
    EXPECT_EQ(t->encode("abc"), Ids{kAbc});
}

TEST(TokenizerTiny, Llama3SkipsMergesForWholeVocabularyWords)
{
    TokenizerData d = tinyData();
    d.tokens.push_back("xyz"); // reachable by no merge
    d.types.push_back(TokenType::Normal);
    const int64_t xyz = int64_t(d.tokens.size()) - 1;
    auto t = make(d);
    EXPECT_EQ(t->encode("xyz"), bytesOf("xyz"));
    d.pre = "llama-bpe";
    t = make(d);
    EXPECT_EQ(t->encode("xyz"), Ids{xyz});
    EXPECT_EQ(t->encode("abc"), Ids{kAbc});
}

TEST(TokenizerTiny, ConcurrentEncodesAgree)
{
    const auto t = make(tinyData());
    ASSERT_TRUE(t);
    const std::string text = longText(2000);
    const Ids expected = t->encode(text);
    std::vector<Ids> got(4);
    std::vector<std::thread> threads;
    for (size_t i = 0; i < got.size(); ++i) {
        threads.emplace_back([&, i] { got[i] = t->encode(text); });
    }
    for (auto &th : threads) {
        th.join();
    }
    for (const Ids &g : got) {
        EXPECT_EQ(g, expected);
    }
}

// ---- errors ----------------------------------------------------------------------------------------

TEST(TokenizerErrors, BadData)
{
    TokenizerData d = tinyData();
    d.tokens.clear();
    d.types.clear();
    d.merges.clear();
    d.bosId.reset();
    d.eosId.reset();
    expectCreateError(d, ErrorCode::Corrupt, {"empty vocabulary"});

    d = tinyData();
    d.model = "bert";
    expectCreateError(d, ErrorCode::Unsupported, {"'bert'"});

    d = tinyData();
    d.bosId = 265;
    expectCreateError(d, ErrorCode::Corrupt, {"bos", "265", "out of range", "265 tokens"});
    d = tinyData();
    d.padId = -1;
    expectCreateError(d, ErrorCode::Corrupt, {"padding", "-1"});

    d = tinyData();
    d.merges.emplace_back("a", "zz");
    expectCreateError(d, ErrorCode::Corrupt, {"merge 5 'a zz'", "'zz'", "not in the vocabulary"});
    d = tinyData();
    d.merges.emplace_back("c", "d"); // both parts exist, "cd" does not
    expectCreateError(d, ErrorCode::Corrupt, {"merge 5", "'cd'", "not in the vocabulary"});

    d = tinyData();
    d.types.pop_back();
    expectCreateError(d, ErrorCode::Corrupt, {"264 token types for 265 tokens"});
    d = tinyData();
    d.types[3] = static_cast<TokenType>(42);
    expectCreateError(d, ErrorCode::Corrupt, {"token 3", "42"});
}

// ---- JSON ------------------------------------------------------------------------------------------

TEST(TokenizerJson, RoundTripKeepsEveryField)
{
    TokenizerData d = tinyData();
    d.pre = "smollm";
    d.unkId = 0;
    d.padId = kEos;
    d.addBos = true;
    d.addEos = false;
    const auto t = make(d);
    ASSERT_TRUE(t);
    const std::string json = t->toJson();
    const auto back = Tokenizer::fromJson(json, "model.pt:tokenizer.json");
    ASSERT_TRUE(back.ok()) << back.error().message;
    const TokenizerData &e = (*back)->data();
    EXPECT_EQ(e.model, d.model);
    EXPECT_EQ(e.pre, d.pre);
    EXPECT_EQ(e.tokens, d.tokens);
    EXPECT_EQ(e.types, d.types);
    EXPECT_EQ(e.merges, d.merges);
    EXPECT_EQ(e.bosId, d.bosId);
    EXPECT_EQ(e.eosId, d.eosId);
    EXPECT_EQ(e.unkId, d.unkId);
    EXPECT_EQ(e.padId, d.padId);
    EXPECT_EQ(e.addBos, d.addBos);
    EXPECT_EQ(e.addEos, d.addEos);
    const std::string text = "ab 12 <x><y> abc";
    EXPECT_EQ((*back)->encode(text), t->encode(text));

    // Absent optional ids stay absent.
    d.unkId.reset();
    const auto again = Tokenizer::fromJson(make(d)->toJson(), "x");
    ASSERT_TRUE(again.ok());
    EXPECT_FALSE((*again)->data().unkId.has_value());
}

TEST(TokenizerJson, ErrorsNameOriginAndField)
{
    const std::string origin = "model.pt:tokenizer.json";
    const auto expectError = [&](const std::string &json, const std::string &message) {
        const auto t = Tokenizer::fromJson(json, origin);
        ASSERT_FALSE(t.ok()) << json;
        EXPECT_EQ(t.error().message.rfind(origin + ": ", 0), 0u) << t.error().message;
        EXPECT_NE(t.error().message.find(message), std::string::npos) << t.error().message;
    };
    nlohmann::json good = nlohmann::json::parse(make(tinyData())->toJson());

    expectError("{not json", "not valid JSON");
    expectError("[1, 2]", "not a JSON object");
    // Found by fuzzing (tests/fuzz/regressions/tokenizer_archive/number-past-double): nlohmann throws
    // out_of_range, not parse_error, for a number past double, and it escaped fromJson.
    expectError(R"({"version": 1e999})", "not valid JSON");
    auto j = good;
    j["merges"] = "a b";
    expectError(j.dump(), "model.pt:tokenizer.json: field 'merges' must be an array of strings");
    j = good;
    j["merges"] = {"a b", 3};
    expectError(j.dump(), "field 'merges' must be an array of strings");
    j = good;
    j.erase("tokens");
    expectError(j.dump(), "field 'tokens' is missing");
    j = good;
    j["bosId"] = "1";
    expectError(j.dump(), "field 'bosId' must be an integer or null");
    j = good;
    j["types"] = {1, 2, 99};
    expectError(j.dump(), "field 'types' must be an array of token types");
    j = good;
    j["addBos"] = 1;
    expectError(j.dump(), "field 'addBos' must be a boolean");
    j = good;
    j["version"] = 3;
    expectError(j.dump(), "field 'version'");
    // Errors from the data itself carry the origin too.
    j = good;
    j["bosId"] = 100000;
    expectError(j.dump(), "bos token id 100000 is out of range");
    j = good;
    j["model"] = "bert";
    expectError(j.dump(), "'bert'");
}

// ---- GGUF ------------------------------------------------------------------------------------------

class TokenizerGguf : public ::testing::Test
{
protected:
    sst::GgufWriter writerFor(const TokenizerData &d, const std::string &model = "gpt2") const
    {
        sst::GgufWriter w;
        w.addString("general.architecture", "llama");
        w.addString("tokenizer.ggml.model", model);
        w.addString("tokenizer.ggml.pre", d.pre);
        w.addStringArray("tokenizer.ggml.tokens", d.tokens);
        std::vector<int32_t> types;
        for (const TokenType t : d.types) {
            types.push_back(static_cast<int32_t>(t));
        }
        w.addInt32Array("tokenizer.ggml.token_type", types);
        w.addStringArray("tokenizer.ggml.merges", mergeStrings(d.merges));
        w.addUint32("tokenizer.ggml.bos_token_id", uint32_t(*d.bosId));
        w.addUint32("tokenizer.ggml.eos_token_id", uint32_t(*d.eosId));
        w.addUint32("tokenizer.ggml.unknown_token_id", 0);
        w.addUint32("tokenizer.ggml.padding_token_id", uint32_t(*d.eosId));
        w.addBool("tokenizer.ggml.add_bos_token", true);
        w.addBool("tokenizer.ggml.add_eos_token", false);
        return w;
    }

    Result<TokenizerData> read(const sst::GgufWriter &w, const std::string &name = "t.gguf") const
    {
        const std::string path = m_tmp.file(name);
        w.write(path);
        auto file = GgufFile::open(path);
        if (!file) {
            return file.error();
        }
        return Tokenizer::dataFromGguf(**file);
    }

    sst::TempDir m_tmp;
};

TEST_F(TokenizerGguf, ReadsEveryKey)
{
    TokenizerData d = tinyData();
    d.pre = "smollm";
    const auto got = read(writerFor(d));
    ASSERT_TRUE(got.ok()) << got.error().message;
    EXPECT_EQ(got->model, "gpt2");
    EXPECT_EQ(got->pre, "smollm");
    EXPECT_EQ(got->tokens, d.tokens);
    EXPECT_EQ(got->types, d.types);
    EXPECT_EQ(got->merges, d.merges);
    EXPECT_EQ(got->bosId, std::optional<int64_t>(kBos));
    EXPECT_EQ(got->eosId, std::optional<int64_t>(kEos));
    EXPECT_EQ(got->unkId, std::optional<int64_t>(0));
    EXPECT_EQ(got->padId, std::optional<int64_t>(kEos));
    EXPECT_TRUE(got->addBos);
    EXPECT_FALSE(got->addEos);
    const auto t = Tokenizer::create(*got);
    ASSERT_TRUE(t.ok()) << t.error().message;
    EXPECT_EQ((*t)->encode("abc"), (Ids{kBos, kAbc}));
}

TEST_F(TokenizerGguf, UnknownModelIsUnsupported)
{
    const auto got = read(writerFor(tinyData(), "bert"));
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.error().code, ErrorCode::Unsupported);
    EXPECT_EQ(got.error().message.rfind(m_tmp.file("t.gguf") + ": ", 0), 0u) << got.error().message;
    EXPECT_NE(got.error().message.find("'bert'"), std::string::npos) << got.error().message;
}

TEST_F(TokenizerGguf, MissingOrMistypedKeys)
{
    const TokenizerData d = tinyData();
    {
        sst::GgufWriter w;
        w.addString("general.architecture", "llama");
        const auto got = read(w, "none.gguf");
        ASSERT_FALSE(got.ok());
        EXPECT_EQ(got.error().code, ErrorCode::NotAModel);
        EXPECT_NE(got.error().message.find("tokenizer.ggml.model"), std::string::npos) << got.error().message;
    }
    {
        sst::GgufWriter w;
        w.addString("tokenizer.ggml.model", "gpt2");
        w.addStringArray("tokenizer.ggml.tokens", d.tokens);
        const auto got = read(w, "nomerges.gguf");
        ASSERT_FALSE(got.ok());
        EXPECT_EQ(got.error().code, ErrorCode::Corrupt);
        EXPECT_NE(got.error().message.find("tokenizer.ggml.merges"), std::string::npos) << got.error().message;
    }
    {
        sst::GgufWriter w;
        w.addString("tokenizer.ggml.model", "gpt2");
        w.addStringArray("tokenizer.ggml.tokens", d.tokens);
        w.addStringArray("tokenizer.ggml.merges", mergeStrings(d.merges));
        w.addInt32Array("tokenizer.ggml.token_type", {1, 1, 9});
        const auto got = read(w, "types.gguf");
        ASSERT_FALSE(got.ok());
        EXPECT_NE(got.error().message.find("token_type[2] = 9"), std::string::npos) << got.error().message;
    }
    {
        // Optional keys may be absent: pre defaults to "default", no types means all normal.
        sst::GgufWriter w;
        w.addString("tokenizer.ggml.model", "gpt2");
        w.addStringArray("tokenizer.ggml.tokens", d.tokens);
        w.addStringArray("tokenizer.ggml.merges", mergeStrings(d.merges));
        w.addString("tokenizer.ggml.bos_token_id", "one");
        const auto got = read(w, "bos.gguf");
        ASSERT_FALSE(got.ok());
        EXPECT_NE(got.error().message.find("bos_token_id is not an integer"), std::string::npos) << got.error().message;
    }
    {
        sst::GgufWriter w;
        w.addString("tokenizer.ggml.model", "gpt2");
        w.addStringArray("tokenizer.ggml.tokens", d.tokens);
        w.addStringArray("tokenizer.ggml.merges", mergeStrings(d.merges));
        const auto got = read(w, "minimal.gguf");
        ASSERT_TRUE(got.ok()) << got.error().message;
        EXPECT_EQ(got->pre, "default");
        EXPECT_TRUE(got->types.empty());
        EXPECT_FALSE(got->bosId.has_value());
        EXPECT_FALSE(got->addBos);
        const auto t = Tokenizer::create(*got);
        ASSERT_TRUE(t.ok()) << t.error().message;
        EXPECT_EQ((*t)->encode("<x>abc"), (Ids{'<', 'x', '>', kAbc})); // no types: nothing is special
    }
}

// ---- pre-tokenizer goldens (Hugging Face tokenizers) -----------------------------------------------

TEST(TokenizerPreTokenizerGolden, MatchesHuggingFaceSplits)
{
    const nlohmann::json doc = readJson(sst::testDataDir() + "/tokenizer/pretokenizer_golden.json");
    ASSERT_GE(doc["cases"].size(), 300u);
    for (const char *pre : {"gpt2", "smollm", "llama-bpe", "qwen2", "gpt-4o"}) {
        TokenizerData d = tinyData();
        d.pre = pre;
        const auto t = make(d);
        ASSERT_TRUE(t);
        int failures = 0;
        for (const auto &c : doc["cases"]) {
            const std::string text = c["text"];
            const auto expected = c["pieces"][pre].get<std::vector<std::string>>();
            const auto got = t->preTokenize(text);
            if (got != expected && ++failures <= 10) {
                ADD_FAILURE() << pre << ": " << nlohmann::json(text).dump() << "\n  expected "
                              << nlohmann::json(expected).dump() << "\n  got      " << nlohmann::json(got).dump();
            }
        }
        EXPECT_EQ(failures, 0) << pre;
    }
}

TEST(TokenizerPreTokenizerGolden, NfcMatchesHuggingFace)
{
    const nlohmann::json doc = readJson(sst::testDataDir() + "/tokenizer/pretokenizer_golden.json");
    ASSERT_GE(doc["nfc"].size(), 300u);
    TokenizerData d = tinyData();
    d.normalizers = std::vector<NormalizerStep>{NormalizerStep{.kind = NormalizerStep::Kind::Nfc}};
    d.preTokenizers = std::vector<PreTokenizerStep>{};
    const auto t = make(d);
    ASSERT_TRUE(t);
    int failures = 0;
    for (const auto &c : doc["nfc"]) {
        const std::string text = c["text"];
        const std::string want = c["nfc"];
        const auto pieces = t->preTokenize(text);
        const std::string got = pieces.empty() ? std::string() : pieces.front();
        if ((got != want || pieces.size() > 1) && ++failures <= 10) {
            ADD_FAILURE() << nlohmann::json(text).dump() << "\n  expected " << nlohmann::json(want).dump()
                          << "\n  got      " << nlohmann::json(got).dump();
        }
    }
    EXPECT_EQ(failures, 0);
}

// ---- the default model (SmolLM2) -----------------------------------------------------------------

class TokenizerSmolLM2 : public ::testing::Test
{
protected:
    static void SetUpTestSuite()
    {
        const std::string path = sst::smollm2GgufPath();
        if (path.empty()) {
            return;
        }
        auto file = GgufFile::open(path);
        ASSERT_TRUE(file.ok()) << file.error().message;
        auto data = Tokenizer::dataFromGguf(**file);
        ASSERT_TRUE(data.ok()) << data.error().message;
        auto t = Tokenizer::create(std::move(data).value());
        ASSERT_TRUE(t.ok()) << t.error().message;
        s_tokenizer = std::move(t).value();
    }
    static void TearDownTestSuite() { s_tokenizer.reset(); }

    void SetUp() override
    {
        if (!s_tokenizer) {
            GTEST_SKIP() << "default model not installed (set SINKSCOPE_MODEL_DIR)";
        }
    }

    static std::shared_ptr<const Tokenizer> s_tokenizer;
};

std::shared_ptr<const Tokenizer> TokenizerSmolLM2::s_tokenizer;

TEST_F(TokenizerSmolLM2, DataFromGguf)
{
    const TokenizerData &d = s_tokenizer->data();
    EXPECT_EQ(d.model, "gpt2");
    EXPECT_EQ(d.pre, "smollm");
    EXPECT_EQ(d.tokens.size(), 49152u);
    EXPECT_EQ(d.merges.size(), 48900u);
    EXPECT_EQ(d.bosId, std::optional<int64_t>(1));
    EXPECT_EQ(d.eosId, std::optional<int64_t>(2));
    EXPECT_FALSE(d.addBos);
    EXPECT_EQ(s_tokenizer->warning(), "");
    EXPECT_EQ(s_tokenizer->tokenPiece(1), "<|im_start|>");
    EXPECT_TRUE(s_tokenizer->isSpecial(1));
    EXPECT_FALSE(s_tokenizer->isSpecial(17));
}

TEST_F(TokenizerSmolLM2, MatchesGoldenIds)
{
    const nlohmann::json doc = readJson(sst::testDataDir() + "/tokenizer/smollm2_golden.json");
    ASSERT_GE(doc["cases"].size(), 40u);
    const int64_t bos = doc["bosId"];
    ASSERT_EQ(s_tokenizer->data().bosId, std::optional<int64_t>(bos));
    for (const auto &c : doc["cases"]) {
        const std::string text = c["text"];
        const std::string shown = nlohmann::json(text).dump().substr(0, 80);
        EXPECT_EQ(s_tokenizer->encode(text), c["ids"].get<Ids>()) << shown;
        EXPECT_EQ(s_tokenizer->encode(text, EncodeOptions{.addBos = true}), c["idsBos"].get<Ids>()) << shown;
        if (c.contains("idsNoSpecial")) {
            EXPECT_EQ(s_tokenizer->encode(text, EncodeOptions{.parseSpecial = false}), c["idsNoSpecial"].get<Ids>())
                << shown;
        }
        if (c.value("roundTrips", true)) {
            EXPECT_EQ(s_tokenizer->decode(c["ids"].get<Ids>()), text) << shown;
        }
    }
}

TEST_F(TokenizerSmolLM2, LongTextsEncodeQuicklyAndRoundTrip)
{
    const std::string text = longText(10000);
    const auto start = std::chrono::steady_clock::now();
    const Ids ids = s_tokenizer->encode(text);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(s_tokenizer->decode(ids), text);
    EXPECT_GT(ids.size(), 10000u);
    EXPECT_LT(ids.size(), 20000u);
    // Typically ~10 ms; the bound only catches a quadratic merge loop (which takes minutes), with
    // room for sanitizer and debug builds.
    EXPECT_LT(seconds, 5.0) << ids.size() << " tokens";

    // One 100k-byte "word": a single pre-token stresses the merge queue.
    std::string word;
    std::mt19937 rng(3);
    for (int i = 0; i < 100000; ++i) {
        word += char('a' + rng() % 26);
    }
    const auto wordStart = std::chrono::steady_clock::now();
    const Ids wordIds = s_tokenizer->encode(word);
    const double wordSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - wordStart).count();
    EXPECT_EQ(s_tokenizer->decode(wordIds), word);
    EXPECT_LT(wordSeconds, 5.0) << wordIds.size() << " tokens";
}
