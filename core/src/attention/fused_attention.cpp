// The fused CPU attention's driver: checks, the transposed keys, the blocks and their threads, the column
// sums, and the choice of the block kernel's instruction set (attention_kernel.h).
#include "sinkscope/attention/fused_attention.h"

#include "attention/attention_kernel.h"
#include "sinkscope/runtime/parallel.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace sinkscope {
namespace {

using detail::AttentionBlock;

constexpr int64_t kPad = 32; // the widest kernel's two vectors: the keys' padding and the block's row stride

AttentionIsa detectIsa()
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        return AttentionIsa::Avx512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        return AttentionIsa::Avx2;
    }
#endif
    return AttentionIsa::Baseline;
}

std::optional<AttentionIsa> envCap()
{
    const char *v = std::getenv("SINKSCOPE_CPU_LEVEL");
    if (!v || !*v) {
        return std::nullopt;
    }
    const std::string s(v);
    if (s == "baseline" || s == "scalar") {
        return AttentionIsa::Baseline;
    }
    if (s == "avx2") {
        return AttentionIsa::Avx2;
    }
    if (s == "avx512") {
        return AttentionIsa::Avx512;
    }
    return std::nullopt;
}

std::atomic<int> g_active{-1};

AttentionIsa resolve(std::optional<AttentionIsa> cap)
{
    const AttentionIsa best = supportedAttentionIsa();
    return cap ? std::min(*cap, best) : best;
}

// The block kernel of an instruction set and its register block of query rows.
struct Kernel {
    void (*run)(AttentionBlock &);
    int64_t rows;
};

Kernel kernelFor(AttentionIsa isa)
{
    switch (isa) {
#if defined(__x86_64__)
    case AttentionIsa::Avx512:
        return {detail::isa_avx512::attendBlock, detail::isa_avx512::registerRows()};
    case AttentionIsa::Avx2:
        return {detail::isa_avx2::attendBlock, detail::isa_avx2::registerRows()};
#endif
    default:
        return {detail::isa_baseline::attendBlock, detail::isa_baseline::registerRows()};
    }
}

// One parallel call's per-thread column sums ([H, Tk] doubles each), added up at the end.
struct ColumnSlots {
    explicit ColumnSlots(size_t size) : size(size) {}
    struct Slot {
        std::vector<double> sum, plogp;
    };
    Slot &mine()
    {
        thread_local const ColumnSlots *owner = nullptr;
        thread_local Slot *slot = nullptr;
        thread_local uint64_t call = 0;
        if (owner != this || call != id) {
            std::lock_guard lock(mutex);
            slots.push_back(std::make_unique<Slot>());
            slots.back()->sum.assign(size, 0.0);
            slots.back()->plogp.assign(size, 0.0);
            owner = this;
            call = id;
            slot = slots.back().get();
        }
        return *slot;
    }
    size_t size;
    uint64_t id = nextId();
    std::mutex mutex;
    std::vector<std::unique_ptr<Slot>> slots;

    static uint64_t nextId()
    {
        static std::atomic<uint64_t> counter{0};
        return ++counter;
    }
};

std::vector<float> &threadScratch(size_t floats)
{
    thread_local std::vector<float> scratch;
    if (scratch.size() < floats) {
        scratch.resize(floats);
    }
    return scratch;
}

} // namespace

const char *attentionIsaName(AttentionIsa isa)
{
    switch (isa) {
    case AttentionIsa::Avx512:
        return "avx512";
    case AttentionIsa::Avx2:
        return "avx2";
    default:
        return "baseline";
    }
}

AttentionIsa supportedAttentionIsa()
{
    static const AttentionIsa best = detectIsa();
    return best;
}

AttentionIsa activeAttentionIsa()
{
    int a = g_active.load();
    if (a < 0) {
        a = static_cast<int>(resolve(envCap()));
        g_active.store(a);
    }
    return static_cast<AttentionIsa>(a);
}

AttentionIsa setAttentionIsa(std::optional<AttentionIsa> cap)
{
    const AttentionIsa isa = resolve(cap ? cap : envCap());
    g_active.store(static_cast<int>(isa));
    return isa;
}

namespace {

Status runPass(const FusedAttentionInput &in, const FusedAttentionOutput &out, const float *actSinks);

// ACT's sink columns per head ([H, Tk], 1 or 0), from the column sums of the probabilities before ACT (the
// logit controls applied, nothing after the softmax): as the archive's _act, a key is over the threshold
// when its column sum over the queries that see it, divided by their number, exceeds actThres; the first
// such key of a head keeps its mass, the others are the sinks ACT rescales.
Result<std::vector<float>> actSinkColumns(const FusedAttentionInput &in)
{
    const int64_t heads = in.heads, t = in.queries, tk = in.keys, past = tk - t;
    FusedAttentionInput before = in;
    before.actHeads = before.actBeta = before.actThres = nullptr;
    before.headMode = before.probScale = before.valueScale = before.headGate = nullptr;
    before.valueNorms = before.sinkWeight = nullptr;
    std::vector<float> scratch(static_cast<size_t>(t * heads * in.valueDim));
    std::vector<double> received(static_cast<size_t>(heads * tk));
    FusedAttentionOutput o;
    o.out = scratch.data();
    o.received = received.data();
    if (Status st = runPass(before, o, nullptr); !st) {
        return st.error();
    }
    // How many queries see each key: causal (and a window), minus what the additive mask hides.
    std::vector<double> visible(static_cast<size_t>(tk), 0.0);
    for (int64_t i = 0; i < t; ++i) {
        const int64_t pos = past + i, from = in.window > 0 ? std::max<int64_t>(0, pos - in.window + 1) : 0;
        for (int64_t j = from; j <= pos; ++j) {
            if (!in.mask || in.mask[i * tk + j] != -std::numeric_limits<float>::infinity()) {
                visible[static_cast<size_t>(j)] += 1;
            }
        }
    }
    std::vector<float> sinks(static_cast<size_t>(heads * tk), 0.0f);
    for (int64_t h = 0; h < heads; ++h) {
        if (!(in.actHeads[h] > 0.5f)) {
            continue;
        }
        bool first = true;
        for (int64_t j = 0; j < tk; ++j) {
            const double seen = std::max(1.0, visible[static_cast<size_t>(j)]);
            if (received[static_cast<size_t>(h * tk + j)] / seen > static_cast<double>(in.actThres[h])) {
                sinks[static_cast<size_t>(h * tk + j)] = first ? 0.0f : 1.0f;
                first = false;
            }
        }
    }
    return sinks;
}

} // namespace

Status fusedAttention(const FusedAttentionInput &in, const FusedAttentionOutput &out)
{
    if (in.actHeads && in.actBeta && in.actThres && in.q && in.k && in.v && out.out && in.heads > 0 && in.queries > 0 &&
        in.keys >= in.queries && std::any_of(in.actHeads, in.actHeads + in.heads, [](float a) { return a > 0.5f; })) {
        auto sinks = actSinkColumns(in);
        if (!sinks) {
            return sinks.error();
        }
        return runPass(in, out, sinks->data());
    }
    return runPass(in, out, nullptr);
}

namespace {

Status runPass(const FusedAttentionInput &in, const FusedAttentionOutput &out, const float *actSinks)
{
    if (!in.q || !in.k || !in.v || !out.out) {
        return makeError(ErrorCode::InvalidArgument, "fused attention: q, k, v and the output are required");
    }
    if (in.heads <= 0 || in.kvHeads <= 0 || in.queries <= 0 || in.keys < in.queries || in.headDim <= 0 ||
        in.valueDim <= 0 || in.heads % in.kvHeads != 0 || in.window < 0) {
        return makeError(ErrorCode::InvalidArgument,
                         "fused attention: heads " + std::to_string(in.heads) + ", kv heads " +
                             std::to_string(in.kvHeads) + ", queries " + std::to_string(in.queries) + ", keys " +
                             std::to_string(in.keys) + ", head dims " + std::to_string(in.headDim) + "/" +
                             std::to_string(in.valueDim) +
                             " (all positive, kv heads dividing heads, at least as many keys as queries)");
    }
    const int64_t heads = in.heads, kvHeads = in.kvHeads, t = in.queries, tk = in.keys, d = in.headDim;
    const int64_t past = tk - t;
    // Keys transposed per kv head, [Hkv, d, Tk + pad], zero in the padding: the score kernel reads whole
    // vectors of keys.
    const int64_t ktStride = tk + kPad;
    std::vector<float> kt(static_cast<size_t>(kvHeads * d * ktStride), 0.0f);
    parallelFor(kvHeads * d, 8, [&](int64_t begin, int64_t end) {
        for (int64_t row = begin; row < end; ++row) {
            const int64_t kv = row / d, e = row % d;
            const float *src = in.k + kv * tk * d + e;
            float *dst = kt.data() + row * ktStride;
            for (int64_t j = 0; j < tk; ++j) {
                dst[j] = src[j * d];
            }
        }
    });
    // Query blocks: as many rows as keep a block's scores within ~512 KiB (half the core's L2 here), in whole
    // register blocks of the kernel (no single-row tails but the last block's), at most kMaxBlockRows.
    const Kernel kernel = kernelFor(activeAttentionIsa());
    const int64_t unit = kernel.rows;
    const int64_t seen = in.window > 0 ? std::min(tk, in.window + detail::kMaxBlockRows) : tk;
    int64_t rowsPerBlock = std::min<int64_t>(131072 / std::max<int64_t>(1, seen + kPad), detail::kMaxBlockRows);
    rowsPerBlock = std::max<int64_t>(unit, rowsPerBlock / unit * unit);
    rowsPerBlock = std::min(rowsPerBlock, t);
    const int64_t blocks = (t + rowsPerBlock - 1) / rowsPerBlock;
    const bool columns = out.received || out.receivedPlogp;
    ColumnSlots slots(columns ? static_cast<size_t>(heads * tk) : 0);
    const float scale = in.scale > 0 ? in.scale : static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
    // Everything but the task's head, rows and scratch is the same for every block.
    AttentionBlock layer;
    layer.q = in.q;
    layer.kt = kt.data();
    layer.v = in.v;
    layer.heads = heads;
    layer.kvHeads = kvHeads;
    layer.queries = t;
    layer.keys = tk;
    layer.headDim = d;
    layer.valueDim = in.valueDim;
    layer.ktStride = ktStride;
    layer.past = past;
    layer.window = in.window;
    layer.scale = scale;
    layer.mask = in.mask;
    layer.logitBias = in.logitBias;
    layer.temperature = in.temperature;
    layer.learnedSink = in.learnedSink;
    layer.sinkLogit = in.sinkLogit;
    layer.actSinks = actSinks;
    layer.actBeta = actSinks ? in.actBeta : nullptr;
    layer.headMode = in.headMode;
    layer.probScale = in.probScale;
    layer.probRenorm = in.probRenorm;
    layer.valueScale = in.valueScale;
    layer.headGate = in.headGate;
    layer.sinkWeight = in.sinkWeight;
    layer.valueNorms = in.valueNorms;
    layer.out = out.out;
    layer.sinkMass = out.sinkMass;
    layer.firstMass = out.firstMass;
    layer.rowPlogp = out.rowPlogp;
    layer.rowMax = out.rowMax;
    layer.rowWeighted = out.rowWeighted;
    layer.nullShare = out.nullShare;
    layer.columns = columns;
    // Later blocks see more keys: they go first, so the last tasks to finish are the short ones.
    parallelFor(heads * blocks, 1, [&](int64_t begin, int64_t end) {
        const size_t scratchRows = static_cast<size_t>(rowsPerBlock);
        const size_t width = static_cast<size_t>(tk + kPad);
        std::vector<float> &scratch = threadScratch(scratchRows * width + 2 * width);
        for (int64_t task = begin; task < end; ++task) {
            AttentionBlock b = layer;
            const int64_t block = blocks - 1 - task / heads;
            b.head = task % heads;
            b.row0 = block * rowsPerBlock;
            b.row1 = std::min(t, b.row0 + rowsPerBlock);
            b.scores = scratch.data();
            b.colSum = scratch.data() + scratchRows * width;
            b.colPlogp = b.colSum + width;
            kernel.run(b);
            if (columns) {
                ColumnSlots::Slot &slot = slots.mine();
                double *sum = slot.sum.data() + b.head * tk + b.keyLo;
                double *plogp = slot.plogp.data() + b.head * tk + b.keyLo;
                for (int64_t c = 0; c < b.keyCount; ++c) {
                    sum[c] += b.colSum[c];
                    plogp[c] += b.colPlogp[c];
                }
            }
        }
    });
    if (columns) {
        const size_t n = static_cast<size_t>(heads * tk);
        if (out.received) {
            std::fill(out.received, out.received + n, 0.0);
        }
        if (out.receivedPlogp) {
            std::fill(out.receivedPlogp, out.receivedPlogp + n, 0.0);
        }
        for (const auto &slot : slots.slots) {
            for (size_t i = 0; i < n; ++i) {
                if (out.received) {
                    out.received[i] += slot->sum[i];
                }
                if (out.receivedPlogp) {
                    out.receivedPlogp[i] += slot->plogp[i];
                }
            }
        }
    }
    return Ok{};
}

} // namespace
} // namespace sinkscope
