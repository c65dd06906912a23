// libFuzzer harness: checkpoint files. Control bit 1 picks the file kind: a shard (DecodeShard,
// then Store::Deserialize of the store inside it, as a restarting server does) or a MANIFEST
// (ReadManifest from a file). Control bit 0 rewrites the trailing checksum so that mutated files
// get past the integrity check and into the parsers.
//
// Input layout: control u8 | file.
#include <google/protobuf/stubs/logging.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "fuzz/fuzz_util.h"
#include "ps/base/keys.h"
#include "ps/checkpoint.h"
#include "ps/store/store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fmps::fuzz::InputCursor in(data, size);
  const uint8_t control = in.Take<uint8_t>();
  std::string file(in.Rest());
  if ((control & 1) && file.size() >= 8) {
    const uint64_t sum = fmps::Checksum64(file.data(), file.size() - 8);
    std::memcpy(file.data() + file.size() - 8, &sum, 8);
  }
  if (control & 2) {
    google::protobuf::LogSilencer quiet;  // invalid UTF-8 in string fields is logged per parse
    fmps::fuzz::MemFile mem(file);
    auto manifest = fmps::ReadManifest(mem.path());
    if (manifest.ok()) {
      std::string again;
      FMPS_FUZZ_ASSERT(manifest->SerializeToString(&again), "a read manifest serializes");
    }
    return 0;
  }
  auto shard = fmps::DecodeShard(file, "fuzz-shard");
  if (!shard.ok()) return 0;
  // DecodeShard ignores bytes between the store and the checksum, so re-encoding may be shorter.
  FMPS_FUZZ_ASSERT(fmps::EncodeShard(*shard).size() <= file.size(),
                   "a decoded shard re-encodes within its size");
  fmps::StoreOptions options;  // max width 8, as the seeds are written
  options.ftrl = {0.05f, 1.0f, 0.5f, 1.0f};
  options.policy = fmps::RankPolicy::DiFacto(8, 4, 1, 10, 100);
  fmps::Store store(options);
  (void)store.Deserialize(shard->store, "fuzz-shard/store");
  return 0;
}
