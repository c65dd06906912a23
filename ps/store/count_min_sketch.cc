#include "ps/store/count_min_sketch.h"

#include <glog/logging.h>

#include <algorithm>
#include <cmath>

#include "ps/base/keys.h"

namespace fmps {

CountMinSketch::CountMinSketch(uint32_t depth, uint64_t width, uint64_t seed)
    : depth_(std::clamp<uint32_t>(depth, 1, kMaxDepth)),
      width_(std::max<uint64_t>(width, 1)),
      seed_(seed),
      counters_(size_t{depth_} * width_, 0) {}

CountMinSketch CountMinSketch::WithBytes(uint64_t bytes, uint32_t depth, uint64_t seed) {
  depth = std::clamp<uint32_t>(depth, 1, kMaxDepth);
  return CountMinSketch(depth, bytes / (uint64_t{depth} * sizeof(uint32_t)), seed);
}

void CountMinSketch::Positions(uint64_t key, uint64_t* pos) const {
  // Two independent 64-bit mixes; row r uses h1 + r * h2 reduced to [0, width) by a
  // multiply-shift (no modulo, any width).
  const uint64_t h1 = Mix64(key ^ seed_);
  const uint64_t h2 = Mix64(h1 ^ 0x9e3779b97f4a7c15ULL) | 1;
  for (uint32_t r = 0; r < depth_; ++r) {
    const uint64_t h = (h1 + r * h2) >> 32;
    pos[r] = r * width_ + ((h * width_) >> 32);
  }
}

uint32_t CountMinSketch::Add(uint64_t key, uint32_t count) {
  uint64_t pos[kMaxDepth];
  Positions(key, pos);
  uint32_t current = 0xFFFFFFFFu;
  for (uint32_t r = 0; r < depth_; ++r) current = std::min(current, counters_[pos[r]]);
  const uint32_t next = count > 0xFFFFFFFFu - current ? 0xFFFFFFFFu : current + count;
  // Conservative update: a counter already above the key's new estimate carries other keys'
  // occurrences that cover this key's too, so it is left alone.
  for (uint32_t r = 0; r < depth_; ++r) counters_[pos[r]] = std::max(counters_[pos[r]], next);
  total_ += count;
  return next;
}

uint32_t CountMinSketch::Estimate(uint64_t key) const {
  uint64_t pos[kMaxDepth];
  Positions(key, pos);
  uint32_t estimate = 0xFFFFFFFFu;
  for (uint32_t r = 0; r < depth_; ++r) estimate = std::min(estimate, counters_[pos[r]]);
  return estimate;
}

void CountMinSketch::Halve() {
  for (uint32_t& c : counters_) c >>= 1;
  total_ >>= 1;
}

void CountMinSketch::Clear() {
  std::fill(counters_.begin(), counters_.end(), 0u);
  total_ = 0;
}

double CountMinSketch::Epsilon() const { return std::exp(1.0) / static_cast<double>(width_); }
double CountMinSketch::Delta() const { return std::exp(-static_cast<double>(depth_)); }

}  // namespace fmps
