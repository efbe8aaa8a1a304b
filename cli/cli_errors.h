// The errors that set sinkscope-cli's exit code.
#pragma once

#include <string>

namespace sinkscope::cli {

// A bad command line found after parsing (e.g. a value the model rejects as out of its range): exit
// code 2, one line that points to the command's --help.
struct UsageError {
    std::string message;
};

// The command could not do its work (bad file, model error): exit code 1.
struct Failure {
    std::string message;
};

} // namespace sinkscope::cli
