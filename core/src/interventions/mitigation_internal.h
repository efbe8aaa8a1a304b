// Helpers shared by the mitigation spec parser (mitigation_spec.cpp) and the control builder (mitigation.cpp).
#pragma once

#include "sinkscope/common/result.h"

#include <cstdio>
#include <string>

namespace sinkscope::mitigation_detail {

inline std::string formatNumber(double v)
{
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}

inline Error bad(const std::string &message)
{
    return makeError(ErrorCode::InvalidArgument, "mitigation spec: " + message);
}

} // namespace sinkscope::mitigation_detail
