#include "support/gguf_writer.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace sinkscope::testing {

namespace {

void putBytes(std::vector<uint8_t> &out, const void *p, size_t n)
{
    const auto *b = static_cast<const uint8_t *>(p);
    out.insert(out.end(), b, b + n);
}

template <typename T> void put(std::vector<uint8_t> &out, T v)
{
    putBytes(out, &v, sizeof v);
}

void putString(std::vector<uint8_t> &out, const std::string &s)
{
    put<uint64_t>(out, s.size());
    putBytes(out, s.data(), s.size());
}

void putType(std::vector<uint8_t> &out, GgufType t)
{
    put<uint32_t>(out, static_cast<uint32_t>(t));
}

template <typename T> std::vector<uint8_t> scalar(GgufType type, T v)
{
    std::vector<uint8_t> out;
    putType(out, type);
    put(out, v);
    return out;
}

void padTo(std::vector<uint8_t> &out, uint64_t alignment)
{
    while (out.size() % alignment != 0) {
        out.push_back(0);
    }
}

uint64_t alignUp(uint64_t v, uint64_t a)
{
    return (v + a - 1) / a * a;
}

} // namespace

uint16_t floatToHalf(float f)
{
    const uint32_t x = std::bit_cast<uint32_t>(f);
    const uint16_t sign = uint16_t((x >> 16) & 0x8000u);
    const uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) { // inf or NaN; NaN stays quiet
        return uint16_t(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u | ((absx >> 13) & 0x3ffu) : 0u));
    }
    if (absx >= 0x477ff000u) { // rounds to beyond 65504
        return uint16_t(sign | 0x7c00u);
    }
    const int exponent = int(absx >> 23) - 127;
    if (exponent >= -14) { // normal half
        uint32_t mant = absx & 0x7fffffu;
        uint32_t h = (uint32_t(exponent + 15) << 10) | (mant >> 13);
        const uint32_t rest = mant & 0x1fffu;
        if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) {
            ++h; // a mantissa carry correctly bumps the exponent
        }
        return uint16_t(sign | h);
    }
    if (exponent < -25) {
        return sign; // below half the smallest subnormal
    }
    // Subnormal half: a multiple of 2^-24, so the 24-bit significand shifts right by 14..24 bits.
    const uint32_t mant = (absx & 0x7fffffu) | 0x800000u;
    const int shift = -exponent - 1;
    uint32_t h = mant >> shift;
    const uint32_t rest = mant & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (h & 1u))) {
        ++h;
    }
    return uint16_t(sign | h);
}

float halfToFloat(uint16_t h)
{
    const uint32_t sign = uint32_t(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exponent == 0x1f) {
        return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
    }
    if (exponent == 0) {
        if (mant == 0) {
            return std::bit_cast<float>(sign);
        }
        exponent = 113;
        while ((mant & 0x400u) == 0) {
            mant <<= 1;
            --exponent;
        }
        return std::bit_cast<float>(sign | (exponent << 23) | ((mant & 0x3ffu) << 13));
    }
    return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mant << 13));
}

uint16_t floatToBf16(float f)
{
    // Same as ggml_compute_fp32_to_bf16: quiet NaNs, round to nearest even otherwise.
    const uint32_t x = std::bit_cast<uint32_t>(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) {
        return uint16_t((x >> 16) | 64u);
    }
    return uint16_t((x + (0x7fffu + ((x >> 16) & 1u))) >> 16);
}

GgufWriter::GgufWriter(uint32_t version, uint64_t alignment) : m_version(version), m_alignment(alignment) {}

void GgufWriter::addUint8(const std::string &key, uint8_t v)
{
    m_kvs.push_back({key, scalar(GgufType::Uint8, v)});
}
void GgufWriter::addInt8(const std::string &key, int8_t v)
{
    m_kvs.push_back({key, scalar(GgufType::Int8, v)});
}
void GgufWriter::addUint16(const std::string &key, uint16_t v)
{
    m_kvs.push_back({key, scalar(GgufType::Uint16, v)});
}
void GgufWriter::addInt16(const std::string &key, int16_t v)
{
    m_kvs.push_back({key, scalar(GgufType::Int16, v)});
}
void GgufWriter::addUint32(const std::string &key, uint32_t v)
{
    m_kvs.push_back({key, scalar(GgufType::Uint32, v)});
}
void GgufWriter::addInt32(const std::string &key, int32_t v)
{
    m_kvs.push_back({key, scalar(GgufType::Int32, v)});
}
void GgufWriter::addUint64(const std::string &key, uint64_t v)
{
    m_kvs.push_back({key, scalar(GgufType::Uint64, v)});
}
void GgufWriter::addInt64(const std::string &key, int64_t v)
{
    m_kvs.push_back({key, scalar(GgufType::Int64, v)});
}
void GgufWriter::addFloat32(const std::string &key, float v)
{
    m_kvs.push_back({key, scalar(GgufType::Float32, v)});
}
void GgufWriter::addFloat64(const std::string &key, double v)
{
    m_kvs.push_back({key, scalar(GgufType::Float64, v)});
}

void GgufWriter::addBool(const std::string &key, bool v)
{
    m_kvs.push_back({key, scalar(GgufType::Bool, uint8_t(v ? 1 : 0))});
}

void GgufWriter::addString(const std::string &key, const std::string &v)
{
    std::vector<uint8_t> out;
    putType(out, GgufType::String);
    putString(out, v);
    m_kvs.push_back({key, std::move(out)});
}

void GgufWriter::addStringArray(const std::string &key, const std::vector<std::string> &v)
{
    std::vector<uint8_t> out;
    putType(out, GgufType::Array);
    putType(out, GgufType::String);
    put<uint64_t>(out, v.size());
    for (const std::string &s : v) {
        putString(out, s);
    }
    m_kvs.push_back({key, std::move(out)});
}

void GgufWriter::addInt32Array(const std::string &key, const std::vector<int32_t> &v)
{
    std::vector<uint8_t> out;
    putType(out, GgufType::Array);
    putType(out, GgufType::Int32);
    put<uint64_t>(out, v.size());
    for (int32_t x : v) {
        put(out, x);
    }
    m_kvs.push_back({key, std::move(out)});
}

void GgufWriter::addFloat32Array(const std::string &key, const std::vector<float> &v)
{
    std::vector<uint8_t> out;
    putType(out, GgufType::Array);
    putType(out, GgufType::Float32);
    put<uint64_t>(out, v.size());
    for (float x : v) {
        put(out, x);
    }
    m_kvs.push_back({key, std::move(out)});
}

void GgufWriter::addNestedInt32Array(const std::string &key, const std::vector<std::vector<int32_t>> &v)
{
    std::vector<uint8_t> out;
    putType(out, GgufType::Array);
    putType(out, GgufType::Array);
    put<uint64_t>(out, v.size());
    for (const std::vector<int32_t> &inner : v) {
        putType(out, GgufType::Int32);
        put<uint64_t>(out, inner.size());
        for (int32_t x : inner) {
            put(out, x);
        }
    }
    m_kvs.push_back({key, std::move(out)});
}

void GgufWriter::addTensorF32(const std::string &name, const std::vector<int64_t> &ne, const std::vector<float> &data,
                              GgmlType type)
{
    std::vector<uint8_t> bytes;
    switch (type) {
    case GgmlType::F32:
        putBytes(bytes, data.data(), data.size() * sizeof(float));
        break;
    case GgmlType::F16:
        for (float f : data) {
            put(bytes, floatToHalf(f));
        }
        break;
    case GgmlType::BF16:
        for (float f : data) {
            put(bytes, floatToBf16(f));
        }
        break;
    default:
        throw std::invalid_argument("GgufWriter::addTensorF32: type must be F32, F16 or BF16");
    }
    addRawTensor(name, ne, type, bytes);
}

void GgufWriter::addRawTensor(const std::string &name, const std::vector<int64_t> &ne, GgmlType type,
                              const std::vector<uint8_t> &bytes)
{
    m_tensors.push_back({name, ne, type, bytes});
}

std::vector<uint8_t> GgufWriter::bytes() const
{
    // Readers only learn a non-default alignment from general.alignment, so declare it unless the
    // test wrote its own (possibly bogus) value.
    std::vector<Kv> kvs = m_kvs;
    const bool hasAlignmentKey =
        std::any_of(kvs.begin(), kvs.end(), [](const Kv &kv) { return kv.key == "general.alignment"; });
    if (m_alignment != 32 && !hasAlignmentKey) {
        kvs.push_back({"general.alignment", scalar(GgufType::Uint32, uint32_t(m_alignment))});
    }

    std::vector<uint8_t> out;
    putBytes(out, "GGUF", 4);
    put<uint32_t>(out, m_version);
    put<uint64_t>(out, m_tensors.size());
    put<uint64_t>(out, kvs.size());
    for (const Kv &kv : kvs) {
        putString(out, kv.key);
        putBytes(out, kv.encoded.data(), kv.encoded.size());
    }
    uint64_t offset = 0;
    for (const Tensor &t : m_tensors) {
        putString(out, t.name);
        put<uint32_t>(out, uint32_t(t.ne.size()));
        for (int64_t d : t.ne) {
            put<int64_t>(out, d);
        }
        put<uint32_t>(out, static_cast<uint32_t>(t.type));
        put<uint64_t>(out, offset);
        offset = alignUp(offset + t.bytes.size(), m_alignment);
    }
    padTo(out, m_alignment);
    for (const Tensor &t : m_tensors) {
        putBytes(out, t.bytes.data(), t.bytes.size());
        padTo(out, m_alignment);
    }
    return out;
}

void GgufWriter::write(const std::string &path) const
{
    const std::vector<uint8_t> data = bytes();
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char *>(data.data()), static_cast<std::streamsize>(data.size()));
    out.close();
    if (!out) {
        throw std::runtime_error("GgufWriter: cannot write " + path);
    }
}

} // namespace sinkscope::testing
