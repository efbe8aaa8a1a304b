// Dequantization against golden data made by gguf-py and transformers (tools/make_dequant_golden.py),
// plus the type table and the fp16/bf16 helpers the tests rely on.
#include "sinkscope/format/gguf.h"
#include "support/gguf_writer.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using namespace sinkscope;
namespace sst = sinkscope::testing;

namespace {

std::vector<uint8_t> readFileBytes(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct GoldenCase {
    GgmlType type;
    const char *file; // stem under tests/data/dequant
};

std::string caseName(const ::testing::TestParamInfo<GoldenCase> &info)
{
    return ggmlTypeName(info.param.type);
}

class DequantGolden : public ::testing::TestWithParam<GoldenCase>
{
};

TEST_P(DequantGolden, MatchesGgufPyBitForBit)
{
    const GoldenCase &c = GetParam();
    const std::string stem = std::string(SINKSCOPE_TEST_DATA_DIR) + "/dequant/" + c.file;
    const std::vector<uint8_t> raw = readFileBytes(stem + ".raw");
    const std::vector<uint8_t> expectedBytes = readFileBytes(stem + ".f32");
    ASSERT_FALSE(raw.empty()) << "missing " << stem << ".raw; run tools/make_dequant_golden.py";
    ASSERT_EQ(expectedBytes.size() % 4, 0u);
    const int64_t count = int64_t(expectedBytes.size() / 4);

    int64_t blockElements = 0;
    int64_t blockBytes = 0;
    ASSERT_TRUE(ggmlBlockGeometry(c.type, blockElements, blockBytes));
    ASSERT_EQ(int64_t(raw.size()), count / blockElements * blockBytes) << "golden files disagree on size";

    std::vector<float> out(size_t(count), -12345.0f);
    const Status status = dequantize(c.type, raw.data(), count, out.data());
    ASSERT_TRUE(status.ok()) << status.error().message;

    int mismatches = 0;
    for (int64_t i = 0; i < count; ++i) {
        uint32_t want = 0;
        std::memcpy(&want, expectedBytes.data() + 4 * i, 4);
        const uint32_t got = std::bit_cast<uint32_t>(out[size_t(i)]);
        if (got != want && mismatches++ < 10) {
            ADD_FAILURE() << ggmlTypeName(c.type) << " element " << i << " (block " << i / blockElements << "): got "
                          << out[size_t(i)] << " (0x" << std::hex << got << "), gguf-py " << std::bit_cast<float>(want)
                          << " (0x" << want << std::dec << ")";
        }
    }
    EXPECT_EQ(mismatches, 0);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, DequantGolden,
                         ::testing::Values(GoldenCase{GgmlType::F32, "f32"}, GoldenCase{GgmlType::F16, "f16"},
                                           GoldenCase{GgmlType::BF16, "bf16"}, GoldenCase{GgmlType::Q4_0, "q4_0"},
                                           GoldenCase{GgmlType::Q4_1, "q4_1"}, GoldenCase{GgmlType::Q5_0, "q5_0"},
                                           GoldenCase{GgmlType::Q5_1, "q5_1"}, GoldenCase{GgmlType::Q8_0, "q8_0"},
                                           GoldenCase{GgmlType::Q2_K, "q2_k"}, GoldenCase{GgmlType::Q3_K, "q3_k"},
                                           GoldenCase{GgmlType::Q4_K, "q4_k"}, GoldenCase{GgmlType::Q5_K, "q5_k"},
                                           GoldenCase{GgmlType::Q6_K, "q6_k"}, GoldenCase{GgmlType::MXFP4, "mxfp4"}),
                         caseName);

TEST(Dequant, HandWrittenQ8_0Block)
{
    // d = 0.5 (fp16 0x3800), qs = -128, -1, 0, 1, 127, ...
    std::vector<uint8_t> block(34, 0);
    block[0] = 0x00;
    block[1] = 0x38;
    const int8_t qs[] = {-128, -1, 0, 1, 127};
    std::memcpy(block.data() + 2, qs, sizeof qs);
    std::vector<float> out(32);
    ASSERT_TRUE(dequantize(GgmlType::Q8_0, block.data(), 32, out.data()).ok());
    EXPECT_EQ(out[0], -64.0f);
    EXPECT_EQ(out[1], -0.5f);
    EXPECT_EQ(out[2], 0.0f);
    EXPECT_EQ(out[3], 0.5f);
    EXPECT_EQ(out[4], 63.5f);
    EXPECT_EQ(out[31], 0.0f);
}

TEST(Dequant, HandWrittenQ4_1BlockSplitsNibblesIntoHalves)
{
    // Low nibbles are elements 0..15, high nibbles 16..31 (not interleaved).
    std::vector<uint8_t> block(20, 0);
    const uint16_t d = sst::floatToHalf(2.0f);
    const uint16_t m = sst::floatToHalf(-1.0f);
    std::memcpy(block.data(), &d, 2);
    std::memcpy(block.data() + 2, &m, 2);
    block[4] = 0x3a; // element 0 -> 0xa, element 16 -> 0x3
    std::vector<float> out(32);
    ASSERT_TRUE(dequantize(GgmlType::Q4_1, block.data(), 32, out.data()).ok());
    EXPECT_EQ(out[0], 10 * 2.0f - 1.0f);
    EXPECT_EQ(out[16], 3 * 2.0f - 1.0f);
    EXPECT_EQ(out[1], -1.0f);
}

TEST(Dequant, HandWrittenMxfp4Block)
{
    // e = 128: ggml's half scale 2^(128-128) = 1 times the doubled E2M1 code points; low nibbles are
    // elements 0..15, high nibbles 16..31.
    std::vector<uint8_t> block(17, 0);
    block[0] = 128;
    block[1] = 0xf7;  // element 0 -> 7 (+12), element 16 -> 15 (-12)
    block[16] = 0x19; // element 15 -> 9 (-1), element 31 -> 1 (+1)
    std::vector<float> out(32);
    ASSERT_TRUE(dequantize(GgmlType::MXFP4, block.data(), 32, out.data()).ok());
    EXPECT_EQ(out[0], 12.0f);
    EXPECT_EQ(out[16], -12.0f);
    EXPECT_EQ(out[15], -1.0f);
    EXPECT_EQ(out[31], 1.0f);
    EXPECT_EQ(out[1], 0.0f);
}

// transformers' convert_moe_packed_tensors on random gpt-oss style blocks/scales
// (tools/make_dequant_golden.py: E=2, N=5, G=3). The golden is transformers' [E, K, N] output; ours is
// [E, N, K], so the comparison transposes.
TEST(Dequant, Mxfp4HfLayoutMatchesTransformersBitForBit)
{
    constexpr int64_t kExperts = 2;
    constexpr int64_t kRows = 5;
    constexpr int64_t kGroups = 3;
    constexpr int64_t kCols = kGroups * 32;
    const std::string stem = std::string(SINKSCOPE_TEST_DATA_DIR) + "/dequant/mxfp4_hf";
    const std::vector<uint8_t> blocks = readFileBytes(stem + ".blocks");
    const std::vector<uint8_t> scales = readFileBytes(stem + ".scales");
    const std::vector<uint8_t> expectedBytes = readFileBytes(stem + ".f32");
    ASSERT_EQ(blocks.size(), size_t(kExperts * kRows * kGroups * 16)) << "run tools/make_dequant_golden.py";
    ASSERT_EQ(scales.size(), size_t(kExperts * kRows * kGroups));
    ASSERT_EQ(expectedBytes.size(), size_t(kExperts * kCols * kRows * 4));

    const std::vector<float> out = dequantMxfp4Hf(blocks.data(), scales.data(), kExperts * kRows, kGroups);
    ASSERT_EQ(out.size(), size_t(kExperts * kRows * kCols));

    int mismatches = 0;
    for (int64_t e = 0; e < kExperts; ++e) {
        for (int64_t n = 0; n < kRows; ++n) {
            for (int64_t k = 0; k < kCols; ++k) {
                const float got = out[size_t((e * kRows + n) * kCols + k)];
                uint32_t want = 0;
                std::memcpy(&want, expectedBytes.data() + 4 * ((e * kCols + k) * kRows + n), 4);
                if (std::bit_cast<uint32_t>(got) != want && mismatches++ < 10) {
                    ADD_FAILURE() << "expert " << e << " row " << n << " col " << k << ": got " << got << " (0x"
                                  << std::hex << std::bit_cast<uint32_t>(got) << "), transformers "
                                  << std::bit_cast<float>(want) << " (0x" << want << std::dec << ")";
                }
            }
        }
    }
    EXPECT_EQ(mismatches, 0);
}

TEST(Dequant, Mxfp4HfNibbleOrderAndScale)
{
    // One group: byte 0 = 0x2f -> element 0 is nibble 0xf (-6), element 1 is nibble 0x2 (+1);
    // scale 126 -> 2^-1; scale 255 -> inf, so a zero code point becomes NaN as in transformers.
    std::vector<uint8_t> blocks(32, 0);
    blocks[0] = 0x2f;
    blocks[16 + 15] = 0x71; // second row, elements 30 and 31
    const uint8_t scales[2] = {126, 255};
    const std::vector<float> out = dequantMxfp4Hf(blocks.data(), scales, 2, 1);
    ASSERT_EQ(out.size(), 64u);
    EXPECT_EQ(out[0], -3.0f);
    EXPECT_EQ(out[1], 0.5f);
    EXPECT_EQ(out[2], 0.0f);
    EXPECT_EQ(out[32 + 30], INFINITY);
    EXPECT_EQ(out[32 + 31], INFINITY);
    EXPECT_TRUE(std::isnan(out[32 + 0]));
}

TEST(Dequant, UnsupportedTypesAreNamed)
{
    std::vector<uint8_t> raw(512, 0);
    std::vector<float> out(256);
    for (GgmlType type : {GgmlType::IQ2_XXS, GgmlType::Q8_K, GgmlType::I32, GgmlType::F64}) {
        const Status s = dequantize(type, raw.data(), 256, out.data());
        ASSERT_FALSE(s.ok()) << ggmlTypeName(type);
        EXPECT_EQ(s.error().code, ErrorCode::Unsupported);
        EXPECT_NE(s.error().message.find(ggmlTypeName(type)), std::string::npos) << s.error().message;
    }
    const Status unknown = dequantize(static_cast<GgmlType>(99), raw.data(), 32, out.data());
    ASSERT_FALSE(unknown.ok());
    EXPECT_EQ(unknown.error().code, ErrorCode::Unsupported);
    EXPECT_NE(unknown.error().message.find("type 99"), std::string::npos) << unknown.error().message;
}

TEST(Dequant, CountMustBeWholeBlocks)
{
    std::vector<uint8_t> raw(64, 0);
    std::vector<float> out(64);
    const Status s = dequantize(GgmlType::Q4_0, raw.data(), 33, out.data());
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, ErrorCode::InvalidArgument);
    EXPECT_NE(s.error().message.find("Q4_0"), std::string::npos) << s.error().message;
}

// Found by fuzzing (tests/fuzz/regressions/dequant/empty-f32): no elements (an empty tensor, whose
// buffers are null) passed null to memcpy, undefined even for 0 bytes (UBSan stops the asan preset).
TEST(Dequant, NoElementsWithNullBuffers)
{
    for (GgmlType type : {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q4_0, GgmlType::Q6_K}) {
        EXPECT_TRUE(dequantize(type, nullptr, 0, nullptr)) << ggmlTypeName(type);
    }
}

TEST(GgmlTypes, GeometryMatchesGgml)
{
    struct Row {
        GgmlType type;
        int64_t elements;
        int64_t bytes;
        bool supported;
    };
    const Row rows[] = {
        {GgmlType::F32, 1, 4, true},         {GgmlType::F16, 1, 2, true},       {GgmlType::BF16, 1, 2, true},
        {GgmlType::Q4_0, 32, 18, true},      {GgmlType::Q4_1, 32, 20, true},    {GgmlType::Q5_0, 32, 22, true},
        {GgmlType::Q5_1, 32, 24, true},      {GgmlType::Q8_0, 32, 34, true},    {GgmlType::Q8_1, 32, 36, false},
        {GgmlType::Q2_K, 256, 84, true},     {GgmlType::Q3_K, 256, 110, true},  {GgmlType::Q4_K, 256, 144, true},
        {GgmlType::Q5_K, 256, 176, true},    {GgmlType::Q6_K, 256, 210, true},  {GgmlType::Q8_K, 256, 292, false},
        {GgmlType::IQ2_XXS, 256, 66, false}, {GgmlType::IQ4_NL, 32, 18, false}, {GgmlType::IQ4_XS, 256, 136, false},
        {GgmlType::IQ1_M, 256, 56, false},   {GgmlType::I8, 1, 1, false},       {GgmlType::F64, 1, 8, false},
        {GgmlType::MXFP4, 32, 17, true},
    };
    for (const Row &r : rows) {
        int64_t elements = 0;
        int64_t bytes = 0;
        ASSERT_TRUE(ggmlBlockGeometry(r.type, elements, bytes)) << ggmlTypeName(r.type);
        EXPECT_EQ(elements, r.elements) << ggmlTypeName(r.type);
        EXPECT_EQ(bytes, r.bytes) << ggmlTypeName(r.type);
        EXPECT_EQ(isSupportedTensorType(r.type), r.supported) << ggmlTypeName(r.type);
    }
    int64_t elements = 0;
    int64_t bytes = 0;
    EXPECT_FALSE(ggmlBlockGeometry(static_cast<GgmlType>(4), elements, bytes)); // removed Q4_2
    EXPECT_FALSE(isSupportedTensorType(static_cast<GgmlType>(99)));
    EXPECT_STREQ(ggmlTypeName(GgmlType::Q4_K), "Q4_K");
    EXPECT_STREQ(ggmlTypeName(GgmlType::IQ2_XXS), "IQ2_XXS");
    EXPECT_STREQ(ggmlTypeName(static_cast<GgmlType>(99)), "type 99");
}

// The core's F16 path and the test writer's conversion are independent implementations; they must
// agree on all 65536 halves, and the writer must round-trip them.
TEST(HalfFloat, AllHalvesDecodeAlikeAndRoundTrip)
{
    std::vector<uint16_t> halves(65536);
    for (uint32_t i = 0; i < 65536; ++i) {
        halves[i] = uint16_t(i);
    }
    std::vector<float> decoded(65536);
    ASSERT_TRUE(dequantize(GgmlType::F16, halves.data(), 65536, decoded.data()).ok());
    int failures = 0;
    for (uint32_t i = 0; i < 65536 && failures < 10; ++i) {
        const float viaWriter = sst::halfToFloat(uint16_t(i));
        const bool nan = (i & 0x7c00) == 0x7c00 && (i & 0x3ff) != 0;
        if (nan) {
            failures += !(std::isnan(decoded[i]) && std::isnan(viaWriter));
            continue;
        }
        if (std::bit_cast<uint32_t>(decoded[i]) != std::bit_cast<uint32_t>(viaWriter) ||
            sst::floatToHalf(decoded[i]) != i) {
            ADD_FAILURE() << "half 0x" << std::hex << i << std::dec << " decodes to " << decoded[i] << " / "
                          << viaWriter;
            ++failures;
        }
    }
    EXPECT_EQ(failures, 0);
}

TEST(HalfFloat, FloatToHalfRoundsToNearestEven)
{
    using sst::floatToHalf;
    EXPECT_EQ(floatToHalf(1.0f), 0x3c00);
    EXPECT_EQ(floatToHalf(1.0f + 0x1p-11f), 0x3c00);     // tie, even stays
    EXPECT_EQ(floatToHalf(1.0f + 3 * 0x1p-11f), 0x3c02); // tie, odd rounds up
    EXPECT_EQ(floatToHalf(65504.0f), 0x7bff);
    EXPECT_EQ(floatToHalf(65519.0f), 0x7bff);
    EXPECT_EQ(floatToHalf(65520.0f), 0x7c00); // overflows to infinity
    EXPECT_EQ(floatToHalf(-INFINITY), 0xfc00);
    EXPECT_EQ(floatToHalf(0x1p-24f), 0x0001); // smallest subnormal
    EXPECT_EQ(floatToHalf(0x1p-25f), 0x0000); // tie to even (zero)
    EXPECT_EQ(floatToHalf(0x1.8p-25f), 0x0001);
    EXPECT_EQ(floatToHalf(0x1.ffcp-15f), 0x0400); // rounds up into the normals
    EXPECT_EQ(floatToHalf(-0.0f), 0x8000);
    EXPECT_TRUE(std::isnan(sst::halfToFloat(floatToHalf(NAN))));
}

TEST(HalfFloat, FloatToBf16RoundsToNearestEven)
{
    using sst::floatToBf16;
    EXPECT_EQ(floatToBf16(1.0f), 0x3f80);
    EXPECT_EQ(floatToBf16(std::bit_cast<float>(0x3f808000u)), 0x3f80); // tie, even stays
    EXPECT_EQ(floatToBf16(std::bit_cast<float>(0x3f818000u)), 0x3f82); // tie, odd rounds up
    EXPECT_EQ(floatToBf16(std::bit_cast<float>(0x3f808001u)), 0x3f81);
    EXPECT_EQ(floatToBf16(-2.0f), 0xc000);
    const uint16_t nan = floatToBf16(NAN);
    EXPECT_EQ(nan & 0x7f80, 0x7f80);
    EXPECT_NE(nan & 0x7f, 0);
}

} // namespace
