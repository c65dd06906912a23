#include "ps/kv_messages.h"

#include <algorithm>
#include <cstring>
#include <string>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "ps/base/keys.h"

namespace fmps {
namespace {

// Keys outside the range would create rows that no checkpoint or pull of their owner ever sees.
Status CheckRange(std::span<const uint64_t> keys, const KeyRange& range) {
  for (uint64_t k : keys) {
    if (!range.Contains(Mix64(k)))
      return Status::InvalidArgument("key " + std::to_string(k) + " is outside the server's range");
  }
  return Status::OK();
}

}  // namespace

bool AllFinite(std::span<const float> values) {
  // A float is NaN or infinite exactly when its exponent bits are all ones: the largest magnitude
  // (sign bit cleared) as an integer tells, and an integer max folds without a branch per value.
  constexpr uint32_t kExponent = 0x7f800000u, kMagnitude = 0x7fffffffu;
  const float* p = values.data();
  const size_t n = values.size();
  size_t i = 0;
  uint32_t largest = 0;
#if defined(__AVX2__)
  const __m256i magnitude = _mm256_set1_epi32(static_cast<int>(kMagnitude));
  __m256i wide = _mm256_setzero_si256();
  for (; i + 8 <= n; i += 8) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i));
    wide = _mm256_max_epu32(wide, _mm256_and_si256(v, magnitude));
  }
  alignas(32) uint32_t lanes[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), wide);
  for (uint32_t lane : lanes) largest = std::max(largest, lane);
#endif
  for (; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, p + i, sizeof(bits));
    largest = std::max(largest, bits & kMagnitude);
  }
  return largest < kExponent;
}

Result<PullRequest> DecodePull(const Message& msg, const KeyRange& range) {
  PullRequest r;
  if (msg.meta.body_case() != proto::Meta::kKv)
    return Status::InvalidArgument("pull without a kv header");
  r.with_dense = msg.meta.kv().with_dense();
  if (msg.frames.size() != 1 || !ViewFrame(msg.frames[0], &r.owned_keys, &r.keys)) {
    return Status::InvalidArgument("pull frames malformed: want one frame of 8-byte keys");
  }
  if (r.keys.size() != msg.meta.kv().num_keys()) {
    return Status::InvalidArgument("pull header says " + std::to_string(msg.meta.kv().num_keys()) +
                                   " keys, frame has " + std::to_string(r.keys.size()));
  }
  FMPS_RETURN_IF_ERROR(CheckRange(r.keys, range));
  return r;
}

namespace {
// The checks every push passes, whichever frames carried its keys and widths.
Status CheckPush(const PushRequest& r, uint32_t header_keys, size_t dense_size) {
  const size_t n = r.keys.size();
  if (n != header_keys || r.widths.size() != n || r.counts.size() != n) {
    return Status::InvalidArgument("push sizes disagree: header " + std::to_string(header_keys) +
                                   ", keys " + std::to_string(n) + ", widths " +
                                   std::to_string(r.widths.size()) + ", counts " +
                                   std::to_string(r.counts.size()));
  }
  size_t want = n;
  for (uint16_t w : r.widths) want += w;
  if (r.grads.size() != want) {
    return Status::InvalidArgument("push has " + std::to_string(r.grads.size()) +
                                   " gradients, widths say " + std::to_string(want));
  }
  if (r.with_dense && r.dense_grads.size() != dense_size) {
    return Status::InvalidArgument("push dense block of " + std::to_string(r.dense_grads.size()) +
                                   " floats, server holds " + std::to_string(dense_size));
  }
  return Status::OK();
}
}  // namespace

Result<PushRequest> DecodePush(const Message& msg, const KeyRange& range, size_t dense_size) {
  PushRequest r;
  if (msg.meta.body_case() != proto::Meta::kKv)
    return Status::InvalidArgument("push without a kv header");
  r.with_dense = msg.meta.kv().with_dense();
  const size_t frames = r.with_dense ? 5 : 4;
  if (msg.frames.size() != frames || !ViewFrame(msg.frames[0], &r.owned_keys, &r.keys) ||
      !ViewFrame(msg.frames[1], &r.owned_grads, &r.grads) ||
      !ViewFrame(msg.frames[2], &r.owned_widths, &r.widths) ||
      !ViewFrame(msg.frames[3], &r.owned_counts, &r.counts) ||
      (r.with_dense && !ViewFrame(msg.frames[4], &r.owned_dense_grads, &r.dense_grads))) {
    return Status::InvalidArgument("push frames malformed: want keys, grads, widths, counts" +
                                   std::string(r.with_dense ? ", dense grads" : ""));
  }
  FMPS_RETURN_IF_ERROR(CheckPush(r, msg.meta.kv().num_keys(), dense_size));
  FMPS_RETURN_IF_ERROR(CheckRange(r.keys, range));
  return r;
}

Result<PushRequest> DecodeKeylessPush(const Message& msg, std::span<const uint64_t> keys,
                                      std::span<const uint16_t> widths, size_t dense_size) {
  PushRequest r;
  if (msg.meta.body_case() != proto::Meta::kKv)
    return Status::InvalidArgument("push without a kv header");
  r.with_dense = msg.meta.kv().with_dense();
  r.keys = keys;
  r.widths = widths;
  const size_t frames = r.with_dense ? 3 : 2;
  if (msg.frames.size() != frames || !ViewFrame(msg.frames[0], &r.owned_grads, &r.grads) ||
      !ViewFrame(msg.frames[1], &r.owned_counts, &r.counts) ||
      (r.with_dense && !ViewFrame(msg.frames[2], &r.owned_dense_grads, &r.dense_grads))) {
    return Status::InvalidArgument("push frames malformed: want grads, counts" +
                                   std::string(r.with_dense ? ", dense grads" : "") +
                                   " (keys and widths those of its pull)");
  }
  FMPS_RETURN_IF_ERROR(CheckPush(r, msg.meta.kv().num_keys(), dense_size));
  return r;
}

}  // namespace fmps
