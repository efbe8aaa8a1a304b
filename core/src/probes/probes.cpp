// Probe scoring: forward passes under a mitigation spec, answer probabilities, greedy answers, Lookback ratios.
#include "sinkscope/probes/probes.h"

#include "sinkscope/common/csv.h"

#include "sinkscope/interventions/effects.h"

#include <algorithm>
#include <cassert>
#include <cctype>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>

namespace sinkscope {

namespace {

// ACT's column means and resid's massive-activation search look at the whole sequence, so their logits
// at a position change when tokens are appended; every other method is causal and position-local.
bool prefixConsistent(const MitigationSpec &spec)
{
    return std::none_of(spec.steps.begin(), spec.steps.end(), [](const MitigationStep &s) {
        return s.method == MitigationMethod::Act || s.method == MitigationMethod::Resid;
    });
}

bool isBlank(const std::string &text)
{
    return std::all_of(text.begin(), text.end(),
                       [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; });
}

struct Pass {
    std::vector<int64_t> tokens;
    ForwardResult result;
};

} // namespace

NextTokenStats nextTokenStats(const float *logits, int64_t vocab)
{
    NextTokenStats s;
    if (vocab <= 0) {
        return s;
    }
    const double lse = logSumExp(logits, vocab);
    double p1 = -1, p2 = 0;
    for (int64_t i = 0; i < vocab; ++i) {
        const double logp = logits[i] - lse;
        const double p = std::exp(logp);
        if (p > 0) {
            s.entropy -= p * logp;
        }
        if (p > p1) {
            p2 = std::max(p1, 0.0);
            p1 = p;
            s.top1Token = i;
        } else if (p > p2) {
            p2 = p;
        }
    }
    s.top1Probability = p1;
    s.top1Margin = p1 - p2;
    return s;
}

double tokenLogProbability(const float *logits, int64_t vocab, int64_t token)
{
    return logits[token] - logSumExp(logits, vocab);
}

int64_t tokenRank(const float *logits, int64_t vocab, int64_t token)
{
    const float l = logits[token];
    return 1 + std::count_if(logits, logits + vocab, [&](float x) { return x > l; });
}

double teacherForcedLogProbability(const FloatArray &logits, int64_t firstRow, const std::vector<int64_t> &answer)
{
    const int64_t vocab = logits.shape.at(1);
    double sum = 0;
    for (size_t i = 0; i < answer.size(); ++i) {
        const int64_t row = firstRow + static_cast<int64_t>(i);
        assert(row < logits.shape.at(0));
        sum += tokenLogProbability(logits.data.data() + row * vocab, vocab, answer[i]);
    }
    return sum;
}

LookbackRatios lookbackRatios(const std::vector<FloatArray> &attention, int64_t contextEnd, int64_t firstRow,
                              int64_t lastRow, const std::vector<int64_t> &sinks)
{
    LookbackRatios out;
    if (attention.empty() ||
        std::any_of(attention.begin(), attention.end(), [](const FloatArray &a) { return a.shape.size() != 3; })) {
        return out;
    }
    const auto layers = static_cast<int64_t>(attention.size());
    const int64_t heads = attention[0].shape[0], t = attention[0].shape[1], tk = attention[0].shape[2];
    assert(0 < contextEnd && contextEnd <= firstRow && firstRow <= lastRow && lastRow < t && lastRow < tk);
    std::vector<char> isSink(static_cast<size_t>(contextEnd), 0);
    for (int64_t s : sinks) {
        if (s >= 0 && s < contextEnd) {
            isSink[static_cast<size_t>(s)] = 1;
        }
    }
    const auto sinkCount = static_cast<int64_t>(std::count(isSink.begin(), isSink.end(), 1));
    out.rows = lastRow - firstRow + 1;
    out.ratio = FloatArray{{layers, heads}, std::vector<float>(static_cast<size_t>(layers * heads), 0.0f)};
    out.ratioNoSink = out.ratio;
    auto ratio = [](double ctx, double gen) { return ctx + gen > 0 ? ctx / (ctx + gen) : 0.5; };
    for (int64_t l = 0; l < layers; ++l) {
        for (int64_t h = 0; h < heads; ++h) {
            double sum = 0, sumNoSink = 0;
            for (int64_t row = firstRow; row <= lastRow; ++row) {
                const float *a = attention[static_cast<size_t>(l)].data.data() + (h * t + row) * tk;
                double ctx = 0, sink = 0, gen = 0;
                for (int64_t j = 0; j < contextEnd; ++j) {
                    ctx += a[j];
                    sink += isSink[static_cast<size_t>(j)] ? a[j] : 0.0;
                }
                for (int64_t j = contextEnd; j <= row; ++j) {
                    gen += a[j];
                }
                const double genMean = gen / static_cast<double>(row - contextEnd + 1);
                sum += ratio(ctx / static_cast<double>(contextEnd), genMean);
                const int64_t rest = contextEnd - sinkCount;
                sumNoSink += ratio(rest > 0 ? (ctx - sink) / static_cast<double>(rest) : 0.0, genMean);
            }
            const auto i = static_cast<size_t>(l * heads + h);
            out.ratio.data[i] = static_cast<float>(sum / static_cast<double>(out.rows));
            out.ratioNoSink.data[i] = static_cast<float>(sumNoSink / static_cast<double>(out.rows));
        }
    }
    return out;
}

ProbeAggregate aggregateScores(const std::vector<ProbeScore> &scores, const std::string &category)
{
    ProbeAggregate a;
    a.category = category;
    for (const auto &s : scores) {
        if (!category.empty() && s.category != category) {
            continue;
        }
        ++a.count;
        a.correct += s.correct ? 1 : 0;
        a.meanLogProbability += s.answerLogProbability;
        a.meanEntropy += s.next.entropy;
        a.meanFirstTokenProbability += s.firstTokenProbability;
    }
    if (a.count > 0) {
        const auto n = static_cast<double>(a.count);
        a.accuracy = a.correct / n;
        a.meanLogProbability /= n;
        a.meanEntropy /= n;
        a.meanFirstTokenProbability /= n;
    }
    return a;
}

const ProbeScore *ProbeRun::find(const std::string &id) const
{
    for (const auto &s : scores) {
        if (s.id == id) {
            return &s;
        }
    }
    return nullptr;
}

namespace {

class ProbeRunner
{
public:
    ProbeRunner(const Model &model, const MitigationSpec &spec, const ProbeOptions &options, const CancelToken *cancel)
        : m_model(model), m_spec(spec), m_options(options), m_cancel(cancel), m_consistent(prefixConsistent(spec))
    {
    }

    int64_t passes() const { return m_passes; }

    Result<ProbeScore> score(const Probe &probe)
    {
        const Tokenizer &tok = *m_model.tokenizer();
        m_cache.clear();
        ProbeScore s;
        s.id = probe.id;
        s.category = probe.category;
        s.kind = probe.kind;
        s.counterfactual = probe.counterfactual;
        const ProbeText text = probeText(probe);
        auto context = m_model.tokenize(text.context);
        if (!context) {
            return makeError(context.error().code, "probe '" + probe.id + "': " + context.error().message);
        }
        std::vector<int64_t> prompt = *context;
        if (!text.cue.empty()) {
            const auto cue = tok.encode(text.cue, EncodeOptions{.addBos = false});
            prompt.insert(prompt.end(), cue.begin(), cue.end());
        }
        const auto p = static_cast<int64_t>(prompt.size());
        // The Lookback context needs at least one "new" position in the first row: a factual prompt's last
        // token plays the part of the answer cue.
        s.contextEnd = text.cue.empty() ? std::max<int64_t>(p - 1, 1) : static_cast<int64_t>(context->size());
        s.promptTokens = p;
        if (p < 2 && m_options.lookback) {
            return makeError(ErrorCode::InvalidArgument,
                             "probe '" + probe.id + "': the prompt needs at least two tokens");
        }

        // Teacher-forced passes, one per distinct spelling.
        std::vector<std::vector<int64_t>> spellings;
        std::vector<std::string> spellingText;
        size_t longest = 0;
        for (const std::vector<std::string> *list : {&probe.answers, &probe.memorised}) {
            for (const auto &a : *list) {
                auto ids = tok.encode(answerContinuation(a), EncodeOptions{.addBos = false, .parseSpecial = false});
                longest = std::max(longest, ids.size());
                if (list == &probe.answers && !ids.empty() &&
                    std::find(spellings.begin(), spellings.end(), ids) == spellings.end()) {
                    spellings.push_back(ids);
                    spellingText.push_back(a);
                }
            }
        }
        if (spellings.empty()) {
            return makeError(ErrorCode::InvalidArgument, "probe '" + probe.id + "': no answer tokenizes to any token");
        }
        s.answerLogProbability = -std::numeric_limits<double>::infinity();
        s.firstTokenProbability = -1;
        for (size_t k = 0; k < spellings.size(); ++k) {
            std::vector<int64_t> seq = prompt;
            seq.insert(seq.end(), spellings[k].begin(), spellings[k].end());
            auto pass = run(seq, probe);
            if (!pass) {
                return pass.error();
            }
            const FloatArray &logits = (*pass)->result.logits;
            const double lp = teacherForcedLogProbability(logits, p - 1, spellings[k]);
            size_t content = 0;
            while (content + 1 < spellings[k].size() && isBlank(tok.tokenText(spellings[k][content]))) {
                ++content;
            }
            const int64_t vocab = logits.shape.at(1);
            const float *row = logits.data.data() + (p - 1 + static_cast<int64_t>(content)) * vocab;
            const double first = std::exp(tokenLogProbability(row, vocab, spellings[k][content]));
            if (first > s.firstTokenProbability) {
                s.firstTokenProbability = first;
                s.firstTokenRank = tokenRank(row, vocab, spellings[k][content]);
            }
            if (lp > s.answerLogProbability) {
                s.answerLogProbability = lp;
                s.bestAnswer = spellingText[k];
                s.answerTokens = static_cast<int64_t>(spellings[k].size());
            }
        }

        // Greedy answer; its first step gives the next-token statistics and the first-token scores.
        const auto eos = tok.data().eosId;
        const int cap = std::min<int>(m_options.maxGreedyTokens, static_cast<int>(longest) + 1);
        std::vector<int64_t> seq = prompt;
        AnswerMatch accepted = AnswerMatch::Undecided;
        AnswerMatch memorised = probe.memorised.empty() ? AnswerMatch::NoMatch : AnswerMatch::Undecided;
        while (true) {
            const bool finished = static_cast<int>(s.greedyTokens.size()) >= cap ||
                                  (!s.greedyTokens.empty() && eos && s.greedyTokens.back() == *eos) ||
                                  s.greedyText.find('\n') != std::string::npos;
            std::string answerText = s.greedyText.substr(0, s.greedyText.find('\n'));
            accepted = matchAnswer(answerText, probe.answers, finished);
            if (!probe.memorised.empty()) {
                memorised = matchAnswer(answerText, probe.memorised, finished);
            }
            if (finished || (accepted != AnswerMatch::Undecided && memorised != AnswerMatch::Undecided)) {
                break;
            }
            auto row = logitsRow(seq, probe);
            if (!row) {
                return row.error();
            }
            const float *logits = *row;
            const int64_t vocab = m_model.config().vocabSize;
            if (s.greedyTokens.empty()) {
                s.next = nextTokenStats(logits, vocab);
            }
            const int64_t next = std::max_element(logits, logits + vocab) - logits;
            s.greedyTokens.push_back(next);
            s.greedyText = tok.decode(s.greedyTokens);
            seq.push_back(next);
        }
        s.correct = accepted == AnswerMatch::Match;
        s.recalledMemorised = memorised == AnswerMatch::Match;

        if (m_options.lookback && !s.greedyTokens.empty()) {
            const auto m =
                std::min<int64_t>(std::max(m_options.lookbackTokens, 1), static_cast<int64_t>(s.greedyTokens.size()));
            // Rows p-1 .. p+m-2 produce the first m greedy tokens; they need the keys up to p+m-2.
            std::vector<int64_t> need = prompt;
            need.insert(need.end(), s.greedyTokens.begin(), s.greedyTokens.begin() + (m - 1));
            const Pass *pass = findPass(need, true);
            if (!pass) {
                auto made = run(need, probe);
                if (!made) {
                    return made.error();
                }
                pass = *made;
            }
            s.lookback = lookbackRatios(pass->result.attention, s.contextEnd, p - 1, p + m - 2, m_options.sinks);
        }
        return s;
    }

private:
    // A pass whose logits at position seq.size()-1 are those a forward over `seq` gives.
    const Pass *findPass(const std::vector<int64_t> &seq, bool needAttention) const
    {
        for (const auto &pass : m_cache) {
            const bool prefix =
                pass->tokens.size() >= seq.size() && std::equal(seq.begin(), seq.end(), pass->tokens.begin());
            if (prefix && (m_consistent || pass->tokens.size() == seq.size()) &&
                (!needAttention || !pass->result.attention.empty())) {
                return pass.get();
            }
        }
        return nullptr;
    }

    Result<const Pass *> run(const std::vector<int64_t> &seq, const Probe &probe)
    {
        if (m_cancel && m_cancel->isCancelled()) {
            return makeError(ErrorCode::Cancelled, "probes cancelled");
        }
        auto controls = buildControls(m_model, m_spec, seq, m_cancel);
        if (!controls) {
            return makeError(controls.error().code, "probe '" + probe.id + "': " + controls.error().message);
        }
        ForwardRequest req{.tokens = seq, .controls = std::move(controls).value()};
        req.capture.allAttention = m_options.lookback;
        auto f = m_model.forward(req, m_cancel);
        if (!f) {
            return makeError(f.error().code, "probe '" + probe.id + "': " + f.error().message);
        }
        ++m_passes;
        auto pass = std::make_unique<Pass>();
        pass->tokens = seq;
        pass->result = std::move(f).value();
        m_cache.push_back(std::move(pass));
        return m_cache.back().get();
    }

    Result<const float *> logitsRow(const std::vector<int64_t> &seq, const Probe &probe)
    {
        const Pass *pass = findPass(seq, false);
        if (!pass) {
            auto made = run(seq, probe);
            if (!made) {
                return made.error();
            }
            pass = *made;
        }
        const int64_t vocab = pass->result.logits.shape.at(1);
        return pass->result.logits.data.data() + (static_cast<int64_t>(seq.size()) - 1) * vocab;
    }

    const Model &m_model;
    const MitigationSpec &m_spec;
    const ProbeOptions &m_options;
    const CancelToken *m_cancel;
    bool m_consistent;
    int64_t m_passes = 0;
    std::vector<std::unique_ptr<Pass>> m_cache; // this probe's passes
};

} // namespace

Result<std::shared_ptr<const ProbeRun>> runProbes(const Model &model, const ProbeSet &set, const MitigationSpec &spec,
                                                  const ProbeOptions &options, const CancelToken *cancel,
                                                  const ProgressCallback &progress)
{
    if (!model.tokenizer()) {
        return makeError(ErrorCode::InvalidArgument, model.info().path + ": probes need a model with a tokenizer");
    }
    if (auto ok = validateMitigation(spec, model); !ok) {
        return ok.error();
    }
    std::vector<const Probe *> chosen;
    for (const auto &p : set.probes) {
        if (options.category.empty() || p.category == options.category) {
            chosen.push_back(&p);
        }
    }
    if (options.limit > 0 && chosen.size() > static_cast<size_t>(options.limit)) {
        chosen.resize(static_cast<size_t>(options.limit));
    }
    if (chosen.empty()) {
        return makeError(ErrorCode::InvalidArgument,
                         set.origin + ": no probes" +
                             (options.category.empty() ? "" : " in category '" + options.category + "'"));
    }
    const auto start = std::chrono::steady_clock::now();
    auto run = std::make_shared<ProbeRun>();
    run->setName = set.name;
    run->spec = spec.toString();
    run->layers = model.config().layers;
    run->heads = model.config().heads;
    ProbeRunner runner(model, spec, options, cancel);
    for (size_t i = 0; i < chosen.size(); ++i) {
        if (progress && !progress(static_cast<double>(i) / static_cast<double>(chosen.size()), chosen[i]->id)) {
            return makeError(ErrorCode::Cancelled, "probes cancelled");
        }
        auto score = runner.score(*chosen[i]);
        if (!score) {
            return score.error();
        }
        run->scores.push_back(std::move(score).value());
    }
    if (progress) {
        progress(1.0, "done");
    }
    run->overall = aggregateScores(run->scores);
    std::vector<std::string> categories;
    for (const auto &s : run->scores) {
        if (std::find(categories.begin(), categories.end(), s.category) == categories.end()) {
            categories.push_back(s.category);
            run->byCategory.push_back(aggregateScores(run->scores, s.category));
        }
    }
    run->forwardPasses = runner.passes();
    run->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return std::shared_ptr<const ProbeRun>(std::move(run));
}

std::string probeScoresCsv(const ProbeRun &run, const ProbeRun *baseline)
{
    std::ostringstream out;
    out << std::setprecision(9);
    out << "id,category,kind,correct,first_token_probability,first_token_rank,answer_logprob,entropy,top1_margin,"
           "greedy";
    if (baseline) {
        out << ",baseline_correct,delta_first_token_probability";
    }
    out << "\n";
    for (const auto &s : run.scores) {
        out << csvField(s.id) << "," << csvField(s.category) << "," << probeKindName(s.kind) << ","
            << (s.correct ? 1 : 0) << "," << s.firstTokenProbability << "," << s.firstTokenRank << ","
            << s.answerLogProbability << "," << s.next.entropy << "," << s.next.top1Margin << ","
            << csvField(s.greedyText);
        if (baseline) {
            const ProbeScore *b = baseline->find(s.id);
            if (b) {
                out << "," << (b->correct ? 1 : 0) << "," << s.firstTokenProbability - b->firstTokenProbability;
            } else {
                out << ",,";
            }
        }
        out << "\n";
    }
    return out.str();
}

} // namespace sinkscope
