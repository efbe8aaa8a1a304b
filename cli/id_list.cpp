#include "id_list.h"

#include <cerrno>
#include <cstdlib>
#include <sstream>

namespace sinkscope::cli {

bool isIdList(const std::string &text, std::string *bad)
{
    std::stringstream ss(text);
    for (std::string part; std::getline(ss, part, ',');) {
        char *end = nullptr;
        errno = 0;
        std::strtoll(part.c_str(), &end, 10);
        // ERANGE: more digits than int64 holds, which parseIds would turn into its largest value.
        if (part.empty() || *end != '\0' || errno == ERANGE) {
            *bad = part;
            return false;
        }
    }
    return true;
}

std::vector<int64_t> parseIds(const std::string &text)
{
    std::vector<int64_t> ids;
    std::stringstream ss(text);
    for (std::string part; std::getline(ss, part, ',');) {
        ids.push_back(std::strtoll(part.c_str(), nullptr, 10));
    }
    return ids;
}

std::vector<std::string> splitSpecList(const std::string &text)
{
    std::vector<std::string> specs;
    std::stringstream ss(text);
    std::string piece;
    while (std::getline(ss, piece, ',')) {
        const auto eq = piece.find('='), colon = piece.find(':');
        if (!specs.empty() && eq != std::string::npos && (colon == std::string::npos || eq < colon)) {
            specs.back() += "," + piece;
        } else {
            specs.push_back(piece);
        }
    }
    if (specs.empty()) {
        throw UsageError{"--mitigation is empty"};
    }
    return specs;
}

} // namespace sinkscope::cli
