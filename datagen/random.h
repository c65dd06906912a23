// Random numbers for the synthetic data generator: a fast seeded stream (WyRand) for the rows
// and stateless hash-to-value helpers for everything that must be a pure function of a key
// (planted parameters, token strings), so train and test files share the same world.
#ifndef FMPS_DATAGEN_RANDOM_H_
#define FMPS_DATAGEN_RANDOM_H_

#include <cstdint>

#include "ps/base/keys.h"

namespace fmps::datagen {

// wyrand: one add and one 64x64->128 multiply per draw; passes BigCrush and is far faster than
// std::mt19937_64, which matters at ~80 draws per generated row.
class WyRand {
 public:
  explicit WyRand(uint64_t seed) : state_(Mix64(seed ^ 0x243f6a8885a308d3ULL)) {}
  uint64_t Next() {
    state_ += 0xa0761d6478bd642fULL;
    const unsigned __int128 m =
        static_cast<unsigned __int128>(state_) * (state_ ^ 0xe7037ed1a0b428dbULL);
    return static_cast<uint64_t>(m >> 64) ^ static_cast<uint64_t>(m);
  }
  // Uniform in [0, 1) with 53 random bits.
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

// Uniform integer in [0, n) from a 64-bit random word (multiply-shift, no division).
inline uint64_t ScaleToRange(uint64_t random, uint64_t n) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(random) * n) >> 64);
}

// An approximately standard normal value from one 64-bit hash: the sum of four 16-bit uniforms
// (Irwin-Hall, bounded at +-3.46). Cheap enough to compute rare tokens' parameters on the fly.
inline float NormalFromHash(uint64_t h) {
  const uint32_t sum = static_cast<uint32_t>(h & 0xffff) +
                       static_cast<uint32_t>((h >> 16) & 0xffff) +
                       static_cast<uint32_t>((h >> 32) & 0xffff) + static_cast<uint32_t>(h >> 48);
  // Mean 4 * 32767.5, variance 4 * (65536^2 - 1) / 12.
  constexpr float kMean = 4 * 32767.5f;
  constexpr float kInvStd = 1.0f / 37837.23f;  // 1 / sqrt(4 * (65536^2 - 1) / 12)
  return (static_cast<float>(sum) - kMean) * kInvStd;
}

// A bijection of 32-bit integers (xorshift-multiply rounds); its inverse is below. Token ids
// map through it to their categorical strings, so strings never collide within a field.
inline uint32_t Permute32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}
inline uint32_t UnpermutePart15(uint32_t x) { return x ^ (x >> 15) ^ (x >> 30); }
inline uint32_t Unpermute32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x43021123U;  // inverse of 0x846ca68b mod 2^32
  x = UnpermutePart15(x);
  x *= 0x1d69e2a5U;  // inverse of 0x7feb352d mod 2^32
  x ^= x >> 16;
  return x;
}

}  // namespace fmps::datagen

#endif  // FMPS_DATAGEN_RANDOM_H_
