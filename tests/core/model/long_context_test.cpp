// Long prompts (docs/performance.md, "Long contexts"): above 1024 tokens the archive's attention step runs
// query rows in blocks of 512 so that it never holds [H, T, T] scores. The blocks must give the same
// answer as the whole map: forcing the whole-map path (an ACT control with no head selected, which needs
// the whole map and changes nothing) must not change the logits. Needs the default model's GGUF (skips
// without it).
#include "sinkscope/config.h"
#include "sinkscope/model/convert.h"
#include "sinkscope/model/model.h"
#include "support/test_paths.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

using namespace sinkscope;
namespace st = sinkscope::testing;

TEST(LongContext, RowBlocksMatchTheWholeMap)
{
#if SINKSCOPE_SANITIZE
    GTEST_SKIP() << "two 1100-token passes of the default model take minutes under ASan; the dev build runs it";
#endif
    const std::string gguf = st::smollm2GgufPath();
    if (gguf.empty()) {
        GTEST_SKIP() << "default model not installed (run tools/setup.sh)";
    }
    st::TempDir dir;
    const std::string path = dir.file("smollm2.pt");
    Status converted = convertGguf(gguf, path);
    ASSERT_TRUE(converted) << converted.error().message;
    auto model = Model::load(path);
    ASSERT_TRUE(model) << model.error().message;
    const ModelConfig &c = (*model)->config();

    std::vector<int64_t> tokens(1100); // 1100 = two full blocks of 512 and one of 76
    for (size_t i = 0; i < tokens.size(); ++i) {
        tokens[i] = 100 + static_cast<int64_t>(i * 7919) % 40000;
    }
    ForwardRequest blocks{.tokens = tokens, .capture = {.lastLogitsOnly = true}, .controls = {}};
    ForwardRequest whole = blocks;
    for (const char *key : {"act_heads", "act_beta", "act_thres"}) {
        whole.controls.tensors[key] =
            FloatArray{{c.layers, c.heads}, std::vector<float>(static_cast<size_t>(c.layers * c.heads), 0.0f)};
    }
    auto a = (*model)->forward(blocks);
    ASSERT_TRUE(a) << a.error().message;
    auto b = (*model)->forward(whole);
    ASSERT_TRUE(b) << b.error().message;
    ASSERT_EQ(a->logits.data.size(), b->logits.data.size());
    float worst = 0;
    for (size_t i = 0; i < a->logits.data.size(); ++i) {
        worst = std::max(worst, std::fabs(a->logits.data[i] - b->logits.data[i]));
    }
    EXPECT_LT(worst, 1e-3f) << "largest logit difference between row blocks and the whole map";
    const auto argmax = [](const std::vector<float> &v) { return std::max_element(v.begin(), v.end()) - v.begin(); };
    EXPECT_EQ(argmax(a->logits.data), argmax(b->logits.data));
}
