// Sink profiles: the data sets (Gu et al.'s random and repeated constructions, natural prose, JSONL and
// folders), the per-sample values against directly computed metrics, the bootstrap against an independent
// implementation of its definition, shards and merges, cancel, and bad input.
#include "sinkscope/analysis/profile.h"
#include "sinkscope/model/convert.h"
#include "sinkscope/tokenizer/tokenizer.h"

#include "support/test_paths.h"
#include "support/tiny_models.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <thread>

namespace sinkscope {
namespace {

namespace st = sinkscope::testing;
namespace fs = std::filesystem;

// SplitMix64 as published (Vigna, splitmix64.c), written here independently of the product's copy.
struct RefSplitMix {
    uint64_t x;
    uint64_t next()
    {
        uint64_t z = (x += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    uint64_t below(uint64_t n)
    {
        const uint64_t max = ~uint64_t{0};
        const uint64_t limit = max - max % n;
        for (;;) {
            const uint64_t r = next();
            if (r < limit) {
                return r % n;
            }
        }
    }
};

// One converted tiny Llama for the suite (vocabulary 301, context 64).
class Profiles : public ::testing::Test
{
protected:
    static void SetUpTestSuite()
    {
        s_dir = std::make_unique<st::TempDir>();
        st::writeTinyLlamaCheckpointGguf(s_dir->file("tiny-step1000.gguf"), 1000);
        ASSERT_TRUE(convertGguf(s_dir->file("tiny-step1000.gguf"), s_dir->file("tiny-step1000.pt")));
        auto model = Model::load(s_dir->file("tiny-step1000.pt"));
        ASSERT_TRUE(model) << model.error().message;
        s_model = std::move(*model);
    }
    static void TearDownTestSuite()
    {
        s_model.reset();
        s_dir.reset();
    }
    static const Model &model() { return *s_model; }
    static const Tokenizer *tokenizer() { return s_model->tokenizer().get(); }

    static ProfileSampler sampler(const std::string &data, ProfileSettings settings,
                                  const ProfileTexts *texts = nullptr)
    {
        auto sets = parseProfileDataList(data);
        EXPECT_TRUE(sets) << sets.error().message;
        auto s = ProfileSampler::create(texts, sets->front(), tokenizer(), st::tiny::kVocab, settings);
        EXPECT_TRUE(s) << s.error().message;
        return std::move(*s);
    }
    static std::vector<int64_t> draw(const ProfileSampler &s, int64_t i)
    {
        auto ids = s.sample(i);
        EXPECT_TRUE(ids && *ids);
        return ids && *ids ? **ids : std::vector<int64_t>{};
    }

    static std::unique_ptr<st::TempDir> s_dir;
    static std::shared_ptr<const Model> s_model;
};
std::unique_ptr<st::TempDir> Profiles::s_dir;
std::shared_ptr<const Model> Profiles::s_model;

TEST(ProfileRng, SplitMix64ReferenceOutputs)
{
    // The first outputs of splitmix64.c seeded with 1234567 (its published test values).
    RefSplitMix g{1234567};
    EXPECT_EQ(g.next(), 6457827717110365317ull);
    EXPECT_EQ(g.next(), 3203168211198807973ull);
    EXPECT_EQ(g.next(), 9817491932198370423ull);
}

TEST_F(Profiles, RandomTokensAreGuEtAlsConstruction)
{
    ProfileSettings settings;
    settings.tokens = 64;
    settings.seed = 7;
    const ProfileSampler s = sampler("random", settings);
    for (int64_t i : {0, 1, 57}) {
        // T ids, each uniform over the whole vocabulary, no BOS; drawn as documented.
        RefSplitMix g{profileSampleSeed(7, "random", i)};
        std::vector<int64_t> expected;
        for (int t = 0; t < 64; ++t) {
            expected.push_back(static_cast<int64_t>(g.below(st::tiny::kVocab)));
        }
        EXPECT_EQ(draw(s, i), expected) << "sample " << i;
    }
    EXPECT_NE(draw(s, 0), draw(s, 1));
    EXPECT_EQ(draw(s, 3), draw(sampler("random", settings), 3)); // the same sample in any process or shard
    settings.seed = 8;
    EXPECT_NE(draw(s, 0), draw(sampler("random", settings), 0));
    // Uniform: over 200 samples every id turns up and the mean is near (V - 1) / 2.
    std::vector<int> seen(st::tiny::kVocab, 0);
    double sum = 0;
    for (int64_t i = 0; i < 200; ++i) {
        for (int64_t id : draw(s, i)) {
            ASSERT_GE(id, 0);
            ASSERT_LT(id, st::tiny::kVocab);
            ++seen[static_cast<size_t>(id)];
            sum += static_cast<double>(id);
        }
    }
    EXPECT_EQ(std::count(seen.begin(), seen.end(), 0), 0);
    EXPECT_NEAR(sum / (200.0 * 64), (st::tiny::kVocab - 1) / 2.0, 3.0);
}

TEST_F(Profiles, RepeatedIsOneDrawnTokenTTimesAndBosIsOptIn)
{
    ProfileSettings settings;
    settings.tokens = 16;
    const ProfileSampler s = sampler("repeated", settings);
    for (int64_t i : {0, 4}) {
        RefSplitMix g{profileSampleSeed(0, "repeated", i)};
        const auto id = static_cast<int64_t>(g.below(st::tiny::kVocab));
        EXPECT_EQ(draw(s, i), std::vector<int64_t>(16, id));
    }
    settings.bos = true;
    const auto withBos = draw(sampler("repeated", settings), 0);
    ASSERT_EQ(withBos.size(), 16u);
    EXPECT_EQ(withBos[0], st::tiny::kEndOfText); // the tiny tokenizer's BOS
    EXPECT_EQ(std::count(withBos.begin() + 1, withBos.end(), withBos[1]), 15);
    const auto randomBos = draw(sampler("random", settings), 0);
    EXPECT_EQ(randomBos.size(), 16u);
    EXPECT_EQ(randomBos[0], st::tiny::kEndOfText);
}

TEST_F(Profiles, NaturalSamplesAreProseFromTheLicences)
{
    if (naturalCorpusFiles().empty()) {
        GTEST_SKIP() << "no /usr/share/common-licenses on this machine";
    }
    auto sets = parseProfileDataList("natural");
    ASSERT_TRUE(sets);
    auto texts = loadProfileTexts(sets->front());
    ASSERT_TRUE(texts) << texts.error().message;
    ProfileSettings settings;
    settings.tokens = 32;
    const ProfileSampler s = sampler("natural", settings, &*texts);
    EXPECT_GT(s.distinct(), 100); // hundreds of paragraphs
    std::string corpus;           // every licence with its whitespace runs collapsed, as the sampler reads them
    for (const auto &file : naturalCorpusFiles()) {
        std::ifstream in(file);
        std::string word;
        while (in >> word) {
            corpus += word + " ";
        }
    }
    for (int64_t i = 0; i < 5; ++i) {
        const auto ids = draw(s, i);
        ASSERT_EQ(ids.size(), 32u);
        std::string text = tokenizer()->decode(ids);
        // The first 20 characters, whitespace collapsed, occur in the corpus.
        std::string collapsed;
        for (char c : text.substr(0, 20)) {
            const bool space = std::isspace(static_cast<unsigned char>(c)) != 0;
            if (!(space && (collapsed.empty() || collapsed.back() == ' '))) {
                collapsed += space ? ' ' : c;
            }
        }
        EXPECT_NE(corpus.find(collapsed), std::string::npos) << "'" << collapsed << "'";
    }
    EXPECT_NE(draw(s, 0), draw(s, 1));
    EXPECT_EQ(draw(s, s.distinct()), draw(s, 0)); // more samples than paragraphs: they repeat
}

TEST_F(Profiles, JsonlAndFoldersGiveTheFirstTTokensOfEachLongEnoughText)
{
    st::TempDir dir;
    {
        std::ofstream f(dir.file("texts.jsonl"));
        f << R"({"text": "The cat sat on the mat and the dog sat on the log in the sun."})"
          << "\n\n";
        f << R"({"text": "short"})"
          << "\n";
        f << R"({"text": "Another line of text that is long enough for eight tokens.", "id": 3})"
          << "\n";
    }
    fs::create_directories(dir.file("folder"));
    std::ofstream(dir.file("folder/b.txt")) << "The second file has plenty of words in it.";
    std::ofstream(dir.file("folder/a.txt")) << "The first file, by name, has plenty of words too.";
    std::ofstream(dir.file("folder/skip.md")) << "not a .txt file";
    ProfileSettings settings;
    settings.tokens = 8;
    for (const auto &[data, first] :
         {std::pair{dir.file("texts.jsonl"),
                    std::string("The cat sat on the mat and the dog sat on the log in the sun.")},
          std::pair{dir.file("folder"), std::string("The first file, by name, has plenty of words too.")}}) {
        auto sets = parseProfileDataList(data);
        ASSERT_TRUE(sets) << sets.error().message;
        auto texts = loadProfileTexts(sets->front());
        ASSERT_TRUE(texts) << texts.error().message;
        auto s = ProfileSampler::create(&*texts, sets->front(), tokenizer(), st::tiny::kVocab, settings);
        ASSERT_TRUE(s) << s.error().message;
        EXPECT_EQ(s->distinct(), 2);
        auto expected = tokenizer()->encode(first, EncodeOptions{.parseSpecial = false});
        expected.resize(8);
        EXPECT_EQ(draw(*s, 0), expected);
        auto past = s->sample(2);
        ASSERT_TRUE(past);
        EXPECT_FALSE(*past); // no third usable text
    }
}

TEST(ProfileInput, BadDataShardsAndLinesAreClearErrors)
{
    st::TempDir dir;
    std::ofstream(dir.file("bad.jsonl")) << "{\"text\": \"fine\"}\n{\"body\": \"no text\"}\n";
    std::ofstream(dir.file("notjson.jsonl")) << "{\"text\": \"fine\"}\nnot json\n";
    std::ofstream(dir.file("number.jsonl")) << "{\"text\": 3}\n";
    std::ofstream(dir.file("notes.csv")) << "a,b\n";
    fs::create_directories(dir.file("empty"));
    auto loadError = [](const std::string &data) {
        auto sets = parseProfileDataList(data);
        if (!sets) {
            return sets.error().message;
        }
        auto texts = loadProfileTexts(sets->front());
        return texts ? std::string() : texts.error().message;
    };
    EXPECT_EQ(loadError(dir.file("bad.jsonl")),
              dir.file("bad.jsonl") + ":2: no \"text\" field (each line must be an object with a \"text\" string)");
    EXPECT_EQ(loadError(dir.file("notjson.jsonl")), dir.file("notjson.jsonl") + ":2: not valid JSON");
    EXPECT_EQ(loadError(dir.file("number.jsonl")), dir.file("number.jsonl") + ":1: \"text\" is not a string");
    EXPECT_EQ(loadError(dir.file("empty")), dir.file("empty") + ": the folder has no .txt files");
    EXPECT_NE(loadError(dir.file("notes.csv")).find("must be JSONL"), std::string::npos);
    EXPECT_NE(loadError(dir.file("missing")).find("no such file or folder"), std::string::npos);
    EXPECT_NE(loadError("natural,random,natural").find("unique"), std::string::npos);
    EXPECT_NE(loadError(",").find("no data set"), std::string::npos);

    for (const char *bad : {"3/2", "0/2", "a/b", "2", "1/0", "-1/3", "1/2/3"}) {
        auto shard = parseProfileShard(bad);
        EXPECT_FALSE(shard) << bad;
        if (!shard) {
            EXPECT_NE(shard.error().message.find(bad), std::string::npos);
        }
    }
    auto shard = parseProfileShard("2/3");
    ASSERT_TRUE(shard);
    EXPECT_EQ(shardRange(*shard, 10), (std::pair<int64_t, int64_t>{3, 6}));
    // The ranges tile the samples.
    int64_t next = 0;
    for (int k = 1; k <= 4; ++k) {
        const auto [a, b] = shardRange(ProfileShard{k, 4}, 10);
        EXPECT_EQ(a, next);
        next = b;
    }
    EXPECT_EQ(next, 10);
}

// Percentile bootstrap written from its definition, with the reference generator.
TEST(ProfileSummary, MeansCountsAndBootstrapFollowTheirDefinitions)
{
    ProfileCell cell;
    cell.model = "m";
    cell.data = "d";
    cell.layout.blocks = {{"model.x", "", 1, 0}, {"model.y", "", 1, 1}};
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const std::vector<double> xs = {0.1, 0.5, 0.2, 0.9, 0.4, 0.3, 0.8};
    for (size_t i = 0; i < xs.size(); ++i) {
        cell.samples.push_back({static_cast<int64_t>(i), {xs[i], i % 3 == 0 ? nan : 2.0 * xs[i]}});
    }
    ProfileSettings settings;
    settings.bootstrap = 500;
    settings.seed = 11;
    const auto stats = summarize(cell, settings);
    double sum = 0;
    for (double x : xs) {
        sum += x;
    }
    EXPECT_DOUBLE_EQ(stats[0].mean, sum / 7);
    EXPECT_EQ(stats[0].n, 7);
    EXPECT_EQ(stats[1].n, 4); // NaN samples do not count
    EXPECT_DOUBLE_EQ(stats[1].mean, 2.0 * (0.5 + 0.2 + 0.4 + 0.3) / 4);

    RefSplitMix g{profileSampleSeed(11, "bootstrap:m/d", 0)};
    std::vector<double> means;
    for (int b = 0; b < 500; ++b) {
        double s = 0;
        for (int i = 0; i < 7; ++i) {
            s += xs[g.below(7)];
        }
        means.push_back(s / 7);
    }
    std::sort(means.begin(), means.end());
    auto q = [&](double p) {
        const double pos = p * (means.size() - 1);
        const auto lo = static_cast<size_t>(pos);
        return means[lo] + (pos - lo) * (means[std::min(lo + 1, means.size() - 1)] - means[lo]);
    };
    EXPECT_NEAR(stats[0].low, q(0.025), 1e-12);
    EXPECT_NEAR(stats[0].high, q(0.975), 1e-12);
    EXPECT_LT(stats[0].low, stats[0].mean);
    EXPECT_GT(stats[0].high, stats[0].mean);

    settings.seed = 12;
    EXPECT_NE(summarize(cell, settings)[0].low, stats[0].low);
    settings.bootstrap = 0;
    EXPECT_TRUE(std::isnan(summarize(cell, settings)[0].low));
}

TEST_F(Profiles, ValuesAreTheMetricsOfEachSampleAveraged)
{
    Profile profile;
    profile.settings.samples = 5;
    profile.settings.tokens = 16;
    profile.settings.bootstrap = 50;
    profile.data = *parseProfileDataList("random,repeated");
    ProfileModel info{.key = "tiny", .path = "", .name = "tiny", .family = "llama", .layers = 2, .heads = 4};
    ASSERT_TRUE(runProfileModel(model(), info, {ProfileTexts{}, ProfileTexts{}}, profile));
    ASSERT_EQ(profile.cells.size(), 2u);
    const ProfileCell &cell = profile.cells[0];
    ASSERT_EQ(cell.samples.size(), 5u);
    const auto stats = summarize(cell, profile.settings);
    // Independently: each sample's tokens through analyzeTokens, then the plain mean.
    const ProfileSampler s = sampler("random", profile.settings);
    std::vector<double> mass(8, 0.0);
    double sink = 0;
    for (int64_t i = 0; i < 5; ++i) {
        MetricsOptions options;
        auto metrics = analyzeTokens(model(), draw(s, i), options);
        ASSERT_TRUE(metrics) << metrics.error().message;
        const HeadMetric *m = (*metrics)->headMetric("first_token_mass");
        for (size_t k = 0; k < 8; ++k) {
            mass[k] += m->values.data[k] / 5.0;
        }
        sink += 100.0 * (*metrics)->sinkFraction / 5.0;
    }
    const ProfileBlock *head = cell.layout.block("head.first_token_mass");
    ASSERT_NE(head, nullptr);
    EXPECT_EQ(head->size, 8);
    for (size_t k = 0; k < 8; ++k) {
        EXPECT_NEAR(stats[static_cast<size_t>(head->offset) + k].mean, mass[k], 1e-9) << k;
    }
    EXPECT_NEAR(stats[static_cast<size_t>(cell.layout.block("model.sink_1")->offset)].mean, sink, 1e-9);
    const ProfileBlock *layer = cell.layout.block("layer.first_token_mass");
    EXPECT_NEAR(stats[static_cast<size_t>(layer->offset)].mean, (mass[0] + mass[1] + mass[2] + mass[3]) / 4, 1e-9);
    for (const char *name : {"layer.massive_top1", "layer.massive_median", "model.massive_ratio", "layer.sink_1"}) {
        ASSERT_NE(cell.layout.block(name), nullptr) << name;
        EXPECT_EQ(stats[static_cast<size_t>(cell.layout.block(name)->offset)].n, 5) << name;
    }
}

TEST_F(Profiles, ShardsMergeIntoExactlyTheUnshardedProfileAndFilesRoundTrip)
{
    auto run = [&](ProfileShard shard) {
        Profile p;
        p.settings.samples = 7;
        p.settings.tokens = 12;
        p.settings.seed = 3;
        p.settings.bootstrap = 200;
        p.shard = shard;
        p.data = *parseProfileDataList("random,repeated");
        ProfileModel info{.key = "tiny", .path = "x", .name = "tiny", .family = "llama", .layers = 2, .heads = 4};
        EXPECT_TRUE(runProfileModel(model(), info, {ProfileTexts{}, ProfileTexts{}}, p));
        p.models.push_back(info);
        return p;
    };
    const Profile whole = run({});
    st::TempDir dir;
    std::vector<Profile> shards;
    std::vector<std::string> dirs;
    for (int k : {2, 1, 3}) { // any order
        const std::string d = dir.file("shard" + std::to_string(k));
        ASSERT_TRUE(writeProfile(run({k, 3}), d));
        auto back = readProfile(d);
        ASSERT_TRUE(back) << back.error().message;
        shards.push_back(std::move(*back));
        dirs.push_back(d);
    }
    auto merged = mergeProfiles(shards, dirs);
    ASSERT_TRUE(merged) << merged.error().message;
    EXPECT_EQ(profileJson(*merged), profileJson(whole)); // bit for bit, intervals included
    ASSERT_TRUE(writeProfile(whole, dir.file("whole")));
    auto reread = readProfile(dir.file("whole"));
    ASSERT_TRUE(reread);
    EXPECT_EQ(profileJson(*reread), profileJson(whole));

    // Mismatches are refused, naming the folder.
    auto refused = [&](std::vector<Profile> s, const std::string &expect) {
        auto r = mergeProfiles(s, dirs);
        ASSERT_FALSE(r);
        EXPECT_NE(r.error().message.find(expect), std::string::npos) << r.error().message;
    };
    refused({shards[0], shards[1]}, "shard 3/3 is missing");
    refused({shards[0], shards[0], shards[2]}, "is the same shard as");
    std::vector<Profile> other = shards;
    other[1].settings.tokens = 13;
    refused(other, "ran with other settings");
    other = shards;
    other[2].shard.count = 4;
    refused(other, "belongs to a run of 4 shards");
    other = shards;
    other[0].complete = false;
    refused(other, "is partial");
    other = shards;
    other[0].models[0].name = "other";
    refused(other, "other models");
    other = shards;
    other[0].cells[0].samples[0].index = 0; // shard 2/3 holds samples 2..3
    refused(other, "outside the shard's range");

    // A damaged or missing samples file is named.
    fs::path bin;
    for (const auto &e : fs::directory_iterator(dir.file("whole/samples"))) {
        bin = e.path();
    }
    std::ofstream(bin, std::ios::trunc) << "junk";
    auto damaged = readProfile(dir.file("whole"));
    ASSERT_FALSE(damaged);
    EXPECT_NE(damaged.error().message.find(bin.string()), std::string::npos) << damaged.error().message;
    fs::remove(bin);
    damaged = readProfile(dir.file("whole"));
    ASSERT_FALSE(damaged);
    EXPECT_NE(damaged.error().message.find("cannot open"), std::string::npos) << damaged.error().message;
    std::ofstream(dir.file("whole/profile.json"), std::ios::trunc) << "{\"format\": \"sinkscope-profile\"}";
    damaged = readProfile(dir.file("whole"));
    ASSERT_FALSE(damaged);
    EXPECT_NE(damaged.error().message.find("profile.json"), std::string::npos) << damaged.error().message;
}

TEST_F(Profiles, CancelLeavesAValidPartialProfile)
{
    Profile p;
    p.settings.samples = 100000;
    p.settings.tokens = 12;
    p.data = *parseProfileDataList("random");
    CancelToken cancel;
    ProfileRunHooks hooks;
    hooks.cancel = &cancel;
    ProfileModel info{.key = "tiny", .path = "", .name = "tiny", .family = "llama", .layers = 2, .heads = 4};
    std::thread stopper([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        cancel.cancel();
    });
    const Status st = runProfileModel(model(), info, {ProfileTexts{}}, p, hooks);
    stopper.join();
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error().code, ErrorCode::Cancelled);
    EXPECT_FALSE(p.complete);
    ASSERT_EQ(p.cells.size(), 1u);
    EXPECT_LT(p.cells[0].samples.size(), 100000u);
    p.models.push_back(info);
    st::TempDir dir;
    ASSERT_TRUE(writeProfile(p, dir.file("partial")));
    auto back = readProfile(dir.file("partial"));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_FALSE(back->complete);
    EXPECT_EQ(back->cells[0].samples.size(), p.cells[0].samples.size());
}

} // namespace
} // namespace sinkscope
