#include "ps/store/update_rules.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace fmps {
namespace {

const FtrlParams kFtrl{/*alpha=*/0.1f, /*beta=*/1.0f, /*l1=*/0.5f, /*l2=*/1.0f};

TEST(FtrlTest, ThreeStepsMatchHandComputedValues) {
  float z = 0, n = 0, w = 0;
  // g = 2: n = 4, sigma = (2 - 0) / 0.1 = 20, z = 0 + 2 - 20 * 0 = 2,
  // w = -(2 - 0.5) / ((1 + 2) / 0.1 + 1) = -1.5 / 31.
  FtrlStep(z, n, w, 2.0f, kFtrl);
  EXPECT_FLOAT_EQ(z, 2.0f);
  EXPECT_FLOAT_EQ(n, 4.0f);
  EXPECT_NEAR(w, -1.5 / 31.0, 1e-7);
  // g = -1: n = 5, sigma = (sqrt(5) - 2) / 0.1 = 2.3606798, z = 2 - 1 + 2.3606798 * 1.5 / 31
  // = 1.1142264, w = -(1.1142264 - 0.5) / ((1 + sqrt(5)) / 0.1 + 1) = -0.0184117.
  FtrlStep(z, n, w, -1.0f, kFtrl);
  EXPECT_FLOAT_EQ(n, 5.0f);
  EXPECT_NEAR(z, 1.1142264, 1e-6);
  EXPECT_NEAR(w, -0.0184117, 1e-6);
  // g = 0.5: n = 5.25, sigma = (sqrt(5.25) - sqrt(5)) / 0.1 = 0.5518, z = 1.1142264 + 0.5
  // + 0.5518 * 0.0184117 = 1.6243934, w = -1.1243934 / ((1 + sqrt(5.25)) / 0.1 + 1) = -0.0331553.
  FtrlStep(z, n, w, 0.5f, kFtrl);
  EXPECT_FLOAT_EQ(n, 5.25f);
  EXPECT_NEAR(z, 1.6243934, 1e-6);
  EXPECT_NEAR(w, -0.0331553, 1e-6);
}

TEST(FtrlTest, L1GivesExactZeroAndSignFollowsZ) {
  float z = 0, n = 0, w = 0;
  FtrlStep(z, n, w, 0.4f, kFtrl);  // z = 0.4 <= l1
  EXPECT_FLOAT_EQ(z, 0.4f);
  EXPECT_EQ(w, 0.0f);
  EXPECT_FALSE(std::signbit(w) && w != 0.0f);
  FtrlStep(z, n, w, -0.45f, kFtrl);  // w was 0, so z = 0.4 - 0.45 = -0.05
  EXPECT_NEAR(z, -0.05f, 1e-7);
  EXPECT_EQ(w, 0.0f);
  FtrlStep(z, n, w, -1.0f, kFtrl);  // z = -1.05: w > 0
  EXPECT_GT(w, 0.0f);
  EXPECT_EQ(FtrlWeight(0.5f, 9.0f, kFtrl), 0.0f);  // |z| == l1 is still zero
  EXPECT_EQ(FtrlWeight(-0.5f, 9.0f, kFtrl), 0.0f);
  EXPECT_NEAR(FtrlWeight(-1.5f, 9.0f, kFtrl), 1.0 / 41.0, 1e-7);  // (1 + 3) / 0.1 + 1 = 41
}

TEST(FtrlTest, SpanVersionEqualsScalarSteps) {
  std::vector<float> z(4, 0), n(4, 0), w(4, 0);
  const std::vector<float> g1 = {2.0f, 0.4f, -3.0f, 0.0f};
  const std::vector<float> g2 = {-1.0f, 0.3f, 1.0f, 0.7f};
  FtrlUpdate(z, n, w, g1, kFtrl);
  FtrlUpdate(z, n, w, g2, kFtrl);
  for (size_t i = 0; i < 4; ++i) {
    float zs = 0, ns = 0, ws = 0;
    FtrlStep(zs, ns, ws, g1[i], kFtrl);
    FtrlStep(zs, ns, ws, g2[i], kFtrl);
    EXPECT_EQ(z[i], zs);
    EXPECT_EQ(n[i], ns);
    EXPECT_EQ(w[i], ws);
  }
  EXPECT_NEAR(w[0], -0.0184117, 1e-6);  // first coordinate is the hand-computed sequence
  EXPECT_LT(w[1], 0.0f);  // z = 0.4 (w = 0), then z = 0.4 + 0.3 - sigma * 0 = 0.7 > l1
}

TEST(AdagradTest, StepsMatchHandComputedValues) {
  const AdagradParams params{/*lr=*/0.1f, /*l2=*/0.5f, /*eps=*/1e-6f};
  std::vector<float> v = {1.0f, -2.0f}, acc = {0.0f, 0.0f};
  // g' = g + 0.5 v = {0.5 + 0.5, 1 - 1} = {1, 0}; acc = {1, 0};
  // v = {1 - 0.1 * 1 / sqrt(1 + 1e-6), -2 - 0} = {0.90000005, -2}.
  const std::vector<float> g = {0.5f, 1.0f};
  AdagradUpdate(v, acc, g, params);
  EXPECT_NEAR(v[0], 0.90000005, 1e-7);
  EXPECT_FLOAT_EQ(v[1], -2.0f);
  EXPECT_FLOAT_EQ(acc[0], 1.0f);
  EXPECT_FLOAT_EQ(acc[1], 0.0f);
  // g' = {0.5 + 0.45, 0} = {0.95, 0}; acc = {1.9025, 0}; v0 = 0.9 - 0.1 * 0.95 / sqrt(1.9025)
  // = 0.8311251.
  AdagradUpdate(v, acc, g, params);
  EXPECT_NEAR(acc[0], 1.9025, 1e-6);
  EXPECT_NEAR(v[0], 0.8311251, 1e-6);
  // g = {-0.25, 0}: g' = {-0.25 + 0.4155626, 0 - 1} = {0.1655626, -1}; acc = {1.9299110, 1};
  // v = {0.8311251 - 0.1 * 0.1655626 / sqrt(1.929911), -2 + 0.1 / sqrt(1.000001)}.
  AdagradUpdate(v, acc, std::vector<float>{-0.25f, 0.0f}, params);
  EXPECT_NEAR(acc[0], 1.9299110, 1e-6);
  EXPECT_FLOAT_EQ(acc[1], 1.0f);
  EXPECT_NEAR(v[0], 0.8192074, 1e-6);
  EXPECT_NEAR(v[1], -1.90000005, 1e-6);
}

// Rows of 13 dimensions: the first eight go through the vector path (AVX builds), the rest the
// scalar one; every dimension follows the formula, computed here in double.
TEST(AdagradTest, EveryDimensionOfAWideRowFollowsTheFormula) {
  const AdagradParams params{0.05f, 0.3f, 1e-6f};
  std::vector<float> v(13), acc(13), g(13);
  for (int d = 0; d < 13; ++d) {
    v[d] = 0.1f * static_cast<float>(d - 6);
    acc[d] = 0.01f * static_cast<float>(d);
    g[d] = 0.2f * static_cast<float>((d * 7) % 5) - 0.4f;
  }
  std::vector<double> want_v(13), want_acc(13);
  for (int d = 0; d < 13; ++d) {
    const double gd = double{g[d]} + double{params.l2} * v[d];
    want_acc[d] = double{acc[d]} + gd * gd;
    want_v[d] = v[d] - double{params.lr} * gd / std::sqrt(want_acc[d] + double{params.eps});
  }
  AdagradUpdate(v, acc, g, params);
  for (int d = 0; d < 13; ++d) {
    EXPECT_NEAR(acc[d], want_acc[d], 1e-6) << "dimension " << d;
    EXPECT_NEAR(v[d], want_v[d], 1e-6) << "dimension " << d;
  }
}

TEST(AdagradTest, OnlyDimensionsWithGradientsMove) {
  const AdagradParams params{0.1f, 0.5f, 1e-6f};
  std::vector<float> v = {1.0f, 1.0f, 1.0f}, acc = {0.0f, 0.0f, 0.0f};
  AdagradUpdate(v, acc, std::vector<float>{0.0f}, params);  // one-dim gradient on a 3-dim row
  EXPECT_LT(v[0], 1.0f);                                    // L2 alone moves the updated dim
  EXPECT_EQ(v[1], 1.0f);
  EXPECT_EQ(v[2], 1.0f);
  EXPECT_EQ(acc[1], 0.0f);
}

TEST(InitialEmbeddingTest, DeterministicAndRoughlyNormal) {
  EXPECT_EQ(InitialEmbeddingValue(7, 42, 3, 0.01f), InitialEmbeddingValue(7, 42, 3, 0.01f));
  EXPECT_NE(InitialEmbeddingValue(7, 42, 3, 0.01f), InitialEmbeddingValue(8, 42, 3, 0.01f));
  EXPECT_NE(InitialEmbeddingValue(7, 42, 3, 0.01f), InitialEmbeddingValue(7, 43, 3, 0.01f));
  EXPECT_NE(InitialEmbeddingValue(7, 42, 3, 0.01f), InitialEmbeddingValue(7, 42, 4, 0.01f));
  double sum = 0, sum_sq = 0;
  const int kDraws = 20000;
  for (int i = 0; i < kDraws; ++i) {
    const double x = InitialEmbeddingValue(1, static_cast<uint64_t>(i) * 977, i % 8, 2.0f);
    sum += x;
    sum_sq += x * x;
  }
  const double mean = sum / kDraws;
  const double stddev = std::sqrt(sum_sq / kDraws - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.06);  // 4 standard errors of 2 / sqrt(20000) = 0.014
  EXPECT_NEAR(stddev, 2.0, 0.06);
}

}  // namespace
}  // namespace fmps
