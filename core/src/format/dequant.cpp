// Tensor type table and fp32 dequantization of ggml block formats.
//
// Each dequantizer follows ggml-quants.c dequantize_row_* operation for operation (same products,
// same order, no fused multiply-add), so results are bit-identical to ggml's reference CPU path and to
// gguf-py's numpy dequantizers; tests/core/format/dequant_test.cpp holds us to that. MXFP4 in the
// Hugging Face layout (dequantMxfp4Hf) follows transformers' convert_moe_packed_tensors instead.
#include "sinkscope/format/gguf.h"

#include <array>
#include <bit>
#include <cassert>
#include <cstring>
#include <string>

namespace sinkscope {

// Block layouts are read byte-wise from the file image with little-endian loads; ggml defines GGUF
// as little-endian and so do we.
static_assert(std::endian::native == std::endian::little, "SinkScope assumes a little-endian host");

namespace {

constexpr int64_t kQK = 32;    // elements per block of the legacy formats (Q4_0 ... Q8_0)
constexpr int64_t kQK_K = 256; // elements per super-block of the k-quants

struct TypeTraits {
    GgmlType type;
    const char *name;
    int64_t blockElements;
    int64_t blockBytes;
    bool dequantizable;
};

// Sizes as in ggml.c type_traits.
constexpr TypeTraits kTypeTraits[] = {
    {GgmlType::F32, "F32", 1, 4, true},
    {GgmlType::F16, "F16", 1, 2, true},
    {GgmlType::Q4_0, "Q4_0", kQK, 2 + kQK / 2, true},
    {GgmlType::Q4_1, "Q4_1", kQK, 4 + kQK / 2, true},
    {GgmlType::Q5_0, "Q5_0", kQK, 2 + 4 + kQK / 2, true},
    {GgmlType::Q5_1, "Q5_1", kQK, 4 + 4 + kQK / 2, true},
    {GgmlType::Q8_0, "Q8_0", kQK, 2 + kQK, true},
    {GgmlType::Q8_1, "Q8_1", kQK, 4 + kQK, false},
    {GgmlType::Q2_K, "Q2_K", kQK_K, 84, true},
    {GgmlType::Q3_K, "Q3_K", kQK_K, 110, true},
    {GgmlType::Q4_K, "Q4_K", kQK_K, 144, true},
    {GgmlType::Q5_K, "Q5_K", kQK_K, 176, true},
    {GgmlType::Q6_K, "Q6_K", kQK_K, 210, true},
    {GgmlType::Q8_K, "Q8_K", kQK_K, 292, false},
    {GgmlType::IQ2_XXS, "IQ2_XXS", kQK_K, 66, false},
    {GgmlType::IQ2_XS, "IQ2_XS", kQK_K, 74, false},
    {GgmlType::IQ3_XXS, "IQ3_XXS", kQK_K, 98, false},
    {GgmlType::IQ1_S, "IQ1_S", kQK_K, 50, false},
    {GgmlType::IQ4_NL, "IQ4_NL", kQK, 18, false},
    {GgmlType::IQ3_S, "IQ3_S", kQK_K, 110, false},
    {GgmlType::IQ2_S, "IQ2_S", kQK_K, 82, false},
    {GgmlType::IQ4_XS, "IQ4_XS", kQK_K, 136, false},
    {GgmlType::I8, "I8", 1, 1, false},
    {GgmlType::I16, "I16", 1, 2, false},
    {GgmlType::I32, "I32", 1, 4, false},
    {GgmlType::I64, "I64", 1, 8, false},
    {GgmlType::F64, "F64", 1, 8, false},
    {GgmlType::IQ1_M, "IQ1_M", kQK_K, 56, false},
    {GgmlType::BF16, "BF16", 1, 2, true},
    {GgmlType::MXFP4, "MXFP4", kQK, 1 + kQK / 2, true},
};

const TypeTraits *traitsOf(GgmlType type)
{
    for (const TypeTraits &t : kTypeTraits) {
        if (t.type == type) {
            return &t;
        }
    }
    return nullptr;
}

inline uint16_t loadU16(const uint8_t *p)
{
    uint16_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

inline uint32_t loadU32(const uint8_t *p)
{
    uint32_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

float halfBitsToFloat(uint16_t h)
{
    const uint32_t sign = uint32_t(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    uint32_t bits;
    if (exponent == 0x1fu) {
        bits = sign | 0x7f800000u | (mantissa << 13); // inf / NaN, payload kept
    } else if (exponent != 0) {
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {
        bits = sign;
    } else {
        // Subnormal half: renormalise; every half is exactly representable as a float.
        exponent = 113;
        while ((mantissa & 0x400u) == 0) {
            mantissa <<= 1;
            --exponent;
        }
        bits = sign | (exponent << 23) | ((mantissa & 0x3ffu) << 13);
    }
    return std::bit_cast<float>(bits);
}

// Like ggml's CPU backend, a 256 KiB table beats bit twiddling in the hot loops.
const std::array<float, 65536> &halfTable()
{
    static const std::array<float, 65536> table = [] {
        std::array<float, 65536> t{};
        for (uint32_t i = 0; i < 65536; ++i) {
            t[i] = halfBitsToFloat(uint16_t(i));
        }
        return t;
    }();
    return table;
}

inline float fp16(const float *table, const uint8_t *p)
{
    return table[loadU16(p)];
}

void dequantF16(const uint8_t *src, int64_t n, float *y)
{
    const float *table = halfTable().data();
    for (int64_t i = 0; i < n; ++i) {
        y[i] = table[loadU16(src + 2 * i)];
    }
}

void dequantBF16(const uint8_t *src, int64_t n, float *y)
{
    for (int64_t i = 0; i < n; ++i) {
        y[i] = std::bit_cast<float>(uint32_t(loadU16(src + 2 * i)) << 16);
    }
}

// block_q4_0 { half d; uint8 qs[16]; }
void dequantQ4_0(const uint8_t *x, int64_t nb, float *y)
{
    const float *table = halfTable().data();
    for (int64_t i = 0; i < nb; ++i, x += 18, y += kQK) {
        const float d = fp16(table, x);
        const uint8_t *qs = x + 2;
        for (int j = 0; j < kQK / 2; ++j) {
            const int x0 = (qs[j] & 0x0f) - 8;
            const int x1 = (qs[j] >> 4) - 8;
            y[j] = float(x0) * d;
            y[j + kQK / 2] = float(x1) * d;
        }
    }
}

// block_q4_1 { half d; half m; uint8 qs[16]; }
void dequantQ4_1(const uint8_t *x, int64_t nb, float *y)
{
    const float *table = halfTable().data();
    for (int64_t i = 0; i < nb; ++i, x += 20, y += kQK) {
        const float d = fp16(table, x);
        const float m = fp16(table, x + 2);
        const uint8_t *qs = x + 4;
        for (int j = 0; j < kQK / 2; ++j) {
            y[j] = float(qs[j] & 0x0f) * d + m;
            y[j + kQK / 2] = float(qs[j] >> 4) * d + m;
        }
    }
}

// block_q5_0 { half d; uint8 qh[4]; uint8 qs[16]; } — qh bit j is the fifth bit of element j.
void dequantQ5_0(const uint8_t *x, int64_t nb, float *y)
{
    const float *table = halfTable().data();
    for (int64_t i = 0; i < nb; ++i, x += 22, y += kQK) {
        const float d = fp16(table, x);
        const uint32_t qh = loadU32(x + 2);
        const uint8_t *qs = x + 6;
        for (int j = 0; j < kQK / 2; ++j) {
            const uint8_t xh0 = uint8_t(((qh >> (j + 0)) << 4) & 0x10);
            const uint8_t xh1 = uint8_t((qh >> (j + 12)) & 0x10);
            const int32_t x0 = ((qs[j] & 0x0f) | xh0) - 16;
            const int32_t x1 = ((qs[j] >> 4) | xh1) - 16;
            y[j] = float(x0) * d;
            y[j + kQK / 2] = float(x1) * d;
        }
    }
}

// block_q5_1 { half d; half m; uint8 qh[4]; uint8 qs[16]; }
void dequantQ5_1(const uint8_t *x, int64_t nb, float *y)
{
    const float *table = halfTable().data();
    for (int64_t i = 0; i < nb; ++i, x += 24, y += kQK) {
        const float d = fp16(table, x);
        const float m = fp16(table, x + 2);
        const uint32_t qh = loadU32(x + 4);
        const uint8_t *qs = x + 8;
        for (int j = 0; j < kQK / 2; ++j) {
            const uint8_t xh0 = uint8_t(((qh >> (j + 0)) << 4) & 0x10);
            const uint8_t xh1 = uint8_t((qh >> (j + 12)) & 0x10);
            const int x0 = (qs[j] & 0x0f) | xh0;
            const int x1 = (qs[j] >> 4) | xh1;
            y[j] = float(x0) * d + m;
            y[j + kQK / 2] = float(x1) * d + m;
        }
    }
}

// block_q8_0 { half d; int8 qs[32]; }
void dequantQ8_0(const uint8_t *x, int64_t nb, float *y)
{
    const float *table = halfTable().data();
    for (int64_t i = 0; i < nb; ++i, x += 34, y += kQK) {
        const float d = fp16(table, x);
        const auto *qs = reinterpret_cast<const int8_t *>(x + 2);
        for (int j = 0; j < kQK; ++j) {
            y[j] = float(qs[j]) * d;
        }
    }
}

// block_q2_K { uint8 scales[16]; uint8 qs[64]; half d; half dmin; } — scales: low nibble scale,
// high nibble min, one pair per 16 elements.
void dequantQ2_K(const uint8_t *x, int64_t nb, float *y)
{
    const float *table = halfTable().data();
    for (int64_t i = 0; i < nb; ++i, x += 84) {
        const uint8_t *scales = x;
        const uint8_t *q = x + 16;
        const float d = fp16(table, x + 80);
        const float min = fp16(table, x + 82);
        int is = 0;
        for (int n = 0; n < kQK_K; n += 128) {
            int shift = 0;
            for (int j = 0; j < 4; ++j) {
                uint8_t sc = scales[is++];
                float dl = d * float(sc & 0xf);
                float ml = min * float(sc >> 4);
                for (int l = 0; l < 16; ++l) {
                    *y++ = dl * float(int8_t((q[l] >> shift) & 3)) - ml;
                }
                sc = scales[is++];
                dl = d * float(sc & 0xf);
                ml = min * float(sc >> 4);
                for (int l = 0; l < 16; ++l) {
                    *y++ = dl * float(int8_t((q[l + 16] >> shift) & 3)) - ml;
                }
                shift += 2;
            }
            q += 32;
        }
    }
}

// block_q3_K { uint8 hmask[32]; uint8 qs[64]; uint8 scales[12]; half d; } — sixteen 6-bit scales
// packed in 12 bytes, stored with an offset of 32.
void dequantQ3_K(const uint8_t *x, int64_t nb, float *y)
{
    const float *table = halfTable().data();
    constexpr uint32_t kmask1 = 0x03030303;
    constexpr uint32_t kmask2 = 0x0f0f0f0f;
    for (int64_t i = 0; i < nb; ++i, x += 110) {
        const uint8_t *hm = x;
        const uint8_t *q = x + 32;
        const float dAll = fp16(table, x + 108);

        uint32_t aux[4];
        std::memcpy(aux, x + 96, 12);
        const uint32_t tmp = aux[2];
        aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
        aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
        aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
        aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
        int8_t scales[16];
        std::memcpy(scales, aux, sizeof scales);

        int is = 0;
        uint8_t m = 1;
        for (int n = 0; n < kQK_K; n += 128) {
            int shift = 0;
            for (int j = 0; j < 4; ++j) {
                float dl = dAll * float(scales[is++] - 32);
                for (int l = 0; l < 16; ++l) {
                    *y++ = dl * float(int8_t((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4));
                }
                dl = dAll * float(scales[is++] - 32);
                for (int l = 0; l < 16; ++l) {
                    *y++ = dl * float(int8_t((q[l + 16] >> shift) & 3) - ((hm[l + 16] & m) ? 0 : 4));
                }
                shift += 2;
                m = uint8_t(m << 1);
            }
            q += 32;
        }
    }
}

// Scale and min of sub-block j (0..7) from the 12-byte 6-bit packing shared by Q4_K and Q5_K.
inline void scaleMinK4(int j, const uint8_t *q, uint8_t &d, uint8_t &m)
{
    if (j < 4) {
        d = q[j] & 63;
        m = q[j + 4] & 63;
    } else {
        d = uint8_t((q[j + 4] & 0xf) | ((q[j - 4] >> 6) << 4));
        m = uint8_t((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
    }
}

// block_q4_K { half d; half dmin; uint8 scales[12]; uint8 qs[128]; }
void dequantQ4_K(const uint8_t *x, int64_t nb, float *y)
{
    const float *table = halfTable().data();
    for (int64_t i = 0; i < nb; ++i, x += 144) {
        const float d = fp16(table, x);
        const float min = fp16(table, x + 2);
        const uint8_t *scales = x + 4;
        const uint8_t *q = x + 16;
        int is = 0;
        uint8_t sc, m;
        for (int j = 0; j < kQK_K; j += 64) {
            scaleMinK4(is + 0, scales, sc, m);
            const float d1 = d * float(sc);
            const float m1 = min * float(m);
            scaleMinK4(is + 1, scales, sc, m);
            const float d2 = d * float(sc);
            const float m2 = min * float(m);
            for (int l = 0; l < 32; ++l) {
                *y++ = d1 * float(q[l] & 0xf) - m1;
            }
            for (int l = 0; l < 32; ++l) {
                *y++ = d2 * float(q[l] >> 4) - m2;
            }
            q += 32;
            is += 2;
        }
    }
}

// block_q5_K { half d; half dmin; uint8 scales[12]; uint8 qh[32]; uint8 qs[128]; }
void dequantQ5_K(const uint8_t *x, int64_t nb, float *y)
{
    const float *table = halfTable().data();
    for (int64_t i = 0; i < nb; ++i, x += 176) {
        const float d = fp16(table, x);
        const float min = fp16(table, x + 2);
        const uint8_t *scales = x + 4;
        const uint8_t *qh = x + 16;
        const uint8_t *ql = x + 48;
        int is = 0;
        uint8_t sc, m;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0; j < kQK_K; j += 64) {
            scaleMinK4(is + 0, scales, sc, m);
            const float d1 = d * float(sc);
            const float m1 = min * float(m);
            scaleMinK4(is + 1, scales, sc, m);
            const float d2 = d * float(sc);
            const float m2 = min * float(m);
            for (int l = 0; l < 32; ++l) {
                *y++ = d1 * float((ql[l] & 0xf) + ((qh[l] & u1) ? 16 : 0)) - m1;
            }
            for (int l = 0; l < 32; ++l) {
                *y++ = d2 * float((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
            }
            ql += 32;
            is += 2;
            u1 = uint8_t(u1 << 2);
            u2 = uint8_t(u2 << 2);
        }
    }
}

// block_q6_K { uint8 ql[128]; uint8 qh[64]; int8 scales[16]; half d; }
void dequantQ6_K(const uint8_t *x, int64_t nb, float *y)
{
    const float *table = halfTable().data();
    for (int64_t i = 0; i < nb; ++i, x += 210) {
        const uint8_t *ql = x;
        const uint8_t *qh = x + 128;
        const auto *sc = reinterpret_cast<const int8_t *>(x + 192);
        const float d = fp16(table, x + 208);
        for (int n = 0; n < kQK_K; n += 128) {
            for (int l = 0; l < 32; ++l) {
                const int is = l / 16;
                const int8_t q1 = int8_t(((ql[l + 0] & 0xf) | (((qh[l] >> 0) & 3) << 4)) - 32);
                const int8_t q2 = int8_t(((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) - 32);
                const int8_t q3 = int8_t(((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                const int8_t q4 = int8_t(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
                y[l + 0] = d * float(sc[is + 0]) * float(q1);
                y[l + 32] = d * float(sc[is + 2]) * float(q2);
                y[l + 64] = d * float(sc[is + 4]) * float(q3);
                y[l + 96] = d * float(sc[is + 6]) * float(q4);
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

// E2M1 code points. ggml stores them doubled as int8 (kvalues_mxfp4), so its "-0" is +0, and halves
// the scale instead; transformers keeps the true values, -0 included. Both give the same magnitudes.
constexpr float kE2M1Doubled[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
constexpr float kE2M1[16] = {0.0f,  0.5f,  1.0f,  1.5f,  2.0f,  3.0f,  4.0f,  6.0f,
                             -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};

// ggml_e8m0_to_fp32_half: 2^(e-128), built from bits so e = 0 and 1 give the exact subnormals and e = 255
// stays finite (2^127).
inline float e8m0ToFloatHalf(uint8_t e)
{
    const uint32_t bits = e < 2 ? uint32_t(0x00200000) << e : uint32_t(e - 1) << 23;
    return std::bit_cast<float>(bits);
}

// 2^(e-127) as transformers computes it (torch.ldexp in fp32): e = 0 is the subnormal 2^-127, e = 255
// overflows to +inf.
inline float e8m0ToFloat(uint8_t e)
{
    const uint32_t bits = e == 0 ? uint32_t(0x00400000) : uint32_t(e) << 23;
    return std::bit_cast<float>(bits);
}

// block_mxfp4 { uint8 e; uint8 qs[16]; } — low nibbles are elements 0..15, high nibbles 16..31.
void dequantMXFP4(const uint8_t *x, int64_t nb, float *y)
{
    for (int64_t i = 0; i < nb; ++i, x += 17, y += kQK) {
        const float d = e8m0ToFloatHalf(x[0]);
        const uint8_t *qs = x + 1;
        for (int j = 0; j < kQK / 2; ++j) {
            y[j] = kE2M1Doubled[qs[j] & 0x0f] * d;
            y[j + kQK / 2] = kE2M1Doubled[qs[j] >> 4] * d;
        }
    }
}

} // namespace

void dequantMxfp4Hf(const uint8_t *blocks, const uint8_t *scales, int64_t rows, int64_t groups, float *dst)
{
    assert(rows >= 0 && groups >= 0);
    const int64_t totalGroups = rows * groups;
    for (int64_t g = 0; g < totalGroups; ++g) {
        const float scale = e8m0ToFloat(scales[g]);
        const uint8_t *packed = blocks + 16 * g;
        float *out = dst + kQK * g;
        for (int64_t i = 0; i < kQK / 2; ++i) {
            out[2 * i] = kE2M1[packed[i] & 0x0f] * scale;
            out[2 * i + 1] = kE2M1[packed[i] >> 4] * scale;
        }
    }
}

std::vector<float> dequantMxfp4Hf(const uint8_t *blocks, const uint8_t *scales, int64_t rows, int64_t groups)
{
    std::vector<float> out(size_t(rows * groups * kQK));
    dequantMxfp4Hf(blocks, scales, rows, groups, out.data());
    return out;
}

const char *ggmlTypeName(GgmlType type)
{
    if (const TypeTraits *t = traitsOf(type)) {
        return t->name;
    }
    // Unknown numbers come from corrupt or newer files; a per-thread buffer keeps the pointer valid
    // until the next call on the same thread, which is all error formatting needs.
    thread_local std::string unknown;
    unknown = "type " + std::to_string(static_cast<uint32_t>(type));
    return unknown.c_str();
}

bool isSupportedTensorType(GgmlType type)
{
    const TypeTraits *t = traitsOf(type);
    return t && t->dequantizable;
}

bool ggmlBlockGeometry(GgmlType type, int64_t &blockElements, int64_t &blockBytes)
{
    const TypeTraits *t = traitsOf(type);
    if (!t) {
        return false;
    }
    blockElements = t->blockElements;
    blockBytes = t->blockBytes;
    return true;
}

Status dequantize(GgmlType type, const void *src, int64_t count, float *dst)
{
    const TypeTraits *t = traitsOf(type);
    if (!t || !t->dequantizable) {
        return makeError(ErrorCode::Unsupported,
                         std::string("dequantization of tensor type ") + ggmlTypeName(type) + " is not supported");
    }
    if (count < 0 || count % t->blockElements != 0) {
        return makeError(ErrorCode::InvalidArgument, "dequantize: " + std::to_string(count) +
                                                         " elements is not a multiple of the " + t->name +
                                                         " block size " + std::to_string(t->blockElements));
    }
    if (count == 0) {
        return Ok{}; // an empty tensor's buffers may be null, which memcpy must not get even for 0 bytes
    }
    const auto *x = static_cast<const uint8_t *>(src);
    const int64_t nb = count / t->blockElements;
    switch (type) {
    case GgmlType::F32:
        std::memcpy(dst, src, size_t(count) * sizeof(float));
        break;
    case GgmlType::F16:
        dequantF16(x, count, dst);
        break;
    case GgmlType::BF16:
        dequantBF16(x, count, dst);
        break;
    case GgmlType::Q4_0:
        dequantQ4_0(x, nb, dst);
        break;
    case GgmlType::Q4_1:
        dequantQ4_1(x, nb, dst);
        break;
    case GgmlType::Q5_0:
        dequantQ5_0(x, nb, dst);
        break;
    case GgmlType::Q5_1:
        dequantQ5_1(x, nb, dst);
        break;
    case GgmlType::Q8_0:
        dequantQ8_0(x, nb, dst);
        break;
    case GgmlType::Q2_K:
        dequantQ2_K(x, nb, dst);
        break;
    case GgmlType::Q3_K:
        dequantQ3_K(x, nb, dst);
        break;
    case GgmlType::Q4_K:
        dequantQ4_K(x, nb, dst);
        break;
    case GgmlType::Q5_K:
        dequantQ5_K(x, nb, dst);
        break;
    case GgmlType::Q6_K:
        dequantQ6_K(x, nb, dst);
        break;
    case GgmlType::MXFP4:
        dequantMXFP4(x, nb, dst);
        break;
    default:
        // The traits table marks exactly the cases above as dequantizable.
        assert(false);
        return makeError(ErrorCode::Internal, std::string("dequantize: no kernel for ") + t->name);
    }
    return Ok{};
}

} // namespace sinkscope
