// The body of the gzip and zstd harnesses: the fuzz input, with the format's magic bytes forced
// at its start so the decoder (not the plain path) is what gets fuzzed, is read through
// OpenByteSource twice with different buffer sizes — the decoded bytes and the verdict must not
// depend on how the caller chunks its reads — and then through a Criteo reader.
//
// Input layout: small buffer size u8 | compressed stream (its first bytes replaced by the magic).
#ifndef FMPS_FUZZ_COMPRESSED_FUZZ_H_
#define FMPS_FUZZ_COMPRESSED_FUZZ_H_

#include <cstdint>
#include <string>
#include <vector>

#include "data/byte_source.h"
#include "fuzz/fuzz_util.h"
#include "fuzz/reader_fuzz.h"

namespace fmps::fuzz {

// Decoded output is capped so a small bomb cannot stall or exhaust the fuzzer.
constexpr size_t kMaxDecoded = 4 << 20;

struct Decoded {
  bool opened = false;
  bool ok = false;  // reached the end of the stream without an error
  std::string bytes;
};

inline Decoded DecodeAll(const std::string& path, size_t capacity) {
  Decoded out;
  auto opened = OpenByteSource(path, 0);
  if (!opened.ok()) return out;
  out.opened = true;
  std::vector<char> buf(capacity);
  while (out.bytes.size() < kMaxDecoded) {
    auto n = opened->source->Read(buf.data(), buf.size());
    if (!n.ok()) return out;
    FMPS_FUZZ_ASSERT(*n <= capacity, "Read stays inside the buffer");
    if (*n == 0) {
      out.ok = true;
      return out;
    }
    out.bytes.append(buf.data(), *n);
  }
  out.ok = true;  // capped: treated as fine, the comparison below cuts both to the cap
  return out;
}

inline int FuzzCompressed(Compression compression, const uint8_t* data, size_t size) {
  InputCursor in(data, size);
  const size_t small = 1 + in.Take<uint8_t>() % 64;
  std::string file(in.Rest());
  const std::string magic = compression == Compression::kGzip ? std::string("\x1f\x8b", 2)
                                                              : std::string("\x28\xb5\x2f\xfd", 4);
  if (file.size() < magic.size()) file.resize(magic.size());
  file.replace(0, magic.size(), magic);
  MemFile mem(file);

  auto detected = DetectCompression(mem.path());
  FMPS_FUZZ_ASSERT(detected.ok() && *detected == compression, "magic bytes are sniffed");
  const Decoded big = DecodeAll(mem.path(), 1 << 16);
  const Decoded little = DecodeAll(mem.path(), small);
  FMPS_FUZZ_ASSERT(big.opened == little.opened, "opening does not depend on the buffer");
  if (big.bytes.size() < kMaxDecoded && little.bytes.size() < kMaxDecoded) {
    FMPS_FUZZ_ASSERT(big.ok == little.ok, "the verdict does not depend on the buffer size");
    // Chunking can move where an error is noticed, so compare the common prefix only on errors.
    if (big.ok) FMPS_FUZZ_ASSERT(big.bytes == little.bytes, "same bytes whatever the buffer size");
  }
  const size_t common = std::min(big.bytes.size(), little.bytes.size());
  FMPS_FUZZ_ASSERT(big.bytes.compare(0, common, little.bytes, 0, common) == 0,
                   "decoded prefixes agree");
  if (big.bytes.size() < kMaxDecoded)
    ReadPart({mem.path(), 0, kWholeFile}, DataFormat::kCriteo, 4096, 16);
  return 0;
}

}  // namespace fmps::fuzz

#endif  // FMPS_FUZZ_COMPRESSED_FUZZ_H_
