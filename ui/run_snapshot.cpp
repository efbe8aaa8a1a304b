#include "run_snapshot.h"

#include "attention_math.h"

#include <chrono>
#include <limits>

namespace sinkscope::ui {

std::vector<TokenInfo> describeTokens(const Tokenizer *tokenizer, const std::vector<int64_t> &ids)
{
    std::vector<TokenInfo> out;
    out.reserve(ids.size());
    const int64_t bos = tokenizer && tokenizer->data().bosId ? *tokenizer->data().bosId : -1;
    for (int64_t id : ids) {
        TokenInfo t;
        t.id = id;
        if (tokenizer) {
            t.text = tokenizer->tokenText(id);
            t.piece = tokenizer->tokenPiece(id);
            t.special = tokenizer->isSpecial(id);
        } else {
            t.text = "#" + std::to_string(id);
            t.piece = t.text;
        }
        t.bos = bos >= 0 && bos == id;
        out.push_back(std::move(t));
    }
    return out;
}

Result<RunSnapshot> computeRunSnapshot(const Model &model, const RunRequest &request, const CancelToken &cancel,
                                       const ProgressCallback &progress)
{
    ForwardRequest forward;
    forward.tokens = request.tokens;
    forward.capture.allAttention = true;
    forward.capture.lastLogitsOnly = true;
    auto result = model.forward(forward, &cancel, progress);
    if (!result.ok()) {
        return result.error();
    }
    const auto analysisStart = std::chrono::steady_clock::now();
    ForwardResult &fr = result.value();
    RunSnapshot snap;
    snap.modelPath = model.info().path;
    snap.modelName = model.config().name;
    snap.tokens = describeTokens(model.tokenizer().get(), fr.tokens);
    snap.layers = static_cast<int64_t>(fr.attention.size());
    for (const FloatArray &a : fr.attention) {
        if (a.shape.size() == 3) {
            snap.heads = a.dim(0);
            break;
        }
    }
    const int64_t T = snap.tokenCount();
    snap.firstTokenMass.shape = {snap.layers, snap.heads};
    snap.meanEntropy.shape = {snap.layers, snap.heads};
    snap.received.shape = {snap.layers, T};
    snap.firstTokenMass.data.reserve(size_t(snap.layers * snap.heads));
    snap.meanEntropy.data.reserve(size_t(snap.layers * snap.heads));
    snap.received.data.reserve(size_t(snap.layers * T));
    for (const FloatArray &layer : fr.attention) {
        if (cancel.isCancelled()) {
            return makeError(ErrorCode::Cancelled, "run cancelled");
        }
        auto mass = firstTokenMassOfLayer(layer);
        auto entropy = meanRowEntropy(layer);
        auto received = receivedAttention(layer);
        mass.resize(size_t(snap.heads), std::numeric_limits<float>::quiet_NaN());
        entropy.resize(size_t(snap.heads), std::numeric_limits<float>::quiet_NaN());
        received.resize(size_t(T), std::numeric_limits<float>::quiet_NaN());
        snap.firstTokenMass.data.insert(snap.firstTokenMass.data.end(), mass.begin(), mass.end());
        snap.meanEntropy.data.insert(snap.meanEntropy.data.end(), entropy.begin(), entropy.end());
        snap.received.data.insert(snap.received.data.end(), received.begin(), received.end());
    }
    if (!fr.logits.empty() && fr.logits.shape.size() == 2) {
        const int64_t vocab = fr.logits.dim(1);
        const float *last = fr.logits.data.data() + (fr.logits.dim(0) - 1) * vocab;
        snap.top = topK(last, vocab, request.topK);
        const auto tokenizer = model.tokenizer();
        for (const TopToken &t : snap.top) {
            snap.topText.push_back(tokenizer ? tokenizer->tokenText(t.id) : "#" + std::to_string(t.id));
        }
    }
    snap.attention = std::move(fr.attention);
    snap.forwardSeconds = fr.seconds;
    snap.analysisSeconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - analysisStart).count();
    return snap;
}

} // namespace sinkscope::ui
