// Decoding of pull and push requests as a server receives them. Pure functions over a Message,
// so they are tested and fuzzed on their own: whatever bytes arrive, the answer is a decoded
// request or a Status saying what is wrong — never a crash, never a key outside the server's range.
#ifndef FMPS_PS_KV_MESSAGES_H_
#define FMPS_PS_KV_MESSAGES_H_

#include <cstdint>
#include <span>
#include <vector>

#include "ps/base/status.h"
#include "ps/transport.h"

namespace fmps {

// The Mix64 range a server owns: [begin, end), end 0 meaning 2^64.
struct KeyRange {
  uint64_t begin = 0;
  uint64_t end = 0;
  bool Contains(uint64_t mixed) const { return mixed >= begin && (end == 0 || mixed < end); }
};

// Requests decoded in place: the spans view the message's frames (valid while it lives and is
// unchanged), so a server reads what arrived without copying it. Move-only: a span may view the
// request's own copy of a frame that was not aligned (see ViewFrame).
struct PullRequest {
  std::span<const uint64_t> keys;
  bool with_dense = false;

  PullRequest() = default;
  PullRequest(PullRequest&&) = default;
  PullRequest& operator=(PullRequest&&) = default;
  std::vector<uint64_t> owned_keys;  // only for a misaligned frame
};

struct PushRequest {
  std::span<const uint64_t> keys;
  std::span<const float> grads;  // per key: w gradient, then widths[i] embedding gradients
  std::span<const uint16_t> widths;
  std::span<const uint32_t> counts;
  std::span<const float> dense_grads;  // empty unless with_dense
  bool with_dense = false;

  PushRequest() = default;
  PushRequest(PushRequest&&) = default;
  PushRequest& operator=(PushRequest&&) = default;
  // Copies of misaligned frames only.
  std::vector<uint64_t> owned_keys;
  std::vector<float> owned_grads, owned_dense_grads;
  std::vector<uint16_t> owned_widths;
  std::vector<uint32_t> owned_counts;
};

// True when every value is finite (no NaN, no infinity): a push with a value that is not is dropped
// before it reaches the model, where one NaN would spread to every prediction. One pass over the
// floats' bits, eight at a time where AVX2 is built in.
bool AllFinite(std::span<const float> values);

// frames: [keys]
Result<PullRequest> DecodePull(const Message& msg, const KeyRange& range);
// frames: [keys, grads, widths, counts (, dense grads of dense_size floats)]
Result<PushRequest> DecodePush(const Message& msg, const KeyRange& range, size_t dense_size);
// A push with kv.keys_of_pull: frames [grads, counts (, dense grads)]; its keys and widths are
// those the server kept from that pull (checked against the range then), viewed, not copied.
Result<PushRequest> DecodeKeylessPush(const Message& msg, std::span<const uint64_t> keys,
                                      std::span<const uint16_t> widths, size_t dense_size);

}  // namespace fmps

#endif  // FMPS_PS_KV_MESSAGES_H_
