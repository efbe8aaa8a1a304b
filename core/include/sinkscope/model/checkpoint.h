// Training checkpoints: the step a model file or folder was saved at, for series of checkpoints
// (profiles over training, the window's layer x checkpoint view).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace sinkscope {

// The training step of a checkpoint, first found of:
// 1. the name of the file (without its extension) or of the folder: "step1000", "step-1000",
//    "checkpoint-1000" (the transformers Trainer's folders), "ckpt_1000", "iter1000", "global_step1000"
//    (case-insensitive; the last such match in the name);
// 2. for a folder (or a file inside one): config.json's "step", "global_step" or "training_step", then
//    trainer_state.json's "global_step";
// 3. the name of the folder that holds the file ("pythia-70m/step1000/model.safetensors").
// nullopt when none says (a malformed JSON file is skipped, not an error).
std::optional<int64_t> checkpointStep(const std::string &path);

// The step named in a string alone (rule 1), e.g. a model's general.name "tiny-llama-step2000".
std::optional<int64_t> stepInName(const std::string &name);

// Orders a series by step: entries without a step keep their given order after those with one.
// Returns the permutation (indices into `steps`).
std::vector<size_t> orderBySteps(const std::vector<std::optional<int64_t>> &steps);

} // namespace sinkscope
