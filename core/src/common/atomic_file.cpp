#include "sinkscope/common/atomic_file.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace sinkscope {

namespace {

Error writeError(const std::string &path, int err)
{
    return makeError(ErrorCode::Io, path + ": " + writeErrorText(path, err));
}

std::string folderOf(const std::string &path)
{
    const fs::path parent = fs::path(path).parent_path();
    return parent.empty() ? std::string(".") : parent.string();
}

// fsync on the folder makes the rename itself durable.
void syncFolder(const std::string &folder)
{
    const int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
    }
}

Status checkTarget(const std::string &path)
{
    if (path.empty()) {
        return makeError(ErrorCode::InvalidArgument, "no file name given");
    }
    struct stat st {
    };
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        return writeError(path, EISDIR);
    }
    const std::string folder = folderOf(path);
    if (::stat(folder.c_str(), &st) != 0) {
        return makeError(ErrorCode::Io, path + ": the folder " + folder + " does not exist");
    }
    if (!S_ISDIR(st.st_mode)) {
        return makeError(ErrorCode::Io, path + ": " + folder + " is not a folder");
    }
    return Ok{};
}

// A new, empty temporary beside `path` (mkstemp: unique, mode 0600, never an existing file).
Result<std::pair<int, std::string>> makeTemp(const std::string &path)
{
    std::string name =
        (fs::path(folderOf(path)) / ("." + fs::path(path).filename().string() + ".partial.XXXXXX")).string();
    const int fd = ::mkstemp(name.data());
    if (fd < 0) {
        return writeError(path, errno);
    }
    ::fchmod(
        fd, 0644 & ~[] {
            const mode_t mask = ::umask(0);
            ::umask(mask);
            return mask;
        }());
    return std::make_pair(fd, name);
}

Status renameOver(const std::string &temp, const std::string &path)
{
    if (::rename(temp.c_str(), path.c_str()) != 0) {
        const int err = errno;
        ::unlink(temp.c_str());
        return writeError(path, err);
    }
    syncFolder(folderOf(path));
    return Ok{};
}

} // namespace

std::string writeErrorText(const std::string &path, int err)
{
    switch (err) {
    case EROFS:
        return "the file system is read-only";
    case EACCES:
    case EPERM:
        return "permission denied (the folder or the file is read-only)";
    case ENOSPC:
    case EDQUOT:
        return "the disk is full";
    case EFBIG:
        return "the file is larger than this process may write (file size limit)";
    case EISDIR:
        return "is a folder, not a file";
    case ENOENT:
    case ENOTDIR:
        return "the folder " + folderOf(path) + " does not exist";
    default:
        return std::strerror(err);
    }
}

Status writeFileAtomic(const std::string &path, std::string_view data)
{
    if (auto ok = checkTarget(path); !ok) {
        return ok.error();
    }
    auto temp = makeTemp(path);
    if (!temp) {
        return temp.error();
    }
    const auto [fd, name] = temp.value();
    const char *p = data.data();
    size_t left = data.size();
    int err = 0;
    while (left > 0) {
        const ssize_t n = ::write(fd, p, left);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            err = errno;
            break;
        }
        p += n;
        left -= size_t(n);
    }
    if (err == 0 && ::fsync(fd) != 0) {
        err = errno;
    }
    if (::close(fd) != 0 && err == 0) {
        err = errno;
    }
    if (err != 0) {
        ::unlink(name.c_str());
        return writeError(path, err);
    }
    return renameOver(name, path);
}

Result<PendingFile> PendingFile::create(const std::string &path)
{
    if (auto ok = checkTarget(path); !ok) {
        return ok.error();
    }
    auto temp = makeTemp(path);
    if (!temp) {
        return temp.error();
    }
    ::close(temp->first);
    PendingFile f;
    f.m_path = path;
    f.m_temp = temp->second;
    return f;
}

PendingFile::PendingFile(PendingFile &&other) noexcept
    : m_path(std::move(other.m_path)), m_temp(std::exchange(other.m_temp, std::string()))
{
}

PendingFile &PendingFile::operator=(PendingFile &&other) noexcept
{
    if (this != &other) {
        if (!m_temp.empty()) {
            ::unlink(m_temp.c_str());
        }
        m_path = std::move(other.m_path);
        m_temp = std::exchange(other.m_temp, std::string());
    }
    return *this;
}

PendingFile::~PendingFile()
{
    if (!m_temp.empty()) {
        ::unlink(m_temp.c_str());
    }
}

Status PendingFile::commit()
{
    if (m_temp.empty()) {
        return makeError(ErrorCode::Internal, m_path + ": committed twice");
    }
    const std::string temp = std::exchange(m_temp, std::string());
    const int fd = ::open(temp.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return writeError(m_path, errno);
    }
    struct stat st {
    };
    const bool empty = ::fstat(fd, &st) != 0 || st.st_size == 0;
    const int synced = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (empty) {
        ::unlink(temp.c_str());
        return makeError(ErrorCode::Io, m_path + ": nothing was written");
    }
    if (synced != 0) {
        ::unlink(temp.c_str());
        return writeError(m_path, err);
    }
    return renameOver(temp, m_path);
}

} // namespace sinkscope
