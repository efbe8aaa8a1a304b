// Sink profiles (docs/profiles.md): every per-head metric of docs/metrics.md, Gu et al.'s Sink_1^epsilon,
// the massive-activation statistics and per-layer summaries, averaged over many samples of a data set, for
// one or more models (or a series of training checkpoints), each with a bootstrap confidence interval.
//
// The pieces:
// - data sets: "natural" (English prose every Debian system carries), "random" and "repeated" (Gu et al.'s
//   constructions), a JSONL file with a "text" field, or a folder of .txt files; ProfileSampler turns
//   sample i of a data set into token ids for one model, deterministically from the seed (shards agree).
// - per-sample values: profileValues() flattens one sample's SinkMetrics into a fixed layout of named
//   blocks (head.<metric> [L, H], layer.<name> [L], model.<name> [1]).
// - a profile holds every sample's values, per (model, data set) cell; summarize() gives the mean, the
//   sample count and the percentile bootstrap interval of every value. Shards (--shard K/N) hold disjoint
//   sample ranges; merging concatenates their samples in sample order, so a merged profile equals the
//   unsharded one exactly (the sums and counts are formed once, from the same samples in the same order).
// - files: profile.json (settings, models, summaries), samples/<cell>.bin (every sample's values, what
//   merge and the bootstrap need), and long-format CSVs (profile_heads.csv, profile_layers.csv,
//   profile_models.csv).
//
// Nothing here holds LibTorch types; runProfileModel() drives forward passes through sinkscope::Model.
#pragma once

#include "sinkscope/analysis/metrics.h"
#include "sinkscope/common/result.h"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace sinkscope {

class Tokenizer;

enum class ProfileDataKind {
    Natural,  // English prose from /usr/share/common-licenses (paragraph-start windows)
    Random,   // T token ids drawn uniformly from the vocabulary (Gu et al. 2025 §3.3)
    Repeated, // one id drawn uniformly from the vocabulary, repeated T times (Gu et al. 2025 §3.3)
    Jsonl,    // one sample per line: the first T tokens of its "text" string
    Folder,   // one sample per .txt file (sorted by name): its first T tokens
};

struct ProfileDataSet {
    ProfileDataKind kind = ProfileDataKind::Natural;
    std::string name; // "natural", "random", "repeated", or the file / folder name (unique in a profile)
    std::string path; // Jsonl / Folder: as given
};

// "natural,random,repeated,texts.jsonl,corpus/": names are unique (a repeated name is an error), a path
// must exist (a .jsonl file or a folder). Errors name the entry.
Result<std::vector<ProfileDataSet>> parseProfileDataList(const std::string &list);

// --shard K/N: 1 <= K <= N.
struct ProfileShard {
    int index = 1; // K, 1-based
    int count = 1; // N
    bool sharded() const { return count > 1; }
};
Result<ProfileShard> parseProfileShard(const std::string &text);
// The sample indices [first, last) of shard K of N over `samples` samples: contiguous, sizes differ by
// at most one.
std::pair<int64_t, int64_t> shardRange(const ProfileShard &shard, int64_t samples);

struct ProfileSettings {
    int64_t samples = 100; // per data set (Gu et al.: 100)
    int64_t tokens = 64;   // T per sample (Gu et al.: 64)
    uint64_t seed = 0;
    std::optional<bool> bos; // nullopt: texts follow the tokenizer, random/repeated have none (as Gu et al.)
    double epsilon = 0.3;    // Sink_1^epsilon and alpha_1 > epsilon (Gu et al.: 0.3)
    int bootstrap = 1000;    // bootstrap resamples (0: no intervals)
    double confidence = 0.95;
};

// The texts of a text data set, loaded once: natural's licence files (paragraphs with their whitespace
// runs collapsed), the JSONL lines' "text" strings or the folder's .txt files. Errors: a JSONL line that
// is not an object with a "text" string ("FILE:LINE: ..."), an empty folder or file, no natural corpus.
struct ProfileTexts {
    ProfileDataSet set;
    std::vector<std::string> names;                   // per document: file name, or "FILE:LINE"
    std::vector<std::vector<std::string>> paragraphs; // Natural: per document; else one entry, the text
};
Result<ProfileTexts> loadProfileTexts(const ProfileDataSet &set);

// The natural corpus: the licence texts of Debian's base-files that exist on this machine.
std::vector<std::string> naturalCorpusFiles();

// Sample i of a data set as token ids for one model.
// - Natural: the candidates are paragraph starts with at least T tokens to the end of their document
//   (tokenized from the paragraph on); a seeded shuffle orders them and sample i takes candidate
//   i mod C (`distinct()` = C; more samples than candidates repeat them).
// - Jsonl / Folder: the texts with at least T tokens, in file order; sample i is the i-th such text,
//   absent (nullopt) past the last.
// - Random: T ids uniform over [0, vocab); Repeated: one id uniform over [0, vocab), T times.
// BOS: settings.bos true puts the tokenizer's BOS first (the sample is BOS + T - 1 tokens), false leaves it
// out; nullopt follows the tokenizer for texts and adds none to random/repeated.
// Random draws: SplitMix64 seeded by profileSampleSeed(seed, data set name, i); an integer in [0, n) by
// rejection of the top 2^64 mod n values, then x mod n.
class ProfileSampler
{
public:
    static Result<ProfileSampler> create(const ProfileTexts *texts, ProfileDataSet set, const Tokenizer *tokenizer,
                                         int64_t vocab, const ProfileSettings &settings);
    Result<std::optional<std::vector<int64_t>>> sample(int64_t index) const;
    int64_t distinct() const { return m_distinct; } // distinct samples available (-1: unlimited)
    const ProfileDataSet &set() const { return m_set; }

private:
    ProfileSampler() = default;
    Result<std::vector<int64_t>> encode(const std::string &text) const;
    ProfileDataSet m_set;
    const Tokenizer *m_tokenizer = nullptr;
    int64_t m_vocab = 0;
    ProfileSettings m_settings;
    std::vector<std::vector<int64_t>> m_texts; // Natural: shuffled candidates; Jsonl/Folder: usable texts
    int64_t m_distinct = -1;
};

uint64_t profileSampleSeed(uint64_t seed, const std::string &dataName, int64_t index);

// One block of per-sample values: group "head" ([L, H]), "layer" ([L]) or "model" ([1]).
struct ProfileBlock {
    std::string name; // "head.first_token_mass", "layer.sink_1", "model.sink_1", ...
    std::string description;
    int64_t size = 0;
    int64_t offset = 0;
};

struct ProfileLayout {
    int64_t layers = 0, heads = 0;
    std::vector<ProfileBlock> blocks;
    int64_t width() const { return blocks.empty() ? 0 : blocks.back().offset + blocks.back().size; }
    const ProfileBlock *block(const std::string &name) const; // null when absent
    bool operator==(const ProfileLayout &o) const;
};

// The layout of a model's samples: head.<m> for every per-head metric of `metrics`, layer.<m> (their mean
// over the layer's heads), layer.sink_1 (% of the layer's heads with alpha_1 > epsilon), layer.massive_top1..3,
// layer.massive_median and layer.massive_ratio (Sun et al.), model.sink_1 (Gu et al.'s Sink_1^epsilon, %),
// model.first_token_mass (mean over all heads), model.massive_count and model.massive_ratio (the largest
// top / median over layers).
ProfileLayout profileLayout(const SinkMetrics &metrics);
// One sample's values in `layout` (NaN where a metric is undefined for the sample).
std::vector<double> profileValues(const SinkMetrics &metrics, const ProfileLayout &layout);

struct ProfileSample {
    int64_t index = 0;
    std::vector<double> values; // layout.width()
};

struct ProfileModel {
    std::string key;  // unique label in the profile ("SmolLM2-135M-Instruct", "step1000", ...)
    std::string path; // as given on the command line (empty: the default model)
    std::string name; // the model's own name
    std::string family;
    int64_t layers = 0, heads = 0;
    std::optional<int64_t> step; // checkpointStep(path) or the name's step
};

// The samples of one model on one data set.
struct ProfileCell {
    std::string model; // ProfileModel::key
    std::string data;  // ProfileDataSet::name
    ProfileLayout layout;
    std::vector<ProfileSample> samples; // by index, no duplicates
    int64_t distinct = -1;              // ProfileSampler::distinct()
    int64_t skipped = 0;                // Jsonl/Folder texts shorter than T
};

// Mean over the samples where the value is finite, with its count and the bootstrap interval.
struct ProfileStat {
    double mean = 0, low = 0, high = 0; // NaN when n == 0 (low/high NaN with bootstrap 0)
    int64_t n = 0;
};

// Percentile bootstrap: `resamples` resamples of the cell's samples (drawn with SplitMix64 seeded by
// profileSampleSeed(seed, "bootstrap:" + model + "/" + data, 0)); each resample's mean per value over its
// finite entries; the interval is the (1 - c)/2 and (1 + c)/2 quantiles (linear interpolation, numpy's
// default). Deterministic for a given cell, seed and resample count.
std::vector<ProfileStat> summarize(const ProfileCell &cell, const ProfileSettings &settings);

struct Profile {
    ProfileSettings settings;
    std::vector<ProfileDataSet> data;
    ProfileShard shard;
    bool complete = true; // false after a cancel: fewer samples than asked for
    std::vector<ProfileModel> models;
    std::vector<ProfileCell> cells;
    std::string createdBy; // "sinkscope-cli 0.x profile"

    const ProfileCell *cell(const std::string &model, const std::string &data) const;
};

// Runs the samples of `profile.shard` of every data set on one model and appends a cell per data set.
// `texts` has one entry per data set (unused for random/repeated). `log` gets progress lines. Returns
// Cancelled (with the cells holding the samples done so far) when `cancel` is set.
struct ProfileRunHooks {
    const CancelToken *cancel = nullptr;
    std::function<void(const std::string &line)> log;
};
Status runProfileModel(const Model &model, const ProfileModel &info, const std::vector<ProfileTexts> &texts,
                       Profile &profile, const ProfileRunHooks &hooks = {});

// summarize() of every cell, in profile.cells order (the bootstrap of a large profile takes seconds: compute
// it once and pass it on).
using ProfileSummaries = std::vector<std::vector<ProfileStat>>;
ProfileSummaries summarizeAll(const Profile &profile);

// DIR/profile.json, DIR/samples/*.bin and the CSVs. Errors name the file. `summaries` from summarizeAll
// (computed here when null).
Status writeProfile(const Profile &profile, const std::string &dir, const ProfileSummaries *summaries = nullptr);
// Reads what writeProfile wrote (every sample). Errors name the file and the problem.
Result<Profile> readProfile(const std::string &dir);
// Shards of one profile into the unsharded profile: the same settings, models and data sets, every shard
// 1..N exactly once, complete. Errors name the directory at fault.
Result<Profile> mergeProfiles(const std::vector<Profile> &shards, const std::vector<std::string> &dirs);

// profile.json as text (`summaries` from summarizeAll; computed here when null).
std::string profileJson(const Profile &profile, const ProfileSummaries *summaries = nullptr);

} // namespace sinkscope
