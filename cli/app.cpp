#include "cli.h"
#include "commands/commands.h"
#include "common.h"

#include "sinkscope/config.h"

#include <algorithm>

namespace sinkscope::cli {
namespace {

constexpr const char *kMainHelp = R"(sinkscope-cli — attention sinks in language models, from the command line

Usage: sinkscope-cli <command> [options]

Commands:
  info        describe a model (architecture, sizes, tokenizer, contract)
  convert     convert a GGUF file into a SinkScope model archive
  run         one forward pass: tokens, top-k next tokens, first-token attention mass per layer and head
  generate    continue a prompt, streaming tokens as they come
  doctor      check the runtime: LibTorch, threads, BLAS speed
  analyze     sink metrics for every layer and head: metrics.json and heads.csv
  compare     a prompt with and without mitigations (top-k, KL, perplexity, attention change, continuation)
  mitigations the mitigation methods: parameters, ranges, defaults, head scopes and sources
  act-search  the heads ACT calibration should act on, searched one head at a time on probe texts
  stream-ppl  the StreamingLLM evaluation: per-token NLL with a rolling KV cache (dense, window, sinks)
  probe       hallucination probes: accuracy and answer log-probability per mitigation setting

Every command that takes --model uses the default model (SmolLM2-135M-Instruct) without it, and takes
--device cpu|cuda|cuda:N (default cpu; 'doctor' lists the devices): the model runs there when LibTorch has
CUDA, and analyze's streaming statistics use SinkScope's CUDA kernels there when they are built
(docs/gpu.md). An unavailable device is an error that says why.
Run 'sinkscope-cli <command> --help' for the options of a command.
)";

bool wantsHelp(const std::vector<std::string> &args)
{
    return std::find(args.begin(), args.end(), "--help") != args.end() ||
           std::find(args.begin(), args.end(), "-h") != args.end();
}

} // namespace

int runCli(const std::vector<std::string> &args, std::ostream &out, std::ostream &err)
{
    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        out << kMainHelp;
        return args.empty() ? 2 : 0;
    }
    if (args[0] == "--version") {
        out << "sinkscope-cli " << SINKSCOPE_VERSION << "\n";
        return 0;
    }
    const std::string cmd = args[0];
    const std::vector<std::string> rest(args.begin() + 1, args.end());
    std::vector<Command> commands{infoCommand(),      convertCommand(), runCommand(),        generateCommand(),
                                  doctorCommand(),    analyzeCommand(), streamPplCommand(),  probeCommand(),
                                  actSearchCommand(), compareCommand(), mitigationsCommand()};
    auto it = std::find_if(commands.begin(), commands.end(), [&](const Command &c) { return c.name == cmd; });
    if (it == commands.end()) {
        err << "sinkscope-cli: unknown command '" << cmd << "' (try --help)\n";
        return 2;
    }
    if (std::find(it->valued.begin(), it->valued.end(), "--model") != it->valued.end()) {
        it->valued.push_back("--device");
    }
    if (wantsHelp(rest)) {
        out << it->help;
        return 0;
    }
    try {
        std::vector<std::string> normalized = rest;
        for (auto &s : normalized) {
            if (s == "--output") {
                s = "-o";
            }
        }
        Args parsed(normalized, it->switches, it->valued);
        return it->run(parsed, out, err);
    } catch (const UsageError &e) {
        err << "sinkscope-cli " << cmd << ": " << e.message << " (try 'sinkscope-cli " << cmd << " --help')\n";
        return 2;
    } catch (const Failure &f) {
        err << "sinkscope-cli " << cmd << ": error: " << f.message << "\n";
        return 1;
    } catch (const std::exception &e) {
        err << "sinkscope-cli " << cmd << ": error: " << e.what() << "\n";
        return 1;
    }
}

} // namespace sinkscope::cli
