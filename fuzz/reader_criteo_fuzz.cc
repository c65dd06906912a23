// libFuzzer harness: the criteo reader over plain bytes, whole and in byte-range parts.
#include <cstddef>
#include <cstdint>

#include "fuzz/reader_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fmps::fuzz::FuzzReader(fmps::DataFormat::kCriteo, data, size);
}
