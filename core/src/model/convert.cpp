#include "sinkscope/model/convert.h"

#include "model/torchscript_source.h"
#include "sinkscope/format/gguf.h"
#include "sinkscope/tokenizer/tokenizer.h"
#include "torch_util.h"

#include <torch/script.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <set>

namespace sinkscope {
namespace {

namespace fs = std::filesystem;

class TensorLoader
{
public:
    TensorLoader(const GgufFile &file, const ProgressCallback &progress) : m_file(file), m_progress(progress)
    {
        m_total = static_cast<int64_t>(file.tensors().size());
    }

    // Reads tensor `name`, checks its PyTorch shape (GGUF ne reversed) and returns it as fp32.
    Result<at::Tensor> read(const std::string &name, std::vector<int64_t> shape)
    {
        const GgufTensorInfo *info = m_file.findTensor(name);
        if (!info) {
            return makeError(ErrorCode::Corrupt, m_file.path() + ": missing tensor '" + name + "'");
        }
        std::vector<int64_t> torchShape(info->ne.rbegin(), info->ne.rend());
        if (torchShape != shape) {
            return makeError(ErrorCode::Corrupt, m_file.path() + ": tensor '" + name + "' has shape " +
                                                     shapeText(torchShape) + ", expected " + shapeText(shape));
        }
        m_read.insert(name);
        auto data = m_file.readTensorF32(*info);
        if (!data) {
            return data.error();
        }
        if (m_progress && !m_progress(static_cast<double>(++m_done) / static_cast<double>(m_total), name)) {
            return makeError(ErrorCode::Cancelled, m_file.path() + ": conversion cancelled");
        }
        auto t = torch::empty(shape, torch::kFloat);
        std::memcpy(t.data_ptr<float>(), data->data(), data->size() * sizeof(float));
        return t;
    }

    // Reads blk.<l>.<suffix> for every layer into one [L, shape...] tensor.
    Result<at::Tensor> readLayers(int64_t layers, const std::string &suffix, std::vector<int64_t> shape,
                                  const std::function<at::Tensor(const at::Tensor &)> &transform = {})
    {
        std::vector<int64_t> full{layers};
        full.insert(full.end(), shape.begin(), shape.end());
        auto stacked = torch::empty(full, torch::kFloat);
        for (int64_t l = 0; l < layers; ++l) {
            auto t = read("blk." + std::to_string(l) + "." + suffix, shape);
            if (!t) {
                return t.error();
            }
            stacked[l].copy_(transform ? transform(*t) : *t);
        }
        return stacked;
    }

    // Every tensor of the file went into the archive: one the converter does not implement (llama3 RoPE
    // scaling's rope_freqs, say) would otherwise be dropped and the model would run wrong without a word.
    Status checkAllUsed(const std::string &architecture) const
    {
        for (const auto &t : m_file.tensors()) {
            if (m_read.count(t.name) == 0) {
                const std::string why = t.name.rfind("rope_freqs", 0) == 0
                                            ? " (per-dimension RoPE frequency factors, llama3-style scaling)"
                                            : "";
                return makeError(ErrorCode::Unsupported, m_file.path() + ": tensor '" + t.name + "'" + why +
                                                             " is not implemented for " + architecture +
                                                             " models; converting without it would change the model");
            }
        }
        return Ok{};
    }

    static std::string shapeText(const std::vector<int64_t> &s)
    {
        std::string out = "[";
        for (size_t i = 0; i < s.size(); ++i) {
            out += (i ? ", " : "") + std::to_string(s[i]);
        }
        return out + "]";
    }

private:
    const GgufFile &m_file;
    const ProgressCallback &m_progress;
    std::set<std::string> m_read;
    int64_t m_total = 0;
    int64_t m_done = 0;
};

// llama.cpp's converter permutes the rows of q and k so that RoPE rotates adjacent pairs; undo it so
// the module (and captured q/k) follow the Hugging Face layout, where RoPE rotates the two halves.
at::Tensor unpermuteRope(const at::Tensor &w, int64_t heads)
{
    const int64_t rows = w.size(0);
    // GGUF row 2i + half of a head holds Hugging Face row half * d/2 + i.
    return w.view({heads, rows / heads / 2, 2, w.size(1)}).transpose(1, 2).reshape({rows, w.size(1)}).contiguous();
}

struct Builder {
    torch::jit::Module module{"SinkScopeModel"};

    void param(const std::string &name, const at::Tensor &t) { module.register_parameter(name, t, false); }
    void attrInt(const std::string &name, int64_t v) { module.register_attribute(name, c10::IntType::get(), v); }
    void attrFloat(const std::string &name, double v) { module.register_attribute(name, c10::FloatType::get(), v); }
};

#define SINKSCOPE_TRY_ASSIGN(var, expr)                                                                                \
    auto var##_r = (expr);                                                                                             \
    if (!var##_r) {                                                                                                    \
        return var##_r.error();                                                                                        \
    }                                                                                                                  \
    at::Tensor var = std::move(var##_r).value()

// Per layer and head, W_O^h^T W_O^h [L, H, d, d], where W_O^h = wo[:, h*d:(h+1)*d]: value norms after
// the output projection (SINKS.md M9) then cost d x d per key instead of d x D.
at::Tensor outputGram(const at::Tensor &wo, int64_t heads, int64_t headDim)
{
    const int64_t layers = wo.size(0), d = wo.size(1);
    auto perHead = wo.view({layers, d, heads, headDim}).permute({0, 2, 3, 1}); // [L, H, dh, D]
    return torch::matmul(perHead, perHead.transpose(-1, -2)).contiguous();
}

Status buildLlama(const ModelConfig &c, TensorLoader &in, Builder &b)
{
    const int64_t L = c.layers, D = c.embedding, F = c.feedForward, hd = c.headDim;
    const int64_t qDim = c.heads * hd, kvDim = c.kvHeads * hd;
    SINKSCOPE_TRY_ASSIGN(emb, in.read("token_embd.weight", {c.vocabSize, D}));
    SINKSCOPE_TRY_ASSIGN(attnNorm, in.readLayers(L, "attn_norm.weight", {D}));
    const int64_t heads = c.heads, kvHeads = c.kvHeads;
    SINKSCOPE_TRY_ASSIGN(wq, in.readLayers(L, "attn_q.weight", {qDim, D},
                                           [heads](const at::Tensor &w) { return unpermuteRope(w, heads); }));
    SINKSCOPE_TRY_ASSIGN(wk, in.readLayers(L, "attn_k.weight", {kvDim, D},
                                           [kvHeads](const at::Tensor &w) { return unpermuteRope(w, kvHeads); }));
    SINKSCOPE_TRY_ASSIGN(wv, in.readLayers(L, "attn_v.weight", {kvDim, D}));
    SINKSCOPE_TRY_ASSIGN(wo, in.readLayers(L, "attn_output.weight", {D, qDim}));
    SINKSCOPE_TRY_ASSIGN(ffnNorm, in.readLayers(L, "ffn_norm.weight", {D}));
    SINKSCOPE_TRY_ASSIGN(wGate, in.readLayers(L, "ffn_gate.weight", {F, D}));
    SINKSCOPE_TRY_ASSIGN(wUp, in.readLayers(L, "ffn_up.weight", {F, D}));
    SINKSCOPE_TRY_ASSIGN(wDown, in.readLayers(L, "ffn_down.weight", {D, F}));
    SINKSCOPE_TRY_ASSIGN(outNorm, in.read("output_norm.weight", {D}));
    at::Tensor lmHead = emb;
    if (!c.tiedOutput) {
        SINKSCOPE_TRY_ASSIGN(out, in.read("output.weight", {c.vocabSize, D}));
        lmHead = out;
    }
    b.param("tok_embd", emb);
    b.param("attn_norm", attnNorm);
    b.param("wq", wq);
    b.param("wk", wk);
    b.param("wv", wv);
    b.param("wo", wo);
    b.module.register_buffer("wo_gram", outputGram(wo, c.heads, c.headDim));
    b.param("ffn_norm", ffnNorm);
    b.param("w_gate", wGate);
    b.param("w_up", wUp);
    b.param("w_down", wDown);
    b.param("out_norm", outNorm);
    b.param("lm_head", lmHead); // the same storage as tok_embd when tied: saved once
    // inv_freq as Hugging Face computes it: 1 / theta^(2i/d) in float32.
    auto idx = torch::arange(0, c.ropeDim, 2, torch::kLong).to(torch::kFloat);
    auto invFreq = 1.0 / torch::pow(torch::tensor(c.ropeTheta, torch::kFloat), idx / static_cast<double>(c.ropeDim));
    b.module.register_buffer("inv_freq", invFreq.to(torch::kFloat));
    b.attrInt("rope_dim", c.ropeDim);
    b.attrFloat("rope_scale", c.ropeScale);
    return Ok{};
}

Status buildGpt2(const ModelConfig &c, TensorLoader &in, Builder &b)
{
    const int64_t L = c.layers, D = c.embedding, F = c.feedForward;
    SINKSCOPE_TRY_ASSIGN(emb, in.read("token_embd.weight", {c.vocabSize, D}));
    SINKSCOPE_TRY_ASSIGN(pos, in.read("position_embd.weight", {c.contextLength, D}));
    SINKSCOPE_TRY_ASSIGN(ln1w, in.readLayers(L, "attn_norm.weight", {D}));
    SINKSCOPE_TRY_ASSIGN(ln1b, in.readLayers(L, "attn_norm.bias", {D}));
    SINKSCOPE_TRY_ASSIGN(wqkv, in.readLayers(L, "attn_qkv.weight", {3 * D, D}));
    SINKSCOPE_TRY_ASSIGN(bqkv, in.readLayers(L, "attn_qkv.bias", {3 * D}));
    SINKSCOPE_TRY_ASSIGN(wo, in.readLayers(L, "attn_output.weight", {D, D}));
    SINKSCOPE_TRY_ASSIGN(bo, in.readLayers(L, "attn_output.bias", {D}));
    SINKSCOPE_TRY_ASSIGN(ln2w, in.readLayers(L, "ffn_norm.weight", {D}));
    SINKSCOPE_TRY_ASSIGN(ln2b, in.readLayers(L, "ffn_norm.bias", {D}));
    SINKSCOPE_TRY_ASSIGN(wUp, in.readLayers(L, "ffn_up.weight", {F, D}));
    SINKSCOPE_TRY_ASSIGN(bUp, in.readLayers(L, "ffn_up.bias", {F}));
    SINKSCOPE_TRY_ASSIGN(wDown, in.readLayers(L, "ffn_down.weight", {D, F}));
    SINKSCOPE_TRY_ASSIGN(bDown, in.readLayers(L, "ffn_down.bias", {D}));
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
    return Ok{};
}

#undef SINKSCOPE_TRY_ASSIGN

} // namespace

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
    if ((*tokenizer)->vocabSize() > config->vocabSize) {
        return makeError(ErrorCode::Corrupt, ggufPath + ": tokenizer has " + std::to_string((*tokenizer)->vocabSize()) +
                                                 " tokens but the embedding only " + std::to_string(config->vocabSize));
    }

    return detail::guardTorch(ggufPath, [&]() -> Status {
        c10::InferenceMode guard;
        Builder b;
        TensorLoader loader(**file, options.progress);
        const ModelConfig &c = *config;
        Status built = c.architecture == Architecture::Llama ? buildLlama(c, loader, b) : buildGpt2(c, loader, b);
        if (!built) {
            return built;
        }
        if (Status used = loader.checkAllUsed(architectureName(c.architecture)); !used) {
            return used;
        }
        b.attrInt("n_layers", c.layers);
        b.attrInt("n_heads", c.heads);
        b.attrInt("n_kv_heads", c.kvHeads);
        b.attrInt("head_dim", c.headDim);
        b.attrInt("d_model", c.embedding);
        b.attrFloat("norm_eps", c.normEps);
        b.attrFloat("attn_scale", 1.0 / std::sqrt(static_cast<double>(c.headDim)));
        b.module.define(detail::torchScriptSource(c.architecture));

        torch::jit::ExtraFilesMap extra;
        extra["sinkscope/format"] = "sinkscope-model\n";
        extra["sinkscope/config.json"] = c.toJson();
        extra["sinkscope/tokenizer.json"] = (*tokenizer)->toJson();

        const fs::path out(outPath);
        if (out.has_parent_path()) {
            std::error_code ec;
            fs::create_directories(out.parent_path(), ec);
        }
        const std::string tmp = outPath + ".partial";
        try {
            b.module.save(tmp, extra);
        } catch (const c10::Error &e) {
            std::error_code ec;
            fs::remove(tmp, ec);
            return makeError(ErrorCode::Io, outPath + ": cannot write model archive (" +
                                                std::string(e.what_without_backtrace()).substr(0, 200) + ")");
        }
        std::error_code ec;
        fs::rename(tmp, outPath, ec);
        if (ec) {
            fs::remove(tmp, ec);
            return makeError(ErrorCode::Io, outPath + ": cannot write model archive (" + ec.message() + ")");
        }
        return Ok{};
    });
}

} // namespace sinkscope
