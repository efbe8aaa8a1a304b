// Tokenizers of the model families beyond SmolLM2: golden ids from Hugging Face tokenizers /
// transformers (tools/make_tokenizer_golden.py) for small tokenizer.json files shaped like each
// family's, and for the real Gemma 3 270M GGUF when it is installed.
#include "sinkscope/format/gguf.h"
#include "sinkscope/tokenizer/tokenizer.h"
#include "support/test_paths.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using namespace sinkscope;
namespace sst = sinkscope::testing;
namespace fs = std::filesystem;

namespace {

using Ids = std::vector<int64_t>;

nlohmann::json readJson(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    EXPECT_TRUE(in.good()) << "cannot read " << path;
    std::stringstream ss;
    ss << in.rdbuf();
    return nlohmann::json::parse(ss.str());
}

// The Gemma 3 270M GGUF: $SINKSCOPE_GEMMA3_GGUF, else <repo>/.deps/models/gemma-3-270m-q4_k_m.gguf
// (where tools/setup.sh puts it). Empty when absent.
std::string gemma3GgufPath()
{
    if (const char *p = std::getenv("SINKSCOPE_GEMMA3_GGUF"); p && *p) {
        return fs::exists(p) ? std::string(p) : std::string();
    }
    const fs::path p = fs::path(sst::testDataDir()) / ".." / ".." / ".deps" / "models" / "gemma-3-270m-q4_k_m.gguf";
    return fs::exists(p) ? fs::canonical(p).string() : std::string();
}

std::string show(const std::string &text)
{
    return nlohmann::json(text).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
}

// Compares every case of a golden file; reports at most 10 mismatches in detail.
void expectGolden(const Tokenizer &t, const nlohmann::json &doc, const std::string &name)
{
    int failures = 0;
    int checked = 0;
    const auto expectIds = [&](const std::string &what, const std::string &text, const Ids &got, const Ids &want) {
        ++checked;
        if (got != want && ++failures <= 10) {
            ADD_FAILURE() << name << " " << what << " " << show(text) << "\n  expected " << nlohmann::json(want).dump()
                          << "\n  got      " << nlohmann::json(got).dump();
        }
    };
    std::optional<int64_t> bos;
    if (doc.contains("bosId") && !doc["bosId"].is_null()) {
        bos = doc["bosId"].get<int64_t>();
    }
    for (const auto &c : doc["cases"]) {
        const std::string text = c["text"].get<std::string>();
        const Ids ids = c["ids"].get<Ids>();
        expectIds("ids", text, t.encode(text, EncodeOptions{.addBos = false}), ids);
        if (c.contains("idsWithSpecials")) {
            // The tokenizer's own policy: BOS/EOS as its post-processor adds them.
            expectIds("idsWithSpecials", text, t.encode(text), c["idsWithSpecials"].get<Ids>());
        } else if (bos) {
            Ids withBos = {*bos};
            withBos.insert(withBos.end(), ids.begin(), ids.end());
            expectIds("idsBos", text, t.encode(text, EncodeOptions{.addBos = true}), withBos);
        }
        if (c.contains("idsNoSpecial")) {
            expectIds("idsNoSpecial", text, t.encode(text, EncodeOptions{.addBos = false, .parseSpecial = false}),
                      c["idsNoSpecial"].get<Ids>());
        }
        const bool roundTrips = c.value("roundTrips", true);
        if (roundTrips) {
            ++checked;
            const std::string back = t.decode(ids);
            if (back != text && ++failures <= 10) {
                ADD_FAILURE() << name << " decode " << show(text) << " gave " << show(back);
            }
        }
        if (c.contains("decoded")) {
            ++checked;
            EXPECT_EQ(t.decode(ids), c["decoded"].get<std::string>()) << name << " decode " << show(text);
        }
    }
    EXPECT_EQ(failures, 0) << name << ": " << failures << " of " << checked << " checks failed";
    EXPECT_GE(doc["cases"].size(), 40u) << name;
}

} // namespace

// ---- Gemma 3 from GGUF (SentencePiece BPE, merges rebuilt from the vocabulary) ----------------------

class TokenizerGemma3Gguf : public ::testing::Test
{
protected:
    static void SetUpTestSuite()
    {
        const std::string path = gemma3GgufPath();
        if (path.empty()) {
            return;
        }
        auto file = GgufFile::open(path);
        ASSERT_TRUE(file.ok()) << file.error().message;
        const auto start = std::chrono::steady_clock::now();
        auto data = Tokenizer::dataFromGguf(**file);
        ASSERT_TRUE(data.ok()) << data.error().message;
        auto t = Tokenizer::create(std::move(data).value());
        ASSERT_TRUE(t.ok()) << t.error().message;
        s_loadSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        s_tokenizer = std::move(t).value();
    }
    static void TearDownTestSuite() { s_tokenizer.reset(); }

    void SetUp() override
    {
        if (!s_tokenizer) {
            GTEST_SKIP() << "Gemma 3 270M GGUF not installed (set SINKSCOPE_GEMMA3_GGUF or put "
                            "gemma-3-270m-q4_k_m.gguf in .deps/models)";
        }
    }

    static std::shared_ptr<const Tokenizer> s_tokenizer;
    static double s_loadSeconds;
};

std::shared_ptr<const Tokenizer> TokenizerGemma3Gguf::s_tokenizer;
double TokenizerGemma3Gguf::s_loadSeconds = 0;

TEST_F(TokenizerGemma3Gguf, DataFromGguf)
{
    const TokenizerData &d = s_tokenizer->data();
    EXPECT_EQ(d.model, "llama");
    EXPECT_EQ(d.tokens.size(), 262144u);
    EXPECT_EQ(d.scores.size(), 262144u);
    EXPECT_EQ(d.bosId, std::optional<int64_t>(2));
    EXPECT_EQ(d.eosId, std::optional<int64_t>(1));
    EXPECT_TRUE(d.addBos);
    EXPECT_FALSE(d.addSpacePrefix);
    EXPECT_TRUE(d.byteFallback);
    // Rebuilt as transformers does: 514,906 merges, the first joining newlines (file order).
    EXPECT_EQ(d.merges.size(), 514906u);
    ASSERT_FALSE(d.merges.empty());
    EXPECT_EQ(d.merges[0], (std::pair<std::string, std::string>{"\n", "\n"}));
    // Tokens of real spaces are respelled with "▁" and are no longer matched whole.
    EXPECT_EQ(d.tokens[138], "\xE2\x96\x81\xE2\x96\x81");
    EXPECT_EQ(d.types[138], TokenType::Normal);
    EXPECT_EQ(s_tokenizer->tokenPiece(105), "<start_of_turn>");
    EXPECT_TRUE(s_tokenizer->isSpecial(105));
    EXPECT_EQ(s_tokenizer->tokenText(236743), " ");
    EXPECT_LT(s_loadSeconds, 20.0) << "building the Gemma 3 tokenizer took " << s_loadSeconds << " s";
}

TEST_F(TokenizerGemma3Gguf, MatchesGoldenIds)
{
    const nlohmann::json doc = readJson(sst::testDataDir() + "/tokenizer/gemma3_gguf_golden.json");
    expectGolden(*s_tokenizer, doc, "gemma3-gguf");
}

TEST_F(TokenizerGemma3Gguf, ArchiveJsonRoundTrip)
{
    const auto back = Tokenizer::fromJson(s_tokenizer->toJson(), "gemma3.pt:tokenizer.json");
    ASSERT_TRUE(back.ok()) << back.error().message;
    const TokenizerData &a = s_tokenizer->data();
    const TokenizerData &b = (*back)->data();
    EXPECT_EQ(a.tokens, b.tokens);
    EXPECT_EQ(a.merges, b.merges);
    EXPECT_EQ(a.scores, b.scores);
    EXPECT_EQ(a.types, b.types);
    const std::string text = "<start_of_turn>user\nHi  there, 日本語 \xF0\x9F\xA4\x97<end_of_turn>\n";
    EXPECT_EQ((*back)->encode(text), s_tokenizer->encode(text));
    EXPECT_EQ((*back)->decode(s_tokenizer->encode(text, EncodeOptions{.addBos = false})), text);
}

// ---- tokenizer.json kinds (tests/data/tokenizer/<kind>/) ---------------------------------------------

class TokenizerJsonKind : public ::testing::TestWithParam<const char *>
{
protected:
    std::string dir() const { return sst::testDataDir() + "/tokenizer/" + GetParam(); }
    std::shared_ptr<const Tokenizer> load() const
    {
        auto data = Tokenizer::dataFromTokenizerJson(dir() + "/tokenizer.json", dir() + "/tokenizer_config.json");
        EXPECT_TRUE(data.ok()) << data.error().message;
        if (!data.ok()) {
            return nullptr;
        }
        auto t = Tokenizer::create(std::move(data).value());
        EXPECT_TRUE(t.ok()) << t.error().message;
        return t.ok() ? std::move(t).value() : nullptr;
    }
};

TEST_P(TokenizerJsonKind, MatchesGoldenIds)
{
    const auto t = load();
    ASSERT_TRUE(t);
    expectGolden(*t, readJson(dir() + "/golden.json"), GetParam());
}

TEST_P(TokenizerJsonKind, ArchiveJsonRoundTripKeepsTheIds)
{
    const auto t = load();
    ASSERT_TRUE(t);
    const auto back = Tokenizer::fromJson(t->toJson(), std::string(GetParam()) + ".pt:tokenizer.json");
    ASSERT_TRUE(back.ok()) << back.error().message;
    const TokenizerData &a = t->data();
    const TokenizerData &b = (*back)->data();
    EXPECT_EQ(a.model, b.model);
    EXPECT_EQ(a.tokens, b.tokens);
    EXPECT_EQ(a.types, b.types);
    EXPECT_EQ(a.merges, b.merges);
    EXPECT_EQ(a.bosId, b.bosId);
    EXPECT_EQ(a.eosId, b.eosId);
    EXPECT_EQ(a.unkId, b.unkId);
    EXPECT_EQ(a.padId, b.padId);
    EXPECT_EQ(a.addBos, b.addBos);
    EXPECT_EQ(a.addEos, b.addEos);
    EXPECT_EQ(a.byteFallback, b.byteFallback);
    EXPECT_EQ(a.fuseUnk, b.fuseUnk);
    EXPECT_EQ(a.ignoreMerges, b.ignoreMerges);
    ASSERT_TRUE(b.normalizers && b.preTokenizers && b.decoders && b.addedTokens);
    EXPECT_EQ(a.normalizers->size(), b.normalizers->size());
    EXPECT_EQ(a.preTokenizers->size(), b.preTokenizers->size());
    EXPECT_EQ(a.decoders->size(), b.decoders->size());
    EXPECT_EQ(a.addedTokens->size(), b.addedTokens->size());
    // Same behaviour on every golden text, both ways.
    const nlohmann::json golden = readJson(dir() + "/golden.json"); // kept alive: the loop reads into it
    for (const auto &c : golden["cases"]) {
        const std::string text = c["text"];
        const Ids ids = t->encode(text);
        EXPECT_EQ((*back)->encode(text), ids) << show(text);
        EXPECT_EQ((*back)->encode(text, EncodeOptions{.parseSpecial = false}),
                  t->encode(text, EncodeOptions{.parseSpecial = false}))
            << show(text);
        EXPECT_EQ((*back)->decode(ids), t->decode(ids)) << show(text);
    }
}

INSTANTIATE_TEST_SUITE_P(Families, TokenizerJsonKind,
                         ::testing::Values("qwen2", "llama3", "neox", "gpt_oss", "gemma", "mistral", "llama2_legacy"),
                         [](const ::testing::TestParamInfo<const char *> &param) { return std::string(param.param); });
