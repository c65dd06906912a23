// Decoding of pull and push requests as a server receives them. Pure functions over a Message,
// so they are tested and fuzzed on their own: whatever bytes arrive, the answer is a decoded
// request or a Status saying what is wrong — never a crash, never a key outside the server's range.
#ifndef FMPS_PS_KV_MESSAGES_H_
#define FMPS_PS_KV_MESSAGES_H_

#include <cstdint>
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

struct PullRequest {
  std::vector<uint64_t> keys;
  bool with_dense = false;
};

struct PushRequest {
  std::vector<uint64_t> keys;
  std::vector<float> grads;  // per key: w gradient, then widths[i] embedding gradients
  std::vector<uint16_t> widths;
  std::vector<uint32_t> counts;
  std::vector<float> dense_grads;  // empty unless with_dense
  bool with_dense = false;
};

// frames: [keys]
Result<PullRequest> DecodePull(const Message& msg, const KeyRange& range);
// frames: [keys, grads, widths, counts (, dense grads of dense_size floats)]
Result<PushRequest> DecodePush(const Message& msg, const KeyRange& range, size_t dense_size);

}  // namespace fmps

#endif  // FMPS_PS_KV_MESSAGES_H_
