// Opening a model as the window names it: a SinkScope archive or TorchScript file (.pt), a GGUF file or a
// Hugging Face folder (or its config.json), converted first into the cache folder (archiveFor, once per
// source version), or "" for the default model. One function, so that the window's model and the models
// of the Compare tab open the same way. Qt-free.
//
// Threading: compute thread only (it converts and calls Model::load).
#pragma once

#include "sinkscope/common/result.h"
#include "sinkscope/model/model.h"

#include <memory>
#include <string>

namespace sinkscope::ui {

struct LoadedModel {
    std::shared_ptr<const Model> model;
    std::string archive; // the file loaded (the converted archive for a GGUF file or a folder)
};

// Conversion reports "Converting: ..." up to 0.8 of `progress`, then the load the rest; `progress`
// returning false cancels (Cancelled). Errors name the file (the converter's and the loader's own).
Result<LoadedModel> loadModelSource(const std::string &source, const std::string &device,
                                    const ProgressCallback &progress = {});

} // namespace sinkscope::ui
