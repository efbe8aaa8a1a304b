#include "support/safetensors_writer.h"

#include "support/gguf_writer.h" // floatToHalf, floatToBf16

#include <nlohmann/json.hpp>

#include <fstream>
#include <stdexcept>

namespace sinkscope::testing {

void SafetensorsWriter::addMetadata(const std::string &key, const std::string &value)
{
    m_metadata[key] = value;
}

void SafetensorsWriter::addTensorF32(const std::string &name, const std::vector<int64_t> &shape,
                                     const std::vector<float> &values, const std::string &dtype)
{
    std::vector<uint8_t> bytes;
    for (float v : values) {
        if (dtype == "F32") {
            const auto *b = reinterpret_cast<const uint8_t *>(&v);
            bytes.insert(bytes.end(), b, b + 4);
        } else if (dtype == "F16" || dtype == "BF16") {
            const uint16_t h = dtype == "F16" ? floatToHalf(v) : floatToBf16(v);
            bytes.push_back(uint8_t(h & 0xff));
            bytes.push_back(uint8_t(h >> 8));
        } else {
            throw std::invalid_argument("SafetensorsWriter::addTensorF32: dtype " + dtype);
        }
    }
    addRawTensor(name, dtype, shape, bytes);
}

void SafetensorsWriter::addRawTensor(const std::string &name, const std::string &dtype,
                                     const std::vector<int64_t> &shape, const std::vector<uint8_t> &bytes)
{
    m_tensors.push_back({name, dtype, shape, bytes});
}

std::string SafetensorsWriter::headerJson() const
{
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!m_metadata.empty()) {
        header["__metadata__"] = m_metadata;
    }
    uint64_t offset = 0;
    for (const Tensor &t : m_tensors) {
        header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes.size()}}};
        offset += t.bytes.size();
    }
    return header.dump();
}

std::vector<uint8_t> SafetensorsWriter::data() const
{
    std::vector<uint8_t> out;
    for (const Tensor &t : m_tensors) {
        out.insert(out.end(), t.bytes.begin(), t.bytes.end());
    }
    return out;
}

std::vector<uint8_t> SafetensorsWriter::bytes() const
{
    return assemble(headerJson(), data());
}

void SafetensorsWriter::write(const std::string &path) const
{
    writeFileBytes(path, bytes());
}

std::vector<uint8_t> SafetensorsWriter::assemble(const std::string &header, const std::vector<uint8_t> &data,
                                                 std::optional<uint64_t> headerLength)
{
    std::string padded = header;
    while (padded.size() % 8 != 0) {
        padded.push_back(' ');
    }
    const uint64_t length = headerLength.value_or(padded.size());
    std::vector<uint8_t> out;
    out.reserve(8 + padded.size() + data.size());
    for (int i = 0; i < 8; ++i) {
        out.push_back(uint8_t(length >> (8 * i))); // little-endian
    }
    out.insert(out.end(), padded.begin(), padded.end());
    out.insert(out.end(), data.begin(), data.end());
    return out;
}

void writeFileBytes(const std::string &path, const std::vector<uint8_t> &bytes)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char *>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    out.close();
    if (!out) {
        throw std::runtime_error("cannot write " + path);
    }
}

} // namespace sinkscope::testing
