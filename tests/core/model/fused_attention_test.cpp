// The fused CPU attention engine (sinkscope/attention/fused_attention.h) against two independent references:
// a materialised double-precision attention written here with LibTorch ops (output and every statistic, with
// every control), and the statistics' CPU reference of the CUDA kernel (layerAttentionStats), the engine's
// parity oracle. Every instruction set this CPU has (the baseline always) and one and several threads.
#include "sinkscope/analysis/attention_tiles.h"
#include "sinkscope/attention/fused_attention.h"
#include "sinkscope/runtime/parallel.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace sinkscope {
namespace {

struct Case {
    int64_t heads = 4, kvHeads = 2, queries = 37, keys = 37, headDim = 16, valueDim = 16, window = 0;
    float scale = 0;
    bool mask = false, bias = false, temperature = false, learned = false, sinkLogit = false, headMode = false,
         probScale = false, renorm = false, valueScale = false, headGate = false, norms = false, sinkWeight = false,
         act = false;
    std::string name;
};

struct Inputs {
    at::Tensor q, k, v, mask, bias, temperature, learned, sinkLogit, headMode, probScale, valueScale, headGate, norms,
        sinkWeight, actHeads, actBeta, actThres;
};

Inputs makeInputs(const Case &c, uint64_t seed)
{
    torch::manual_seed(static_cast<int64_t>(seed));
    Inputs in;
    in.q = torch::randn({c.heads, c.queries, c.headDim}) * 1.5;
    in.k = torch::randn({c.kvHeads, c.keys, c.headDim}) * 1.5;
    // A strong sink on key 0 as real models have: probabilities near 1 and near 0 both occur.
    in.k.select(1, 0).mul_(4.0);
    in.v = torch::randn({c.kvHeads, c.keys, c.valueDim});
    const int64_t past = c.keys - c.queries;
    if (c.mask) {
        // StreamingLLM-like: a few middle keys masked out for every query, small additive noise elsewhere.
        in.mask = torch::randn({c.queries, c.keys}) * 0.1;
        in.mask.narrow(1, std::min<int64_t>(3, c.keys - 1), std::min<int64_t>(4, c.keys - 3))
            .fill_(-std::numeric_limits<float>::infinity());
        (void)past;
    }
    if (c.bias) {
        in.bias = torch::randn({c.heads, c.keys});
        in.bias.select(1, 0).fill_(-5.0); // mask-sink style
    }
    if (c.temperature) {
        in.temperature = torch::rand({c.heads}) * 1.5 + 0.5;
    }
    if (c.learned) {
        in.learned = torch::randn({c.heads}) * 2.0;
    }
    if (c.sinkLogit) {
        in.sinkLogit = torch::randn({c.heads});
    }
    if (c.headMode) {
        in.headMode = torch::zeros({c.heads});
        in.headMode[1] = 1.0;
        if (c.heads > 2) {
            in.headMode[2] = 2.0;
        }
    }
    if (c.probScale) {
        in.probScale = torch::rand({c.heads, c.keys}) + 0.25;
    }
    if (c.valueScale) {
        in.valueScale = torch::rand({c.heads, c.keys}) * 2.0;
    }
    if (c.headGate) {
        in.headGate = torch::rand({c.heads}) * 2.0;
    }
    if (c.norms) {
        in.norms = torch::rand({c.heads, c.keys}) * 3.0;
    }
    if (c.act) {
        // A second strong key, so that ACT has a column to rescale besides the first one it leaves alone.
        in.k.select(1, std::min<int64_t>(2, c.keys - 1)).mul_(3.0);
        in.actHeads = torch::ones({c.heads});
        in.actHeads[0] = 0.0;
        in.actBeta = torch::rand({c.heads}) * 0.5 + 0.25;
        in.actThres = torch::full({c.heads}, 0.08f);
    }
    if (c.sinkWeight) {
        in.sinkWeight = torch::zeros({c.keys});
        in.sinkWeight[0] = 1.0;
        in.sinkWeight[std::min<int64_t>(5, c.keys - 1)] = 1.0;
    }
    return in;
}

struct Reference {
    at::Tensor out;                                                 // [T, H, dv]
    at::Tensor sinkMass, first, plogp, rowMax, weighted, nullShare; // [H, T]
    at::Tensor received, receivedPlogp;                             // [H, Tk]
};

// The attention step as the archive's TorchScript writes it (_probs / _attend), in double.
Reference reference(const Case &c, const Inputs &in)
{
    const auto D = torch::kDouble;
    const int64_t g = c.heads / c.kvHeads, t = c.queries, tk = c.keys, past = tk - t;
    const at::Tensor q = in.q.to(D), k = in.k.to(D).repeat_interleave(g, 0), v = in.v.to(D).repeat_interleave(g, 0);
    const double scale = c.scale > 0 ? c.scale : 1.0 / std::sqrt(static_cast<double>(c.headDim));
    at::Tensor s = torch::matmul(q, k.transpose(1, 2)) * scale;
    const at::Tensor qi = torch::arange(past, past + t).view({t, 1}), kj = torch::arange(tk).view({1, tk});
    at::Tensor hidden = kj > qi;
    if (c.window > 0) {
        hidden = hidden | (kj <= qi - c.window);
    }
    const double inf = std::numeric_limits<double>::infinity();
    s = s.masked_fill(hidden.unsqueeze(0), -inf);
    if (c.mask) {
        s = s + in.mask.to(D).unsqueeze(0);
    }
    if (c.bias) {
        s = s + in.bias.to(D).unsqueeze(1);
    }
    if (c.temperature) {
        s = s / in.temperature.to(D).view({-1, 1, 1});
    }
    std::vector<at::Tensor> cols{s};
    if (c.learned) {
        cols.push_back(in.learned.to(D).view({-1, 1, 1}).expand({c.heads, t, 1}));
    }
    if (c.sinkLogit) {
        cols.push_back(in.sinkLogit.to(D).view({-1, 1, 1}).expand({c.heads, t, 1}));
    }
    const at::Tensor all = torch::softmax(torch::cat(cols, 2), 2);
    at::Tensor p = all.narrow(2, 0, tk);
    Reference r;
    r.nullShare = c.learned ? all.select(2, tk).clone() : torch::zeros({c.heads, t}, D);
    if (c.act) {
        // As the archive's _act: column means over the queries that see each key.
        at::Tensor seen = ~hidden;
        if (c.mask) {
            seen = seen & (in.mask > -std::numeric_limits<float>::infinity());
        }
        const at::Tensor visible = seen.sum(0).clamp_min(1).to(D);
        const at::Tensor over = (p.sum(1) / visible) > in.actThres.to(D).view({-1, 1});
        const at::Tensor first = over & (over.to(torch::kLong).cumsum(1) == 1);
        const at::Tensor sinks = (over & ~first & (in.actHeads.view({-1, 1}) > 0.5)).unsqueeze(1);
        const at::Tensor beta = in.actBeta.to(D).view({-1, 1, 1});
        const at::Tensor budget = torch::where(sinks, p, torch::zeros_like(p)).sum(2, true) * (1.0 - beta);
        const at::Tensor rest = torch::where(sinks, torch::zeros_like(p), p);
        const at::Tensor ratios = rest / rest.sum(2, true).clamp_min(1e-30);
        p = torch::where(sinks, p * beta, p) + budget * ratios;
    }
    if (c.headMode) {
        const at::Tensor mode = in.headMode.to(D).view({-1, 1, 1});
        at::Tensor onFirst = torch::zeros_like(p);
        onFirst.select(2, 0).fill_(1.0);
        p = torch::where(mode == 1.0, torch::zeros_like(p), torch::where(mode == 2.0, onFirst, p));
    }
    if (c.probScale) {
        p = p * in.probScale.to(D).unsqueeze(1);
        if (c.renorm) {
            p = p / p.sum(2, true).clamp_min(1e-30);
        }
    }
    const at::Tensor logp = torch::where(p > 0, p.log(), torch::zeros_like(p));
    const at::Tensor plogp = p * logp;
    r.first = p.select(2, 0).clone();
    r.sinkMass = c.sinkWeight ? torch::matmul(p, in.sinkWeight.to(D)) : r.first;
    r.plogp = plogp.sum(2);
    r.rowMax = std::get<0>(p.max(2));
    r.weighted = c.norms ? (p * in.norms.to(D).unsqueeze(1)).sum(2) : torch::zeros({c.heads, t}, D);
    r.received = p.sum(1);
    r.receivedPlogp = plogp.sum(1);
    at::Tensor pv = c.valueScale ? p * in.valueScale.to(D).unsqueeze(1) : p;
    at::Tensor o = torch::matmul(pv, v); // [H, T, dv]
    if (c.headGate) {
        o = o * in.headGate.to(D).view({-1, 1, 1});
    }
    r.out = o.transpose(0, 1).contiguous();
    return r;
}

const float *ptr(const at::Tensor &t)
{
    return t.defined() ? t.data_ptr<float>() : nullptr;
}

struct Engine {
    at::Tensor out, sinkMass, first, plogp, rowMax, weighted, nullShare, received, receivedPlogp;
};

Engine runEngine(const Case &c, const Inputs &in)
{
    FusedAttentionInput a;
    a.q = ptr(in.q);
    a.k = ptr(in.k);
    a.v = ptr(in.v);
    a.heads = c.heads;
    a.kvHeads = c.kvHeads;
    a.queries = c.queries;
    a.keys = c.keys;
    a.headDim = c.headDim;
    a.valueDim = c.valueDim;
    a.scale = c.scale;
    a.window = c.window;
    a.mask = ptr(in.mask);
    a.logitBias = ptr(in.bias);
    a.temperature = ptr(in.temperature);
    a.learnedSink = ptr(in.learned);
    a.sinkLogit = ptr(in.sinkLogit);
    a.headMode = ptr(in.headMode);
    a.actHeads = ptr(in.actHeads);
    a.actBeta = ptr(in.actBeta);
    a.actThres = ptr(in.actThres);
    a.probScale = ptr(in.probScale);
    a.probRenorm = c.renorm;
    a.valueScale = ptr(in.valueScale);
    a.headGate = ptr(in.headGate);
    a.valueNorms = ptr(in.norms);
    a.sinkWeight = ptr(in.sinkWeight);
    Engine e;
    e.out = torch::full({c.queries, c.heads, c.valueDim}, 7.0f);
    auto ht = [&] { return torch::full({c.heads, c.queries}, 7.0f); };
    e.sinkMass = ht();
    e.first = ht();
    e.plogp = ht();
    e.rowMax = ht();
    e.weighted = ht();
    e.nullShare = ht();
    e.received = torch::full({c.heads, c.keys}, 7.0, torch::kDouble);
    e.receivedPlogp = torch::full({c.heads, c.keys}, 7.0, torch::kDouble);
    FusedAttentionOutput o;
    o.out = e.out.data_ptr<float>();
    o.sinkMass = e.sinkMass.data_ptr<float>();
    o.firstMass = e.first.data_ptr<float>();
    o.rowPlogp = e.plogp.data_ptr<float>();
    o.rowMax = e.rowMax.data_ptr<float>();
    o.rowWeighted = e.weighted.data_ptr<float>();
    o.nullShare = e.nullShare.data_ptr<float>();
    o.received = e.received.data_ptr<double>();
    o.receivedPlogp = e.receivedPlogp.data_ptr<double>();
    const Status st = fusedAttention(a, o);
    EXPECT_TRUE(st) << st.error().message;
    return e;
}

double maxDiff(const at::Tensor &a, const at::Tensor &b)
{
    return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

void expectMatches(const Case &c, const Reference &r, const Engine &e, const std::string &where)
{
    // Per-query values are at most 1 (entropies at most log Tk): absolute 1e-5. Received sums grow with the
    // number of queries: relative to it.
    const double rows = 1e-5, cols = 1e-5 * static_cast<double>(c.queries);
    EXPECT_LT(maxDiff(e.out, r.out), 1e-5) << where << ": output";
    EXPECT_LT(maxDiff(e.sinkMass, r.sinkMass), rows) << where << ": sink mass";
    EXPECT_LT(maxDiff(e.first, r.first), rows) << where << ": first-token mass";
    EXPECT_LT(maxDiff(e.plogp, r.plogp), rows) << where << ": sum A log A";
    EXPECT_LT(maxDiff(e.rowMax, r.rowMax), rows) << where << ": row max";
    EXPECT_LT(maxDiff(e.weighted, r.weighted), 3 * rows) << where << ": value-weighted";
    EXPECT_LT(maxDiff(e.nullShare, r.nullShare), rows) << where << ": learned sink share";
    EXPECT_LT(maxDiff(e.received, r.received), cols) << where << ": received";
    EXPECT_LT(maxDiff(e.receivedPlogp, r.receivedPlogp), cols) << where << ": received A log A";
}

std::vector<AttentionIsa> isas()
{
    std::vector<AttentionIsa> all{AttentionIsa::Baseline};
    if (supportedAttentionIsa() >= AttentionIsa::Avx2) {
        all.push_back(AttentionIsa::Avx2);
    }
    if (supportedAttentionIsa() >= AttentionIsa::Avx512) {
        all.push_back(AttentionIsa::Avx512);
    }
    return all;
}

// Restores the instruction set and the pool after a test.
struct Restore {
    int threads = parallelThreads();
    ~Restore()
    {
        setAttentionIsa(std::nullopt);
        setParallelThreads(threads);
    }
};

std::vector<Case> cases()
{
    std::vector<Case> all;
    auto add = [&](Case c, const std::string &name) {
        c.name = name;
        all.push_back(c);
    };
    Case plain;
    add(plain, "plain causal, GQA 4/2");
    Case odd;
    odd.headDim = 24;
    odd.valueDim = 20;
    odd.queries = odd.keys = 71;
    odd.kvHeads = 1;
    add(odd, "head dims 24/20, MQA, 71 tokens");
    Case cache;
    cache.queries = 13;
    cache.keys = 50;
    add(cache, "13 queries after a 37-key cache");
    Case window;
    window.window = 7;
    window.queries = window.keys = 90;
    add(window, "sliding window 7");
    Case scaled;
    scaled.scale = 0.0625f;
    add(scaled, "scale 1/16 (Gemma-style query_pre_attn_scalar)");
    Case controls;
    controls.bias = controls.temperature = controls.sinkLogit = controls.mask = controls.norms = controls.sinkWeight =
        true;
    add(controls, "mask, logit bias, temperature, sink logit, value norms, sink set");
    Case learned;
    learned.learned = true;
    learned.window = 16;
    learned.queries = learned.keys = 64;
    add(learned, "learned sinks (gpt-oss) with a window");
    Case modes;
    modes.headMode = modes.valueScale = modes.headGate = true;
    add(modes, "head modes (zero, all on first), value scale, head gate");
    Case scaledProbs;
    scaledProbs.probScale = true;
    add(scaledProbs, "probability scale");
    Case renorm;
    renorm.probScale = renorm.renorm = true;
    renorm.window = 11;
    renorm.headMode = true;
    add(renorm, "probability scale renormalised, head modes, window");
    Case act;
    act.act = true;
    act.queries = act.keys = 120;
    add(act, "ACT on three of four heads");
    Case actMasked;
    actMasked.act = actMasked.mask = actMasked.headMode = actMasked.probScale = true;
    actMasked.window = 40;
    actMasked.queries = 50;
    actMasked.keys = 90;
    add(actMasked, "ACT with a mask, a window, a cache, head modes and probability scales");
    Case tall;
    tall.queries = tall.keys = 300;
    tall.headDim = tall.valueDim = 64;
    tall.heads = 3;
    tall.kvHeads = 1;
    add(tall, "300 tokens, d 64, 3 heads on one kv head");
    Case one;
    one.queries = 1;
    one.keys = 29;
    one.learned = true;
    add(one, "one query (decoding) with learned sinks");
    return all;
}

TEST(FusedAttention, MatchesTheMaterialisedAttentionWithEveryControlOnEveryInstructionSetAndThreadCount)
{
    Restore restore;
    uint64_t seed = 1;
    for (const Case &c : cases()) {
        const Inputs in = makeInputs(c, seed++);
        const Reference r = reference(c, in);
        for (AttentionIsa isa : isas()) {
            ASSERT_EQ(setAttentionIsa(isa), isa);
            for (int threads : {1, 3}) {
                setParallelThreads(threads);
                const Engine e = runEngine(c, in);
                expectMatches(c, r, e,
                              c.name + " [" + attentionIsaName(isa) + ", " + std::to_string(threads) + " threads]");
            }
        }
    }
}

TEST(FusedAttention, StatisticsEqualTheCudaKernelsCpuReference)
{
    // layerAttentionStats (attention_tiles.h) is the contract of the CUDA statistics kernel: the engine
    // computes the same numbers for the controls both know.
    Case c;
    c.queries = c.keys = 257;
    c.headDim = c.valueDim = 32;
    c.bias = c.temperature = c.sinkLogit = c.norms = c.sinkWeight = true;
    c.window = 100;
    const Inputs in = makeInputs(c, 99);
    LayerAttentionInput li;
    li.q = ptr(in.q);
    li.k = ptr(in.k);
    li.heads = c.heads;
    li.kvHeads = c.kvHeads;
    li.tokens = c.queries;
    li.headDim = c.headDim;
    li.logitBias = ptr(in.bias);
    li.temperature = ptr(in.temperature);
    li.sinkLogit = ptr(in.sinkLogit);
    li.sinkWeight = ptr(in.sinkWeight);
    li.valueNorms = ptr(in.norms);
    li.window = c.window;
    auto ref = layerAttentionStats(li, 64);
    ASSERT_TRUE(ref) << ref.error().message;
    Restore restore;
    for (AttentionIsa isa : isas()) {
        setAttentionIsa(isa);
        const Engine e = runEngine(c, in);
        auto diff = [](const std::vector<float> &a, const at::Tensor &b, bool negate = false) {
            const at::Tensor x = torch::from_blob(const_cast<float *>(a.data()), b.sizes(), torch::kFloat);
            return maxDiff(negate ? -x : x, b);
        };
        const std::string where = attentionIsaName(isa);
        EXPECT_LT(diff(ref->sinkMass, e.sinkMass), 1e-5) << where;
        EXPECT_LT(diff(ref->firstMass, e.first), 1e-5) << where;
        EXPECT_LT(diff(ref->rowEntropy, e.plogp, true), 1e-5) << where;
        EXPECT_LT(diff(ref->rowMax, e.rowMax), 1e-5) << where;
        EXPECT_LT(diff(ref->rowWeighted, e.weighted), 3e-5) << where;
        EXPECT_LT(diff(ref->received, e.received), 1e-5 * c.queries) << where;
        EXPECT_LT(diff(ref->receivedPlogp, e.receivedPlogp), 1e-5 * c.queries) << where;
    }
}

TEST(FusedAttention, ARowWithEveryKeyMaskedIsNanAsTheSoftmaxOfMinusInfinity)
{
    Case c;
    c.queries = c.keys = 5;
    c.heads = c.kvHeads = 1;
    Inputs in = makeInputs(c, 3);
    in.mask = torch::zeros({5, 5});
    in.mask[2].fill_(-std::numeric_limits<float>::infinity());
    c.mask = true;
    const Engine e = runEngine(c, in);
    EXPECT_TRUE(std::isnan(e.out[2][0][0].item<float>()));
    EXPECT_FALSE(std::isnan(e.out[3][0][0].item<float>()));
    EXPECT_FALSE(std::isnan(e.out[1][0][0].item<float>()));
}

TEST(FusedAttention, RefusesInconsistentSizesWithAMessage)
{
    float x[4] = {};
    FusedAttentionInput a;
    a.q = a.k = a.v = x;
    a.heads = 3;
    a.kvHeads = 2;
    a.queries = a.keys = a.headDim = a.valueDim = 1;
    FusedAttentionOutput o;
    o.out = x;
    const Status st = fusedAttention(a, o);
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().message.find("kv heads 2"), std::string::npos) << st.error().message;
    a.kvHeads = 1;
    a.keys = 0;
    EXPECT_FALSE(fusedAttention(a, o));
    a.keys = 1;
    o.out = nullptr;
    EXPECT_FALSE(fusedAttention(a, o));
}

TEST(FusedAttention, TheInstructionSetCanBeCappedButNeverRaisedAboveTheCpu)
{
    Restore restore;
    EXPECT_EQ(setAttentionIsa(AttentionIsa::Baseline), AttentionIsa::Baseline);
    EXPECT_EQ(activeAttentionIsa(), AttentionIsa::Baseline);
    EXPECT_EQ(setAttentionIsa(AttentionIsa::Avx512), supportedAttentionIsa());
    EXPECT_EQ(setAttentionIsa(std::nullopt), supportedAttentionIsa()); // no SINKSCOPE_CPU_LEVEL in the tests
}

} // namespace
} // namespace sinkscope
