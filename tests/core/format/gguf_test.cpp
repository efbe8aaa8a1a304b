// GGUF reader: round trips through the test writer, one test per kind of bad input, and the real
// default model when it is installed.
#include "sinkscope/format/gguf.h"
#include "support/gguf_writer.h"
#include "support/test_paths.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
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

// Each test works in its own scratch directory, removed afterwards.
class GgufTest : public ::testing::Test
{
protected:
    std::string path(const std::string &file) const { return m_tmp.file(file); }

    std::string writeBytes(const std::string &file, const std::vector<uint8_t> &bytes) const
    {
        const std::string p = path(file);
        std::ofstream out(p, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char *>(bytes.data()), std::streamsize(bytes.size()));
        return p;
    }

    sst::TempDir m_tmp;
};

// Expects a failed open with the given code and a message that starts with the path and contains
// every fragment.
void expectOpenError(const std::string &path, ErrorCode code, std::initializer_list<std::string> fragments)
{
    const auto result = GgufFile::open(path);
    ASSERT_FALSE(result.ok()) << path << " opened but should not have";
    const Error &e = result.error();
    EXPECT_EQ(e.code, code) << errorCodeName(e.code) << ": " << e.message;
    EXPECT_EQ(e.message.rfind(path + ": ", 0), 0u) << "message does not start with the path: " << e.message;
    for (const std::string &f : fragments) {
        EXPECT_NE(e.message.find(f), std::string::npos) << "'" << f << "' missing from: " << e.message;
    }
}

template <typename T> void append(std::vector<uint8_t> &out, T v)
{
    const auto *b = reinterpret_cast<const uint8_t *>(&v);
    out.insert(out.end(), b, b + sizeof v);
}

void appendString(std::vector<uint8_t> &out, const std::string &s)
{
    append<uint64_t>(out, s.size());
    out.insert(out.end(), s.begin(), s.end());
}

// The fixed part of a GGUF header, for hand-made corrupt files.
std::vector<uint8_t> header(uint32_t version, uint64_t tensors, uint64_t kvs)
{
    std::vector<uint8_t> out = {'G', 'G', 'U', 'F'};
    append(out, version);
    append(out, tensors);
    append(out, kvs);
    return out;
}

size_t findBytes(const std::vector<uint8_t> &haystack, const std::string &needle)
{
    const auto it = std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end());
    return it == haystack.end() ? std::string::npos : size_t(it - haystack.begin());
}

// Byte offset of the u64 `offset` field of a tensor info, located through the length-prefixed name.
size_t tensorOffsetField(const std::vector<uint8_t> &bytes, const std::string &name, size_t nDims)
{
    std::vector<uint8_t> encoded;
    appendString(encoded, name);
    const auto it = std::search(bytes.begin(), bytes.end(), encoded.begin(), encoded.end());
    EXPECT_NE(it, bytes.end()) << name;
    return size_t(it - bytes.begin()) + encoded.size() + 4 + 8 * nDims + 4;
}

std::vector<uint8_t> randomBytes(size_t n, unsigned seed)
{
    std::mt19937 rng(seed);
    std::vector<uint8_t> out(n);
    for (uint8_t &b : out) {
        b = uint8_t(rng());
    }
    return out;
}

// A Q8_0 block with a given scale and quants q[i] = i - 16.
std::vector<uint8_t> q8Block(float scale)
{
    std::vector<uint8_t> out;
    append(out, sst::floatToHalf(scale));
    for (int i = 0; i < 32; ++i) {
        out.push_back(uint8_t(int8_t(i - 16)));
    }
    return out;
}

// Two Q4_K super-blocks of random bytes with sane scales.
std::vector<uint8_t> q4kBlocks()
{
    std::vector<uint8_t> out = randomBytes(2 * 144, 7);
    for (size_t b = 0; b < 2; ++b) {
        const uint16_t d = sst::floatToHalf(0.01f * float(b + 1));
        const uint16_t dmin = sst::floatToHalf(0.003f);
        std::memcpy(out.data() + b * 144, &d, 2);
        std::memcpy(out.data() + b * 144 + 2, &dmin, 2);
    }
    return out;
}

// --- Round trips ------------------------------------------------------------------------------

struct Layout {
    uint32_t version;
    uint64_t alignment;
};

class GgufRoundTrip : public GgufTest, public ::testing::WithParamInterface<Layout>
{
};

TEST_P(GgufRoundTrip, MetadataAndTensorsSurvive)
{
    const Layout layout = GetParam();
    sst::GgufWriter w(layout.version, layout.alignment);
    w.addUint8("t.u8", 250);
    w.addInt8("t.i8", -120);
    w.addUint16("t.u16", 65000);
    w.addInt16("t.i16", -32000);
    w.addUint32("t.u32", 4000000000u);
    w.addInt32("t.i32", -2000000000);
    w.addUint64("t.u64", std::numeric_limits<uint64_t>::max());
    w.addInt64("t.i64", std::numeric_limits<int64_t>::min());
    w.addFloat32("t.f32", 0.1f);
    w.addFloat64("t.f64", -1e300);
    w.addBool("t.true", true);
    w.addBool("t.false", false);
    w.addString("t.str", "héllo\n\t\"world\"");
    w.addString("t.empty", "");
    w.addString("t.nul", std::string("a\0b", 3));
    w.addStringArray("t.strs", {"<|endoftext|>", "", "Ġthe", "日本"});
    w.addStringArray("t.nostrs", {});
    w.addInt32Array("t.ints", {1, -2, 2147483647, -2147483647 - 1});
    w.addFloat32Array("t.floats", {0.5f, -1.25f, 1e-30f});
    w.addNestedInt32Array("t.nested", {{1, 2, 3}, {}, {-4}});

    const std::vector<float> f32Data = {1.0f, -2.5f, 3.25f, 0.0f, -0.0f, 1e-40f};
    const std::vector<float> f16Data = {1.0f, -2.0f, 0.333f, 65504.0f, 1e-6f, -0.0f, 1e-8f, 7.0f};
    const std::vector<float> bf16Data = {1.0f, -2.0f, 3.14159f, 1e30f, -1e-30f, 0.1f, 100.0f, -7.5f};
    std::vector<uint8_t> q8Data = q8Block(0.25f);
    const std::vector<uint8_t> q8Second = q8Block(-0.125f);
    q8Data.insert(q8Data.end(), q8Second.begin(), q8Second.end());
    const std::vector<uint8_t> q4kData = q4kBlocks();

    w.addTensorF32("f32", {3, 2}, f32Data);
    w.addTensorF32("f16", {8}, f16Data, GgmlType::F16);
    w.addTensorF32("bf16", {2, 2, 2}, bf16Data, GgmlType::BF16);
    w.addRawTensor("q8", {32, 2}, GgmlType::Q8_0, q8Data);
    w.addRawTensor("q4k", {256, 1, 2, 1}, GgmlType::Q4_K, q4kData);
    const std::string file = path("round.gguf");
    w.write(file);

    const auto opened = GgufFile::open(file);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    const GgufFile &g = **opened;
    EXPECT_EQ(g.path(), file);
    EXPECT_EQ(g.version(), layout.version);
    EXPECT_EQ(g.alignment(), layout.alignment);
    EXPECT_EQ(g.dataOffset() % layout.alignment, 0u);
    EXPECT_EQ(g.metadata().size(), 20u + (layout.alignment != 32 ? 1 : 0));

    EXPECT_EQ(g.find("t.u8")->type, GgufType::Uint8);
    EXPECT_EQ(g.getInt("t.u8"), 250);
    EXPECT_EQ(g.getInt("t.i8"), -120);
    EXPECT_EQ(g.find("t.i8")->type, GgufType::Int8);
    EXPECT_EQ(g.getInt("t.u16"), 65000);
    EXPECT_EQ(g.getInt("t.i16"), -32000);
    EXPECT_EQ(g.getInt("t.u32"), 4000000000LL);
    EXPECT_EQ(g.find("t.u32")->type, GgufType::Uint32);
    EXPECT_EQ(g.getInt("t.i32"), -2000000000);
    // uint64 max does not fit asInt, but the raw value is kept.
    EXPECT_EQ(g.getInt("t.u64"), std::nullopt);
    EXPECT_EQ(std::get<uint64_t>(g.find("t.u64")->value), std::numeric_limits<uint64_t>::max());
    EXPECT_EQ(g.getInt("t.i64"), std::numeric_limits<int64_t>::min());
    EXPECT_EQ(g.getFloat("t.f32"), double(0.1f));
    EXPECT_EQ(g.find("t.f32")->type, GgufType::Float32);
    EXPECT_EQ(g.getFloat("t.f64"), -1e300);
    EXPECT_EQ(g.getFloat("t.i32"), -2e9); // integers are numeric too
    EXPECT_EQ(g.getInt("t.true"), 1);
    EXPECT_EQ(std::get<bool>(g.find("t.false")->value), false);
    EXPECT_EQ(g.getString("t.str"), "héllo\n\t\"world\"");
    EXPECT_EQ(g.getString("t.empty"), "");
    EXPECT_EQ(g.getString("t.nul"), std::string("a\0b", 3));

    // Accessors of the wrong kind say so instead of converting.
    EXPECT_EQ(g.getString("t.u8"), std::nullopt);
    EXPECT_EQ(g.getInt("t.str"), std::nullopt);
    EXPECT_EQ(g.getInt("t.f32"), std::nullopt);
    EXPECT_EQ(g.getFloat("t.strs"), std::nullopt);
    EXPECT_EQ(g.getStringArray("t.ints"), std::nullopt);
    EXPECT_EQ(g.getIntArray("t.floats"), std::nullopt);
    EXPECT_EQ(g.getInt("no.such.key"), std::nullopt);
    EXPECT_EQ(g.find("no.such.key"), nullptr);

    EXPECT_EQ(g.getStringArray("t.strs"), (std::vector<std::string>{"<|endoftext|>", "", "Ġthe", "日本"}));
    EXPECT_EQ(g.getStringArray("t.nostrs"), std::vector<std::string>{});
    EXPECT_EQ(g.find("t.strs")->type, GgufType::Array);
    EXPECT_EQ(g.find("t.strs")->arrayType, GgufType::String);
    EXPECT_EQ(g.getIntArray("t.ints"), (std::vector<int64_t>{1, -2, 2147483647, -2147483648LL}));
    EXPECT_EQ(g.getFloatArray("t.ints"), (std::vector<double>{1, -2, 2147483647, -2147483648.0}));
    EXPECT_EQ(g.getFloatArray("t.floats"), (std::vector<double>{0.5, -1.25, double(1e-30f)}));

    const GgufValue *nested = g.find("t.nested");
    ASSERT_NE(nested, nullptr);
    EXPECT_EQ(nested->arrayType, GgufType::Array);
    const GgufValue::Array *outer = nested->asArray();
    ASSERT_NE(outer, nullptr);
    ASSERT_EQ(outer->size(), 3u);
    EXPECT_EQ((*outer)[0].type, GgufType::Array);
    EXPECT_EQ((*outer)[0].arrayType, GgufType::Int32);
    ASSERT_NE((*outer)[0].asArray(), nullptr);
    ASSERT_EQ((*outer)[0].asArray()->size(), 3u);
    EXPECT_EQ((*(*outer)[0].asArray())[2].asInt(), 3);
    EXPECT_TRUE((*outer)[1].asArray()->empty());
    EXPECT_EQ((*(*outer)[2].asArray())[0].asInt(), -4);

    ASSERT_EQ(g.tensors().size(), 5u);
    for (const GgufTensorInfo &t : g.tensors()) {
        EXPECT_EQ(t.offset % layout.alignment, 0u) << t.name;
        EXPECT_EQ(g.findTensor(t.name), &t);
    }
    EXPECT_EQ(g.findTensor("missing"), nullptr);

    const GgufTensorInfo *f32 = g.findTensor("f32");
    ASSERT_NE(f32, nullptr);
    EXPECT_EQ(f32->ne, (std::vector<int64_t>{3, 2}));
    EXPECT_EQ(f32->type, GgmlType::F32);
    EXPECT_EQ(f32->numel(), 6);
    EXPECT_EQ(f32->byteSize, 24u);
    const auto f32Read = g.readTensorF32(*f32);
    ASSERT_TRUE(f32Read.ok()) << f32Read.error().message;
    ASSERT_EQ(f32Read->size(), f32Data.size());
    for (size_t i = 0; i < f32Data.size(); ++i) {
        EXPECT_EQ(std::bit_cast<uint32_t>((*f32Read)[i]), std::bit_cast<uint32_t>(f32Data[i])) << i;
    }

    const GgufTensorInfo *f16 = g.findTensor("f16");
    ASSERT_NE(f16, nullptr);
    EXPECT_EQ(f16->type, GgmlType::F16);
    EXPECT_EQ(f16->byteSize, 16u);
    const auto f16Read = g.readTensorF32(*f16);
    ASSERT_TRUE(f16Read.ok()) << f16Read.error().message;
    for (size_t i = 0; i < f16Data.size(); ++i) {
        EXPECT_EQ((*f16Read)[i], sst::halfToFloat(sst::floatToHalf(f16Data[i]))) << i;
    }
    EXPECT_EQ((*f16Read)[0], 1.0f);
    EXPECT_EQ((*f16Read)[3], 65504.0f);

    const GgufTensorInfo *bf16 = g.findTensor("bf16");
    ASSERT_NE(bf16, nullptr);
    EXPECT_EQ(bf16->ne, (std::vector<int64_t>{2, 2, 2}));
    const auto bf16Read = g.readTensorF32(*bf16);
    ASSERT_TRUE(bf16Read.ok()) << bf16Read.error().message;
    for (size_t i = 0; i < bf16Data.size(); ++i) {
        const float expected = std::bit_cast<float>(uint32_t(sst::floatToBf16(bf16Data[i])) << 16);
        EXPECT_EQ((*bf16Read)[i], expected) << i;
    }

    const GgufTensorInfo *q8 = g.findTensor("q8");
    ASSERT_NE(q8, nullptr);
    EXPECT_EQ(q8->type, GgmlType::Q8_0);
    EXPECT_EQ(q8->byteSize, 68u);
    const auto q8Read = g.readTensorF32(*q8);
    ASSERT_TRUE(q8Read.ok()) << q8Read.error().message;
    ASSERT_EQ(q8Read->size(), 64u);
    for (int i = 0; i < 32; ++i) {
        EXPECT_EQ((*q8Read)[size_t(i)], float(i - 16) * 0.25f) << i;
        EXPECT_EQ((*q8Read)[size_t(32 + i)], float(i - 16) * -0.125f) << i;
    }

    const GgufTensorInfo *q4k = g.findTensor("q4k");
    ASSERT_NE(q4k, nullptr);
    EXPECT_EQ(q4k->ne, (std::vector<int64_t>{256, 1, 2, 1}));
    EXPECT_EQ(q4k->byteSize, 288u);
    const auto q4kRead = g.readTensorF32(*q4k);
    ASSERT_TRUE(q4kRead.ok()) << q4kRead.error().message;
    std::vector<float> q4kExpected(512);
    ASSERT_TRUE(dequantize(GgmlType::Q4_K, q4kData.data(), 512, q4kExpected.data()).ok());
    EXPECT_EQ(*q4kRead, q4kExpected);
}

INSTANTIATE_TEST_SUITE_P(Layouts, GgufRoundTrip,
                         ::testing::Values(Layout{3, 32}, Layout{2, 32}, Layout{3, 64}, Layout{2, 256}, Layout{3, 8},
                                           Layout{3, 1}),
                         [](const ::testing::TestParamInfo<Layout> &p) {
                             return "v" + std::to_string(p.param.version) + "_align" +
                                    std::to_string(p.param.alignment);
                         });

TEST_F(GgufTest, EmptyFileWithNoTensorsOrMetadataOpens)
{
    const std::string file = writeBytes("empty.gguf", header(3, 0, 0));
    const auto opened = GgufFile::open(file);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    EXPECT_TRUE((*opened)->tensors().empty());
    EXPECT_TRUE((*opened)->metadata().empty());
    EXPECT_EQ((*opened)->alignment(), 32u);
}

// gpt-oss experts are MXFP4 in llama.cpp's files: the reader dequantizes them like gguf-py (golden
// data from tools/make_dequant_golden.py, 8 blocks of 32 stored as a [2, 128] tensor).
TEST_F(GgufTest, Mxfp4TensorReadsLikeGgufPy)
{
    const std::string stem = sst::testDataDir() + "/dequant/mxfp4";
    std::ifstream rawIn(stem + ".raw", std::ios::binary);
    const std::vector<uint8_t> raw{std::istreambuf_iterator<char>(rawIn), std::istreambuf_iterator<char>()};
    std::ifstream expectedIn(stem + ".f32", std::ios::binary);
    std::vector<float> expected(256);
    expectedIn.read(reinterpret_cast<char *>(expected.data()), std::streamsize(expected.size() * sizeof(float)));
    ASSERT_EQ(raw.size(), 8u * 17u) << "run tools/make_dequant_golden.py";
    ASSERT_TRUE(expectedIn) << stem << ".f32";

    sst::GgufWriter w;
    w.addRawTensor("blk.0.ffn_down_exps.weight", {128, 2}, GgmlType::MXFP4, raw);
    const std::string file = path("mxfp4.gguf");
    w.write(file);
    const auto opened = GgufFile::open(file);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    const GgufTensorInfo *info = (*opened)->findTensor("blk.0.ffn_down_exps.weight");
    ASSERT_NE(info, nullptr);
    EXPECT_EQ(info->type, GgmlType::MXFP4);
    EXPECT_EQ(info->byteSize, 136u);
    const auto values = (*opened)->readTensorF32(*info);
    ASSERT_TRUE(values.ok()) << values.error().message;
    ASSERT_EQ(values->size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i) {
        EXPECT_EQ(std::bit_cast<uint32_t>((*values)[i]), std::bit_cast<uint32_t>(expected[i])) << i;
    }
}

TEST_F(GgufTest, UnsupportedTensorTypeOpensButCannotBeRead)
{
    sst::GgufWriter w;
    w.addRawTensor("blk.0.attn_q.weight", {256, 2}, GgmlType::IQ2_XXS, std::vector<uint8_t>(2 * 66, 0));
    const std::string file = path("iq2.gguf");
    w.write(file);
    const auto opened = GgufFile::open(file);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    const GgufTensorInfo *t = (*opened)->findTensor("blk.0.attn_q.weight");
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->byteSize, 132u);
    const auto read = (*opened)->readTensorF32(*t);
    ASSERT_FALSE(read.ok());
    EXPECT_EQ(read.error().code, ErrorCode::Unsupported);
    EXPECT_EQ(read.error().message, file + ": tensor 'blk.0.attn_q.weight' has unsupported type IQ2_XXS");
}

TEST_F(GgufTest, ReadTensorRejectsInfoFromAnotherFile)
{
    sst::GgufWriter w;
    w.addTensorF32("a", {4}, {1, 2, 3, 4});
    const std::string file = path("a.gguf");
    w.write(file);
    const auto opened = GgufFile::open(file);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    GgufTensorInfo foreign = *(*opened)->findTensor("a");
    foreign.name = "b";
    const auto read = (*opened)->readTensorF32(foreign);
    ASSERT_FALSE(read.ok());
    EXPECT_EQ(read.error().code, ErrorCode::InvalidArgument);
    EXPECT_NE(read.error().message.find("'b'"), std::string::npos) << read.error().message;
}

TEST_F(GgufTest, ConcurrentReadsAgree)
{
    sst::GgufWriter w;
    std::vector<uint8_t> q8;
    for (int b = 0; b < 64; ++b) {
        const std::vector<uint8_t> block = q8Block(0.01f * float(b + 1));
        q8.insert(q8.end(), block.begin(), block.end());
    }
    w.addRawTensor("q8", {32 * 64}, GgmlType::Q8_0, q8);
    const std::string file = path("threads.gguf");
    w.write(file);
    const auto opened = GgufFile::open(file);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    const auto reference = (*opened)->readTensorF32((*opened)->tensors()[0]);
    ASSERT_TRUE(reference.ok());
    std::vector<std::vector<float>> results(4);
    std::vector<std::thread> threads;
    for (auto &r : results) {
        threads.emplace_back([&] {
            auto read = (*opened)->readTensorF32((*opened)->tensors()[0]);
            if (read.ok()) {
                r = std::move(read).value();
            }
        });
    }
    for (std::thread &t : threads) {
        t.join();
    }
    for (const auto &r : results) {
        EXPECT_EQ(r, *reference);
    }
}

// --- Bad inputs -------------------------------------------------------------------------------

TEST_F(GgufTest, MissingFile)
{
    expectOpenError(path("does-not-exist.gguf"), ErrorCode::Io, {"cannot open"});
}

TEST_F(GgufTest, DirectoryIsNotAFile)
{
    fs::create_directories(path("dir.gguf"));
    expectOpenError(path("dir.gguf"), ErrorCode::Io, {"not a regular file"});
}

TEST_F(GgufTest, EmptyFile)
{
    expectOpenError(writeBytes("zero.gguf", {}), ErrorCode::Corrupt, {"truncated", "magic"});
}

TEST_F(GgufTest, WrongMagic)
{
    std::vector<uint8_t> bytes = header(3, 0, 0);
    std::memcpy(bytes.data(), "GGML", 4);
    expectOpenError(writeBytes("ggml.bin", bytes), ErrorCode::Corrupt, {"not a GGUF file", "'GGML'"});
    bytes[0] = 0x7f;
    expectOpenError(writeBytes("elf.bin", bytes), ErrorCode::Corrupt, {"not a GGUF file", "0x7f"});
}

TEST_F(GgufTest, Version1IsUnsupported)
{
    sst::GgufWriter w(1);
    w.addUint32("a", 1);
    const std::string file = path("v1.gguf");
    w.write(file);
    expectOpenError(file, ErrorCode::Unsupported, {"GGUF version 1", "not supported"});
}

TEST_F(GgufTest, FutureVersionIsUnsupported)
{
    expectOpenError(writeBytes("v4.gguf", header(4, 0, 0)), ErrorCode::Unsupported, {"GGUF version 4"});
}

TEST_F(GgufTest, BigEndianIsUnsupported)
{
    expectOpenError(writeBytes("be.gguf", header(0x03000000u, 0, 0)), ErrorCode::Unsupported, {"big-endian"});
}

TEST_F(GgufTest, TruncatedAtEveryStage)
{
    sst::GgufWriter w;
    // A long first value, so that cuts further on pass the header's size plausibility check and
    // reach the reader of the item they cut through.
    w.addString("general.description", std::string(120, 'd'));
    w.addString("general.architecture", "llama");
    w.addStringArray("tokenizer.ggml.tokens", {"alpha", "beta", "gamma"});
    w.addTensorF32("first.weight", {4, 4}, std::vector<float>(16, 1.0f));
    w.addTensorF32("second.weight", {64}, std::vector<float>(64, 2.0f));
    const std::vector<uint8_t> full = w.bytes();
    const auto opened = GgufFile::open(writeBytes("full.gguf", full));
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    const uint64_t dataOffset = (*opened)->dataOffset();
    const uint64_t secondStart = dataOffset + (*opened)->findTensor("second.weight")->offset;

    struct Cut {
        size_t size;
        std::vector<std::string> fragments;
    };
    const std::vector<Cut> cuts = {
        {2, {"truncated", "header", "magic"}},
        {6, {"truncated", "header", "version"}},
        {20, {"truncated", "header", "metadata count"}},
        {36, {"truncated", "header claims 2 tensors and 3 metadata entries"}},
        {findBytes(full, "ddd") + 90, {"truncated", "metadata 'general.description'", "string length 120"}},
        {findBytes(full, "general.arch") + 4, {"truncated", "metadata entry #1", "key length 20"}},
        {findBytes(full, "llama") + 2, {"truncated", "metadata 'general.architecture'", "string length 5"}},
        {findBytes(full, "beta") + 1, {"truncated", "metadata 'tokenizer.ggml.tokens'", "array of 3 string"}},
        {findBytes(full, "gamma") + 2, {"truncated", "metadata 'tokenizer.ggml.tokens'", "string length 5"}},
        {findBytes(full, "first.weight") + 3, {"truncated", "tensor info #0", "tensor name length 12"}},
        {findBytes(full, "first.weight") + 20, {"truncated", "tensor 'first.weight'", "dimension at offset"}},
        {findBytes(full, "second.weight") + 30, {"truncated", "tensor 'second.weight'", "tensor offset"}},
        {size_t(dataOffset) + 10, {"tensor 'first.weight' data", "past the end of the file"}},
        {size_t(secondStart) + 255, {"tensor 'second.weight' data", "past the end of the file"}},
    };
    for (const Cut &cut : cuts) {
        SCOPED_TRACE("cut at " + std::to_string(cut.size));
        ASSERT_LT(cut.size, full.size());
        const std::vector<uint8_t> part(full.begin(), full.begin() + std::ptrdiff_t(cut.size));
        const std::string file = writeBytes("cut" + std::to_string(cut.size) + ".gguf", part);
        const auto result = GgufFile::open(file);
        ASSERT_FALSE(result.ok());
        EXPECT_EQ(result.error().code, ErrorCode::Corrupt) << result.error().message;
        EXPECT_EQ(result.error().message.rfind(file + ": ", 0), 0u) << result.error().message;
        for (const std::string &f : cut.fragments) {
            EXPECT_NE(result.error().message.find(f), std::string::npos)
                << "'" << f << "' missing from: " << result.error().message;
        }
    }
}

TEST_F(GgufTest, AbsurdStringLength)
{
    std::vector<uint8_t> bytes = header(3, 0, 1);
    append<uint64_t>(bytes, uint64_t(1) << 40); // key length
    bytes.insert(bytes.end(), 16, 'x');
    expectOpenError(writeBytes("longkey.gguf", bytes), ErrorCode::Corrupt,
                    {"key length 1099511627776", "exceeds the 16 bytes left"});

    bytes = header(3, 0, 1);
    appendString(bytes, "general.name");
    append<uint32_t>(bytes, uint32_t(GgufType::String));
    append<uint64_t>(bytes, std::numeric_limits<uint64_t>::max());
    expectOpenError(writeBytes("longvalue.gguf", bytes), ErrorCode::Corrupt,
                    {"metadata 'general.name'", "string length 18446744073709551615", "exceeds"});
}

TEST_F(GgufTest, AbsurdArrayLength)
{
    std::vector<uint8_t> bytes = header(3, 0, 1);
    appendString(bytes, "tokenizer.ggml.tokens");
    append<uint32_t>(bytes, uint32_t(GgufType::Array));
    append<uint32_t>(bytes, uint32_t(GgufType::String));
    append<uint64_t>(bytes, uint64_t(1) << 61);
    appendString(bytes, "a");
    expectOpenError(writeBytes("longarray.gguf", bytes), ErrorCode::Corrupt,
                    {"metadata 'tokenizer.ggml.tokens'", "array of 2305843009213693952 string values", "exceeds"});
}

TEST_F(GgufTest, AbsurdCounts)
{
    expectOpenError(writeBytes("kvs.gguf", header(3, 0, uint64_t(1) << 62)), ErrorCode::Corrupt,
                    {"header claims", "4611686018427387904 metadata entries"});
    expectOpenError(writeBytes("tensors.gguf", header(3, std::numeric_limits<uint64_t>::max(), 0)), ErrorCode::Corrupt,
                    {"header claims", "18446744073709551615 tensors"});
}

TEST_F(GgufTest, UnknownValueType)
{
    std::vector<uint8_t> bytes = header(3, 0, 1);
    appendString(bytes, "weird");
    append<uint32_t>(bytes, 13);
    append<uint64_t>(bytes, 0);
    expectOpenError(writeBytes("type13.gguf", bytes), ErrorCode::Corrupt,
                    {"metadata 'weird'", "unknown value type 13"});

    bytes = header(3, 0, 1);
    appendString(bytes, "weird.array");
    append<uint32_t>(bytes, uint32_t(GgufType::Array));
    append<uint32_t>(bytes, 77);
    append<uint64_t>(bytes, 1);
    expectOpenError(writeBytes("elem77.gguf", bytes), ErrorCode::Corrupt, {"unknown array element type 77"});
}

TEST_F(GgufTest, ArraysNestedTooDeep)
{
    std::vector<uint8_t> bytes = header(3, 0, 1);
    appendString(bytes, "deep");
    append<uint32_t>(bytes, uint32_t(GgufType::Array));
    for (int i = 0; i < 20; ++i) {
        append<uint32_t>(bytes, uint32_t(GgufType::Array));
        append<uint64_t>(bytes, 1);
    }
    append<uint32_t>(bytes, uint32_t(GgufType::Uint8));
    append<uint64_t>(bytes, 0);
    expectOpenError(writeBytes("deep.gguf", bytes), ErrorCode::Unsupported, {"metadata 'deep'", "nested deeper"});
}

TEST_F(GgufTest, DuplicateMetadataKey)
{
    sst::GgufWriter w;
    w.addUint32("llama.block_count", 30);
    w.addUint32("llama.block_count", 31);
    const std::string file = path("dupkey.gguf");
    w.write(file);
    expectOpenError(file, ErrorCode::Corrupt, {"duplicate metadata key 'llama.block_count'"});
}

TEST_F(GgufTest, DuplicateTensorName)
{
    sst::GgufWriter w;
    w.addTensorF32("blk.0.attn_q.weight", {2}, {1, 2});
    w.addTensorF32("blk.0.attn_q.weight", {2}, {3, 4});
    const std::string file = path("duptensor.gguf");
    w.write(file);
    expectOpenError(file, ErrorCode::Corrupt, {"duplicate tensor name 'blk.0.attn_q.weight'"});
}

TEST_F(GgufTest, UnknownTensorType)
{
    sst::GgufWriter w;
    w.addRawTensor("w", {32}, static_cast<GgmlType>(99), std::vector<uint8_t>(32, 0));
    const std::string file = path("type99.gguf");
    w.write(file);
    expectOpenError(file, ErrorCode::Unsupported, {"tensor 'w' has unknown type 99"});
}

TEST_F(GgufTest, BadDimensions)
{
    struct Case {
        std::vector<int64_t> ne;
        std::string fragment;
    };
    const int64_t big = int64_t(1) << 32;
    const std::vector<Case> cases = {
        {{4, 0}, "tensor 'w' has invalid dimension ne[1] = 0"},
        {{-4}, "tensor 'w' has invalid dimension ne[0] = -4"},
        {{big, big}, "tensor 'w' has an element count that overflows"},
        {{1, 1, 1, 1, 1}, "tensor 'w' has 5 dimensions"},
        {{}, "tensor 'w' has 0 dimensions"},
    };
    for (size_t i = 0; i < cases.size(); ++i) {
        SCOPED_TRACE(cases[i].fragment);
        sst::GgufWriter w;
        w.addRawTensor("w", cases[i].ne, GgmlType::F32, std::vector<uint8_t>(4, 0));
        const std::string file = path("dims" + std::to_string(i) + ".gguf");
        w.write(file);
        expectOpenError(file, ErrorCode::Corrupt, {cases[i].fragment});
    }
}

TEST_F(GgufTest, ByteSizeOverflow)
{
    // 2^62 elements fit int64, but as F32 they need 2^64 bytes, which does not.
    sst::GgufWriter w;
    w.addRawTensor("w", {int64_t(1) << 31, int64_t(1) << 31}, GgmlType::F32, std::vector<uint8_t>(4, 0));
    const std::string file = path("bytes.gguf");
    w.write(file);
    expectOpenError(file, ErrorCode::Corrupt, {"tensor 'w' has a byte size that overflows"});
}

TEST_F(GgufTest, RowNotAMultipleOfTheBlock)
{
    sst::GgufWriter w;
    w.addRawTensor("w", {33, 2}, GgmlType::Q8_0, std::vector<uint8_t>(136, 0));
    const std::string file = path("row.gguf");
    w.write(file);
    expectOpenError(file, ErrorCode::Corrupt, {"tensor 'w' row length 33", "Q8_0 block size 32"});
}

TEST_F(GgufTest, TensorDataPastEndOfFile)
{
    sst::GgufWriter w;
    w.addTensorF32("a", {8}, std::vector<float>(8, 1.0f));
    w.addTensorF32("token_embd.weight", {16}, std::vector<float>(16, 1.0f));
    std::vector<uint8_t> bytes = w.bytes();
    const size_t field = tensorOffsetField(bytes, "token_embd.weight", 1);
    const uint64_t farAway = uint64_t(1) << 40;
    std::memcpy(bytes.data() + field, &farAway, 8);
    expectOpenError(writeBytes("far.gguf", bytes), ErrorCode::Corrupt,
                    {"tensor 'token_embd.weight' data", "past the end of the file (" + std::to_string(bytes.size())});

    const uint64_t huge = std::numeric_limits<uint64_t>::max() - 31; // aligned, overflows any sum
    std::memcpy(bytes.data() + field, &huge, 8);
    expectOpenError(writeBytes("huge.gguf", bytes), ErrorCode::Corrupt,
                    {"tensor 'token_embd.weight' data", "past the end"});
}

TEST_F(GgufTest, MisalignedTensorOffset)
{
    sst::GgufWriter w;
    w.addTensorF32("a", {8}, std::vector<float>(8, 1.0f));
    w.addTensorF32("b", {8}, std::vector<float>(8, 1.0f));
    std::vector<uint8_t> bytes = w.bytes();
    const size_t field = tensorOffsetField(bytes, "b", 1);
    const uint64_t misaligned = 36;
    std::memcpy(bytes.data() + field, &misaligned, 8);
    expectOpenError(writeBytes("misaligned.gguf", bytes), ErrorCode::Corrupt,
                    {"tensor 'b' offset 36 is not a multiple of the alignment 32"});
}

TEST_F(GgufTest, BadAlignment)
{
    {
        sst::GgufWriter w;
        w.addUint32("general.alignment", 24);
        const std::string file = path("align24.gguf");
        w.write(file);
        expectOpenError(file, ErrorCode::Corrupt, {"general.alignment", "power-of-two", "24"});
    }
    {
        sst::GgufWriter w;
        w.addUint32("general.alignment", 0);
        const std::string file = path("align0.gguf");
        w.write(file);
        expectOpenError(file, ErrorCode::Corrupt, {"general.alignment"});
    }
    {
        sst::GgufWriter w;
        w.addString("general.alignment", "32");
        const std::string file = path("alignstr.gguf");
        w.write(file);
        expectOpenError(file, ErrorCode::Corrupt, {"general.alignment", "string"});
    }
}

// Random corruption must never crash or hang; each mutated file either opens or fails cleanly.
TEST_F(GgufTest, RandomCorruptionFailsCleanly)
{
    sst::GgufWriter w;
    w.addString("general.architecture", "llama");
    w.addStringArray("tokenizer.ggml.tokens", {"a", "b", "c", "d"});
    w.addNestedInt32Array("n", {{1, 2}, {3}});
    w.addTensorF32("x", {8, 2}, std::vector<float>(16, 0.5f));
    w.addRawTensor("q", {32}, GgmlType::Q8_0, q8Block(1.0f));
    const std::vector<uint8_t> full = w.bytes();
    std::mt19937 rng(1234);
    int opened = 0;
    for (int iter = 0; iter < 300; ++iter) {
        std::vector<uint8_t> bytes = full;
        const int flips = 1 + int(rng() % 4);
        for (int f = 0; f < flips; ++f) {
            bytes[rng() % bytes.size()] = uint8_t(rng());
        }
        const std::string file = writeBytes("fuzz.gguf", bytes);
        const auto result = GgufFile::open(file);
        if (result.ok()) {
            ++opened;
            for (const GgufTensorInfo &t : (*result)->tensors()) {
                (void)(*result)->readTensorF32(t);
            }
        } else {
            EXPECT_EQ(result.error().message.rfind(file + ": ", 0), 0u) << result.error().message;
        }
    }
    EXPECT_GT(opened, 0); // some flips land in tensor data and must not matter
}

// --- The default model ------------------------------------------------------------------------

TEST(GgufDefaultModel, SmolLM2MetadataTensorsAndValues)
{
    const std::string file = sst::smollm2GgufPath();
    if (file.empty()) {
        GTEST_SKIP() << "default model not installed (set SINKSCOPE_MODEL_DIR or run tools/setup.sh)";
    }
    const auto opened = GgufFile::open(file);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    const GgufFile &g = **opened;

    EXPECT_EQ(g.version(), 3u);
    EXPECT_EQ(g.alignment(), 32u);
    EXPECT_EQ(g.dataOffset(), 1785664u);
    EXPECT_EQ(g.tensors().size(), 272u);
    EXPECT_EQ(g.metadata().size(), 33u);
    EXPECT_EQ(g.getString("general.architecture"), "llama");
    EXPECT_EQ(g.getInt("llama.block_count"), 30);
    EXPECT_EQ(g.getInt("llama.embedding_length"), 576);
    EXPECT_EQ(g.getInt("llama.attention.head_count"), 9);
    EXPECT_EQ(g.getInt("llama.attention.head_count_kv"), 3);
    EXPECT_EQ(g.getFloat("llama.rope.freq_base"), 100000.0);
    EXPECT_EQ(g.getFloat("llama.attention.layer_norm_rms_epsilon"), double(1e-5f));
    EXPECT_EQ(g.getInt("tokenizer.ggml.add_bos_token"), 0);
    EXPECT_EQ(g.getString("tokenizer.ggml.model"), "gpt2");

    const auto tokens = g.getStringArray("tokenizer.ggml.tokens");
    ASSERT_TRUE(tokens.has_value());
    EXPECT_EQ(tokens->size(), 49152u);
    EXPECT_EQ((*tokens)[0], "<|endoftext|>");
    EXPECT_EQ((*tokens)[1], "<|im_start|>");
    const auto merges = g.getStringArray("tokenizer.ggml.merges");
    ASSERT_TRUE(merges.has_value());
    EXPECT_EQ(merges->size(), 48900u);
    const auto tokenTypes = g.getIntArray("tokenizer.ggml.token_type");
    ASSERT_TRUE(tokenTypes.has_value());
    EXPECT_EQ(tokenTypes->size(), 49152u);

    const GgufTensorInfo *embd = g.findTensor("token_embd.weight");
    ASSERT_NE(embd, nullptr);
    EXPECT_EQ(embd->type, GgmlType::Q8_0);
    EXPECT_EQ(embd->ne, (std::vector<int64_t>{576, 49152}));
    const GgufTensorInfo *q = g.findTensor("blk.0.attn_q.weight");
    ASSERT_NE(q, nullptr);
    EXPECT_EQ(q->type, GgmlType::Q4_1);
    EXPECT_EQ(q->ne, (std::vector<int64_t>{576, 576}));

    // Expected values from gguf-py 0.19 (numpy reference dequantizers):
    //   r = gguf.GGUFReader(path); t = {x.name: x for x in r.tensors}
    //   d = gguf.quants.dequantize(t[name].data, t[name].tensor_type).reshape(-1); repr(d[i])
    struct Probe {
        int64_t index;
        float value;
    };
    const auto embdRead = g.readTensorF32(*embd);
    ASSERT_TRUE(embdRead.ok()) << embdRead.error().message;
    ASSERT_EQ(embdRead->size(), size_t(576) * 49152);
    for (const Probe p : {Probe{0, -0.106544495f}, Probe{1, 0.032978058f}, Probe{31, -0.20040512f},
                          Probe{32, -0.093486786f}, Probe{576017, 0.21388245f}, Probe{28311551, -0.04170227f}}) {
        EXPECT_EQ((*embdRead)[size_t(p.index)], p.value) << "token_embd.weight[" << p.index << "]";
    }
    const auto qRead = g.readTensorF32(*q);
    ASSERT_TRUE(qRead.ok()) << qRead.error().message;
    for (const Probe p : {Probe{0, -0.09631348f}, Probe{1, 0.15734863f}, Probe{16, -0.22314453f}, Probe{17, 0.2841797f},
                          Probe{57900, -0.14331055f}, Probe{331775, -0.25585938f}}) {
        EXPECT_EQ((*qRead)[size_t(p.index)], p.value) << "blk.0.attn_q.weight[" << p.index << "]";
    }
    double qSum = 0;
    for (float v : *qRead) {
        qSum += v;
    }
    EXPECT_NEAR(qSum, 59.22322082519531, 1e-6); // gguf-py: d.astype(np.float64).sum()

    const auto norm = g.readTensorF32(*g.findTensor("blk.0.attn_norm.weight"));
    ASSERT_TRUE(norm.ok()) << norm.error().message;
    EXPECT_EQ((*norm)[0], 0.013977051f);
    EXPECT_EQ((*norm)[575], -0.038330078f);
}

// Every tensor of the default model dequantizes to the right number of finite values. The elapsed
// time is recorded (see the XML output) but not asserted: timings belong in bench/.
TEST(GgufDefaultModel, EveryTensorDequantizes)
{
    const std::string file = sst::smollm2GgufPath();
    if (file.empty()) {
        GTEST_SKIP() << "default model not installed (set SINKSCOPE_MODEL_DIR or run tools/setup.sh)";
    }
    const auto opened = GgufFile::open(file);
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    const auto start = std::chrono::steady_clock::now();
    int64_t total = 0;
    for (const GgufTensorInfo &t : (*opened)->tensors()) {
        const auto read = (*opened)->readTensorF32(t);
        ASSERT_TRUE(read.ok()) << read.error().message;
        ASSERT_EQ(int64_t(read->size()), t.numel()) << t.name;
        for (float v : *read) {
            if (!std::isfinite(v)) {
                FAIL() << t.name << " holds a non-finite value";
            }
        }
        total += t.numel();
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(total, 134515008);
    ::testing::Test::RecordProperty("read_all_tensors_ms", std::to_string(int(seconds * 1000)));
}

} // namespace
