// Tokenizer data from a GGUF file (tokenizer.ggml.*: model, pre, tokens, types, scores, merges, special
// ids, flags), the tokenizer built from it, and a few encodes and decodes.
#include "tokenizer_exercise.h"

#include "sinkscope/format/gguf.h"

using namespace sinkscope;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const std::string path = fuzz::writeScratch(".gguf", data, size);
    auto file = GgufFile::open(path);
    if (!file) {
        return 0;
    }
    auto tokenizerData = Tokenizer::dataFromGguf(**file);
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
