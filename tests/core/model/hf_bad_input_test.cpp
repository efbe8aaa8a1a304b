// Broken Hugging Face folders: a copy of tests/data/families/qwen2/hf (BF16, tied, q/k/v biases) with one
// thing broken. convertModel must refuse each one with the right code and a one-line message that names
// the file at fault and the problem, write no archive (nor a .partial), and never allocate from a size it
// has not checked against the file: every refusal runs under an address-space limit a few GiB above what
// the process already maps, so an allocation taken from a garbage size fails the test instead of passing
// on an overcommitting machine. Also: the same weights as one file and as two shards give the same model.
#include "sinkscope/format/safetensors.h"
#include "sinkscope/model/convert.h"
#include "sinkscope/model/model.h"
#include "support/safetensors_writer.h"
#include "support/test_paths.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

using namespace sinkscope;
namespace st = sinkscope::testing;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char *kFamily = "qwen2";

// Headroom above the current mapping while a broken folder converts: the tiny model needs a few MiB; the
// garbage sizes below ask for 16 GiB and more.
constexpr uint64_t kHeadroomBytes = uint64_t(4) << 30;

std::string sourceFolder()
{
    return st::testDataDir() + "/families/" + kFamily + "/hf";
}

uint64_t mappedBytes()
{
    std::ifstream in("/proc/self/statm");
    uint64_t pages = 0;
    in >> pages;
    return pages * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

// RLIMIT_AS lowered to what is mapped now plus kHeadroomBytes, restored on destruction.
class AddressSpaceLimit
{
public:
    AddressSpaceLimit()
    {
        m_ok = ::getrlimit(RLIMIT_AS, &m_saved) == 0;
        if (m_ok) {
            rlimit lowered = m_saved;
            lowered.rlim_cur = std::min<rlim_t>(m_saved.rlim_max, mappedBytes() + kHeadroomBytes);
            m_ok = ::setrlimit(RLIMIT_AS, &lowered) == 0;
        }
    }
    ~AddressSpaceLimit()
    {
        if (m_ok) {
            ::setrlimit(RLIMIT_AS, &m_saved);
        }
    }
    AddressSpaceLimit(const AddressSpaceLimit &) = delete;
    AddressSpaceLimit &operator=(const AddressSpaceLimit &) = delete;

private:
    rlimit m_saved{};
    bool m_ok = false;
};

// One tensor of the source checkpoint, as stored.
struct RawTensor {
    std::string name;
    std::string dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
};

std::vector<RawTensor> sourceTensors()
{
    auto model = SafetensorsModel::open(sourceFolder() + "/model.safetensors");
    EXPECT_TRUE(model) << model.error().message;
    std::vector<RawTensor> out;
    if (!model) {
        return out;
    }
    for (const SafetensorsTensor &t : (*model)->tensors()) {
        auto bytes = (*model)->readBytes(t);
        EXPECT_TRUE(bytes) << bytes.error().message;
        out.push_back({t.name, t.dtype, t.shape, bytes ? *bytes : std::vector<uint8_t>{}});
    }
    return out;
}

st::SafetensorsWriter writerFor(const std::vector<RawTensor> &tensors)
{
    st::SafetensorsWriter w;
    w.addMetadata("format", "pt");
    for (const RawTensor &t : tensors) {
        w.addRawTensor(t.name, t.dtype, t.shape, t.bytes);
    }
    return w;
}

std::vector<uint8_t> fileBytes(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

// A fresh copy of the source folder per test.
class BrokenHfFolder : public ::testing::Test
{
protected:
    void SetUp() override
    {
        fs::copy(sourceFolder(), folder(), fs::copy_options::recursive);
        m_tensors = sourceTensors();
        ASSERT_FALSE(m_tensors.empty());
    }

    std::string folder() const { return m_dir.file("hf"); }
    std::string path(const std::string &name) const { return (fs::path(folder()) / name).string(); }
    std::string weights() const { return path("model.safetensors"); }
    std::string output() const { return m_dir.file("out.pt"); }

    json config() const
    {
        std::ifstream in(path("config.json"));
        return json::parse(in);
    }
    void writeConfig(const json &j) const { std::ofstream(path("config.json"), std::ios::trunc) << j.dump(2); }
    void editConfig(const std::function<void(json &)> &edit) const
    {
        json j = config();
        edit(j);
        writeConfig(j);
    }
    void writeText(const std::string &name, const std::string &text) const
    {
        std::ofstream(path(name), std::ios::binary | std::ios::trunc) << text;
    }
    void writeWeights(const std::vector<RawTensor> &tensors) const { writerFor(tensors).write(weights()); }

    // Splits the checkpoint into two shards and an index; model.safetensors goes away (the reader prefers it).
    void shard() const
    {
        const size_t half = m_tensors.size() / 2;
        const std::vector<RawTensor> first(m_tensors.begin(), m_tensors.begin() + static_cast<std::ptrdiff_t>(half));
        const std::vector<RawTensor> second(m_tensors.begin() + static_cast<std::ptrdiff_t>(half), m_tensors.end());
        json index;
        uint64_t total = 0;
        for (const RawTensor &t : m_tensors) {
            total += t.bytes.size();
        }
        index["metadata"] = {{"total_size", total}};
        index["weight_map"] = json::object();
        for (const RawTensor &t : first) {
            index["weight_map"][t.name] = kShard1;
        }
        for (const RawTensor &t : second) {
            index["weight_map"][t.name] = kShard2;
        }
        writerFor(first).write(path(kShard1));
        writerFor(second).write(path(kShard2));
        writeText("model.safetensors.index.json", index.dump(2));
        fs::remove(weights());
    }

    // Converts the broken folder and checks everything a refusal promises; returns the error.
    Error refusal(ErrorCode code, const std::string &fileAtFault, std::initializer_list<std::string> problem)
    {
        return refusalOneOf({code}, fileAtFault, problem);
    }
    Error refusalOneOf(std::initializer_list<ErrorCode> codes, const std::string &fileAtFault,
                       std::initializer_list<std::string> problem)
    {
        Status s = [&] {
            AddressSpaceLimit limit;
            return convertModel(folder(), output());
        }();
        EXPECT_FALSE(s) << "converted a broken folder";
        if (s) {
            return {};
        }
        const Error &e = s.error();
        EXPECT_NE(std::find(codes.begin(), codes.end(), e.code), codes.end())
            << errorCodeName(e.code) << ": " << e.message;
        EXPECT_NE(e.message.find(fileAtFault), std::string::npos) << "file at fault not named: " << e.message;
        for (const std::string &p : problem) {
            EXPECT_NE(e.message.find(p), std::string::npos) << "'" << p << "' not in: " << e.message;
        }
        EXPECT_EQ(e.message.find('\n'), std::string::npos) << "not one line: " << e.message;
        std::error_code ec;
        EXPECT_FALSE(fs::exists(output(), ec)) << "an archive was written";
        EXPECT_FALSE(st::siblingStartingWith(output(), ".partial")) << "a partial archive was left behind";
        return e;
    }

    static constexpr const char *kShard1 = "model-00001-of-00002.safetensors";
    static constexpr const char *kShard2 = "model-00002-of-00002.safetensors";

    st::TempDir m_dir;
    std::vector<RawTensor> m_tensors;
};

std::vector<RawTensor> without(std::vector<RawTensor> tensors, const std::string &name)
{
    std::erase_if(tensors, [&](const RawTensor &t) { return t.name == name; });
    return tensors;
}

RawTensor &named(std::vector<RawTensor> &tensors, const std::string &name)
{
    auto it = std::find_if(tensors.begin(), tensors.end(), [&](const RawTensor &t) { return t.name == name; });
    EXPECT_NE(it, tensors.end()) << name;
    return *it;
}

} // namespace

TEST_F(BrokenHfFolder, TheUnbrokenCopyConverts)
{
    // The baseline every case below breaks one thing of.
    Status s = convertModel(folder(), output());
    ASSERT_TRUE(s) << s.error().message;
    EXPECT_TRUE(fs::exists(output()));
}

// --- safetensors ---

TEST_F(BrokenHfFolder, TruncatedWeightsFile)
{
    auto bytes = fileBytes(weights());
    bytes.resize(bytes.size() / 2);
    st::writeFileBytes(weights(), bytes);
    refusal(ErrorCode::Corrupt, weights(), {"past the end of the data", "truncated"});
}

TEST_F(BrokenHfFolder, WeightsFileShorterThanItsHeaderLength)
{
    st::writeFileBytes(weights(), {0x10, 0x00, 0x00});
    refusal(ErrorCode::Corrupt, weights(), {"truncated"});
}

TEST_F(BrokenHfFolder, AbsurdHeaderLength)
{
    const auto w = writerFor(m_tensors);
    st::writeFileBytes(weights(), st::SafetensorsWriter::assemble(w.headerJson(), w.data(), uint64_t(1) << 60));
    refusal(ErrorCode::Corrupt, weights(), {"header length " + std::to_string(uint64_t(1) << 60)});
}

TEST_F(BrokenHfFolder, GarbageHeaderJson)
{
    const auto w = writerFor(m_tensors);
    st::writeFileBytes(weights(), st::SafetensorsWriter::assemble("{\"model.norm.weight\": {\"dtype\": [", w.data()));
    refusal(ErrorCode::Corrupt, weights(), {"header is not valid UTF-8 JSON"});
}

TEST_F(BrokenHfFolder, HeaderThatIsNotAnObject)
{
    const auto w = writerFor(m_tensors);
    st::writeFileBytes(weights(), st::SafetensorsWriter::assemble("[1, 2, 3]", w.data()));
    refusal(ErrorCode::Corrupt, weights(), {"not an object"});
}

TEST_F(BrokenHfFolder, TensorOffsetsPastTheEnd)
{
    const auto w = writerFor(m_tensors);
    json header = json::parse(w.headerJson());
    const uint64_t size = w.data().size();
    header["model.norm.weight"]["data_offsets"] = {size - 128, size + 4096};
    st::writeFileBytes(weights(), st::SafetensorsWriter::assemble(header.dump(), w.data()));
    refusal(ErrorCode::Corrupt, weights(), {"'model.norm.weight'", "past the end of the data"});
}

TEST_F(BrokenHfFolder, HugeOffsetsAndShape)
{
    // 2^62 elements of BF16 at offsets near 2^63: every size is checked against the file before use.
    const auto w = writerFor(m_tensors);
    json header = json::parse(w.headerJson());
    header["model.norm.weight"]["shape"] = {uint64_t(1) << 31, uint64_t(1) << 31};
    header["model.norm.weight"]["data_offsets"] = {0, uint64_t(1) << 63};
    st::writeFileBytes(weights(), st::SafetensorsWriter::assemble(header.dump(), w.data()));
    refusal(ErrorCode::Corrupt, weights(), {"'model.norm.weight'"});
}

TEST_F(BrokenHfFolder, DtypeAndOffsetsDisagree)
{
    // 64 BF16 values (128 bytes) declared as F32, which needs 256.
    named(m_tensors, "model.norm.weight").dtype = "F32";
    writeWeights(m_tensors);
    refusal(ErrorCode::Corrupt, weights(), {"'model.norm.weight'", "128 bytes", "F32 shape [64] needs 256 bytes"});
}

TEST_F(BrokenHfFolder, ShapeAndOffsetsDisagree)
{
    named(m_tensors, "model.layers.0.self_attn.q_proj.weight").shape = {64, 65};
    writeWeights(m_tensors);
    refusal(ErrorCode::Corrupt, weights(), {"'model.layers.0.self_attn.q_proj.weight'", "needs 8320 bytes"});
}

TEST_F(BrokenHfFolder, ShapeThatDisagreesWithTheConfig)
{
    // Self-consistent in the file (32 BF16 values, 64 bytes) but the config's hidden size is 64.
    RawTensor &norm = named(m_tensors, "model.layers.1.input_layernorm.weight");
    norm.shape = {32};
    norm.bytes.resize(64);
    writeWeights(m_tensors);
    refusal(ErrorCode::Corrupt, weights(), {"'model.layers.1.input_layernorm.weight'", "shape [32], expected [64]"});
}

TEST_F(BrokenHfFolder, UnknownDtype)
{
    named(m_tensors, "model.norm.weight").dtype = "Q4_X";
    writeWeights(m_tensors);
    refusal(ErrorCode::Unsupported, weights(), {"'model.norm.weight'", "unknown dtype 'Q4_X'"});
}

TEST_F(BrokenHfFolder, KnownDtypeThatIsNotAWeight)
{
    // I64 is a real safetensors dtype, but not one a float weight converts from exactly.
    RawTensor &norm = named(m_tensors, "model.norm.weight");
    norm.dtype = "I64";
    norm.bytes.resize(64 * 8);
    writeWeights(m_tensors);
    refusal(ErrorCode::Unsupported, weights(), {"'model.norm.weight'", "I64"});
}

TEST_F(BrokenHfFolder, MissingTensor)
{
    writeWeights(without(m_tensors, "model.layers.1.self_attn.q_proj.bias"));
    refusal(ErrorCode::Corrupt, weights(), {"missing tensor 'model.layers.1.self_attn.q_proj.bias'"});
}

TEST_F(BrokenHfFolder, ExtraTensorIsRefusedByName)
{
    // Nothing is silently ignored: a tensor the decoder has no place for would change the model.
    auto tensors = m_tensors;
    tensors.push_back({"model.layers.0.self_attn.extra_gate.weight", "BF16", {64}, std::vector<uint8_t>(128, 0)});
    writeWeights(tensors);
    refusal(ErrorCode::Unsupported, weights(), {"'model.layers.0.self_attn.extra_gate.weight'", "not implemented"});
}

TEST_F(BrokenHfFolder, NoWeightsAtAll)
{
    fs::remove(weights());
    refusal(ErrorCode::Io, folder(), {"model.safetensors", "model.safetensors.index.json"});
}

// --- sharded checkpoints ---

TEST_F(BrokenHfFolder, MissingShard)
{
    shard();
    fs::remove(path(kShard2));
    const Error e = refusal(ErrorCode::Io, path("model.safetensors.index.json"), {kShard2, "is missing"});
    EXPECT_NE(e.message.find(path(kShard2)), std::string::npos) << e.message;
}

TEST_F(BrokenHfFolder, TruncatedShard)
{
    shard();
    auto bytes = fileBytes(path(kShard1));
    bytes.resize(bytes.size() - 100);
    st::writeFileBytes(path(kShard1), bytes);
    refusal(ErrorCode::Corrupt, path(kShard1), {"past the end of the data"});
}

TEST_F(BrokenHfFolder, GarbageIndex)
{
    shard();
    writeText("model.safetensors.index.json", "{\"weight_map\": {\"a\": ");
    refusal(ErrorCode::Corrupt, path("model.safetensors.index.json"), {"index is not valid JSON"});
}

TEST_F(BrokenHfFolder, IndexThatPutsATensorInTheWrongShard)
{
    shard();
    json index = json::parse(fileBytes(path("model.safetensors.index.json")));
    index["weight_map"]["model.norm.weight"] = kShard1; // it is in the second shard
    writeText("model.safetensors.index.json", index.dump());
    refusal(ErrorCode::Corrupt, path("model.safetensors.index.json"), {"'model.norm.weight'", "does not hold it"});
}

// The same weights as one file and as two shards (written by the test writer) are the same model: the
// archives' logits and attention are identical, not merely close.
TEST_F(BrokenHfFolder, ShardedFolderGivesTheSameArchiveAsTheSingleFile)
{
    ASSERT_TRUE(convertModel(folder(), m_dir.file("single.pt")));
    shard();
    ASSERT_FALSE(fs::exists(weights()));
    Status s = convertModel(folder(), m_dir.file("sharded.pt"));
    ASSERT_TRUE(s) << s.error().message;

    auto single = Model::load(m_dir.file("single.pt"));
    auto sharded = Model::load(m_dir.file("sharded.pt"));
    ASSERT_TRUE(single && sharded);
    std::ifstream refIn(st::testDataDir() + "/families/" + kFamily + "/reference.json");
    const auto ids = json::parse(refIn)["sequences"][0]["input_ids"].get<std::vector<int64_t>>();
    const ForwardRequest request{.tokens = ids, .capture = {.allAttention = true}};
    auto a = (*single)->forward(request);
    auto b = (*sharded)->forward(request);
    ASSERT_TRUE(a && b);
    ASSERT_FALSE(a->logits.data.empty());
    EXPECT_EQ(a->logits.shape, b->logits.shape);
    EXPECT_EQ(a->logits.data, b->logits.data);
    ASSERT_EQ(a->attention.size(), b->attention.size());
    for (size_t l = 0; l < a->attention.size(); ++l) {
        EXPECT_EQ(a->attention[l].data, b->attention[l].data) << "layer " << l;
    }
}

// --- config.json ---

TEST_F(BrokenHfFolder, MissingConfig)
{
    fs::remove(path("config.json"));
    refusal(ErrorCode::Io, folder(), {"no config.json"});
}

TEST_F(BrokenHfFolder, GarbageConfig)
{
    writeText("config.json", "{\"model_type\": \"qwen2\", \"hidden_size\": 6");
    refusal(ErrorCode::Corrupt, path("config.json"), {"not a valid JSON object"});
}

TEST_F(BrokenHfFolder, ConfigWithZeroHeads)
{
    editConfig([](json &j) { j["num_attention_heads"] = 0; });
    refusal(ErrorCode::Corrupt, path("config.json"), {"num_attention_heads must be positive"});
}

TEST_F(BrokenHfFolder, ConfigWithAHiddenSizeOf1e12)
{
    editConfig([](json &j) { j["hidden_size"] = int64_t{1'000'000'000'000}; });
    refusal(ErrorCode::Corrupt, path("config.json"), {"impossible sizes", "embedding 1000000000000"});
}

TEST_F(BrokenHfFolder, ConfigWithAHiddenSizeWrittenAsAFloat)
{
    editConfig([](json &j) { j["hidden_size"] = 1e12; });
    refusal(ErrorCode::Corrupt, path("config.json"), {"'hidden_size'"});
}

TEST_F(BrokenHfFolder, ConfigWithNegativeLayers)
{
    editConfig([](json &j) {
        j["num_hidden_layers"] = -3;
        j.erase("layer_types"); // else its length is what gets refused
    });
    refusal(ErrorCode::Corrupt, path("config.json"), {"layers -3"});
}

TEST_F(BrokenHfFolder, ConfigWithFewerLayerTypesThanLayers)
{
    editConfig([](json &j) { j["num_hidden_layers"] = 3; });
    refusal(ErrorCode::Corrupt, path("config.json"), {"layer_types has 2 entries for 3 layers"});
}

TEST_F(BrokenHfFolder, ConfigWithMoreLayersThanTheWeights)
{
    editConfig([](json &j) {
        j["num_hidden_layers"] = 3;
        j["layer_types"].push_back("full_attention");
    });
    refusal(ErrorCode::Corrupt, weights(), {"missing tensor 'model.layers.2."});
}

TEST_F(BrokenHfFolder, ConfigSizesWithinBoundsButFarFromTheWeights)
{
    // Every size passes the config's own bounds (4096 layers, hidden 2^20), so only the weights can
    // refuse them: [4096, 2^20] floats for the first per-layer tensor would be 16 GiB.
    editConfig([](json &j) {
        j["num_hidden_layers"] = 4096;
        j["hidden_size"] = 1 << 20;
        j.erase("layer_types");
    });
    refusal(ErrorCode::Corrupt, weights(), {"'model.layers.0.input_layernorm.weight'", "expected [1048576]"});
}

TEST_F(BrokenHfFolder, VocabularySmallerThanTheTokenizer)
{
    editConfig([](json &j) { j["vocab_size"] = 100; });
    refusal(ErrorCode::Corrupt, path("config.json"), {"tokenizer has", "embedding only 100"});
}

TEST_F(BrokenHfFolder, VocabularyLargerThanTheWeights)
{
    editConfig([](json &j) { j["vocab_size"] = 512; });
    refusal(ErrorCode::Corrupt, weights(), {"'model.embed_tokens.weight'", "shape [400, 64], expected [512, 64]"});
}

TEST_F(BrokenHfFolder, UnknownRopeType)
{
    editConfig([](json &j) { j["rope_parameters"]["rope_type"] = "dynamic"; });
    refusal(ErrorCode::Unsupported, path("config.json"), {"RoPE scaling 'dynamic' is not supported"});
}

TEST_F(BrokenHfFolder, UnknownModelType)
{
    editConfig([](json &j) { j["model_type"] = "mamba"; });
    refusal(ErrorCode::Unsupported, path("config.json"), {"model_type 'mamba' is not supported"});
}

TEST_F(BrokenHfFolder, ConfigWithoutModelType)
{
    editConfig([](json &j) { j.erase("model_type"); });
    refusal(ErrorCode::Corrupt, path("config.json"), {"no model_type"});
}

TEST_F(BrokenHfFolder, ConfigValueOfTheWrongType)
{
    editConfig([](json &j) { j["rms_norm_eps"] = "small"; });
    refusal(ErrorCode::Corrupt, path("config.json"), {"bad value type"});
}

// --- tokenizer.json ---

TEST_F(BrokenHfFolder, GarbageTokenizer)
{
    writeText("tokenizer.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": ");
    refusal(ErrorCode::Corrupt, path("tokenizer.json"), {});
}

TEST_F(BrokenHfFolder, TokenizerThatIsNotATokenizer)
{
    writeText("tokenizer.json", "{\"version\": \"1.0\", \"model\": {\"type\": \"Unigram\"}}");
    refusalOneOf({ErrorCode::Corrupt, ErrorCode::Unsupported}, path("tokenizer.json"), {"Unigram"});
}

TEST_F(BrokenHfFolder, MissingTokenizer)
{
    fs::remove(path("tokenizer.json"));
    refusal(ErrorCode::Io, folder(), {"no tokenizer.json"});
}

// --- configs transformers accepts must not be refused ---

// Qwen3Config (like Qwen2Config) drops sliding_window unless use_sliding_window is true
// (configuration_qwen3.py: `self.sliding_window = self.sliding_window if self.use_sliding_window else None`),
// so a config carrying a window it does not use is the same model as one with null. With layer_types
// present the window is moot; without them the family's rule decides.
TEST(HfConfigVariants, Qwen3WithAnUnusedSlidingWindowConverts)
{
    st::TempDir dir;
    const std::string folder = dir.file("hf");
    fs::copy(st::testDataDir() + "/families/qwen3/hf", folder, fs::copy_options::recursive);
    json j = json::parse(std::ifstream(folder + "/config.json"));
    j["sliding_window"] = 4096;
    j["use_sliding_window"] = false;
    j.erase("layer_types"); // as configs written before transformers 4.54 (Qwen3's own on the Hub)
    std::ofstream(folder + "/config.json", std::ios::trunc) << j.dump(2);
    Status s = convertModel(folder, dir.file("out.pt"));
    ASSERT_TRUE(s) << s.error().message;
    auto model = Model::load(dir.file("out.pt"));
    ASSERT_TRUE(model) << model.error().message;
    EXPECT_FALSE((*model)->config().hasSlidingLayers());
}
