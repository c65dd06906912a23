// Byte sources under the readers: the decoded bytes of a plain file (from an offset), a gzip or
// zstd stream, or stdin ("-"). Compression is sniffed from magic bytes, never from the name.
// Errors name the file; for compressed streams also the compressed byte offset, so a truncated
// or corrupt archive is reported, never read silently short.
#ifndef FMPS_DATA_BYTE_SOURCE_H_
#define FMPS_DATA_BYTE_SOURCE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "ps/base/env.h"
#include "ps/base/status.h"

namespace fmps {

enum class Compression { kNone, kGzip, kZstd };
const char* CompressionName(Compression compression);

// Compression of a stream from its first bytes (gzip 1f 8b, zstd 28 b5 2f fd).
Compression SniffCompression(const unsigned char* head, size_t size);

// Reads the magic bytes of a file ("-" is not allowed: sniffing would consume stdin).
Result<Compression> DetectCompression(const std::string& path, Env* env = Env::Default());

// True for "-" (stdin) and for paths that are neither regular files nor directories (named
// pipes, devices): streams, which are read once and cannot be split or read again.
bool IsStream(const std::string& path, Env* env = Env::Default());

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to `capacity` decoded bytes into dst; 0 means the end of the stream.
  virtual Result<size_t> Read(char* dst, size_t capacity) = 0;
};

struct OpenedSource {
  std::unique_ptr<ByteSource> source;
  Compression compression = Compression::kNone;
};

// Opens `path` ("-" = stdin, which is not closed). A plain regular file starts at byte
// `plain_offset`; compressed streams and stdin always start at their beginning.
Result<OpenedSource> OpenByteSource(const std::string& path, uint64_t plain_offset,
                                    Env* env = Env::Default());

}  // namespace fmps

#endif  // FMPS_DATA_BYTE_SOURCE_H_
