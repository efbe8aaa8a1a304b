// Private LibTorch helpers: conversions between torch::Tensor and FloatArray, and the translation of
// LibTorch exceptions into sinkscope::Error at the core boundary.
#pragma once

#include "sinkscope/common/array.h"
#include "sinkscope/common/result.h"

#include <torch/script.h>

#include <cstring>
#include <new>
#include <string>

namespace sinkscope::detail {

inline FloatArray toFloatArray(const at::Tensor &t)
{
    const at::Tensor c = t.detach().to(at::kCPU, at::kFloat).contiguous();
    FloatArray a;
    a.shape.assign(c.sizes().begin(), c.sizes().end());
    a.data.resize(static_cast<size_t>(c.numel()));
    if (c.numel() > 0) {
        std::memcpy(a.data.data(), c.data_ptr<float>(), a.data.size() * sizeof(float));
    }
    return a;
}

inline at::Tensor fromFloatArray(const FloatArray &a)
{
    auto t = torch::empty(at::IntArrayRef(a.shape), torch::kFloat);
    if (!a.data.empty()) {
        std::memcpy(t.data_ptr<float>(), a.data.data(), a.data.size() * sizeof(float));
    }
    return t;
}

// Runs f(), turning LibTorch and allocation failures into Errors that start with `context`.
// The first non-empty line of a LibTorch message (they often start with a newline).
inline std::string firstLine(const std::string &text)
{
    size_t start = 0;
    while (start < text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string::npos) {
            end = text.size();
        }
        const std::string line = text.substr(start, end - start);
        if (line.find_first_not_of(" \t\r") != std::string::npos) {
            return line;
        }
        start = end + 1;
    }
    return text;
}

template <typename F> auto guardTorch(const std::string &context, F &&f) -> decltype(f())
{
    try {
        return f();
    } catch (const c10::Error &e) {
        return makeError(ErrorCode::Internal, context + ": " + firstLine(e.what_without_backtrace()));
    } catch (const std::bad_alloc &) {
        return makeError(ErrorCode::OutOfMemory, context + ": out of memory");
    } catch (const std::exception &e) {
        return makeError(ErrorCode::Internal, context + ": " + e.what());
    }
}

} // namespace sinkscope::detail
