// The TorchScript operators of contract-5 archives (attention_op.cpp). Private: LibTorch conventions.
#pragma once

#include <cstdint>
#include <string>

namespace torch::jit {
struct Module;
} // namespace torch::jit

namespace sinkscope::detail {

// sinkscope::attend's per-query statistics when asked for: [kRowStats, H, T] floats in this order —
// sink mass (key 0), first-token mass, sum A log A, row max, sum A f (value norms), the learned sink's
// share — and per key [2, H, Tk] doubles: received attention, sum A log A.
inline constexpr int64_t kRowStats = 6;
enum RowStat : int64_t { kStatSinkMass = 0, kStatFirst, kStatPlogp, kStatMax, kStatWeighted, kStatNullShare };

// sinkscope::attend's `stats` argument (the capture_stats control's value for the layer).
enum StatsLevel : int64_t { kStatsNone = 0, kStatsAll = 1, kStatsFirstMass = 2 };

// Keeps the operators' registration in the link (a static library drops unreferenced objects). Call before
// compiling or loading an archive's TorchScript.
void ensureAttentionOps();

// module.define(source) with the operators in scope: archive code calls them as sinkscope.attend(...),
// sinkscope.linear(...).
void defineArchiveCode(torch::jit::Module &module, const std::string &source);

} // namespace sinkscope::detail
