// Tokenizer::dataFromTokenizerJson on hand-made tokenizer.json files: what it reads, and that every
// problem (bad JSON, a component it does not implement, a broken vocabulary) is an error naming the
// file and the component.
#include "sinkscope/tokenizer/tokenizer.h"
#include "support/test_paths.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <string>
#include <vector>

using namespace sinkscope;
namespace sst = sinkscope::testing;
using nlohmann::json;

namespace {

using Ids = std::vector<int64_t>;

// A byte-level BPE over "a", "b", "Ġ" with two merges and one special token.
json minimal()
{
    return json::parse(R"({
      "version": "1.0", "truncation": null, "padding": null,
      "added_tokens": [{"id": 5, "content": "<|end|>", "single_word": false, "lstrip": false,
                        "rstrip": false, "normalized": false, "special": true}],
      "normalizer": null,
      "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
      "post_processor": null,
      "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
      "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                "vocab": {"a": 0, "b": 1, "Ġ": 2, "ab": 3, "Ġab": 4},
                "merges": ["a b", ["Ġ", "ab"]]}
    })");
}

class TokenizerJsonFile : public ::testing::Test
{
protected:
    std::string write(const std::string &name, const std::string &text) const
    {
        const std::string path = m_tmp.file(name);
        std::ofstream(path, std::ios::binary) << text;
        return path;
    }
    Result<TokenizerData> load(const json &j, const json &config = nullptr) const
    {
        const std::string path = write("tokenizer.json", j.dump());
        const std::string configPath = config.is_null() ? "" : write("tokenizer_config.json", config.dump());
        return Tokenizer::dataFromTokenizerJson(path, configPath);
    }
    // The load fails with `code`, the message starts with the file's path and holds every fragment.
    void expectError(const json &j, ErrorCode code, std::initializer_list<std::string> fragments,
                     const json &config = nullptr, const std::string &file = "tokenizer.json") const
    {
        const auto got = load(j, config);
        ASSERT_FALSE(got.ok()) << j.dump().substr(0, 200);
        EXPECT_EQ(got.error().code, code) << errorCodeName(got.error().code) << ": " << got.error().message;
        EXPECT_EQ(got.error().message.rfind(m_tmp.file(file) + ": ", 0), 0u) << got.error().message;
        EXPECT_EQ(got.error().message.find('\n'), std::string::npos) << got.error().message;
        for (const std::string &f : fragments) {
            EXPECT_NE(got.error().message.find(f), std::string::npos)
                << "'" << f << "' missing from: " << got.error().message;
        }
    }

    sst::TempDir m_tmp;
};

} // namespace

TEST_F(TokenizerJsonFile, ReadsAMinimalByteLevelBpe)
{
    const auto data = load(minimal());
    ASSERT_TRUE(data.ok()) << data.error().message;
    EXPECT_EQ(data->model, "gpt2");
    EXPECT_EQ(data->tokens.size(), 6u);
    EXPECT_EQ(data->merges.size(), 2u);
    EXPECT_EQ(data->types[5], TokenType::Control);
    EXPECT_FALSE(data->addBos);
    const auto t = Tokenizer::create(*data);
    ASSERT_TRUE(t.ok()) << t.error().message;
    EXPECT_EQ((*t)->encode("ab ab<|end|>"), (Ids{3, 4, 5}));
    EXPECT_EQ((*t)->decode({3, 4, 5}), "ab ab<|end|>");
}

TEST_F(TokenizerJsonFile, ConfigSetsTheBosPolicyAndNamesTokens)
{
    json j = minimal();
    j["post_processor"] = json::parse(R"({"type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<|end|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [], "special_tokens": {"<|end|>": {"id": "<|end|>", "ids": [5], "tokens": ["<|end|>"]}}})");
    auto data = load(j);
    ASSERT_TRUE(data.ok()) << data.error().message;
    EXPECT_TRUE(data->addBos);
    EXPECT_EQ(data->bosId, std::optional<int64_t>(5));
    // add_bos_token in the config overrides the template; eos_token names an id.
    data = load(j, {{"add_bos_token", false}, {"eos_token", {{"content", "<|end|>"}}}, {"pad_token", "a"}});
    ASSERT_TRUE(data.ok()) << data.error().message;
    EXPECT_FALSE(data->addBos);
    EXPECT_EQ(data->eosId, std::optional<int64_t>(5));
    EXPECT_EQ(data->padId, std::optional<int64_t>(0));
    // A missing config file is no error (it is optional).
    const auto none = Tokenizer::dataFromTokenizerJson(write("t2.json", minimal().dump()), m_tmp.file("absent.json"));
    EXPECT_TRUE(none.ok()) << none.error().message;
}

TEST_F(TokenizerJsonFile, GarbageAndMissingFiles)
{
    const std::string path = write("tokenizer.json", "{ this is not json");
    auto got = Tokenizer::dataFromTokenizerJson(path);
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.error().code, ErrorCode::Corrupt);
    EXPECT_EQ(got.error().message.rfind(path + ": not valid JSON", 0), 0u) << got.error().message;

    got = Tokenizer::dataFromTokenizerJson(m_tmp.file("missing.json"));
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.error().code, ErrorCode::Io);
    EXPECT_NE(got.error().message.find("missing.json"), std::string::npos) << got.error().message;

    expectError(json::array({1, 2}), ErrorCode::Corrupt, {"not a JSON object"});
}

TEST_F(TokenizerJsonFile, UnimplementedComponentsAreNamed)
{
    json j = minimal();
    j["model"]["type"] = "WordPiece";
    expectError(j, ErrorCode::Unsupported, {"model 'WordPiece'"});
    j = minimal();
    j["model"]["type"] = "Unigram";
    expectError(j, ErrorCode::Unsupported, {"model 'Unigram'"});
    j = minimal();
    j["pre_tokenizer"] = {{"type", "Whitespace"}};
    expectError(j, ErrorCode::Unsupported, {"pre_tokenizer 'Whitespace'"});
    j = minimal();
    j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", {{{"type", "Punctuation"}}}}};
    expectError(j, ErrorCode::Unsupported, {"pre_tokenizer 'Punctuation'"});
    j = minimal();
    j["normalizer"] = {{"type", "Sequence"}, {"normalizers", {{{"type", "NFC"}}, {{"type", "Lowercase"}}}}};
    expectError(j, ErrorCode::Unsupported, {"normalizer 'Lowercase'"});
    j = minimal();
    j["decoder"] = {{"type", "WordPiece"}, {"prefix", "##"}};
    expectError(j, ErrorCode::Unsupported, {"decoder 'WordPiece'"});
    j = minimal();
    j["post_processor"] = {{"type", "RobertaProcessing"}};
    expectError(j, ErrorCode::Unsupported, {"post_processor 'RobertaProcessing'"});
    j = minimal();
    j["pre_tokenizer"] = json::parse(R"({"type": "Split", "pattern": {"Regex": "\\w+|[^\\w\\s]+"},
                                         "behavior": "Isolated", "invert": false})");
    expectError(j, ErrorCode::Unsupported, {"Split", R"(\\w+|[^\\w\\s]+)", "regex"});
    j = minimal();
    j["normalizer"] = json::parse(R"({"type": "Replace", "pattern": {"Regex": " +"}, "content": " "})");
    expectError(j, ErrorCode::Unsupported, {"normalizer Replace", "regex"});
    j = minimal();
    j["model"]["continuing_subword_prefix"] = "##";
    expectError(j, ErrorCode::Unsupported, {"continuing_subword_prefix"});
    j = minimal();
    j["added_tokens"][0]["single_word"] = true;
    expectError(j, ErrorCode::Unsupported, {"single_word", "<|end|>"});
}

TEST_F(TokenizerJsonFile, BrokenVocabularies)
{
    json j = minimal();
    j["model"].erase("vocab");
    expectError(j, ErrorCode::Corrupt, {"model BPE", "'vocab'"});
    j = minimal();
    j.erase("model");
    expectError(j, ErrorCode::Corrupt, {"'model'"});
    j = minimal();
    j["model"]["merges"] = {"a zz"};
    expectError(j, ErrorCode::Corrupt, {"merge 0 'a zz'", "'zz'", "not in the vocabulary"});
    j = minimal();
    j["model"]["merges"] = {"a b c"};
    expectError(j, ErrorCode::Corrupt, {"merge 0", "neither"});
    j = minimal();
    j["model"]["vocab"].erase("ab");
    expectError(j, ErrorCode::Corrupt, {"no token has id 3"});
    j = minimal();
    j["model"]["vocab"]["dup"] = 1;
    expectError(j, ErrorCode::Corrupt, {"id 1 is given to two tokens"});
    j = minimal();
    j["model"]["unk_token"] = "<unk>";
    expectError(j, ErrorCode::Corrupt, {"unk_token '<unk>'"});
    j = minimal();
    j["pre_tokenizer"] = json::parse(R"({"type": "Split", "pattern": "oops", "behavior": "Isolated"})");
    expectError(j, ErrorCode::Corrupt, {"pre_tokenizer Split", "'pattern'"});
    j = minimal();
    j["model"]["byte_fallback"] = "yes";
    expectError(j, ErrorCode::Corrupt, {"'byte_fallback'", "wrong type"});
    // Problems in the config name the config file.
    expectError(minimal(), ErrorCode::Corrupt, {"'bos_token' names '<nope>'"}, {{"bos_token", "<nope>"}},
                "tokenizer_config.json");
    expectError(minimal(), ErrorCode::Corrupt, {"add_bos_token is set but no bos_token"}, {{"add_bos_token", true}},
                "tokenizer_config.json");
}
