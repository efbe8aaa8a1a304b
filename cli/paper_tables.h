// sinkscope-cli paper: published tables reproduced live (docs/profiles.md, "Paper tables").
//
// Each table has a data file, <data>/papers/<id>.json (papersDir(); resources/papers/README.md), with the
// citation, the paper's protocol and its published rows. A reproduction runs the table's protocol on
// the given models and returns its rows as JSON (the --json output) and as text next to the published
// rows; nothing it computes is stored.
#pragma once

#include "common.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sinkscope::cli {

// The published side of a table, as read from its data file.
struct PaperSource {
    std::string id;
    std::string file;                        // the file it was read from
    nlohmann::ordered_json data;             // the whole file
    std::string text(const char *key) const; // a string field, empty when absent
    // "Gu et al., When Attention Sink Emerges in Language Models: An Empirical View, ICLR 2025,
    // arXiv 2410.10781, Table 1 (App. C)"
    std::string citation() const;
};

// Reads <papersDir()>/<id>.json and checks the keys every table needs. Throws Failure naming the file.
PaperSource loadPaperSource(const std::string &id);

// A model a table runs on: what the user named (empty: the default model) and its loaded form.
struct PaperModel {
    std::string given; // --model as given; empty for the default model
    std::shared_ptr<const Model> model;
    std::string name;   // the model's own name
    std::string family; // architectureName
    std::string notice; // terms of use to show with its results (Gemma), else empty
};

// What every table's run takes.
struct PaperRequest {
    std::vector<PaperModel> models;
    std::optional<int64_t> samples; // --samples
    std::optional<int64_t> tokens;  // --tokens
    std::optional<int> cache;       // --cache (streamingllm-table1)
    std::string text;               // --text (streamingllm-table1)
    uint64_t seed = 0;
    int bootstrap = 1000;
};

// A reproduced table: "protocol" (as run), "models" (one object per model) and whatever the table adds.
// It becomes the "reproduced" object of the command's JSON.
struct PaperResult {
    nlohmann::ordered_json json;
};

// One reproducible table: its id, how long it takes, what it runs and how it prints.
struct PaperTable {
    const char *id;
    const char *duration; // for `paper LIST`: measured on SmolLM2-135M, 2 cores
    const char *options;  // the options it reads, for `paper LIST`
    PaperResult (*run)(const PaperSource &source, const PaperRequest &request, std::ostream &err);
    // Prints the protocol and the table from the command's whole JSON (`output["reproduced"]` is the
    // run's PaperResult::json) next to the published rows.
    void (*render)(const PaperSource &source, const nlohmann::ordered_json &output, std::ostream &out);
};

// In `paper LIST` order.
const std::vector<PaperTable> &paperTables();

PaperResult runStreamingTable1(const PaperSource &source, const PaperRequest &request, std::ostream &err);
void renderStreamingTable1(const PaperSource &source, const nlohmann::ordered_json &output, std::ostream &out);
PaperResult runGuTable1(const PaperSource &source, const PaperRequest &request, std::ostream &err);
void renderGuTable1(const PaperSource &source, const nlohmann::ordered_json &output, std::ostream &out);
PaperResult runSunMassive(const PaperSource &source, const PaperRequest &request, std::ostream &err);
void renderSunMassive(const PaperSource &source, const nlohmann::ordered_json &output, std::ostream &out);

// Shared by the renderers: "12.34" with `digits` decimals, "n/a" for NaN.
std::string fixed(double value, int digits);
// `text` padded to at least `width` characters, left-aligned / right-aligned (padLeft puts at least one
// space before a text that fills the width, so columns never run together).
std::string padRight(const std::string &text, size_t width);
std::string padLeft(const std::string &text, size_t width);
// JSON number or null for NaN / inf.
nlohmann::ordered_json jsonNumber(double value);

} // namespace sinkscope::cli
