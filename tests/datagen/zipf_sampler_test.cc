#include "datagen/zipf_sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "datagen/random.h"

namespace fmps::datagen {
namespace {

TEST(ZipfSamplerTest, HeadFrequenciesMatchZipfLaw) {
  const ZipfSampler sampler(50, 1.1, 1000);  // all in the head: exact alias sampling
  EXPECT_EQ(sampler.head(), 50u);
  EXPECT_EQ(sampler.tail_mass(), 0.0);
  WyRand rng(7);
  const int n = 400000;
  std::vector<int> count(50);
  for (int i = 0; i < n; ++i) {
    const uint64_t r = sampler.Sample(rng);
    ASSERT_LT(r, 50u);
    ++count[r];
  }
  double total_p = 0;
  for (int r = 0; r < 50; ++r) {
    const double p = sampler.Probability(r);
    total_p += p;
    const double expected = p * n;
    EXPECT_NEAR(count[r], expected, 5 * std::sqrt(expected) + 1) << "rank " << r;
  }
  EXPECT_NEAR(total_p, 1.0, 1e-12);
  // Rank 0 over rank 9: (10/1)^1.1 = 12.6.
  EXPECT_NEAR(static_cast<double>(count[0]) / count[9], std::pow(10.0, 1.1), 1.0);
}

// SampleTail inverts the continuous law x = (lo + u (hi - lo))^(1/(1-s)); the exponent is an
// integer for s = 1.1 (-10) and 0.8 (5), where the power is taken by squaring, and not for 1.3.
// Either way the rank is the one the exact inverse gives, up to single-precision rounding (one
// rank, mostly far in the tail).
TEST(ZipfSamplerTest, TailRankIsTheExactInverseOfTheContinuousLaw) {
  const uint64_t vocab = 1000000, head = 1000;
  for (double s : {1.1, 0.8, 1.3}) {
    const ZipfSampler sampler(vocab, s, head);
    const long double a = head + 0.5L, b = vocab + 0.5L, e = 1 / (1 - static_cast<long double>(s));
    const long double lo = std::pow(a, 1 - static_cast<long double>(s)),
                      hi = std::pow(b, 1 - static_cast<long double>(s));
    int off_by_one = 0;
    for (int i = 0; i < 20000; ++i) {
      const double u = (i + 0.5) / 20000;
      const long double x = std::pow(lo + u * (hi - lo), e);
      const int64_t exact =
          std::clamp<int64_t>(static_cast<int64_t>(std::floor(x + 0.5L)), head + 1, vocab) - 1;
      const int64_t got = static_cast<int64_t>(sampler.SampleTail(u));
      ASSERT_LE(std::abs(got - exact), 1) << "s " << s << " u " << u;
      off_by_one += got != exact;
    }
    // t is rounded to float (relative 6e-8, times |exponent| in x): near a rank's edge only.
    EXPECT_LT(off_by_one, 1000) << "s " << s;
  }
}

TEST(ZipfSamplerTest, TailIsDrawnWithItsMassAndStaysInRange) {
  const uint64_t vocab = 200000;
  const ZipfSampler sampler(vocab, 1.1, 256);
  ASSERT_GT(sampler.tail_mass(), 0.1);
  WyRand rng(11);
  const int n = 300000;
  int in_tail = 0, in_first_half_of_tail = 0;
  uint64_t max_rank = 0;
  for (int i = 0; i < n; ++i) {
    const uint64_t r = sampler.Sample(rng);
    ASSERT_LT(r, vocab);
    max_rank = std::max(max_rank, r);
    if (r >= 256) {
      ++in_tail;
      if (r < 256 + 256) ++in_first_half_of_tail;
    }
  }
  const double sd = std::sqrt(n * sampler.tail_mass());
  EXPECT_NEAR(in_tail, n * sampler.tail_mass(), 5 * sd);
  double expected_near = 0;
  for (uint64_t r = 256; r < 512; ++r) expected_near += sampler.Probability(r);
  EXPECT_NEAR(in_first_half_of_tail, n * expected_near, 5 * std::sqrt(n * expected_near));
  EXPECT_GT(max_rank, vocab / 4);  // the long tail is reached
}

TEST(ZipfSamplerTest, ExponentOneUsesLogUniformTail) {
  const ZipfSampler sampler(10000, 1.0, 16);
  WyRand rng(3);
  double sum_p = 0;
  for (uint64_t r = 0; r < 10000; ++r) sum_p += sampler.Probability(r);
  EXPECT_NEAR(sum_p, 1.0, 1e-9);
  int above_1000 = 0;
  for (int i = 0; i < 100000; ++i) above_1000 += sampler.Sample(rng) >= 1000;
  double expected = 0;
  for (uint64_t r = 1000; r < 10000; ++r) expected += sampler.Probability(r);
  EXPECT_NEAR(above_1000, 100000 * expected, 5 * std::sqrt(100000 * expected));
}

TEST(ZipfSamplerTest, EmptyDrawsHaveTheirProbabilityAndLeaveTheLawAlone) {
  const ZipfSampler sampler(5000, 1.1, 128, 0.2);
  WyRand rng(21);
  const int n = 300000;
  int empty = 0, top = 0, tail = 0;
  for (int i = 0; i < n; ++i) {
    const uint64_t r = sampler.Sample(rng);
    if (r == ZipfSampler::kEmpty) {
      ++empty;
      continue;
    }
    ASSERT_LT(r, 5000u);
    top += r == 0;
    tail += r >= 128;
  }
  EXPECT_NEAR(empty, 0.2 * n, 5 * std::sqrt(0.2 * 0.8 * n));
  const double drawn = n - empty;
  EXPECT_NEAR(top, drawn * sampler.Probability(0), 5 * std::sqrt(drawn * sampler.Probability(0)));
  EXPECT_NEAR(tail, drawn * sampler.tail_mass(), 5 * std::sqrt(drawn * sampler.tail_mass()));
}

TEST(RandomTest, Permute32IsABijectionWithItsInverse) {
  WyRand rng(5);
  for (int i = 0; i < 100000; ++i) {
    const uint32_t x = static_cast<uint32_t>(rng.Next());
    ASSERT_EQ(Unpermute32(Permute32(x)), x);
  }
  EXPECT_NE(Permute32(1), 1u);
}

TEST(RandomTest, NormalFromHashHasUnitVariance) {
  double sum = 0, sum2 = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    const double z = NormalFromHash(Mix64(i));
    sum += z;
    sum2 += z * z;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.02);
  EXPECT_NEAR(sum2 / n, 1.0, 0.02);
}

}  // namespace
}  // namespace fmps::datagen
