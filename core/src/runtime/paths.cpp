#include "sinkscope/runtime/paths.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>

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

namespace {

// The first of <data>/models/<name> and <user data>/models/<name> that exists; nullopt when neither does.
std::optional<fs::path> installedModelFile(const char *name)
{
    for (const auto &dir : {fs::path(dataDir()) / "models", fs::path(userDataDir()) / "models"}) {
        std::error_code ec;
        if (fs::exists(dir / name, ec)) {
            return dir / name;
        }
    }
    return std::nullopt;
}

} // namespace

std::string defaultGgufPath()
{
    if (std::string v = env("SINKSCOPE_GGUF"); !v.empty()) {
        return v;
    }
    return installedModelFile(kDefaultGgufName).value_or(fs::path(dataDir()) / "models" / kDefaultGgufName).string();
}

std::string defaultProbeSetPath()
{
    if (std::string v = env("SINKSCOPE_PROBES"); !v.empty()) {
        return v;
    }
    return (fs::path(dataDir()) / "probes" / "default.json").string();
}

std::string papersDir()
{
    if (std::string v = env("SINKSCOPE_PAPERS"); !v.empty()) {
        return v;
    }
    return (fs::path(dataDir()) / "papers").string();
}

std::string gemma3GgufPath()
{
    if (std::string v = env("SINKSCOPE_GEMMA3_GGUF"); !v.empty()) {
        return v;
    }
    const auto installed = installedModelFile(kGemma3GgufName);
    return installed ? installed->string() : std::string();
}

std::string gemma3TermsPath()
{
    const std::string gguf = gemma3GgufPath();
    if (gguf.empty()) {
        return {};
    }
    const fs::path terms = fs::path(gguf).parent_path() / "gemma-3-270m.TERMS.html";
    std::error_code ec;
    return fs::exists(terms, ec) ? terms.string() : std::string();
}

std::string convertedArchivePath(const std::string &source)
{
    fs::path p(source);
    if (p.filename() == "config.json") {
        p = p.parent_path();
    }
    std::error_code ec;
    uintmax_t size = 0;
    fs::file_time_type newest = fs::file_time_type::min();
    std::string name = p.stem().string();
    if (fs::is_directory(p, ec)) {
        name = fs::absolute(p, ec).lexically_normal().filename().string();
        if (name.empty()) {
            name = fs::absolute(p, ec).lexically_normal().parent_path().filename().string();
        }
        for (const auto &entry : fs::directory_iterator(p, ec)) {
            if (entry.is_regular_file(ec)) {
                size += entry.file_size(ec);
                newest = std::max(newest, entry.last_write_time(ec));
            }
        }
    } else {
        size = fs::file_size(p, ec);
        newest = fs::last_write_time(p, ec);
    }
    const auto seconds =
        std::chrono::duration_cast<std::chrono::seconds>(fs::file_time_type::clock::to_sys(newest).time_since_epoch())
            .count();
    return (fs::path(cacheDir()) / "models" /
            (name + "-" + std::to_string(size) + "-" + std::to_string(seconds) + ".pt"))
        .string();
}

} // namespace sinkscope
