// The numbers behind the Compare tab: several models run on one prompt, each tokenizing the text
// itself, and the grids the tab draws from their sink metrics: one model's layer x head grid of a
// per-head metric, the colour range two such grids share, their difference, and a checkpoint series
// as a layer x checkpoint grid of the metric averaged over heads. Qt-free, so tests check the values
// without a window.
//
// Threading: computeComparison() runs on the compute thread (it loads models and runs them); the grid
// functions are pure and run anywhere. Results are immutable snapshots (std::shared_ptr<const ...>).
#pragma once

#include "attention_math.h"

#include "sinkscope/analysis/metrics.h"
#include "sinkscope/common/result.h"
#include "sinkscope/model/model.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sinkscope::ui {

// One model to compare: what the user opened and, when already loaded (the window's model, or a
// model of an earlier comparison), the model itself.
struct CompareInput {
    std::string source;                 // a file or folder as the window opens it (model_source.h)
    std::shared_ptr<const Model> model; // null: load `source`
};

struct CompareRequest {
    std::string prompt;                    // the text; each model tokenizes it with its own policy
    std::optional<CompareInput> reference; // the window's model ("the first"), when there is one
    std::vector<CompareInput> models;      // the models opened beside it (a second model, checkpoints)
    std::string device = "cpu";            // where models that are not loaded yet are loaded
    MetricsOptions metrics;                // thresholds; bosTokenId and tokenTexts come from each model
};

struct CompareEntry {
    std::string source;                 // as requested ("" for the default model)
    std::string name;                   // the model's name (general.name, the file name)
    std::optional<int64_t> step;        // training step (checkpointStep of the source, else stepInName of the name)
    std::string label;                  // "step 1000", else the file or folder name
    std::shared_ptr<const Model> model; // null when loading failed
    std::shared_ptr<const SinkMetrics> metrics; // null when loading, tokenizing or the run failed
    std::string error;                          // why, naming the file; empty when it worked
    int64_t tokenCount = 0;                     // the prompt's tokens under this model's tokenizer
    bool ok() const { return metrics != nullptr; }
};

struct CompareResult {
    std::string prompt;
    std::optional<CompareEntry> reference;
    std::vector<CompareEntry> series; // the opened models ordered by step (orderBySteps): those without
                                      // a step keep their given order after those with one
    // Every entry: the reference first (when there is one), then the series.
    std::vector<const CompareEntry *> entries() const;
};

// Loads what is not loaded (a model that fails to load becomes an entry with its error, the others go on),
// tokenizes the prompt with each model's tokenizer (its own BOS policy) and computes every sink metric
// (analyzeTokens). Progress runs over all models; `cancel` (or progress returning false) stops at once
// with Cancelled. Errors of single models are kept in their entries, never returned.
Result<CompareResult> computeComparison(const CompareRequest &request, const CancelToken &cancel,
                                        const ProgressCallback &progress = {});

// The label of an entry without a step: the file or folder name ("pythia/step1000/" -> "step1000").
std::string sourceLabel(const std::string &source);

// One model's [L, H] grid of a per-head metric (x = head, y = layer); empty when absent.
PooledGrid compareHeadGrid(const SinkMetrics &metrics, const std::string &metric);

// The one colour range of two grids shown side by side: [lowest, highest] finite value of either (a tiny
// non-empty range when all are equal, [0, 1] when none is finite).
ValueRange sharedRange(const PooledGrid &a, const PooledGrid &b);

// b - a cell by cell (NaN where either is NaN); nullopt when the grids differ in shape (layers, heads).
std::optional<PooledGrid> differenceGrid(const PooledGrid &a, const PooledGrid &b);

// The series as a layer x checkpoint grid (x = checkpoint in the given order, y = layer): the metric of
// each layer averaged over its heads (NaN heads skipped; NaN when the model lacks the metric, the layer
// or failed). Rows cover the deepest model.
PooledGrid layerCheckpointGrid(const std::vector<const SinkMetrics *> &series, const std::string &metric);

// The finite range of a grid, [min, max] (a tiny non-empty range when flat, [0, 1] when empty).
ValueRange finiteRange(const PooledGrid &grid);

} // namespace sinkscope::ui
