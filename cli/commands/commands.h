// The commands of sinkscope-cli, one file each in cli/commands/. Each add<Name>Command defines its
// subcommand on the app (options with their help, types, defaults and checks) and returns what runs it
// once the command line has parsed.
#pragma once

#include <functional>
#include <iosfwd>

namespace CLI {
class App;
} // namespace CLI

namespace sinkscope::cli {

struct Command {
    CLI::App *app = nullptr;
    std::function<int(std::ostream &out, std::ostream &err)> run; // returns the exit code
};

Command addInfoCommand(CLI::App &cli);
Command addConvertCommand(CLI::App &cli);
Command addRunCommand(CLI::App &cli);
Command addGenerateCommand(CLI::App &cli);
Command addDoctorCommand(CLI::App &cli);
Command addAnalyzeCommand(CLI::App &cli);
Command addCompareCommand(CLI::App &cli);
Command addMitigationsCommand(CLI::App &cli);
Command addActSearchCommand(CLI::App &cli);
Command addStreamPplCommand(CLI::App &cli);
Command addProbeCommand(CLI::App &cli);
Command addProfileCommand(CLI::App &cli);
Command addMergeCommand(CLI::App &cli);
Command addPaperCommand(CLI::App &cli);
Command addLessonCommand(CLI::App &cli);

} // namespace sinkscope::cli
