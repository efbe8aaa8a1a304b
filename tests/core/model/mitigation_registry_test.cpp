// The mitigation registry is the one table of methods: every enumerator has a row, the spec parser
// accepts exactly what the rows say (names, parameters, ranges, defaults, scopes), validateMitigation
// applies their contract and family rules, every control key they name is one the archives read, and
// docs/mitigations.md's table is the one the registry prints. (The CLI's help and the window's builder
// are checked in cli_test.cpp and mitigation_view_test.cpp.)
#include "model/torchscript_source.h"
#include "sinkscope/interventions/mitigation.h"
#include "sinkscope/model/control_keys.h"
#include "support/test_paths.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

using namespace sinkscope;

namespace {

// A step naming every parameter at `value(p)`, plus heads= when the method takes it.
std::string stepText(const MitigationMethodInfo &m, double (*value)(const MitigationParam &), bool heads)
{
    std::string s = m.name, params;
    for (const auto &p : m.params) {
        params += (params.empty() ? "" : ",") + p.name + "=" + p.valueText(value(p));
    }
    if (heads && m.takesHeads) {
        params += (params.empty() ? "" : ",") + std::string("heads=L1H0");
    }
    return params.empty() ? s : s + ":" + params;
}

double example(const MitigationParam &p)
{
    return p.example;
}

} // namespace

TEST(MitigationRegistry, EveryMethodHasOneRowWithAUniqueName)
{
    std::set<std::string> names;
    for (int i = 0; i <= static_cast<int>(MitigationMethod::MoveToBos); ++i) {
        const auto method = static_cast<MitigationMethod>(i);
        const MitigationMethodInfo &info = mitigationMethod(method);
        EXPECT_EQ(info.method, method) << i;
        EXPECT_TRUE(names.insert(info.name).second) << info.name;
        ASSERT_EQ(findMitigationMethod(info.name), &info);
        EXPECT_FALSE(info.title.empty() || info.summary.empty() || info.description.empty() || info.source.empty() ||
                     info.hook.empty() || info.expectation.empty() || info.defaultScope.empty() || info.code.empty())
            << info.name;
        EXPECT_FALSE(info.families.empty()) << info.name;
        EXPECT_TRUE(info.minContract >= 1 && info.minContract <= kContractVersion) << info.name;
        for (const auto &p : info.params) {
            EXPECT_LE(p.min, p.max) << info.name << "." << p.name;
            EXPECT_TRUE(p.example >= p.min && p.example <= p.max) << info.name << "." << p.name;
            if (!p.required) {
                EXPECT_EQ(p.defaultValue, p.example) << info.name << "." << p.name;
            } else {
                EXPECT_FALSE(p.placeholder.empty()) << info.name << "." << p.name;
            }
            EXPECT_FALSE(p.description.empty()) << info.name << "." << p.name;
        }
    }
    EXPECT_EQ(names.size(), mitigationMethods().size());
    EXPECT_EQ(findMitigationMethod("mask-snk"), nullptr);
    EXPECT_EQ(mitigationMethod(MitigationMethod::Act).param("beta")->defaultValue, kActDefaultBeta);
    EXPECT_EQ(mitigationMethod(MitigationMethod::Act).param("thres")->defaultValue, kActDefaultThres);
}

TEST(MitigationRegistry, TheParserAcceptsExactlyWhatTheRowsSay)
{
    for (const auto &m : mitigationMethods()) {
        // Every parameter at its example value, with heads= where allowed: parses to this method.
        const std::string text = stepText(m, example, true);
        auto spec = parseMitigation(text);
        ASSERT_TRUE(spec) << text << ": " << spec.error().message;
        ASSERT_EQ(spec->steps.size(), 1u);
        EXPECT_EQ(spec->steps[0].method, m.method);
        EXPECT_EQ(spec->steps[0].scoped, m.takesHeads) << text;
        for (const auto &p : m.params) {
            EXPECT_EQ(spec->steps[0].params.at(p.name), p.example) << text << " " << p.name;
        }
        // The usage line (required parameters at their example) parses; omitted ones take their default.
        std::string minimal = m.name, req;
        for (const auto &p : m.params) {
            if (p.required) {
                req += (req.empty() ? "" : ",") + p.name + "=" + p.valueText(p.example);
            }
        }
        minimal += req.empty() ? "" : ":" + req;
        auto bare = parseMitigation(minimal);
        ASSERT_TRUE(bare) << minimal << ": " << bare.error().message;
        for (const auto &p : m.params) {
            if (!p.required) {
                EXPECT_EQ(bare->steps[0].params.at(p.name), p.defaultValue) << minimal << " " << p.name;
            } else {
                // Leaving a required parameter out is an error that names it.
                auto missing = parseMitigation(m.name);
                ASSERT_FALSE(missing) << m.name;
                EXPECT_NE(missing.error().message.find("needs " + p.name + "="), std::string::npos)
                    << missing.error().message;
            }
        }
        if (!m.takesHeads) {
            EXPECT_FALSE(parseMitigation(minimal + (req.empty() ? ":" : ",") + "heads=L0")) << m.name;
        }
        // The range ends are inside, just beyond them is outside.
        for (const auto &p : m.params) {
            if (!p.choices.empty()) {
                continue;
            }
            auto with = [&](double v) {
                std::string s = m.name + ":" + p.name + "=" + p.valueText(v);
                for (const auto &q : m.params) {
                    if (q.required && q.name != p.name) {
                        s += "," + q.name + "=" + q.valueText(q.example);
                    }
                }
                return parseMitigation(s);
            };
            const double step = p.integer ? 1.0 : std::max(1e-3, std::abs(p.max) * 1e-3);
            EXPECT_TRUE(with(p.min)) << m.name << " " << p.name << "=" << p.min;
            EXPECT_TRUE(with(p.max)) << m.name << " " << p.name << "=" << p.max;
            EXPECT_FALSE(with(p.max + step)) << m.name << " " << p.name;
            EXPECT_FALSE(with(p.min - std::max(step, std::abs(p.min) * 1e-3))) << m.name << " " << p.name;
        }
    }
}

TEST(MitigationRegistry, UsageLinesShowDefaultsAndRequiredValues)
{
    EXPECT_EQ(mitigationMethod(MitigationMethod::MaskSink).usage(), "mask-sink[:sinks=1]");
    EXPECT_EQ(mitigationMethod(MitigationMethod::ZeroTune).usage(), "zerotune:gamma=G");
    EXPECT_EQ(mitigationMethod(MitigationMethod::Softmax1).usage(), "softmax1");
    EXPECT_EQ(mitigationMethod(MitigationMethod::Resid).usage(), "resid:mode=zero|mean[,layer=-1,abs=100,rel=1000]");
    EXPECT_EQ(mitigationMethodNames().substr(0, 20), "mask-sink, streaming");
    const std::string reference = mitigationReference();
    for (const auto &m : mitigationMethods()) {
        EXPECT_NE(reference.find(m.usage() + "\n"), std::string::npos) << m.name;
    }
}

// The archives' TorchScript reads exactly the keys of control_keys.h: a key the core sets that no
// archive reads would silently do nothing, a key an archive reads that has no name here is undocumented.
TEST(ControlKeys, MatchTheArchiveSource)
{
    std::set<std::string> named;
    for (const char *k : control_keys::kInterventions) {
        named.insert(k);
    }
    for (const char *k : control_keys::kRequests) {
        named.insert(k);
    }
    EXPECT_EQ(named.size(), control_keys::kInterventions.size() + control_keys::kRequests.size());
    for (Architecture arch : {Architecture::Llama, Architecture::Gpt2}) {
        const std::string source = sinkscope::detail::torchScriptSource(arch);
        for (const auto &k : named) {
            EXPECT_NE(source.find("\"" + k + "\""), std::string::npos) << k << " is not read by the archive code";
        }
        // Every key the code tests for ("x" in controls / _captures("x", ...)) is named.
        const std::regex read(R"re("([a-z_]+\.?)" (?:not )?in controls|_captures\("([a-z_]+)")re");
        for (auto it = std::sregex_iterator(source.begin(), source.end(), read); it != std::sregex_iterator(); ++it) {
            const std::string key = (*it)[1].matched ? (*it)[1].str() : (*it)[2].str();
            EXPECT_TRUE(named.count(key)) << key << " is read by the archive code but has no name in control_keys.h";
        }
    }
    // Every hook a registry row names is a control key.
    for (const auto &m : mitigationMethods()) {
        bool found = false;
        for (const auto &k : control_keys::kInterventions) {
            found = found || m.hook.find(k) != std::string::npos;
        }
        EXPECT_TRUE(found) << m.name << ": " << m.hook;
    }
}

// docs/mitigations.md carries the registry's table between markers; regenerate it with
// `sinkscope-cli mitigations --markdown` when a row changes.
TEST(MitigationRegistry, TheDocsTableIsTheRegistrys)
{
    const std::string path = sinkscope::testing::testDataDir() + "/../../docs/mitigations.md";
    std::ifstream in(path);
    ASSERT_TRUE(in) << path;
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string doc = ss.str();
    const std::string begin = "<!-- mitigations table: begin (sinkscope-cli mitigations --markdown) -->\n";
    const std::string end = "<!-- mitigations table: end -->";
    const auto a = doc.find(begin), b = doc.find(end);
    ASSERT_NE(a, std::string::npos) << path << " has no table markers";
    ASSERT_NE(b, std::string::npos);
    EXPECT_EQ(doc.substr(a + begin.size(), b - a - begin.size()), mitigationMarkdownTable());
}
