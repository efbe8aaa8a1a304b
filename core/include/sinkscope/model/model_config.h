// The architecture description of a SinkScope model: what the converter read from a GGUF file and what
// a model archive carries as sinkscope/config.json.
#pragma once

#include "sinkscope/common/result.h"

#include <cstdint>
#include <string>

namespace sinkscope {

class GgufFile;

enum class Architecture {
    Llama, // RoPE, GQA, RMSNorm, SwiGLU (Llama, SmolLM, Mistral-style files)
    Gpt2,  // learned positions, LayerNorm with bias, GELU (tanh), fused QKV with bias
};

const char *architectureName(Architecture arch); // "llama", "gpt2"

// The version of the forward(input_ids, controls) contract that model archives implement.
// Version 1: see docs/model-format.md. Version 2 adds the optional ACT keys act_heads/act_beta/act_thres.
// Version 3 keeps the keys and changes the code inside: above 1024 tokens the attention step runs in
// blocks of query rows (memory linear in T), and masks and positions are made on the weights' device.
inline constexpr int kContractVersion = 3;

struct ModelConfig {
    Architecture architecture = Architecture::Llama;
    std::string name; // general.name, or the file name
    int64_t layers = 0;
    int64_t heads = 0;     // query heads
    int64_t kvHeads = 0;   // key/value heads (== heads without GQA)
    int64_t embedding = 0; // d_model
    int64_t headDim = 0;   // embedding / heads
    int64_t feedForward = 0;
    int64_t vocabSize = 0;
    int64_t contextLength = 0; // trained context (GPT-2: the size of the position table)
    double normEps = 1e-5;
    double ropeTheta = 10000.0; // Llama only
    int64_t ropeDim = 0;        // rotated dimensions per head (Llama only; == headDim usually)
    double ropeScale = 1.0;     // linear position scaling factor (positions are divided by it)
    bool tiedOutput = true;     // logits use the token embedding matrix
    int64_t parameterCount = 0;
    int contractVersion = kContractVersion;
    std::string sourceFile;         // file name of the GGUF it was converted from
    std::string sourceQuantization; // e.g. "Q4_1 x210, F32 x61, Q8_0 x1"

    std::string toJson() const;
    static Result<ModelConfig> fromJson(const std::string &json, const std::string &origin);
    static Result<ModelConfig> fromGguf(const GgufFile &file);
};

} // namespace sinkscope
