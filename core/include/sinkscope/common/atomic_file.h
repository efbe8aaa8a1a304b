// Files SinkScope writes are replaced whole or not at all: the data go to a temporary beside the target
// (same folder, so the rename cannot cross file systems), are flushed to the disk, and the temporary is
// renamed over the target; the folder is flushed too. A failure (a read-only folder, a full disk, a path
// that is a folder) leaves the old file as it was, removes the temporary and says why in one line naming
// the target.
#pragma once

#include "sinkscope/common/result.h"

#include <string>
#include <string_view>

namespace sinkscope {

// Writes `data` to `path` atomically.
Status writeFileAtomic(const std::string &path, std::string_view data);

// For writers that want a file name (a PDF writer, an image encoder, a TorchScript archive): a temporary
// path beside `path` to write to, then commit(). Without commit() the destructor removes the temporary.
class PendingFile
{
public:
    // Checks the target (not a folder, its folder exists) and reserves a temporary name beside it.
    static Result<PendingFile> create(const std::string &path);
    PendingFile(PendingFile &&other) noexcept;
    PendingFile &operator=(PendingFile &&other) noexcept;
    PendingFile(const PendingFile &) = delete;
    PendingFile &operator=(const PendingFile &) = delete;
    ~PendingFile();

    const std::string &path() const { return m_path; }     // the target
    const std::string &tempPath() const { return m_temp; } // where to write
    // Flushes the temporary to the disk and renames it over the target (an empty or missing temporary is
    // an error: the writer failed without saying so).
    Status commit();

private:
    PendingFile() = default;
    std::string m_path, m_temp;
};

// A one-line reason for errno `err` when writing `path` ("the folder is read-only", "the disk is full").
std::string writeErrorText(const std::string &path, int err);

} // namespace sinkscope
