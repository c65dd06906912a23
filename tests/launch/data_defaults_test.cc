// The rule from a data profile to the adaptive defaults: the table's defaults for sparse data,
// the dense corner for dense data, log-linear in between, and a given flag never overridden.
#include "launch/data_defaults.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "config/params.h"

namespace fmps {
namespace {

std::map<std::string, std::string> AsMap(
    const std::vector<std::pair<std::string, std::string>>& v) {
  return std::map<std::string, std::string>(v.begin(), v.end());
}

TEST(DataDefaultsTest, DensenessIsClampedAndLogLinear) {
  EXPECT_EQ(Denseness(0), 0);
  EXPECT_EQ(Denseness(5.8), 0);  // Criteo-8k
  EXPECT_EQ(Denseness(kSparsePerFeature), 0);
  EXPECT_EQ(Denseness(kDensePerFeature), 1);
  EXPECT_EQ(Denseness(95), 1);  // Frappe
  const double middle = std::sqrt(kSparsePerFeature * kDensePerFeature);
  EXPECT_NEAR(Denseness(middle), 0.5, 1e-12);
}

TEST(DataDefaultsTest, SparseDataGetsTheTablesDefaults) {
  const std::map<std::string, std::string> flags =
      AsMap(ResolvedFlags(InterpolateSettings("fwfm", Denseness(5.8)), {}));
  ASSERT_EQ(flags.size(), AdaptiveParameters().size());
  for (const std::string& name : AdaptiveParameters()) {
    const params::ParamInfo* p = params::Find(name);
    ASSERT_NE(p, nullptr) << name;
    EXPECT_EQ(std::stod(flags.at(name)), std::stod(p->default_text)) << name;
  }
}

TEST(DataDefaultsTest, DenseDataGetsTheDenseCornerAndFmItsOwn) {
  const std::map<std::string, std::string> fwfm =
      AsMap(ResolvedFlags(InterpolateSettings("fwfm", Denseness(95)), {}));
  const std::map<std::string, std::string> expected{
      {"v_min_count", "0"},    {"rank_mid_count", "0"}, {"rank_head_count", "0"},
      {"v_init_scale", "0.1"}, {"ftrl_alpha", "0.1"},   {"ftrl_l1", "0"},
      {"v_lr", "0.1"},         {"v_l2", "0.3"},         {"dense_lr", "0.3"},
      {"batch_size", "256"}};
  EXPECT_EQ(fwfm, expected);
  const std::map<std::string, std::string> fm =
      AsMap(ResolvedFlags(InterpolateSettings("fm", 1), {}));
  EXPECT_EQ(fm.at("v_lr"), "0.2");
  EXPECT_EQ(fm.at("v_init_scale"), "0.01");
  EXPECT_EQ(fm.at("batch_size"), "1000");
  EXPECT_EQ(fm.at("v_l2"), "0.3");
}

TEST(DataDefaultsTest, TheMiddleIsTheGeometricMeanOfTheCorners) {
  const AdaptiveSettings s = InterpolateSettings("fwfm", 0.5);
  EXPECT_NEAR(s.v_l2, std::sqrt(1e-4 * 0.3), 1e-12);
  EXPECT_NEAR(s.v_lr, std::sqrt(0.05 * 0.1), 1e-12);
  EXPECT_NEAR(s.dense_lr, std::sqrt(0.05 * 0.3), 1e-12);
  EXPECT_NEAR(s.v_init_scale, std::sqrt(0.01 * 0.1), 1e-12);
  EXPECT_EQ(s.batch_size, 506);       // sqrt(1000 * 256)
  EXPECT_EQ(s.v_min_count, 13u);      // sqrt(201 * 1) - 1
  EXPECT_EQ(s.rank_mid_count, 21u);   // sqrt(501) - 1
  EXPECT_EQ(s.rank_head_count, 31u);  // sqrt(1001) - 1
  EXPECT_DOUBLE_EQ(s.ftrl_l1, 2.5);   // linear: its dense corner is 0
  EXPECT_LE(s.rank_mid_count, s.rank_head_count);
}

TEST(DataDefaultsTest, AGivenFlagIsNeverResolved) {
  const std::map<std::string, std::string> flags =
      AsMap(ResolvedFlags(InterpolateSettings("fwfm", 1), {"v_l2", "batch_size"}));
  EXPECT_EQ(flags.size(), AdaptiveParameters().size() - 2);
  EXPECT_EQ(flags.count("v_l2"), 0u);
  EXPECT_EQ(flags.count("batch_size"), 0u);
  EXPECT_EQ(flags.at("dense_lr"), "0.3");
}

}  // namespace
}  // namespace fmps
