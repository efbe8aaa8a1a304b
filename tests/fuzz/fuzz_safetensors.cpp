// safetensors reader on arbitrary bytes: the header length, the JSON header, every entry's dtype, shape
// and offsets, then each small enough tensor read (readBytes, readF32).
#include "fuzz_support.h"

#include "sinkscope/format/safetensors.h"

using namespace sinkscope;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const std::string path = fuzz::writeScratch(".safetensors", data, size);
    auto model = SafetensorsModel::open(path);
    if (!model) {
        fuzz::checkNamesFile(model.error().message, path);
        return 0;
    }
    for (const SafetensorsTensor &t : (*model)->tensors()) {
        fuzz::check(t.end >= t.begin, "tensor " + t.name + " ends before it begins");
        fuzz::check((*model)->find(t.name) != nullptr, "tensor " + t.name + " not found by name");
        if (t.byteSize() > (1u << 20)) {
            continue;
        }
        auto bytes = (*model)->readBytes(t);
        if (bytes) {
            fuzz::check(bytes->size() == t.byteSize(), "readBytes size differs from the entry's offsets");
        }
        auto values = (*model)->readF32(t);
        if (values) {
            fuzz::check(static_cast<int64_t>(values->size()) == t.numel(), "readF32 size differs from numel");
        }
    }
    return 0;
}
