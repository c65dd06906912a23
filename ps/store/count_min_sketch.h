// CountMinSketch: approximate occurrence counts of 64-bit keys in a fixed amount of memory. The
// store uses it to count features that have not earned a row yet (admission by --min_count).
//
// depth d rows of width w 32-bit counters (4 * d * w bytes, nothing per key). Estimate(key) is the
// minimum of the key's d counters, so it never under-counts (until Halve), and with conservative
// update (Add raises only the counters below the new minimum) it over-counts less than the
// classic sketch. Error bound (Cormode & Muthukrishnan), with N = Total() occurrences added:
//   eps = e / w, delta = e^-d:  P[ Estimate(key) > true(key) + eps * N ] <= delta.
// Halve() divides every counter by two (ageing): old occurrences fade, so over an unbounded
// stream eps * N stays bounded; after it estimates may fall below the true counts.
#ifndef FMPS_PS_STORE_COUNT_MIN_SKETCH_H_
#define FMPS_PS_STORE_COUNT_MIN_SKETCH_H_

#include <cstdint>
#include <vector>

namespace fmps {

class CountMinSketch {
 public:
  // depth >= 1 hash rows of width >= 1 counters each.
  CountMinSketch(uint32_t depth, uint64_t width, uint64_t seed = 0);
  // The widest sketch of `depth` rows that fits in `bytes` (at least one counter per row).
  static CountMinSketch WithBytes(uint64_t bytes, uint32_t depth, uint64_t seed = 0);

  // Adds `count` occurrences of `key` and returns its new estimate (saturating at 2^32 - 1).
  uint32_t Add(uint64_t key, uint32_t count);
  uint32_t Estimate(uint64_t key) const;
  // Halves every counter and Total(): ageing, so the sketch follows recent occurrences.
  void Halve();
  void Clear();

  uint32_t depth() const { return depth_; }
  uint64_t width() const { return width_; }
  uint64_t Total() const { return total_; }  // occurrences added (halved by Halve)
  uint64_t bytes() const { return counters_.capacity() * sizeof(uint32_t); }
  double Epsilon() const;  // e / width: over-count bound as a fraction of Total()
  double Delta() const;    // e^-depth: probability the bound fails for one key

 private:
  static constexpr uint32_t kMaxDepth = 16;
  // Counter positions of `key`, one per row (double hashing on one 64-bit mix).
  void Positions(uint64_t key, uint64_t* pos) const;

  uint32_t depth_;
  uint64_t width_;
  uint64_t seed_;
  uint64_t total_ = 0;
  std::vector<uint32_t> counters_;  // row r at [r * width_, (r + 1) * width_)
};

}  // namespace fmps

#endif  // FMPS_PS_STORE_COUNT_MIN_SKETCH_H_
