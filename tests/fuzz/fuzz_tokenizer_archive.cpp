// The tokenizer JSON that model archives carry (Tokenizer::fromJson), and its round trip: a tokenizer
// read back from its own toJson() is read again without error and writes the same JSON.
#include "tokenizer_exercise.h"

using namespace sinkscope;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const std::string text(reinterpret_cast<const char *>(data), size);
    auto tok = Tokenizer::fromJson(text, "archive.pt");
    if (!tok) {
        fuzz::checkNamesFile(tok.error().message, "archive.pt");
        return 0;
    }
    fuzz::exerciseTokenizer(**tok);
    const std::string json = (*tok)->toJson();
    auto again = Tokenizer::fromJson(json, "again");
    if (!again) {
        fuzz::fail("toJson() does not read back: " + again.error().message);
    }
    fuzz::check((*again)->toJson() == json, "toJson() differs after a round trip");
    return 0;
}
