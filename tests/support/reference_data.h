// Comparing outputs with reference JSON (tests/data/families/*/reference.json and the like).
#pragma once

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace sinkscope::testing {

// A nested JSON array of numbers, row-major, as one vector.
inline std::vector<double> flattenJson(const nlohmann::json &j)
{
    std::vector<double> out;
    if (j.is_array()) {
        for (const auto &x : j) {
            auto part = flattenJson(x);
            out.insert(out.end(), part.begin(), part.end());
        }
    } else {
        out.push_back(j.get<double>());
    }
    return out;
}

// Largest |ours - theirs|; infinity when the sizes differ.
inline double maxAbsDiff(const std::vector<float> &ours, const std::vector<double> &theirs)
{
    if (ours.size() != theirs.size()) {
        return std::numeric_limits<double>::infinity();
    }
    double d = 0;
    for (size_t i = 0; i < ours.size(); ++i) {
        d = std::max(d, std::abs(static_cast<double>(ours[i]) - theirs[i]));
    }
    return d;
}

} // namespace sinkscope::testing
