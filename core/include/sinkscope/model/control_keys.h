// The names of the control tensors of the forward contract (docs/model-format.md): the keys of the
// `controls` dictionary that a model archive's TorchScript code reads. Absent keys change nothing.
// Everything that builds or reads controls uses these names; ControlKeys.MatchTheArchiveSource checks
// that the archives' code reads exactly these keys.
#pragma once

#include <array>
#include <string>

namespace sinkscope::control_keys {

// Interventions (Controls::tensors; buildControls() in interventions/mitigation.h sets them).
inline constexpr char kLogitBias[] = "logit_bias";    // [L, H, Tk] added to the attention logits
inline constexpr char kTemperature[] = "temperature"; // [L, H] attention logits divided by it
inline constexpr char kSinkLogit[] = "sink_logit";    // [L, H] a null logit in every softmax (-inf: none)
inline constexpr char kHeadMode[] = "head_mode";      // [L, H] 0 normal, 1 attention zeroed, 2 all on key 0
inline constexpr char kValueScale[] = "value_scale";  // [L, H, Tk] value vectors multiplied by it
inline constexpr char kHeadGate[] = "head_gate";      // [L, H] a head's output multiplied by it
inline constexpr char kProbScale[] = "prob_scale";    // [L, H, Tk] attention probabilities multiplied by it
inline constexpr char kProbRenorm[] = "prob_renorm";  // present: rows renormalised after prob_scale
inline constexpr char kAttnMask[] = "attn_mask";      // [T, Tk] added to the causal mask
inline constexpr char kPositions[] = "positions";     // [Tk] position ids (default 0..Tk-1)
inline constexpr char kActHeads[] = "act_heads";      // [L, H] 1 where ACT runs (contract 2)
inline constexpr char kActBeta[] = "act_beta";        // [L, H] ACT's beta
inline constexpr char kActThres[] = "act_thres";      // [L, H] ACT's threshold
inline constexpr char kResidMask[] = "resid_mask.";   // + layer: [T, D] 1 where the residual stream is replaced
inline constexpr char kResidValue[] = "resid_value."; // + layer: [T, D] the replacement values

// Requests the core's forward passes add (model.cpp, streaming.cpp): what to return.
inline constexpr char kCaptureAttn[] = "capture_attn";     // [L] 1: return the layer's probabilities
inline constexpr char kCaptureVnorm[] = "capture_vnorm";   // [L] 1: return the layer's value norms
inline constexpr char kCaptureQk[] = "capture_qk";         // [L] 1: return the layer's post-RoPE q and k
inline constexpr char kCaptureHidden[] = "capture_hidden"; // present: return every layer's hidden state
inline constexpr char kCaptureStats[] = "capture_stats";   // [L] 1: return the engine's statistics (contract 5)
inline constexpr char kLastLogitsOnly[] = "last_logits_only";
inline constexpr char kReturnCache[] = "return_cache"; // present: return the K/V cache (cache_k.<l>, cache_v.<l>)
inline constexpr char kCacheK[] = "cache_k.";          // + layer: the cached keys passed back in
inline constexpr char kCacheV[] = "cache_v.";          // + layer: the cached values passed back in

inline constexpr std::array<const char *, 15> kInterventions = {
    kLogitBias, kTemperature, kSinkLogit, kHeadMode, kValueScale, kHeadGate,  kProbScale, kProbRenorm,
    kAttnMask,  kPositions,   kActHeads,  kActBeta,  kActThres,   kResidMask, kResidValue};
inline constexpr std::array<const char *, 9> kRequests = {kCaptureAttn,   kCaptureVnorm, kCaptureQk,
                                                          kCaptureHidden, kCaptureStats, kLastLogitsOnly,
                                                          kReturnCache,   kCacheK,       kCacheV};

// The per-layer key of a prefixed control, e.g. layerKey(kResidMask, 3) == "resid_mask.3".
inline std::string layerKey(const char *prefix, long long layer)
{
    return prefix + std::to_string(layer);
}

} // namespace sinkscope::control_keys
