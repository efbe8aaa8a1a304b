// The TorchScript code that model archives carry: one class per architecture family, assembled from
// shared pieces (attention step, controls, masks) and an architecture-specific forward. See
// docs/model-format.md for the forward(input_ids, controls) contract.
#pragma once

#include "sinkscope/model/model_config.h"

#include <string>

namespace sinkscope::detail {

std::string torchScriptSource(Architecture arch);

} // namespace sinkscope::detail
