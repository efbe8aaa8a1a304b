// The TorchScript operators of SinkScope archives (contract 5, docs/model-format.md):
//   sinkscope::attend — the fused CPU attention with the statistics (sinkscope/attention/fused_attention.h),
//                       reading this layer's slices of the controls the attention step knows;
//   sinkscope::linear — x w^T (+ b) cut into row (or, for a few rows, output) blocks on the program's pool,
//                       each block one single-threaded BLAS call.
// Registered when the core library is linked in (ensureAttentionOps() keeps this object in the link);
// archives converted before contract 5 do not call them and run as before.
#include "attention/attention_op.h"

#include "sinkscope/attention/fused_attention.h"
#include "sinkscope/model/control_keys.h"
#include "sinkscope/runtime/parallel.h"

#include <torch/csrc/jit/frontend/resolver.h>
#include <torch/library.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <string>
#include <vector>

namespace sinkscope::detail {
namespace ck = control_keys;

namespace {

std::string shapeText(const at::Tensor &t)
{
    std::string s = "[";
    for (int64_t i = 0; i < t.dim(); ++i) {
        s += (i ? ", " : "") + std::to_string(t.size(i));
    }
    return s + "]";
}

// This layer's slice of a control, contiguous fp32 with `numel` elements; undefined when absent.
at::Tensor layerSlice(const c10::Dict<std::string, at::Tensor> &controls, const char *key, int64_t layer, int64_t numel)
{
    const auto it = controls.find(key);
    if (it == controls.end()) {
        return {};
    }
    const at::Tensor &all = it->value();
    TORCH_CHECK(all.dim() >= 1 && layer < all.size(0), "sinkscope::attend: control ", key, " ", shapeText(all),
                " has no layer ", layer);
    at::Tensor s = all[layer].to(at::kFloat).contiguous();
    TORCH_CHECK(s.numel() == numel, "sinkscope::attend: control ", key, " of layer ", layer, " has ", s.numel(),
                " values, expected ", numel);
    return s;
}

const float *ptr(const at::Tensor &t)
{
    return t.defined() ? t.data_ptr<float>() : nullptr;
}

std::vector<at::Tensor> attend(const at::Tensor &qIn, const at::Tensor &kIn, const at::Tensor &vIn, int64_t layer,
                               double scale, int64_t window, const at::Tensor &sinks, const at::Tensor &vnorm,
                               c10::Dict<std::string, at::Tensor> controls, int64_t stats)
{
    TORCH_CHECK(qIn.device().is_cpu(), "sinkscope::attend runs on the CPU (", qIn.device().str(), " given)");
    TORCH_CHECK(qIn.dim() == 3 && kIn.dim() == 3 && vIn.dim() == 3 && kIn.size(0) == vIn.size(0) &&
                    kIn.size(1) == vIn.size(1) && qIn.size(2) == kIn.size(2),
                "sinkscope::attend: q ", shapeText(qIn), ", k ", shapeText(kIn), ", v ", shapeText(vIn),
                " are not [H, T, d], [Hkv, Tk, d], [Hkv, Tk, dv]");
    const at::Tensor q = qIn.to(at::kFloat).contiguous(), k = kIn.to(at::kFloat).contiguous(),
                     v = vIn.to(at::kFloat).contiguous();
    const int64_t heads = q.size(0), t = q.size(1), tk = k.size(1), dv = v.size(2);
    FusedAttentionInput in;
    in.q = q.data_ptr<float>();
    in.k = k.data_ptr<float>();
    in.v = v.data_ptr<float>();
    in.heads = heads;
    in.kvHeads = k.size(0);
    in.queries = t;
    in.keys = tk;
    in.headDim = q.size(2);
    in.valueDim = dv;
    in.scale = static_cast<float>(scale);
    in.window = window;
    at::Tensor mask;
    if (const auto it = controls.find(ck::kAttnMask); it != controls.end()) {
        mask = it->value().to(at::kFloat).contiguous();
        TORCH_CHECK(mask.numel() == t * tk, "sinkscope::attend: control attn_mask ", shapeText(mask), " is not [", t,
                    ", ", tk, "]");
    }
    const at::Tensor bias = layerSlice(controls, ck::kLogitBias, layer, heads * tk);
    const at::Tensor temperature = layerSlice(controls, ck::kTemperature, layer, heads);
    const at::Tensor sinkLogit = layerSlice(controls, ck::kSinkLogit, layer, heads);
    const at::Tensor headMode = layerSlice(controls, ck::kHeadMode, layer, heads);
    const at::Tensor probScale = layerSlice(controls, ck::kProbScale, layer, heads * tk);
    const at::Tensor valueScale = layerSlice(controls, ck::kValueScale, layer, heads * tk);
    const at::Tensor headGate = layerSlice(controls, ck::kHeadGate, layer, heads);
    const at::Tensor actHeads = layerSlice(controls, ck::kActHeads, layer, heads);
    const at::Tensor actBeta = layerSlice(controls, ck::kActBeta, layer, heads);
    const at::Tensor actThres = layerSlice(controls, ck::kActThres, layer, heads);
    TORCH_CHECK(actHeads.defined() == actBeta.defined() && actHeads.defined() == actThres.defined(),
                "sinkscope::attend: act_heads, act_beta and act_thres come together");
    const at::Tensor learned = sinks.numel() > 0 ? sinks.to(at::kFloat).contiguous() : at::Tensor();
    TORCH_CHECK(!learned.defined() || learned.numel() == heads, "sinkscope::attend: sinks ", shapeText(sinks),
                " is not [", heads, "]");
    const at::Tensor norms = vnorm.numel() > 0 ? vnorm.to(at::kFloat).contiguous() : at::Tensor();
    TORCH_CHECK(!norms.defined() || norms.numel() == heads * tk, "sinkscope::attend: value norms ", shapeText(vnorm),
                " are not [", heads, ", ", tk, "]");
    in.mask = ptr(mask);
    in.logitBias = ptr(bias);
    in.temperature = ptr(temperature);
    in.learnedSink = ptr(learned);
    in.sinkLogit = ptr(sinkLogit);
    in.headMode = ptr(headMode);
    in.probScale = ptr(probScale);
    in.probRenorm = probScale.defined() && controls.contains(ck::kProbRenorm);
    in.valueScale = ptr(valueScale);
    in.headGate = ptr(headGate);
    in.actHeads = ptr(actHeads);
    in.actBeta = ptr(actBeta);
    in.actThres = ptr(actThres);
    in.valueNorms = ptr(norms);

    at::Tensor out = at::empty({t, heads * dv}, q.options());
    FusedAttentionOutput o;
    o.out = out.data_ptr<float>();
    std::vector<at::Tensor> result{out};
    TORCH_CHECK(stats >= kStatsNone && stats <= kStatsFirstMass, "sinkscope::attend: statistics level ", stats,
                " is not 0, 1 or 2");
    if (stats != kStatsNone) {
        // rows: sink mass (key 0), first mass, sum A log A, row max, sum A f, learned-sink share; columns:
        // received, received A log A. Level kStatsFirstMass fills the first-token mass alone (no extra sweep).
        at::Tensor rows = at::zeros({kRowStats, heads, t}, q.options());
        at::Tensor cols = at::zeros({2, heads, tk}, q.options().dtype(at::kDouble));
        float *r = rows.data_ptr<float>();
        const int64_t n = heads * t;
        o.firstMass = r + n;
        if (stats == kStatsAll) {
            o.sinkMass = r;
            o.rowPlogp = r + 2 * n;
            o.rowMax = r + 3 * n;
            o.rowWeighted = r + 4 * n;
            o.nullShare = learned.defined() ? r + 5 * n : nullptr;
            o.received = cols.data_ptr<double>();
            o.receivedPlogp = o.received + heads * tk;
        }
        result.push_back(rows);
        result.push_back(cols);
    }
    if (auto st = fusedAttention(in, o); !st) {
        TORCH_CHECK(false, st.error().message);
    }
    return result;
}

at::Tensor linear(const at::Tensor &x, const at::Tensor &w, const c10::optional<at::Tensor> &b)
{
    const int64_t threads = parallelThreads();
    const bool split = threads > 1 && x.device().is_cpu() && x.dim() == 2 && x.scalar_type() == at::kFloat &&
                       w.scalar_type() == at::kFloat && x.size(0) * w.size(0) * x.size(1) >= (1 << 21);
    if (!split) {
        return b ? at::linear(x, w, *b) : at::linear(x, w);
    }
    const at::Tensor xc = x.contiguous(), wt = w.t();
    const int64_t rows = xc.size(0), n = w.size(0);
    at::Tensor out = at::empty({rows, n}, xc.options());
    // Each block is one BLAS call, which packs both operands: split the larger dimension, so that the smaller
    // operand is the one packed again per block, into two blocks per thread (enough to balance a busy
    // machine, few enough to keep the repacking small).
    const int64_t blocks = 2 * threads;
    if (rows >= n) {
        const int64_t grain = std::max<int64_t>(16, (rows + blocks - 1) / blocks);
        parallelFor(rows, grain, [&](int64_t begin, int64_t end) {
            at::Tensor slice = out.narrow(0, begin, end - begin);
            const at::Tensor xs = xc.narrow(0, begin, end - begin);
            if (b) {
                at::addmm_out(slice, *b, xs, wt);
            } else {
                at::mm_out(slice, xs, wt);
            }
        });
    } else {
        // Blocks of output features, written in place: a column block of the row-major output is a valid
        // BLAS destination (leading dimension n).
        const int64_t grain = std::max<int64_t>(64, ((n + blocks - 1) / blocks + 63) / 64 * 64);
        parallelFor(n, grain, [&](int64_t begin, int64_t end) {
            at::Tensor slice = out.narrow(1, begin, end - begin);
            const at::Tensor ws = wt.narrow(1, begin, end - begin);
            if (b) {
                at::addmm_out(slice, b->narrow(0, begin, end - begin), xc, ws);
            } else {
                at::mm_out(slice, xc, ws);
            }
        });
    }
    return out;
}

} // namespace

void ensureAttentionOps()
{
    // Nothing to do: calling it links this file, whose TORCH_LIBRARY block registers the operators.
}

namespace {

// The C++ front end's resolver knows `torch` only; archive code calls SinkScope's operators as
// `sinkscope.attend(...)`. Saved archives refer to them as ops.sinkscope.attend, which loading resolves.
struct ArchiveResolver : torch::jit::Resolver {
    std::shared_ptr<torch::jit::SugaredValue> resolveValue(const std::string &name, torch::jit::GraphFunction &,
                                                           const torch::jit::SourceRange &) override
    {
        if (name == "torch") {
            return std::make_shared<torch::jit::BuiltinModule>("aten");
        }
        if (name == "sinkscope") {
            return std::make_shared<torch::jit::BuiltinModule>("sinkscope");
        }
        return nullptr;
    }
};

} // namespace

void defineArchiveCode(torch::jit::Module &module, const std::string &source)
{
    ensureAttentionOps();
    module.define(source, std::make_shared<ArchiveResolver>());
}

} // namespace sinkscope::detail

TORCH_LIBRARY(sinkscope, m)
{
    m.def("attend(Tensor q, Tensor k, Tensor v, int layer, float scale, int window, Tensor sinks, Tensor vnorm, "
          "Dict(str, Tensor) controls, int stats) -> Tensor[]",
          &sinkscope::detail::attend);
    m.def("linear(Tensor x, Tensor w, Tensor? b) -> Tensor", &sinkscope::detail::linear);
}
