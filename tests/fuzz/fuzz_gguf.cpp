// GGUF reader on arbitrary bytes: header, metadata (every value type, nested arrays), the tensor table,
// then every small enough tensor read and dequantized (GgufFile::readTensorF32).
#include "fuzz_support.h"

#include "sinkscope/format/gguf.h"

using namespace sinkscope;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const std::string path = fuzz::writeScratch(".gguf", data, size);
    auto file = GgufFile::open(path);
    if (!file) {
        fuzz::checkNamesFile(file.error().message, path);
        return 0;
    }
    const GgufFile &gguf = **file;
    for (const auto &[key, value] : gguf.metadata()) {
        (void)value.asInt();
        (void)value.asFloat();
        (void)value.asString();
        (void)gguf.getStringArray(key);
        (void)gguf.getFloatArray(key);
        (void)gguf.getIntArray(key);
    }
    for (const GgufTensorInfo &info : gguf.tensors()) {
        (void)ggmlTypeName(info.type);
        fuzz::check(gguf.findTensor(info.name) != nullptr, "tensor " + info.name + " not found by name");
        if (info.byteSize > (1u << 20)) {
            continue; // the reader checked it against the file; reading it only costs time
        }
        auto values = gguf.readTensorF32(info);
        if (values) {
            fuzz::check(static_cast<int64_t>(values->size()) == info.numel(), "readTensorF32 size differs from numel");
        } else {
            fuzz::checkNamesFile(values.error().message, path);
        }
    }
    return 0;
}
