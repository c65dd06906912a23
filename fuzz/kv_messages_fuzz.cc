// libFuzzer harness: a server's decoding of pull and push requests. The input is split into
// frames (u16 length, then that many bytes); frame 0 is the serialized proto::Meta header as it
// arrives on the wire, the rest are the data frames. A decoded request must be self-consistent
// and inside the server's key range; a decoded push is then applied to a Store, as the server does.
// The message is also read as a push naming a kept pull (DecodeKeylessPush).
//
// Input layout: range selector u8 | dense size u8 | frames (u16 length + bytes)*.
#include <google/protobuf/stubs/logging.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_util.h"
#include "ps/base/keys.h"
#include "ps/kv_messages.h"
#include "ps/store/store.h"

namespace {

using fmps::fuzz::InputCursor;

fmps::KeyRange RangeFor(uint8_t selector) {
  // Whole space, or one of four quarters (end 0 = 2^64 for the last).
  if (selector % 5 == 4) return {0, 0};
  const uint64_t quarter = uint64_t{1} << 62;
  const uint64_t i = selector % 5;
  return {i * quarter, i == 3 ? 0 : (i + 1) * quarter};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  InputCursor in(data, size);
  const fmps::KeyRange range = RangeFor(in.Take<uint8_t>());
  const size_t dense_size = in.Take<uint8_t>() % 16;
  fmps::Message msg;
  google::protobuf::LogSilencer quiet;  // invalid UTF-8 in string fields is logged per parse
  const std::string_view header = in.TakeBytes(in.Take<uint16_t>());
  if (!msg.meta.ParseFromArray(header.data(), static_cast<int>(header.size()))) return 0;
  while (in.remaining() > 0 && msg.frames.size() < 8) {
    msg.frames.emplace_back(in.TakeBytes(in.Take<uint16_t>()));
  }

  auto pull = fmps::DecodePull(msg, range);
  if (pull.ok()) {
    FMPS_FUZZ_ASSERT(pull->keys.size() == msg.meta.kv().num_keys(),
                     "pull key count matches header");
    for (uint64_t k : pull->keys)
      FMPS_FUZZ_ASSERT(range.Contains(fmps::Mix64(k)), "pull key in range");
  }
  // The same message read as a push naming a kept pull of num_keys keys (at most 4096), whose
  // answered widths cycle 0..3.
  {
    const size_t kept = std::min<uint32_t>(msg.meta.kv().num_keys(), 4096);
    std::vector<uint64_t> kept_keys(kept);
    std::vector<uint16_t> kept_widths(kept);
    for (size_t i = 0; i < kept; ++i) {
      kept_keys[i] = fmps::Mix64(i + 1);
      kept_widths[i] = static_cast<uint16_t>(i % 4);
    }
    auto keyless = fmps::DecodeKeylessPush(msg, kept_keys, kept_widths, dense_size);
    if (keyless.ok()) {
      size_t want = kept;
      for (uint16_t w : kept_widths) want += w;
      FMPS_FUZZ_ASSERT(keyless->keys.size() == kept && keyless->counts.size() == kept,
                       "keyless arrays agree");
      FMPS_FUZZ_ASSERT(keyless->grads.size() == want, "keyless gradients match kept widths");
      FMPS_FUZZ_ASSERT(!keyless->with_dense || keyless->dense_grads.size() == dense_size,
                       "keyless dense block size");
      fmps::StoreOptions options;  // max width 8, as the seeds are written
      options.ftrl = {0.05f, 1.0f, 0.5f, 1.0f};
      options.policy = fmps::RankPolicy::DiFacto(8, 4, 1, 10, 100);
      options.sketch_mb = 0.01;
      fmps::Store store(options);
      (void)store.Push(keyless->keys, keyless->grads, keyless->widths, keyless->counts);
    }
  }
  auto push = fmps::DecodePush(msg, range, dense_size);
  if (!push.ok()) return 0;
  const size_t n = push->keys.size();
  FMPS_FUZZ_ASSERT(n == msg.meta.kv().num_keys(), "push key count matches header");
  FMPS_FUZZ_ASSERT(push->widths.size() == n && push->counts.size() == n, "push arrays agree");
  size_t want = n;
  for (uint16_t w : push->widths) want += w;
  FMPS_FUZZ_ASSERT(push->grads.size() == want, "gradients match widths");
  FMPS_FUZZ_ASSERT(!push->with_dense || push->dense_grads.size() == dense_size, "dense block size");
  for (uint64_t k : push->keys)
    FMPS_FUZZ_ASSERT(range.Contains(fmps::Mix64(k)), "push key in range");

  // What the server does next: apply the push, then answer a pull of the same keys.
  fmps::StoreOptions options;  // max width 8, as the seeds are written
  options.ftrl = {0.05f, 1.0f, 0.5f, 1.0f};
  options.policy = fmps::RankPolicy::DiFacto(8, 4, 1, 10, 100);
  options.sketch_mb = 0.01;
  fmps::Store store(options);
  fmps::Status st = store.Push(push->keys, push->grads, push->widths, push->counts);
  (void)st;  // duplicates or odd widths may be refused; a crash may not
  std::vector<float> values;
  std::vector<uint16_t> widths;
  store.Pull(push->keys, &values, &widths);
  FMPS_FUZZ_ASSERT(widths.size() == n, "one width per pulled key");
  return 0;
}
