#include "cli_probe.h"
#include "common.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <stdexcept>

#include <unistd.h>

namespace sinkscope::cli {

namespace {

struct Flips {
    std::vector<std::string> rightToWrong, wrongToRight;
};

Flips flipsAgainst(const ProbeRun &reference, const ProbeRun &run)
{
    Flips f;
    for (const auto &s : run.scores) {
        const ProbeScore *r = reference.find(s.id);
        if (!r || r->correct == s.correct) {
            continue;
        }
        (r->correct ? f.rightToWrong : f.wrongToRight).push_back(s.id);
    }
    return f;
}

double meanOf(const FloatArray &a)
{
    if (a.data.empty()) {
        return std::nan("");
    }
    double sum = 0;
    for (float v : a.data) {
        sum += v;
    }
    return sum / static_cast<double>(a.data.size());
}

nlohmann::ordered_json number(double v)
{
    return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(nullptr);
}

std::string safe(const std::string &s)
{
    // Greedy text may end inside a UTF-8 sequence.
    return nlohmann::json::parse(nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))
        .get<std::string>();
}

std::string pad(std::string s, size_t width)
{
    if (s.size() < width) {
        s.resize(width, ' ');
    }
    return s;
}

std::string fixed(double v, int digits)
{
    std::ostringstream s;
    s << std::fixed << std::setprecision(digits) << v;
    return s.str();
}

} // namespace

int runProbeCommand(const Model &model, const ProbeSet &set, const ProbeCommandOptions &options, std::ostream &out,
                    std::ostream &err)
{
    const bool tty = ::isatty(STDERR_FILENO) == 1;
    std::vector<std::shared_ptr<const ProbeRun>> runs;
    for (const auto &spec : options.settings) {
        const std::string name = spec.toString();
        int lastShown = -1;
        auto run = runProbes(model, set, spec, options.probe, nullptr, [&](double f, const std::string &) {
            const int percent = static_cast<int>(f * 100);
            if (tty && percent != lastShown) {
                err << "\rprobe: " << name << " " << percent << "%" << std::flush;
                lastShown = percent;
            }
            return true;
        });
        if (!run) {
            if (tty) {
                err << "\n";
            }
            throw std::runtime_error(run.error().message);
        }
        err << (tty ? "\r" : "") << "probe: " << name << ": " << (*run)->scores.size() << " probes in "
            << fixed((*run)->seconds, 1) << " s (" << (*run)->forwardPasses << " forward passes)\n";
        runs.push_back(*run);
    }

    std::optional<DetectorReport> detector;
    std::string detectorError;
    if (options.detector) {
        auto d = fitLookbackDetector(*runs.front(), DetectorOptions{.sinkExcluded = options.sinkExcluded});
        if (d) {
            detector = std::move(d).value();
        } else {
            detectorError = d.error().message;
        }
    }
    if (!options.outDir.empty()) {
        std::error_code ec;
        std::filesystem::create_directories(options.outDir, ec);
        for (size_t i = 0; i < runs.size(); ++i) {
            writeOutputFile(options.outDir + "/scores_" + std::to_string(i) + ".csv",
                            probeScoresCsv(*runs[i], i > 0 ? runs.front().get() : nullptr));
        }
        if (detector) {
            writeOutputFile(options.outDir + "/detector.json", detector->toJson() + "\n");
            writeOutputFile(options.outDir + "/detector_weights.csv", detector->weightsCsv());
        }
    }

    const ProbeRun &reference = *runs.front();
    if (options.json) {
        nlohmann::ordered_json j;
        j["set"] = set.name;
        j["set_file"] = set.origin;
        j["model"] = model.info().path;
        j["probes"] = reference.scores.size();
        j["settings"] = nlohmann::ordered_json::array();
        for (const auto &run : runs) {
            nlohmann::ordered_json s;
            s["spec"] = run->spec;
            s["accuracy"] = run->overall.accuracy;
            s["mean_logprob"] = run->overall.meanLogProbability;
            s["mean_entropy"] = run->overall.meanEntropy;
            s["mean_first_token_probability"] = run->overall.meanFirstTokenProbability;
            s["correct"] = run->overall.correct;
            s["count"] = run->overall.count;
            s["seconds"] = run->seconds;
            s["forward_passes"] = run->forwardPasses;
            nlohmann::ordered_json cats;
            for (const auto &c : run->byCategory) {
                cats[c.category] = {{"count", c.count},
                                    {"accuracy", c.accuracy},
                                    {"mean_logprob", c.meanLogProbability},
                                    {"mean_entropy", c.meanEntropy}};
            }
            s["categories"] = cats;
            const Flips f = flipsAgainst(reference, *run);
            s["flips"] = {
                {"against", reference.spec}, {"right_to_wrong", f.rightToWrong}, {"wrong_to_right", f.wrongToRight}};
            auto probes = nlohmann::ordered_json::array();
            for (const auto &p : run->scores) {
                nlohmann::ordered_json q;
                q["id"] = p.id;
                q["category"] = p.category;
                q["kind"] = probeKindName(p.kind);
                q["counterfactual"] = p.counterfactual;
                q["correct"] = p.correct;
                q["recalled_memorised"] = p.recalledMemorised;
                q["first_token_probability"] = p.firstTokenProbability;
                q["first_token_rank"] = p.firstTokenRank;
                q["answer_logprob"] = number(p.answerLogProbability);
                q["best_answer"] = p.bestAnswer;
                q["answer_tokens"] = p.answerTokens;
                q["greedy"] = safe(p.greedyText);
                q["entropy"] = p.next.entropy;
                q["top1_probability"] = p.next.top1Probability;
                q["top1_margin"] = p.next.top1Margin;
                q["lookback_mean"] = number(meanOf(p.lookback.ratio));
                q["lookback_no_sink_mean"] = number(meanOf(p.lookback.ratioNoSink));
                probes.push_back(q);
            }
            s["scores"] = probes;
            j["settings"].push_back(s);
        }
        if (detector) {
            j["detector"] = nlohmann::ordered_json::parse(detector->toJson());
        } else if (options.detector) {
            j["detector"] = {{"error", detectorError}};
        }
        out << j.dump(2) << "\n";
        return 0;
    }

    out << "probe set " << (set.name.empty() ? set.origin : set.name) << ": " << reference.scores.size()
        << " probes, model " << model.config().name << "\n\n";
    size_t width = 8;
    for (const auto &run : runs) {
        width = std::max(width, run->spec.size() + 2);
    }
    out << pad("setting", width) << "accuracy   right      mean logprob  mean entropy  p(first)  seconds\n";
    for (const auto &run : runs) {
        const auto &o = run->overall;
        out << pad(run->spec, width) << pad(fixed(o.accuracy, 3), 11)
            << pad(std::to_string(o.correct) + "/" + std::to_string(o.count), 11)
            << pad(fixed(o.meanLogProbability, 3), 14) << pad(fixed(o.meanEntropy, 3), 14)
            << pad(fixed(o.meanFirstTokenProbability, 3), 10) << fixed(run->seconds, 1) << "\n";
    }
    out << "\naccuracy by category\n" << pad("category", 16);
    for (size_t i = 0; i < runs.size(); ++i) {
        out << pad("[" + std::to_string(i + 1) + "]", 10);
    }
    out << "\n";
    for (const auto &c : reference.byCategory) {
        out << pad(c.category + " (" + std::to_string(c.count) + ")", 16);
        for (const auto &run : runs) {
            const auto a = aggregateScores(run->scores, c.category);
            out << pad(fixed(a.accuracy, 3), 10);
        }
        out << "\n";
    }
    for (size_t i = 0; i < runs.size(); ++i) {
        out << "  [" << i + 1 << "] " << runs[i]->spec << "\n";
    }
    if (runs.size() > 1) {
        out << "\nflips against " << reference.spec << "\n";
        for (size_t i = 1; i < runs.size(); ++i) {
            const Flips f = flipsAgainst(reference, *runs[i]);
            auto list = [](const std::vector<std::string> &ids) {
                std::string s;
                for (const auto &id : ids) {
                    s += (s.empty() ? "" : ", ") + id;
                }
                return s.empty() ? std::string("-") : s;
            };
            out << "  " << runs[i]->spec << "\n    right -> wrong (" << f.rightToWrong.size()
                << "): " << list(f.rightToWrong) << "\n    wrong -> right (" << f.wrongToRight.size()
                << "): " << list(f.wrongToRight) << "\n";
        }
    }
    if (runs.size() == 1) {
        out << "\nprobe                     ok  p(first)  rank   logprob  entropy  greedy\n";
        for (const auto &p : reference.scores) {
            out << pad(p.id, 26) << (p.correct ? "+   " : "-   ") << pad(fixed(p.firstTokenProbability, 3), 10)
                << pad(std::to_string(p.firstTokenRank), 7) << pad(fixed(p.answerLogProbability, 2), 9)
                << pad(fixed(p.next.entropy, 2), 9) << "'" << visible(p.greedyText) << "'\n";
        }
    }
    if (options.detector) {
        out << "\nLookback detector (" << reference.spec << ")\n";
        if (!detector) {
            out << "  not fitted: " << detectorError << "\n";
        } else {
            out << "  features " << detector->features << ", train " << detector->trainCount << " ("
                << detector->trainPositives << " right), test " << detector->testCount << " ("
                << detector->testPositives << " right)\n";
            out << "  AUROC train " << fixed(detector->trainAuroc, 3) << ", held-out " << fixed(detector->testAuroc, 3)
                << "\n";
            if (!detector->caveat.empty()) {
                out << "  caveat: " << detector->caveat << "\n";
            }
            // The heads with the largest weights, either sign.
            std::vector<size_t> order(detector->headWeights.data.size());
            for (size_t i = 0; i < order.size(); ++i) {
                order[i] = i;
            }
            std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
                return std::fabs(detector->headWeights.data[a]) > std::fabs(detector->headWeights.data[b]);
            });
            out << "  largest weights:";
            const int64_t heads = detector->headWeights.shape.at(1);
            for (size_t i = 0; i < std::min<size_t>(8, order.size()); ++i) {
                out << " L" << static_cast<int64_t>(order[i]) / heads << "H" << static_cast<int64_t>(order[i]) % heads
                    << " " << fixed(detector->headWeights.data[order[i]], 3) << (i + 1 < 8 ? "," : "");
            }
            out << "\n";
        }
    }
    return 0;
}

} // namespace sinkscope::cli
