// The CPU reference of the residual-stream reduction kernel (sinkscope/activation_stats.h), by hand.
#include "sinkscope/analysis/activation_stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

using namespace sinkscope;

TEST(ActivationStats, TopKWithPositionsTiesAndLowerMedian)
{
    const float nan = std::numeric_limits<float>::quiet_NaN();
    // [L = 2, T = 2, D = 3].
    const std::vector<float> h{1,   -5, 2, 0.5f, 5, -3, //
                               nan, 1,  1, 1,    1, 1};
    auto s = residualActivationStats(h.data(), 2, 2, 3, 3);
    ASSERT_TRUE(s) << s.error().message;
    ASSERT_EQ(s->size(), 2u);
    const auto &l0 = (*s)[0];
    ASSERT_EQ(l0.top.size(), 3u);
    // |5| twice: (token 0, dim 1) before (token 1, dim 1); then -3 at (1, 2).
    EXPECT_EQ(l0.top[0].value, -5);
    EXPECT_EQ(l0.top[0].token, 0);
    EXPECT_EQ(l0.top[0].dim, 1);
    EXPECT_EQ(l0.top[1].value, 5);
    EXPECT_EQ(l0.top[1].token, 1);
    EXPECT_EQ(l0.top[1].dim, 1);
    EXPECT_EQ(l0.top[2].value, -3);
    EXPECT_EQ(l0.top[2].token, 1);
    EXPECT_EQ(l0.top[2].dim, 2);
    EXPECT_EQ(l0.median, 2); // sorted |h| 0.5 1 2 3 5 5: element (6 - 1) / 2 = 2
    const auto &l1 = (*s)[1];
    // NaN counts as 0: five ones, ties in index order.
    EXPECT_EQ(l1.top[0].dim, 1);
    EXPECT_EQ(l1.top[1].dim, 2);
    EXPECT_EQ(l1.top[2].token, 1);
    EXPECT_EQ(l1.top[2].dim, 0);
    EXPECT_EQ(l1.median, 1); // 0 1 1 1 1 1
}

TEST(ActivationStats, OddCountsAndFewerValuesThanK)
{
    const std::vector<float> h{-7, 3, 4}; // [1, 1, 3]
    auto s = residualActivationStats(h.data(), 1, 1, 3, 10);
    ASSERT_TRUE(s);
    ASSERT_EQ((*s)[0].top.size(), 3u);
    EXPECT_EQ((*s)[0].top[0].value, -7);
    EXPECT_EQ((*s)[0].top[2].value, 3);
    EXPECT_EQ((*s)[0].median, 4); // 3 4 7: the middle one
}

TEST(ActivationStats, RejectsBadArguments)
{
    const std::vector<float> h{1};
    EXPECT_FALSE(residualActivationStats(h.data(), 1, 1, 1, 0));
    EXPECT_FALSE(residualActivationStats(nullptr, 1, 1, 1, 1));
    auto bad = residualActivationStats(h.data(), 1, 0, 1, 1);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, ErrorCode::InvalidArgument);
}
