// Shared by the libFuzzer targets (tests/fuzz): a scratch file for the readers that take a path, and the
// checks that abort when a parser breaks its own promise (libFuzzer reports an abort as a crash).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <unistd.h>

namespace sinkscope::fuzz {

// A file of this process's own (name with the pid, so parallel fuzzing jobs do not share it), in
// /dev/shm when there is one: the GGUF and safetensors readers open files by path.
inline std::string scratchPath(const std::string &suffix)
{
    const char *dir =
        access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp");
    return std::string(dir) + "/sinkscope-fuzz-" + std::to_string(getpid()) + suffix;
}

inline std::string writeScratch(const std::string &suffix, const uint8_t *data, size_t size)
{
    const std::string path = scratchPath(suffix);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char *>(data), static_cast<std::streamsize>(size));
    return path;
}

// Aborts with a message: a broken promise of the parser under test (round trip, error format).
[[noreturn]] inline void fail(const std::string &what)
{
    std::fprintf(stderr, "fuzz check failed: %s\n", what.c_str());
    std::abort();
}

inline void check(bool ok, const std::string &what)
{
    if (!ok) {
        fail(what);
    }
}

// Every error of a file reader names the file: its message starts with the path.
inline void checkNamesFile(const std::string &message, const std::string &path)
{
    check(message.rfind(path, 0) == 0, "error does not start with the file path: " + message);
}

} // namespace sinkscope::fuzz
