// The commands of sinkscope-cli, one file each in cli/commands/.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace sinkscope::cli {

class Args;

// A command: its help text, the flags it accepts (switches take no value) and what runs it.
struct Command {
    std::string name, help;
    std::vector<std::string> switches, valued;
    int (*run)(const Args &, std::ostream &out, std::ostream &err);
};

Command infoCommand();
Command convertCommand();
Command runCommand();
Command generateCommand();
Command doctorCommand();
Command analyzeCommand();
Command compareCommand();
Command mitigationsCommand();
Command actSearchCommand();
Command streamPplCommand();
Command probeCommand();

} // namespace sinkscope::cli
