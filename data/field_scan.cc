#include "data/field_scan.h"

#include <cstring>
#include <memory>

#include "data/byte_source.h"
#include "ps/base/keys.h"

namespace fmps {
namespace {

constexpr size_t kChunkBytes = 1 << 20;

// The first byte at or after p that is at most ' ' (blanks and line ends all are), or end. Eight
// bytes at a time: a byte below 0x21 sets the high bit of its lane in (x - 0x21..) & ~x, and the
// lowest lane so set is the first such byte (a borrow only marks lanes above a true one).
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the lowest lane is the first byte");
inline const char* SkipTokenBytes(const char* p, const char* end) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL, kHigh = 0x8080808080808080ULL;
  while (end - p >= 8) {
    uint64_t x;
    std::memcpy(&x, p, 8);
    const uint64_t low = (x - 0x21 * kOnes) & ~x & kHigh;
    if (low != 0) return p + (__builtin_ctzll(low) >> 3);
    p += 8;
  }
  while (p != end && static_cast<unsigned char>(*p) > 0x20) ++p;
  return p;
}

// A state machine over the bytes of a stream, fed a chunk at a time (a line may cross chunks).
// Tokens are split at ' ' and '\t' as the parsers split them; '\r' too, so that a CRLF line end
// (stripped by the reader) is not a token.
class FieldScanner {
 public:
  explicit FieldScanner(bool libffm) : libffm_(libffm) {}

  void Feed(const char* p, const char* end) {
    // Locals, so that the loop keeps its state in registers.
    uint32_t token = token_, field = field_;
    bool in_token = in_token_, in_field = in_field_, digits = digits_;
    for (; p != end; ++p) {
      if (in_token && !in_field) {  // the rest of a token says nothing: skip it
        p = SkipTokenBytes(p, end);
        if (p == end) break;
      }
      const char c = *p;
      if (c == '\n') {
        if (!libffm_ && token > 1) Saw(token - 1);
        ++line_;
        token = 0;
        in_token = in_field = false;
      } else if (c == ' ' || c == '\t' || c == '\r') {
        in_token = in_field = false;
      } else if (!in_token) {
        in_token = true;
        ++token;
        // libffm: a token after the label starts with its field's digits.
        in_field = libffm_ && token > 1;
        field = 0;
        digits = false;
        if (in_field) {
          if (c >= '0' && c <= '9') {
            field = static_cast<uint32_t>(c - '0');
            digits = true;
          } else {
            in_field = false;
          }
        }
      } else if (in_field) {
        if (c >= '0' && c <= '9') {
          // Past kMaxFields the value no longer matters: cap it before it could overflow.
          if (field < kMaxFields) field = field * 10 + static_cast<uint32_t>(c - '0');
          digits = true;
        } else {
          if (c == ':' && digits) Saw(field);
          in_field = false;
        }
      }
    }
    token_ = token, field_ = field;
    in_token_ = in_token, in_field_ = in_field, digits_ = digits;
  }

  // The stream ended: its last line may have no '\n'.
  void Finish() {
    if (!libffm_ && token_ > 1) Saw(token_ - 1);
  }

  int num_fields() const { return num_fields_; }
  uint64_t max_line() const { return max_line_; }
  uint64_t line() const { return line_; }

 private:
  // Field f (libffm) or a line of f pairs (libsvm: fields 0..f-1) on the current line.
  void Saw(uint32_t f) {
    const uint32_t count = libffm_ ? f + 1 : f;
    if (count > kMaxFields || static_cast<int>(count) <= num_fields_) return;
    num_fields_ = static_cast<int>(count);
    max_line_ = line_;
  }

  const bool libffm_;
  uint64_t line_ = 1;   // 1-based number of the line being scanned
  uint32_t token_ = 0;  // tokens begun on this line
  uint32_t field_ = 0;
  bool in_token_ = false, in_field_ = false, digits_ = false;
  int num_fields_ = 0;
  uint64_t max_line_ = 0;
};

}  // namespace

Result<FieldScan> ScanFields(const std::string& path, DataFormat format, Env* env) {
  if (format != DataFormat::kLibffm && format != DataFormat::kLibsvm) {
    return Status::InvalidArgument(std::string("the ") + DataFormatName(format) +
                                   " format fixes its fields; nothing to scan");
  }
  if (IsStream(path, env)) {
    return Status::InvalidArgument((path == "-" ? std::string("stdin") : path) +
                                   " is a stream: scanning it for its fields would consume it");
  }
  Result<OpenedSource> opened = OpenByteSource(path, 0, env);
  if (!opened.ok()) return opened.status();
  FieldScanner scanner(format == DataFormat::kLibffm);
  auto buffer = std::make_unique_for_overwrite<char[]>(kChunkBytes);
  FieldScan scan;
  char last = '\n';
  for (;;) {
    Result<size_t> n = opened->source->Read(buffer.get(), kChunkBytes);
    if (!n.ok()) return n.status();
    if (*n == 0) break;
    scanner.Feed(buffer.get(), buffer.get() + *n);
    scan.bytes += *n;
    last = buffer[*n - 1];
  }
  scanner.Finish();
  scan.num_fields = scanner.num_fields();
  scan.lines = scanner.line() - (last == '\n' ? 1 : 0);
  if (scan.num_fields > 0) scan.first_seen = path + ":" + std::to_string(scanner.max_line());
  return scan;
}

Result<FieldScan> ScanFields(const std::vector<std::string>& paths, DataFormat format, Env* env) {
  FieldScan all;
  for (const std::string& path : paths) {
    Result<FieldScan> one = ScanFields(path, format, env);
    if (!one.ok()) return one.status();
    all.bytes += one->bytes;
    all.lines += one->lines;
    if (one->num_fields > all.num_fields) {
      all.num_fields = one->num_fields;
      all.first_seen = one->first_seen;
    }
  }
  return all;
}

}  // namespace fmps
