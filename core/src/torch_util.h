// Private LibTorch helpers: conversions between torch::Tensor and FloatArray, and the translation of
// LibTorch exceptions into sinkscope::Error at the core boundary.
#pragma once

#include "sinkscope/common/array.h"
#include "sinkscope/common/result.h"
#include "sinkscope/runtime/memory.h"

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

// The last non-empty line: what a TorchScript interpreter error ends with ("RuntimeError: ..."), after
// the traceback through the archive's code.
inline std::string lastLine(const std::string &text)
{
    size_t end = text.size();
    while (end > 0) {
        const size_t start = text.rfind('\n', end - 1);
        const size_t from = start == std::string::npos ? 0 : start + 1;
        const std::string line = text.substr(from, end - from);
        if (line.find_first_not_of(" \t\r") != std::string::npos) {
            return line;
        }
        if (start == std::string::npos) {
            break;
        }
        end = start;
    }
    return text;
}

// A LibTorch error text as one line: allocation failures as OutOfMemory ("LibTorch could not allocate
// 2.1 GB"), TorchScript interpreter errors by their last line instead of the traceback, others by their first.
inline Error torchErrorText(const std::string &text, const std::string &context)
{
    const std::string prefix = context.empty() ? std::string() : context + ": ";
    const bool interpreter =
        text.find("The following operation failed in the TorchScript interpreter") != std::string::npos;
    const std::string line = interpreter ? lastLine(text) : firstLine(text);
    for (const char *marker : {"can't allocate memory", "not enough memory", "out of memory"}) {
        if (text.find(marker) == std::string::npos) {
            continue;
        }
        std::string what = "out of memory";
        const std::string tried = "tried to allocate ";
        if (const size_t at = text.find(tried); at != std::string::npos) {
            const std::string amount = text.substr(at + tried.size());
            const size_t digits = amount.find_first_not_of("0123456789");
            if (digits > 0 && digits != std::string::npos && digits < 20 && amount.compare(digits, 6, " bytes") == 0) {
                what += ": LibTorch could not allocate " + formatBytes(std::stoull(amount.substr(0, digits)));
            }
        }
        if (text.find("CUDA") != std::string::npos) {
            what = "the GPU is out of memory";
        }
        return makeError(ErrorCode::OutOfMemory, prefix + what + "; use fewer tokens or fewer attention maps");
    }
    return makeError(ErrorCode::Internal, prefix + line);
}

// A LibTorch exception as one line (torchErrorText).
inline Error torchError(const c10::Error &e, const std::string &context)
{
    return torchErrorText(e.what_without_backtrace(), context);
}

// Runs f(), turning LibTorch and allocation failures into one-line Errors that start with `context`.
template <typename F> auto guardTorch(const std::string &context, F &&f) -> decltype(f())
{
    try {
        return f();
    } catch (const c10::Error &e) {
        return torchError(e, context);
    } catch (const std::bad_alloc &) {
        return makeError(ErrorCode::OutOfMemory, context + ": out of memory; use fewer tokens or fewer attention maps");
    } catch (const std::exception &e) {
        // The TorchScript interpreter rethrows what failed inside it as a std::runtime_error.
        return torchErrorText(e.what(), context);
    }
}

} // namespace sinkscope::detail
