// Converted tiny models for the suites that link sinkscope::core (core_tests).
#pragma once

#include "sinkscope/model/convert.h"
#include "sinkscope/model/model.h"
#include "support/test_paths.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace sinkscope::testing {

// Writes `name`.gguf with `write` (writeTinyLlamaGguf / writeTinyGpt2Gguf) into `dir`, converts it to
// `name`.pt and loads it; null (with a test failure recorded) when any step fails.
inline std::shared_ptr<const Model> convertAndLoadTiny(const TempDir &dir, const std::string &name,
                                                       void (*write)(const std::string &))
{
    const auto gguf = dir.file(name + ".gguf"), pt = dir.file(name + ".pt");
    write(gguf);
    Status s = convertGguf(gguf, pt);
    EXPECT_TRUE(s) << s.error().message;
    auto m = Model::load(pt);
    EXPECT_TRUE(m) << m.error().message;
    return m ? *m : nullptr;
}

} // namespace sinkscope::testing
