// sinkscope-cli profile and merge: sink profiles over many samples, models and checkpoints (docs/profiles.md).
#include "cli_figures.h"
#include "commands.h"
#include "common.h"

#include "sinkscope/analysis/profile.h"
#include "sinkscope/config.h"
#include "sinkscope/model/checkpoint.h"

#include <atomic>
#include <cmath>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <iomanip>
#include <set>
#include <sstream>

namespace sinkscope::cli {
namespace {

namespace fs = std::filesystem;

constexpr int kInterrupted = 130; // as a shell reports a process ended by SIGINT

struct ProfileOptions {
    std::vector<std::string> models;
    std::string device = "cpu";
    std::string data = "natural,random,repeated";
    int64_t samples = 100, tokens = 64;
    uint64_t seed = 0;
    bool bos = false, noBos = false;
    std::string shard = "1/1";
    std::string dir;
    double epsilon = 0.3;
    int bootstrap = 1000;
    std::string formats = figuresAvailable ? "png" : "";
    bool noFigures = false;
};

struct MergeOptions {
    std::vector<std::string> dirs;
    std::string dir;
    std::string formats = figuresAvailable ? "png" : "";
    bool noFigures = false;
};

constexpr const char *kProfileProse =
    R"(Measures every per-head sink metric (docs/metrics.md), Gu et al.'s Sink_1^epsilon, the massive
activations (Sun et al.) and per-layer summaries over --samples samples of each data set, for each --model
(repeat it for several models or a series of checkpoints; a checkpoint's step is read from its file or
folder name, e.g. step1000, or its config.json), and writes DIR/profile.json (means, 95% bootstrap
intervals, sample counts), DIR/profile_heads.csv, profile_layers.csv, profile_models.csv, DIR/samples/
(every sample's values, for merge) and the figures.

Data sets (--data, comma-separated): natural (English prose: the licence texts of Debian's base-files in
/usr/share/common-licenses, paragraph-start windows), random (T token ids drawn uniformly from the
vocabulary), repeated (one id drawn uniformly, repeated T times) — Gu et al. (ICLR 2025) §3.3 — a JSONL
file (one {"text": ...} per line; the first T tokens of each text with at least T tokens) or a folder of
.txt files (the same, one text per file). Without --bos/--no-bos, texts follow the tokenizer and
random/repeated have no BOS, as in Gu et al.; --bos puts BOS first in every sample (BOS + T-1 tokens).

--shard K/N runs the K-th of N contiguous ranges of sample indices of every model and data set (the same
samples an unsharded run draws); 'sinkscope-cli merge' combines the N folders into exactly the unsharded
result (tools/slurm/ runs the shards as a Slurm job array; docs/scale-out.md). Progress goes to stderr;
Ctrl-C stops after the current sample and writes a valid partial profile (marked "complete": false, exit
code 130); a second Ctrl-C (half a second or more later) ends the process at once.
)";

constexpr const char *kMergeProse =
    R"(Combines the folders of 'sinkscope-cli profile --shard K/N' runs into the unsharded profile: every shard
1..N exactly once, each complete, with the same settings, models and data sets. The samples are
concatenated in sample order and the sums, counts and bootstrap intervals are formed once from them, so the
merged profile.json equals that of a single run (docs/profiles.md).
)";

CancelToken g_interrupt;
std::atomic<int64_t> g_firstInterruptNs{0}; // CLOCK_MONOTONIC of the first SIGINT; 0: none yet

int64_t monotonicNs()
{
    timespec t{};
    clock_gettime(CLOCK_MONOTONIC, &t); // async-signal-safe
    return int64_t(t.tv_sec) * 1000000000 + t.tv_nsec;
}

// The first SIGINT cancels: the profile is written as it stands. A second one ends the process, but
// only a deliberate one, half a second later or more: timeout(1) signals the process and then its
// process group, and both arrive as two SIGINTs (a partial profile bounded with `timeout -s INT` was
// killed unwritten when the second came after the first's handler had run).
extern "C" void onInterrupt(int)
{
    const int64_t now = monotonicNs();
    int64_t first = 0;
    if (g_firstInterruptNs.compare_exchange_strong(first, now)) {
        g_interrupt.cancel();
    } else if (now - first >= 500000000) {
        std::signal(SIGINT, SIG_DFL);
        std::raise(SIGINT);
    }
}

// Ctrl-C cancels the profile while this lives.
class InterruptScope
{
public:
    InterruptScope()
    {
        g_interrupt.cancelled.store(false);
        g_firstInterruptNs.store(0);
        m_previous = std::signal(SIGINT, onInterrupt);
    }
    ~InterruptScope() { std::signal(SIGINT, m_previous == SIG_ERR ? SIG_DFL : m_previous); }
    InterruptScope(const InterruptScope &) = delete;
    InterruptScope &operator=(const InterruptScope &) = delete;

private:
    void (*m_previous)(int) = SIG_DFL;
};

std::string modelKey(const std::string &path, const std::string &name, const std::set<std::string> &taken)
{
    std::string key = name;
    if (!path.empty()) {
        const fs::path p(path);
        const fs::path named = p.has_filename() ? p : p.parent_path();
        std::error_code ec;
        key = fs::is_directory(named, ec) ? named.filename().string() : named.stem().string();
    }
    if (key.empty()) {
        key = "model";
    }
    std::string unique = key;
    for (int i = 2; taken.count(unique) > 0; ++i) {
        unique = key + "-" + std::to_string(i);
    }
    return unique;
}

std::string interval(const ProfileStat &s, int digits)
{
    if (!std::isfinite(s.mean)) {
        return "n/a";
    }
    std::ostringstream o;
    o << std::fixed << std::setprecision(digits) << s.mean;
    if (std::isfinite(s.low) && std::isfinite(s.high)) {
        o << " [" << s.low << ", " << s.high << "]";
    }
    return o.str();
}

// The model x data table of Sink_1^epsilon with its interval and sample count.
void printSummary(const Profile &profile, const ProfileSummaries &summaries, std::ostream &out)
{
    out << "Sink_1^" << profile.settings.epsilon << " (%, T = " << profile.settings.tokens << ", "
        << static_cast<int>(std::lround(profile.settings.confidence * 100)) << "% bootstrap interval, n samples)\n";
    size_t width = 5;
    for (const auto &m : profile.models) {
        width = std::max(width, m.key.size());
    }
    out << std::left << std::setw(static_cast<int>(width) + 2) << "model";
    for (const auto &d : profile.data) {
        out << std::setw(30) << d.name;
    }
    out << "\n";
    for (const auto &m : profile.models) {
        out << std::setw(static_cast<int>(width) + 2) << m.key;
        for (const auto &d : profile.data) {
            const ProfileCell *cell = profile.cell(m.key, d.name);
            std::string text = "-";
            if (cell && !cell->samples.empty()) {
                const auto &stats = summaries[static_cast<size_t>(cell - profile.cells.data())];
                const ProfileBlock *b = cell->layout.block("model.sink_1");
                text = b ? interval(stats[static_cast<size_t>(b->offset)], 2) +
                               " n=" + std::to_string(cell->samples.size())
                         : "-";
            }
            out << std::setw(30) << text;
        }
        out << "\n";
    }
    out << std::right;
}

// "png,svg,pdf" as formats, or none with --no-figures (the option's check has validated the list).
std::vector<std::string> figureFormats(const std::string &list, bool none)
{
    std::string problem;
    return none ? std::vector<std::string>{} : parseFormatList(list, &problem);
}

// The profile's files, then its figures (the window's figure code) when asked for and this build draws.
void writeOutputs(const Profile &profile, const ProfileSummaries &summaries, const std::string &dir,
                  const std::vector<std::string> &formats, std::ostream &log)
{
    if (auto st = writeProfile(profile, dir, &summaries); !st) {
        throw Failure{st.error().message};
    }
    log << "wrote " << (fs::path(dir) / "profile.json").string() << ", the CSVs and samples/\n";
    if (formats.empty()) {
        return;
    }
    if (!figuresAvailable) {
        throw Failure{"figures need a build with SINKSCOPE_BUILD_GUI=ON (this one has no Qt); " + dir +
                      "/profile.json and the CSVs were written"};
    }
    std::vector<std::string> written, notes;
    std::string error;
    const ProfileFigures request{
        .dir = dir, .formats = formats, .profile = &profile, .caption = {}, .summaries = &summaries};
    if (!writeProfileFigures(request, &written, &notes, &error)) {
        throw Failure{error};
    }
    log << "wrote " << written.size() << " figure file(s) into " << dir << "\n";
    for (const auto &n : notes) {
        log << "  note: " << n << "\n";
    }
}

int runProfile(const ProfileOptions &o, std::ostream &out, std::ostream &err)
{
    Profile profile;
    profile.createdBy = std::string("sinkscope-cli ") + SINKSCOPE_VERSION + " profile";
    profile.settings.samples = o.samples;
    profile.settings.tokens = o.tokens;
    profile.settings.seed = o.seed;
    profile.settings.bos = o.bos ? std::optional(true) : o.noBos ? std::optional(false) : std::nullopt;
    profile.settings.epsilon = o.epsilon;
    profile.settings.bootstrap = o.bootstrap;
    auto shard = parseProfileShard(o.shard);
    if (!shard) {
        throw UsageError{shard.error().message};
    }
    profile.shard = *shard;
    auto data = parseProfileDataList(o.data);
    if (!data) {
        throw UsageError{data.error().message};
    }
    profile.data = *data;
    // Every text before any model loads: a bad JSONL line fails in a second, not after an hour.
    std::vector<ProfileTexts> texts;
    for (const auto &set : profile.data) {
        auto loaded = loadProfileTexts(set);
        if (!loaded) {
            throw Failure{loaded.error().message};
        }
        texts.push_back(std::move(*loaded));
    }
    warnIfSlowBlas(err);
    const std::vector<std::string> paths = o.models.empty() ? std::vector<std::string>{""} : o.models;
    InterruptScope interrupt;
    std::set<std::string> keys;
    bool interrupted = false;
    for (const std::string &path : paths) {
        auto model = loadModel(ModelOptions{.model = path, .device = o.device}, err);
        ProfileModel info;
        info.path = path;
        info.name = model->config().name;
        info.family = architectureName(model->config().architecture);
        info.layers = model->config().layers;
        info.heads = model->config().heads;
        // The default model is named by its file (SmolLM2-135M-Instruct), every other model by its path.
        info.key = modelKey(path.empty() ? fs::path(model->info().path).stem().string() : path, info.name, keys);
        keys.insert(info.key);
        info.step = path.empty() ? std::nullopt : checkpointStep(path);
        if (!info.step) {
            info.step = stepInName(info.name);
        }
        if (model->config().contextLength > 0 && profile.settings.tokens > model->config().contextLength) {
            throw Failure{"--tokens " + std::to_string(profile.settings.tokens) + " is longer than " + info.key +
                          "'s context (" + std::to_string(model->config().contextLength) + " tokens)"};
        }
        profile.models.push_back(info);
        const auto [first, last] = shardRange(profile.shard, profile.settings.samples);
        err << "profile: " << info.key << (info.step ? " (step " + std::to_string(*info.step) + ")" : "")
            << ", samples " << first << ".." << last - 1 << " of " << profile.settings.samples << " per data set"
            << (profile.shard.sharded() ? " (shard " + o.shard + ")" : "") << "\n";
        ProfileRunHooks hooks;
        hooks.cancel = &g_interrupt;
        hooks.log = [&](const std::string &line) { err << "  " << line << "\n"; };
        auto st = runProfileModel(*model, info, texts, profile, hooks);
        if (!st) {
            if (st.error().code != ErrorCode::Cancelled) {
                throw Failure{st.error().message};
            }
            interrupted = true;
            break;
        }
    }
    if (interrupted) {
        err << "interrupted: writing the partial profile (\"complete\": false)\n";
    }
    const ProfileSummaries summaries = summarizeAll(profile);
    // An interrupted profile gets its files only: figures of a partial run would pass for the real thing.
    writeOutputs(profile, summaries, o.dir,
                 interrupted ? std::vector<std::string>{} : figureFormats(o.formats, o.noFigures), err);
    printSummary(profile, summaries, out);
    return interrupted ? kInterrupted : 0;
}

int runMerge(const MergeOptions &o, std::ostream &out, std::ostream &err)
{
    std::vector<Profile> shards;
    for (const auto &dir : o.dirs) {
        auto p = readProfile(dir);
        if (!p) {
            throw Failure{p.error().message};
        }
        shards.push_back(std::move(*p));
    }
    auto merged = mergeProfiles(shards, o.dirs);
    if (!merged) {
        throw Failure{merged.error().message};
    }
    merged->createdBy = std::string("sinkscope-cli ") + SINKSCOPE_VERSION + " merge of " +
                        std::to_string(o.dirs.size()) + " shard(s) (" + shards.front().createdBy + ")";
    err << "merged " << o.dirs.size() << " shard(s)\n";
    const ProfileSummaries summaries = summarizeAll(*merged);
    writeOutputs(*merged, summaries, o.dir, figureFormats(o.formats, o.noFigures), err);
    printSummary(*merged, summaries, out);
    return 0;
}

void addFigureOptions(CLI::App &cmd, std::string &formats, bool &noFigures)
{
    auto *format = cmd.add_option("--format", formats, "figure formats, any of png,svg,pdf")
                       ->type_name("LIST")
                       ->check(figureFormatList());
    cmd.add_flag("--no-figures", noFigures, "the JSON, CSVs and samples only")->excludes(format);
}

} // namespace

Command addProfileCommand(CLI::App &cli)
{
    auto o = std::make_shared<ProfileOptions>();
    CLI::App *cmd = cli.add_subcommand(
        "profile", "sink metrics averaged over many samples, models and checkpoints, with intervals");
    cmd->footer(kProfileProse);
    cmd->add_option("--model", o->models, "a model file or folder; repeat for several models or checkpoints")
        ->type_name("PATH");
    cmd->add_option("--device", o->device, "cpu, cuda or cuda:N")->type_name("DEVICE");
    cmd->add_option("--data", o->data, "data sets: natural, random, repeated, FILE.jsonl, FOLDER (comma-separated)")
        ->type_name("LIST");
    cmd->add_option("--samples", o->samples, "samples per data set")
        ->type_name("N")
        ->check(between<int64_t>(1, 1000000));
    cmd->add_option("--tokens", o->tokens, "tokens per sample")->type_name("T")->check(between<int64_t>(2, 1 << 20));
    cmd->add_option("--seed", o->seed, "seed of the random draws and the bootstrap")->type_name("S");
    auto *bos = cmd->add_flag("--bos", o->bos, "put BOS first in every sample");
    cmd->add_flag("--no-bos", o->noBos, "no BOS in any sample")->excludes(bos);
    cmd->add_option("--shard", o->shard, "run the K-th of N parts of the samples")->type_name("K/N");
    cmd->add_option("--out", o->dir, "the folder for profile.json, the CSVs, samples/ and the figures")
        ->type_name("DIR")
        ->required();
    cmd->add_option("--epsilon", o->epsilon, "Sink_1^epsilon: a head sinks when alpha_1 > epsilon")
        ->type_name("E")
        ->check(between(0.0, 1.0));
    cmd->add_option("--bootstrap", o->bootstrap, "bootstrap resamples for the 95% intervals (0: none)")
        ->type_name("B")
        ->check(between(0, 100000));
    addFigureOptions(*cmd, o->formats, o->noFigures);
    return {cmd, [o](std::ostream &out, std::ostream &err) { return runProfile(*o, out, err); }};
}

Command addMergeCommand(CLI::App &cli)
{
    auto o = std::make_shared<MergeOptions>();
    CLI::App *cmd = cli.add_subcommand("merge", "combine the shards of a profile into the unsharded result");
    cmd->footer(kMergeProse);
    cmd->add_option("dirs", o->dirs, "the shards' --out folders")->type_name("DIR...")->required();
    cmd->add_option("--out", o->dir, "the folder for the merged profile")->type_name("DIR")->required();
    addFigureOptions(*cmd, o->formats, o->noFigures);
    return {cmd, [o](std::ostream &out, std::ostream &err) { return runMerge(*o, out, err); }};
}

} // namespace sinkscope::cli
