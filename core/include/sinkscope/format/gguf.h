// Reader for GGUF files (the llama.cpp model container), versions 2 and 3.
//
// Contract:
// - GgufFile::open reads the header, every metadata key/value (all value types, arrays included) and
//   every tensor info, and checks that each tensor's data lies inside the file. Tensor data is read
//   lazily by readTensorF32, which dequantizes to fp32.
// - Every failure (missing file, wrong magic, unsupported version, truncation, unknown or unsupported
//   tensor type, sizes that do not fit the file) is an Error whose message starts with the file path.
//   Codes: Io (cannot open/read), Corrupt (malformed or truncated), Unsupported (GGUF v1 or
//   big-endian, unknown tensor type numbers). A tensor of a known type that is not dequantized (e.g.
//   IQ2_XXS) does not stop open; readTensorF32 on it returns Unsupported naming the tensor and type.
// - Dimensions follow GGUF order: ne[0] is the fastest-varying (the row length). A PyTorch weight
//   of shape [out, in] is stored with ne = {in, out}; readTensorF32 returns data in that same row-major
//   order, so it can be viewed as [ne[n-1], ..., ne[0]].
// - Thread safety: a GgufFile is immutable after open; readTensorF32 may be called from several
//   threads (each call opens its own stream).
#pragma once

#include "sinkscope/common/result.h"

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace sinkscope {

// GGUF metadata value types, numbered as in the format.
enum class GgufType : uint32_t {
    Uint8 = 0,
    Int8 = 1,
    Uint16 = 2,
    Int16 = 3,
    Uint32 = 4,
    Int32 = 5,
    Float32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    Uint64 = 10,
    Int64 = 11,
    Float64 = 12,
};

// ggml tensor types, numbered as in ggml.h. Only some are dequantized (see isSupportedTensorType).
enum class GgmlType : uint32_t {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q8_1 = 9,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
    Q8_K = 15,
    IQ2_XXS = 16,
    IQ2_XS = 17,
    IQ3_XXS = 18,
    IQ1_S = 19,
    IQ4_NL = 20,
    IQ3_S = 21,
    IQ2_S = 22,
    IQ4_XS = 23,
    I8 = 24,
    I16 = 25,
    I32 = 26,
    I64 = 27,
    F64 = 28,
    IQ1_M = 29,
    BF16 = 30,
    MXFP4 = 39, // gpt-oss experts: 32 values in 17 bytes (E8M0 scale byte + 16 bytes of E2M1 nibbles)
};

const char *ggmlTypeName(GgmlType type); // "Q4_K", or "type 99" for unknown numbers
bool isSupportedTensorType(GgmlType type);

// One metadata value. Arrays hold their element type and the values (nested arrays allowed).
struct GgufValue {
    using Array = std::vector<GgufValue>;
    GgufType type = GgufType::Uint8;
    std::variant<uint64_t, int64_t, double, bool, std::string, std::shared_ptr<Array>> value;
    GgufType arrayType = GgufType::Uint8; // element type when type == Array

    // Convenience accessors; they return nullopt when the value is not of a compatible kind.
    std::optional<int64_t> asInt() const;  // any integer type (or bool)
    std::optional<double> asFloat() const; // any numeric type
    std::optional<std::string> asString() const;
    const Array *asArray() const;
};

struct GgufTensorInfo {
    std::string name;
    std::vector<int64_t> ne; // GGUF order: ne[0] fastest
    GgmlType type = GgmlType::F32;
    uint64_t offset = 0;   // relative to the start of the data section
    uint64_t byteSize = 0; // computed from type and ne

    int64_t numel() const;
};

class GgufFile
{
public:
    static Result<std::shared_ptr<const GgufFile>> open(const std::string &path);

    const std::string &path() const { return m_path; }
    uint32_t version() const { return m_version; }
    uint64_t alignment() const { return m_alignment; }
    uint64_t dataOffset() const { return m_dataOffset; } // absolute offset of the data section

    const std::map<std::string, GgufValue> &metadata() const { return m_metadata; }
    const GgufValue *find(const std::string &key) const;
    std::optional<int64_t> getInt(const std::string &key) const;
    std::optional<double> getFloat(const std::string &key) const;
    std::optional<std::string> getString(const std::string &key) const;
    // String arrays (tokenizer.ggml.tokens, .merges) and numeric arrays (token_type, scores).
    std::optional<std::vector<std::string>> getStringArray(const std::string &key) const;
    std::optional<std::vector<double>> getFloatArray(const std::string &key) const;
    std::optional<std::vector<int64_t>> getIntArray(const std::string &key) const;

    const std::vector<GgufTensorInfo> &tensors() const { return m_tensors; }
    const GgufTensorInfo *findTensor(const std::string &name) const;

    // Reads and dequantizes one tensor to fp32 (row-major in GGUF order, see above).
    Result<std::vector<float>> readTensorF32(const GgufTensorInfo &info) const;

private:
    std::string m_path;
    uint32_t m_version = 0;
    uint64_t m_alignment = 32;
    uint64_t m_dataOffset = 0;
    uint64_t m_fileSize = 0;
    std::map<std::string, GgufValue> m_metadata;
    std::vector<GgufTensorInfo> m_tensors;
    std::map<std::string, size_t> m_tensorIndex;
};

// Block geometry of a tensor type: elements per block and bytes per block (1 and element size for
// plain types). Returns false for unknown types.
bool ggmlBlockGeometry(GgmlType type, int64_t &blockElements, int64_t &blockBytes);

// Dequantizes `count` elements (a multiple of the block size) from raw GGUF bytes to fp32, bit-identical
// to ggml's dequantize_row_*. Returns Unsupported for types that are not dequantized and
// InvalidArgument when count is not a whole number of blocks.
Status dequantize(GgmlType type, const void *src, int64_t count, float *dst);

// MXFP4 in the Hugging Face layout (gpt-oss `*_blocks` / `*_scales` safetensors), which differs from
// GGUF's MXFP4 blocks:
// - blocks: u8 [rows][groups][16], scales: u8 [rows][groups]; for gpt-oss rows = E·N (experts × output
//   features) and groups = K/32 (K = input features).
// - Within a group's 16 bytes, byte i holds element 2i in its low nibble and element 2i+1 in its high
//   nibble (GGUF instead puts elements 0-15 in the low and 16-31 in the high nibbles).
// - value = FP4[nibble] · 2^(scale − 127), FP4 = E2M1 {0, .5, 1, 1.5, 2, 3, 4, 6, −0, −.5, …, −6}; scale 255
//   gives ±inf (0 · inf = NaN), as in transformers.
// The output is row-major [rows][groups·32], i.e. [E, N, K]. transformers' convert_moe_packed_tensors
// then transposes to [E, K, N] (the layout GptOssExperts multiplies with); that transpose is the
// caller's job. Bit-identical to convert_moe_packed_tensors(..., dtype=torch.float32) up to that
// transpose (tests/core/format/dequant_test.cpp). dst must hold rows·groups·32 floats.
void dequantMxfp4Hf(const uint8_t *blocks, const uint8_t *scales, int64_t rows, int64_t groups, float *dst);
std::vector<float> dequantMxfp4Hf(const uint8_t *blocks, const uint8_t *scales, int64_t rows, int64_t groups);

} // namespace sinkscope
