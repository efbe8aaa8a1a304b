#include "sinkscope/model/convert.h"

#include "attention/attention_op.h"
#include "model/convert_internal.h"
#include "model/torchscript_source.h"
#include "sinkscope/common/atomic_file.h"
#include "sinkscope/format/gguf.h"
#include "sinkscope/tokenizer/tokenizer.h"
#include "torch_util.h"

#include <torch/script.h>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <functional>
#include <set>

namespace sinkscope {
namespace detail {

at::Tensor rowsOf(const at::Tensor &t, int64_t begin, int64_t count)
{
    return t.narrow(0, begin, count).contiguous();
}

} // namespace detail

namespace {

using namespace detail;
namespace fs = std::filesystem;

class GgufWeights final : public WeightFile
{
public:
    explicit GgufWeights(const GgufFile &file) : m_file(file) {}
    const std::string &path() const override { return m_file.path(); }
    std::vector<std::string> names() const override
    {
        std::vector<std::string> out;
        for (const auto &t : m_file.tensors()) {
            out.push_back(t.name);
        }
        return out;
    }
    bool has(const std::string &name) const override { return m_file.findTensor(name) != nullptr; }
    std::vector<int64_t> shape(const std::string &name) const override
    {
        const GgufTensorInfo *info = m_file.findTensor(name);
        return info ? std::vector<int64_t>(info->ne.rbegin(), info->ne.rend()) : std::vector<int64_t>{};
    }
    Result<at::Tensor> readF32(const std::string &name) override
    {
        const GgufTensorInfo *info = m_file.findTensor(name);
        auto data = m_file.readTensorF32(*info);
        if (!data) {
            return data.error();
        }
        auto t = torch::empty(shape(name), torch::kFloat);
        std::memcpy(t.data_ptr<float>(), data->data(), data->size() * sizeof(float));
        return t;
    }

private:
    const GgufFile &m_file;
};

// llama.cpp's converter permutes the rows of q and k so that RoPE rotates adjacent pairs; undo it so
// the module (and captured q/k) follow the Hugging Face layout, where RoPE rotates the two halves.
at::Tensor unpermuteRope(const at::Tensor &w, int64_t heads)
{
    const int64_t rows = w.size(0);
    // GGUF row 2i + half of a head holds Hugging Face row half * d/2 + i.
    return w.view({heads, rows / heads / 2, 2, w.size(1)}).transpose(1, 2).reshape({rows, w.size(1)}).contiguous();
}

// Per layer and head, W_O^h^T W_O^h [L, H, d, d], where W_O^h = wo[:, h*d:(h+1)*d]: value norms after
// the output projection (SINKS.md M9) then cost d x d per key instead of d x D.
at::Tensor outputGram(const at::Tensor &wo, int64_t heads, int64_t headDim)
{
    const int64_t layers = wo.size(0), d = wo.size(1);
    auto perHead = wo.view({layers, d, heads, headDim}).permute({0, 2, 3, 1}); // [L, H, dh, D]
    return torch::matmul(perHead, perHead.transpose(-1, -2)).contiguous();
}

// Reads blk.<l>.<suffix> of a GGUF file for every layer into one [L, shape...] tensor.
Result<at::Tensor> readLayers(TensorLoader &in, int64_t layers, const std::string &suffix,
                              const std::vector<int64_t> &shape)
{
    // The first layer's tensor is checked against the file before [layers, ...] is allocated.
    if (auto first = in.read("blk.0." + suffix, shape); !first) {
        return first.error();
    }
    std::vector<int64_t> full{layers};
    full.insert(full.end(), shape.begin(), shape.end());
    auto stacked = torch::empty(full, torch::kFloat);
    for (int64_t l = 0; l < layers; ++l) {
        auto t = in.read("blk." + std::to_string(l) + "." + suffix, shape);
        if (!t) {
            return t.error();
        }
        stacked[l].copy_(*t);
    }
    return stacked;
}

class GgufWeightMap final : public WeightMap
{
public:
    GgufWeightMap(const ModelConfig &c, TensorLoader &in) : m_c(c), m_in(in) {}
    TensorLoader &loader() override { return m_in; }

    bool hasGlobal(const std::string &what) const override
    {
        if (what == "lm_head") {
            return m_in.has("output.weight");
        }
        return m_in.has(globalName(what));
    }

    Result<at::Tensor> get(const std::string &what, int64_t layer, const std::vector<int64_t> &shape) override
    {
        if (layer < 0) {
            return m_in.read(what == "lm_head" ? "output.weight" : globalName(what), shape);
        }
        const std::string blk = "blk." + std::to_string(layer) + ".";
        const Architecture a = m_c.architecture;
        const int64_t H = m_c.heads, KV = m_c.kvHeads, d = m_c.headDim, D = m_c.embedding, F = m_c.feedForward;
        // llama.cpp permutes q/k rows of arch llama (Mistral files included) so RoPE rotates adjacent pairs;
        // the decoder rotates halves as Hugging Face does.
        const bool permuted = a == Architecture::Llama || a == Architecture::Mistral;
        if (a == Architecture::Phi3 && (what == "wq" || what == "wk" || what == "wv")) {
            SINKSCOPE_TRY_ASSIGN(qkv, m_in.read(blk + "attn_qkv.weight", {(H + 2 * KV) * d, D}));
            return what == "wq" ? rowsOf(qkv, 0, H * d) : rowsOf(qkv, (what == "wk" ? H : H + KV) * d, KV * d);
        }
        if (a == Architecture::GptNeox && (what[0] == 'w' || what[0] == 'b') && what.size() == 2 &&
            std::string("qkv").find(what[1]) != std::string::npos) {
            // llama.cpp stores GPT-NeoX's per-head [q|k|v] rows as [Q; K; V] blocks.
            const bool bias = what[0] == 'b';
            const std::vector<int64_t> fused = bias ? std::vector<int64_t>{3 * D} : std::vector<int64_t>{3 * D, D};
            SINKSCOPE_TRY_ASSIGN(qkv, m_in.read(blk + (bias ? "attn_qkv.bias" : "attn_qkv.weight"), fused));
            const int64_t part = what[1] == 'q' ? 0 : what[1] == 'k' ? 1 : 2;
            return rowsOf(qkv, part * D, D);
        }
        if (a == Architecture::Phi3 && (what == "w_gate" || what == "w_up")) {
            SINKSCOPE_TRY_ASSIGN(gu, m_in.read(blk + "ffn_up.weight", {2 * F, D}));
            return rowsOf(gu, what == "w_gate" ? 0 : F, F);
        }
        const std::string name = blk + layerName(what);
        if (permuted && (what == "wq" || what == "wk")) {
            SINKSCOPE_TRY_ASSIGN(w, m_in.read(name, shape));
            return unpermuteRope(w, what == "wq" ? H : KV);
        }
        return m_in.read(name, shape);
    }

private:
    static std::string globalName(const std::string &what)
    {
        static const std::map<std::string, std::string> names = {
            {"tok_embd", "token_embd.weight"},         {"out_norm", "output_norm.weight"},
            {"out_norm_b", "output_norm.bias"},        {"rope_freqs", "rope_freqs.weight"},
            {"rope_long", "rope_factors_long.weight"}, {"rope_short", "rope_factors_short.weight"},
        };
        auto it = names.find(what);
        return it != names.end() ? it->second : what;
    }

    std::string layerName(const std::string &what) const
    {
        const bool moe = m_c.mlpKind == MlpKind::Experts;
        // gpt-oss's norm before the MLP is called post_attention_norm in GGUF (MODELS.md, gpt_oss).
        if (what == "ffn_norm" && m_c.architecture == Architecture::GptOss) {
            return "post_attention_norm.weight";
        }
        static const std::map<std::string, std::string> names = {
            {"attn_norm", "attn_norm.weight"},
            {"attn_norm_b", "attn_norm.bias"},
            {"wq", "attn_q.weight"},
            {"wk", "attn_k.weight"},
            {"wv", "attn_v.weight"},
            {"bq", "attn_q.bias"},
            {"bk", "attn_k.bias"},
            {"bv", "attn_v.bias"},
            {"wo", "attn_output.weight"},
            {"bo", "attn_output.bias"},
            {"q_norm", "attn_q_norm.weight"},
            {"k_norm", "attn_k_norm.weight"},
            {"post_attn_norm", "post_attention_norm.weight"},
            {"ffn_norm", "ffn_norm.weight"},
            {"ffn_norm_b", "ffn_norm.bias"},
            {"post_ffn_norm", "post_ffw_norm.weight"},
            {"sinks", "attn_sinks.weight"},
            {"router_w", "ffn_gate_inp.weight"},
            {"router_b", "ffn_gate_inp.bias"},
        };
        if (auto it = names.find(what); it != names.end()) {
            return it->second;
        }
        // w_gate -> ffn_gate.weight (ffn_gate_exps.weight for experts), b_up -> ffn_up.bias, ...
        const std::string part = what.substr(2);
        return "ffn_" + part + (moe ? "_exps" : "") + (what[0] == 'w' ? ".weight" : ".bias");
    }

    const ModelConfig &m_c;
    TensorLoader &m_in;
};

// RoPE inverse frequencies as Hugging Face computes them (modeling_rope_utils.py), in float32:
// inv[i] = theta^(-2i/d) for the rotated dimensions d, then the family's scaling.
at::Tensor defaultInvFreq(double theta, int64_t dim)
{
    auto idx = torch::arange(0, dim, 2, torch::kLong).to(torch::kFloat);
    return 1.0 / torch::pow(torch::tensor(theta, torch::kFloat), idx / static_cast<double>(dim));
}

struct RopeTables {
    at::Tensor inv;     // [R, d/2]: row 0 global layers, row 1 sliding layers (Gemma 3's local base)
    at::Tensor invLong; // [R, d/2]: longrope's long factors (== inv otherwise)
    at::Tensor mscale;  // [R]: cos/sin scale (YaRN, longrope attention factor)
    int64_t longAfter = 0;
    std::vector<int64_t> layerRow;
};

Result<RopeTables> ropeTables(const ModelConfig &c, WeightMap &w)
{
    const int64_t dim = c.ropeDim, half = dim / 2;
    const RopeScaling &r = c.ropeScaling;
    at::Tensor inv = defaultInvFreq(c.ropeTheta, dim);
    at::Tensor invLong = inv;
    double mscale = 1.0;
    if (r.type == "linear") {
        inv = inv / r.factor;
        invLong = inv;
    } else if (r.type == "llama3" && r.fromTensor) {
        SINKSCOPE_TRY_ASSIGN(freqs, w.get("rope_freqs", -1, {half}));
        inv = inv / freqs;
        invLong = inv;
    } else if (r.type == "llama3") {
        const double L = static_cast<double>(r.originalContext);
        const double lowWl = L / r.lowFreqFactor, highWl = L / r.highFreqFactor;
        auto wl = 2 * M_PI / inv;
        auto scaled = torch::where(wl > lowWl, inv / r.factor, inv);
        auto smooth = (L / wl - r.lowFreqFactor) / (r.highFreqFactor - r.lowFreqFactor);
        auto smoothed = (1 - smooth) * scaled / r.factor + smooth * scaled;
        auto medium = (wl >= highWl).logical_and(wl <= lowWl);
        inv = torch::where(medium, smoothed, scaled);
        invLong = inv;
    } else if (r.type == "yarn") {
        const double base = c.ropeTheta, factor = r.factor, L = static_cast<double>(r.originalContext);
        mscale = r.attentionFactor > 0 ? r.attentionFactor : (factor <= 1 ? 1.0 : 0.1 * std::log(factor) + 1.0);
        auto correctionDim = [&](double rotations) {
            return static_cast<double>(dim) * std::log(L / (rotations * 2 * M_PI)) / (2 * std::log(base));
        };
        double low = correctionDim(r.betaFast), high = correctionDim(r.betaSlow);
        if (r.truncate) {
            low = std::floor(low);
            high = std::ceil(high);
        }
        low = std::max(low, 0.0);
        high = std::min(high, static_cast<double>(dim - 1));
        if (low == high) {
            high += 0.001;
        }
        auto posFreqs = torch::pow(torch::tensor(base, torch::kFloat),
                                   torch::arange(0, dim, 2, torch::kLong).to(torch::kFloat) / static_cast<double>(dim));
        auto extrapolation = 1.0 / posFreqs;
        auto interpolation = 1.0 / (factor * posFreqs);
        auto ramp = ((torch::arange(half, torch::kFloat) - low) / (high - low)).clamp(0, 1);
        auto extrapolationFactor = 1 - ramp;
        inv = interpolation * (1 - extrapolationFactor) + extrapolation * extrapolationFactor;
        invLong = inv;
    } else if (r.type == "longrope") {
        at::Tensor longF, shortF;
        if (r.fromTensor) {
            SINKSCOPE_TRY_ASSIGN(lf, w.get("rope_long", -1, {half}));
            SINKSCOPE_TRY_ASSIGN(sf, w.get("rope_short", -1, {half}));
            longF = lf;
            shortF = sf;
        } else {
            longF = torch::tensor(std::vector<float>(r.longFactor.begin(), r.longFactor.end()));
            shortF = torch::tensor(std::vector<float>(r.shortFactor.begin(), r.shortFactor.end()));
        }
        auto shape = torch::arange(0, dim, 2, torch::kLong).to(torch::kFloat) / static_cast<double>(dim);
        auto powers = torch::pow(torch::tensor(c.ropeTheta, torch::kFloat), shape);
        inv = 1.0 / (shortF * powers);
        invLong = 1.0 / (longF * powers);
        const double L = static_cast<double>(r.originalContext);
        const double factor = r.factor > 0 ? r.factor : static_cast<double>(c.contextLength) / L;
        mscale = r.attentionFactor > 0 ? r.attentionFactor
                                       : (factor <= 1 ? 1.0 : std::sqrt(1 + std::log(factor) / std::log(L)));
    }
    RopeTables t;
    const bool local = c.ropeLocalTheta > 0;
    if (local) {
        const at::Tensor invLocal = defaultInvFreq(c.ropeLocalTheta, dim);
        t.inv = torch::stack({inv, invLocal});
        t.invLong = torch::stack({invLong, invLocal});
        t.mscale = torch::tensor({static_cast<float>(mscale), 1.0f});
    } else {
        t.inv = inv.unsqueeze(0).contiguous();
        t.invLong = invLong.unsqueeze(0).contiguous();
        t.mscale = torch::tensor({static_cast<float>(mscale)});
    }
    t.longAfter = r.type == "longrope" ? r.originalContext : 0;
    for (int64_t l = 0; l < c.layers; ++l) {
        t.layerRow.push_back(local && c.windowOf(l) > 0 ? 1 : 0);
    }
    return t;
}

} // namespace

namespace detail {

// The RoPE decoder (every family but GPT-2): weights stacked per layer, absent ones as empty tensors,
// and the attributes that select each family's variant in kDecoder.
Status buildDecoder(const ModelConfig &c, WeightMap &w, Builder &b)
{
    const int64_t L = c.layers, D = c.embedding, F = c.feedForward, H = c.heads, KV = c.kvHeads, d = c.headDim;
    const int64_t E = c.experts;
    const bool moe = c.mlpKind == MlpKind::Experts;
    auto none = [&] { return torch::empty({L, 0}, torch::kFloat); };
    auto stack = [&](const std::string &what, const std::vector<int64_t> &shape) -> Result<at::Tensor> {
        // L and the shape come from the config: the first and last layers are checked against the file
        // before [L, ...] is allocated, so a config that disagrees with the weights fails on a tensor.
        auto first = w.get(what, 0, shape);
        if (!first) {
            return first.error();
        }
        auto last = w.get(what, L - 1, shape);
        if (!last) {
            return last.error();
        }
        std::vector<int64_t> full{L};
        full.insert(full.end(), shape.begin(), shape.end());
        auto out = torch::empty(full, torch::kFloat);
        out[0].copy_(*first);
        out[L - 1].copy_(*last);
        for (int64_t l = 1; l < L - 1; ++l) {
            auto t = w.get(what, l, shape);
            if (!t) {
                return t.error();
            }
            out[l].copy_(*t);
        }
        return out;
    };
    auto add = [&](const std::string &name, bool present, const std::string &what,
                   const std::vector<int64_t> &shape) -> Status {
        if (!present) {
            b.param(name, none());
            return Ok{};
        }
        auto t = stack(what, shape);
        if (!t) {
            return t.error();
        }
        b.param(name, *t);
        return Ok{};
    };
    const bool layerNorm = c.normKind == NormKind::Layer;
    const bool preNorms = c.normPlacement != NormPlacement::Post;
    const bool postNorms = c.normPlacement != NormPlacement::Pre;
    const int64_t qn = c.qkNorm == QkNorm::Full ? H * d : d, kn = c.qkNorm == QkNorm::Full ? KV * d : d;
    struct Part {
        const char *name;
        bool present;
        std::vector<int64_t> shape;
    };
    const std::vector<Part> parts = {
        {"attn_norm", preNorms, {D}},
        {"attn_norm_b", preNorms && layerNorm, {D}},
        {"wq", true, {H * d, D}},
        {"wk", true, {KV * d, D}},
        {"wv", true, {KV * d, D}},
        {"bq", c.qkvBias, {H * d}},
        {"bk", c.qkvBias, {KV * d}},
        {"bv", c.qkvBias, {KV * d}},
        {"wo", true, {D, H * d}},
        {"bo", c.outputBias, {D}},
        {"q_norm", c.qkNorm != QkNorm::None, {qn}},
        {"k_norm", c.qkNorm != QkNorm::None, {kn}},
        {"post_attn_norm", postNorms, {D}},
        {"ffn_norm", preNorms, {D}},
        {"ffn_norm_b", preNorms && layerNorm, {D}},
        {"post_ffn_norm", postNorms, {D}},
        {"w_gate", c.mlpKind != MlpKind::Plain, moe ? std::vector<int64_t>{E, F, D} : std::vector<int64_t>{F, D}},
        {"w_up", true, moe ? std::vector<int64_t>{E, F, D} : std::vector<int64_t>{F, D}},
        {"w_down", true, moe ? std::vector<int64_t>{E, D, F} : std::vector<int64_t>{D, F}},
        {"b_gate", c.mlpBias && c.mlpKind != MlpKind::Plain,
         moe ? std::vector<int64_t>{E, F} : std::vector<int64_t>{F}},
        {"b_up", c.mlpBias, moe ? std::vector<int64_t>{E, F} : std::vector<int64_t>{F}},
        {"b_down", c.mlpBias, moe ? std::vector<int64_t>{E, D} : std::vector<int64_t>{D}},
        {"router_w", moe, {E, D}},
        {"router_b", moe, {E}},
        {"sinks", c.learnedSinks, {H}},
    };
    for (const Part &p : parts) {
        if (Status s = add(p.name, p.present, p.name, p.shape); !s) {
            return s;
        }
    }
    SINKSCOPE_TRY_ASSIGN(emb, w.get("tok_embd", -1, {c.vocabSize, D}));
    SINKSCOPE_TRY_ASSIGN(outNorm, w.get("out_norm", -1, {D}));
    at::Tensor outNormB = torch::empty({0}, torch::kFloat);
    if (layerNorm) {
        SINKSCOPE_TRY_ASSIGN(bias, w.get("out_norm_b", -1, {D}));
        outNormB = bias;
    }
    at::Tensor lmHead = emb;
    if (!c.tiedOutput) {
        SINKSCOPE_TRY_ASSIGN(head, w.get("lm_head", -1, {c.vocabSize, D}));
        lmHead = head;
    }
    auto rope = ropeTables(c, w);
    if (!rope) {
        return rope.error();
    }
    b.param("tok_embd", emb);
    b.param("out_norm", outNorm);
    b.param("out_norm_b", outNormB);
    b.param("lm_head", lmHead); // the same storage as tok_embd when tied: saved once
    at::Tensor wo = b.module.attr("wo").toTensor();
    b.module.register_buffer("wo_gram", outputGram(wo, H, d));
    b.module.register_buffer("rope_inv", rope->inv.contiguous());
    b.module.register_buffer("rope_long", rope->invLong.contiguous());
    b.module.register_buffer("rope_mscale", rope->mscale);
    b.attrInt("rope_long_after", rope->longAfter);
    b.attrInts("layer_rope", rope->layerRow);
    std::vector<int64_t> windows(static_cast<size_t>(L), 0);
    for (int64_t l = 0; l < L; ++l) {
        windows[static_cast<size_t>(l)] = c.windowOf(l);
    }
    b.attrInts("windows", windows);
    b.attrInt("rope_dim", c.ropeDim);
    b.attrInt("norm_kind", layerNorm ? 1 : 0);
    b.attrInt("norm_place", static_cast<int64_t>(c.normPlacement));
    b.attrInt("qk_norm", static_cast<int64_t>(c.qkNorm));
    b.attrInt("mlp_kind", static_cast<int64_t>(c.mlpKind));
    b.attrInt("act", static_cast<int64_t>(c.activation));
    b.attrInt("qkv_bias", c.qkvBias ? 1 : 0);
    b.attrInt("o_bias", c.outputBias ? 1 : 0);
    b.attrInt("mlp_bias", c.mlpBias ? 1 : 0);
    b.attrInt("parallel_residual", c.parallelResidual ? 1 : 0);
    b.attrInt("has_sinks", c.learnedSinks ? 1 : 0);
    b.attrInt("n_experts", E);
    b.attrInt("experts_per_tok", c.expertsPerToken);
    b.attrFloat("swiglu_alpha", c.swigluAlpha);
    b.attrFloat("swiglu_limit", c.swigluLimit);
    b.attrFloat("embed_scale", c.embedScale);
    b.attrFloat("softcap", c.finalLogitSoftcap);
    return Ok{};
}

} // namespace detail

namespace {

Status buildGpt2(const ModelConfig &c, TensorLoader &in, Builder &b)
{
    const int64_t L = c.layers, D = c.embedding, F = c.feedForward;
    SINKSCOPE_TRY_ASSIGN(emb, in.read("token_embd.weight", {c.vocabSize, D}));
    SINKSCOPE_TRY_ASSIGN(pos, in.read("position_embd.weight", {c.contextLength, D}));
    SINKSCOPE_TRY_ASSIGN(ln1w, readLayers(in, L, "attn_norm.weight", {D}));
    SINKSCOPE_TRY_ASSIGN(ln1b, readLayers(in, L, "attn_norm.bias", {D}));
    SINKSCOPE_TRY_ASSIGN(wqkv, readLayers(in, L, "attn_qkv.weight", {3 * D, D}));
    SINKSCOPE_TRY_ASSIGN(bqkv, readLayers(in, L, "attn_qkv.bias", {3 * D}));
    SINKSCOPE_TRY_ASSIGN(wo, readLayers(in, L, "attn_output.weight", {D, D}));
    SINKSCOPE_TRY_ASSIGN(bo, readLayers(in, L, "attn_output.bias", {D}));
    SINKSCOPE_TRY_ASSIGN(ln2w, readLayers(in, L, "ffn_norm.weight", {D}));
    SINKSCOPE_TRY_ASSIGN(ln2b, readLayers(in, L, "ffn_norm.bias", {D}));
    SINKSCOPE_TRY_ASSIGN(wUp, readLayers(in, L, "ffn_up.weight", {F, D}));
    SINKSCOPE_TRY_ASSIGN(bUp, readLayers(in, L, "ffn_up.bias", {F}));
    SINKSCOPE_TRY_ASSIGN(wDown, readLayers(in, L, "ffn_down.weight", {D, F}));
    SINKSCOPE_TRY_ASSIGN(bDown, readLayers(in, L, "ffn_down.bias", {D}));
    SINKSCOPE_TRY_ASSIGN(outW, in.read("output_norm.weight", {D}));
    SINKSCOPE_TRY_ASSIGN(outB, in.read("output_norm.bias", {D}));
    at::Tensor lmHead = emb;
    if (!c.tiedOutput) {
        SINKSCOPE_TRY_ASSIGN(out, in.read("output.weight", {c.vocabSize, D}));
        lmHead = out;
    }
    b.param("tok_embd", emb);
    b.param("pos_embd", pos);
    b.param("ln1_w", ln1w);
    b.param("ln1_b", ln1b);
    b.param("w_qkv", wqkv);
    b.param("b_qkv", bqkv);
    b.param("w_o", wo);
    b.module.register_buffer("wo_gram", outputGram(wo, c.heads, c.headDim));
    b.param("b_o", bo);
    b.param("ln2_w", ln2w);
    b.param("ln2_b", ln2b);
    b.param("w_up", wUp);
    b.param("b_up", bUp);
    b.param("w_down", wDown);
    b.param("b_down", bDown);
    b.param("out_norm_w", outW);
    b.param("out_norm_b", outB);
    b.param("lm_head", lmHead);
    // The shared attention step reads these; GPT-2 has no learned sinks.
    b.attrInt("has_sinks", 0);
    b.param("sinks", torch::empty({L, 0}, torch::kFloat));
    return Ok{};
}

} // namespace

namespace detail {

// Builds the module from `weights`, checks that every tensor of the source was used, and writes the
// archive through a temporary file, so a failed conversion never leaves a half-written archive.
Status writeArchive(const ModelConfig &c, const Tokenizer &tokenizer, TensorLoader &loader,
                    const std::function<Status(Builder &)> &build, const std::string &outPath)
{
    c10::InferenceMode guard;
    Builder b;
    if (Status built = build(b); !built) {
        return built;
    }
    if (Status used = loader.checkAllUsed(architectureName(c.architecture)); !used) {
        return used;
    }
    ModelConfig stored = c;
    if (c.learnedSinks) {
        // The metrics' streaming path recomputes attention from q and k: it needs the sink logits too.
        const at::Tensor sinks = b.module.attr("sinks").toTensor().to(torch::kDouble).contiguous();
        stored.sinkLogits.assign(sinks.data_ptr<double>(), sinks.data_ptr<double>() + sinks.numel());
    }
    b.attrInt("n_layers", c.layers);
    b.attrInt("n_heads", c.heads);
    b.attrInt("n_kv_heads", c.kvHeads);
    b.attrInt("head_dim", c.headDim);
    b.attrInt("d_model", c.embedding);
    b.attrFloat("norm_eps", c.normEps);
    b.attrFloat("attn_scale", c.attnScale > 0 ? c.attnScale : 1.0 / std::sqrt(static_cast<double>(c.headDim)));
    detail::defineArchiveCode(b.module, detail::torchScriptSource(c.architecture));

    torch::jit::ExtraFilesMap extra;
    extra["sinkscope/format"] = "sinkscope-model\n";
    extra["sinkscope/config.json"] = stored.toJson();
    extra["sinkscope/tokenizer.json"] = tokenizer.toJson();

    const fs::path out(outPath);
    if (out.has_parent_path()) {
        std::error_code ec;
        fs::create_directories(out.parent_path(), ec);
    }
    // A temporary of its own (PendingFile): two processes converting the same source into the cache (two
    // test programs, a window and a CLI) each write their own, and the last rename wins with a whole archive.
    auto pending = PendingFile::create(outPath);
    if (!pending) {
        return pending.error();
    }
    try {
        b.module.save(pending->tempPath(), extra);
    } catch (const c10::Error &e) {
        return makeError(ErrorCode::Io, outPath + ": cannot write model archive (" +
                                            std::string(e.what_without_backtrace()).substr(0, 200) + ")");
    }
    return pending->commit();
}

Status checkVocabulary(const Tokenizer &tokenizer, const ModelConfig &c, const std::string &path)
{
    if (tokenizer.vocabSize() > c.vocabSize) {
        return makeError(ErrorCode::Corrupt, path + ": tokenizer has " + std::to_string(tokenizer.vocabSize()) +
                                                 " tokens but the embedding only " + std::to_string(c.vocabSize));
    }
    return Ok{};
}

} // namespace detail

Status convertGguf(const std::string &ggufPath, const std::string &outPath, const ConvertOptions &options)
{
    auto file = GgufFile::open(ggufPath);
    if (!file) {
        return file.error();
    }
    auto config = ModelConfig::fromGguf(**file);
    if (!config) {
        return config.error();
    }
    auto tokData = Tokenizer::dataFromGguf(**file);
    if (!tokData) {
        return tokData.error();
    }
    auto tokenizer = Tokenizer::create(std::move(tokData).value());
    if (!tokenizer) {
        return makeError(tokenizer.error().code, ggufPath + ": tokenizer: " + tokenizer.error().message);
    }
    if (Status ok = checkVocabulary(**tokenizer, *config, ggufPath); !ok) {
        return ok;
    }
    return detail::guardTorch(ggufPath, [&]() -> Status {
        GgufWeights weights(**file);
        TensorLoader loader(weights, options.progress);
        const ModelConfig &c = *config;
        return writeArchive(
            c, **tokenizer, loader,
            [&](Builder &b) {
                if (c.architecture == Architecture::Gpt2) {
                    return buildGpt2(c, loader, b);
                }
                GgufWeightMap map(c, loader);
                return buildDecoder(c, map, b);
            },
            outPath);
    });
}

ModelSource modelSourceOf(const std::string &path)
{
    const fs::path p(path);
    std::error_code ec;
    if (fs::is_directory(p, ec) || p.filename() == "config.json") {
        return ModelSource::HfFolder;
    }
    std::string ext = p.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
    return ext == ".gguf" ? ModelSource::Gguf : ModelSource::Archive;
}

Status convertModel(const std::string &input, const std::string &outPath, const ConvertOptions &options)
{
    switch (modelSourceOf(input)) {
    case ModelSource::Gguf:
        return convertGguf(input, outPath, options);
    case ModelSource::HfFolder:
        return convertHfFolder(input, outPath, options);
    case ModelSource::Archive:
        break;
    }
    return makeError(ErrorCode::InvalidArgument,
                     input + ": not a GGUF file (.gguf) or a Hugging Face model folder (with config.json)");
}

} // namespace sinkscope
