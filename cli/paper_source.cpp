#include "paper_tables.h"

#include "sinkscope/runtime/paths.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

namespace sinkscope::cli {

const std::vector<PaperTable> &paperTables()
{
    static const std::vector<PaperTable> tables = {
        {"gu-table1",
         "300 passes of 64 tokens per model: SmolLM2-135M about 2 min, Gemma 3 270M about 3.5 min (2 cores, load 4-5)",
         "--samples N (100), --tokens T (64), --seed S, --model M...", runGuTable1, renderGuTable1},
        {"streamingllm-table1",
         "3 x 1000 tokens decoded one by one at cache 128 per model: SmolLM2-135M 3.5 min of CPU (10 min at "
         "load 5), Gemma 3 270M 7.7 min of CPU (15 min at load 5)",
         "--text FILE (GPL-3), --tokens N (1000), --cache C (128), --model M...", runStreamingTable1,
         renderStreamingTable1},
        {"sun-massive",
         "10 passes of 256 tokens per model: SmolLM2-135M about 15 s, Gemma 3 270M about 50 s (2 cores, load 4-5)",
         "--samples N (10), --tokens T (256), --seed S, --model M...", runSunMassive, renderSunMassive},
    };
    return tables;
}

std::string PaperSource::text(const char *key) const
{
    const auto it = data.find(key);
    if (it == data.end()) {
        return {};
    }
    return it->is_string() ? it->get<std::string>() : it->dump();
}

std::string PaperSource::citation() const
{
    // "Gu et al." from the first author's surname.
    const std::string authors = text("authors");
    std::string first = authors.substr(0, authors.find(','));
    const size_t space = first.rfind(' ');
    std::string who = space == std::string::npos ? first : first.substr(space + 1);
    if (authors.find(',') != std::string::npos) {
        who += " et al.";
    }
    return who + ", " + text("title") + ", " + text("venue") + " " + text("year") + ", arXiv " + text("arxiv") + ", " +
           text("table");
}

PaperSource loadPaperSource(const std::string &id)
{
    PaperSource source;
    source.id = id;
    source.file = (std::filesystem::path(papersDir()) / (id + ".json")).string();
    std::ifstream in(source.file, std::ios::binary);
    if (!in) {
        throw Failure{source.file + ": the published table is missing (set SINKSCOPE_PAPERS or reinstall)"};
    }
    try {
        source.data = nlohmann::ordered_json::parse(in);
    } catch (const nlohmann::json::exception &e) {
        throw Failure{source.file + ": not JSON (" + std::string(e.what()) + ")"};
    }
    for (const char *key :
         {"id", "title", "authors", "venue", "year", "arxiv", "url", "table", "protocol", "columns", "rows"}) {
        if (!source.data.is_object() || !source.data.contains(key)) {
            throw Failure{source.file + ": lacks the key '" + key + "'"};
        }
    }
    if (source.data["id"] != id) {
        throw Failure{source.file + ": its id is " + source.data["id"].dump() + ", not \"" + id + "\""};
    }
    if (!source.data["rows"].is_array() || source.data["rows"].empty()) {
        throw Failure{source.file + ": 'rows' is not a non-empty array"};
    }
    return source;
}

std::string fixed(double value, int digits)
{
    if (std::isnan(value)) {
        return "n/a";
    }
    std::ostringstream s;
    s << std::fixed << std::setprecision(digits) << value;
    return s.str();
}

std::string padRight(const std::string &text, size_t width)
{
    return text.size() >= width ? text : text + std::string(width - text.size(), ' ');
}

std::string padLeft(const std::string &text, size_t width)
{
    return text.size() >= width ? " " + text : std::string(width - text.size(), ' ') + text; // never glued
}

nlohmann::ordered_json jsonNumber(double value)
{
    return std::isfinite(value) ? nlohmann::ordered_json(value) : nlohmann::ordered_json();
}

} // namespace sinkscope::cli
