#include "run_snapshot.h"

#include "attention_math.h"

#include "sinkscope/analysis/attention_tiles.h"
#include "sinkscope/runtime/memory.h"
#include "sinkscope/runtime/parallel.h"

#include <algorithm>
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

std::vector<int64_t> RunSnapshot::sinkPositions() const
{
    std::vector<int64_t> out;
    if (metrics) {
        for (const DetectedSink &s : metrics->sinks) {
            out.push_back(s.position);
        }
        std::sort(out.begin(), out.end());
    }
    return out;
}

const ScaleSketch *RunSnapshot::sketch(int64_t layer, int64_t head, ScaleTransform transform) const
{
    const int64_t index = layer * heads + head;
    if (layer < 0 || head < 0 || head >= heads || index >= static_cast<int64_t>(sketches.size())) {
        return nullptr;
    }
    return &sketches[size_t(index)][transform == ScaleTransform::Raw ? 0 : 1];
}

void deriveSummaries(RunSnapshot &snap)
{
    const int64_t T = snap.tokenCount();
    snap.received = {};
    if (snap.metrics && snap.metrics->receivedSum.shape.size() == 3 && snap.metrics->receivedSum.dim(2) == T && T > 0) {
        // The core's column sums R_j [L, H, T]; the token view shows their mean over heads per query.
        const FloatArray &sum = snap.metrics->receivedSum;
        const int64_t L = sum.dim(0), H = sum.dim(1);
        snap.received.shape = {L, T};
        snap.received.data.assign(size_t(L * T), 0.0f);
        for (int64_t l = 0; l < L; ++l) {
            for (int64_t h = 0; h < H; ++h) {
                const float *src = sum.data.data() + (l * H + h) * T;
                float *dst = snap.received.data.data() + l * T;
                for (int64_t t = 0; t < T; ++t) {
                    dst[t] += src[t] / float(H * T);
                }
            }
        }
    }
    // One pass over every head for the shared colour scale, split over the threads the settings allow: the UI then
    // picks ranges from the sketches in O(heads).
    const int64_t count = snap.layers * snap.heads;
    snap.sketches.assign(size_t(std::max<int64_t>(0, count)), {});
    parallelFor(count, 1, [&snap](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
            const int64_t layer = i / snap.heads;
            if (snap.hasAttention(layer)) {
                snap.sketches[size_t(i)] = sketchHead(headMatrix(snap.attention[size_t(layer)], i % snap.heads));
            }
        }
    });
}

Result<RunSnapshot> computeRunSnapshot(const Model &model, const RunRequest &request, const CancelToken &cancel,
                                       const ProgressCallback &progress)
{
    RunSnapshot snap;
    snap.modelPath = model.info().path;
    snap.modelName = model.config().name;
    snap.config = model.config();
    snap.tokens = describeTokens(model.tokenizer().get(), request.tokens);
    MetricsOptions options = request.metrics;
    options.cancel = &cancel;
    options.progress = progress;
    if (options.tokenTexts.empty()) {
        for (const TokenInfo &t : snap.tokens) {
            options.tokenTexts.push_back(t.text);
        }
    }
    // The core's analysis path (the CLI's analyze takes the same one): maps up to the threshold, else the
    // streaming metrics with each layer's q/k kept for the head view.
    const auto start = std::chrono::steady_clock::now();
    auto run = analyzeRun(model, request.tokens, options, AnalysisKeep{.attention = true, .queriesKeys = true},
                          request.mapTokens);
    if (!run.ok()) {
        return run.error();
    }
    if (cancel.isCancelled()) {
        return makeError(ErrorCode::Cancelled, "run cancelled");
    }
    ForwardResult &fr = run->forward;
    snap.metrics = run->metrics; // null when they failed: the maps still show
    snap.layers = run->layers;
    snap.heads = run->heads;
    snap.mapsOnDemand = run->streamed;
    snap.mapsWouldNotFit = run->mapsWouldNotFit;
    if (run->streamed) {
        snap.mapTokens = request.mapTokens;
        snap.attention.assign(size_t(snap.layers), FloatArray{});
        snap.queries = std::make_shared<const std::map<int, FloatArray>>(std::move(fr.queries));
        snap.keys = std::make_shared<const std::map<int, FloatArray>>(std::move(fr.keys));
    } else {
        snap.attention = std::move(fr.attention);
        snap.sinkShare = std::move(fr.sinkShare);
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
    deriveSummaries(snap);
    snap.forwardSeconds = fr.seconds;
    snap.analysisSeconds =
        std::max(0.0, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() - fr.seconds);
    return snap;
}

} // namespace sinkscope::ui

namespace sinkscope::ui {

Result<FloatArray> computeHeadMap(const RunSnapshot &snapshot, int64_t layer, int64_t head)
{
    if (!snapshot.mapsOnDemand || !snapshot.queries || !snapshot.keys) {
        return makeError(ErrorCode::InvalidArgument, "this run kept no queries and keys to compute maps from");
    }
    const auto q = snapshot.queries->find(static_cast<int>(layer));
    const auto k = snapshot.keys->find(static_cast<int>(layer));
    if (q == snapshot.queries->end() || k == snapshot.keys->end() || q->second.shape.size() != 3 ||
        k->second.shape.size() != 3) {
        return makeError(ErrorCode::InvalidArgument,
                         "layer " + std::to_string(layer) + " has no queries and keys in this run");
    }
    LayerAttentionInput in;
    in.q = q->second.data.data();
    in.k = k->second.data.data();
    in.heads = q->second.dim(0);
    in.kvHeads = k->second.dim(0);
    in.tokens = q->second.dim(1);
    in.headDim = q->second.dim(2);
    const ModelConfig &config = snapshot.config;
    in.scale = static_cast<float>(config.attnScale);
    std::vector<float> sinkLogits;
    if (config.learnedSinks && static_cast<int64_t>(config.sinkLogits.size()) >= (layer + 1) * in.heads) {
        sinkLogits.assign(config.sinkLogits.begin() + layer * in.heads,
                          config.sinkLogits.begin() + (layer + 1) * in.heads);
        in.sinkLogit = sinkLogits.data();
    }
    in.window = snapshot.windowOf(layer);
    if (auto fits = checkMemory(estimateHeadMap(in.heads, in.tokens, in.tokens, in.tokens),
                                "the map of layer " + std::to_string(layer) + " head " + std::to_string(head),
                                "use a shorter prompt or a GPU");
        !fits) {
        return fits.error();
    }
    auto map = pooledAttentionMap(in, head, in.tokens, in.tokens, PoolMode::Max);
    if (!map) {
        return map.error();
    }
    FloatArray out = std::move(*map);
    out.shape = {1, in.tokens, in.tokens};
    return out;
}

} // namespace sinkscope::ui
