// Tokenizer data from a Hugging Face tokenizer.json (+ tokenizer_config.json).
#include "sinkscope/tokenizer/tokenizer.h"
#include "tokenizer/split_regex.h"
#include "tokenizer/tokenizer_private.h"

#include <nlohmann/json.hpp>

namespace sinkscope {

Result<TokenizerData> Tokenizer::dataFromTokenizerJson(const std::string &tokenizerJsonPath,
                                                       const std::string &tokenizerConfigPath)
{
    (void)tokenizerConfigPath;
    return makeError(ErrorCode::Unsupported, tokenizerJsonPath + ": not implemented yet");
}

} // namespace sinkscope
