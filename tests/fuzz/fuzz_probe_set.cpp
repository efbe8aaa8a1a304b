// Probe-set files (docs/probes.md) on arbitrary bytes: the JSON, the schema, the grounded template, and
// what the probes give the model (probeText, categories, answer matching).
#include "fuzz_support.h"

#include "sinkscope/probes/probes.h"

using namespace sinkscope;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const std::string text(reinterpret_cast<const char *>(data), size);
    auto set = parseProbeSet(text, "set.json");
    if (!set) {
        fuzz::checkNamesFile(set.error().message, "set.json");
        return 0;
    }
    (void)set->categories();
    for (const Probe &probe : set->probes) {
        (void)probeText(probe);
        (void)matchAnswer(probe.answers.empty() ? text : probe.answers.front(), probe.answers, true);
        (void)matchAnswer(text, probe.answers, false);
    }
    return 0;
}
