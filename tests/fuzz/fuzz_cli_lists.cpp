// The lists sinkscope-cli reads from its arguments: id lists (--ids, --sinks: isIdList, parseIds),
// mitigation spec lists (--mitigation, --compare: splitSpecList) and figure formats (parseFormatList).
// An id list that isIdList accepts holds only integers that parseIds reads exactly.
#include "fuzz_support.h"

#include "cli_figures.h"
#include "id_list.h"

#include <cerrno>
#include <cstdlib>
#include <sstream>

using namespace sinkscope;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const std::string text(reinterpret_cast<const char *>(data), size);
    std::string bad;
    if (cli::isIdList(text, &bad)) {
        // Every piece it accepts is an integer parseIds reads exactly (no piece out of int64's range).
        std::stringstream ss(text);
        for (std::string part; std::getline(ss, part, ',');) {
            errno = 0;
            (void)std::strtoll(part.c_str(), nullptr, 10);
            fuzz::check(errno == 0, "isIdList accepted '" + part + "', which is out of range");
        }
        (void)cli::parseIds(text);
    }
    try {
        const auto specs = cli::splitSpecList(text);
        fuzz::check(!specs.empty(), "splitSpecList gave no spec without an error");
    } catch (const cli::UsageError &) {
    }
    std::string problem;
    const auto formats = cli::parseFormatList(text, &problem);
    fuzz::check(!formats.empty() || !problem.empty(), "parseFormatList gave nothing and no problem");
    return 0;
}
