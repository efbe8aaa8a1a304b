#include "commands.h"
#include "common.h"

#include "sinkscope/interventions/mitigation_registry.h"

#include <nlohmann/json.hpp>

namespace sinkscope::cli {
namespace {

struct MitigationsOptions {
    bool markdown = false, json = false;
};

constexpr const char *kProse =
    R"(Lists every mitigation method a spec (compare --mitigation, probe --compare, the window's Mitigations
tab) can name: its parameters with their ranges and defaults, the heads it covers without heads=, the
model archives it needs and its source. --markdown prints the table of docs/mitigations.md; --json the
same registry as data (methods[i].name, .params[j].min/.max/.default/.required/.choices, ...).
)";

int runMitigations(const MitigationsOptions &o, std::ostream &out)
{
    if (o.markdown) {
        out << mitigationMarkdownTable();
        return 0;
    }
    if (!o.json) {
        out << "Spec: none | step+step..., step = method[:param=value,...,heads=SCOPE] (docs/mitigations.md)\n\n"
            << mitigationReference();
        return 0;
    }
    nlohmann::json methods = nlohmann::json::array();
    for (const auto &m : mitigationMethods()) {
        nlohmann::json params = nlohmann::json::array();
        for (const auto &p : m.params) {
            nlohmann::json jp{{"name", p.name},
                              {"required", p.required},
                              {"min", p.min},
                              {"max", p.max},
                              {"integer", p.integer},
                              {"choices", p.choices},
                              {"description", p.description}};
            jp["default"] = p.required ? nlohmann::json() : nlohmann::json(p.defaultValue);
            params.push_back(std::move(jp));
        }
        nlohmann::json families = nlohmann::json::array();
        for (auto arch : m.families) {
            families.push_back(architectureName(arch));
        }
        methods.push_back({{"name", m.name},
                           {"code", m.code},
                           {"title", m.title},
                           {"usage", m.usage()},
                           {"summary", m.summary},
                           {"source", m.source},
                           {"params", params},
                           {"takes_heads", m.takesHeads},
                           {"default_scope", m.defaultScope},
                           {"min_contract", m.minContract},
                           {"families", families}});
    }
    out << nlohmann::json{{"methods", methods}}.dump(2) << "\n";
    return 0;
}

} // namespace

Command addMitigationsCommand(CLI::App &cli)
{
    auto o = std::make_shared<MitigationsOptions>();
    CLI::App *cmd = cli.add_subcommand("mitigations",
                                       "the mitigation methods: parameters, ranges, defaults, head scopes and sources");
    cmd->footer(kProse);
    auto *markdown = cmd->add_flag("--markdown", o->markdown, "print the table of docs/mitigations.md");
    cmd->add_flag("--json", o->json, "print the registry as JSON")->excludes(markdown);
    return {cmd, [o](std::ostream &out, std::ostream &) { return runMitigations(*o, out); }};
}

} // namespace sinkscope::cli
