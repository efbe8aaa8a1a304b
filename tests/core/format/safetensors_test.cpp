// safetensors reader: round trips through the test writer, files made by the real Python writers
// (tools/make_safetensors_golden.py), sharded indexes, and one test per kind of bad input.
#include "sinkscope/format/gguf.h"
#include "sinkscope/format/safetensors.h"
#include "support/gguf_writer.h"
#include "support/safetensors_writer.h"
#include "support/test_paths.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace sinkscope;
namespace sst = sinkscope::testing;
namespace fs = std::filesystem;

namespace {

using Model = std::shared_ptr<const SafetensorsModel>;

class SafetensorsTest : public ::testing::Test
{
protected:
    std::string path(const std::string &file) const { return m_tmp.file(file); }

    std::string writeBytes(const std::string &file, const std::vector<uint8_t> &bytes) const
    {
        const std::string p = path(file);
        sst::writeFileBytes(p, bytes);
        return p;
    }

    std::string writeText(const std::string &file, const std::string &text) const
    {
        return writeBytes(file, std::vector<uint8_t>(text.begin(), text.end()));
    }

    // A one-file model from a header text and data.
    std::string writeHeader(const std::string &file, const std::string &header, const std::vector<uint8_t> &data = {})
    {
        return writeBytes(file, sst::SafetensorsWriter::assemble(header, data));
    }

    sst::TempDir m_tmp;
};

Model openOk(const std::string &path)
{
    auto opened = SafetensorsModel::open(path);
    EXPECT_TRUE(opened.ok()) << (opened.ok() ? std::string() : opened.error().message);
    return opened.ok() ? *opened : nullptr;
}

// Expects `error` to carry `code` and a message that starts with `file` and contains every fragment.
void expectError(const Error &e, const std::string &file, ErrorCode code, std::initializer_list<std::string> fragments)
{
    EXPECT_EQ(e.code, code) << errorCodeName(e.code) << ": " << e.message;
    EXPECT_EQ(e.message.rfind(file + ": ", 0), 0u) << "message does not start with " << file << ": " << e.message;
    EXPECT_EQ(e.message.find('\n'), std::string::npos) << e.message;
    for (const std::string &f : fragments) {
        EXPECT_NE(e.message.find(f), std::string::npos) << "'" << f << "' missing from: " << e.message;
    }
}

void expectOpenError(const std::string &path, const std::string &file, ErrorCode code,
                     std::initializer_list<std::string> fragments)
{
    const auto opened = SafetensorsModel::open(path);
    ASSERT_FALSE(opened.ok()) << path << " opened but should not have";
    expectError(opened.error(), file, code, fragments);
}

void expectOpenError(const std::string &path, ErrorCode code, std::initializer_list<std::string> fragments)
{
    expectOpenError(path, path, code, fragments);
}

void expectBitsEqual(const std::vector<float> &got, const std::vector<float> &want, const std::string &what)
{
    ASSERT_EQ(got.size(), want.size()) << what;
    for (size_t i = 0; i < want.size(); ++i) {
        EXPECT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
            << what << "[" << i << "]: " << got[i] << " vs " << want[i];
    }
}

std::vector<float> readF32(const SafetensorsModel &m, const std::string &name)
{
    const SafetensorsTensor *t = m.find(name);
    EXPECT_NE(t, nullptr) << name;
    if (!t) {
        return {};
    }
    auto values = m.readF32(*t);
    EXPECT_TRUE(values.ok()) << values.error().message;
    return values.ok() ? *values : std::vector<float>{};
}

std::vector<uint8_t> readFileBytes(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

uint64_t headerLengthOf(const std::string &path)
{
    const std::vector<uint8_t> bytes = readFileBytes(path);
    uint64_t length = 0;
    EXPECT_GE(bytes.size(), 8u);
    std::memcpy(&length, bytes.data(), std::min<size_t>(8, bytes.size()));
    return length;
}

std::string tensorEntry(const std::string &dtype, const std::string &shape, uint64_t begin, uint64_t end)
{
    return R"({"dtype":")" + dtype + R"(","shape":)" + shape + R"(,"data_offsets":[)" + std::to_string(begin) + "," +
           std::to_string(end) + "]}";
}

// --- Good files ----------------------------------------------------------------------------------

TEST_F(SafetensorsTest, RoundTripReadsF32F16Bf16Exactly)
{
    const std::vector<float> f32 = {0.1f, -2.5f, 1e-40f, 3.4028235e38f, -0.0f, 7.0f};
    const std::vector<float> f16 = {1.0f, -2.5f, 65504.0f, 0x1p-24f, 0.333251953125f};
    const std::vector<float> bf16 = {1.0f, -0.5f, 3.140625f, 1e30f};
    sst::SafetensorsWriter w;
    w.addMetadata("format", "pt");
    w.addMetadata("note", "héllo");
    w.addTensorF32("model.embed.weight", {2, 3}, f32);
    w.addTensorF32("half", {5}, f16, "F16");
    w.addTensorF32("brain", {2, 1, 2}, bf16, "BF16");
    const std::string file = path("model.safetensors");
    w.write(file);
    const uint64_t dataStart = 8 + headerLengthOf(file);
    EXPECT_EQ(dataStart % 8, 0u);

    const Model m = openOk(file);
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m->path(), file);
    EXPECT_EQ(m->files(), std::vector<std::string>{file});
    EXPECT_EQ(m->metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"note", "héllo"}}));

    ASSERT_EQ(m->tensors().size(), 3u);
    EXPECT_EQ(m->tensors()[0].name, "model.embed.weight"); // storage order
    EXPECT_EQ(m->tensors()[1].name, "half");
    EXPECT_EQ(m->tensors()[2].name, "brain");
    for (const SafetensorsTensor &t : m->tensors()) {
        EXPECT_EQ(m->find(t.name), &t);
        EXPECT_EQ(t.file, file);
    }
    EXPECT_EQ(m->find("missing"), nullptr);
    EXPECT_EQ(m->find(""), nullptr);

    const SafetensorsTensor *embed = m->find("model.embed.weight");
    ASSERT_NE(embed, nullptr);
    EXPECT_EQ(embed->dtype, safetensors_dtype::kF32);
    EXPECT_EQ(embed->shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(embed->numel(), 6);
    EXPECT_EQ(embed->begin, dataStart);
    EXPECT_EQ(embed->end, dataStart + 24);
    const SafetensorsTensor *half = m->find("half");
    ASSERT_NE(half, nullptr);
    EXPECT_EQ(half->dtype, safetensors_dtype::kF16);
    EXPECT_EQ(half->begin, dataStart + 24);
    EXPECT_EQ(half->byteSize(), 10u);
    EXPECT_EQ(m->find("brain")->shape, (std::vector<int64_t>{2, 1, 2}));

    expectBitsEqual(readF32(*m, "model.embed.weight"), f32, "f32");
    expectBitsEqual(readF32(*m, "half"), f16, "f16"); // all exactly representable in half
    const float bf16Of1e30 = std::bit_cast<float>(uint32_t(sst::floatToBf16(1e30f)) << 16);
    EXPECT_NE(bf16Of1e30, 1e30f);
    expectBitsEqual(readF32(*m, "brain"), {1.0f, -0.5f, 3.140625f, bf16Of1e30}, "bf16");

    const auto raw = m->readBytes(*half);
    ASSERT_TRUE(raw.ok()) << raw.error().message;
    ASSERT_EQ(raw->size(), 10u);
    EXPECT_EQ((*raw)[0], 0x00);
    EXPECT_EQ((*raw)[1], 0x3c); // 1.0 in half
}

TEST_F(SafetensorsTest, OpensAFolderHoldingModelSafetensors)
{
    sst::SafetensorsWriter w;
    w.addTensorF32("w", {2}, {1.0f, 2.0f});
    w.write(path("model.safetensors"));
    const Model m = openOk(m_tmp.path());
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(fs::path(m->path()).filename().string(), "model.safetensors");
    EXPECT_TRUE(m->metadata().empty());
    expectBitsEqual(readF32(*m, "w"), {1.0f, 2.0f}, "w");
}

TEST_F(SafetensorsTest, EmptyHeaderOpensWithNoTensors)
{
    const Model m = openOk(writeHeader("empty.safetensors", "{}"));
    ASSERT_NE(m, nullptr);
    EXPECT_TRUE(m->tensors().empty());
}

TEST_F(SafetensorsTest, ShardedIndexWithTwoShards)
{
    sst::SafetensorsWriter first;
    first.addMetadata("format", "pt");
    first.addTensorF32("a", {2, 2}, {1, 2, 3, 4});
    first.write(path("model-00001-of-00002.safetensors"));
    sst::SafetensorsWriter second;
    second.addMetadata("format", "second");
    second.addTensorF32("b", {3}, {-1, -2, -3}, "BF16");
    second.addTensorF32("c", {1}, {0.5f}, "F16");
    second.write(path("model-00002-of-00002.safetensors"));
    const std::string index = writeText("model.safetensors.index.json", R"({
        "metadata": {"total_size": 24},
        "weight_map": {"b": "model-00002-of-00002.safetensors", "a": "model-00001-of-00002.safetensors",
                       "c": "model-00002-of-00002.safetensors"}})");

    for (const std::string &opened : {index, m_tmp.path()}) {
        const Model m = openOk(opened);
        ASSERT_NE(m, nullptr) << opened;
        EXPECT_EQ(m->path(), index);
        EXPECT_EQ(m->files(), (std::vector<std::string>{path("model-00001-of-00002.safetensors"),
                                                        path("model-00002-of-00002.safetensors")}));
        EXPECT_EQ(m->metadata(), (std::map<std::string, std::string>{{"format", "pt"}})); // the first shard's
        ASSERT_EQ(m->tensors().size(), 3u);
        EXPECT_EQ(m->tensors()[0].name, "a");
        EXPECT_EQ(m->find("a")->file, path("model-00001-of-00002.safetensors"));
        EXPECT_EQ(m->find("b")->file, path("model-00002-of-00002.safetensors"));
        expectBitsEqual(readF32(*m, "a"), {1, 2, 3, 4}, "a");
        expectBitsEqual(readF32(*m, "b"), {-1, -2, -3}, "b");
        expectBitsEqual(readF32(*m, "c"), {0.5f}, "c");
    }
}

// tools/make_safetensors_golden.py: safetensors.torch.save_file's byte layout, header padding included.
TEST(SafetensorsRealFiles, FileWrittenByThePythonPackage)
{
    const std::string file = sst::testDataDir() + "/safetensors/tiny.safetensors";
    const uint64_t headerLength = headerLengthOf(file);
    EXPECT_EQ(headerLength % 8, 0u);
    const std::vector<uint8_t> bytes = readFileBytes(file);
    ASSERT_GT(bytes.size(), 8 + headerLength);
    EXPECT_EQ(bytes[8 + headerLength - 1], ' ') << "expected the package's space padding";

    const Model m = openOk(file);
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m->metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
    ASSERT_EQ(m->tensors().size(), 9u);
    for (size_t i = 1; i < m->tensors().size(); ++i) {
        EXPECT_LE(m->tensors()[i - 1].begin, m->tensors()[i].begin);
    }
    EXPECT_EQ(m->tensors().front().begin, 8 + headerLength);
    EXPECT_EQ(m->tensors().back().end, bytes.size());

    expectBitsEqual(readF32(*m, "f32"), {0.1f, -2.5f, 1e-40f, 1e30f, -0.0f, 7.0f}, "f32");
    expectBitsEqual(readF32(*m, "f16"), {1.0f, -2.5f, 65504.0f}, "f16");
    expectBitsEqual(readF32(*m, "bf16"), {1.0f, -0.5f, 3.140625f, 256.0f}, "bf16");
    expectBitsEqual(readF32(*m, "f64"), {float(0.1), float(1e-3)}, "f64");
    expectBitsEqual(readF32(*m, "u8"), {0, 1, 128, 255}, "u8");
    expectBitsEqual(readF32(*m, "mask"), {1, 0, 1}, "mask");
    EXPECT_EQ(m->find("f32")->shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(m->find("bf16")->shape, (std::vector<int64_t>{2, 2}));
    EXPECT_EQ(m->find("mask")->dtype, safetensors_dtype::kBool);

    const SafetensorsTensor *scalar = m->find("scalar");
    ASSERT_NE(scalar, nullptr);
    EXPECT_TRUE(scalar->shape.empty());
    EXPECT_EQ(scalar->numel(), 1);
    expectBitsEqual(readF32(*m, "scalar"), {42.0f}, "scalar");

    const SafetensorsTensor *empty = m->find("empty");
    ASSERT_NE(empty, nullptr);
    EXPECT_EQ(empty->shape, (std::vector<int64_t>{0, 3}));
    EXPECT_EQ(empty->numel(), 0);
    EXPECT_EQ(empty->byteSize(), 0u);
    EXPECT_TRUE(readF32(*m, "empty").empty());

    // I64 is not always exact as float: readF32 refuses, the bytes are there.
    const SafetensorsTensor *i64 = m->find("i64");
    ASSERT_NE(i64, nullptr);
    const auto refused = m->readF32(*i64);
    ASSERT_FALSE(refused.ok());
    expectError(refused.error(), file, ErrorCode::Unsupported, {"tensor 'i64'", "I64"});
    const auto raw = m->readBytes(*i64);
    ASSERT_TRUE(raw.ok()) << raw.error().message;
    ASSERT_EQ(raw->size(), 16u);
    int64_t values[2] = {};
    std::memcpy(values, raw->data(), 16);
    EXPECT_EQ(values[0], 1);
    EXPECT_EQ(values[1], -1);
}

// tools/make_safetensors_golden.py: huggingface_hub.save_torch_state_dict's shards and index, which
// transformers' save_pretrained writes the same way.
TEST(SafetensorsRealFiles, ShardsAndIndexWrittenByHuggingfaceHub)
{
    const std::string folder = sst::testDataDir() + "/safetensors/sharded";
    const Model m = openOk(folder);
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(fs::path(m->path()).filename().string(), "model.safetensors.index.json");
    ASSERT_EQ(m->files().size(), 2u);
    EXPECT_EQ(fs::path(m->files()[0]).filename().string(), "model-00001-of-00002.safetensors");
    EXPECT_EQ(m->metadata(), (std::map<std::string, std::string>{{"format", "pt"}}));
    ASSERT_EQ(m->tensors().size(), 4u);

    std::vector<float> w0(16);
    std::vector<float> w1(16);
    for (int i = 0; i < 16; ++i) {
        w0[size_t(i)] = float(i) * 0.25f - 2.0f;
        w1[size_t(i)] = float(i - 8) * 0.5f;
    }
    expectBitsEqual(readF32(*m, "model.layers.0.w"), w0, "layer 0");
    expectBitsEqual(readF32(*m, "model.layers.1.w"), w1, "layer 1");
    expectBitsEqual(readF32(*m, "model.norm.weight"), {1, 2, 3, 4}, "norm");
    expectBitsEqual(readF32(*m, "lm_head.weight"), {-0.0f, -1, -2, -3, -4, -5, -6, -7}, "lm_head");
    EXPECT_EQ(m->find("model.layers.1.w")->dtype, safetensors_dtype::kBF16);
    EXPECT_EQ(m->find("model.layers.1.w")->shape, (std::vector<int64_t>{4, 4}));
    EXPECT_EQ(fs::path(m->find("model.layers.0.w")->file).filename().string(), "model-00001-of-00002.safetensors");
}

// gpt-oss experts: U8 *_blocks / *_scales read as bytes and dequantized by dequantMxfp4Hf give what
// transformers gives (golden data from tools/make_dequant_golden.py).
TEST_F(SafetensorsTest, GptOssMxfp4BlocksAndScalesThroughReadBytes)
{
    const std::string stem = sst::testDataDir() + "/dequant/mxfp4_hf";
    const std::vector<uint8_t> blocks = readFileBytes(stem + ".blocks");
    const std::vector<uint8_t> scales = readFileBytes(stem + ".scales");
    ASSERT_EQ(blocks.size(), 2u * 5 * 3 * 16) << "run tools/make_dequant_golden.py";
    sst::SafetensorsWriter w;
    w.addRawTensor("model.layers.0.mlp.experts.down_proj_blocks", "U8", {2, 5, 3, 16}, blocks);
    w.addRawTensor("model.layers.0.mlp.experts.down_proj_scales", "U8", {2, 5, 3}, scales);
    const Model m = openOk(writeBytes("gpt-oss.safetensors", w.bytes()));
    ASSERT_NE(m, nullptr);

    const SafetensorsTensor *blocksInfo = m->find("model.layers.0.mlp.experts.down_proj_blocks");
    const SafetensorsTensor *scalesInfo = m->find("model.layers.0.mlp.experts.down_proj_scales");
    ASSERT_TRUE(blocksInfo && scalesInfo);
    const auto blocksRead = m->readBytes(*blocksInfo);
    const auto scalesRead = m->readBytes(*scalesInfo);
    ASSERT_TRUE(blocksRead.ok() && scalesRead.ok());
    EXPECT_EQ(*blocksRead, blocks);
    EXPECT_EQ(*scalesRead, scales);
    const int64_t rows = blocksInfo->shape[0] * blocksInfo->shape[1];
    const std::vector<float> values =
        dequantMxfp4Hf(blocksRead->data(), scalesRead->data(), rows, blocksInfo->shape[2]);

    const std::vector<uint8_t> expected = readFileBytes(stem + ".f32"); // [E, K, N]
    ASSERT_EQ(expected.size(), values.size() * 4);
    const int64_t n = 5;
    const int64_t k = 96;
    for (int64_t e = 0; e < 2; ++e) {
        for (int64_t row = 0; row < n; ++row) {
            for (int64_t col = 0; col < k; ++col) {
                uint32_t want = 0;
                std::memcpy(&want, expected.data() + 4 * ((e * k + col) * n + row), 4);
                ASSERT_EQ(std::bit_cast<uint32_t>(values[size_t((e * n + row) * k + col)]), want)
                    << e << "," << row << "," << col;
            }
        }
    }
}

TEST_F(SafetensorsTest, ConcurrentReadsAgree)
{
    std::vector<float> values(4096);
    for (size_t i = 0; i < values.size(); ++i) {
        values[i] = float(int(i % 256) - 128); // exact in BF16 too
    }
    sst::SafetensorsWriter w;
    w.addTensorF32("a", {64, 64}, values, "BF16");
    w.addTensorF32("b", {4096}, values);
    const Model m = openOk(writeBytes("threads.safetensors", w.bytes()));
    ASSERT_NE(m, nullptr);
    std::vector<std::thread> threads;
    std::vector<int> failures(4, 0);
    for (int i = 0; i < 4; ++i) {
        threads.emplace_back([&, i] {
            for (int round = 0; round < 20; ++round) {
                const auto a = m->readF32(*m->find("a"));
                const auto b = m->readF32(*m->find("b"));
                failures[size_t(i)] += !(a.ok() && b.ok() && *a == values && *b == values);
            }
        });
    }
    for (std::thread &t : threads) {
        t.join();
    }
    EXPECT_EQ(failures, std::vector<int>(4, 0));
}

// --- Bad files: open ------------------------------------------------------------------------------

TEST_F(SafetensorsTest, MissingFileAndFolderWithoutModel)
{
    const std::string missing = path("nope.safetensors");
    expectOpenError(missing, ErrorCode::Io, {"cannot open file"});
    expectOpenError(m_tmp.path(), ErrorCode::Io, {"model.safetensors", "model.safetensors.index.json"});
}

TEST_F(SafetensorsTest, TruncatedFile)
{
    const std::string file = writeBytes("short.safetensors", {1, 0, 0, 0, 0});
    expectOpenError(file, ErrorCode::Corrupt, {"5 bytes", "too short"});
    expectOpenError(writeBytes("zero.safetensors", {}), ErrorCode::Corrupt, {"0 bytes"});
}

TEST_F(SafetensorsTest, AbsurdHeaderLength)
{
    const std::string file = writeBytes("huge.safetensors", sst::SafetensorsWriter::assemble("{}", {}, 1ULL << 63));
    expectOpenError(file, ErrorCode::Corrupt, {"header length 9223372036854775808", "exceeds the 8 bytes"});

    // A length that fits the file but is over the format's limit: a sparse file keeps the test cheap.
    const std::string big = writeBytes("big.safetensors", sst::SafetensorsWriter::assemble("{}", {}, 100'000'001));
    fs::resize_file(big, 100'000'016);
    expectOpenError(big, ErrorCode::Corrupt, {"header length 100000001", "limit of 100000000"});
}

TEST_F(SafetensorsTest, TruncatedHeader)
{
    sst::SafetensorsWriter w;
    w.addTensorF32("w", {2}, {1.0f, 2.0f});
    std::vector<uint8_t> bytes = w.bytes();
    bytes.resize(20);
    expectOpenError(writeBytes("cut.safetensors", bytes), ErrorCode::Corrupt,
                    {"header length", "exceeds the 12 bytes"});
}

TEST_F(SafetensorsTest, GarbageHeaderJson)
{
    std::mt19937 rng(7);
    std::string garbage(64, '\0');
    for (char &c : garbage) {
        c = char(rng() % 256);
    }
    garbage[0] = char(0xff); // not even the start of a JSON value
    const std::string file = writeHeader("garbage.safetensors", garbage);
    expectOpenError(file, ErrorCode::Corrupt, {"not valid UTF-8 JSON", "column 1"});
    const auto opened = SafetensorsModel::open(file);
    ASSERT_FALSE(opened.ok());
    const std::string &message = opened.error().message;
    EXPECT_TRUE(std::all_of(message.begin() + file.size(), message.end(), [](char c) { return c >= 0x20 && c < 0x7f; }))
        << "the garbage is not echoed: " << message;
    expectOpenError(writeHeader("unterminated.safetensors", R"({"w": {"dtype": "F32")"), ErrorCode::Corrupt,
                    {"not valid UTF-8 JSON"});
    // Well-formed JSON text, except for a byte that is not UTF-8 inside a name.
    expectOpenError(writeHeader("latin1.safetensors", "{\"caf\xe9\": " + tensorEntry("F32", "[1]", 0, 4) + "}",
                                std::vector<uint8_t>(4, 0)),
                    ErrorCode::Corrupt, {"not valid UTF-8 JSON"});
}

TEST_F(SafetensorsTest, HeaderNotAnObject)
{
    expectOpenError(writeHeader("array.safetensors", "[1, 2, 3]"), ErrorCode::Corrupt, {"header is a JSON array"});
    expectOpenError(writeHeader("string.safetensors", "\"weights\""), ErrorCode::Corrupt, {"not an object"});
}

TEST_F(SafetensorsTest, MalformedTensorEntries)
{
    struct Case {
        const char *header;
        const char *fragment;
    };
    const Case cases[] = {
        {R"({"w": 3})", "tensor 'w': entry is a JSON number, not an object"},
        {R"({"w": {"shape": [1], "data_offsets": [0, 4]}})", "tensor 'w' has no dtype"},
        {R"({"w": {"dtype": "F32", "data_offsets": [0, 4]}})", "tensor 'w' has no shape"},
        {R"({"w": {"dtype": "F32", "shape": [1]}})", "tensor 'w' has no data_offsets"},
        {R"({"w": {"dtype": 32, "shape": [1], "data_offsets": [0, 4]}})", "dtype is a JSON number, not a string"},
        {R"({"w": {"dtype": "F32", "shape": 1, "data_offsets": [0, 4]}})", "shape is a JSON number, not an array"},
        {R"({"w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})", "shape[0] is not an integer"},
        {R"({"w": {"dtype": "F32", "shape": ["1"], "data_offsets": [0, 4]}})", "shape[0] is not an integer"},
        {R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})", "data_offsets is not a [begin, end] pair"},
        {R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": {"a": 0}}})", "data_offsets is not a [begin, end]"},
        {R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}})", "data_offsets begin is negative"},
        {R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 1e3]}})", "data_offsets end is not an integer"},
        {R"({"__metadata__": {"format": 1}})", "__metadata__ 'format' is a JSON number, not a string"},
        {R"({"__metadata__": [1]})", "__metadata__ is a JSON array, not an object"},
    };
    int i = 0;
    for (const Case &c : cases) {
        SCOPED_TRACE(c.header);
        const std::string file = writeHeader("bad" + std::to_string(i++) + ".safetensors", c.header, {0, 0, 0, 0});
        expectOpenError(file, ErrorCode::Corrupt, {c.fragment});
    }
}

TEST_F(SafetensorsTest, NegativeShape)
{
    const std::string file =
        writeHeader("negative.safetensors", R"({"w": )" + tensorEntry("F32", "[2, -3]", 0, 24) + "}", {});
    expectOpenError(file, ErrorCode::Corrupt, {"tensor 'w'", "shape[1] is negative (-3)"});
}

TEST_F(SafetensorsTest, OverflowingShape)
{
    const std::string file =
        writeHeader("overflow.safetensors", R"({"w": )" + tensorEntry("F32", "[4611686018427387904, 4]", 0, 0) + "}");
    expectOpenError(file, ErrorCode::Corrupt, {"tensor 'w'", "overflows"});
    const std::string bytes = writeHeader("overflow_bytes.safetensors",
                                          R"({"w": )" + tensorEntry("F64", "[4611686018427387904]", 0, 0) + "}");
    expectOpenError(bytes, ErrorCode::Corrupt, {"tensor 'w'", "byte size that overflows"});
    const std::string huge =
        writeHeader("huge_dim.safetensors", R"({"w": )" + tensorEntry("F32", "[18446744073709551615]", 0, 0) + "}");
    expectOpenError(huge, ErrorCode::Corrupt, {"tensor 'w'", "shape[0] is 18446744073709551615, too large"});
}

TEST_F(SafetensorsTest, UnknownDtype)
{
    const std::string file =
        writeHeader("dtype.safetensors", R"({"w": )" + tensorEntry("F9", "[2]", 0, 8) + "}", std::vector<uint8_t>(8));
    expectOpenError(file, ErrorCode::Unsupported, {"tensor 'w'", "unknown dtype 'F9'"});
}

TEST_F(SafetensorsTest, OffsetsPastTheEnd)
{
    const std::string file = writeHeader("past.safetensors", R"({"w": )" + tensorEntry("F32", "[25]", 0, 100) + "}",
                                         std::vector<uint8_t>(8));
    expectOpenError(file, ErrorCode::Corrupt,
                    {"tensor 'w'", "data_offsets [0, 100]", "past the end of the data (8 bytes"});

    // A valid file that lost its last bytes.
    sst::SafetensorsWriter w;
    w.addTensorF32("a", {2}, {1.0f, 2.0f});
    w.addTensorF32("b", {3}, {1.0f, 2.0f, 3.0f});
    std::vector<uint8_t> bytes = w.bytes();
    bytes.resize(bytes.size() - 1);
    expectOpenError(writeBytes("cut_data.safetensors", bytes), ErrorCode::Corrupt,
                    {"tensor 'b'", "data_offsets [8, 20]", "past the end of the data (19 bytes"});
}

TEST_F(SafetensorsTest, OffsetsRunningBackwards)
{
    const std::string file = writeHeader("backwards.safetensors", R"({"w": )" + tensorEntry("F32", "[1]", 8, 4) + "}",
                                         std::vector<uint8_t>(8));
    expectOpenError(file, ErrorCode::Corrupt, {"tensor 'w'", "data_offsets [8, 4]", "backwards"});
}

TEST_F(SafetensorsTest, ShapeDtypeOffsetDisagreement)
{
    sst::SafetensorsWriter w;
    w.addRawTensor("w", "F32", {3}, std::vector<uint8_t>(8));
    expectOpenError(writeBytes("mismatch.safetensors", w.bytes()), ErrorCode::Corrupt,
                    {"tensor 'w'", "(8 bytes)", "F32 shape [3] needs 12 bytes"});
    sst::SafetensorsWriter bf16;
    bf16.addRawTensor("x", "BF16", {2, 3}, std::vector<uint8_t>(24));
    expectOpenError(writeBytes("mismatch2.safetensors", bf16.bytes()), ErrorCode::Corrupt,
                    {"tensor 'x'", "BF16 shape [2, 3] needs 12 bytes"});
    // Sub-byte dtypes must fill whole bytes.
    const std::string f4 = writeHeader("f4.safetensors", R"({"q": )" + tensorEntry("F4", "[3]", 0, 2) + "}", {0, 0});
    expectOpenError(f4, ErrorCode::Corrupt, {"tensor 'q'", "not a whole number of bytes"});
}

TEST_F(SafetensorsTest, OverlappingTensors)
{
    const std::string header =
        R"({"a": )" + tensorEntry("F32", "[2]", 0, 8) + R"(, "b": )" + tensorEntry("F32", "[2]", 4, 12) + "}";
    expectOpenError(writeHeader("overlap.safetensors", header, std::vector<uint8_t>(12)), ErrorCode::Corrupt,
                    {"tensors 'a' and 'b' overlap"});
}

// --- Bad files: index and shards ------------------------------------------------------------------

class SafetensorsIndexTest : public SafetensorsTest
{
protected:
    void SetUp() override
    {
        sst::SafetensorsWriter a;
        a.addTensorF32("a", {2}, {1, 2});
        a.write(path("a.safetensors"));
        sst::SafetensorsWriter b;
        b.addTensorF32("b", {1}, {3});
        b.write(path("b.safetensors"));
    }
};

TEST_F(SafetensorsIndexTest, MissingShard)
{
    const std::string index =
        writeText("model.safetensors.index.json",
                  R"({"weight_map": {"a": "a.safetensors", "x": "gone.safetensors", "y": "gone.safetensors"}})");
    expectOpenError(index, ErrorCode::Io,
                    {"shard 'gone.safetensors'", "tensor 'x' and 1 more", "missing", path("gone.safetensors")});
    expectOpenError(m_tmp.path(), index, ErrorCode::Io, {"shard 'gone.safetensors'"}); // via the folder
}

TEST_F(SafetensorsIndexTest, TensorInIndexButNotInItsShard)
{
    const std::string index =
        writeText("model.safetensors.index.json", R"({"weight_map": {"a": "a.safetensors", "b": "a.safetensors"}})");
    expectOpenError(index, ErrorCode::Corrupt, {"tensor 'b'", "shard 'a.safetensors'", "does not hold it"});
}

TEST_F(SafetensorsIndexTest, SameTensorInTwoShards)
{
    sst::SafetensorsWriter c;
    c.addTensorF32("a", {2}, {5, 6});
    c.addTensorF32("c", {1}, {7});
    c.write(path("c.safetensors"));
    const std::string index =
        writeText("model.safetensors.index.json", R"({"weight_map": {"a": "a.safetensors", "c": "c.safetensors"}})");
    expectOpenError(index, ErrorCode::Corrupt, {"tensor 'a'", "two shards", "'a.safetensors'", "'c.safetensors'"});
}

TEST_F(SafetensorsIndexTest, BadShardReportsTheShard)
{
    const std::string bad = writeBytes("bad.safetensors", {1, 2, 3});
    const std::string index =
        writeText("model.safetensors.index.json", R"({"weight_map": {"a": "a.safetensors", "z": "bad.safetensors"}})");
    expectOpenError(index, bad, ErrorCode::Corrupt, {"too short"});
}

TEST_F(SafetensorsIndexTest, MalformedIndex)
{
    expectOpenError(writeText("garbage.index.json", "{\"weight_map\": "), ErrorCode::Corrupt, {"not valid JSON"});
    expectOpenError(writeText("nomap.index.json", R"({"metadata": {}})"), ErrorCode::Corrupt,
                    {"no \"weight_map\" object"});
    expectOpenError(writeText("list.index.json", R"(["a.safetensors"])"), ErrorCode::Corrupt,
                    {"no \"weight_map\" object"});
    expectOpenError(writeText("empty.index.json", R"({"weight_map": {}})"), ErrorCode::Corrupt, {"empty weight_map"});
    expectOpenError(writeText("number.index.json", R"({"weight_map": {"a": 1}})"), ErrorCode::Corrupt,
                    {"tensor 'a'", "not a file name"});
}

// --- Bad reads -----------------------------------------------------------------------------------

TEST_F(SafetensorsTest, ReadF32RefusesDtypesItDoesNotConvert)
{
    sst::SafetensorsWriter w;
    w.addRawTensor("scale", "F8_E4M3", {4}, {0x38, 0x40, 0xb8, 0x00});
    w.addRawTensor("ids", "I32", {2}, std::vector<uint8_t>(8, 1));
    const std::string file = writeBytes("f8.safetensors", w.bytes());
    const Model m = openOk(file);
    ASSERT_NE(m, nullptr);
    for (const char *name : {"scale", "ids"}) {
        const SafetensorsTensor *t = m->find(name);
        ASSERT_NE(t, nullptr);
        const auto read = m->readF32(*t);
        ASSERT_FALSE(read.ok()) << name;
        expectError(read.error(), file, ErrorCode::Unsupported, {"tensor '" + std::string(name) + "'", t->dtype});
        EXPECT_TRUE(m->readBytes(*t).ok()) << name;
    }
}

TEST_F(SafetensorsTest, ReadRejectsTensorFromAnotherModel)
{
    sst::SafetensorsWriter w;
    w.addTensorF32("w", {2}, {1, 2});
    const std::string file = writeBytes("a.safetensors", w.bytes());
    const Model m = openOk(file);
    ASSERT_NE(m, nullptr);
    SafetensorsTensor foreign = *m->find("w");
    foreign.end += 4;
    const auto read = m->readF32(foreign);
    ASSERT_FALSE(read.ok());
    expectError(read.error(), file, ErrorCode::InvalidArgument, {"tensor 'w'", "does not belong"});
    foreign.name = "other";
    EXPECT_FALSE(m->readBytes(foreign).ok());
}

TEST_F(SafetensorsTest, ReadAfterTheFileShrankIsAnIoError)
{
    sst::SafetensorsWriter w;
    w.addTensorF32("w", {4}, {1, 2, 3, 4});
    const std::string file = writeBytes("shrink.safetensors", w.bytes());
    const Model m = openOk(file);
    ASSERT_NE(m, nullptr);
    fs::resize_file(file, fs::file_size(file) - 2);
    const auto read = m->readF32(*m->find("w"));
    ASSERT_FALSE(read.ok());
    expectError(read.error(), file, ErrorCode::Io, {"short read of tensor 'w'"});
    const auto raw = m->readBytes(*m->find("w"));
    ASSERT_FALSE(raw.ok());
    expectError(raw.error(), file, ErrorCode::Io, {"short read"});
}

} // namespace
