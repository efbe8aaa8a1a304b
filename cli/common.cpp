#include "common.h"
#include "cli_figures.h"

#include "sinkscope/common/atomic_file.h"
#include "sinkscope/model/convert.h"

#include "sinkscope/runtime/paths.h"
#include "sinkscope/runtime/runtime.h"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <sstream>

namespace sinkscope::cli {

namespace {

// --device: where the model and the statistics kernels run (sinkscope/device.h).
DevicePlan chosenDevice(const std::string &id)
{
    if (id == "cpu") {
        return DevicePlan{};
    }
    auto plan = planDevice(id, availableDevices());
    if (!plan) {
        throw Failure{plan.error().message};
    }
    return *plan;
}

} // namespace

CLI::Validator oneOf(const std::vector<std::string> &choices)
{
    std::string names;
    for (const auto &c : choices) {
        names += (names.empty() ? "" : "|") + c;
    }
    return CLI::IsMember(choices).description(names);
}

CLI::Validator figureFormatList()
{
    return CLI::Validator(
        [](std::string &input) {
            std::string problem;
            return parseFormatList(input, &problem).empty() ? problem : std::string();
        },
        "");
}

CLI::Validator idList()
{
    return CLI::Validator(
        [](std::string &input) -> std::string {
            std::string bad;
            return isIdList(input, &bad) ? std::string() : "'" + bad + "' is not a 64-bit integer";
        },
        "");
}

void addModelOptions(CLI::App &command, ModelOptions &options)
{
    command
        .add_option("--model", options.model,
                    "model archive (.pt), TorchScript file, GGUF file or Hugging Face folder (converted once into the "
                    "cache); without it the default model")
        ->type_name("FILE");
    command.add_option("--device", options.device, "where the model runs: cpu, cuda or cuda:N; 'doctor' lists them")
        ->type_name("DEVICE");
}

std::shared_ptr<const Model> loadModel(const ModelOptions &options, std::ostream &err, DevicePlan *plan)
{
    const DevicePlan device = chosenDevice(options.device);
    if (plan) {
        *plan = device;
    }
    if (device.device.kind == DeviceKind::Cuda && device.modelDevice == "cpu") {
        err << "note: the model runs on the CPU (" << device.device.id << ": " << device.device.note << ")\n";
    }
    std::string path = options.model;
    if (path.empty()) {
        bool announced = false;
        auto ensured = ensureDefaultModel([&](double, const std::string &) {
            if (!announced) {
                err << "converting the default model once (" << defaultGgufPath() << ")\n";
                announced = true;
            }
            return true;
        });
        if (!ensured) {
            throw Failure{ensured.error().message};
        }
        path = *ensured;
    } else if (modelSourceOf(path) != ModelSource::Archive) {
        bool announced = false;
        auto archive = archiveFor(path, [&](double, const std::string &) {
            if (!announced) {
                err << "converting " << path << " once into " << convertedArchivePath(path) << "\n";
                announced = true;
            }
            return true;
        });
        if (!archive) {
            throw Failure{archive.error().message};
        }
        path = *archive;
    }
    LoadOptions load;
    load.device = device.modelDevice;
    auto model = Model::load(path, load);
    if (!model) {
        throw Failure{model.error().message};
    }
    return *model;
}

void addTokenOptions(CLI::App &command, TokenOptions &options)
{
    options.promptOption =
        command.add_option("--prompt", options.prompt, "the prompt text; this or --ids is needed")->type_name("TEXT");
    options.idsOption = command
                            .add_option("--ids", options.ids,
                                        "token ids instead of a prompt, e.g. 1,2,3, for models without a tokenizer")
                            ->type_name("LIST")
                            ->check(idList())
                            ->excludes(options.promptOption);
    auto *bos =
        command.add_flag("--bos", options.bos, "add the BOS token; without --bos or --no-bos the tokenizer decides");
    command.add_flag("--no-bos", options.noBos, "do not add the BOS token")->excludes(bos);
}

void requirePromptOrIds(const TokenOptions &options)
{
    if (options.promptOption->count() == 0 && options.idsOption->count() == 0) {
        throw UsageError{"--prompt is required"};
    }
}

std::vector<int64_t> promptTokens(const Model &model, const TokenOptions &options)
{
    requirePromptOrIds(options);
    if (options.idsOption->count() > 0) {
        return parseIds(options.ids);
    }
    const std::optional<bool> bos = options.bos     ? std::optional(true)
                                    : options.noBos ? std::optional(false)
                                                    : std::nullopt;
    auto ids = model.tokenize(options.prompt, bos);
    if (!ids) {
        throw Failure{ids.error().message};
    }
    return *ids;
}

void warnIfSlowBlas(std::ostream &err)
{
    const BlasCheck check = checkBlas();
    if (check.slow) {
        err << "warning: " << check.message << "\n";
    }
}

std::string visible(const std::string &s)
{
    std::string out;
    for (unsigned char ch : s) {
        switch (ch) {
        case '\n':
            out += "\\n";
            break;
        case '\t':
            out += "\\t";
            break;
        case '\r':
            out += "\\r";
            break;
        default:
            if (ch < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\x%02x", ch);
                out += buf;
            } else {
                out += static_cast<char>(ch);
            }
        }
    }
    return out;
}

std::string tokenString(const Model &model, int64_t id)
{
    auto tok = model.tokenizer();
    if (!tok || id < 0 || id >= tok->vocabSize()) {
        return "#" + std::to_string(id);
    }
    return tok->tokenText(id);
}

std::string jsonSafe(const std::string &s)
{
    return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void writeOutputFile(const std::string &path, const std::string &text)
{
    if (auto ok = writeFileAtomic(path, text); !ok) {
        throw Failure{ok.error().message};
    }
}

} // namespace sinkscope::cli
