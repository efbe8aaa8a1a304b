// Runs sinkscope-cli (SINKSCOPE_CLI_PATH, set by the cli_tests target) as a user would: a subprocess
// with its own stdout and stderr, no standard input.
#pragma once

#include "support/test_paths.h"
#include "support/tiny_models.h"

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <sys/wait.h>
#include <vector>

namespace sinkscope::testing {

struct CliRun {
    int code = -1;
    std::string out, err;

    // Lines on stderr (each ends in a newline), not counting the slow-BLAS warning: on a shared machine
    // that is busy for a moment the CLI says so on a line of its own before any error.
    [[nodiscard]] long errLines() const
    {
        static const std::string slowBlas = "warning: matrix multiply runs at ";
        long lines = 0;
        for (std::size_t start = 0, end = 0; (end = err.find('\n', start)) != std::string::npos; start = end + 1) {
            lines += err.compare(start, slowBlas.size(), slowBlas) == 0 ? 0 : 1;
        }
        return lines;
    }
};

inline std::string shellQuote(const std::string &s)
{
    std::string q = "'";
    for (char c : s) {
        q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    }
    return q + "'";
}

// `env` is prepended to the command line, e.g. "LD_LIBRARY_PATH=/x".
inline CliRun runCli(const std::vector<std::string> &args, const std::string &env = "")
{
    TempDir dir;
    std::string cmd = env + " " + shellQuote(SINKSCOPE_CLI_PATH);
    for (const auto &a : args) {
        cmd += " " + shellQuote(a);
    }
    cmd += " >" + shellQuote(dir.file("out")) + " 2>" + shellQuote(dir.file("err")) + " </dev/null";
    CliRun r;
    const int status = std::system(cmd.c_str());
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    auto slurp = [](const std::string &p) {
        std::ifstream in(p);
        return std::string(std::istreambuf_iterator<char>(in), {});
    };
    r.out = slurp(dir.file("out"));
    r.err = slurp(dir.file("err"));
    return r;
}

// dir/tiny.pt: the tiny Llama written as dir/tiny.gguf and converted by the CLI, as a user does first.
inline CliRun convertTinyLlama(const TempDir &dir)
{
    writeTinyLlamaGguf(dir.file("tiny.gguf"));
    return runCli({"convert", dir.file("tiny.gguf"), "-o", dir.file("tiny.pt")}, "SINKSCOPE_TORCH_THREADS=1");
}

} // namespace sinkscope::testing
