// A dense row-major float array with its shape: the value type the core hands to callers instead of a
// torch::Tensor, so that ui/ and app/ compile without LibTorch headers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <numeric>
#include <vector>

namespace sinkscope {

struct FloatArray {
    std::vector<int64_t> shape; // row-major; an empty shape with one element is a scalar
    std::vector<float> data;

    int64_t numel() const { return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>()); }
    int64_t dim(size_t i) const { return shape.at(i); }
    bool empty() const { return data.empty(); }
};

} // namespace sinkscope
