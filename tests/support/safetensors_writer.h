// Test-only safetensors writer: files laid out as the Python safetensors package writes them (u64 header
// length, JSON header padded with spaces to a multiple of 8, tensors back to back), plus the pieces
// tests need to build corrupt ones. Not part of the product.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sinkscope::testing {

class SafetensorsWriter
{
public:
    void addMetadata(const std::string &key, const std::string &value);

    // Values converted to dtype "F32", "F16" or "BF16" (round to nearest even). shape is row-major.
    void addTensorF32(const std::string &name, const std::vector<int64_t> &shape, const std::vector<float> &values,
                      const std::string &dtype = "F32");
    // Already-encoded little-endian bytes of any dtype; the size is not checked, so tests can make
    // shape/dtype/offset disagreements.
    void addRawTensor(const std::string &name, const std::string &dtype, const std::vector<int64_t> &shape,
                      const std::vector<uint8_t> &bytes);

    std::string headerJson() const;            // the JSON header, unpadded
    std::vector<uint8_t> data() const;         // the data buffer
    std::vector<uint8_t> bytes() const;        // the whole file
    void write(const std::string &path) const; // throws std::runtime_error on I/O failure

    // A file from any header text and data: the header padded with spaces to a multiple of 8, its length
    // field set to the padded size unless headerLength overrides it.
    static std::vector<uint8_t> assemble(const std::string &header, const std::vector<uint8_t> &data,
                                         std::optional<uint64_t> headerLength = std::nullopt);

private:
    struct Tensor {
        std::string name;
        std::string dtype;
        std::vector<int64_t> shape;
        std::vector<uint8_t> bytes;
    };
    std::map<std::string, std::string> m_metadata;
    std::vector<Tensor> m_tensors;
};

// Writes bytes to a file; throws std::runtime_error on failure.
void writeFileBytes(const std::string &path, const std::vector<uint8_t> &bytes);

} // namespace sinkscope::testing
