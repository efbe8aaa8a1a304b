// Expected failures travel as values: a Result<T> holds either a T or an Error whose message names the
// file or value at fault. Broken invariants assert instead.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace sinkscope {

enum class ErrorCode {
    Io,              // file missing, unreadable, short read
    Corrupt,         // bad magic, truncated data, inconsistent sizes
    Unsupported,     // valid input the core does not handle (tensor type, architecture, version)
    InvalidArgument, // bad value from the user: empty prompt, prompt longer than the context, bad flag
    NotAModel,       // a file that loads but does not follow any model contract
    Cancelled,
    OutOfMemory,
    Internal, // a LibTorch error translated at the core boundary
};

const char *errorCodeName(ErrorCode code);

struct Error {
    ErrorCode code = ErrorCode::Internal;
    std::string message; // one line, names the file / value and the problem
};

template <typename T> class [[nodiscard]] Result
{
public:
    Result(T value) : m_v(std::move(value)) {}
    Result(Error error) : m_v(std::move(error)) {}

    bool ok() const { return m_v.index() == 0; }
    explicit operator bool() const { return ok(); }

    T &value() &
    {
        assert(ok());
        return std::get<0>(m_v);
    }
    const T &value() const &
    {
        assert(ok());
        return std::get<0>(m_v);
    }
    T &&value() &&
    {
        assert(ok());
        return std::get<0>(std::move(m_v));
    }
    T *operator->() { return &value(); }
    const T *operator->() const { return &value(); }
    T &operator*() & { return value(); }
    const T &operator*() const & { return value(); }

    const Error &error() const
    {
        assert(!ok());
        return std::get<1>(m_v);
    }

private:
    std::variant<T, Error> m_v;
};

struct Ok {
};
using Status = Result<Ok>;

inline Error makeError(ErrorCode code, std::string message)
{
    return Error{code, std::move(message)};
}

} // namespace sinkscope
