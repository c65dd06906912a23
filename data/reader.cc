#include "data/reader.h"

#include <glog/logging.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "data/byte_source.h"
#include "data/line_parser.h"
#include "ps/base/keys.h"

namespace fmps {
namespace {

constexpr size_t kMinBufferBytes = 4 << 20;
constexpr size_t kTailRead = 64 << 10;  // bytes read at a time past a part's end

// Counts '\n' in [0, offset) of a plain file: the line number of a part's first line, needed
// only for messages about bad lines, so computed lazily.
Result<uint64_t> CountNewlines(const std::string& path, uint64_t offset, Env* env) {
  Result<std::unique_ptr<SequentialFile>> file = env->NewSequentialFile(path);
  if (!file.ok()) return file.status();
  std::vector<char> buf(1 << 20);
  uint64_t pos = 0, count = 0;
  while (pos < offset) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), offset - pos));
    Result<size_t> n = (*file)->Read(buf.data(), want);
    if (!n.ok()) return n.status();
    if (*n == 0) break;
    const char* p = buf.data();
    const char* e = p + *n;
    while ((p = static_cast<const char*>(std::memchr(p, '\n', e - p))) != nullptr) {
      ++count;
      ++p;
    }
    pos += *n;
  }
  return count;
}

class PartReader final : public Reader {
 public:
  PartReader(const DataPart& part, const ReaderOptions& options, std::unique_ptr<ByteSource> source)
      : part_(part),
        options_(options),
        source_(std::move(source)),
        capacity_(std::max(kMinBufferBytes, 2 * options.max_line_bytes + 2)),
        buffer_(std::make_unique_for_overwrite<char[]>(capacity_)),
        display_name_(part.path == "-" ? "<stdin>" : part.path) {
    line_options_.allow_unlabelled = options.for_scoring;
    if (options.num_fields > 0) line_options_.num_fields = options.num_fields;
  }

  // Positions the reader on the part's first line: after the first '\n' at or after begin - 1,
  // so a line starting exactly at `begin` belongs to this part.
  Status Start() {
    if (part_.begin == 0) return Status::OK();
    base_ = part_.begin - 1;
    if (part_.begin >= part_.end) {  // an empty range holds no line start
      finished_ = true;
      return Status::OK();
    }
    std::string_view fragment;
    bool too_long;
    Result<bool> got = NextLine(&fragment, &too_long);
    first_offset_ = base_ + pos_;
    return got.status();
  }

  Result<size_t> Read(size_t max_rows, Minibatch* batch) override {
    if (!status_.ok()) return status_;
    size_t added = 0;
    std::string error;
    while (added < max_rows) {
      std::string_view line;
      bool too_long = false;
      Result<bool> got = NextLine(&line, &too_long);
      if (!got.ok()) {
        status_ = got.status();
        return status_;
      }
      if (!*got) break;
      ++lines_read_;
      if (too_long) {
        ReportBadLine("line longer than " + std::to_string(options_.max_line_bytes) + " bytes");
        continue;
      }
      if (line.empty()) {
        if (options_.for_scoring) ReportBadLine("empty line");
        continue;
      }
      // The header can only be the first line of the file.
      if (options_.format == DataFormat::kAvazu && line_start_ == 0 && line.substr(0, 3) == "id,")
        continue;
      if (options_.holdout_rows != HoldoutRows::kAll) {
        const bool held = IsHoldoutLine(line, options_.holdout);
        if (held && options_.holdout_rows == HoldoutRows::kSkipHoldout) {
          ++held_out_;
          continue;
        }
        if (!held && options_.holdout_rows == HoldoutRows::kOnlyHoldout) continue;
      }
      bool ok = false;
      switch (options_.format) {
        case DataFormat::kCriteo:
          ok = ParseCriteoLine(line, options_.hash_seed, batch, &error, line_options_);
          break;
        case DataFormat::kAvazu:
          ok = ParseAvazuLine(line, options_.hash_seed, batch, &error, line_options_);
          break;
        case DataFormat::kLibffm:
          ok = ParseLibffmLine(line, options_.hash_seed, batch, &error, line_options_);
          break;
        case DataFormat::kLibsvm:
          ok = ParseLibsvmLine(line, options_.hash_seed, batch, &error, line_options_);
          break;
        case DataFormat::kAuto:
          error = "format not resolved";
          break;
      }
      if (ok) {
        ++added;
      } else {
        ReportBadLine(error);
      }
    }
    return added;
  }

  uint64_t lines_read() const override { return lines_read_; }
  uint64_t bad_lines() const override { return bad_lines_; }
  uint64_t held_out() const override { return held_out_; }
  uint64_t offset() const override { return base_ + pos_; }

 private:
  // The next line of the part without its line end; false at the end of the part. A line over
  // max_line_bytes comes back with *too_long set (its bytes are skipped, not returned).
  Result<bool> NextLine(std::string_view* line, bool* too_long) {
    for (;;) {
      if (finished_) return false;
      // A line starting at or after `end` belongs to the next part.
      if (base_ + pos_ >= part_.end || (pos_ == limit_ && eof_)) {
        finished_ = true;
        return false;
      }
      const char* nl =
          static_cast<const char*>(std::memchr(buffer_.get() + scan_, '\n', limit_ - scan_));
      if (nl != nullptr || eof_) {
        size_t stop = nl ? static_cast<size_t>(nl - buffer_.get()) : limit_;
        *line = std::string_view(buffer_.get() + pos_, stop - pos_);
        line_start_ = base_ + pos_;
        pos_ = scan_ = nl ? stop + 1 : stop;
        if (!line->empty() && line->back() == '\r') line->remove_suffix(1);
        *too_long = line->size() > options_.max_line_bytes;
        return true;
      }
      scan_ = limit_;
      if (pos_ == 0 && limit_ == capacity_) {  // longer than the buffer: skip to its end
        line_start_ = base_;
        FMPS_RETURN_IF_ERROR(SkipRestOfLine());
        *line = std::string_view();
        *too_long = true;
        return true;
      }
      FMPS_RETURN_IF_ERROR(Fill());
    }
  }

  // Moves the unread bytes to the front of the buffer and reads more behind them.
  Status Fill() {
    if (pos_ > 0) {
      std::memmove(buffer_.get(), buffer_.get() + pos_, limit_ - pos_);
      base_ += pos_;
      scan_ -= pos_;
      limit_ -= pos_;
      pos_ = 0;
    }
    // Up to the part's end, then a little at a time for its last line: filling the whole buffer
    // read up to 4 MB past the end of every part (as much again as a 4 MB part holds).
    size_t want = capacity_ - limit_;
    const uint64_t read_to = base_ + limit_;
    if (part_.end != kWholeFile) {
      const uint64_t in_part = part_.end > read_to ? part_.end - read_to : 0;
      want = static_cast<size_t>(std::min<uint64_t>(want, std::max<uint64_t>(in_part, kTailRead)));
    }
    Result<size_t> n = source_->Read(buffer_.get() + limit_, want);
    if (!n.ok()) return n.status();
    if (*n == 0) eof_ = true;
    limit_ += *n;
    return Status::OK();
  }

  // Drops a full buffer of one line and reads on until its '\n' (or the end of the stream).
  Status SkipRestOfLine() {
    for (;;) {
      base_ += limit_;
      pos_ = scan_ = limit_ = 0;
      FMPS_RETURN_IF_ERROR(Fill());
      if (eof_) return Status::OK();
      const char* nl = static_cast<const char*>(std::memchr(buffer_.get(), '\n', limit_));
      if (nl != nullptr) {
        pos_ = scan_ = static_cast<size_t>(nl - buffer_.get()) + 1;
        return Status::OK();
      }
    }
  }

  void ReportBadLine(const std::string& reason) {
    ++bad_lines_;
    if (!options_.on_bad_line && bad_lines_ > 20 && bad_lines_ % 1000 != 0) return;
    std::string message = display_name_ + ":" + LineNumberText() + ": " + reason;
    if (options_.on_bad_line) {
      options_.on_bad_line(message);
    } else {
      LOG(WARNING) << message << " (bad line " << bad_lines_ << " of this part)";
    }
  }

  // Line numbers count from 1 in the file; a part's first line number costs a scan of the
  // file before it, so it is found only when the first bad line needs it.
  std::string LineNumberText() {
    if (!first_line_known_) {
      first_line_known_ = true;
      if (part_.begin == 0) {
        first_line_ = 1;
      } else {
        Result<uint64_t> before = CountNewlines(part_.path, first_offset_, options_.env);
        first_line_ = before.ok() ? *before + 1 : 0;
      }
    }
    if (first_line_ == 0) return "offset " + std::to_string(line_start_);
    return std::to_string(first_line_ + lines_read_ - 1);
  }

 private:
  DataPart part_;
  ReaderOptions options_;
  LineOptions line_options_;
  std::unique_ptr<ByteSource> source_;
  size_t capacity_;
  std::unique_ptr<char[]> buffer_;
  std::string display_name_;
  // buffer_[0] is byte base_ of the stream; [pos_, limit_) is unread; no '\n' in [pos_, scan_).
  uint64_t base_ = 0;
  size_t pos_ = 0, scan_ = 0, limit_ = 0;
  bool eof_ = false;
  bool finished_ = false;
  uint64_t line_start_ = 0;    // stream offset of the line last returned
  uint64_t first_offset_ = 0;  // file offset of the part's first line
  bool first_line_known_ = false;
  uint64_t first_line_ = 0;  // 0 = unknown
  uint64_t lines_read_ = 0;
  uint64_t bad_lines_ = 0;
  uint64_t held_out_ = 0;
  Status status_;
};

bool IsTsv40(std::string_view line) {
  return std::count(line.begin(), line.end(), '\t') + 1 == kCriteoColumns;
}

}  // namespace

bool IsHoldoutLine(std::string_view line, double fraction) {
  // A seed of its own, so the choice is independent of the token hashes made from the same bytes.
  const uint64_t h = XXH3_64bits_withSeed(line.data(), line.size(), 0x686f6c646f7574ULL);
  return static_cast<double>(h >> 11) * 0x1.0p-53 < fraction;
}

Result<DataFormat> ParseDataFormat(const std::string& name) {
  if (name == "auto") return DataFormat::kAuto;
  if (name == "criteo") return DataFormat::kCriteo;
  if (name == "avazu") return DataFormat::kAvazu;
  if (name == "libffm" || name == "ffm") return DataFormat::kLibffm;
  if (name == "libsvm" || name == "libfm") return DataFormat::kLibsvm;
  return Status::InvalidArgument("unknown data format '" + name +
                                 "' (auto, criteo, avazu, libffm, libsvm, libfm)");
}

const char* DataFormatName(DataFormat format) {
  switch (format) {
    case DataFormat::kAuto:
      return "auto";
    case DataFormat::kCriteo:
      return "criteo";
    case DataFormat::kAvazu:
      return "avazu";
    case DataFormat::kLibffm:
      return "libffm";
    case DataFormat::kLibsvm:
      return "libsvm";
  }
  return "?";
}

int FormatNumFields(DataFormat format) {
  switch (format) {
    case DataFormat::kCriteo:
      return kCriteoFields;
    case DataFormat::kAvazu:
      return kAvazuFields;
    default:
      return 0;
  }
}

bool FieldIsText(DataFormat format, uint32_t field) {
  if (format == DataFormat::kCriteo) return field >= kCriteoIntegerFields;
  if (format == DataFormat::kAvazu) return field >= 2;
  return true;
}

Result<uint64_t> FieldKey(DataFormat format, uint32_t field, std::string_view text, uint64_t seed) {
  if (FieldIsText(format, field)) return TokenKey(field, text, seed);
  int64_t x = 0;
  if (format == DataFormat::kCriteo) {
    if (!ParseInt(text, &x)) {
      return Status::InvalidArgument("Criteo field " + std::to_string(field) + " (column I" +
                                     std::to_string(field + 1) + ") takes an integer, got '" +
                                     std::string(text) + "'");
    }
    return CriteoIntegerKey(field, x, seed);
  }
  // Avazu's hour of the day (field 0) and day of the week (field 1).
  const int64_t limit = field == 0 ? 23 : 6;
  if (!ParseInt(text, &x) || x < 0 || x > limit) {
    return Status::InvalidArgument(std::string("Avazu field ") +
                                   (field == 0 ? "0 (hour of the day) takes 0..23"
                                               : "1 (day of the week, 0 = Sunday) takes 0..6") +
                                   ", got '" + std::string(text) + "'");
  }
  return IntegerKey(field, x, seed);
}

Result<std::unique_ptr<Reader>> Reader::Open(const DataPart& part, const ReaderOptions& options) {
  const bool whole = part.begin == 0 && part.end == kWholeFile;
  if (part.path == "-" && !whole) {
    return Status::InvalidArgument("stdin can only be read whole, not bytes [" +
                                   std::to_string(part.begin) + ", " + std::to_string(part.end) +
                                   ")");
  }
  ReaderOptions resolved = options;
  if (resolved.format == DataFormat::kAuto) {
    Result<DataFormat> sniffed = SniffFormat(part.path);
    if (!sniffed.ok()) return sniffed.status();
    resolved.format = *sniffed;
  }
  if (resolved.max_line_bytes == 0) {
    return Status::InvalidArgument(part.path + ": max_line_bytes must be positive");
  }
  Result<OpenedSource> opened =
      OpenByteSource(part.path, part.begin == 0 ? 0 : part.begin - 1, options.env);
  if (!opened.ok()) return opened.status();
  if (opened->compression != Compression::kNone && !whole) {
    return Status::InvalidArgument(part.path + " is " + CompressionName(opened->compression) +
                                   "-compressed and can only be read whole, not bytes [" +
                                   std::to_string(part.begin) + ", " + std::to_string(part.end) +
                                   ")");
  }
  auto reader = std::make_unique<PartReader>(part, resolved, std::move(opened->source));
  FMPS_RETURN_IF_ERROR(reader->Start());
  return std::unique_ptr<Reader>(std::move(reader));
}

Result<DataFormat> SniffFormat(const std::string& path, Env* env) {
  if (path == "-") return Status::InvalidArgument("cannot sniff the format of stdin; name it");
  Result<OpenedSource> opened = OpenByteSource(path, 0, env);
  if (!opened.ok()) return opened.status();
  std::vector<char> buf(64 << 10);
  size_t size = 0;
  while (size < buf.size()) {
    Result<size_t> n = opened->source->Read(buf.data() + size, buf.size() - size);
    if (!n.ok()) return n.status();
    if (*n == 0) break;
    size += *n;
  }
  std::string_view text(buf.data(), size);
  // Decide on the first non-empty line; later lines only confirm (a header is not data).
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    if (line.substr(0, 9) == "id,click,") return DataFormat::kAvazu;
    if (IsTsv40(line)) return DataFormat::kCriteo;
    if (std::count(line.begin(), line.end(), ',') + 1 == kAvazuColumns) return DataFormat::kAvazu;
    // label then pairs: "f:x:v" is libffm, "x:v" is libsvm/libFM.
    size_t sp = line.find_first_of(" \t");
    if (sp != std::string_view::npos) {
      std::string_view pair = line.substr(sp + 1);
      pair = pair.substr(0, pair.find_first_of(" \t"));
      auto colons = std::count(pair.begin(), pair.end(), ':');
      if (colons == 2) return DataFormat::kLibffm;
      if (colons == 1) return DataFormat::kLibsvm;
    }
    break;
  }
  return Status::InvalidArgument(path + ": cannot tell the data format from its first line");
}

}  // namespace fmps
