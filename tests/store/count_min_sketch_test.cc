#include "ps/store/count_min_sketch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <unordered_map>
#include <vector>

namespace fmps {
namespace {

// Zipf(s) over `vocabulary` ranks by inverse CDF on a precomputed table.
std::vector<uint64_t> ZipfStream(uint64_t vocabulary, double s, uint64_t length, uint64_t seed) {
  std::vector<double> cdf(vocabulary);
  double sum = 0;
  for (uint64_t r = 0; r < vocabulary; ++r) cdf[r] = (sum += 1.0 / std::pow(double(r + 1), s));
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, sum);
  std::vector<uint64_t> stream(length);
  for (auto& key : stream) {
    const uint64_t rank = std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin();
    key = rank * 0x9e3779b97f4a7c15ULL + 12345;  // arbitrary distinct keys
  }
  return stream;
}

TEST(CountMinSketchTest, ErrorBoundHoldsOnZipfStream) {
  // Small on purpose (w = 2000) so collisions are frequent and the bound is what is tested.
  CountMinSketch sketch(4, 2000, 7);
  const std::vector<uint64_t> stream = ZipfStream(200000, 1.1, 400000, 1);
  std::unordered_map<uint64_t, uint64_t> truth;
  for (const uint64_t key : stream) {
    sketch.Add(key, 1);
    ++truth[key];
  }
  ASSERT_EQ(sketch.Total(), stream.size());
  const double bound = sketch.Epsilon() * static_cast<double>(sketch.Total());
  uint64_t over_bound = 0;
  uint64_t exact = 0;
  for (const auto& [key, count] : truth) {
    const uint32_t estimate = sketch.Estimate(key);
    ASSERT_GE(estimate, count) << "a count-min sketch never under-counts (key " << key << ")";
    if (estimate - count > bound) ++over_bound;
    exact += estimate == count;
  }
  // P[error > eps N] <= delta = e^-4 = 1.8% per key; conservative update does far better.
  EXPECT_LE(static_cast<double>(over_bound), sketch.Delta() * truth.size())
      << over_bound << " of " << truth.size() << " keys over the bound " << bound;
  // The head of the distribution is counted nearly exactly.
  const uint64_t top = 0 * 0x9e3779b97f4a7c15ULL + 12345;
  EXPECT_LE(sketch.Estimate(top) - truth[top], bound);
  EXPECT_GT(exact, 0u);
}

TEST(CountMinSketchTest, ConservativeUpdateBeatsTheBoundByFar) {
  CountMinSketch sketch(4, 1 << 16, 3);
  const std::vector<uint64_t> stream = ZipfStream(50000, 1.0, 200000, 2);
  std::unordered_map<uint64_t, uint64_t> truth;
  for (const uint64_t key : stream) {
    sketch.Add(key, 1);
    ++truth[key];
  }
  uint64_t wrong = 0;
  for (const auto& [key, count] : truth) wrong += sketch.Estimate(key) != count;
  // 50k keys in 256k counters: almost every estimate is exact.
  EXPECT_LT(wrong, truth.size() / 100);
}

TEST(CountMinSketchTest, AddReturnsEstimateAndSaturates) {
  CountMinSketch sketch(3, 100);
  EXPECT_EQ(sketch.Estimate(5), 0u);
  EXPECT_EQ(sketch.Add(5, 3), 3u);
  EXPECT_EQ(sketch.Add(5, 2), 5u);
  EXPECT_EQ(sketch.Estimate(5), 5u);
  EXPECT_EQ(sketch.Add(5, 0xFFFFFFFDu), 0xFFFFFFFFu);  // 5 + (2^32 - 3) saturates
  EXPECT_EQ(sketch.Estimate(5), 0xFFFFFFFFu);
  sketch.Clear();
  EXPECT_EQ(sketch.Estimate(5), 0u);
  EXPECT_EQ(sketch.Total(), 0u);
}

TEST(CountMinSketchTest, HalveAgesCounts) {
  CountMinSketch sketch(4, 1000);
  sketch.Add(1, 9);
  sketch.Add(2, 1);
  sketch.Halve();
  EXPECT_EQ(sketch.Estimate(1), 4u);
  EXPECT_EQ(sketch.Estimate(2), 0u);
  EXPECT_EQ(sketch.Total(), 5u);
}

TEST(CountMinSketchTest, WithBytesFitsTheBudget) {
  const CountMinSketch sketch = CountMinSketch::WithBytes(8 << 20, 4);
  EXPECT_EQ(sketch.depth(), 4u);
  EXPECT_EQ(sketch.width(), (8u << 20) / 16);
  EXPECT_LE(sketch.bytes(), 8u << 20);
  EXPECT_NEAR(sketch.Epsilon(), std::exp(1.0) / sketch.width(), 1e-12);
  EXPECT_NEAR(sketch.Delta(), std::exp(-4.0), 1e-12);
  // Degenerate budgets still give a working sketch.
  CountMinSketch tiny = CountMinSketch::WithBytes(0, 0);
  EXPECT_EQ(tiny.Add(42, 2), 2u);
}

}  // namespace
}  // namespace fmps
