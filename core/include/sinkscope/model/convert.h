// GGUF or Hugging Face folder -> SinkScope model archive (a self-contained TorchScript file; see docs/model-format.md).
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

// Reads a Hugging Face model folder (or its config.json): config.json (old and new RoPE keys),
// model.safetensors or a sharded model.safetensors.index.json (F32/F16/BF16, gpt-oss MXFP4 experts),
// tokenizer.json + tokenizer_config.json. Tensors the decoder does not use are errors naming them.
Status convertHfFolder(const std::string &input, const std::string &outPath, const ConvertOptions &options = {});

// What a path given as a model is: an archive (anything else), a GGUF file, or a Hugging Face model (a
// folder with config.json, or the config.json itself).
enum class ModelSource { Archive, Gguf, HfFolder };
ModelSource modelSourceOf(const std::string &path);

// Converts a GGUF file or a Hugging Face folder (config.json, model.safetensors or a sharded
// model.safetensors.index.json, tokenizer.json + tokenizer_config.json) into an archive at `outPath`.
Status convertModel(const std::string &input, const std::string &outPath, const ConvertOptions &options = {});

} // namespace sinkscope
