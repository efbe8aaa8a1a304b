// Test-only GGUF writer: builds GGUF v2/v3 files in memory so tests can make valid, corrupt and
// tiny-model files without shipping binaries. Not part of the product.
#pragma once

#include "sinkscope/format/gguf.h"

#include <cstdint>
#include <string>
#include <vector>

namespace sinkscope::testing {

class GgufWriter
{
public:
    explicit GgufWriter(uint32_t version = 3, uint64_t alignment = 32);

    // Metadata of every type; arrays of scalars or strings.
    void addUint8(const std::string &key, uint8_t v);
    void addInt8(const std::string &key, int8_t v);
    void addUint16(const std::string &key, uint16_t v);
    void addInt16(const std::string &key, int16_t v);
    void addUint32(const std::string &key, uint32_t v);
    void addInt32(const std::string &key, int32_t v);
    void addUint64(const std::string &key, uint64_t v);
    void addInt64(const std::string &key, int64_t v);
    void addFloat32(const std::string &key, float v);
    void addFloat64(const std::string &key, double v);
    void addBool(const std::string &key, bool v);
    void addString(const std::string &key, const std::string &v);
    void addStringArray(const std::string &key, const std::vector<std::string> &v);
    void addInt32Array(const std::string &key, const std::vector<int32_t> &v);
    void addFloat32Array(const std::string &key, const std::vector<float> &v);
    // An array of arrays (nested), for reader coverage.
    void addNestedInt32Array(const std::string &key, const std::vector<std::vector<int32_t>> &v);

    // Tensors. ne is in GGUF order (ne[0] fastest). F32 data is converted to `type` for F32, F16 and
    // BF16; addRawTensor takes already-encoded bytes of any type (quantized blocks).
    void addTensorF32(const std::string &name, const std::vector<int64_t> &ne, const std::vector<float> &data,
                      GgmlType type = GgmlType::F32);
    void addRawTensor(const std::string &name, const std::vector<int64_t> &ne, GgmlType type,
                      const std::vector<uint8_t> &bytes);

    std::vector<uint8_t> bytes() const;        // the whole file
    void write(const std::string &path) const; // throws std::runtime_error on I/O failure

private:
    struct Kv {
        std::string key;
        std::vector<uint8_t> encoded;
    };
    struct Tensor {
        std::string name;
        std::vector<int64_t> ne;
        GgmlType type;
        std::vector<uint8_t> bytes;
    };
    uint32_t m_version;
    uint64_t m_alignment;
    std::vector<Kv> m_kvs;
    std::vector<Tensor> m_tensors;
};

// IEEE half / bfloat16 conversions (round to nearest even) used by the writer and by tests.
uint16_t floatToHalf(float f);
float halfToFloat(uint16_t h);
uint16_t floatToBf16(float f);

} // namespace sinkscope::testing
