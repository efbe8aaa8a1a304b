#include "sinkscope/model/convert.h"
#include "commands.h"
#include "common.h"

#include <chrono>
#include <iomanip>
#include <unistd.h>

namespace sinkscope::cli {
namespace {

constexpr const char *kConvertHelp = R"(Usage: sinkscope-cli convert IN.gguf -o OUT.pt

Reads a GGUF file (llama or gpt2 family; F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K
tensors), dequantizes it to fp32 and writes a self-contained SinkScope model archive (TorchScript code,
weights, config and tokenizer).
)";

int cmdConvert(const Args &a, std::ostream &out, std::ostream &err)
{
    if (a.positional().size() != 1) {
        throw UsageError{"convert needs exactly one input GGUF file"};
    }
    auto output = a.get("-o");
    if (!output) {
        throw UsageError{"convert needs -o OUT.pt"};
    }
    const auto start = std::chrono::steady_clock::now();
    // A terminal gets a live percentage; a log file gets a line every 25 %.
    const bool tty = ::isatty(STDERR_FILENO) == 1;
    int lastPercent = -1;
    Status s = convertGguf(a.positional()[0], *output, ConvertOptions{.progress = [&](double f, const std::string &) {
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
    out << "wrote " << *output << " in " << std::fixed << std::setprecision(1) << secs << " s\n";
    return 0;
}

} // namespace

Command convertCommand()
{
    return {"convert", kConvertHelp, {}, {"-o", "--output"}, cmdConvert};
}

} // namespace sinkscope::cli
