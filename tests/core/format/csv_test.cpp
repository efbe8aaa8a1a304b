// The one CSV writer: RFC 4180 quoting, and whitespace at either end kept by quoting.
#include "sinkscope/common/csv.h"

#include <gtest/gtest.h>

using sinkscope::csvField;
using sinkscope::csvRow;

TEST(Csv, QuotesOnlyWhatNeedsIt)
{
    EXPECT_EQ(csvField("plain"), "plain");
    EXPECT_EQ(csvField(""), "");
    EXPECT_EQ(csvField("0.25"), "0.25");
    EXPECT_EQ(csvField("a,b"), "\"a,b\"");
    EXPECT_EQ(csvField("say \"hi\""), "\"say \"\"hi\"\"\"");
    EXPECT_EQ(csvField("two\nlines"), "\"two\nlines\"");
    EXPECT_EQ(csvField("cr\r"), "\"cr\r\"");
    EXPECT_EQ(csvField(" lead"), "\" lead\"");
    EXPECT_EQ(csvField("trail\t"), "\"trail\t\"");
    EXPECT_EQ(csvField("in side"), "in side");
}

TEST(Csv, RowsJoinQuotedFields)
{
    EXPECT_EQ(csvRow({}), "\n");
    EXPECT_EQ(csvRow({"layer", "head", "sinks 4+252"}), "layer,head,sinks 4+252\n");
    EXPECT_EQ(csvRow({"id", "The \"capital\", of France", " Paris"}),
              "id,\"The \"\"capital\"\", of France\",\" Paris\"\n");
}
