#pragma once

namespace sinkscope::detail {

// Applies defaultThreadSettings() once per process (thread safe). Called by Model::load.
void ensureRuntimeConfigured();

} // namespace sinkscope::detail
