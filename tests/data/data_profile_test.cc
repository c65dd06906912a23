// ProfileData: the counts of the first rows of a job's files, exact on small inputs.
#include "data/data_profile.h"

#include <gtest/gtest.h>

#include "tests/data/reader_test_util.h"

namespace fmps {
namespace {

// libsvm rows: label, then one token per field (position = field).
std::string Rows(int rows, int fields, int vocab) {
  std::string text;
  for (int r = 0; r < rows; ++r) {
    text += r % 2 ? "1" : "0";
    for (int f = 0; f < fields; ++f) text += " " + std::to_string((r * 7 + f) % vocab) + ":1";
    text += "\n";
  }
  return text;
}

TEST(DataProfileTest, CountsRowsEntriesAndDistinctFeaturesOfAWholeFile) {
  testing::TempDir dir;
  // 100 rows, 3 fields, 10 values: every field sees all 10, so 30 distinct keys, 300 entries.
  const std::string path = testing::WriteBytes(dir.Path("a.libsvm"), Rows(100, 3, 10));
  DataProfileOptions o;
  o.format = DataFormat::kLibsvm;
  Result<DataProfile> p = ProfileData({path}, o);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->rows, 100u);
  EXPECT_EQ(p->entries, 300u);
  EXPECT_EQ(p->distinct_features, 30u);
  EXPECT_TRUE(p->whole);
  EXPECT_EQ(p->estimated_rows, 100u);
  EXPECT_DOUBLE_EQ(p->per_feature(), 10.0);
  EXPECT_DOUBLE_EQ(p->fields_per_row(), 3.0);
}

TEST(DataProfileTest, StopsAtMaxRowsAndEstimatesTheRestFromTheFileSizes) {
  testing::TempDir dir;
  const std::string text = Rows(100, 3, 10);
  const std::string a = testing::WriteBytes(dir.Path("a.libsvm"), text);
  const std::string b = testing::WriteBytes(dir.Path("b.libsvm"), text);
  DataProfileOptions o;
  o.format = DataFormat::kLibsvm;
  o.max_rows = 50;
  Result<DataProfile> p = ProfileData({a, b}, o);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->rows, 50u);
  EXPECT_EQ(p->entries, 150u);
  EXPECT_FALSE(p->whole);
  // Lines of equal length but for the label's and the tokens' digits: about 200 rows in all.
  EXPECT_GT(p->estimated_rows, 180u);
  EXPECT_LT(p->estimated_rows, 220u);
}

TEST(DataProfileTest, HeldOutRowsAreNotCountedAndStreamsAreRefused) {
  testing::TempDir dir;
  const std::string path = testing::WriteBytes(dir.Path("a.libsvm"), Rows(1000, 2, 50));
  DataProfileOptions o;
  o.format = DataFormat::kLibsvm;
  o.holdout = 0.5;
  Result<DataProfile> p = ProfileData({path}, o);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_GT(p->rows, 400u);
  EXPECT_LT(p->rows, 600u);
  EXPECT_EQ(p->entries, 2 * p->rows);

  Result<DataProfile> stdin_profile = ProfileData({"-"}, o);
  ASSERT_FALSE(stdin_profile.ok());
  EXPECT_NE(stdin_profile.status().ToString().find("stdin is a stream"), std::string::npos)
      << stdin_profile.status().ToString();
}

}  // namespace
}  // namespace fmps
