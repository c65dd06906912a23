#include "datagen/zipf_sampler.h"

#include <glog/logging.h>

#include <algorithm>
#include <cmath>

namespace fmps::datagen {
namespace {

bool IsOne(double s) { return std::fabs(s - 1.0) < 1e-9; }

// Integral of x^-s over [a, b].
double PowerLawMass(double a, double b, double s) {
  if (IsOne(s)) return std::log(b) - std::log(a);
  return (std::pow(b, 1 - s) - std::pow(a, 1 - s)) / (1 - s);
}

// x^n by squaring in double: within a few 1e-16 of exact, so rounded to float it is the
// correctly rounded power; glibc's powf differs in a few draws per million (a rank off by one).
double IntegerPower(double x, int n) {
  unsigned m = static_cast<unsigned>(n < 0 ? -n : n);
  double result = 1, square = x;
  while (m != 0) {
    if (m & 1) result *= square;
    square *= square;
    m >>= 1;
  }
  return n < 0 ? 1 / result : result;
}

}  // namespace

ZipfSampler::ZipfSampler(uint64_t vocab, double s, uint64_t head, double empty)
    : vocab_(vocab), head_(std::clamp<uint64_t>(head, 1, vocab)), s_(s) {
  CHECK_GE(vocab, 1u);
  CHECK_GT(s, 0.0);
  CHECK(empty >= 0 && empty < 1) << empty;
  CHECK_LT(head_, uint64_t{1} << 31);  // alias indices are 32 bits
  const bool has_tail = head_ < vocab_;
  std::vector<double> weight(head_ + (has_tail ? 1 : 0));
  double total = 0;
  for (uint64_t r = 0; r < head_; ++r) {
    weight[r] = std::pow(static_cast<double>(r + 1), -s);
    total += weight[r];
  }
  if (has_tail) {
    const double a = static_cast<double>(head_) + 0.5, b = static_cast<double>(vocab_) + 0.5;
    weight[head_] = PowerLawMass(a, b, s);
    total += weight[head_];
    if (IsOne(s)) {
      tail_lo_ = std::log(a);
      tail_hi_ = std::log(b);
    } else {
      tail_lo_ = std::pow(a, 1 - s);
      tail_hi_ = std::pow(b, 1 - s);
      tail_exponent_ = 1 / (1 - s);
      const float e = static_cast<float>(tail_exponent_);
      if (e == std::round(e) && std::fabs(e) <= 64) integer_exponent_ = static_cast<int>(e);
    }
    tail_mass_ = weight[head_] / total;
  }
  normalizer_ = total;
  if (empty > 0) {
    empty_index_ = static_cast<uint32_t>(weight.size());
    weight.push_back(total * empty / (1 - empty));
    total += weight.back();
  }

  // Vose's alias method: scale weights to mean 1, pair each small bucket with a large one.
  const size_t n = weight.size();
  buckets_.resize(n);
  std::vector<double> scaled(n);
  std::vector<uint32_t> small, large;
  for (size_t i = 0; i < n; ++i) {
    scaled[i] = weight[i] * static_cast<double>(n) / total;
    (scaled[i] < 1.0 ? small : large).push_back(static_cast<uint32_t>(i));
  }
  while (!small.empty() && !large.empty()) {
    const uint32_t lo = small.back(), hi = large.back();
    small.pop_back();
    buckets_[lo].threshold = static_cast<uint32_t>(std::min(scaled[lo] * 0x1.0p32, 0x1.0p32 - 1));
    buckets_[lo].alias = hi;
    scaled[hi] -= 1.0 - scaled[lo];
    if (scaled[hi] < 1.0) {
      large.pop_back();
      small.push_back(hi);
    }
  }
  // Leftovers are full buckets up to rounding: always keep their own index.
  for (uint32_t i : small) buckets_[i] = {UINT32_MAX, i};
  for (uint32_t i : large) buckets_[i] = {UINT32_MAX, i};
}

uint64_t ZipfSampler::SampleTail(double u) const {
  const double t = tail_lo_ + u * (tail_hi_ - tail_lo_);
  // Single precision (relative error ~1e-6, a rank off by one at most per million) is plenty
  // here and about twice as fast as double pow().
  double x;
  if (integer_exponent_ != 0) {
    x = static_cast<float>(IntegerPower(static_cast<float>(t), integer_exponent_));
  } else {
    x = IsOne(s_) ? std::exp(t)
                  : std::pow(static_cast<float>(t), static_cast<float>(tail_exponent_));
  }
  // Rank (1-based) nearest x, kept inside the tail; returned 0-based.
  const double rank = std::floor(x + 0.5);
  const uint64_t r = rank <= static_cast<double>(head_ + 1)
                         ? head_ + 1
                         : std::min<uint64_t>(static_cast<uint64_t>(rank), vocab_);
  return r - 1;
}

double ZipfSampler::Probability(uint64_t rank) const {
  if (rank >= vocab_) return 0;
  if (rank < head_) return std::pow(static_cast<double>(rank + 1), -s_) / normalizer_;
  const double x = static_cast<double>(rank + 1);
  return PowerLawMass(x - 0.5, x + 0.5, s_) / normalizer_;
}

}  // namespace fmps::datagen
