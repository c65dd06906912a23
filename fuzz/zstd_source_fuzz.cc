// libFuzzer harness: the zstd byte source (and a Criteo reader on top) over damaged streams.
#include <cstddef>
#include <cstdint>

#include "fuzz/compressed_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fmps::fuzz::FuzzCompressed(fmps::Compression::kZstd, data, size);
}
