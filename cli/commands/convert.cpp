#include "commands.h"
#include "common.h"

#include "sinkscope/model/convert.h"

#include <chrono>
#include <iomanip>

#include <unistd.h>

namespace sinkscope::cli {
namespace {

struct ConvertCommandOptions {
    std::string input, output;
};

constexpr const char *kProse =
    R"(Reads a GGUF file (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K, MXFP4 tensors) or a
Hugging Face model folder (config.json, model.safetensors or a sharded model.safetensors.index.json in
F32/F16/BF16, gpt-oss MXFP4 experts, tokenizer.json + tokenizer_config.json), dequantizes it to fp32 and
writes a self-contained SinkScope model archive (TorchScript code, weights, config and tokenizer).
Families: llama (Llama 1-3 with llama3/yarn/linear RoPE scaling, SmolLM), mistral, qwen2, qwen3, gemma3
(text), gpt_oss, phi3, gpt_neox (Pythia), olmo2, and gpt2 (GGUF). A tensor, config option or GGUF key
the converter does not implement is an error naming it (docs/models.md).
Every --model option also takes a GGUF file or a folder and converts it into the cache once.
)";

int runConvert(const ConvertCommandOptions &o, std::ostream &out, std::ostream &err)
{
    const auto start = std::chrono::steady_clock::now();
    // A terminal gets a live percentage; a log file gets a line every 25 %.
    const bool tty = ::isatty(STDERR_FILENO) == 1;
    int lastPercent = -1;
    Status s = convertModel(o.input, o.output, ConvertOptions{.progress = [&](double f, const std::string &) {
                                const int p = static_cast<int>(f * 100);
                                const int step = tty ? 1 : 25;
                                if (p / step != lastPercent / step) {
                                    err << (tty ? "\r" : "") << "converting: " << p << "%" << (tty ? "" : "\n")
                                        << std::flush;
                                    lastPercent = p;
                                }
                                return true;
                            }});
    if (tty) {
        err << "\n";
    }
    if (!s) {
        throw Failure{s.error().message};
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    out << "wrote " << o.output << " in " << std::fixed << std::setprecision(1) << secs << " s\n";
    return 0;
}

} // namespace

Command addConvertCommand(CLI::App &cli)
{
    auto o = std::make_shared<ConvertCommandOptions>();
    CLI::App *cmd =
        cli.add_subcommand("convert", "convert a GGUF file or a Hugging Face folder into a SinkScope model archive");
    cmd->footer(kProse);
    cmd->add_option("IN", o->input, "the GGUF file, Hugging Face model folder or its config.json to convert")
        ->type_name("IN.gguf|FOLDER")
        ->required();
    cmd->add_option("-o,--output", o->output, "the model archive to write")->type_name("OUT.pt")->required();
    return {cmd, [o](std::ostream &out, std::ostream &err) { return runConvert(*o, out, err); }};
}

} // namespace sinkscope::cli
