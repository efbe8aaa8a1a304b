// One CSV dialect for every file SinkScope writes (RFC 4180): fields separated by ',', rows ended by
// '\n'; a field is quoted when it holds ',', '"', a line break or leading or trailing whitespace (which
// readers would otherwise trim), with '"' doubled inside. Used by heads.csv, the probe scores, stream-ppl
// --csv and the window's data exports.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sinkscope {

std::string csvField(std::string_view text);
// The fields quoted as needed, joined by ',', ending in '\n'.
std::string csvRow(const std::vector<std::string> &fields);

} // namespace sinkscope
