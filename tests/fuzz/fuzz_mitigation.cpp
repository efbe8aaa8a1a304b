// Mitigation specs (mitigation.h grammar) on arbitrary bytes. A spec that parses prints its canonical
// form (toString), which must parse again to the same form.
#include "fuzz_support.h"

#include "sinkscope/interventions/mitigation.h"

using namespace sinkscope;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const std::string text(reinterpret_cast<const char *>(data), size);
    auto spec = parseMitigation(text);
    if (!spec) {
        return 0;
    }
    (void)spec->hasStreaming();
    for (const MitigationStep &step : spec->steps) {
        (void)step.scope.contains(0, 0);
        (void)step.scope.contains(3, 7);
    }
    const std::string canonical = spec->toString();
    auto again = parseMitigation(canonical);
    if (!again) {
        fuzz::fail("'" + canonical + "' (toString of '" + text + "') does not parse: " + again.error().message);
    }
    fuzz::check(again->toString() == canonical, "toString differs after a round trip: " + canonical);
    return 0;
}
