#include "common.h"

#include "sinkscope/runtime/paths.h"
#include "sinkscope/runtime/runtime.h"

#include <nlohmann/json.hpp>

#include <sstream>

namespace sinkscope::cli {

DevicePlan chosenDevice(const Args &a)
{
    const auto id = a.get("--device");
    if (!id || *id == "cpu") {
        return DevicePlan{};
    }
    auto plan = planDevice(*id, availableDevices());
    if (!plan) {
        throw Failure{plan.error().message};
    }
    return *plan;
}

std::shared_ptr<const Model> loadModel(const Args &a, std::ostream &err, DevicePlan *plan)
{
    const DevicePlan device = chosenDevice(a);
    if (plan) {
        *plan = device;
    }
    if (device.device.kind == DeviceKind::Cuda && device.modelDevice == "cpu") {
        err << "note: the model runs on the CPU (" << device.device.id << ": " << device.device.note << ")\n";
    }
    std::string path;
    if (auto m = a.get("--model")) {
        path = *m;
    } else {
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
    }
    LoadOptions options;
    options.device = device.modelDevice;
    auto model = Model::load(path, options);
    if (!model) {
        throw Failure{model.error().message};
    }
    return *model;
}

void warnIfSlowBlas(std::ostream &err)
{
    const BlasCheck check = checkBlas();
    if (check.slow) {
        err << "warning: " << check.message << "\n";
    }
}

std::vector<int64_t> parseIds(const std::string &text)
{
    std::vector<int64_t> ids;
    std::stringstream ss(text);
    std::string part;
    while (std::getline(ss, part, ',')) {
        char *end = nullptr;
        const long long v = std::strtoll(part.c_str(), &end, 10);
        if (part.empty() || *end != '\0') {
            throw UsageError{"--ids: '" + part + "' is not a token id"};
        }
        ids.push_back(v);
    }
    return ids;
}

std::optional<bool> bosOption(const Args &a)
{
    if (a.has("--bos") && a.has("--no-bos")) {
        throw UsageError{"--bos and --no-bos exclude each other"};
    }
    if (a.has("--bos")) {
        return true;
    }
    if (a.has("--no-bos")) {
        return false;
    }
    return std::nullopt;
}

void requirePromptOrIds(const Args &a)
{
    if (a.has("--ids") && a.has("--prompt")) {
        throw UsageError{"--prompt and --ids exclude each other"};
    }
    if (!a.has("--ids") && !a.has("--prompt")) {
        throw UsageError{"--prompt is required"};
    }
    (void)bosOption(a);
}

std::vector<int64_t> promptTokens(const Model &model, const Args &a)
{
    if (auto ids = a.get("--ids")) {
        if (a.has("--prompt")) {
            throw UsageError{"--prompt and --ids exclude each other"};
        }
        return parseIds(*ids);
    }
    auto prompt = a.get("--prompt");
    if (!prompt) {
        throw UsageError{"--prompt is required"};
    }
    auto ids = model.tokenize(*prompt, bosOption(a));
    if (!ids) {
        throw Failure{ids.error().message};
    }
    return *ids;
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

std::vector<std::string> splitSpecList(const std::string &text)
{
    std::vector<std::string> specs;
    std::stringstream ss(text);
    std::string piece;
    while (std::getline(ss, piece, ',')) {
        const auto eq = piece.find('='), colon = piece.find(':');
        if (!specs.empty() && eq != std::string::npos && (colon == std::string::npos || eq < colon)) {
            specs.back() += "," + piece;
        } else {
            specs.push_back(piece);
        }
    }
    if (specs.empty()) {
        throw UsageError{"--mitigation is empty"};
    }
    return specs;
}

} // namespace sinkscope::cli
