// safetensors reader. A file is: u64 little-endian header length N, N bytes of UTF-8 JSON (the writer pads
// it with spaces to a multiple of 8), then the data buffer that every data_offsets pair indexes.
//
// The header checks follow safetensors' own reader (header size limit, dtype sizes, offsets inside the
// buffer, no overlap) so that what it refuses we refuse too; gaps between tensors, which it also
// refuses, are tolerated since they cannot make a read go wrong.
#include "sinkscope/format/safetensors.h"

#include "sinkscope/format/gguf.h" // dequantize() for F16 / BF16

#include <nlohmann/json.hpp>

#include <algorithm>
#include <bit>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <new>
#include <optional>

namespace sinkscope {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian; so must the host be");

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// safetensors' MAX_HEADER_SIZE: its reader refuses longer headers, and so do we before allocating one.
// Index files are bounded the same way.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// Converted tensors are read in chunks so a BF16 tensor never needs its raw bytes and its fp32 copy at once.
constexpr uint64_t kReadChunkBytes = uint64_t(8) << 20;

constexpr const char *kSingleFileName = "model.safetensors";
constexpr const char *kIndexFileName = "model.safetensors.index.json";
constexpr const char *kMetadataKey = "__metadata__";
constexpr const char *kWeightMapKey = "weight_map";

// How readF32 turns a dtype into floats; None means it refuses (not always exact, or not a number type).
enum class ToF32 { None, F32, F16, BF16, F64, I8, I16, U8, U16, Bool };

struct DtypeInfo {
    std::string_view name;
    uint64_t bits; // per element; F6 and F4 pack below a byte
    ToF32 toF32;
};

// safetensors 0.8 Dtype, with its bit sizes.
constexpr DtypeInfo kDtypes[] = {
    {safetensors_dtype::kF64, 64, ToF32::F64},
    {safetensors_dtype::kF32, 32, ToF32::F32},
    {safetensors_dtype::kF16, 16, ToF32::F16},
    {safetensors_dtype::kBF16, 16, ToF32::BF16},
    {safetensors_dtype::kI64, 64, ToF32::None},
    {safetensors_dtype::kI32, 32, ToF32::None},
    {safetensors_dtype::kI16, 16, ToF32::I16},
    {safetensors_dtype::kI8, 8, ToF32::I8},
    {safetensors_dtype::kU8, 8, ToF32::U8},
    {safetensors_dtype::kBool, 8, ToF32::Bool},
    {safetensors_dtype::kF8E4M3, 8, ToF32::None},
    {safetensors_dtype::kF8E5M2, 8, ToF32::None},
    {"U64", 64, ToF32::None},
    {"U32", 32, ToF32::None},
    {"U16", 16, ToF32::U16},
    {"C64", 64, ToF32::None},
    {"F8_E8M0", 8, ToF32::None},
    {"F8_E4M3FNUZ", 8, ToF32::None},
    {"F8_E5M2FNUZ", 8, ToF32::None},
    {"F6_E2M3", 6, ToF32::None},
    {"F6_E3M2", 6, ToF32::None},
    {"F4", 4, ToF32::None},
};

const DtypeInfo *dtypeInfo(std::string_view name)
{
    for (const DtypeInfo &d : kDtypes) {
        if (d.name == name) {
            return &d;
        }
    }
    return nullptr;
}

std::string inQuotes(const std::string &s)
{
    return "'" + s + "'";
}

Error withPath(const std::string &path, ErrorCode code, const std::string &problem)
{
    return makeError(code, path + ": " + problem);
}

std::string describeShape(const std::vector<int64_t> &shape)
{
    std::string out = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        out += (i ? ", " : "") + std::to_string(shape[i]);
    }
    return out + "]";
}

// nlohmann's parse errors quote what they last read, which in a corrupt file may be control bytes or
// bytes that are not UTF-8: keep the message one line of printable ASCII.
std::string printable(std::string text)
{
    for (char &c : text) {
        const auto b = static_cast<unsigned char>(c);
        if (b < 0x20 || b >= 0x7f) {
            c = '?';
        }
    }
    return text;
}

std::string jsonParseProblem(const Json::parse_error &e)
{
    std::string what = e.what();
    if (const size_t bracket = what.find("] "); what.rfind("[json.exception", 0) == 0 && bracket != std::string::npos) {
        what.erase(0, bracket + 2);
    }
    return printable(what);
}

// A JSON value as a non-negative int64, or the reason it is not one.
std::optional<std::string> asCount(const Json &value, int64_t &out)
{
    if (value.is_number_unsigned()) {
        const auto v = value.get<uint64_t>();
        if (v > uint64_t(std::numeric_limits<int64_t>::max())) {
            return "is " + std::to_string(v) + ", too large";
        }
        out = int64_t(v);
        return std::nullopt;
    }
    if (value.is_number_integer()) {
        return "is negative (" + std::to_string(value.get<int64_t>()) + ")";
    }
    return std::string("is not an integer (a JSON ") + value.type_name() + ")";
}

Status fileSizeOf(const std::string &path, uint64_t &size)
{
    std::error_code ec;
    const fs::file_status status = fs::status(path, ec);
    if (ec || !fs::exists(status)) {
        return withPath(path, ErrorCode::Io, "cannot open file: " + (ec ? ec.message() : std::string("no such file")));
    }
    if (!fs::is_regular_file(status)) {
        return withPath(path, ErrorCode::Io, "cannot open file: not a regular file");
    }
    size = fs::file_size(path, ec);
    if (ec) {
        return withPath(path, ErrorCode::Io, "cannot open file: " + ec.message());
    }
    return Ok{};
}

bool readExactly(std::ifstream &in, char *dst, uint64_t n)
{
    in.read(dst, static_cast<std::streamsize>(n));
    return in && static_cast<uint64_t>(in.gcount()) == n;
}

struct FileHeader {
    std::vector<SafetensorsTensor> tensors; // in storage order
    std::map<std::string, std::string> metadata;
};

// Checks one header entry against the data buffer [dataStart, dataStart + dataSize) of `path`.
Result<SafetensorsTensor> parseTensorEntry(const std::string &path, const std::string &name, const Json &entry,
                                           uint64_t dataStart, uint64_t dataSize)
{
    const std::string tensor = "tensor " + inQuotes(name);
    auto corrupt = [&](const std::string &problem) { return withPath(path, ErrorCode::Corrupt, tensor + problem); };
    if (!entry.is_object()) {
        return corrupt(std::string(": entry is a JSON ") + entry.type_name() + ", not an object");
    }
    const auto dtypeIt = entry.find("dtype");
    const auto shapeIt = entry.find("shape");
    const auto offsetsIt = entry.find("data_offsets");
    if (dtypeIt == entry.end() || shapeIt == entry.end() || offsetsIt == entry.end()) {
        const char *missing = dtypeIt == entry.end() ? "dtype" : shapeIt == entry.end() ? "shape" : "data_offsets";
        return corrupt(std::string(" has no ") + missing);
    }
    if (!dtypeIt->is_string()) {
        return corrupt(std::string(": dtype is a JSON ") + dtypeIt->type_name() + ", not a string");
    }
    if (!shapeIt->is_array()) {
        return corrupt(std::string(": shape is a JSON ") + shapeIt->type_name() + ", not an array");
    }
    if (!offsetsIt->is_array() || offsetsIt->size() != 2) {
        return corrupt(": data_offsets is not a [begin, end] pair");
    }

    SafetensorsTensor t;
    t.name = name;
    t.dtype = dtypeIt->get<std::string>();
    t.file = path;
    int64_t numel = 1;
    for (size_t d = 0; d < shapeIt->size(); ++d) {
        int64_t dim = 0;
        if (const auto problem = asCount((*shapeIt)[d], dim)) {
            return corrupt(" shape[" + std::to_string(d) + "] " + *problem);
        }
        t.shape.push_back(dim);
        if (dim != 0 && numel > std::numeric_limits<int64_t>::max() / dim) {
            return corrupt(" has shape " + describeShape(t.shape) + "..., whose element count overflows");
        }
        numel *= dim;
    }
    int64_t begin = 0;
    int64_t end = 0;
    if (const auto problem = asCount((*offsetsIt)[0], begin)) {
        return corrupt(" data_offsets begin " + *problem);
    }
    if (const auto problem = asCount((*offsetsIt)[1], end)) {
        return corrupt(" data_offsets end " + *problem);
    }
    const DtypeInfo *dtype = dtypeInfo(t.dtype);
    if (!dtype) {
        return withPath(path, ErrorCode::Unsupported, tensor + " has unknown dtype " + inQuotes(t.dtype));
    }
    const std::string offsets = "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "]";
    if (begin > end) {
        return corrupt(" has " + offsets + " that run backwards");
    }
    if (uint64_t(end) > dataSize) {
        return corrupt(" has " + offsets + " past the end of the data (" + std::to_string(dataSize) +
                       " bytes; file truncated?)");
    }
    if (uint64_t(numel) > std::numeric_limits<uint64_t>::max() / dtype->bits) {
        return corrupt(" has a byte size that overflows");
    }
    const uint64_t bits = uint64_t(numel) * dtype->bits;
    if (bits % 8 != 0) {
        return corrupt(" of " + t.dtype + " shape " + describeShape(t.shape) + " is not a whole number of bytes");
    }
    if (uint64_t(end - begin) != bits / 8) {
        return corrupt(" has " + offsets + " (" + std::to_string(end - begin) + " bytes) but " + t.dtype + " shape " +
                       describeShape(t.shape) + " needs " + std::to_string(bits / 8) + " bytes");
    }
    t.begin = dataStart + uint64_t(begin);
    t.end = dataStart + uint64_t(end);
    return t;
}

Result<FileHeader> readFileHeader(const std::string &path)
{
    uint64_t fileSize = 0;
    if (Status s = fileSizeOf(path, fileSize); !s) {
        return s.error();
    }
    if (fileSize < 8) {
        return withPath(path, ErrorCode::Corrupt,
                        "file truncated: " + std::to_string(fileSize) +
                            " bytes, too short for the 8-byte header length of a safetensors file");
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return withPath(path, ErrorCode::Io, std::string("cannot open file: ") + std::strerror(errno));
    }
    uint64_t headerLength = 0;
    if (!readExactly(in, reinterpret_cast<char *>(&headerLength), 8)) {
        return withPath(path, ErrorCode::Io, "read error in the header length");
    }
    if (headerLength > fileSize - 8) {
        return withPath(path, ErrorCode::Corrupt,
                        "header length " + std::to_string(headerLength) + " exceeds the " +
                            std::to_string(fileSize - 8) + " bytes after it (truncated, or not a safetensors file)");
    }
    if (headerLength > kMaxHeaderBytes) {
        return withPath(path, ErrorCode::Corrupt,
                        "header length " + std::to_string(headerLength) + " is over the safetensors limit of " +
                            std::to_string(kMaxHeaderBytes) + " bytes");
    }
    std::string text(headerLength, '\0');
    if (!readExactly(in, text.data(), headerLength)) {
        return withPath(path, ErrorCode::Io, "read error in the " + std::to_string(headerLength) + "-byte header");
    }

    Json header;
    try {
        header = Json::parse(text);
    } catch (const Json::parse_error &e) {
        return withPath(path, ErrorCode::Corrupt, "header is not valid UTF-8 JSON: " + jsonParseProblem(e));
    }
    if (!header.is_object()) {
        return withPath(path, ErrorCode::Corrupt,
                        std::string("header is a JSON ") + header.type_name() + ", not an object of tensors");
    }

    const uint64_t dataStart = 8 + headerLength;
    const uint64_t dataSize = fileSize - dataStart;
    FileHeader out;
    for (const auto &[key, value] : header.items()) {
        if (key == kMetadataKey) {
            if (value.is_null()) {
                continue;
            }
            if (!value.is_object()) {
                return withPath(path, ErrorCode::Corrupt,
                                std::string(kMetadataKey) + " is a JSON " + value.type_name() + ", not an object");
            }
            for (const auto &[mkey, mvalue] : value.items()) {
                if (!mvalue.is_string()) {
                    return withPath(path, ErrorCode::Corrupt,
                                    std::string(kMetadataKey) + " " + inQuotes(mkey) + " is a JSON " +
                                        mvalue.type_name() + ", not a string");
                }
                out.metadata.emplace(mkey, mvalue.get<std::string>());
            }
            continue;
        }
        Result<SafetensorsTensor> t = parseTensorEntry(path, key, value, dataStart, dataSize);
        if (!t) {
            return t.error();
        }
        out.tensors.push_back(std::move(t).value());
    }

    std::sort(out.tensors.begin(), out.tensors.end(), [](const SafetensorsTensor &a, const SafetensorsTensor &b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    const SafetensorsTensor *previous = nullptr;
    for (const SafetensorsTensor &t : out.tensors) {
        if (t.begin == t.end) {
            continue; // empty tensors own no bytes
        }
        if (previous && t.begin < previous->end) {
            return withPath(path, ErrorCode::Corrupt,
                            "tensors " + inQuotes(previous->name) + " and " + inQuotes(t.name) + " overlap (bytes " +
                                std::to_string(t.begin) + " to " + std::to_string(std::min(t.end, previous->end)) +
                                ")");
        }
        previous = &t;
    }
    return out;
}

// The index's weight_map, grouped by shard file (in name order), each with the tensors it should hold.
Result<std::map<std::string, std::vector<std::string>>> readWeightMap(const std::string &indexPath)
{
    uint64_t size = 0;
    if (Status s = fileSizeOf(indexPath, size); !s) {
        return s.error();
    }
    if (size > kMaxHeaderBytes) {
        return withPath(indexPath, ErrorCode::Corrupt,
                        "index of " + std::to_string(size) + " bytes is over the limit of " +
                            std::to_string(kMaxHeaderBytes) + " bytes");
    }
    std::ifstream in(indexPath, std::ios::binary);
    std::string text(size, '\0');
    if (!in || !readExactly(in, text.data(), size)) {
        return withPath(indexPath, ErrorCode::Io, "cannot read the index");
    }
    Json index;
    try {
        index = Json::parse(text);
    } catch (const Json::parse_error &e) {
        return withPath(indexPath, ErrorCode::Corrupt, "index is not valid JSON: " + jsonParseProblem(e));
    }
    const auto mapIt = index.is_object() ? index.find(kWeightMapKey) : index.end();
    if (mapIt == index.end() || !mapIt->is_object()) {
        return withPath(indexPath, ErrorCode::Corrupt, "index has no \"weight_map\" object");
    }
    if (mapIt->empty()) {
        return withPath(indexPath, ErrorCode::Corrupt, "index has an empty weight_map");
    }
    std::map<std::string, std::vector<std::string>> shards;
    for (const auto &[tensor, file] : mapIt->items()) {
        if (!file.is_string() || file.get<std::string>().empty()) {
            return withPath(indexPath, ErrorCode::Corrupt,
                            "weight_map entry for tensor " + inQuotes(tensor) + " is not a file name");
        }
        shards[file.get<std::string>()].push_back(tensor);
    }
    return shards;
}

} // namespace

int64_t SafetensorsTensor::numel() const
{
    int64_t n = 1;
    for (int64_t d : shape) {
        n *= d;
    }
    return n;
}

Result<std::shared_ptr<const SafetensorsModel>> SafetensorsModel::open(const std::string &path)
{
    try {
        std::string resolved = path;
        std::error_code ec;
        if (fs::is_directory(path, ec)) {
            const fs::path single = fs::path(path) / kSingleFileName;
            const fs::path index = fs::path(path) / kIndexFileName;
            if (fs::exists(single, ec)) {
                resolved = single.string();
            } else if (fs::exists(index, ec)) {
                resolved = index.string();
            } else {
                return withPath(path, ErrorCode::Io,
                                std::string("folder holds neither ") + kSingleFileName + " nor " + kIndexFileName);
            }
        }

        auto model = std::make_shared<SafetensorsModel>();
        model->m_path = resolved;
        auto addTensors = [&](std::vector<SafetensorsTensor> tensors) {
            for (SafetensorsTensor &t : tensors) {
                model->m_index.emplace(t.name, model->m_tensors.size());
                model->m_tensors.push_back(std::move(t));
            }
        };

        if (fs::path(resolved).extension() != ".json") {
            Result<FileHeader> header = readFileHeader(resolved);
            if (!header) {
                return header.error();
            }
            model->m_files = {resolved};
            model->m_metadata = std::move(header->metadata);
            addTensors(std::move(header->tensors));
            return std::shared_ptr<const SafetensorsModel>(std::move(model));
        }

        Result<std::map<std::string, std::vector<std::string>>> shards = readWeightMap(resolved);
        if (!shards) {
            return shards.error();
        }
        const fs::path folder = fs::path(resolved).parent_path();
        for (const auto &[shardName, listed] : *shards) {
            const std::string shardPath = (folder / shardName).string();
            if (!fs::exists(shardPath, ec)) {
                const std::string more =
                    listed.size() > 1 ? " and " + std::to_string(listed.size() - 1) + " more" : std::string();
                return withPath(resolved, ErrorCode::Io,
                                "shard " + inQuotes(shardName) + " (tensor " + inQuotes(listed.front()) + more +
                                    ") is missing: no such file " + shardPath);
            }
            Result<FileHeader> header = readFileHeader(shardPath);
            if (!header) {
                return header.error();
            }
            for (const SafetensorsTensor &t : header->tensors) {
                if (const SafetensorsTensor *other = model->find(t.name)) {
                    return withPath(resolved, ErrorCode::Corrupt,
                                    "tensor " + inQuotes(t.name) + " is stored in two shards, " +
                                        inQuotes(fs::path(other->file).filename().string()) + " and " +
                                        inQuotes(shardName));
                }
            }
            if (model->m_files.empty()) {
                model->m_metadata = std::move(header->metadata);
            }
            model->m_files.push_back(shardPath);
            addTensors(std::move(header->tensors));
            for (const std::string &name : listed) {
                const SafetensorsTensor *t = model->find(name);
                if (!t || t->file != shardPath) {
                    return withPath(resolved, ErrorCode::Corrupt,
                                    "weight_map puts tensor " + inQuotes(name) + " in shard " + inQuotes(shardName) +
                                        ", which does not hold it");
                }
            }
        }
        return std::shared_ptr<const SafetensorsModel>(std::move(model));
    } catch (const std::bad_alloc &) {
        return withPath(path, ErrorCode::OutOfMemory, "out of memory while reading safetensors headers");
    } catch (const std::exception &e) {
        return withPath(path, ErrorCode::Internal, std::string("unexpected error while reading: ") + e.what());
    }
}

const SafetensorsTensor *SafetensorsModel::find(const std::string &name) const
{
    const auto it = m_index.find(name);
    return it == m_index.end() ? nullptr : &m_tensors[it->second];
}

Result<const SafetensorsTensor *> SafetensorsModel::owned(const SafetensorsTensor &t) const
{
    // Work from our own copy: it was checked against the file in open().
    const SafetensorsTensor *own = find(t.name);
    if (!own || own->file != t.file || own->begin != t.begin || own->end != t.end || own->dtype != t.dtype ||
        own->shape != t.shape) {
        return withPath(m_path, ErrorCode::InvalidArgument, "tensor " + inQuotes(t.name) + " does not belong to it");
    }
    return own;
}

Result<std::vector<uint8_t>> SafetensorsModel::readBytes(const SafetensorsTensor &requested) const
{
    Result<const SafetensorsTensor *> found = owned(requested);
    if (!found) {
        return found.error();
    }
    const SafetensorsTensor &t = **found;
    try {
        std::vector<uint8_t> out(t.byteSize());
        std::ifstream in(t.file, std::ios::binary);
        in.seekg(static_cast<std::streamoff>(t.begin));
        if (!in || !readExactly(in, reinterpret_cast<char *>(out.data()), out.size())) {
            return withPath(t.file, ErrorCode::Io,
                            "short read of tensor " + inQuotes(t.name) + " at offset " + std::to_string(t.begin) +
                                " (was the file changed after it was opened?)");
        }
        return out;
    } catch (const std::bad_alloc &) {
        return withPath(t.file, ErrorCode::OutOfMemory,
                        "out of memory reading tensor " + inQuotes(t.name) + " (" + std::to_string(t.byteSize()) +
                            " bytes)");
    }
}

Result<std::vector<float>> SafetensorsModel::readF32(const SafetensorsTensor &requested) const
{
    Result<const SafetensorsTensor *> found = owned(requested);
    if (!found) {
        return found.error();
    }
    const SafetensorsTensor &t = **found;
    const std::string tensor = "tensor " + inQuotes(t.name);
    const DtypeInfo *dtype = dtypeInfo(t.dtype);
    assert(dtype); // open() refuses unknown dtypes
    if (dtype->toF32 == ToF32::None) {
        return withPath(t.file, ErrorCode::Unsupported,
                        tensor + " has dtype " + t.dtype + ", which is not converted to float (read its bytes)");
    }

    try {
        std::vector<float> out(size_t(t.numel()));
        std::ifstream in(t.file, std::ios::binary);
        in.seekg(static_cast<std::streamoff>(t.begin));
        auto shortRead = [&] {
            return withPath(t.file, ErrorCode::Io,
                            "short read of " + tensor + " at offset " + std::to_string(t.begin) +
                                " (was the file changed after it was opened?)");
        };
        if (!in) {
            return shortRead();
        }
        if (dtype->toF32 == ToF32::F32) {
            if (!readExactly(in, reinterpret_cast<char *>(out.data()), t.byteSize())) {
                return shortRead();
            }
            return out;
        }

        const uint64_t elementBytes = dtype->bits / 8;
        const uint64_t chunkElements = kReadChunkBytes / elementBytes;
        std::vector<uint8_t> raw(std::min<uint64_t>(t.byteSize(), chunkElements * elementBytes));
        for (uint64_t done = 0; done < out.size();) {
            const uint64_t n = std::min<uint64_t>(chunkElements, out.size() - done);
            if (!readExactly(in, reinterpret_cast<char *>(raw.data()), n * elementBytes)) {
                return shortRead();
            }
            float *dst = out.data() + done;
            const uint8_t *src = raw.data();
            switch (dtype->toF32) {
            case ToF32::F16:
            case ToF32::BF16: {
                const Status s =
                    dequantize(dtype->toF32 == ToF32::F16 ? GgmlType::F16 : GgmlType::BF16, src, int64_t(n), dst);
                assert(s.ok());
                (void)s;
                break;
            }
            case ToF32::F64:
                for (uint64_t i = 0; i < n; ++i) {
                    double v = 0;
                    std::memcpy(&v, src + 8 * i, 8);
                    dst[i] = float(v);
                }
                break;
            case ToF32::I16:
                for (uint64_t i = 0; i < n; ++i) {
                    int16_t v = 0;
                    std::memcpy(&v, src + 2 * i, 2);
                    dst[i] = float(v);
                }
                break;
            case ToF32::U16:
                for (uint64_t i = 0; i < n; ++i) {
                    uint16_t v = 0;
                    std::memcpy(&v, src + 2 * i, 2);
                    dst[i] = float(v);
                }
                break;
            case ToF32::I8:
                for (uint64_t i = 0; i < n; ++i) {
                    dst[i] = float(static_cast<int8_t>(src[i]));
                }
                break;
            case ToF32::U8:
                for (uint64_t i = 0; i < n; ++i) {
                    dst[i] = float(src[i]);
                }
                break;
            case ToF32::Bool:
                for (uint64_t i = 0; i < n; ++i) {
                    dst[i] = src[i] != 0 ? 1.0f : 0.0f;
                }
                break;
            case ToF32::F32:
            case ToF32::None:
                assert(false);
                break;
            }
            done += n;
        }
        return out;
    } catch (const std::bad_alloc &) {
        return withPath(t.file, ErrorCode::OutOfMemory,
                        "out of memory reading " + tensor + " (" + std::to_string(t.numel()) + " values)");
    }
}

} // namespace sinkscope
