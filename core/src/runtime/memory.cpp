#include "sinkscope/runtime/memory.h"

#include "sinkscope/model/model.h"
#include "sinkscope/model/model_config.h"

#include <sys/resource.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>

namespace sinkscope {
namespace {

constexpr uint64_t kFloat = sizeof(float);
// Allocator slack, LibTorch's small buffers, the result's vectors: added to every estimate.
constexpr uint64_t kSlack = 48ull << 20;

uint64_t mul(std::initializer_list<int64_t> factors)
{
    // Saturating product of non-negative sizes (a corrupt config must not wrap around to "fits").
    uint64_t p = 1;
    for (int64_t f : factors) {
        const uint64_t u = f > 0 ? static_cast<uint64_t>(f) : 0;
        if (u != 0 && p > std::numeric_limits<uint64_t>::max() / u) {
            return std::numeric_limits<uint64_t>::max();
        }
        p *= u;
    }
    return p;
}

uint64_t add(uint64_t a, uint64_t b)
{
    return a > std::numeric_limits<uint64_t>::max() - b ? std::numeric_limits<uint64_t>::max() : a + b;
}

// Reads one unsigned number from a /sys or /proc file; nullopt for "max", absence or garbage.
std::optional<uint64_t> readNumber(const std::string &path)
{
    std::ifstream in(path);
    std::string word;
    if (!(in >> word) || word.empty() || word.find_first_not_of("0123456789") != std::string::npos) {
        return std::nullopt;
    }
    return std::strtoull(word.c_str(), nullptr, 10);
}

// A "Key:   1234 kB" line of /proc/meminfo or /proc/self/status, in bytes.
std::optional<uint64_t> readKb(const std::string &path, const std::string &key)
{
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        if (line.compare(0, key.size(), key) == 0 && line.size() > key.size() && line[key.size()] == ':') {
            std::istringstream fields(line.substr(key.size() + 1));
            uint64_t kb = 0;
            if (fields >> kb) {
                return kb * 1024;
            }
        }
    }
    return std::nullopt;
}

// This process's cgroup (v2 "0::/path", else v1's memory controller line).
std::string cgroupDir()
{
    std::ifstream in("/proc/self/cgroup");
    std::string line;
    std::string v1;
    while (std::getline(in, line)) {
        if (line.rfind("0::", 0) == 0) {
            return "/sys/fs/cgroup" + line.substr(3);
        }
        const auto colon = line.find(':');
        const auto second = line.find(':', colon + 1);
        if (colon != std::string::npos && second != std::string::npos) {
            const std::string controllers = line.substr(colon + 1, second - colon - 1);
            if (controllers == "memory" || controllers.find("memory,") != std::string::npos ||
                controllers.find(",memory") != std::string::npos) {
                v1 = "/sys/fs/cgroup/memory" + line.substr(second + 1);
            }
        }
    }
    return v1;
}

void tighten(MemoryBudget &budget, uint64_t available, uint64_t limit, const std::string &source)
{
    if (available < budget.available) {
        budget.available = available;
        budget.limit = limit;
        budget.source = source;
    }
}

// The v2 limit applies along the whole path: the tightest ancestor wins.
void cgroupBudget(MemoryBudget &budget)
{
    std::string dir = cgroupDir();
    if (dir.empty()) {
        return;
    }
    const bool v2 = dir.rfind("/sys/fs/cgroup/memory", 0) != 0;
    while (dir.size() >= std::string("/sys/fs/cgroup").size()) {
        const auto limit = readNumber(dir + (v2 ? "/memory.max" : "/memory.limit_in_bytes"));
        const auto usage = readNumber(dir + (v2 ? "/memory.current" : "/memory.usage_in_bytes"));
        // v1 reports "no limit" as a huge page-rounded number.
        if (limit && usage && *limit < (1ull << 60)) {
            tighten(budget, *limit > *usage ? *limit - *usage : 0, *limit, "the cgroup memory limit");
        }
        const auto slash = dir.rfind('/');
        if (slash == std::string::npos || slash == 0) {
            break;
        }
        dir.resize(slash);
    }
}

} // namespace

void releaseFreeMemory()
{
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

uint64_t processStatusBytes(const std::string &key)
{
    return readKb("/proc/self/status", key).value_or(0);
}

uint64_t parseByteSize(const std::string &text)
{
    if (text.empty() || text.find_first_not_of("0123456789") == 0) {
        return 0;
    }
    size_t used = 0;
    unsigned long long n = 0;
    try {
        n = std::stoull(text, &used);
    } catch (const std::exception &) {
        return 0;
    }
    const std::string suffix = text.substr(used);
    int shift = 0;
    if (suffix.empty()) {
        shift = 0;
    } else if (suffix == "K" || suffix == "k" || suffix == "KB" || suffix == "KiB") {
        shift = 10;
    } else if (suffix == "M" || suffix == "MB" || suffix == "MiB") {
        shift = 20;
    } else if (suffix == "G" || suffix == "GB" || suffix == "GiB") {
        shift = 30;
    } else {
        return 0;
    }
    if (n > (std::numeric_limits<uint64_t>::max() >> shift)) {
        return 0;
    }
    return static_cast<uint64_t>(n) << shift;
}

MemoryBudget memoryBudget()
{
    MemoryBudget budget;
    if (const auto avail = readKb("/proc/meminfo", "MemAvailable")) {
        tighten(budget, *avail, readKb("/proc/meminfo", "MemTotal").value_or(0), "the memory free on this machine");
    }
    cgroupBudget(budget);
    rlimit as{};
    if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY) {
        const uint64_t size = processStatusBytes("VmSize");
        const uint64_t cap = as.rlim_cur;
        tighten(budget, cap > size ? cap - size : 0, cap, "the address-space limit (ulimit -v)");
    }
    if (const char *env = std::getenv("SINKSCOPE_MEMORY_LIMIT"); env && *env) {
        if (const uint64_t cap = parseByteSize(env); cap > 0) {
            const uint64_t rss = processStatusBytes("VmRSS");
            tighten(budget, cap > rss ? cap - rss : 0, cap, "SINKSCOPE_MEMORY_LIMIT");
        }
    }
    return budget;
}

std::string formatBytes(uint64_t bytes)
{
    const char *units[] = {"KB", "MB", "GB", "TB", "PB"};
    if (bytes < 1024) {
        return std::to_string(bytes) + (bytes == 1 ? " byte" : " bytes");
    }
    double v = static_cast<double>(bytes);
    int unit = -1;
    while (v >= 1024.0 && unit < 4) {
        v /= 1024.0;
        ++unit;
    }
    char text[32];
    std::snprintf(text, sizeof text, v < 10 ? "%.1f %s" : "%.0f %s", v, units[unit]);
    return text;
}

MemoryNeed estimateForward(const ModelConfig &c, int64_t tokens, const CaptureOptions &capture, bool engine)
{
    const int64_t T = tokens;
    const int64_t L = std::max<int64_t>(1, c.layers);
    const int64_t H = std::max<int64_t>(1, c.heads);
    const int64_t Hkv = c.kvHeads > 0 ? c.kvHeads : H;
    const int64_t D = std::max<int64_t>(1, c.embedding);
    const int64_t d = c.headDim > 0 ? c.headDim : D / H;
    const int64_t ffn = std::max<int64_t>(c.feedForward, 4 * D) * std::max<int64_t>(1, c.expertsPerToken);
    const int64_t V = std::max<int64_t>(1, c.vocabSize);

    int64_t captured = 0;
    if (capture.allAttention) {
        captured = L;
    } else {
        for (int l : capture.attentionLayers) {
            captured += (l >= 0 && l < L) ? 1 : 0;
        }
    }

    // One layer's working set, live at once: the residual stream and its norm, q/k/v and the heads' output,
    // the MLP's gate, up and product; then the scores of whichever attention path runs.
    const uint64_t activations = mul({T, 6 * D + 2 * (H + 2 * Hkv) * d + 3 * ffn, kFloat});
    uint64_t scores = 0;
    if (captured > 0) {
        // Scores, masked scores and probabilities of a full [H, T, T] (the kept one among them), and the mask.
        scores = add(mul({3, H, T, T, kFloat}), mul({T, T, kFloat}));
    } else if (!engine) {
        // The LibTorch step: whole maps up to 1024 queries, then blocks of 512 query rows.
        const int64_t rows = T > 1024 ? 512 : T;
        scores = add(mul({3, H, rows, T, kFloat}), mul({T, T, kFloat}));
    } else {
        // The CPU engine: key tiles of 512 per thread, nothing of size T x T.
        scores = mul({4, H, 512, 512, kFloat});
    }
    uint64_t need = add(kSlack, add(activations, scores));

    // Kept by the pass, copied into the result, and a third copy's worth at the peak (measured: 3.0 x at 640
    // tokens on SmolLM2; MemoryGuardModel.EstimatesCoverTheRealPeak).
    const uint64_t maps = mul({3, captured, H, T, T, kFloat});
    need = add(need, maps);
    // The output projection's result, the pass's copy and the result's (measured within 7 % of twice: a third for
    // safety).
    const uint64_t logits = mul({3, capture.lastLogitsOnly ? 1 : T, V, kFloat});
    need = add(need, logits);
    uint64_t hidden = 0;
    if (capture.hidden) {
        hidden = mul({3, L, T, D, kFloat}); // per layer, stacked, copied
        need = add(need, hidden);
    }
    if (capture.valueNorms) {
        need = add(need, mul({3, L, H, T, kFloat}));
    }
    uint64_t qk = 0;
    for (int l : capture.qkLayers) {
        if (l >= 0 && l < L) {
            qk = add(qk, mul({2, H + Hkv, T, d, kFloat}));
        }
    }
    need = add(need, qk);
    if (capture.allStats || !capture.statsLayers.empty()) {
        const int64_t layers = capture.allStats ? L : static_cast<int64_t>(capture.statsLayers.size());
        need = add(need, mul({2, layers, H, T, 5 * 4 + 2 * 8}));
    }

    // Name the part that dominates, in words a user can act on.
    struct Part {
        uint64_t bytes;
        std::string text;
    };
    const std::string dims = std::to_string(H) + " heads x " + std::to_string(T) + " x " + std::to_string(T);
    const Part parts[] = {
        {maps, "attention maps of " + std::to_string(captured) + (captured == 1 ? " layer, " : " layers, ") + dims},
        {scores, "one layer's attention scores, " + dims},
        {logits, "logits of " + std::to_string(capture.lastLogitsOnly ? 1 : T) + " positions x " + std::to_string(V) +
                     " tokens"},
        {activations, "one layer's activations for " + std::to_string(T) + " tokens"},
        {hidden, "the residual stream of " + std::to_string(L) + " layers"},
        {qk, "queries and keys of " + std::to_string(capture.qkLayers.size()) + " layers"},
    };
    const Part *top = &parts[0];
    for (const Part &p : parts) {
        if (p.bytes > top->bytes) {
            top = &p;
        }
    }
    // Allocator fragmentation and LibTorch's temporaries beyond the counted ones: a tenth more.
    return MemoryNeed{add(need, need / 10), top->text};
}

MemoryNeed estimateGenerate(const ModelConfig &c, int64_t promptTokens, int64_t newTokens, bool engine)
{
    MemoryNeed pass = estimateForward(c, promptTokens, CaptureOptions{.lastLogitsOnly = true}, engine);
    const int64_t H = std::max<int64_t>(1, c.heads);
    const int64_t d = c.headDim > 0 ? c.headDim : std::max<int64_t>(1, c.embedding) / H;
    const int64_t kv = c.kvHeads > 0 ? c.kvHeads : H;
    // Keys and values of every layer for every position, and a copy while the cache grows.
    const uint64_t cache = mul({4, std::max<int64_t>(1, c.layers), kv, promptTokens + newTokens, d, kFloat});
    pass.bytes = add(pass.bytes, cache);
    if (cache > pass.bytes / 2) {
        pass.largest = "the key/value cache of " + std::to_string(promptTokens + newTokens) + " positions";
    }
    return pass;
}

MemoryNeed estimateLoad(uint64_t archiveBytes)
{
    // The weights once in memory, the archive reader's buffer of the largest records, and the runtime.
    return MemoryNeed{add(add(archiveBytes, archiveBytes / 4), kSlack), "the model's weights"};
}

MemoryNeed estimateHeadMap(int64_t heads, int64_t tokens, int64_t rows, int64_t cols)
{
    // The pooled map, the engine's tiles (512 x 512 scores per head of a block), the copy handed to the view.
    const uint64_t map = mul({2, rows, cols, kFloat});
    const uint64_t tiles = mul({4, std::max<int64_t>(1, heads), 512, std::min<int64_t>(512, tokens), kFloat});
    return MemoryNeed{add(add(map, tiles), kSlack),
                      "a " + std::to_string(rows) + " x " + std::to_string(cols) + " attention map"};
}

Status checkMemory(const MemoryNeed &need, const std::string &what, const std::string &wayOut,
                   const MemoryBudget &budget)
{
    if (need.bytes <= budget.available) {
        return Ok{};
    }
    if (const char *guard = std::getenv("SINKSCOPE_MEMORY_GUARD");
        guard && (std::string(guard) == "0" || std::string(guard) == "off")) {
        return Ok{}; // the user knows better than the estimate; an allocation failure is still one line
    }
    std::string text = what + " needs about " + formatBytes(need.bytes);
    if (!need.largest.empty()) {
        text += " (mostly " + need.largest + ")";
    }
    text += ", but only " + formatBytes(budget.available) + " is left under " + budget.source;
    if (budget.limit > 0) {
        text += " (" + formatBytes(budget.limit) + ")";
    }
    if (!wayOut.empty()) {
        text += "; " + wayOut;
    }
    return makeError(ErrorCode::OutOfMemory, text);
}

} // namespace sinkscope
