// Readers: turn CTR logs into Minibatch rows. Formats: Criteo TSV, Avazu CSV, libffm, libsvm/libFM;
// sources: plain, gzip, zstd (sniffed by magic bytes) and "-" for stdin. A reader reads one
// DataPart: a byte range of a file, starting after the first newline past `begin` (at 0: the
// first line) and ending with the line that crosses `end`, so parts tile a file with every line
// read exactly once. Compressed files and stdin are read whole.
//
// Malformed lines never stop a reader: each is counted and logged as FILE:LINE with the reason.
#ifndef FMPS_DATA_READER_H_
#define FMPS_DATA_READER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "data/minibatch.h"
#include "ps/base/env.h"
#include "ps/base/status.h"

namespace fmps {

enum class DataFormat { kAuto, kCriteo, kAvazu, kLibffm, kLibsvm };
Result<DataFormat> ParseDataFormat(
    const std::string& name);  // "auto", "criteo", "avazu", "libffm", "libsvm"/"libfm"
const char* DataFormatName(DataFormat format);

// Number of fields a format produces (Criteo 39; Avazu 23: hour-of-day, day-of-week and the 21
// categorical columns; libffm/libsvm: 0 = unknown, fields come from the data).
int FormatNumFields(DataFormat format);

// The key the reader of `format` makes for `text`, one field's raw value (a ranking request's
// field:text token): Criteo's integer columns (fields 0..12) bucketed, Avazu's hour of the day
// (field 0, 0..23) and day of the week (field 1, 0 = Sunday .. 6) as integers, every other field of
// every format as its text. InvalidArgument, saying what the field takes, for text the reader
// would not have produced there (a Criteo integer field that is not an integer, an hour of 24).
Result<uint64_t> FieldKey(DataFormat format, uint32_t field, std::string_view text, uint64_t seed);
// True when the reader of `format` hashes field's text as it stands (TokenKey, as the libffm reader
// does every field): FieldKey then adds nothing to that hash.
bool FieldIsText(DataFormat format, uint32_t field);

constexpr uint64_t kWholeFile = UINT64_MAX;

struct DataPart {
  std::string path;    // file name, or "-" for stdin
  uint64_t begin = 0;  // byte offset
  uint64_t end = kWholeFile;
};

// Which rows of a part a reader returns when a share of the training data is held out for
// validation (--holdout): the row's line decides, by hash, so every pass agrees.
enum class HoldoutRows {
  kAll,          // every row (test data, a separate validation file)
  kSkipHoldout,  // training: the rows not held out (the others are counted, see held_out())
  kOnlyHoldout,  // validation: only the held-out rows
};

// True when a line (without its line end) belongs to the held-out fraction of the data: its
// XXH3 hash, as a number in [0, 1), is below `fraction`.
bool IsHoldoutLine(std::string_view line, double fraction);

struct ReaderOptions {
  DataFormat format = DataFormat::kCriteo;  // kAuto: sniffed from the file (not for stdin)
  size_t max_line_bytes = 1 << 20;          // longer lines are malformed
  uint64_t hash_seed = 0;                   // seed of token hashing
  double holdout = 0;                       // fraction of rows held out for validation
  HoldoutRows holdout_rows = HoldoutRows::kAll;
  // Scoring (fmps predict): rows without a label are read with label kNoLabel (LineOptions), and
  // an empty line is a bad line, so that every line is either a row or reported.
  bool for_scoring = false;
  // libffm/libsvm: the job's number of fields; a line with a field at or beyond it is malformed.
  // 0: up to the key layout's 256.
  int num_fields = 0;
  // Told "FILE:LINE: reason" for each malformed line. Empty (default): LOG(WARNING) for the
  // first 20 bad lines of a reader, then every 1000th.
  std::function<void(const std::string& message)> on_bad_line;
  Env* env = Env::Default();  // every file is opened through it (tests inject faults)
};

class Reader {
 public:
  virtual ~Reader() = default;
  // Opens a part; errors name the file (missing, unreadable, not a known compression).
  static Result<std::unique_ptr<Reader>> Open(const DataPart& part, const ReaderOptions& options);

  // Appends up to max_rows rows to *batch. Returns the number appended; 0 means the part is done.
  // An error is returned only for I/O failures (e.g. a truncated gzip/zstd stream, naming the file
  // and offset), never for malformed lines.
  virtual Result<size_t> Read(size_t max_rows, Minibatch* batch) = 0;

  virtual uint64_t lines_read() const = 0;  // lines consumed so far (good, bad, empty, header)
  virtual uint64_t bad_lines() const = 0;   // malformed lines skipped so far
  // kSkipHoldout: held-out lines skipped so far (not parsed: a bad one is not counted as bad).
  virtual uint64_t held_out() const = 0;
  // Offset in the stream (for a plain file: in the file) of the first byte not yet consumed.
  virtual uint64_t offset() const = 0;
};

// Sniffs the format from the first lines of a file, plain or compressed (for --format=auto).
// Not for stdin ("-"): sniffing would consume it.
Result<DataFormat> SniffFormat(const std::string& path, Env* env = Env::Default());

}  // namespace fmps

#endif  // FMPS_DATA_READER_H_
