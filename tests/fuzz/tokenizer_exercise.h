// What the tokenizer targets do with a tokenizer built from fuzzed data: encode and decode a few texts
// (ASCII, accents, CJK, emoji, digits, whitespace runs, special-token spellings, a broken UTF-8 byte) and
// every vocabulary id.
#pragma once

#include "fuzz_support.h"

#include "sinkscope/tokenizer/tokenizer.h"

#include <algorithm>
#include <string>
#include <vector>

namespace sinkscope::fuzz {

inline void exerciseTokenizer(const Tokenizer &tok)
{
    static const std::vector<std::string> texts = {
        "",
        "Hello world! It's 2024: 12345 apples.",
        "  leading\tand\r\n\n  trailing  ",
        "caf\xC3\xA9 na\xC3\xAFve \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x98\x80",
        "<s></s><|endoftext|><|begin_of_text|><unk><0x41>",
        "\xE2\x96\x81split\xE2\x96\x81me",
        "bad \xFF\xC3 utf8 \xE2\x82",
    };
    for (const std::string &text : texts) {
        const auto ids = tok.encode(text);
        for (int64_t id : ids) {
            check(id >= 0 && id < tok.vocabSize(), "encode gave an id outside the vocabulary");
        }
        (void)tok.decode(ids);
        (void)tok.preTokenize(text);
        (void)tok.encode(text, EncodeOptions{.addBos = true, .parseSpecial = false});
    }
    std::vector<int64_t> all;
    const int64_t n = std::min<int64_t>(tok.vocabSize(), 4096);
    for (int64_t id = 0; id < n; ++id) {
        (void)tok.tokenText(id);
        (void)tok.isSpecial(id);
        all.push_back(id);
    }
    all.push_back(-1);
    all.push_back(tok.vocabSize());
    (void)tok.decode(all);
}

} // namespace sinkscope::fuzz
