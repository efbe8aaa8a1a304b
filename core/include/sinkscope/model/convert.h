// GGUF -> SinkScope model archive (a self-contained TorchScript file; see docs/model-format.md).
#pragma once

#include "sinkscope/common/result.h"
#include "sinkscope/model/model.h"

#include <string>

namespace sinkscope {

struct ConvertOptions {
    ProgressCallback progress; // called per tensor; may cancel
};

// Reads `ggufPath`, dequantizes every tensor to fp32, maps the architecture (llama, gpt2), builds the
// TorchScript module with its code, weights, config and tokenizer, and writes it to `outPath`
// (through a temporary file, so a failed conversion never leaves a half-written archive).
Status convertGguf(const std::string &ggufPath, const std::string &outPath, const ConvertOptions &options = {});

} // namespace sinkscope
