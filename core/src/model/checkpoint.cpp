#include "sinkscope/model/checkpoint.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <numeric>

namespace sinkscope {
namespace {

namespace fs = std::filesystem;

std::string lower(std::string s)
{
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

// An integer JSON value under one of `keys` in the object of file `path`.
std::optional<int64_t> stepInJson(const fs::path &path, const std::vector<const char *> &keys)
{
    std::error_code ec;
    if (!fs::is_regular_file(path, ec)) {
        return std::nullopt;
    }
    std::ifstream in(path, std::ios::binary);
    const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) {
        return std::nullopt;
    }
    for (const char *key : keys) {
        const auto it = j.find(key);
        if (it != j.end() && it->is_number_integer() && it->get<int64_t>() >= 0) {
            return it->get<int64_t>();
        }
    }
    return std::nullopt;
}

} // namespace

std::optional<int64_t> stepInName(const std::string &name)
{
    static const char *const kWords[] = {"global_step", "checkpoint", "step", "ckpt", "iter"};
    const std::string s = lower(name);
    std::optional<int64_t> found;
    size_t foundAt = 0;
    for (const char *word : kWords) {
        const std::string w = word;
        for (size_t at = s.find(w); at != std::string::npos; at = s.find(w, at + 1)) {
            // The word starts the name or follows a non-letter ("pythia-step1000", not "footstep1000").
            if (at > 0 && std::isalpha(static_cast<unsigned char>(s[at - 1]))) {
                continue;
            }
            size_t digits = at + w.size();
            if (digits < s.size() && (s[digits] == '-' || s[digits] == '_' || s[digits] == '=')) {
                ++digits;
            }
            size_t end = digits;
            while (end < s.size() && std::isdigit(static_cast<unsigned char>(s[end]))) {
                ++end;
            }
            if (end == digits || end - digits > 15) {
                continue;
            }
            if (!found || at >= foundAt) {
                found = std::stoll(s.substr(digits, end - digits));
                foundAt = at;
            }
        }
    }
    return found;
}

std::optional<int64_t> checkpointStep(const std::string &path)
{
    const fs::path p(path);
    std::error_code ec;
    const bool isDir = fs::is_directory(p, ec);
    const fs::path named = p.has_filename() ? p : p.parent_path(); // "run/step1000/" names its folder
    if (auto step = stepInName(isDir ? named.filename().string() : named.stem().string())) {
        return step;
    }
    const fs::path folder = isDir ? named : named.parent_path();
    if (auto step = stepInJson(folder / "config.json", {"step", "global_step", "training_step"})) {
        return step;
    }
    if (auto step = stepInJson(folder / "trainer_state.json", {"global_step"})) {
        return step;
    }
    if (!isDir && !folder.empty()) {
        return stepInName(folder.filename().string());
    }
    return std::nullopt;
}

std::vector<size_t> orderBySteps(const std::vector<std::optional<int64_t>> &steps)
{
    std::vector<size_t> order(steps.size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
        if (steps[a] && steps[b]) {
            return *steps[a] < *steps[b];
        }
        return steps[a].has_value() && !steps[b].has_value();
    });
    return order;
}

} // namespace sinkscope
