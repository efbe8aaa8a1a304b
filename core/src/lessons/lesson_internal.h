// The parsed form of lesson expressions (lesson_live.h), shared by the parser and the evaluator.
#pragma once

#include "sinkscope/lessons/lesson_live.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sinkscope::lessons {

struct Expression {
    enum class Kind {
        Number,   // number
        Negate,   // -args[0]
        Binary,   // args[0] op args[1]: + - * /
        Compare,  // args[0] op args[1]: < <= > >= == !=
        Logic,    // args[0] op args[1]: and, or
        Quantity, // name(...)
    };
    Kind kind = Kind::Number;
    double number = 0;
    std::string op;
    std::vector<std::shared_ptr<const Expression>> args;
    std::string text; // as written (for details and messages)

    // Quantity
    std::string name;
    std::string metric;          // share, mean, min, max, median, value, first_layer
    std::string cmp;             // share, first_layer: the metric's comparison
    double threshold = 0;        // ... and its right-hand side
    std::optional<int64_t> from; // layers A..B (inclusive); unset: the first / last layer
    std::optional<int64_t> to;
    std::vector<int64_t> ints; // value: L, H; activation_ratio: L
    std::string argument;      // ppl, kl, same_top1, probe_accuracy: a spec; stream_ppl: a mode; lookback
};

bool compareValues(double left, const std::string &op, double right);

} // namespace sinkscope::lessons
