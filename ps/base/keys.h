// Feature keys and hashing. A key is 64 bits: the field id in the top 8 bits, a hash of the
// token below. Servers own contiguous ranges of Mix64(key), so one field's keys spread evenly.
#ifndef FMPS_PS_BASE_KEYS_H_
#define FMPS_PS_BASE_KEYS_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

// XXH3 from its header, inlined: a call into the library per token was a sixth of the Criteo
// parser's time. The hashes are the library's (XXH3 is one algorithm whatever the build).
// (XXH3's AVX-512 path, for inputs over 240 bytes, sets off GCC 12's false maybe-uninitialized
// warnings inside its intrinsics; AVX2 is as fast for what is hashed here.)
#define XXH_INLINE_ALL
#if defined(__AVX512F__) && !defined(XXH_VECTOR)
#define XXH_VECTOR XXH_AVX2
#endif
#include <xxhash.h>
#undef XXH_INLINE_ALL

namespace fmps {

constexpr int kFieldBits = 8;
constexpr int kMaxFields = 1 << kFieldBits;
constexpr uint64_t kTokenMask = (uint64_t{1} << (64 - kFieldBits)) - 1;

inline uint64_t MakeKey(uint32_t field, uint64_t token_hash) {
  return (uint64_t{field} << (64 - kFieldBits)) | (token_hash & kTokenMask);
}
inline uint32_t KeyField(uint64_t key) { return static_cast<uint32_t>(key >> (64 - kFieldBits)); }

// A bijective 64-bit finalizer (splitmix64): spreads keys uniformly over the ring of servers.
inline uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// Hash of a token's bytes (XXH3, 64 bits).
inline uint64_t HashToken(std::string_view token, uint64_t seed = 0) {
  return XXH3_64bits_withSeed(token.data(), token.size(), seed);
}
// Hash of an integer token (used for bucketed numeric columns).
inline uint64_t HashInt(uint64_t value, uint64_t seed = 0) {
  return Mix64(value * 0x9e3779b97f4a7c15ULL + seed + 1);
}

// 64-bit checksum of a byte range (XXH3), used by checkpoints and manifests.
uint64_t Checksum64(const void* data, size_t size);

}  // namespace fmps

#endif  // FMPS_PS_BASE_KEYS_H_
