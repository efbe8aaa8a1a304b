// sinkscope-cli: the command-line front end. runCli is main() minus the process, so tests can drive it.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace sinkscope::cli {

// Returns the process exit code: 0 success, 1 runtime error (bad file, bad prompt), 2 usage error.
int runCli(const std::vector<std::string> &args, std::ostream &out, std::ostream &err);

} // namespace sinkscope::cli
