// Mitigation specs: parsing and printing (no model needed; mitigation.cpp builds the controls).
#include "sinkscope/interventions/mitigation.h"

#include "mitigation_internal.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>
#include <regex>
#include <sstream>

namespace sinkscope {

namespace {

using mitigation_detail::bad;
using mitigation_detail::formatNumber;

const std::regex &scopeItemPattern()
{
    static const std::regex re(R"(^(?:L(\d+)(?:-(\d+))?)?(?:H(\d+)(?:-(\d+))?)?$)");
    return re;
}

bool looksLikeScopeItem(const std::string &s)
{
    return !s.empty() && (s[0] == 'L' || s[0] == 'H') && std::regex_match(s, scopeItemPattern());
}

Result<HeadScope::Item> parseScopeItem(const std::string &s)
{
    std::smatch m;
    if (s.empty() || !std::regex_match(s, m, scopeItemPattern())) {
        return bad("'" + s + "' is not a head item (L2H3, L2, L2-5, L2-5H0-3 or H3)");
    }
    // Digits only (the pattern), but maybe more than an int holds.
    for (int i = 1; i <= 4; ++i) {
        int value = 0;
        const std::string digits = m[i].str();
        if (m[i].matched && std::from_chars(digits.data(), digits.data() + digits.size(), value).ec != std::errc{}) {
            return bad("'" + s + "': " + digits + " is too large for a layer or head number");
        }
    }
    auto num = [&](int i) { return m[i].matched ? std::stoi(m[i].str()) : -1; };
    HeadScope::Item item;
    item.firstLayer = num(1);
    item.lastLayer = m[2].matched ? num(2) : item.firstLayer;
    item.firstHead = num(3);
    item.lastHead = m[4].matched ? num(4) : item.firstHead;
    if (item.lastLayer < item.firstLayer || item.lastHead < item.firstHead) {
        return bad("'" + s + "': a range must go upwards");
    }
    return item;
}

Result<MitigationStep> parseStep(const std::string &text)
{
    const auto colon = text.find(':');
    const std::string name = text.substr(0, colon);
    const MitigationMethodInfo *def = findMitigationMethod(name);
    if (!def) {
        return bad("unknown method '" + name + "' (known: none, " + mitigationMethodNames() + ")");
    }
    MitigationStep step;
    step.method = def->method;
    if (colon != std::string::npos) {
        const std::string rest = text.substr(colon + 1);
        if (rest.empty()) {
            return bad("'" + text + "': nothing after ':'");
        }
        std::stringstream ss(rest);
        std::string part;
        while (std::getline(ss, part, ',')) {
            const auto eq = part.find('=');
            if (eq == std::string::npos || eq == 0 || eq + 1 == part.size()) {
                return bad("'" + part + "' in '" + text + "' is not name=value");
            }
            const std::string key = part.substr(0, eq), value = part.substr(eq + 1);
            if (key == "heads") {
                if (!def->takesHeads) {
                    return bad("'" + name + "' applies to every head; it takes no heads=");
                }
                if (step.scoped) {
                    return bad("heads= given twice in '" + text + "'");
                }
                std::stringstream hs(value);
                std::string item;
                while (std::getline(hs, item, '+')) {
                    auto parsed = parseScopeItem(item);
                    if (!parsed) {
                        return parsed.error();
                    }
                    step.scope.items.push_back(*parsed);
                }
                step.scoped = true;
                continue;
            }
            const MitigationParam *p = def->param(key);
            if (!p) {
                std::string known;
                for (const auto &candidate : def->params) {
                    known += (known.empty() ? "" : ", ") + candidate.name;
                }
                if (def->takesHeads) {
                    known += (known.empty() ? "" : ", ") + std::string("heads");
                }
                return bad("'" + name + "' has no parameter '" + key + "'" +
                           (known.empty() ? std::string(" (it takes none)") : " (it takes " + known + ")"));
            }
            if (step.params.count(key)) {
                return bad("'" + key + "' given twice in '" + text + "'");
            }
            double v = 0;
            if (!p->choices.empty()) {
                const auto it = std::find(p->choices.begin(), p->choices.end(), value);
                if (it == p->choices.end()) {
                    return bad(name + ": " + key + " must be " + p->choicesText() + ", not '" + value + "'");
                }
                v = static_cast<double>(it - p->choices.begin());
            } else {
                char *end = nullptr;
                v = std::strtod(value.c_str(), &end);
                if (*end != '\0' || !std::isfinite(v)) {
                    return bad(name + ": " + key + "='" + value + "' is not a number");
                }
                if (v < p->min || v > p->max || (p->integer && v != std::floor(v))) {
                    return bad(name + ": " + key + "=" + value + " is outside " +
                               (p->integer ? "the integers in " : "") + "[" + formatNumber(p->min) + ", " +
                               formatNumber(p->max) + "]");
                }
            }
            step.params[key] = v;
        }
    }
    for (const auto &p : def->params) {
        if (!step.params.count(p.name)) {
            if (p.required) {
                return bad("'" + name + "' needs " + p.name + "=" + p.placeholder + " (" + def->usage() + ")");
            }
            step.params[p.name] = p.defaultValue;
        }
    }
    return step;
}

} // namespace

bool HeadScope::contains(int layer, int head) const
{
    if (items.empty()) {
        return true;
    }
    for (const auto &i : items) {
        const bool layerOk = i.firstLayer < 0 || (layer >= i.firstLayer && layer <= i.lastLayer);
        const bool headOk = i.firstHead < 0 || (head >= i.firstHead && head <= i.lastHead);
        if (layerOk && headOk) {
            return true;
        }
    }
    return false;
}

std::string HeadScope::toString() const
{
    std::string s;
    for (const auto &i : items) {
        s += s.empty() ? "" : "+";
        if (i.firstLayer >= 0) {
            s += "L" + std::to_string(i.firstLayer) +
                 (i.lastLayer != i.firstLayer ? "-" + std::to_string(i.lastLayer) : "");
        }
        if (i.firstHead >= 0) {
            s +=
                "H" + std::to_string(i.firstHead) + (i.lastHead != i.firstHead ? "-" + std::to_string(i.lastHead) : "");
        }
    }
    return s;
}

std::string MitigationStep::toString() const
{
    const MitigationMethodInfo &def = mitigationMethod(method);
    std::string s = def.name;
    std::string params;
    for (const auto &p : def.params) {
        const double v = this->params.at(p.name);
        if (method == MitigationMethod::Resid && p.name == "layer" && v < 0) {
            continue; // automatic: the first layer with massive activations
        }
        params += "," + p.name + "=" + p.valueText(v);
    }
    if (scoped) {
        params += ",heads=" + scope.toString();
    }
    if (!params.empty()) {
        s += ":" + params.substr(1);
    }
    return s;
}

bool MitigationSpec::hasStreaming() const
{
    return std::any_of(steps.begin(), steps.end(),
                       [](const auto &s) { return s.method == MitigationMethod::Streaming; });
}

std::string MitigationSpec::toString() const
{
    if (steps.empty()) {
        return "none";
    }
    std::string s;
    for (const auto &step : steps) {
        s += (s.empty() ? "" : "+") + step.toString();
    }
    return s;
}

Result<MitigationSpec> parseMitigation(const std::string &text)
{
    if (text.empty()) {
        return bad("empty (use 'none' for the baseline)");
    }
    if (text.find_first_of(" \t\n") != std::string::npos) {
        return bad("'" + text + "' contains whitespace");
    }
    MitigationSpec spec;
    if (text == "none") {
        return spec;
    }
    // "+" joins steps, but also continues a heads= list: a piece that is a head item belongs to the
    // step before it.
    std::vector<std::string> pieces;
    std::stringstream ss(text);
    std::string piece;
    while (std::getline(ss, piece, '+')) {
        if (looksLikeScopeItem(piece) && !pieces.empty() && pieces.back().find("heads=") != std::string::npos) {
            pieces.back() += "+" + piece;
        } else {
            pieces.push_back(piece);
        }
    }
    if (text.back() == '+') {
        pieces.emplace_back();
    }
    for (const auto &p : pieces) {
        if (p.empty()) {
            return bad("'" + text + "' has an empty step (a stray '+')");
        }
        if (p == "none") {
            return bad("'none' cannot be combined with other methods");
        }
        auto step = parseStep(p);
        if (!step) {
            return step.error();
        }
        spec.steps.push_back(std::move(step).value());
    }
    return spec;
}

} // namespace sinkscope
