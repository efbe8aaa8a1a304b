// The StreamingLLM evaluation (Xiao et al., ICLR 2024; SINKS.md I1): teacher-forced decoding of a long
// token sequence one token at a time with a real rolling key/value cache, recording the NLL of every
// next token.
//
// Cache semantics (the same for every mode): the token being decoded attends to at most S + W keys,
// itself included: the first S tokens of the text (the sinks) and the W most recent ones. Keys are
// cached before RoPE, and at every step the cached keys are rotated with their index inside the cache
// (0..kv_len-1) and the query gets position kv_len-1, as in mit-han-lab/streaming-llm pos_shift.
//   Dense      no eviction; positions are the absolute ones (attention grows with the text).
//   Cache      S sinks + W recent tokens; S = 0 is plain window attention.
//   Recompute  sliding window with re-computation: every step reruns the S + W context tokens from
//              scratch (positions 0..), the quality reference; O(T * W^2).
// Substituted sinks (Xiao et al. Table 1, 4 x "\n" + 1020): with sinkTokens set, the first S tokens of
// the text are replaced by those ids before decoding, so the S tokens the cache keeps are them. The
// predictions of the replaced tokens are not the text's: their NLL entries are NaN and the mean and
// perplexity cover the text's own tokens only (positions S..N-1).
#pragma once

#include "sinkscope/model/model.h"

#include <memory>
#include <string>
#include <vector>

namespace sinkscope {

enum class StreamingMode {
    Dense,
    Cache,
    Recompute,
};

struct StreamingOptions {
    StreamingMode mode = StreamingMode::Cache;
    int sinks = 4;         // S (Cache, Recompute)
    int window = 252;      // W (Cache, Recompute)
    int64_t maxTokens = 0; // evaluate the first maxTokens tokens of the text; 0: all
    // Cache, Recompute: S ids that replace the text's first S tokens (empty: the text's own). Errors when
    // its size is not S, an id is outside the vocabulary, or the text has no token after them.
    std::vector<int64_t> sinkTokens;
    // "dense", "window 0+256", "sinks 4+252", "recompute 4+252"; substituted: "sinks 4+252 (ids 198,...)"
    std::string label() const;
};

struct StreamingResult {
    StreamingOptions options;
    int64_t tokens = 0;     // tokens decoded (N); nll has N - 1 entries
    std::vector<float> nll; // nll[i] = -log p(token i+1 | cache after token i), nats; NaN: a replaced sink
    double meanNll = 0;     // over the finite entries
    double perplexity = 0;  // exp(meanNll)
    double seconds = 0;     // wall time of the decoding loop
    double tokensPerSecond = 0;
};

// Perplexity over the tokens predicted once the cache has been full (Dense: all of them), where
// evictions can matter; NaN when the text is not longer than the cache.
double perplexityOnceFull(const StreamingResult &result);

// NLL against position as the figures draw it (sinkscope-cli stream-ppl --plot and the window's Streaming
// tab): the trailing mean of the per-token NLL over the last `span` predictions (the local log perplexity;
// per-token NLL is too noisy to compare by eye, and a running mean from the start would hide a late blow-up
// under the early tokens). Points start once `span` predictions exist (all of them for shorter runs);
// `position` is the number of tokens decoded (1-based), NaN entries (replaced sinks) are skipped.
struct NllCurve {
    size_t span = 0;
    std::vector<double> position, nll;
};
NllCurve trailingMeanNll(const StreamingResult &result, size_t span);
// The span for runs of at most `predictions` NLL entries: 128, or an eighth of a shorter run (at least 4),
// so that a 120-token text still shows where the cache fills.
size_t nllCurveSpan(size_t predictions);

// The comparison the window's Streaming tab shows and lesson handouts draw, at a total cache of `cache`
// tokens (>= 2; the tab's default kComparisonCache): dense, window only (0 + cache) and sinks + window
// with S = min(kComparisonSinks, cache - 1) sinks.
inline constexpr int kComparisonCache = 32;
inline constexpr int kComparisonSinks = 4;
std::vector<StreamingOptions> cacheComparison(int cache);

// The standard StreamingLLM set at a total cache of `cache` tokens: dense, window-only (0 + cache),
// sinks S + (cache - S) for S = 1, 2, 4, 8, and sliding window with re-computation (0 + cache).
std::vector<StreamingOptions> standardStreamingSweep(int cache);

// Owns its own handle on the model's archive (the cache path calls the TorchScript module one token at a
// time, outside Model::forward). Not thread safe: one evaluation at a time per evaluator.
class StreamingEvaluator
{
public:
    static Result<std::unique_ptr<StreamingEvaluator>> create(std::shared_ptr<const Model> model);
    ~StreamingEvaluator();

    // Errors: fewer than two tokens, a GPT-2 model asked for positions past its table, cancellation.
    // `progress` gets the fraction of tokens decoded.
    Result<StreamingResult> run(const std::vector<int64_t> &tokens, const StreamingOptions &options,
                                const CancelToken *cancel = nullptr, const ProgressCallback &progress = {});

    struct Impl;

private:
    StreamingEvaluator();
    std::unique_ptr<Impl> m_impl;
};

} // namespace sinkscope
