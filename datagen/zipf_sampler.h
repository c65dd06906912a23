// ZipfSampler: draws token ranks 0..V-1 with P(rank r) proportional to (r+1)^-s in O(1) time.
// The first `head` ranks are drawn exactly from an alias table; the rest (the long tail of a
// large vocabulary) by inverting the continuous power law on [head+0.5, V+0.5), which is within
// ~s/(2r) relative error of the discrete law there and costs one pow() per tail draw.
// An optional probability of "no token" (an empty column) rides in the same alias table, so an
// empty column costs no extra random draw.
#ifndef FMPS_DATAGEN_ZIPF_SAMPLER_H_
#define FMPS_DATAGEN_ZIPF_SAMPLER_H_

#include <cstdint>
#include <vector>

#include "datagen/random.h"

namespace fmps::datagen {

class ZipfSampler {
 public:
  static constexpr uint64_t kEmpty = UINT64_MAX;

  // vocab >= 1, s > 0, 0 <= empty < 1; head is clamped to [1, vocab]. Sample() returns kEmpty
  // with probability `empty`, else a rank from the Zipf law.
  ZipfSampler(uint64_t vocab, double s, uint64_t head, double empty = 0);

  uint64_t vocab() const { return vocab_; }
  uint64_t head() const { return head_; }
  // Probability mass of the tail (ranks >= head), 0 when the whole vocabulary is in the head.
  double tail_mass() const { return tail_mass_; }

  uint64_t Sample(WyRand& rng) const { return Finish(Start(rng.Next()), rng); }

  // Sample() in two steps, so a caller can prefetch the alias bucket between them (the tables
  // of 39 fields do not stay in L1): Start() picks the bucket from one random word, Finish()
  // resolves it, drawing one more uniform for a tail rank.
  struct Pick {
    uint32_t bucket;
    uint32_t fraction;
  };
  Pick Start(uint64_t random) const {
    const unsigned __int128 m = static_cast<unsigned __int128>(random) * buckets_.size();
    return {static_cast<uint32_t>(m >> 64), static_cast<uint32_t>(static_cast<uint64_t>(m) >> 32)};
  }
  void Prefetch(Pick pick) const { __builtin_prefetch(&buckets_[pick.bucket]); }
  uint64_t Finish(Pick p, WyRand& rng) const {
    const uint32_t pick = Resolve(p);
    if (pick < head_) return pick;
    if (pick == empty_index_) return kEmpty;
    return SampleTail(rng.Uniform());
  }

  // Finish() for callers that handle the outcomes themselves without branching on them: the
  // alias-resolved outcome, a head rank (< head()), tail_index() or empty_index(). A tail
  // outcome then takes SampleTail(rng.Uniform()), which is what Finish() would have drawn.
  uint32_t Resolve(Pick p) const {
    const Bucket& b = buckets_[p.bucket];
    // Branch-free choice: the comparison is a coin flip the predictor cannot learn.
    const uint32_t keep = 0u - static_cast<uint32_t>(p.fraction < b.threshold);
    return b.alias ^ ((p.bucket ^ b.alias) & keep);
  }
  // Outcome index of the tail and of "empty"; UINT32_MAX when the sampler has none.
  uint32_t tail_index() const { return head_ < vocab_ ? static_cast<uint32_t>(head_) : UINT32_MAX; }
  uint32_t empty_index() const { return empty_index_; }
  uint64_t SampleTail(double u) const;

  // The probability the sampler gives rank r (exact in the head, the continuous law in the
  // tail), excluding empty draws: sums to 1 over the vocabulary. For tests.
  double Probability(uint64_t rank) const;

 private:
  struct Bucket {
    uint32_t threshold;  // keep the bucket's own index when fraction < threshold
    uint32_t alias;      // otherwise take this one (== own index for a full bucket)
  };

  uint64_t vocab_;
  uint64_t head_;
  double s_;
  double tail_mass_ = 0;
  uint32_t empty_index_ = UINT32_MAX;  // alias index standing for "empty", if any
  double normalizer_ = 1;              // total unnormalized mass
  // Tail inversion: x = (lo_ + u * (hi_ - lo_))^(1/(1-s)), or exp() of a log-uniform when s == 1.
  double tail_lo_ = 0, tail_hi_ = 0, tail_exponent_ = 0;
  // The exponent as powf() sees it (float), when it is a small integer (s = 1.1: -10): the
  // power is then a few multiplications, rounded to float like powf's result.
  int integer_exponent_ = 0;
  std::vector<Bucket> buckets_;  // head_ entries, then one for the tail and one for empty, if any
};

}  // namespace fmps::datagen

#endif  // FMPS_DATAGEN_ZIPF_SAMPLER_H_
