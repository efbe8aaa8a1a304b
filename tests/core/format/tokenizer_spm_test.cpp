// SentencePiece-style BPE ("llama") on a tiny hand-made vocabulary: merges rebuilt from scores, byte
// fallback, unknown characters, the "▁" prefix policy, decoding, and reading it from GGUF.
#include "sinkscope/format/gguf.h"
#include "sinkscope/tokenizer/tokenizer.h"
#include "support/gguf_writer.h"
#include "support/test_paths.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace sinkscope;
namespace sst = sinkscope::testing;

namespace {

using Ids = std::vector<int64_t>;
const std::string kSp = "\xE2\x96\x81"; // "▁"

// 0 <unk>  1 <s>  2 </s>  3..258 <0x00>..<0xFF>, then the pieces below with their scores.
constexpr int64_t kUnk = 0, kBos = 1, kEos = 2, kByte0 = 3;
constexpr int64_t kSpace = 259, kA = 260, kB = 261, kC = 262, kSpaceA = 263, kAb = 264, kAbc = 265, kBc = 266,
                  kSpaceAbc = 267, kTurn = 268;

TokenizerData spmData()
{
    TokenizerData d;
    d.model = "llama";
    d.tokens = {"<unk>", "<s>", "</s>"};
    d.types = {TokenType::Unknown, TokenType::Control, TokenType::Control};
    d.scores = {0, 0, 0};
    static const char *hex = "0123456789ABCDEF";
    for (int b = 0; b < 256; ++b) {
        d.tokens.push_back(std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">");
        d.types.push_back(TokenType::Byte);
        d.scores.push_back(0);
    }
    // Higher score merges first: "b c" (-1) beats "a b" (-2), so "abc" is a + bc -> abc.
    const std::vector<std::pair<std::string, float>> pieces = {{kSp, -10},        {"a", -11},   {"b", -12},  {"c", -13},
                                                               {kSp + "a", -3},   {"ab", -2},   {"abc", -4}, {"bc", -1},
                                                               {kSp + "abc", -5}, {"<turn>", 0}};
    for (const auto &[piece, score] : pieces) {
        d.tokens.push_back(piece);
        d.types.push_back(TokenType::Normal);
        d.scores.push_back(score);
    }
    d.types[kTurn] = TokenType::UserDefined;
    d.bosId = kBos;
    d.eosId = kEos;
    d.unkId = kUnk;
    d.addBos = true;
    d.byteFallback = true;
    d.fuseUnk = true;
    d.addSpacePrefix = true;
    return d;
}

std::shared_ptr<const Tokenizer> make(TokenizerData d)
{
    auto t = Tokenizer::create(std::move(d));
    EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().message);
    return t.ok() ? std::move(t).value() : nullptr;
}

} // namespace

TEST(TokenizerSpm, MergesFollowScoresWhenTheDataHasNone)
{
    const auto t = make(spmData());
    ASSERT_TRUE(t);
    const EncodeOptions noBos{.addBos = false};
    // "▁abc": b+c (best score) first, then a+bc, then ▁+abc.
    EXPECT_EQ(t->encode("abc", noBos), Ids{kSpaceAbc});
    // "a b" (-2) beats "▁ a" (-3), and "▁ab" is no piece.
    EXPECT_EQ(t->encode("ab", noBos), (Ids{kSpace, kAb}));
    EXPECT_EQ(t->encode("abc"), (Ids{kBos, kSpaceAbc}));
    // A space inside the text is "▁" too; no prefix after the start of the input.
    EXPECT_EQ(t->encode("abc abc", noBos), (Ids{kSpaceAbc, kSpaceAbc}));
}

TEST(TokenizerSpm, ByteFallbackUnknownAndPrefixPolicy)
{
    TokenizerData d = spmData();
    auto t = make(d);
    ASSERT_TRUE(t);
    const EncodeOptions noBos{.addBos = false};
    // "é" is not a piece: its UTF-8 bytes as <0xC3><0xA9>.
    EXPECT_EQ(t->encode("\xC3\xA9", noBos), (Ids{kSpace, kByte0 + 0xC3, kByte0 + 0xA9}));
    EXPECT_EQ(t->decode(t->encode("\xC3\xA9 abc", noBos)), "\xC3\xA9 abc");
    // Without byte fallback, unknown characters become one fused <unk>.
    d.byteFallback = false;
    t = make(d);
    EXPECT_EQ(t->encode("\xC3\xA9\xC3\xA9x", noBos), (Ids{kSpace, kUnk}));
    // Without the prefix space (Gemma), "abc" has no "▁".
    d = spmData();
    d.addSpacePrefix = false;
    t = make(d);
    EXPECT_EQ(t->encode("abc", noBos), Ids{kAbc});
    EXPECT_EQ(t->decode({kSpaceAbc}), " abc"); // nothing stripped either
}

TEST(TokenizerSpm, DecodeStripsThePrefixSpaceOnceAndKeepsAddedTokens)
{
    const auto t = make(spmData());
    ASSERT_TRUE(t);
    EXPECT_EQ(t->decode({kSpaceAbc, kSpaceA}), "abc a");
    EXPECT_EQ(t->decode({kBos, kSpaceAbc}), "<s> abc"); // Strip looks at the whole text, which starts "<s>"
    EXPECT_EQ(t->tokenText(kSpaceAbc), " abc");
    EXPECT_EQ(t->tokenText(kByte0 + 0x41), "A");
    // User-defined tokens match whole, even without parseSpecial; control tokens only with it.
    EXPECT_EQ(t->encode("abc<turn>", EncodeOptions{.addBos = false, .parseSpecial = false}), (Ids{kSpaceAbc, kTurn}));
    EXPECT_EQ(t->encode("<s>", EncodeOptions{.addBos = false}), Ids{kBos});
    EXPECT_NE(t->encode("<s>", EncodeOptions{.addBos = false, .parseSpecial = false}), Ids{kBos});
}

TEST(TokenizerSpm, MetaspaceDecoderDropsTheFirstTokensReplacementCharacters)
{
    TokenizerData d = spmData();
    d.tokens.push_back(kSp + kSp);
    d.types.push_back(TokenType::Normal);
    d.scores.push_back(-20);
    const int64_t spSp = int64_t(d.tokens.size()) - 1;
    DecoderStep metaspace;
    metaspace.kind = DecoderStep::Kind::Metaspace;
    metaspace.prependScheme = PrependScheme::First;
    DecoderStep fallback;
    fallback.kind = DecoderStep::Kind::ByteFallback;
    d.decoders = std::vector<DecoderStep>{metaspace, fallback};
    auto t = make(d);
    ASSERT_TRUE(t);
    // tokenizers' Metaspace decoder: in token 0 every "▁" goes, elsewhere each is a space.
    EXPECT_EQ(t->decode({spSp, kSpaceAbc}), " abc");
    EXPECT_EQ(t->decode({kSpaceAbc, spSp}), "abc  ");
    EXPECT_EQ(t->decode({kByte0 + 'x', spSp}), "x  ");
    EXPECT_EQ(t->tokenText(spSp), "  ");
    d.decoders->front().prependScheme = PrependScheme::Never;
    t = make(d);
    EXPECT_EQ(t->decode({spSp, kSpaceAbc}), "   abc");
}

TEST(TokenizerSpm, GgufReadsScoresAndTheSpacePrefixFlag)
{
    const TokenizerData d = spmData();
    sst::TempDir tmp;
    for (const bool prefix : {true, false}) {
        sst::GgufWriter w;
        w.addString("general.architecture", "llama");
        w.addString("tokenizer.ggml.model", "llama");
        w.addStringArray("tokenizer.ggml.tokens", d.tokens);
        w.addFloat32Array("tokenizer.ggml.scores", d.scores);
        std::vector<int32_t> types;
        for (const TokenType t : d.types) {
            types.push_back(static_cast<int32_t>(t));
        }
        w.addInt32Array("tokenizer.ggml.token_type", types);
        w.addUint32("tokenizer.ggml.bos_token_id", 1);
        w.addUint32("tokenizer.ggml.unknown_token_id", 0);
        w.addBool("tokenizer.ggml.add_space_prefix", prefix);
        const std::string path = tmp.file(prefix ? "prefix.gguf" : "noprefix.gguf");
        w.write(path);
        auto file = GgufFile::open(path);
        ASSERT_TRUE(file.ok()) << file.error().message;
        const auto got = Tokenizer::dataFromGguf(**file);
        ASSERT_TRUE(got.ok()) << got.error().message;
        EXPECT_EQ(got->model, "llama");
        EXPECT_EQ(got->scores, d.scores);
        EXPECT_TRUE(got->merges.empty()); // rebuilt from the scores by create()
        EXPECT_TRUE(got->addBos);         // a SentencePiece file without the flag gets BOS (llama.cpp)
        EXPECT_TRUE(got->byteFallback);
        EXPECT_EQ(got->addSpacePrefix, prefix);
        const auto t = make(*got);
        ASSERT_TRUE(t);
        EXPECT_EQ(t->encode("abc"), (Ids{kBos, prefix ? kSpaceAbc : kAbc}));
    }
    {
        sst::GgufWriter w;
        w.addString("tokenizer.ggml.model", "llama");
        w.addStringArray("tokenizer.ggml.tokens", d.tokens);
        const std::string path = tmp.file("noscores.gguf");
        w.write(path);
        auto file = GgufFile::open(path);
        ASSERT_TRUE(file.ok());
        const auto got = Tokenizer::dataFromGguf(**file);
        ASSERT_FALSE(got.ok());
        EXPECT_EQ(got.error().message.rfind(path + ": ", 0), 0u) << got.error().message;
        EXPECT_NE(got.error().message.find("tokenizer.ggml.scores"), std::string::npos) << got.error().message;
    }
}

TEST(TokenizerSpm, ArchiveJsonOfVersionOneLoadsAsBefore)
{
    // Written by SinkScope before the pipeline keys existed: merges as "left right", no scores.
    const std::string v1 = R"({"version":1,"model":"gpt2","pre":"gpt2","tokens":["a","b","ab","Ġ","Ġab"],)"
                           R"("types":[1,1,1,1,1],"merges":["a b","Ġ ab"],"bosId":null,"eosId":null,)"
                           R"("unkId":null,"padId":null,"addBos":false,"addEos":false})";
    const auto t = Tokenizer::fromJson(v1, "old.pt:tokenizer.json");
    ASSERT_TRUE(t.ok()) << t.error().message;
    EXPECT_EQ((*t)->encode("ab ab"), (Ids{2, 4}));
    EXPECT_EQ((*t)->decode({2, 4}), "ab ab");
    EXPECT_FALSE((*t)->data().preTokenizers.has_value());
    EXPECT_FALSE((*t)->data().addedTokens.has_value());
}
