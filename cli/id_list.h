// Lists written on the command line: integers ("1,2,3": token ids, positions) and mitigation spec lists.
// Plain text in, no model and no CLI11 (tests/fuzz/fuzz_cli_lists.cpp runs them on arbitrary bytes).
#pragma once

#include "cli_errors.h"

#include <cstdint>
#include <string>
#include <vector>

namespace sinkscope::cli {

// Whether `text` is a comma-separated list of integers; the bad piece in *bad.
bool isIdList(const std::string &text, std::string *bad);

// "1,2,3" -> integers (checked by idList at parse time).
std::vector<int64_t> parseIds(const std::string &text);

// Splits "a:x=1,y=2,b,c:z=3" into specs: a piece holding '=' before any ':' continues the spec before it.
// UsageError when the list is empty.
std::vector<std::string> splitSpecList(const std::string &text);

} // namespace sinkscope::cli
