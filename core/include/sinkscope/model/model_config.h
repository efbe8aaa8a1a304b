// The architecture description of a SinkScope model: what the converter read from a GGUF file or a
// Hugging Face folder (config.json) and what a model archive carries as sinkscope/config.json.
//
// Every family below runs in one TorchScript decoder (core/src/model/torchscript_source.cpp) whose
// differences are the fields of ModelConfig; ../docs/models.md lists what each family sets.
#pragma once

#include "sinkscope/common/result.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sinkscope {

class GgufFile;

enum class Architecture {
    Llama,   // RoPE, GQA, RMSNorm, SwiGLU (Llama 1-3, SmolLM); llama3/yarn/linear RoPE scaling
    Gpt2,    // learned positions, LayerNorm with bias, GELU (tanh), fused QKV with bias
    Mistral, // Llama with a sliding window on every layer
    Qwen2,   // Llama with q/k/v biases; optional sliding window on the upper layers
    Qwen3,   // Llama with per-head RMSNorm on q and k (QK-norm)
    Gemma3,  // (1+w) RMSNorm before and after attention and MLP, QK-norm, scaled embeddings,
             // sliding (local RoPE) and global layers, GELU-tanh MLP, final logit soft-capping
    GptOss,  // learned per-head sink logits, alternating sliding/full layers, YaRN, MoE (top-k)
    Phi3,    // fused QKV and gate/up, partial rotary, longrope
    GptNeox, // Pythia: LayerNorm, parallel residual, partial rotary, GELU MLP, biases
    Olmo2,   // norms after attention and MLP only, QK-norm over all heads
};

const char *architectureName(Architecture arch); // "llama", "gpt2", "qwen2", "gemma3", "gpt_oss", ...
// The inverse of architectureName; nullopt for a name SinkScope does not implement.
std::optional<Architecture> architectureFromName(const std::string &name);
// Every architecture, in the order of the enum.
const std::vector<Architecture> &allArchitectures();

enum class NormKind { Rms, Layer }; // RMSNorm (x * rsqrt(mean(x^2) + eps) * w) or LayerNorm with bias
enum class NormPlacement {
    Pre,
    Sandwich,
    Post
};                                         // before the sublayer; before and after (Gemma 3); after only (OLMo 2)
enum class QkNorm { None, PerHead, Full }; // RMSNorm of q/k per head (Qwen3, Gemma 3) or over all heads (OLMo 2)
enum class Activation { Silu, GeluTanh, Gelu };
enum class MlpKind { Gated, Plain, Experts }; // down(act(gate) * up); down(act(up)); top-k mixture of gated experts

// How RoPE frequencies are rescaled (config.json rope_scaling / rope_parameters, GGUF rope.scaling.*).
// The converter turns it into the archive's frequency tables; it is kept here to be shown and checked.
struct RopeScaling {
    std::string type = "none"; // none, linear, llama3, yarn, longrope
    double factor = 1.0;
    double lowFreqFactor = 1.0;                  // llama3
    double highFreqFactor = 4.0;                 // llama3
    int64_t originalContext = 0;                 // llama3, yarn, longrope: original_max_position_embeddings
    double betaFast = 32.0;                      // yarn
    double betaSlow = 1.0;                       // yarn
    double attentionFactor = 0;                  // yarn, longrope: cos/sin scale; 0 = derived from factor
    bool truncate = true;                        // yarn
    std::vector<double> longFactor, shortFactor; // longrope, one per rotated pair
    bool fromTensor = false;                     // llama3 factors read from GGUF's rope_freqs tensor
};

// The version of the forward(input_ids, controls) contract that model archives implement.
// Version 1: see docs/model-format.md. Version 2 adds the optional ACT keys act_heads/act_beta/act_thres.
// Version 3 keeps the keys and changes the code inside: above 1024 tokens the attention step runs in
// blocks of query rows (memory linear in T), and masks and positions are made on the weights' device.
// Version 4 adds the decoder families (config fields below) and, for models with learned sinks, the output
// "sink_p.<layer>" [H, T] (the sink's share of each query's attention) next to "attn.<layer>".
// Version 5 keeps the keys and moves the work: on the CPU the attention step is the operator
// sinkscope::attend (the fused engine; statistics "stats.<layer>" / "colstats.<layer>" with capture_stats)
// and the linear layers sinkscope::linear (SinkScope's thread pool); embed_input returns [T, past] in place
// of the [T, Tk] mask, which the LibTorch step builds where it needs it.
inline constexpr int kContractVersion = 5;

struct ModelConfig {
    Architecture architecture = Architecture::Llama;
    std::string name; // general.name, or the file name
    int64_t layers = 0;
    int64_t heads = 0;       // query heads
    int64_t kvHeads = 0;     // key/value heads (== heads without GQA)
    int64_t embedding = 0;   // d_model
    int64_t headDim = 0;     // embedding / heads unless the model sets it (Qwen3, Gemma 3)
    int64_t feedForward = 0; // per expert for MoE models
    int64_t vocabSize = 0;
    int64_t contextLength = 0; // trained context (GPT-2: the size of the position table)
    double normEps = 1e-5;
    double ropeTheta = 10000.0; // Llama only
    int64_t ropeDim = 0;        // rotated dimensions per head (Llama only; == headDim usually)
    double ropeScale = 1.0;     // linear position scaling factor (positions are divided by it)
    bool tiedOutput = true;     // logits use the token embedding matrix

    // Decoder details (defaults are Llama's; archives written before these fields read as Llama/GPT-2).
    RopeScaling ropeScaling;           // of the global (full-attention) layers
    double ropeLocalTheta = 0;         // RoPE base of sliding layers (Gemma 3); 0 = ropeTheta
    std::vector<int64_t> layerWindows; // per layer: sliding window W (query q sees keys q-W < k <= q), 0 = full
    double attnScale = 0;              // softmax scale; 0 = headDim^-0.5
    NormKind normKind = NormKind::Rms;
    NormPlacement normPlacement = NormPlacement::Pre;
    QkNorm qkNorm = QkNorm::None;
    Activation activation = Activation::Silu;
    MlpKind mlpKind = MlpKind::Gated;
    bool qkvBias = false;           // biases of the q, k, v projections
    bool outputBias = false;        // bias of the attention output projection
    bool mlpBias = false;           // biases of the MLP projections (experts: always)
    bool parallelResidual = false;  // x + attn(ln1(x)) + mlp(ln2(x)) (GPT-NeoX)
    double embedScale = 1.0;        // token embeddings are multiplied by it (Gemma: sqrt(embedding))
    double finalLogitSoftcap = 0;   // logits = c * tanh(logits / c); 0 = none
    bool learnedSinks = false;      // per-head sink logits join every softmax as an extra key (gpt-oss)
    std::vector<double> sinkLogits; // learnedSinks: the logits, [layers * heads] (layer-major), for the metrics
    int64_t experts = 0;            // MoE: experts per layer
    int64_t expertsPerToken = 0;    // MoE: top-k
    double swigluAlpha = 1.702;     // MoE (gpt-oss) gated activation
    double swigluLimit = 7.0;

    // Sliding layers and their windows, e.g. "18 layers: 15 sliding (512), 3 global" or "30 layers, all global".
    std::string attentionLayout() const;
    // True when some layer attends to a window only (position 0 leaves that layer's view once q >= W).
    bool hasSlidingLayers() const;
    int64_t windowOf(int64_t layer) const; // 0 = full attention
    int64_t parameterCount = 0;
    int contractVersion = kContractVersion;
    std::string sourceFile;         // file name of the GGUF it was converted from
    std::string sourceQuantization; // e.g. "Q4_1 x210, F32 x61, Q8_0 x1"

    // "Q4_1 x210, F32 x61": tensor types (GGUF type or safetensors dtype) and how many tensors have each.
    static std::string tensorTypesText(const std::map<std::string, int> &counts);

    std::string toJson() const;
    static Result<ModelConfig> fromJson(const std::string &json, const std::string &origin);
    static Result<ModelConfig> fromGguf(const GgufFile &file);
    // A Hugging Face config.json (text `json`, read from `origin`): model_type, sizes, old and new RoPE keys,
    // layer types and windows. Options the decoder does not implement are errors naming them.
    static Result<ModelConfig> fromHfConfig(const std::string &json, const std::string &origin);
};

} // namespace sinkscope
