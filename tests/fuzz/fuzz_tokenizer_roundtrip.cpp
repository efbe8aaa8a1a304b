// Byte-level BPE promises decode(encode(bytes)) == bytes for any bytes, valid UTF-8 or not: every byte
// has a token. Checked with the Llama-3 and gpt-oss fixtures (tests/data/tokenizer, truncated
// vocabularies with all 256 byte tokens; no normalizer), with and without special-token parsing.
#include "fuzz_support.h"

#include "sinkscope/tokenizer/tokenizer.h"

#include <memory>
#include <vector>

using namespace sinkscope;

namespace {

std::vector<std::shared_ptr<const Tokenizer>> loadTokenizers()
{
    std::vector<std::shared_ptr<const Tokenizer>> out;
    for (const char *name : {"llama3", "gpt_oss"}) {
        const std::string dir = std::string(SINKSCOPE_TEST_DATA_DIR) + "/tokenizer/" + name;
        auto data = Tokenizer::dataFromTokenizerJson(dir + "/tokenizer.json", dir + "/tokenizer_config.json");
        if (!data) {
            fuzz::fail(data.error().message);
        }
        auto tok = Tokenizer::create(std::move(*data));
        if (!tok) {
            fuzz::fail(tok.error().message);
        }
        out.push_back(*tok);
    }
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const auto tokenizers = loadTokenizers();
    const std::string text(reinterpret_cast<const char *>(data), size);
    for (const auto &tok : tokenizers) {
        for (bool special : {false, true}) {
            const auto ids = tok->encode(text, EncodeOptions{.addBos = false, .parseSpecial = special});
            const std::string back = tok->decode(ids);
            fuzz::check(back == text, "decode(encode(text)) != text (" + std::to_string(text.size()) + " bytes in, " +
                                          std::to_string(back.size()) + " out)");
        }
    }
    return 0;
}
