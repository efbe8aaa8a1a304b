// Shared by the converters (convert.cpp: GGUF; convert_hf.cpp: Hugging Face folders). Private to the
// core: LibTorch types.
#pragma once

#include "sinkscope/model/model.h"
#include "sinkscope/model/model_config.h"
#include "sinkscope/tokenizer/tokenizer.h"

#include <torch/script.h>

#include <algorithm>
#include <functional>
#include <set>
#include <string>
#include <vector>

// Assigns the value of a Result<at::Tensor> expression to a new tensor `var`, or returns its error.
#define SINKSCOPE_TRY_ASSIGN(var, expr)                                                                                \
    auto var##_r = (expr);                                                                                             \
    if (!var##_r) {                                                                                                    \
        return var##_r.error();                                                                                        \
    }                                                                                                                  \
    at::Tensor var = std::move(var##_r).value()

namespace sinkscope::detail {

// A model's weights by name, as one file format stores them.
class WeightFile
{
public:
    virtual ~WeightFile() = default;
    virtual const std::string &path() const = 0;
    virtual std::vector<std::string> names() const = 0;
    virtual bool has(const std::string &name) const = 0;
    virtual std::vector<int64_t> shape(const std::string &name) const = 0; // row-major; empty if absent
    virtual Result<at::Tensor> readF32(const std::string &name) = 0;       // fp32, row-major, that shape
};

inline std::string shapeText(const std::vector<int64_t> &s)
{
    std::string out = "[";
    for (size_t i = 0; i < s.size(); ++i) {
        out += (i ? ", " : "") + std::to_string(s[i]);
    }
    return out + "]";
}

// Reads tensors with their shapes checked, reports progress, and remembers what it read so that a tensor
// the converter does not implement is an error instead of a model that silently runs wrong.
class TensorLoader
{
public:
    TensorLoader(WeightFile &file, const ProgressCallback &progress) : m_file(file), m_progress(progress)
    {
        m_total = static_cast<int64_t>(file.names().size());
    }

    const std::string &path() const { return m_file.path(); }
    bool has(const std::string &name) const { return m_file.has(name); }

    // Reads tensor `name` as fp32 and checks its row-major shape. The last tensor read is kept, so that
    // the parts of a fused tensor (Phi-3's qkv) cost one read.
    Result<at::Tensor> read(const std::string &name, const std::vector<int64_t> &shape)
    {
        if (!m_file.has(name)) {
            return makeError(ErrorCode::Corrupt, m_file.path() + ": missing tensor '" + name + "'");
        }
        const std::vector<int64_t> fileShape = m_file.shape(name);
        if (fileShape != shape) {
            return makeError(ErrorCode::Corrupt, m_file.path() + ": tensor '" + name + "' has shape " +
                                                     shapeText(fileShape) + ", expected " + shapeText(shape));
        }
        if (name == m_lastName) {
            return m_last;
        }
        auto t = m_file.readF32(name);
        if (!t) {
            return t.error();
        }
        if (m_read.insert(name).second && m_progress &&
            !m_progress(static_cast<double>(++m_done) / static_cast<double>(std::max<int64_t>(m_total, 1)), name)) {
            return makeError(ErrorCode::Cancelled, m_file.path() + ": conversion cancelled");
        }
        m_lastName = name;
        m_last = *t;
        return t;
    }

    // Marks a tensor as known and deliberately not needed (a buffer derivable from the config).
    void skip(const std::string &name) { m_read.insert(name); }

    // Every tensor of the file went into the archive: one the converter does not implement (a QK-norm
    // weight of an unexpected family, say) would otherwise be dropped and the model would run wrong.
    Status checkAllUsed(const std::string &architecture) const
    {
        for (const auto &name : m_file.names()) {
            if (m_read.count(name) == 0) {
                return makeError(ErrorCode::Unsupported, m_file.path() + ": tensor '" + name +
                                                             "' is not implemented for " + architecture +
                                                             " models; converting without it would change the model");
            }
        }
        return Ok{};
    }

private:
    WeightFile &m_file;
    const ProgressCallback &m_progress;
    std::set<std::string> m_read;
    std::string m_lastName;
    at::Tensor m_last;
    int64_t m_total = 0;
    int64_t m_done = 0;
};

struct Builder {
    torch::jit::Module module{"SinkScopeModel"};

    void param(const std::string &name, const at::Tensor &t) { module.register_parameter(name, t, false); }
    void attrInt(const std::string &name, int64_t v) { module.register_attribute(name, c10::IntType::get(), v); }
    void attrFloat(const std::string &name, double v) { module.register_attribute(name, c10::FloatType::get(), v); }
    void attrInts(const std::string &name, const std::vector<int64_t> &v)
    {
        module.register_attribute(name, c10::ListType::ofInts(), c10::IValue(c10::List<int64_t>(v)));
    }
};

// The decoder's weights under format-independent names ("wq", "ffn_norm", "w_gate", ...), each with the
// shape the TorchScript decoder uses (torch.linear layout [out, in]). A WeightMap knows one format's names,
// layouts and stored transforms (GGUF's permuted Q/K and Gemma's stored 1 + w, HF's fused tensors).
class WeightMap
{
public:
    virtual ~WeightMap() = default;
    // Layer `layer`'s tensor `what` (layer -1: a model-wide tensor), with shape `shape`.
    virtual Result<at::Tensor> get(const std::string &what, int64_t layer, const std::vector<int64_t> &shape) = 0;
    virtual bool hasGlobal(const std::string &what) const = 0;
    virtual TensorLoader &loader() = 0;
};

at::Tensor rowsOf(const at::Tensor &t, int64_t begin, int64_t count);

// The RoPE decoder (every family but GPT-2): weights stacked per layer, absent ones as empty tensors,
// and the attributes that select each family's variant of the archive's TorchScript decoder.
Status buildDecoder(const ModelConfig &c, WeightMap &w, Builder &b);

// Builds the module with `build`, checks that every tensor of the source was used, and writes the
// archive through a temporary file, so a failed conversion never leaves a half-written archive.
Status writeArchive(const ModelConfig &c, const Tokenizer &tokenizer, TensorLoader &loader,
                    const std::function<Status(Builder &)> &build, const std::string &outPath);

// The tokenizer fits the embedding.
Status checkVocabulary(const Tokenizer &tokenizer, const ModelConfig &c, const std::string &path);

} // namespace sinkscope::detail
