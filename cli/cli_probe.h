// sinkscope-cli probe: the probe set under several mitigation settings (docs/probes.md). cli.cpp parses
// the flags, loads the set and the model and calls runProbeCommand.
#pragma once

#include "sinkscope/interventions/mitigation.h"
#include "sinkscope/model/model.h"
#include "sinkscope/probes/probes.h"

#include <iosfwd>
#include <string>
#include <vector>

namespace sinkscope::cli {

struct ProbeCommandOptions {
    std::vector<MitigationSpec> settings; // the first is the reference for flips
    ProbeOptions probe;
    bool json = false;
    bool detector = false;
    bool sinkExcluded = false; // detector features: LR' instead of LR
    std::string outDir;        // scores_<i>.csv, detector.json, detector_weights.csv
};

// Prints the side-by-side table (or JSON). Failures throw std::runtime_error with a one-line message.
int runProbeCommand(const Model &model, const ProbeSet &set, const ProbeCommandOptions &options, std::ostream &out,
                    std::ostream &err);

} // namespace sinkscope::cli
