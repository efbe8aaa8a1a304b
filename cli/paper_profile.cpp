// gu-table1 and sun-massive run on the sink-profile core (analysis/profile.h), which is not merged yet.
#include "paper_tables.h"

namespace sinkscope::cli {

PaperResult runGuTable1(const PaperSource &source, const PaperRequest &, std::ostream &)
{
    throw Failure{source.id + ": needs the sink-profile core (analysis/profile.h), not in this build yet"};
}

void renderGuTable1(const PaperSource &, const nlohmann::ordered_json &, std::ostream &) {}

PaperResult runSunMassive(const PaperSource &source, const PaperRequest &, std::ostream &)
{
    throw Failure{source.id + ": needs the sink-profile core (analysis/profile.h), not in this build yet"};
}

void renderSunMassive(const PaperSource &, const nlohmann::ordered_json &, std::ostream &) {}

} // namespace sinkscope::cli
