#include "cli.h"

#include <csignal>
#include <iostream>

int main(int argc, char **argv)
{
    // Past a file-size limit a write fails with EFBIG and the command says so, instead of the process
    // being killed by SIGXFSZ with a half-written file.
    std::signal(SIGXFSZ, SIG_IGN);
    std::vector<std::string> args(argv + 1, argv + argc);
    return sinkscope::cli::runCli(args, std::cout, std::cerr);
}
