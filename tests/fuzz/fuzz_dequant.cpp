// Dequantization of raw blocks: the first byte picks the ggml type, the rest is whole blocks of it
// (dequantize), and the HF MXFP4 layout (dequantMxfp4Hf) on the same bytes.
#include "fuzz_support.h"

#include "sinkscope/format/gguf.h"

#include <vector>

using namespace sinkscope;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    const auto type = static_cast<GgmlType>(data[0] % 40);
    const uint8_t *raw = data + 1;
    const size_t rawSize = size - 1;
    int64_t blockElements = 0, blockBytes = 0;
    if (ggmlBlockGeometry(type, blockElements, blockBytes) && blockBytes > 0) {
        const int64_t blocks = static_cast<int64_t>(rawSize) / blockBytes;
        // An exact-size copy: ASan then sees any read past the last block.
        std::vector<uint8_t> src(raw, raw + blocks * blockBytes);
        std::vector<float> dst(static_cast<size_t>(blocks * blockElements));
        (void)dequantize(type, src.data(), blocks * blockElements, dst.data());
        if (blockElements > 1) {
            fuzz::check(!dequantize(type, src.data(), blockElements + 1, dst.data()),
                        "dequantize accepted a count that is not whole blocks");
        }
    }
    // HF MXFP4: groups of 16 block bytes plus one scale byte each.
    const int64_t groups = static_cast<int64_t>(rawSize / 17);
    if (groups > 0) {
        std::vector<uint8_t> blocks(raw, raw + groups * 16);
        std::vector<uint8_t> scales(raw + groups * 16, raw + groups * 17);
        const std::vector<float> out = dequantMxfp4Hf(blocks.data(), scales.data(), 1, groups);
        fuzz::check(static_cast<int64_t>(out.size()) == groups * 32, "dequantMxfp4Hf size");
    }
    return 0;
}
