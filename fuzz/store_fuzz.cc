// libFuzzer harness: Store::Deserialize over garbage and mutated store images. The trailing
// checksum is checked last, so mutations reach the row parser; with the control byte's low bit
// set the harness also rewrites the checksum so a damaged image is accepted as intact and its
// rows are parsed all the way. A loaded store must then serve pulls and survive a round trip.
//
// Input layout: control u8 | store image.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "fuzz/fuzz_util.h"
#include "ps/base/keys.h"
#include "ps/store/store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fmps::fuzz::InputCursor in(data, size);
  const uint8_t control = in.Take<uint8_t>();
  std::string image(in.Rest());
  if ((control & 1) && image.size() >= 8) {
    const uint64_t sum = fmps::Checksum64(image.data(), image.size() - 8);
    std::memcpy(image.data() + image.size() - 8, &sum, 8);
  }
  fmps::StoreOptions options;  // max width 8, as the seeds are written
  options.ftrl = {0.05f, 1.0f, 0.5f, 1.0f};
  options.policy = fmps::RankPolicy::DiFacto(8, 4, 1, 10, 100);
  fmps::Store store(options);
  if (!store.Deserialize(image, "fuzz-store").ok()) return 0;
  std::vector<uint64_t> keys;
  store.ForEach([&](uint64_t key, float, std::span<const float> v) {
    FMPS_FUZZ_ASSERT(v.size() <= options.policy.MaxWidth(), "embedding within max width");
    keys.push_back(key);
  });
  FMPS_FUZZ_ASSERT(keys.size() == store.Stats().keys, "ForEach visits every row");
  std::vector<float> values;
  std::vector<uint16_t> widths;
  store.Pull(keys, &values, &widths);
  FMPS_FUZZ_ASSERT(widths.size() == keys.size(), "one width per key");
  // Serialize and load again: a loaded store writes an image it can read.
  const std::string again = store.Serialize();
  fmps::Store copy(options);
  FMPS_FUZZ_ASSERT(copy.Deserialize(again, "fuzz-store-again").ok(), "round trip loads");
  FMPS_FUZZ_ASSERT(copy.Stats().keys == keys.size(), "round trip keeps every row");
  return 0;
}
