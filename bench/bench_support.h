// Shared by the benchmark programs: the default model, loaded once, and deterministic token sequences.
#pragma once

#include "sinkscope/model/model.h"
#include "sinkscope/runtime/memory.h"
#include "sinkscope/runtime/paths.h"

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace sinkscope::bench {

// The default model (converted on first use); exits with the error when it cannot be had.
// The load average (1, 5, 15 minutes) as /proc/loadavg gives it: quoted beside every measurement.
inline std::string loadAverage()
{
    std::ifstream in("/proc/loadavg");
    std::string a, b, c;
    in >> a >> b >> c;
    return a + " " + b + " " + c;
}

// VmRSS, VmHWM, ... of this process in MiB.
inline double statusMiB(const char *key)
{
    return static_cast<double>(processStatusBytes(key)) / (1024.0 * 1024.0);
}

inline std::shared_ptr<const Model> defaultModel()
{
    static std::shared_ptr<const Model> model = [] {
        auto path = ensureDefaultModel();
        if (!path) {
            std::cerr << path.error().message << "\n";
            std::exit(1);
        }
        auto m = Model::load(*path);
        if (!m) {
            std::cerr << m.error().message << "\n";
            std::exit(1);
        }
        return *m;
    }();
    return model;
}

// n token ids spread over the vocabulary, the same every run.
inline std::vector<int64_t> syntheticTokens(int64_t n, int64_t vocab)
{
    std::vector<int64_t> ids(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
        ids[static_cast<size_t>(i)] = 100 + (i * 7919) % (vocab - 200);
    }
    return ids;
}

} // namespace sinkscope::bench
