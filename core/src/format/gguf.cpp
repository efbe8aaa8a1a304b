// GGUF v2/v3 reader. Layout (all little-endian):
//   "GGUF" u32 version, u64 tensor_count, u64 kv_count,
//   kv_count x { string key, u32 value_type, value },
//   tensor_count x { string name, u32 n_dims, i64 ne[n_dims], u32 ggml_type, u64 offset },
//   padding to general.alignment, data section.
// A string is u64 length + bytes; an array is u32 element type + u64 count + elements.
//
// Every count and length read from the file is checked against the bytes that are left before
// anything is allocated for it, so a corrupt header costs at most about the file's own size.
#include "sinkscope/format/gguf.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <new>

namespace sinkscope {

namespace {

constexpr uint64_t kDefaultAlignment = 32;
constexpr uint32_t kMaxDims = 4; // GGML_MAX_DIMS

// Real files nest arrays at most once; the bound keeps a crafted file from recursing the stack away.
constexpr int kMaxArrayDepth = 8;

// Metadata values are expanded into GgufValue objects (~50 bytes each), so a single byte in the file
// can cost 50x in memory. Real vocabularies are a few hundred thousand entries; this bound only stops
// corrupt counts that happen to fit a large file.
constexpr uint64_t kMaxMetadataValues = uint64_t(1) << 26;

// Smallest encodings, used to bound counts before reading them.
constexpr uint64_t kMinKvBytes = 8 + 4 + 1;                 // empty key, type, one-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8; // empty name, n_dims, one ne, type, offset

// Tensor data is read and dequantized in chunks so a quantized tensor never needs its raw bytes and
// its fp32 copy in memory at once.
constexpr uint64_t kReadChunkBytes = uint64_t(8) << 20;

std::string inQuotes(const std::string &s)
{
    return "'" + s + "'";
}

const char *valueTypeName(GgufType type)
{
    switch (type) {
    case GgufType::Uint8:
        return "uint8";
    case GgufType::Int8:
        return "int8";
    case GgufType::Uint16:
        return "uint16";
    case GgufType::Int16:
        return "int16";
    case GgufType::Uint32:
        return "uint32";
    case GgufType::Int32:
        return "int32";
    case GgufType::Float32:
        return "float32";
    case GgufType::Bool:
        return "bool";
    case GgufType::String:
        return "string";
    case GgufType::Array:
        return "array";
    case GgufType::Uint64:
        return "uint64";
    case GgufType::Int64:
        return "int64";
    case GgufType::Float64:
        return "float64";
    }
    return "unknown";
}

bool isKnownValueType(uint32_t t)
{
    return t <= static_cast<uint32_t>(GgufType::Float64);
}

bool isIntegerType(GgufType t)
{
    switch (t) {
    case GgufType::Uint8:
    case GgufType::Int8:
    case GgufType::Uint16:
    case GgufType::Int16:
    case GgufType::Uint32:
    case GgufType::Int32:
    case GgufType::Uint64:
    case GgufType::Int64:
        return true;
    default:
        return false;
    }
}

// Bytes one element of `type` occupies at least; strings and arrays count only their headers.
uint64_t minEncodedSize(GgufType type)
{
    switch (type) {
    case GgufType::Uint8:
    case GgufType::Int8:
    case GgufType::Bool:
        return 1;
    case GgufType::Uint16:
    case GgufType::Int16:
        return 2;
    case GgufType::Uint32:
    case GgufType::Int32:
    case GgufType::Float32:
        return 4;
    case GgufType::Uint64:
    case GgufType::Int64:
    case GgufType::Float64:
        return 8;
    case GgufType::String:
        return 8;
    case GgufType::Array:
        return 4 + 8;
    }
    return 1;
}

// Renders four magic bytes as text when printable, as hex otherwise.
std::string describeMagic(const char magic[4])
{
    bool printable = true;
    for (int i = 0; i < 4; ++i) {
        printable = printable && magic[i] >= 0x20 && magic[i] < 0x7f;
    }
    if (printable) {
        return inQuotes(std::string(magic, 4));
    }
    static const char hex[] = "0123456789abcdef";
    std::string out = "0x";
    for (int i = 0; i < 4; ++i) {
        const auto b = static_cast<unsigned char>(magic[i]);
        out += hex[b >> 4];
        out += hex[b & 0xf];
    }
    return out;
}

// Sequential, bounds-checked reader over the header part of the file. The first failure is kept
// and every later read fails too, so parsing code can check once per item instead of per field.
class HeaderReader
{
public:
    HeaderReader(std::ifstream &in, const std::string &path, uint64_t fileSize)
        : m_in(in), m_path(path), m_fileSize(fileSize), m_buffer(std::size_t(1) << 20)
    {
    }

    uint64_t pos() const { return m_pos; }
    uint64_t remaining() const { return m_fileSize - m_pos; }
    bool ok() const { return !m_error.has_value(); }
    const Error &error() const { return *m_error; }

    // What is being read, for messages ("metadata 'general.name'", "tensor info #3").
    void setContext(std::string context) { m_context = std::move(context); }

    bool fail(ErrorCode code, const std::string &problem)
    {
        if (!m_error) {
            m_error = makeError(code, m_path + ": " + problem);
        }
        return false;
    }

    bool failHere(ErrorCode code, const std::string &problem)
    {
        return fail(code, m_context.empty() ? problem : m_context + ": " + problem);
    }

    bool read(void *dst, uint64_t n, const char *what)
    {
        if (!ok()) {
            return false;
        }
        if (n > remaining()) {
            return failHere(ErrorCode::Corrupt, std::string("file truncated: ") + what + " at offset " +
                                                    std::to_string(m_pos) + " needs " + std::to_string(n) + " bytes, " +
                                                    std::to_string(remaining()) + " left");
        }
        auto *out = static_cast<char *>(dst);
        while (n > 0) {
            if (m_bufferBegin == m_bufferEnd && !refill()) {
                return false;
            }
            const uint64_t take = std::min<uint64_t>(n, m_bufferEnd - m_bufferBegin);
            std::memcpy(out, m_buffer.data() + m_bufferBegin, take);
            m_bufferBegin += take;
            m_pos += take;
            out += take;
            n -= take;
        }
        return true;
    }

    template <typename T> bool readPod(T &value, const char *what) { return read(&value, sizeof value, what); }

    bool readString(std::string &s, const char *what)
    {
        uint64_t length = 0;
        if (!readPod(length, what)) {
            return false;
        }
        if (length > remaining()) {
            return failHere(ErrorCode::Corrupt, "file truncated or corrupt: " + std::string(what) + " length " +
                                                    std::to_string(length) + " at offset " + std::to_string(m_pos - 8) +
                                                    " exceeds the " + std::to_string(remaining()) +
                                                    " bytes left in the file");
        }
        s.resize(length);
        return read(s.data(), length, what);
    }

private:
    bool refill()
    {
        const uint64_t want = std::min<uint64_t>(m_buffer.size(), remaining());
        m_in.read(m_buffer.data(), static_cast<std::streamsize>(want));
        const auto got = static_cast<uint64_t>(m_in.gcount());
        if (got != want || want == 0) {
            return fail(ErrorCode::Io, "read error at offset " + std::to_string(m_pos));
        }
        m_bufferBegin = 0;
        m_bufferEnd = got;
        return true;
    }

    std::ifstream &m_in;
    const std::string &m_path;
    uint64_t m_fileSize;
    uint64_t m_pos = 0;
    std::vector<char> m_buffer;
    uint64_t m_bufferBegin = 0;
    uint64_t m_bufferEnd = 0;
    std::string m_context;
    std::optional<Error> m_error;
};

// Parses metadata values; counts the values created across the whole file against the budget.
class ValueParser
{
public:
    explicit ValueParser(HeaderReader &reader) : m_r(reader) {}

    bool readValue(GgufType type, GgufValue &out, int depth)
    {
        out.type = type;
        switch (type) {
        case GgufType::Uint8:
            return readUnsigned<uint8_t>(out);
        case GgufType::Uint16:
            return readUnsigned<uint16_t>(out);
        case GgufType::Uint32:
            return readUnsigned<uint32_t>(out);
        case GgufType::Uint64:
            return readUnsigned<uint64_t>(out);
        case GgufType::Int8:
            return readSigned<int8_t>(out);
        case GgufType::Int16:
            return readSigned<int16_t>(out);
        case GgufType::Int32:
            return readSigned<int32_t>(out);
        case GgufType::Int64:
            return readSigned<int64_t>(out);
        case GgufType::Float32: {
            float v = 0;
            if (!m_r.readPod(v, "float32 value")) {
                return false;
            }
            out.value = double(v);
            return true;
        }
        case GgufType::Float64: {
            double v = 0;
            if (!m_r.readPod(v, "float64 value")) {
                return false;
            }
            out.value = v;
            return true;
        }
        case GgufType::Bool: {
            uint8_t v = 0;
            if (!m_r.readPod(v, "bool value")) {
                return false;
            }
            out.value = v != 0;
            return true;
        }
        case GgufType::String: {
            std::string s;
            if (!m_r.readString(s, "string")) {
                return false;
            }
            out.value = std::move(s);
            return true;
        }
        case GgufType::Array:
            return readArray(out, depth + 1);
        }
        return m_r.failHere(ErrorCode::Corrupt, "unknown value type " + std::to_string(uint32_t(type)));
    }

    bool readTypeTag(GgufType &type, const char *what)
    {
        uint32_t raw = 0;
        if (!m_r.readPod(raw, what)) {
            return false;
        }
        if (!isKnownValueType(raw)) {
            return m_r.failHere(ErrorCode::Corrupt, "unknown " + std::string(what) + " " + std::to_string(raw) +
                                                        " at offset " + std::to_string(m_r.pos() - 4));
        }
        type = static_cast<GgufType>(raw);
        return true;
    }

private:
    template <typename T> bool readUnsigned(GgufValue &out)
    {
        T v{};
        if (!m_r.readPod(v, "integer value")) {
            return false;
        }
        out.value = uint64_t(v);
        return true;
    }

    template <typename T> bool readSigned(GgufValue &out)
    {
        T v{};
        if (!m_r.readPod(v, "integer value")) {
            return false;
        }
        out.value = int64_t(v);
        return true;
    }

    bool readArray(GgufValue &out, int depth)
    {
        if (depth > kMaxArrayDepth) {
            return m_r.failHere(ErrorCode::Unsupported,
                                "arrays nested deeper than " + std::to_string(kMaxArrayDepth) + " levels");
        }
        GgufType elementType{};
        if (!readTypeTag(elementType, "array element type")) {
            return false;
        }
        uint64_t count = 0;
        if (!m_r.readPod(count, "array length")) {
            return false;
        }
        if (count > m_r.remaining() / minEncodedSize(elementType)) {
            return m_r.failHere(ErrorCode::Corrupt, "file truncated or corrupt: array of " + std::to_string(count) +
                                                        " " + valueTypeName(elementType) + " values at offset " +
                                                        std::to_string(m_r.pos() - 12) + " exceeds the " +
                                                        std::to_string(m_r.remaining()) + " bytes left in the file");
        }
        if (count > kMaxMetadataValues - m_valueCount) {
            return m_r.failHere(ErrorCode::Unsupported,
                                "metadata holds more than " + std::to_string(kMaxMetadataValues) + " array elements");
        }
        m_valueCount += count;
        out.arrayType = elementType;
        auto array = std::make_shared<GgufValue::Array>();
        array->resize(count);
        for (GgufValue &element : *array) {
            if (!readValue(elementType, element, depth)) {
                return false;
            }
        }
        out.value = std::move(array);
        return true;
    }

    HeaderReader &m_r;
    uint64_t m_valueCount = 0;
};

bool mulOverflows(int64_t a, int64_t b)
{
    return a != 0 && b > std::numeric_limits<int64_t>::max() / a;
}

uint64_t alignUp(uint64_t value, uint64_t alignment)
{
    return value + (alignment - value % alignment) % alignment;
}

Error withPath(const std::string &path, ErrorCode code, const std::string &problem)
{
    return makeError(code, path + ": " + problem);
}

} // namespace

std::optional<int64_t> GgufValue::asInt() const
{
    if (const auto *u = std::get_if<uint64_t>(&value)) {
        if (*u > uint64_t(std::numeric_limits<int64_t>::max())) {
            return std::nullopt;
        }
        return int64_t(*u);
    }
    if (const auto *i = std::get_if<int64_t>(&value)) {
        return *i;
    }
    if (const auto *b = std::get_if<bool>(&value)) {
        return *b ? 1 : 0;
    }
    return std::nullopt;
}

std::optional<double> GgufValue::asFloat() const
{
    if (const auto *d = std::get_if<double>(&value)) {
        return *d;
    }
    if (const auto *u = std::get_if<uint64_t>(&value)) {
        return double(*u);
    }
    if (const auto *i = std::get_if<int64_t>(&value)) {
        return double(*i);
    }
    return std::nullopt;
}

std::optional<std::string> GgufValue::asString() const
{
    if (const auto *s = std::get_if<std::string>(&value)) {
        return *s;
    }
    return std::nullopt;
}

const GgufValue::Array *GgufValue::asArray() const
{
    if (const auto *a = std::get_if<std::shared_ptr<Array>>(&value)) {
        return a->get();
    }
    return nullptr;
}

int64_t GgufTensorInfo::numel() const
{
    int64_t n = 1;
    for (int64_t d : ne) {
        n *= d;
    }
    return n;
}

Result<std::shared_ptr<const GgufFile>> GgufFile::open(const std::string &path)
{
    namespace fs = std::filesystem;
    try {
        std::error_code ec;
        const fs::file_status status = fs::status(path, ec);
        if (ec || !fs::exists(status)) {
            return withPath(path, ErrorCode::Io,
                            "cannot open file: " + (ec ? ec.message() : std::string("no such file")));
        }
        if (!fs::is_regular_file(status)) {
            return withPath(path, ErrorCode::Io, "cannot open file: not a regular file");
        }
        const uint64_t fileSize = fs::file_size(path, ec);
        if (ec) {
            return withPath(path, ErrorCode::Io, "cannot open file: " + ec.message());
        }
        std::ifstream in(path, std::ios::binary);
        if (!in) {
            return withPath(path, ErrorCode::Io, std::string("cannot open file: ") + std::strerror(errno));
        }

        auto file = std::make_shared<GgufFile>();
        file->m_path = path;
        file->m_fileSize = fileSize;

        HeaderReader r(in, path, fileSize);
        ValueParser values(r);

        r.setContext("header");
        char magic[4] = {};
        if (!r.read(magic, 4, "magic")) {
            return r.error();
        }
        if (std::memcmp(magic, "GGUF", 4) != 0) {
            return withPath(path, ErrorCode::Corrupt,
                            "not a GGUF file (magic " + describeMagic(magic) + ", expected 'GGUF')");
        }
        uint32_t version = 0;
        if (!r.readPod(version, "version")) {
            return r.error();
        }
        if (version != 2 && version != 3) {
            const uint32_t swapped =
                ((version & 0xffu) << 24) | ((version & 0xff00u) << 8) | ((version >> 8) & 0xff00u) | (version >> 24);
            if (swapped >= 1 && swapped <= 3) {
                return withPath(path, ErrorCode::Unsupported,
                                "big-endian GGUF (version " + std::to_string(swapped) + ") is not supported");
            }
            return withPath(path, ErrorCode::Unsupported,
                            "GGUF version " + std::to_string(version) + " is not supported (only 2 and 3)");
        }
        file->m_version = version;

        uint64_t tensorCount = 0;
        uint64_t kvCount = 0;
        if (!r.readPod(tensorCount, "tensor count") || !r.readPod(kvCount, "metadata count")) {
            return r.error();
        }
        if (kvCount > r.remaining() / kMinKvBytes || tensorCount > r.remaining() / kMinTensorInfoBytes ||
            kvCount * kMinKvBytes + tensorCount * kMinTensorInfoBytes > r.remaining()) {
            return withPath(path, ErrorCode::Corrupt,
                            "file truncated or corrupt: header claims " + std::to_string(tensorCount) +
                                " tensors and " + std::to_string(kvCount) + " metadata entries, more than the " +
                                std::to_string(fileSize) + "-byte file can hold");
        }

        for (uint64_t i = 0; i < kvCount; ++i) {
            r.setContext("metadata entry #" + std::to_string(i));
            std::string key;
            if (!r.readString(key, "key")) {
                return r.error();
            }
            r.setContext("metadata " + inQuotes(key));
            if (file->m_metadata.count(key) != 0) {
                return withPath(path, ErrorCode::Corrupt, "duplicate metadata key " + inQuotes(key));
            }
            GgufType type{};
            GgufValue value;
            if (!values.readTypeTag(type, "value type") || !values.readValue(type, value, 0)) {
                return r.error();
            }
            file->m_metadata.emplace(std::move(key), std::move(value));
        }
        r.setContext({});

        if (const GgufValue *alignment = file->find("general.alignment")) {
            const std::optional<int64_t> a = isIntegerType(alignment->type) ? alignment->asInt() : std::nullopt;
            if (!a || *a <= 0 || !std::has_single_bit(uint64_t(*a))) {
                return withPath(path, ErrorCode::Corrupt,
                                "general.alignment must be a power-of-two integer, got a " +
                                    std::string(valueTypeName(alignment->type)) +
                                    (a ? " of value " + std::to_string(*a) : std::string()));
            }
            file->m_alignment = uint64_t(*a);
        } else {
            file->m_alignment = kDefaultAlignment;
        }

        for (uint64_t i = 0; i < tensorCount; ++i) {
            r.setContext("tensor info #" + std::to_string(i));
            GgufTensorInfo info;
            if (!r.readString(info.name, "tensor name")) {
                return r.error();
            }
            const std::string tensor = "tensor " + inQuotes(info.name);
            r.setContext(tensor);
            if (file->m_tensorIndex.count(info.name) != 0) {
                return withPath(path, ErrorCode::Corrupt, "duplicate tensor name " + inQuotes(info.name));
            }
            uint32_t nDims = 0;
            if (!r.readPod(nDims, "dimension count")) {
                return r.error();
            }
            if (nDims == 0 || nDims > kMaxDims) {
                return withPath(path, ErrorCode::Corrupt,
                                tensor + " has " + std::to_string(nDims) + " dimensions (expected 1 to 4)");
            }
            info.ne.resize(nDims);
            for (uint32_t d = 0; d < nDims; ++d) {
                if (!r.readPod(info.ne[d], "dimension")) {
                    return r.error();
                }
            }
            uint32_t rawType = 0;
            if (!r.readPod(rawType, "tensor type") || !r.readPod(info.offset, "tensor offset")) {
                return r.error();
            }
            info.type = static_cast<GgmlType>(rawType);

            int64_t numel = 1;
            for (uint32_t d = 0; d < nDims; ++d) {
                if (info.ne[d] <= 0) {
                    return withPath(path, ErrorCode::Corrupt,
                                    tensor + " has invalid dimension ne[" + std::to_string(d) +
                                        "] = " + std::to_string(info.ne[d]));
                }
                if (mulOverflows(numel, info.ne[d])) {
                    return withPath(path, ErrorCode::Corrupt, tensor + " has an element count that overflows");
                }
                numel *= info.ne[d];
            }
            int64_t blockElements = 0;
            int64_t blockBytes = 0;
            if (!ggmlBlockGeometry(info.type, blockElements, blockBytes)) {
                return withPath(path, ErrorCode::Unsupported, tensor + " has unknown type " + std::to_string(rawType));
            }
            if (info.ne[0] % blockElements != 0) {
                return withPath(path, ErrorCode::Corrupt,
                                tensor + " row length " + std::to_string(info.ne[0]) + " is not a multiple of the " +
                                    ggmlTypeName(info.type) + " block size " + std::to_string(blockElements));
            }
            if (mulOverflows(numel / blockElements, blockBytes)) {
                return withPath(path, ErrorCode::Corrupt, tensor + " has a byte size that overflows");
            }
            info.byteSize = uint64_t(numel / blockElements * blockBytes);
            // ggml refuses misaligned tensors as well, so no valid file has them.
            if (info.offset % file->m_alignment != 0) {
                return withPath(path, ErrorCode::Corrupt,
                                tensor + " offset " + std::to_string(info.offset) +
                                    " is not a multiple of the alignment " + std::to_string(file->m_alignment));
            }
            file->m_tensorIndex.emplace(info.name, file->m_tensors.size());
            file->m_tensors.push_back(std::move(info));
        }

        file->m_dataOffset = alignUp(r.pos(), file->m_alignment);
        for (const GgufTensorInfo &info : file->m_tensors) {
            const uint64_t available = file->m_dataOffset <= fileSize ? fileSize - file->m_dataOffset : 0;
            if (info.offset > available || info.byteSize > available - info.offset) {
                return withPath(path, ErrorCode::Corrupt,
                                "tensor " + inQuotes(info.name) + " data (" + std::to_string(info.byteSize) +
                                    " bytes at file offset " + std::to_string(file->m_dataOffset + info.offset) +
                                    ") lies past the end of the file (" + std::to_string(fileSize) + " bytes)");
            }
        }
        return std::shared_ptr<const GgufFile>(std::move(file));
    } catch (const std::bad_alloc &) {
        return withPath(path, ErrorCode::OutOfMemory, "out of memory while reading the GGUF header");
    } catch (const std::exception &e) {
        return withPath(path, ErrorCode::Internal, std::string("unexpected error while reading: ") + e.what());
    }
}

const GgufValue *GgufFile::find(const std::string &key) const
{
    const auto it = m_metadata.find(key);
    return it == m_metadata.end() ? nullptr : &it->second;
}

std::optional<int64_t> GgufFile::getInt(const std::string &key) const
{
    const GgufValue *v = find(key);
    return v ? v->asInt() : std::nullopt;
}

std::optional<double> GgufFile::getFloat(const std::string &key) const
{
    const GgufValue *v = find(key);
    return v ? v->asFloat() : std::nullopt;
}

std::optional<std::string> GgufFile::getString(const std::string &key) const
{
    const GgufValue *v = find(key);
    return v ? v->asString() : std::nullopt;
}

std::optional<std::vector<std::string>> GgufFile::getStringArray(const std::string &key) const
{
    const GgufValue *v = find(key);
    const GgufValue::Array *array = v ? v->asArray() : nullptr;
    if (!array || v->arrayType != GgufType::String) {
        return std::nullopt;
    }
    std::vector<std::string> out;
    out.reserve(array->size());
    for (const GgufValue &element : *array) {
        out.push_back(std::get<std::string>(element.value));
    }
    return out;
}

std::optional<std::vector<double>> GgufFile::getFloatArray(const std::string &key) const
{
    const GgufValue *v = find(key);
    const GgufValue::Array *array = v ? v->asArray() : nullptr;
    if (!array) {
        return std::nullopt;
    }
    std::vector<double> out;
    out.reserve(array->size());
    for (const GgufValue &element : *array) {
        const std::optional<double> f = element.asFloat();
        if (!f) {
            return std::nullopt;
        }
        out.push_back(*f);
    }
    return out;
}

std::optional<std::vector<int64_t>> GgufFile::getIntArray(const std::string &key) const
{
    const GgufValue *v = find(key);
    const GgufValue::Array *array = v ? v->asArray() : nullptr;
    if (!array || !(isIntegerType(v->arrayType) || v->arrayType == GgufType::Bool)) {
        return std::nullopt;
    }
    std::vector<int64_t> out;
    out.reserve(array->size());
    for (const GgufValue &element : *array) {
        const std::optional<int64_t> i = element.asInt();
        if (!i) {
            return std::nullopt;
        }
        out.push_back(*i);
    }
    return out;
}

const GgufTensorInfo *GgufFile::findTensor(const std::string &name) const
{
    const auto it = m_tensorIndex.find(name);
    return it == m_tensorIndex.end() ? nullptr : &m_tensors[it->second];
}

Result<std::vector<float>> GgufFile::readTensorF32(const GgufTensorInfo &requested) const
{
    // Work from our own copy: it was validated against the file in open().
    const GgufTensorInfo *info = findTensor(requested.name);
    if (!info || info->offset != requested.offset || info->type != requested.type || info->ne != requested.ne) {
        return withPath(m_path, ErrorCode::InvalidArgument,
                        "tensor " + inQuotes(requested.name) + " does not belong to this file");
    }
    const std::string tensor = "tensor " + inQuotes(info->name);
    if (!isSupportedTensorType(info->type)) {
        return withPath(m_path, ErrorCode::Unsupported, tensor + " has unsupported type " + ggmlTypeName(info->type));
    }
    int64_t blockElements = 0;
    int64_t blockBytes = 0;
    ggmlBlockGeometry(info->type, blockElements, blockBytes);

    try {
        std::vector<float> out(size_t(info->numel()));

        std::ifstream in(m_path, std::ios::binary);
        if (!in) {
            return withPath(m_path, ErrorCode::Io, "cannot reopen file to read " + tensor);
        }
        const uint64_t start = m_dataOffset + info->offset;
        in.seekg(static_cast<std::streamoff>(start));
        auto readBytes = [&](char *dst, uint64_t n) {
            in.read(dst, static_cast<std::streamsize>(n));
            return in && static_cast<uint64_t>(in.gcount()) == n;
        };
        auto shortRead = [&] {
            return withPath(m_path, ErrorCode::Io,
                            "short read of " + tensor + " at offset " + std::to_string(start) +
                                " (was the file changed after it was opened?)");
        };

        if (info->type == GgmlType::F32) {
            if (!readBytes(reinterpret_cast<char *>(out.data()), info->byteSize)) {
                return shortRead();
            }
            return out;
        }

        const uint64_t blocksPerChunk = std::max<uint64_t>(1, kReadChunkBytes / uint64_t(blockBytes));
        const uint64_t totalBlocks = info->byteSize / uint64_t(blockBytes);
        std::vector<char> raw(std::min(totalBlocks, blocksPerChunk) * uint64_t(blockBytes));
        float *dst = out.data();
        for (uint64_t done = 0; done < totalBlocks;) {
            const uint64_t blocks = std::min(blocksPerChunk, totalBlocks - done);
            if (!readBytes(raw.data(), blocks * uint64_t(blockBytes))) {
                return shortRead();
            }
            const int64_t count = int64_t(blocks) * blockElements;
            const Status status = dequantize(info->type, raw.data(), count, dst);
            if (!status) {
                return withPath(m_path, status.error().code, tensor + ": " + status.error().message);
            }
            dst += count;
            done += blocks;
        }
        return out;
    } catch (const std::bad_alloc &) {
        return withPath(m_path, ErrorCode::OutOfMemory,
                        "out of memory reading " + tensor + " (" + std::to_string(info->numel()) + " values)");
    }
}

} // namespace sinkscope
