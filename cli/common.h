// What the commands of sinkscope-cli share: the errors that set the exit code, the flag parser, loading
// the model (--model, --device), the prompt's tokens (--prompt, --ids, --bos) and token display.
#pragma once

#include "sinkscope/model/model.h"
#include "sinkscope/runtime/device.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace sinkscope::cli {

// A bad command line: exit code 2, one line that points to the command's --help.
struct UsageError {
    std::string message;
};

// The command could not do its work (bad file, model error): exit code 1.
struct Failure {
    std::string message;
};

// A small flag parser: --name value, --name=value, -n value, and boolean switches.
class Args
{
public:
    Args(std::vector<std::string> args, std::vector<std::string> switches, std::vector<std::string> valued)
    {
        for (size_t i = 0; i < args.size(); ++i) {
            std::string a = args[i];
            if (a.rfind("-", 0) == 0 && a != "-") {
                std::string value;
                bool hasValue = false;
                if (auto eq = a.find('='); eq != std::string::npos) {
                    value = a.substr(eq + 1);
                    a = a.substr(0, eq);
                    hasValue = true;
                }
                if (std::find(switches.begin(), switches.end(), a) != switches.end()) {
                    if (hasValue) {
                        throw UsageError{"option " + a + " takes no value"};
                    }
                    m_flags[a] = "1";
                } else if (std::find(valued.begin(), valued.end(), a) != valued.end()) {
                    if (!hasValue) {
                        if (i + 1 >= args.size()) {
                            throw UsageError{"option " + a + " needs a value"};
                        }
                        value = args[++i];
                    }
                    m_flags[a] = value;
                } else {
                    throw UsageError{"unknown option " + a};
                }
            } else {
                m_positional.push_back(a);
            }
        }
    }
    bool has(const std::string &k) const { return m_flags.count(k) > 0; }
    std::optional<std::string> get(const std::string &k) const
    {
        auto it = m_flags.find(k);
        return it == m_flags.end() ? std::nullopt : std::optional(it->second);
    }
    const std::vector<std::string> &positional() const { return m_positional; }

    double number(const std::string &k, double fallback, double lo, double hi) const
    {
        auto v = get(k);
        if (!v) {
            return fallback;
        }
        char *end = nullptr;
        const double d = std::strtod(v->c_str(), &end);
        if (v->empty() || *end != '\0' || !std::isfinite(d) || d < lo || d > hi) {
            std::ostringstream s;
            s << "option " << k << ": '" << *v << "' is not a number in [" << lo << ", " << hi << "]";
            throw UsageError{s.str()};
        }
        return d;
    }

private:
    std::map<std::string, std::string> m_flags;
    std::vector<std::string> m_positional;
};

// --device (default cpu): where the model and the statistics kernels run (sinkscope/device.h).
DevicePlan chosenDevice(const Args &a);

// --model, or the default model (converted once). `plan` (optional) receives the --device plan the model
// was loaded by (the registry is queried once).
std::shared_ptr<const Model> loadModel(const Args &a, std::ostream &err, DevicePlan *plan = nullptr);

void warnIfSlowBlas(std::ostream &err);

// "1,2,3" -> token ids.
std::vector<int64_t> parseIds(const std::string &text);

// --bos / --no-bos, or the tokenizer's own choice.
std::optional<bool> bosOption(const Args &a);

void requirePromptOrIds(const Args &a);

// The tokens of --prompt (tokenized) or --ids.
std::vector<int64_t> promptTokens(const Model &model, const Args &a);

// Token text for display: control characters escaped so one token stays on one line.
std::string visible(const std::string &s);

std::string tokenString(const Model &model, int64_t id);

// JSON strings must be valid UTF-8; a token may hold a partial sequence.
std::string jsonSafe(const std::string &s);

// Splits "a:x=1,y=2,b,c:z=3" into specs: a piece holding '=' before any ':' continues the spec before it.
std::vector<std::string> splitSpecList(const std::string &text);

} // namespace sinkscope::cli
