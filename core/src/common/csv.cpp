#include "sinkscope/common/csv.h"

namespace sinkscope {

namespace {

bool isSpace(char c)
{
    return c == ' ' || c == '\t';
}

} // namespace

std::string csvField(std::string_view text)
{
    const bool quote = text.find_first_of(",\"\n\r") != std::string_view::npos ||
                       (!text.empty() && (isSpace(text.front()) || isSpace(text.back())));
    if (!quote) {
        return std::string(text);
    }
    std::string q = "\"";
    for (char c : text) {
        q += c;
        if (c == '"') {
            q += '"';
        }
    }
    return q + "\"";
}

std::string csvRow(const std::vector<std::string> &fields)
{
    std::string row;
    for (size_t i = 0; i < fields.size(); ++i) {
        row += (i ? "," : "") + csvField(fields[i]);
    }
    return row + "\n";
}

} // namespace sinkscope
