// Profile data sets: parsing the --data list and --shard, loading texts, and drawing samples.
#include "sinkscope/analysis/profile.h"
#include "sinkscope/tokenizer/tokenizer.h"

#include "profile_internal.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

namespace sinkscope {
namespace {

namespace fs = std::filesystem;

Error invalid(std::string message)
{
    return Error{ErrorCode::InvalidArgument, std::move(message)};
}

using profile_detail::SplitMix64;

uint64_t fnv1a64(const std::string &s)
{
    uint64_t h = 0xCBF29CE484222325ull;
    for (unsigned char c : s) {
        h ^= c;
        h *= 0x100000001B3ull;
    }
    return h;
}

std::string readFile(const fs::path &path, std::string *error)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        *error = path.string() + ": cannot open";
        return {};
    }
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// Paragraphs (separated by blank lines) with every whitespace run collapsed to one space: the licences'
// hard-wrapped, indented lines read as running prose.
std::vector<std::string> paragraphsOf(const std::string &text)
{
    std::vector<std::string> out;
    std::string current;
    bool pendingSpace = false, blankLine = true;
    auto isSpace = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; };
    for (size_t i = 0; i <= text.size(); ++i) {
        const char c = i < text.size() ? text[i] : '\n';
        if (c == '\n') {
            if (blankLine && !current.empty()) { // a blank line ends the paragraph
                out.push_back(current);
                current.clear();
            }
            pendingSpace = !current.empty();
            blankLine = true;
        } else if (isSpace(c)) {
            pendingSpace = !current.empty();
        } else {
            if (pendingSpace) {
                current += ' ';
            }
            current += c;
            pendingSpace = false;
            blankLine = false;
        }
    }
    if (!current.empty()) {
        out.push_back(current);
    }
    return out;
}

} // namespace

uint64_t profileSampleSeed(uint64_t seed, const std::string &dataName, int64_t index)
{
    return seed ^ fnv1a64(dataName) ^ (static_cast<uint64_t>(index) + 1) * 0x9E3779B97F4A7C15ull;
}

Result<std::vector<ProfileDataSet>> parseProfileDataList(const std::string &list)
{
    std::vector<ProfileDataSet> sets;
    size_t start = 0;
    while (start <= list.size()) {
        const size_t end = std::min(list.find(',', start), list.size());
        const std::string item = list.substr(start, end - start);
        start = end + 1;
        if (item.empty()) {
            continue;
        }
        ProfileDataSet set;
        if (item == "natural" || item == "random" || item == "repeated") {
            set.kind = item == "natural"  ? ProfileDataKind::Natural
                       : item == "random" ? ProfileDataKind::Random
                                          : ProfileDataKind::Repeated;
            set.name = item;
        } else {
            std::error_code ec;
            const fs::path p(item);
            if (fs::is_directory(p, ec)) {
                set.kind = ProfileDataKind::Folder;
            } else if (fs::is_regular_file(p, ec)) {
                if (p.extension() != ".jsonl") {
                    return invalid(item + ": a data file must be JSONL (.jsonl, one {\"text\": ...} per line)");
                }
                set.kind = ProfileDataKind::Jsonl;
            } else {
                return invalid(item + ": no such file or folder (data sets: natural, random, repeated, a .jsonl file "
                                      "or a folder of .txt files)");
            }
            set.path = item;
            fs::path named = p.has_filename() ? p : p.parent_path();
            set.name = set.kind == ProfileDataKind::Jsonl ? named.stem().string() : named.filename().string();
            if (set.name.empty() || set.name == ".") {
                set.name = fs::absolute(p, ec).lexically_normal().parent_path().filename().string();
            }
        }
        for (const auto &other : sets) {
            if (other.name == set.name) {
                return invalid("--data: '" + item + "' is named '" + set.name +
                               "' like an earlier entry; data set names must be unique");
            }
        }
        sets.push_back(std::move(set));
    }
    if (sets.empty()) {
        return invalid("--data: no data set in '" + list + "' (natural, random, repeated, FILE.jsonl, FOLDER)");
    }
    return sets;
}

Result<ProfileShard> parseProfileShard(const std::string &text)
{
    const size_t slash = text.find('/');
    ProfileShard shard;
    auto number = [](const std::string &s, int *out) {
        const auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
        return r.ec == std::errc() && r.ptr == s.data() + s.size();
    };
    if (slash == std::string::npos || !number(text.substr(0, slash), &shard.index) ||
        !number(text.substr(slash + 1), &shard.count)) {
        return invalid("--shard: '" + text + "' is not K/N (e.g. 2/8)");
    }
    if (shard.count < 1 || shard.index < 1 || shard.index > shard.count) {
        return invalid("--shard: '" + text + "': K must be between 1 and N (N >= 1)");
    }
    return shard;
}

std::pair<int64_t, int64_t> shardRange(const ProfileShard &shard, int64_t samples)
{
    const int64_t k = shard.index - 1;
    return {samples * k / shard.count, samples * (k + 1) / shard.count};
}

std::vector<std::string> naturalCorpusFiles()
{
    // Debian's base-files (Essential: on every Debian system). Each licence permits verbatim copies.
    static const char *const kFiles[] = {"GPL-3",   "GPL-2",    "LGPL-2.1", "LGPL-3", "Apache-2.0",
                                         "MPL-2.0", "GFDL-1.3", "Artistic", "CC0-1.0"};
    std::vector<std::string> out;
    for (const char *name : kFiles) {
        const fs::path p = fs::path("/usr/share/common-licenses") / name;
        std::error_code ec;
        if (fs::is_regular_file(p, ec)) {
            out.push_back(p.string());
        }
    }
    return out;
}

Result<ProfileTexts> loadProfileTexts(const ProfileDataSet &set)
{
    ProfileTexts texts;
    texts.set = set;
    std::string error;
    switch (set.kind) {
    case ProfileDataKind::Random:
    case ProfileDataKind::Repeated:
        return texts;
    case ProfileDataKind::Natural: {
        for (const std::string &file : naturalCorpusFiles()) {
            const std::string text = readFile(file, &error);
            if (!error.empty()) {
                return Error{ErrorCode::Io, error};
            }
            texts.names.push_back(file);
            texts.paragraphs.push_back(paragraphsOf(text));
        }
        if (texts.names.empty()) {
            return Error{ErrorCode::Io, "natural: none of the licence texts in /usr/share/common-licenses is present "
                                        "(Debian's base-files); pass a .jsonl file or a folder of .txt files"};
        }
        return texts;
    }
    case ProfileDataKind::Jsonl: {
        std::ifstream in(set.path, std::ios::binary);
        if (!in) {
            return Error{ErrorCode::Io, set.path + ": cannot open"};
        }
        std::string line;
        for (int64_t number = 1; std::getline(in, line); ++number) {
            if (line.find_first_not_of(" \t\r") == std::string::npos) {
                continue;
            }
            const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
            const std::string where = set.path + ":" + std::to_string(number);
            if (j.is_discarded()) {
                return Error{ErrorCode::Corrupt, where + ": not valid JSON"};
            }
            if (!j.is_object() || !j.contains("text")) {
                return Error{ErrorCode::Corrupt, where + ": no \"text\" field (each line must be an object with a "
                                                         "\"text\" string)"};
            }
            if (!j["text"].is_string()) {
                return Error{ErrorCode::Corrupt, where + ": \"text\" is not a string"};
            }
            texts.names.push_back(where);
            texts.paragraphs.push_back({j["text"].get<std::string>()});
        }
        if (texts.names.empty()) {
            return Error{ErrorCode::InvalidArgument, set.path + ": the file has no lines"};
        }
        return texts;
    }
    case ProfileDataKind::Folder: {
        std::vector<fs::path> files;
        std::error_code ec;
        for (const auto &entry : fs::directory_iterator(set.path, ec)) {
            if (entry.is_regular_file(ec) && entry.path().extension() == ".txt") {
                files.push_back(entry.path());
            }
        }
        if (ec) {
            return Error{ErrorCode::Io, set.path + ": cannot list the folder (" + ec.message() + ")"};
        }
        if (files.empty()) {
            return Error{ErrorCode::InvalidArgument, set.path + ": the folder has no .txt files"};
        }
        std::sort(files.begin(), files.end());
        for (const auto &f : files) {
            std::string text = readFile(f, &error);
            if (!error.empty()) {
                return Error{ErrorCode::Io, error};
            }
            texts.names.push_back(f.string());
            texts.paragraphs.push_back({std::move(text)});
        }
        return texts;
    }
    }
    return texts;
}

Result<std::vector<int64_t>> ProfileSampler::encode(const std::string &text) const
{
    EncodeOptions options;
    options.addBos = m_settings.bos;
    options.parseSpecial = false; // data is text: "<|endoftext|>" written in it is not the control token
    std::vector<int64_t> ids = m_tokenizer->encode(text, options);
    if (m_settings.bos.value_or(false) &&
        (ids.empty() || !m_tokenizer->data().bosId || ids.front() != *m_tokenizer->data().bosId)) {
        if (!m_tokenizer->data().bosId) {
            return invalid("--bos: the model's tokenizer has no BOS token");
        }
        ids.insert(ids.begin(), *m_tokenizer->data().bosId);
    }
    return ids;
}

Result<ProfileSampler> ProfileSampler::create(const ProfileTexts *texts, ProfileDataSet set, const Tokenizer *tokenizer,
                                              int64_t vocab, const ProfileSettings &settings)
{
    ProfileSampler s;
    s.m_set = std::move(set);
    s.m_tokenizer = tokenizer;
    s.m_vocab = vocab;
    s.m_settings = settings;
    const int64_t T = settings.tokens;
    if (T < 1) {
        return invalid("--tokens must be at least 1");
    }
    const bool drawn = s.m_set.kind == ProfileDataKind::Random || s.m_set.kind == ProfileDataKind::Repeated;
    if (drawn) {
        if (vocab < 1) {
            return invalid(s.m_set.name + ": the model's vocabulary size is unknown");
        }
        if (settings.bos.value_or(false) && (!tokenizer || !tokenizer->data().bosId)) {
            return invalid("--bos: the model's tokenizer has no BOS token");
        }
        return s;
    }
    if (!tokenizer) {
        return Error{ErrorCode::Unsupported,
                     s.m_set.name + ": the model carries no tokenizer; use the random or repeated data sets"};
    }
    if (!texts) {
        return invalid(s.m_set.name + ": no texts loaded");
    }
    if (s.m_set.kind == ProfileDataKind::Natural) {
        // Candidates: paragraph starts with at least T tokens up to the end of their document.
        for (const auto &doc : texts->paragraphs) {
            for (size_t p = 0; p < doc.size(); ++p) {
                std::string text;
                for (size_t q = p; q < doc.size() && text.size() < static_cast<size_t>(T) * 16 + 64; ++q) {
                    text += (q > p ? "\n\n" : "") + doc[q];
                }
                auto ids = s.encode(text);
                if (!ids) {
                    return ids.error();
                }
                if (static_cast<int64_t>(ids->size()) >= T) {
                    ids->resize(static_cast<size_t>(T));
                    s.m_texts.push_back(std::move(*ids));
                }
            }
        }
        if (s.m_texts.empty()) {
            return invalid("natural: no paragraph of the licence texts starts " + std::to_string(T) +
                           " tokens of prose; use fewer --tokens");
        }
        // A seeded Fisher-Yates shuffle: sample i is candidate i mod C.
        SplitMix64 rng(profileSampleSeed(settings.seed, "natural:shuffle", 0));
        for (size_t i = s.m_texts.size() - 1; i > 0; --i) {
            std::swap(s.m_texts[i], s.m_texts[static_cast<size_t>(rng.below(i + 1))]);
        }
        s.m_distinct = static_cast<int64_t>(s.m_texts.size());
        return s;
    }
    for (const auto &doc : texts->paragraphs) {
        auto ids = s.encode(doc.empty() ? std::string() : doc.front());
        if (!ids) {
            return ids.error();
        }
        if (static_cast<int64_t>(ids->size()) >= T) {
            ids->resize(static_cast<size_t>(T));
            s.m_texts.push_back(std::move(*ids));
        }
    }
    s.m_distinct = static_cast<int64_t>(s.m_texts.size());
    if (s.m_texts.empty()) {
        return invalid(s.m_set.path + ": no text has " + std::to_string(T) + " tokens; use fewer --tokens");
    }
    return s;
}

Result<std::optional<std::vector<int64_t>>> ProfileSampler::sample(int64_t index) const
{
    const int64_t T = m_settings.tokens;
    switch (m_set.kind) {
    case ProfileDataKind::Natural:
        return std::optional(m_texts[static_cast<size_t>(index % static_cast<int64_t>(m_texts.size()))]);
    case ProfileDataKind::Jsonl:
    case ProfileDataKind::Folder:
        if (index >= static_cast<int64_t>(m_texts.size())) {
            return std::optional<std::vector<int64_t>>();
        }
        return std::optional(m_texts[static_cast<size_t>(index)]);
    case ProfileDataKind::Random:
    case ProfileDataKind::Repeated: {
        std::vector<int64_t> ids;
        ids.reserve(static_cast<size_t>(T));
        if (m_settings.bos.value_or(false)) {
            ids.push_back(*m_tokenizer->data().bosId);
        }
        SplitMix64 rng(profileSampleSeed(m_settings.seed, m_set.name, index));
        const auto vocab = static_cast<uint64_t>(m_vocab);
        if (m_set.kind == ProfileDataKind::Random) {
            while (static_cast<int64_t>(ids.size()) < T) {
                ids.push_back(static_cast<int64_t>(rng.below(vocab)));
            }
        } else {
            const auto id = static_cast<int64_t>(rng.below(vocab));
            ids.resize(static_cast<size_t>(T), id);
        }
        return std::optional(std::move(ids));
    }
    }
    return std::optional<std::vector<int64_t>>();
}

} // namespace sinkscope
