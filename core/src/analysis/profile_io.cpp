// Profile files: profile.json, samples/*.bin and the CSVs; reading them back; merging shards.
#include "sinkscope/analysis/profile.h"
#include "sinkscope/common/atomic_file.h"
#include "sinkscope/common/csv.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace sinkscope {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kFormat[] = "sinkscope-profile";
constexpr int kVersion = 1;
constexpr char kSamplesMagic[8] = {'S', 'S', 'P', 'R', 'O', 'F', '0', '1'};

const char *kindName(ProfileDataKind kind)
{
    switch (kind) {
    case ProfileDataKind::Natural:
        return "natural";
    case ProfileDataKind::Random:
        return "random";
    case ProfileDataKind::Repeated:
        return "repeated";
    case ProfileDataKind::Jsonl:
        return "jsonl";
    case ProfileDataKind::Folder:
        return "folder";
    }
    return "natural";
}

std::optional<ProfileDataKind> kindFromName(const std::string &name)
{
    for (auto k : {ProfileDataKind::Natural, ProfileDataKind::Random, ProfileDataKind::Repeated, ProfileDataKind::Jsonl,
                   ProfileDataKind::Folder}) {
        if (name == kindName(k)) {
            return k;
        }
    }
    return std::nullopt;
}

json number(double x)
{
    return std::isfinite(x) ? json(x) : json(nullptr);
}

std::string safeName(const std::string &s)
{
    std::string out;
    for (unsigned char c : s) {
        out += (std::isalnum(c) || c == '-' || c == '_' || c == '.') ? static_cast<char>(c) : '_';
    }
    return out.empty() ? "_" : out;
}

std::string samplesFile(const Profile &profile, const ProfileCell &cell)
{
    size_t model = 0;
    while (model < profile.models.size() && profile.models[model].key != cell.model) {
        ++model;
    }
    return "samples/" + std::to_string(model) + "-" + safeName(cell.model) + "__" + safeName(cell.data) + ".bin";
}

// Sample index ranges [[first, last), ...] of a cell: compact in JSON, exact for merges.
json indexRanges(const ProfileCell &cell)
{
    json ranges = json::array();
    for (size_t i = 0; i < cell.samples.size();) {
        size_t j = i + 1;
        while (j < cell.samples.size() && cell.samples[j].index == cell.samples[j - 1].index + 1) {
            ++j;
        }
        ranges.push_back({cell.samples[i].index, cell.samples[j - 1].index + 1});
        i = j;
    }
    return ranges;
}

json settingsJson(const ProfileSettings &s)
{
    return {{"samples", s.samples},
            {"tokens", s.tokens},
            {"seed", s.seed},
            {"bos", s.bos ? json(*s.bos) : json("tokenizer")},
            {"epsilon", s.epsilon},
            {"bootstrap", s.bootstrap},
            {"confidence", s.confidence}};
}

json modelJson(const ProfileModel &m)
{
    return {{"key", m.key},
            {"path", m.path},
            {"name", m.name},
            {"family", m.family},
            {"layers", m.layers},
            {"heads", m.heads},
            {"step", m.step ? json(*m.step) : json(nullptr)}};
}

// {"mean": ..., "ci_low": ..., "ci_high": ..., "n": ...} of one block: [L][H], [L] or a scalar.
json blockJson(const ProfileBlock &b, const std::vector<ProfileStat> &stats, int64_t heads, bool grid)
{
    auto pick = [&](auto field) {
        auto at = [&](int64_t i) { return field(stats[static_cast<size_t>(b.offset + i)]); };
        if (b.size == 1 && !grid) {
            return at(0);
        }
        json out = json::array();
        if (grid) {
            for (int64_t l = 0; l < b.size / heads; ++l) {
                json row = json::array();
                for (int64_t h = 0; h < heads; ++h) {
                    row.push_back(at(l * heads + h));
                }
                out.push_back(row);
            }
        } else {
            for (int64_t i = 0; i < b.size; ++i) {
                out.push_back(at(i));
            }
        }
        return out;
    };
    return {{"mean", pick([](const ProfileStat &s) { return number(s.mean); })},
            {"ci_low", pick([](const ProfileStat &s) { return number(s.low); })},
            {"ci_high", pick([](const ProfileStat &s) { return number(s.high); })},
            {"n", pick([](const ProfileStat &s) { return json(s.n); })}};
}

std::string fmt(double x)
{
    if (!std::isfinite(x)) {
        return "nan";
    }
    std::ostringstream s;
    s.precision(10);
    s << x;
    return s.str();
}

std::string stepText(const Profile &profile, const std::string &key)
{
    for (const auto &m : profile.models) {
        if (m.key == key && m.step) {
            return std::to_string(*m.step);
        }
    }
    return "";
}

Status writeText(const fs::path &path, const std::string &text)
{
    return writeFileAtomic(path.string(), text);
}

Status writeSamples(const fs::path &path, const ProfileCell &cell)
{
    std::ostringstream f(std::ios::binary);
    const uint64_t width = static_cast<uint64_t>(cell.layout.width());
    const uint64_t count = cell.samples.size();
    f.write(kSamplesMagic, sizeof kSamplesMagic);
    f.write(reinterpret_cast<const char *>(&width), sizeof width);
    f.write(reinterpret_cast<const char *>(&count), sizeof count);
    for (const auto &s : cell.samples) {
        f.write(reinterpret_cast<const char *>(&s.index), sizeof s.index);
        f.write(reinterpret_cast<const char *>(s.values.data()), static_cast<std::streamsize>(width * sizeof(double)));
    }
    return writeFileAtomic(path.string(), f.str());
}

Status readSamples(const fs::path &path, ProfileCell &cell, size_t expected)
{
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        return Error{ErrorCode::Io, path.string() + ": cannot open (the profile's samples are missing)"};
    }
    char magic[8] = {};
    uint64_t width = 0, count = 0;
    f.read(magic, sizeof magic);
    f.read(reinterpret_cast<char *>(&width), sizeof width);
    f.read(reinterpret_cast<char *>(&count), sizeof count);
    if (!f || std::memcmp(magic, kSamplesMagic, sizeof magic) != 0) {
        return Error{ErrorCode::Corrupt, path.string() + ": not a SinkScope profile samples file"};
    }
    if (width != static_cast<uint64_t>(cell.layout.width()) || count != expected) {
        return Error{ErrorCode::Corrupt, path.string() + ": holds " + std::to_string(count) + " samples of " +
                                             std::to_string(width) + " values; profile.json says " +
                                             std::to_string(expected) + " of " + std::to_string(cell.layout.width())};
    }
    cell.samples.resize(count);
    for (auto &s : cell.samples) {
        s.values.resize(width);
        f.read(reinterpret_cast<char *>(&s.index), sizeof s.index);
        f.read(reinterpret_cast<char *>(s.values.data()), static_cast<std::streamsize>(width * sizeof(double)));
    }
    if (!f || f.peek() != std::char_traits<char>::eof()) {
        return Error{ErrorCode::Corrupt, path.string() + ": truncated or with trailing bytes"};
    }
    for (size_t i = 1; i < cell.samples.size(); ++i) {
        if (cell.samples[i].index <= cell.samples[i - 1].index) {
            return Error{ErrorCode::Corrupt, path.string() + ": sample indices are not increasing"};
        }
    }
    return Ok{};
}

Error corrupt(const std::string &file, const std::string &problem)
{
    return Error{ErrorCode::Corrupt, file + ": " + problem};
}

} // namespace

ProfileSummaries summarizeAll(const Profile &profile)
{
    ProfileSummaries all;
    all.reserve(profile.cells.size());
    for (const auto &cell : profile.cells) {
        all.push_back(summarize(cell, profile.settings));
    }
    return all;
}

std::string profileJson(const Profile &profile, const ProfileSummaries *summaries)
{
    const ProfileSummaries computed = summaries ? ProfileSummaries{} : summarizeAll(profile);
    const ProfileSummaries &all = summaries ? *summaries : computed;
    json j;
    j["format"] = kFormat;
    j["version"] = kVersion;
    j["created_by"] = profile.createdBy;
    j["settings"] = settingsJson(profile.settings);
    j["data"] = json::array();
    for (const auto &d : profile.data) {
        j["data"].push_back({{"name", d.name}, {"kind", kindName(d.kind)}, {"path", d.path}});
    }
    j["shard"] = {{"index", profile.shard.index}, {"count", profile.shard.count}};
    j["complete"] = profile.complete;
    j["models"] = json::array();
    for (const auto &m : profile.models) {
        j["models"].push_back(modelJson(m));
    }
    j["cells"] = json::array();
    for (size_t ci = 0; ci < profile.cells.size(); ++ci) {
        const ProfileCell &cell = profile.cells[ci];
        const std::vector<ProfileStat> &stats = all[ci];
        json c = {{"model", cell.model},
                  {"data", cell.data},
                  {"samples", cell.samples.size()},
                  {"sample_ranges", indexRanges(cell)},
                  {"distinct", cell.distinct},
                  {"skipped", cell.skipped},
                  {"samples_file", samplesFile(profile, cell)},
                  {"layers", cell.layout.layers},
                  {"heads", cell.layout.heads}};
        c["layout"] = json::array();
        json head = json::object(), layer = json::object(), model = json::object();
        for (const auto &b : cell.layout.blocks) {
            c["layout"].push_back({{"name", b.name}, {"size", b.size}, {"description", b.description}});
            const size_t dot = b.name.find('.');
            const std::string group = b.name.substr(0, dot), name = b.name.substr(dot + 1);
            json &into = group == "head" ? head : group == "layer" ? layer : model;
            into[name] = blockJson(b, stats, cell.layout.heads, group == "head");
            into[name]["description"] = b.description;
        }
        c["stats"] = {{"head", head}, {"layer", layer}, {"model", model}};
        j["cells"].push_back(c);
    }
    return j.dump(1);
}

Status writeProfile(const Profile &profile, const std::string &dir, const ProfileSummaries *summaries)
{
    const ProfileSummaries computed = summaries ? ProfileSummaries{} : summarizeAll(profile);
    const ProfileSummaries &all = summaries ? *summaries : computed;
    std::error_code ec;
    fs::create_directories(fs::path(dir) / "samples", ec);
    if (ec) {
        return Error{ErrorCode::Io, dir + ": cannot create the folder (" + ec.message() + ")"};
    }
    std::string heads = csvRow({"model", "step", "data", "layer", "head", "metric", "mean", "ci_low", "ci_high", "n"});
    std::string layers = csvRow({"model", "step", "data", "layer", "statistic", "mean", "ci_low", "ci_high", "n"});
    std::string models = csvRow({"model", "step", "data", "statistic", "mean", "ci_low", "ci_high", "n", "samples"});
    for (size_t ci = 0; ci < profile.cells.size(); ++ci) {
        const ProfileCell &cell = profile.cells[ci];
        if (auto st = writeSamples(fs::path(dir) / samplesFile(profile, cell), cell); !st) {
            return st;
        }
        const std::vector<ProfileStat> &stats = all[ci];
        const std::string step = stepText(profile, cell.model);
        for (const auto &b : cell.layout.blocks) {
            const size_t dot = b.name.find('.');
            const std::string group = b.name.substr(0, dot), name = b.name.substr(dot + 1);
            for (int64_t i = 0; i < b.size; ++i) {
                const ProfileStat &s = stats[static_cast<size_t>(b.offset + i)];
                const std::vector<std::string> tail = {fmt(s.mean), fmt(s.low), fmt(s.high), std::to_string(s.n)};
                std::vector<std::string> row;
                if (group == "head") {
                    row = {cell.model,
                           step,
                           cell.data,
                           std::to_string(i / cell.layout.heads),
                           std::to_string(i % cell.layout.heads),
                           name};
                } else if (group == "layer") {
                    row = {cell.model, step, cell.data, std::to_string(i), name};
                } else {
                    row = {cell.model, step, cell.data, name};
                }
                row.insert(row.end(), tail.begin(), tail.end());
                if (group == "model") {
                    row.push_back(std::to_string(cell.samples.size()));
                }
                (group == "head" ? heads : group == "layer" ? layers : models) += csvRow(row);
            }
        }
    }
    for (const auto &[name, text] : {std::pair<std::string, const std::string &>{"profile_heads.csv", heads},
                                     {"profile_layers.csv", layers},
                                     {"profile_models.csv", models}}) {
        if (auto st = writeText(fs::path(dir) / name, text); !st) {
            return st;
        }
    }
    // profile.json last: a folder with it holds everything it names.
    return writeText(fs::path(dir) / "profile.json", profileJson(profile, &all));
}

Result<Profile> readProfile(const std::string &dir)
{
    const fs::path file = fs::path(dir) / "profile.json";
    const std::string where = file.string();
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        return Error{ErrorCode::Io, where + ": cannot open (not a profile folder)"};
    }
    const json j = json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
        return corrupt(where, "not valid JSON");
    }
    if (j.value("format", "") != kFormat) {
        return corrupt(where, "not a SinkScope profile (format is not \"sinkscope-profile\")");
    }
    if (j.value("version", 0) != kVersion) {
        return Error{ErrorCode::Unsupported, where + ": profile version " + std::to_string(j.value("version", 0)) +
                                                 " (this SinkScope reads version " + std::to_string(kVersion) + ")"};
    }
    Profile p;
    try {
        const json &s = j.at("settings");
        p.settings.samples = s.at("samples").get<int64_t>();
        p.settings.tokens = s.at("tokens").get<int64_t>();
        p.settings.seed = s.at("seed").get<uint64_t>();
        if (s.at("bos").is_boolean()) {
            p.settings.bos = s.at("bos").get<bool>();
        }
        p.settings.epsilon = s.at("epsilon").get<double>();
        p.settings.bootstrap = s.at("bootstrap").get<int>();
        p.settings.confidence = s.at("confidence").get<double>();
        for (const json &d : j.at("data")) {
            const auto kind = kindFromName(d.at("kind").get<std::string>());
            if (!kind) {
                return corrupt(where, "unknown data kind '" + d.at("kind").get<std::string>() + "'");
            }
            p.data.push_back({*kind, d.at("name").get<std::string>(), d.at("path").get<std::string>()});
        }
        p.shard.index = j.at("shard").at("index").get<int>();
        p.shard.count = j.at("shard").at("count").get<int>();
        p.complete = j.at("complete").get<bool>();
        p.createdBy = j.value("created_by", "");
        for (const json &m : j.at("models")) {
            ProfileModel model;
            model.key = m.at("key").get<std::string>();
            model.path = m.at("path").get<std::string>();
            model.name = m.at("name").get<std::string>();
            model.family = m.at("family").get<std::string>();
            model.layers = m.at("layers").get<int64_t>();
            model.heads = m.at("heads").get<int64_t>();
            if (m.at("step").is_number_integer()) {
                model.step = m.at("step").get<int64_t>();
            }
            p.models.push_back(std::move(model));
        }
        for (const json &c : j.at("cells")) {
            ProfileCell cell;
            cell.model = c.at("model").get<std::string>();
            cell.data = c.at("data").get<std::string>();
            cell.distinct = c.at("distinct").get<int64_t>();
            cell.skipped = c.at("skipped").get<int64_t>();
            cell.layout.layers = c.at("layers").get<int64_t>();
            cell.layout.heads = c.at("heads").get<int64_t>();
            for (const json &b : c.at("layout")) {
                const int64_t offset = cell.layout.width();
                cell.layout.blocks.push_back(
                    {b.at("name").get<std::string>(), b.value("description", ""), b.at("size").get<int64_t>(), offset});
                if (cell.layout.blocks.back().size < 0) {
                    return corrupt(where, "a negative layout size");
                }
            }
            const auto count = c.at("samples").get<size_t>();
            const std::string samples = c.at("samples_file").get<std::string>();
            if (samples.find("..") != std::string::npos || fs::path(samples).is_absolute()) {
                return corrupt(where, "samples_file '" + samples + "' leaves the profile folder");
            }
            if (auto st = readSamples(fs::path(dir) / samples, cell, count); !st) {
                return st.error();
            }
            p.cells.push_back(std::move(cell));
        }
    } catch (const json::exception &e) {
        return corrupt(where, std::string("missing or mistyped field (") + e.what() + ")");
    }
    if (p.shard.count < 1 || p.shard.index < 1 || p.shard.index > p.shard.count) {
        return corrupt(where, "shard " + std::to_string(p.shard.index) + "/" + std::to_string(p.shard.count) +
                                  " is not K/N with 1 <= K <= N");
    }
    return p;
}

Result<Profile> mergeProfiles(const std::vector<Profile> &shards, const std::vector<std::string> &dirs)
{
    if (shards.empty()) {
        return Error{ErrorCode::InvalidArgument, "merge: no profile folders given"};
    }
    const Profile &first = shards.front();
    const int N = first.shard.count;
    auto shardName = [&](size_t i) {
        return dirs[i] + " (shard " + std::to_string(shards[i].shard.index) + "/" +
               std::to_string(shards[i].shard.count) + ")";
    };
    std::vector<int> seen(static_cast<size_t>(N) + 1, -1);
    for (size_t i = 0; i < shards.size(); ++i) {
        const Profile &p = shards[i];
        if (p.shard.count != N) {
            return Error{ErrorCode::InvalidArgument, shardName(i) + " belongs to a run of " +
                                                         std::to_string(p.shard.count) + " shards, " + shardName(0) +
                                                         " to one of " + std::to_string(N)};
        }
        if (seen[static_cast<size_t>(p.shard.index)] >= 0) {
            return Error{ErrorCode::InvalidArgument,
                         shardName(i) + " is the same shard as " + dirs[static_cast<size_t>(seen[p.shard.index])]};
        }
        seen[static_cast<size_t>(p.shard.index)] = static_cast<int>(i);
        if (!p.complete) {
            return Error{ErrorCode::InvalidArgument,
                         shardName(i) + " is partial (it was interrupted); run that shard again"};
        }
        if (settingsJson(p.settings) != settingsJson(first.settings)) {
            return Error{ErrorCode::InvalidArgument, shardName(i) + " ran with other settings than " + shardName(0) +
                                                         ": " + settingsJson(p.settings).dump() + " vs " +
                                                         settingsJson(first.settings).dump()};
        }
        bool sameData = p.data.size() == first.data.size();
        for (size_t d = 0; sameData && d < p.data.size(); ++d) {
            sameData = p.data[d].name == first.data[d].name && p.data[d].kind == first.data[d].kind;
        }
        if (!sameData) {
            return Error{ErrorCode::InvalidArgument, shardName(i) + " has other data sets than " + shardName(0)};
        }
        bool sameModels = p.models.size() == first.models.size();
        for (size_t m = 0; sameModels && m < p.models.size(); ++m) {
            sameModels = modelJson(p.models[m]) == modelJson(first.models[m]);
        }
        if (!sameModels) {
            return Error{ErrorCode::InvalidArgument, shardName(i) + " has other models than " + shardName(0)};
        }
    }
    for (int k = 1; k <= N; ++k) {
        if (seen[static_cast<size_t>(k)] < 0) {
            return Error{ErrorCode::InvalidArgument,
                         "merge: shard " + std::to_string(k) + "/" + std::to_string(N) + " is missing"};
        }
    }
    Profile merged = first;
    merged.shard = {};
    merged.complete = true;
    merged.cells.clear();
    for (int k = 1; k <= N; ++k) {
        const auto i = static_cast<size_t>(seen[static_cast<size_t>(k)]);
        const Profile &p = shards[i];
        const auto [begin, end] = shardRange(p.shard, p.settings.samples);
        for (const ProfileCell &cell : p.cells) {
            ProfileCell *into = nullptr;
            for (auto &c : merged.cells) {
                if (c.model == cell.model && c.data == cell.data) {
                    into = &c;
                }
            }
            if (!into) {
                merged.cells.push_back({cell.model, cell.data, cell.layout, {}, cell.distinct, cell.skipped});
                into = &merged.cells.back();
            }
            if (!cell.samples.empty() && into->layout.blocks.empty()) {
                into->layout = cell.layout;
            }
            if (!cell.samples.empty() && !(into->layout == cell.layout)) {
                return Error{ErrorCode::InvalidArgument, shardName(i) + ": the values of " + cell.model + " on " +
                                                             cell.data + " are laid out differently"};
            }
            for (const auto &s : cell.samples) {
                if (s.index < begin || s.index >= end) {
                    return Error{ErrorCode::InvalidArgument,
                                 shardName(i) + ": sample " + std::to_string(s.index) + " of " + cell.data +
                                     " is outside the shard's range [" + std::to_string(begin) + ", " +
                                     std::to_string(end) + ")"};
                }
                into->samples.push_back(s); // shards in order, each in order: the whole run's order
            }
        }
    }
    return merged;
}

} // namespace sinkscope
