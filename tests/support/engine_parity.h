// The CPU attention engine (sinkscope::attend, contract 5) against the archive's own LibTorch attention step
// on one model and one set of controls: a pass that captures every layer's maps runs the LibTorch step
// (capture needs the whole map), a pass that asks for statistics runs the engine. Header-only: needs
// sinkscope::core.
#pragma once

#include "sinkscope/analysis/attention_stats.h"
#include "sinkscope/model/model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace sinkscope::testing {

struct EngineParity {
    double logits = 0;         // largest |difference| of the last position's logits
    double firstTokenMass = 0; // largest |difference| of the per-head first-token mass
    bool engineRan = false;    // the engine's statistics came back (not ACT, contract 5, CPU)
};

// Runs both passes and returns the largest differences; a failed pass is a test failure (logits NaN).
inline EngineParity compareEngineWithTorchStep(const Model &model, const std::vector<int64_t> &ids,
                                               const Controls &controls)
{
    EngineParity p;
    p.logits = NAN;
    auto engine = model.forward(
        ForwardRequest{.tokens = ids, .capture = {.lastLogitsOnly = true, .allStats = true}, .controls = controls});
    auto torchStep = model.forward(
        ForwardRequest{.tokens = ids, .capture = {.allAttention = true, .lastLogitsOnly = true}, .controls = controls});
    EXPECT_TRUE(engine) << (engine ? "" : engine.error().message);
    EXPECT_TRUE(torchStep) << (torchStep ? "" : torchStep.error().message);
    if (!engine || !torchStep || engine->logits.data.size() != torchStep->logits.data.size()) {
        return p;
    }
    p.logits = 0;
    for (size_t i = 0; i < engine->logits.data.size(); ++i) {
        p.logits =
            std::max(p.logits, static_cast<double>(std::fabs(engine->logits.data[i] - torchStep->logits.data[i])));
    }
    const int64_t layers = model.config().layers, heads = model.config().heads;
    p.engineRan =
        !engine->attentionStats.empty() && std::all_of(engine->attentionStats.begin(), engine->attentionStats.end(),
                                                       [](const PassAttentionStats &s) { return !s.empty(); });
    if (p.engineRan) {
        const FloatArray a = firstTokenMass(*engine, layers, heads), b = firstTokenMass(*torchStep, layers, heads);
        for (size_t i = 0; i < a.data.size(); ++i) {
            p.firstTokenMass = std::max(p.firstTokenMass, static_cast<double>(std::fabs(a.data[i] - b.data[i])));
        }
    }
    return p;
}

} // namespace sinkscope::testing
