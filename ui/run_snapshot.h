// One finished run as the views see it: the tokens, every layer's attention and the per-head summaries,
// computed once on the compute thread. Immutable after build and shared as
// std::shared_ptr<const RunSnapshot>, so hovering and switching heads only read it and never run the
// model again.
#pragma once

#include "sinkscope/array.h"
#include "sinkscope/model.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sinkscope::ui {

struct TokenInfo {
    int64_t id = 0;
    std::string text;    // decoded bytes (may be a partial UTF-8 sequence)
    std::string piece;   // raw vocabulary entry
    bool special = false; // control or user-defined token
    bool bos = false;     // the tokenizer's BOS id
};

// Token texts and flags from a tokenizer (or bare ids when the model has none).
std::vector<TokenInfo> describeTokens(const Tokenizer *tokenizer, const std::vector<int64_t> &ids);

struct RunSnapshot {
    std::string modelPath;
    std::string modelName;
    std::vector<TokenInfo> tokens;
    int64_t layers = 0;
    int64_t heads = 0;
    std::vector<FloatArray> attention; // per layer [H, T, T]
    FloatArray firstTokenMass;         // [L, H], queries t >= 1
    FloatArray meanEntropy;            // [L, H], nats, queries t >= 1
    FloatArray received;               // [L, T]: mean over heads and queries of attention received
    std::vector<TopToken> top;         // next-token distribution after the last token
    std::vector<std::string> topText;  // decoded text of `top`
    double forwardSeconds = 0;
    double analysisSeconds = 0;

    int64_t tokenCount() const { return static_cast<int64_t>(tokens.size()); }
    bool hasAttention(int64_t layer) const
    {
        return layer >= 0 && layer < static_cast<int64_t>(attention.size()) && !attention[size_t(layer)].empty();
    }
};

struct RunRequest {
    std::vector<int64_t> tokens;
    int topK = 10;
};

// Runs the forward pass with every layer's attention captured and derives the summaries. Compute
// thread only (it calls Model::forward).
Result<RunSnapshot> computeRunSnapshot(const Model &model, const RunRequest &request, const CancelToken &cancel,
                                       const ProgressCallback &progress = {});

} // namespace sinkscope::ui
