#include "cli.h"
#include "commands/commands.h"
#include "common.h"

#include "sinkscope/config.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <new>
#include <set>
#include <sstream>

namespace sinkscope::cli {
namespace {

constexpr const char *kProgram = "sinkscope-cli";

constexpr const char *kOverviewFooter =
    R"(Every command that takes --model uses the default model (SmolLM2-135M-Instruct) without it, and takes
--device cpu|cuda|cuda:N (default cpu; 'doctor' lists the devices): the model runs there when LibTorch has
CUDA, and analyze's streaming statistics use SinkScope's CUDA kernels there when they are built
(docs/gpu.md). An unavailable device is an error that says why.
Run 'sinkscope-cli <command> --help' for the options of a command, 'sinkscope-cli --version' for the version.
)";

// Help in SinkScope's layout: "Usage: sinkscope-cli <command> ..." first, then the command's prose (its
// footer), then one line per option with its checks and default. The overview lists the commands as
// "  name        summary" lines closed by a blank line, which cmake/make_man.cmake reads.
class HelpFormatter : public CLI::Formatter
{
public:
    std::string make_usage(const CLI::App *app, std::string name) const override
    {
        std::string usage = "Usage: " + name;
        if (app->get_parent() == nullptr) {
            return usage + " <command> [options]\n";
        }
        for (const CLI::Option *opt : app->get_options()) {
            if (opt->get_positional()) {
                usage += " " + typeName(opt);
            } else if (opt->get_required()) {
                usage += " " + shortestName(opt) + " " + typeName(opt);
            }
        }
        return usage + " [options]\n";
    }

    std::string make_help(const CLI::App *app, std::string name, CLI::AppFormatMode) const override
    {
        return app->get_parent() == nullptr ? overview(app, name) : commandHelp(app, name);
    }

private:
    static constexpr size_t kCommandColumn = 12, kOptionColumn = 28, kWidth = 110;

    std::string overview(const CLI::App *app, const std::string &name) const
    {
        std::ostringstream out;
        out << name << " — " << app->get_description() << "\n\n" << make_usage(app, name) << "\nCommands:\n";
        for (const CLI::App *sub : app->get_subcommands({})) {
            out << "  " << padded(sub->get_name(), kCommandColumn - 1) << " " << sub->get_description() << "\n";
        }
        out << "\n" << app->get_footer();
        return out.str();
    }

    std::string commandHelp(const CLI::App *app, const std::string &name) const
    {
        std::ostringstream out;
        out << make_usage(app, name) << "\n" << app->get_footer() << "\nOptions:\n";
        for (const CLI::Option *opt : app->get_options()) {
            out << optionLine(opt);
        }
        return out.str();
    }

    // "  --top-k K                 next tokens to list (1 to 1000; default 10)", wrapped at kWidth.
    static std::string optionLine(const CLI::Option *opt)
    {
        std::string names = opt->get_positional() ? opt->get_name() : allNames(opt);
        if (!opt->get_positional() && opt->get_type_size() != 0) {
            names += " " + typeName(opt);
        }
        std::string text = opt->get_description();
        const std::vector<std::string> notes = optionNotes(opt);
        for (size_t i = 0; i < notes.size(); ++i) {
            text += (i == 0 ? " (" : "; ") + notes[i] + (i + 1 == notes.size() ? ")" : "");
        }
        std::string line = "  " + names;
        line =
            line.size() < kOptionColumn ? padded(line, kOptionColumn) : line + "\n" + std::string(kOptionColumn, ' ');
        return line + wrapped(text, kWidth - kOptionColumn, kOptionColumn) + "\n";
    }

    // What the definition says beyond the description: the checks, required, the default, the others
    // it excludes or needs.
    static std::vector<std::string> optionNotes(const CLI::Option *opt)
    {
        std::vector<std::string> notes;
        const std::string type = opt->get_type_name(); // "K:1 to 1000": CLI11 appends the checks after ':'
        for (size_t colon = type.find(':'); colon != std::string::npos;) {
            const size_t next = type.find(':', colon + 1);
            notes.push_back(type.substr(colon + 1, next == std::string::npos ? next : next - colon - 1));
            colon = next;
        }
        if (opt->get_required()) {
            notes.push_back("required");
        }
        if (opt->get_type_size() != 0 && !opt->get_default_str().empty()) {
            notes.push_back("default " + opt->get_default_str());
        }
        if (!opt->get_excludes().empty()) {
            notes.push_back("excludes " + joinedNames(opt->get_excludes()));
        }
        if (!opt->get_needs().empty()) {
            notes.push_back("needs " + joinedNames(opt->get_needs()));
        }
        return notes;
    }

    // Sorted: CLI11 keeps them in a set of pointers.
    static std::string joinedNames(const std::set<CLI::Option *> &options)
    {
        std::vector<std::string> names;
        for (const CLI::Option *opt : options) {
            names.push_back(shortestName(opt));
        }
        std::sort(names.begin(), names.end());
        std::string joined;
        for (const auto &n : names) {
            joined += (joined.empty() ? "" : ", ") + n;
        }
        return joined;
    }

    // Breaks at spaces so that no line passes `width`; explicit line breaks stay. Lines after the first
    // are indented by `indent`.
    static std::string wrapped(const std::string &text, size_t width, size_t indent)
    {
        std::string out, word;
        size_t column = 0;
        auto flushWord = [&] {
            if (word.empty()) {
                return;
            }
            if (column > 0 && column + 1 + word.size() > width) {
                out += "\n" + std::string(indent, ' ');
                column = 0;
            }
            out += (column > 0 ? " " : "") + word;
            column += (column > 0 ? 1 : 0) + word.size();
            word.clear();
        };
        for (char c : text) {
            if (c == ' ' || c == '\n') {
                flushWord();
                if (c == '\n') {
                    out += "\n" + std::string(indent, ' ');
                    column = 0;
                }
            } else {
                word += c;
            }
        }
        flushWord();
        return out;
    }

    // The type name without the validators' descriptions CLI11 appends after ':'.
    static std::string typeName(const CLI::Option *opt)
    {
        const std::string type = opt->get_type_name();
        return type.substr(0, type.find(':'));
    }

    static std::string shortestName(const CLI::Option *opt)
    {
        return opt->get_snames().empty() ? "--" + opt->get_lnames().front() : "-" + opt->get_snames().front();
    }

    static std::string allNames(const CLI::Option *opt)
    {
        std::string names;
        for (const auto &s : opt->get_snames()) {
            names += (names.empty() ? "-" : ", -") + s;
        }
        for (const auto &l : opt->get_lnames()) {
            names += (names.empty() ? "--" : ", --") + l;
        }
        return names;
    }

    static std::string padded(std::string text, size_t width)
    {
        text.resize(std::max(text.size(), width), ' ');
        return text;
    }
};

// CLI11's message, except for an option given without its value, which CLI11 words as
// "--top-k: 1 required K:1 to 1000 missing".
std::string parseMessage(const CLI::ParseError &e)
{
    const std::string message = e.what();
    if (dynamic_cast<const CLI::ArgumentMismatch *>(&e) && message.find(" missing") != std::string::npos &&
        message.find(':') != std::string::npos) {
        return message.substr(0, message.find(':')) + " needs a value";
    }
    return message;
}

bool wantsHelp(const std::vector<std::string> &args)
{
    return std::find(args.begin(), args.end(), "--help") != args.end() ||
           std::find(args.begin(), args.end(), "-h") != args.end();
}

} // namespace

int runCli(const std::vector<std::string> &args, std::ostream &out, std::ostream &err)
{
    CLI::App app("attention sinks in language models, from the command line", kProgram);
    app.formatter(std::make_shared<HelpFormatter>());
    app.set_help_flag("-h,--help", "print this help and exit");
    app.option_defaults()->always_capture_default();
    app.require_subcommand(1, 1);
    app.footer(kOverviewFooter);
    const std::vector<Command> commands{addInfoCommand(app),      addConvertCommand(app),     addRunCommand(app),
                                        addGenerateCommand(app),  addDoctorCommand(app),      addAnalyzeCommand(app),
                                        addCompareCommand(app),   addMitigationsCommand(app), addActSearchCommand(app),
                                        addStreamPplCommand(app), addProbeCommand(app),       addProfileCommand(app),
                                        addMergeCommand(app),     addPaperCommand(app),       addLessonCommand(app)};

    if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
        out << app.help();
        return args.empty() ? 2 : 0;
    }
    if (args[0] == "--version") {
        out << kProgram << " " << SINKSCOPE_VERSION << "\n";
        return 0;
    }
    const std::string name = args[0];
    const auto command =
        std::find_if(commands.begin(), commands.end(), [&](const Command &c) { return c.app->get_name() == name; });
    if (command == commands.end()) {
        err << kProgram << ": unknown command '" << name << "' (try --help)\n";
        return 2;
    }
    // --help anywhere on the line shows the help, before the parse can object to the other arguments.
    if (wantsHelp(args)) {
        out << command->app->help(kProgram);
        return 0;
    }
    const std::string prefix = std::string(kProgram) + " " + name + ": ";
    const std::string usageHint = " (try '" + std::string(kProgram) + " " + name + " --help')\n";
    try {
        app.parse(std::vector<std::string>(args.rbegin(), args.rend())); // CLI11 takes them reversed
        return command->run(out, err);
    } catch (const CLI::ParseError &e) {
        err << prefix << parseMessage(e) << usageHint;
        return 2;
    } catch (const UsageError &e) {
        err << prefix << e.message << usageHint;
        return 2;
    } catch (const Failure &f) {
        err << prefix << "error: " << f.message << "\n";
        return 1;
    } catch (const std::bad_alloc &) {
        // An allocation the memory guard did not foresee: one line, never a crash.
        err << prefix << "error: out of memory; use fewer tokens or fewer attention maps, or a GPU\n";
        return 1;
    } catch (const std::exception &e) {
        std::string what = e.what();
        what = what.substr(0, what.find('\n'));
        err << prefix << "error: " << what << "\n";
        return 1;
    }
}

} // namespace sinkscope::cli
