// The memory guard (sinkscope/runtime/memory.h): budgets read from the real limits, refusals in one line,
// and estimates checked against the peak a real forward pass reaches (VmHWM, reset through
// /proc/self/clear_refs). The model tests need the default model's GGUF (they skip without it).
#include "sinkscope/analysis/metrics.h"
#include "sinkscope/config.h"
#include "sinkscope/model/convert.h"
#include "sinkscope/model/model.h"
#include "sinkscope/runtime/memory.h"
#include "support/test_paths.h"

#include <gtest/gtest.h>

#include <malloc.h>
#include <sys/resource.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

using namespace sinkscope;
namespace st = sinkscope::testing;

namespace {

// Sets an environment variable for the scope.
class ScopedEnv
{
public:
    ScopedEnv(const char *name, const std::string &value) : m_name(name)
    {
        if (const char *old = std::getenv(name)) {
            m_old = old;
            m_had = true;
        }
        ::setenv(name, value.c_str(), 1);
    }
    ~ScopedEnv()
    {
        if (m_had) {
            ::setenv(m_name, m_old.c_str(), 1);
        } else {
            ::unsetenv(m_name);
        }
    }
    ScopedEnv(const ScopedEnv &) = delete;
    ScopedEnv &operator=(const ScopedEnv &) = delete;

private:
    const char *m_name;
    std::string m_old;
    bool m_had = false;
};

ModelConfig smolShape()
{
    ModelConfig c;
    c.layers = 30;
    c.heads = 9;
    c.kvHeads = 3;
    c.embedding = 576;
    c.headDim = 64;
    c.feedForward = 1536;
    c.vocabSize = 49152;
    return c;
}

} // namespace

TEST(MemoryGuard, ByteSizesParseAndPrint)
{
    EXPECT_EQ(parseByteSize("4096"), 4096u);
    EXPECT_EQ(parseByteSize("512K"), 512u << 10);
    EXPECT_EQ(parseByteSize("640M"), 640ull << 20);
    EXPECT_EQ(parseByteSize("8G"), 8ull << 30);
    EXPECT_EQ(parseByteSize("8GiB"), 8ull << 30);
    for (const char *bad : {"", "G", "-1", "1.5G", "12X", "99999999999999999999", "20000000000G"}) {
        EXPECT_EQ(parseByteSize(bad), 0u) << bad;
    }
    EXPECT_EQ(formatBytes(17), "17 bytes");
    EXPECT_EQ(formatBytes(1536), "1.5 KB");
    EXPECT_EQ(formatBytes(640ull << 20), "640 MB");
    EXPECT_EQ(formatBytes((3ull << 30) / 2), "1.5 GB");
}

TEST(MemoryGuard, TheAddressSpaceLimitIsTheBudget)
{
    rlimit old{};
    ASSERT_EQ(getrlimit(RLIMIT_AS, &old), 0);
    const uint64_t size = processStatusBytes("VmSize");
    ASSERT_GT(size, 0u);
    rlimit tight = old;
    tight.rlim_cur = size + (256ull << 20);
    if (old.rlim_max != RLIM_INFINITY && tight.rlim_cur > old.rlim_max) {
        GTEST_SKIP() << "the hard address-space limit is already below the test's";
    }
    ASSERT_EQ(setrlimit(RLIMIT_AS, &tight), 0);
    const MemoryBudget budget = memoryBudget();
    ASSERT_EQ(setrlimit(RLIMIT_AS, &old), 0);
    EXPECT_EQ(budget.source, "the address-space limit (ulimit -v)");
    EXPECT_EQ(budget.limit, tight.rlim_cur);
    // What the process mapped between the two readings is small next to the 256 MB left.
    EXPECT_LE(budget.available, 256ull << 20);
    EXPECT_GE(budget.available, 200ull << 20);
}

TEST(MemoryGuard, AnOwnLimitCountsFromTheResidentSize)
{
    ScopedEnv limit("SINKSCOPE_MEMORY_LIMIT", std::to_string(processStatusBytes("VmRSS") + (100ull << 20)));
    const MemoryBudget budget = memoryBudget();
    EXPECT_EQ(budget.source, "SINKSCOPE_MEMORY_LIMIT");
    EXPECT_LE(budget.available, 100ull << 20);
    EXPECT_GE(budget.available, 60ull << 20);
}

TEST(MemoryGuard, TheRefusalIsOneLineWithTheNeedTheLimitAndTheWayOut)
{
    const MemoryNeed need = estimateForward(smolShape(), 4096, CaptureOptions{.allAttention = true}, true);
    // 30 layers of [9, 4096, 4096] floats, kept and copied: 36 GiB.
    EXPECT_GT(need.bytes, 36ull << 30);
    EXPECT_EQ(need.largest, "attention maps of 30 layers, 9 heads x 4096 x 4096");
    const MemoryBudget budget{.available = 6ull << 30, .limit = 8ull << 30, .source = "the cgroup memory limit"};
    const Status refused = checkMemory(need, "a forward pass of 4096 tokens", "use fewer tokens", budget);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, ErrorCode::OutOfMemory);
    const std::string &m = refused.error().message;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_EQ(m.rfind("a forward pass of 4096 tokens needs about ", 0), 0u) << m;
    EXPECT_NE(m.find("(mostly attention maps of 30 layers, 9 heads x 4096 x 4096), but only 6.0 GB is left under "
                     "the cgroup memory limit (8.0 GB); use fewer tokens"),
              std::string::npos)
        << m;
    EXPECT_TRUE(checkMemory(need, "x", "y", MemoryBudget{}));
    {
        ScopedEnv off("SINKSCOPE_MEMORY_GUARD", "off");
        EXPECT_TRUE(checkMemory(need, "x", "y", budget)) << "the guard can be turned off";
    }
}

// The soak's finding in miniature (docs/reliability.md, "Soak"): after a long prompt's attention maps are
// freed, blocks of a few megabytes come from the heap, and freed ones between blocks still in use stay
// resident until releaseFreeMemory hands them back.
TEST(MemoryGuard, FreedBlocksBetweenLiveOnesGoBackToTheSystem)
{
#if SINKSCOPE_SANITIZE || !defined(__GLIBC__)
    GTEST_SKIP() << "glibc's own allocator only (ASan replaces it)";
#else
    constexpr size_t kMiB = size_t{1} << 20;
    // A freed 16 MiB block (served by mmap) raises glibc's mmap threshold to 16 MiB, as a long prompt's
    // freed maps do; the volatile pointer keeps the compiler from dropping the pair.
    void *volatile raise = std::malloc(16 * kMiB);
    std::free(raise);
    std::vector<char *> big, live;
    for (int i = 0; i < 48; ++i) {
        big.push_back(static_cast<char *>(std::malloc(4 * kMiB)));
        std::memset(big.back(), 1, 4 * kMiB);
        live.push_back(static_cast<char *>(std::malloc(256)));
    }
    for (char *p : big) {
        std::free(p);
    }
    const uint64_t held = processStatusBytes("VmRSS");
    releaseFreeMemory();
    const uint64_t released = processStatusBytes("VmRSS");
    for (char *p : live) {
        std::free(p);
    }
    EXPECT_GT(held, released + 128 * kMiB)
        << "of 192 MiB freed, " << formatBytes(held - released) << " went back to the system";
#endif
}

TEST(MemoryGuard, EstimatesFollowWhatIsKept)
{
    const ModelConfig c = smolShape();
    // The engine path with the last logits only is linear in T; maps are quadratic.
    const uint64_t lean = estimateForward(c, 4096, CaptureOptions{.lastLogitsOnly = true}, true).bytes;
    const uint64_t lean2 = estimateForward(c, 8192, CaptureOptions{.lastLogitsOnly = true}, true).bytes;
    EXPECT_LT(lean, 1ull << 30);
    EXPECT_LT(lean2, 2 * lean);
    const uint64_t oneLayer = estimateForward(c, 4096, CaptureOptions{.attentionLayers = {3}}, true).bytes;
    EXPECT_GT(oneLayer, 2 * 9ull * 4096 * 4096 * 4);
    EXPECT_LT(oneLayer, 30ull * 9 * 4096 * 4096 * 4);
    // Without the engine, scores of 512 query rows at a time above 1024 tokens.
    const uint64_t torchPath = estimateForward(c, 4096, CaptureOptions{.lastLogitsOnly = true}, false).bytes;
    EXPECT_GT(torchPath, lean);
    // A corrupt shape saturates instead of wrapping around to a small number.
    ModelConfig huge = c;
    huge.heads = int64_t(1) << 40;
    EXPECT_EQ(estimateForward(huge, int64_t(1) << 30, CaptureOptions{.allAttention = true}, true).bytes, UINT64_MAX);
    EXPECT_GT(estimateGenerate(c, 100, 8000, true).bytes, estimateGenerate(c, 100, 10, true).bytes);
    EXPECT_GT(estimateHeadMap(9, 8192, 8192, 8192).bytes, 2 * 8192ull * 8192 * 4);
}

class MemoryGuardModel : public ::testing::Test
{
protected:
    static void SetUpTestSuite()
    {
        const std::string gguf = st::smollm2GgufPath();
        if (gguf.empty()) {
            return;
        }
        s_dir = new st::TempDir();
        const std::string path = s_dir->file("smollm2.pt");
        if (convertGguf(gguf, path)) {
            if (auto m = Model::load(path)) {
                s_model = new std::shared_ptr<const Model>(*m);
            }
        }
    }
    static void TearDownTestSuite()
    {
        delete s_model;
        s_model = nullptr;
        delete s_dir;
        s_dir = nullptr;
    }
    void SetUp() override
    {
        if (!s_model) {
            GTEST_SKIP() << "default model not installed (run tools/setup.sh)";
        }
    }
    const Model &model() const { return **s_model; }

    static std::vector<int64_t> tokens(size_t n)
    {
        std::vector<int64_t> t(n);
        for (size_t i = 0; i < n; ++i) {
            t[i] = 100 + static_cast<int64_t>(i * 7919) % 40000;
        }
        return t;
    }

    static st::TempDir *s_dir;
    static std::shared_ptr<const Model> *s_model;
};

st::TempDir *MemoryGuardModel::s_dir = nullptr;
std::shared_ptr<const Model> *MemoryGuardModel::s_model = nullptr;

TEST_F(MemoryGuardModel, EstimatesCoverTheRealPeak)
{
#if SINKSCOPE_SANITIZE
    GTEST_SKIP() << "ASan's shadow memory and quarantine change every peak; the dev build measures them";
#endif
    if (!std::ofstream("/proc/self/clear_refs")) {
        GTEST_SKIP() << "/proc/self/clear_refs is not writable here (peak RSS cannot be reset)";
    }
    struct Case {
        const char *name;
        int64_t tokens;
        CaptureOptions capture;
    };
    const std::vector<Case> cases = {
        {"every map at 640 tokens", 640, CaptureOptions{.allAttention = true, .lastLogitsOnly = true}},
        {"full logits and the residual stream at 900 tokens", 900, CaptureOptions{.hidden = true}},
        {"the engine alone at 1536 tokens", 1536, CaptureOptions{.lastLogitsOnly = true}},
        {"two maps and value norms at 1100 tokens", 1100,
         CaptureOptions{.attentionLayers = {0, 7}, .valueNorms = true, .lastLogitsOnly = true}},
    };
    for (const Case &c : cases) {
        malloc_trim(0);
        std::ofstream("/proc/self/clear_refs") << "5"; // VmHWM := VmRSS
        const uint64_t before = processStatusBytes("VmRSS");
        uint64_t peak = 0;
        {
            auto r = model().forward(ForwardRequest{.tokens = tokens(size_t(c.tokens)), .capture = c.capture});
            ASSERT_TRUE(r) << c.name << ": " << r.error().message;
            peak = processStatusBytes("VmHWM");
        }
        const uint64_t used = peak > before ? peak - before : 0;
        const MemoryNeed need = estimateForward(model().config(), c.tokens, c.capture, model().hasAttentionEngine());
        // Conservative, but not so much that requests that fit are refused.
        EXPECT_GE(need.bytes, used) << c.name << ": estimated " << formatBytes(need.bytes) << ", used "
                                    << formatBytes(used);
        EXPECT_LE(need.bytes, 3 * used + (128ull << 20))
            << c.name << ": estimated " << formatBytes(need.bytes) << ", used " << formatBytes(used);
        std::cout << "[ memory   ] " << c.name << ": used " << formatBytes(used) << ", estimated "
                  << formatBytes(need.bytes) << "\n";
    }
}

TEST_F(MemoryGuardModel, AForwardPassOverTheBudgetIsRefusedBeforeItAllocates)
{
    ScopedEnv limit("SINKSCOPE_MEMORY_LIMIT", std::to_string(processStatusBytes("VmRSS") + (400ull << 20)));
    const uint64_t before = processStatusBytes("VmRSS");
    auto refused = model().forward(ForwardRequest{.tokens = tokens(1024), .capture = {.allAttention = true}});
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, ErrorCode::OutOfMemory);
    const std::string &m = refused.error().message;
    EXPECT_EQ(m.rfind("a forward pass of 1024 tokens needs about ", 0), 0u) << m;
    EXPECT_NE(m.find("is left under SINKSCOPE_MEMORY_LIMIT"), std::string::npos) << m;
    EXPECT_NE(m.find("the streaming path"), std::string::npos) << m;
    EXPECT_LT(processStatusBytes("VmRSS"), before + (64ull << 20)) << "refused before allocating";
    // What fits still runs under the same limit.
    auto small = model().forward(ForwardRequest{.tokens = tokens(64), .capture = {.allAttention = true}});
    EXPECT_TRUE(small) << small.error().message;
#if SINKSCOPE_SANITIZE
    return; // a 1024-token pass takes minutes under ASan
#endif
    auto lean = model().forward(ForwardRequest{.tokens = tokens(1024), .capture = {.lastLogitsOnly = true}});
    EXPECT_TRUE(lean) << lean.error().message;
}

TEST_F(MemoryGuardModel, TheAutomaticAnalysisPathStreamsWhenTheMapsWouldNotFit)
{
#if SINKSCOPE_SANITIZE
    GTEST_SKIP() << "two 600-token analyses take minutes under ASan; the dev build runs them";
#endif
    ScopedEnv limit("SINKSCOPE_MEMORY_LIMIT", std::to_string(processStatusBytes("VmRSS") + (400ull << 20)));
    const auto t = tokens(600); // every map: 30 x 9 x 600 x 600 floats = 370 MiB, twice
    auto run = analyzeRun(model(), t, MetricsOptions{}, AnalysisKeep{}, 1024);
    ASSERT_TRUE(run) << run.error().message;
    EXPECT_TRUE(run->streamed);
    EXPECT_TRUE(run->mapsWouldNotFit);
    ASSERT_TRUE(run->metrics) << (run->metricsError ? run->metricsError->message : "");
    // The materialised path, asked for by name, is refused instead.
    MetricsOptions materialized;
    materialized.path = MetricsPath::Materialized;
    auto refused = analyzeRun(model(), t, materialized, AnalysisKeep{}, 1024);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().code, ErrorCode::OutOfMemory);
}

TEST_F(MemoryGuardModel, AnAllocationFailureTheGuardLetThroughIsOneLine)
{
    // The guard turned off and an address-space limit the request cannot fit: LibTorch's allocator fails,
    // and the error is still one line.
    ScopedEnv off("SINKSCOPE_MEMORY_GUARD", "0");
    rlimit old{};
    ASSERT_EQ(getrlimit(RLIMIT_AS, &old), 0);
    rlimit tight = old;
    tight.rlim_cur = processStatusBytes("VmSize") + (300ull << 20);
    if (old.rlim_max != RLIM_INFINITY && tight.rlim_cur > old.rlim_max) {
        GTEST_SKIP() << "the hard address-space limit is already below the test's";
    }
#if SINKSCOPE_SANITIZE
    GTEST_SKIP() << "ASan reserves terabytes of address space: an address-space limit cannot apply";
#endif
    ASSERT_EQ(setrlimit(RLIMIT_AS, &tight), 0);
    auto r = model().forward(ForwardRequest{.tokens = tokens(1024), .capture = {.allAttention = true}});
    ASSERT_EQ(setrlimit(RLIMIT_AS, &old), 0);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::OutOfMemory) << r.error().message;
    EXPECT_EQ(r.error().message.find('\n'), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("out of memory"), std::string::npos) << r.error().message;
}
