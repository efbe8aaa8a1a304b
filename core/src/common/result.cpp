#include "sinkscope/common/result.h"

namespace sinkscope {

const char *errorCodeName(ErrorCode code)
{
    switch (code) {
    case ErrorCode::Io:
        return "io";
    case ErrorCode::Corrupt:
        return "corrupt";
    case ErrorCode::Unsupported:
        return "unsupported";
    case ErrorCode::InvalidArgument:
        return "invalid argument";
    case ErrorCode::NotAModel:
        return "not a model";
    case ErrorCode::Cancelled:
        return "cancelled";
    case ErrorCode::OutOfMemory:
        return "out of memory";
    case ErrorCode::Internal:
        return "internal";
    }
    return "unknown";
}

} // namespace sinkscope
