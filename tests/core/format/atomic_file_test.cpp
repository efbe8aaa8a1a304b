// Atomic writes: a file is replaced whole or not at all; a failure (a folder in the way, a missing folder,
// a read-only folder, a full disk simulated by a file-size limit) leaves the old file as it was, no
// temporary behind, and one line naming the file and the reason.
#include "sinkscope/common/atomic_file.h"

#include "support/test_paths.h"

#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;
namespace st = sinkscope::testing;
using sinkscope::PendingFile;
using sinkscope::writeFileAtomic;

namespace {

std::string contents(const std::string &path)
{
    std::ifstream f(path, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

size_t entries(const std::string &dir)
{
    size_t n = 0;
    for ([[maybe_unused]] const auto &e : fs::directory_iterator(dir)) {
        ++n;
    }
    return n;
}

// A soft file-size limit for the scope of one test (a full disk, without a small file system).
class FileSizeLimit
{
public:
    explicit FileSizeLimit(rlim_t bytes)
    {
        ::getrlimit(RLIMIT_FSIZE, &m_saved);
        m_handler = std::signal(SIGXFSZ, SIG_IGN); // as the programs do: EFBIG instead of a kill
        rlimit limit = m_saved;
        limit.rlim_cur = bytes;
        ::setrlimit(RLIMIT_FSIZE, &limit);
    }
    ~FileSizeLimit()
    {
        ::setrlimit(RLIMIT_FSIZE, &m_saved);
        std::signal(SIGXFSZ, m_handler);
    }

private:
    rlimit m_saved{};
    void (*m_handler)(int) = nullptr;
};

} // namespace

TEST(AtomicFile, WritesAndReplacesWholeFiles)
{
    st::TempDir dir;
    const std::string path = dir.file("out.json");
    ASSERT_TRUE(writeFileAtomic(path, "first").ok());
    EXPECT_EQ(contents(path), "first");
    ASSERT_TRUE(writeFileAtomic(path, std::string(100000, 'x')).ok());
    EXPECT_EQ(contents(path).size(), 100000u);
    ASSERT_TRUE(writeFileAtomic(path, "").ok()) << "an empty file is a file";
    EXPECT_EQ(contents(path), "");
    EXPECT_EQ(entries(dir.path()), 1u) << "no temporary left";
    struct stat st {
    };
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    const mode_t mask = ::umask(0);
    ::umask(mask);
    EXPECT_EQ(st.st_mode & 0777, 0644 & ~mask) << "the mode a plain file gets, not mkstemp's 0600";
}

TEST(AtomicFile, AFolderInTheWayOrAMissingFolderIsOneLineNamingTheFile)
{
    st::TempDir dir;
    fs::create_directory(dir.file("taken"));
    auto r = writeFileAtomic(dir.file("taken"), "x");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message, dir.file("taken") + ": is a folder, not a file");
    EXPECT_TRUE(fs::is_directory(dir.file("taken")));

    r = writeFileAtomic(dir.file("no/such/out.csv"), "x");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message,
              dir.file("no/such/out.csv") + ": the folder " + dir.file("no/such") + " does not exist");
    EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
}

TEST(AtomicFile, AFullDiskLeavesTheOldFileWhole)
{
    st::TempDir dir;
    const std::string path = dir.file("figure.png");
    ASSERT_TRUE(writeFileAtomic(path, "the old figure").ok());
    {
        FileSizeLimit limit(4096);
        auto r = writeFileAtomic(path, std::string(64 * 1024, 'n'));
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error().message, path + ": the file is larger than this process may write (file size limit)");
    }
    EXPECT_EQ(contents(path), "the old figure");
    EXPECT_EQ(entries(dir.path()), 1u) << "the temporary is removed";
}

TEST(AtomicFile, AReadOnlyFolderLeavesTheOldFileWhole)
{
    if (::geteuid() == 0) {
        GTEST_SKIP() << "root writes into read-only folders (the full-disk test covers the same path)";
    }
    st::TempDir dir;
    const std::string path = dir.file("session.json");
    ASSERT_TRUE(writeFileAtomic(path, "old").ok());
    ::chmod(dir.path().c_str(), 0555);
    auto r = writeFileAtomic(path, "new");
    ::chmod(dir.path().c_str(), 0755);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message, path + ": permission denied (the folder or the file is read-only)");
    EXPECT_EQ(contents(path), "old");
}

TEST(AtomicFile, APendingFileIsCommittedOrRemoved)
{
    st::TempDir dir;
    const std::string path = dir.file("model.pt");
    ASSERT_TRUE(writeFileAtomic(path, "old archive").ok());
    {
        auto pending = PendingFile::create(path);
        ASSERT_TRUE(pending.ok()) << pending.error().message;
        std::ofstream(pending->tempPath()) << "half an arch";
        // No commit: a writer that failed (an exception, a cancel).
    }
    EXPECT_EQ(contents(path), "old archive");
    EXPECT_EQ(entries(dir.path()), 1u);
    {
        auto pending = PendingFile::create(path);
        ASSERT_TRUE(pending.ok());
        auto r = pending->commit();
        ASSERT_FALSE(r.ok()) << "an empty temporary: the writer wrote nothing";
        EXPECT_EQ(r.error().message, path + ": nothing was written");
    }
    EXPECT_EQ(contents(path), "old archive");
    {
        auto pending = PendingFile::create(path);
        ASSERT_TRUE(pending.ok());
        std::ofstream(pending->tempPath()) << "new archive";
        ASSERT_TRUE(pending->commit().ok());
    }
    EXPECT_EQ(contents(path), "new archive");
    EXPECT_EQ(entries(dir.path()), 1u);
    EXPECT_FALSE(PendingFile::create(dir.path()).ok()) << "a folder is not a file";
}
