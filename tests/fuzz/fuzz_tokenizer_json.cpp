// A Hugging Face tokenizer.json on arbitrary bytes (model, normalizers, pre-tokenizers, decoders,
// post-processor, added tokens), the tokenizer built from it, and a few encodes and decodes.
#include "tokenizer_exercise.h"

using namespace sinkscope;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const std::string path = fuzz::writeScratch("-tokenizer.json", data, size);
    auto tokenizerData = Tokenizer::dataFromTokenizerJson(path);
    if (!tokenizerData) {
        fuzz::checkNamesFile(tokenizerData.error().message, path);
        return 0;
    }
    auto tok = Tokenizer::create(std::move(*tokenizerData));
    if (tok) {
        fuzz::exerciseTokenizer(**tok);
    }
    return 0;
}
