// What the commands of sinkscope-cli share: the errors that set the exit code, option helpers for
// CLI11 (ranges, choices, id lists), loading the model (--model, --device), the prompt's tokens
// (--prompt, --ids, --bos) and token display.
#pragma once

#include "cli_errors.h"
#include "id_list.h"

#include "sinkscope/model/model.h"
#include "sinkscope/runtime/device.h"

#include <CLI/CLI.hpp>

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

namespace sinkscope::cli {

// Writes an output file whole or not at all (writeFileAtomic); Failure with the reason otherwise.
void writeOutputFile(const std::string &path, const std::string &text);

// An inclusive range check; the help shows "LO to HI", a bad value gives one line naming the range.
template <typename T> CLI::Validator between(T lo, T hi)
{
    std::ostringstream range;
    range << lo << " to " << hi;
    return CLI::Validator(
        [lo, hi](std::string &input) -> std::string {
            T value{};
            if (CLI::detail::lexical_cast(input, value) && value >= lo && value <= hi) {
                return {};
            }
            std::ostringstream s;
            s << "'" << input << "' is not " << (std::is_integral_v<T> ? "an integer" : "a number") << " in [" << lo
              << ", " << hi << "]";
            return s.str();
        },
        range.str());
}

// One of a fixed set of words; the help lists them.
CLI::Validator oneOf(const std::vector<std::string> &choices);

// "png,svg,pdf" (any subset): figure formats; a bad entry is a usage error before any work.
CLI::Validator figureFormatList();

// "1,2,3": comma-separated integers (token ids, positions).
CLI::Validator idList();

// --model and --device, which every command that loads a model takes.
struct ModelOptions {
    std::string model; // empty: the default model, converted once
    std::string device = "cpu";
};
void addModelOptions(CLI::App &command, ModelOptions &options);

// Loads --model (or the default model) on --device. `plan` (optional) receives the device plan the
// model was loaded by (the registry is queried once).
std::shared_ptr<const Model> loadModel(const ModelOptions &options, std::ostream &err, DevicePlan *plan = nullptr);

// --prompt TEXT or --ids LIST, and --bos / --no-bos.
struct TokenOptions {
    std::string prompt, ids;
    bool bos = false, noBos = false;
    CLI::Option *promptOption = nullptr, *idsOption = nullptr; // whether each was given
};
void addTokenOptions(CLI::App &command, TokenOptions &options);

// One of --prompt and --ids is needed; called before the model loads so that it fails fast.
void requirePromptOrIds(const TokenOptions &options);

// The tokens of --prompt (tokenized, --bos/--no-bos or the tokenizer's choice) or --ids.
std::vector<int64_t> promptTokens(const Model &model, const TokenOptions &options);

void warnIfSlowBlas(std::ostream &err);

// Token text for display: control characters escaped so one token stays on one line.
std::string visible(const std::string &s);

std::string tokenString(const Model &model, int64_t id);

// JSON strings must be valid UTF-8; a token may hold a partial sequence.
std::string jsonSafe(const std::string &s);

} // namespace sinkscope::cli
