// Reader for safetensors files and sharded Hugging Face checkpoints (model.safetensors.index.json).
//
// Contract:
// - SafetensorsModel::open reads and checks only headers: the u64 little-endian header length, the
//   UTF-8 JSON header (space padding allowed) and, for an index, the weight_map and every shard's header.
//   Tensor data is read lazily by readF32 / readBytes.
// - Every failure is an Error whose message starts with the path of the file at fault (the index for
//   problems of the weight_map, the shard for problems inside a shard) and names the tensor, dtype or
//   shard involved. Codes: Io (missing or unreadable file or shard), Corrupt (truncated file, absurd
//   header length, bad JSON, malformed entries, shape/dtype/offset disagreement, overlapping data,
//   index and shards that disagree), Unsupported (unknown dtype; readF32 of a dtype it does not convert).
//   No size read from a file is used for an allocation before it has been checked against the file.
// - Shapes are row-major (PyTorch order): a Linear weight [out, in] has shape {out, in}. A scalar has
//   shape {} and one element.
// - Thread safety: a SafetensorsModel is immutable after open; readF32 / readBytes may be called from
//   several threads (each call opens its own stream).
// - Little-endian hosts only (checked at compile time), as the format is little-endian.
#pragma once

#include "sinkscope/common/result.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sinkscope {

// dtype strings as safetensors writes them (safetensors' Dtype); compare SafetensorsTensor::dtype with
// these. The reader also knows the rarer U16/U32/U64, C64, F8_E8M0, F8_*FNUZ, F6_E2M3, F6_E3M2 and F4.
namespace safetensors_dtype {
inline constexpr std::string_view kF64 = "F64";
inline constexpr std::string_view kF32 = "F32";
inline constexpr std::string_view kF16 = "F16";
inline constexpr std::string_view kBF16 = "BF16";
inline constexpr std::string_view kI64 = "I64";
inline constexpr std::string_view kI32 = "I32";
inline constexpr std::string_view kI16 = "I16";
inline constexpr std::string_view kI8 = "I8";
inline constexpr std::string_view kU8 = "U8"; // also gpt-oss MXFP4 *_blocks / *_scales (see dequantMxfp4Hf)
inline constexpr std::string_view kBool = "BOOL";
inline constexpr std::string_view kF8E4M3 = "F8_E4M3";
inline constexpr std::string_view kF8E5M2 = "F8_E5M2";
} // namespace safetensors_dtype

struct SafetensorsTensor {
    std::string name;
    std::string dtype;          // as written: "F32", "BF16", "U8", ... (see safetensors_dtype)
    std::vector<int64_t> shape; // row-major; {} for a scalar
    uint64_t begin = 0;         // absolute byte offsets of the data in `file`: [begin, end)
    uint64_t end = 0;
    std::string file; // path of the file (shard) holding the data

    int64_t numel() const; // product of shape (1 for a scalar, 0 if any dimension is 0)
    uint64_t byteSize() const { return end - begin; }
};

// One .safetensors file, or the set of shards a model.safetensors.index.json names.
class SafetensorsModel
{
public:
    // path: a .safetensors file; a *.json index; or a folder holding model.safetensors (preferred, as
    // transformers does) or model.safetensors.index.json. Shard names in an index are relative to the
    // index's folder.
    static Result<std::shared_ptr<const SafetensorsModel>> open(const std::string &path);

    const std::string &path() const { return m_path; }                // the resolved file or index
    const std::vector<std::string> &files() const { return m_files; } // data files, shards in name order

    // Every tensor of every file, in storage order (files in the order above, then by offset). A
    // sharded set includes tensors a shard holds that the weight_map does not list, as transformers
    // loads them too.
    const std::vector<SafetensorsTensor> &tensors() const { return m_tensors; }
    const SafetensorsTensor *find(const std::string &name) const; // nullptr if absent

    // __metadata__ of the single file, or of the first shard; empty if there is none.
    const std::map<std::string, std::string> &metadata() const { return m_metadata; }

    // The tensor's values as fp32, row-major. F32, F16 and BF16 are exact; F64 is rounded to nearest;
    // I8, I16, U8, U16 and BOOL (0/1) are exact. Other dtypes (I32, I64, U32, U64, F8_*, ...) return
    // Unsupported naming the tensor and dtype: use readBytes. `t` must come from this model
    // (InvalidArgument otherwise).
    Result<std::vector<float>> readF32(const SafetensorsTensor &t) const;
    // The tensor's raw little-endian bytes, any dtype (e.g. U8 MXFP4 blocks and scales).
    Result<std::vector<uint8_t>> readBytes(const SafetensorsTensor &t) const;

private:
    // Our own record of `t`, or InvalidArgument if `t` does not describe a tensor of this model.
    Result<const SafetensorsTensor *> owned(const SafetensorsTensor &t) const;

    std::string m_path;
    std::vector<std::string> m_files;
    std::vector<SafetensorsTensor> m_tensors;
    std::unordered_map<std::string, size_t> m_index;
    std::map<std::string, std::string> m_metadata;
};

} // namespace sinkscope
