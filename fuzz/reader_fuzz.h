// The body of the four reader harnesses (one per format): the fuzz input becomes a file in memory
// and is read whole, as two parts split at a fuzzed offset, or as one fuzzed byte range. Checks:
// every batch is well formed (offsets, labels 0/1, fields inside the format's range, finite
// values), and for plain files the two parts together read exactly the rows of the whole file.
//
// Input layout: mode u8 | max_line u8 | rows per Read u8 | offset a u16 | offset b u16 | file.
#ifndef FMPS_FUZZ_READER_FUZZ_H_
#define FMPS_FUZZ_READER_FUZZ_H_

#include <cmath>
#include <cstdint>
#include <string>

#include "data/byte_source.h"
#include "data/reader.h"
#include "fuzz/fuzz_util.h"
#include "ps/base/keys.h"

namespace fmps::fuzz {

struct ReadCounts {
  bool ok = false;  // opened and read to the end without an I/O error
  uint64_t rows = 0;
  uint64_t entries = 0;
  uint64_t lines = 0;
  uint64_t bad = 0;
};

inline void CheckBatch(const Minibatch& batch, DataFormat format) {
  FMPS_FUZZ_ASSERT(batch.offsets.size() == batch.rows() + 1, "one offset per row plus one");
  FMPS_FUZZ_ASSERT(batch.offsets[0] == 0, "offsets start at 0");
  for (size_t r = 0; r < batch.rows(); ++r) {
    FMPS_FUZZ_ASSERT(batch.offsets[r] <= batch.offsets[r + 1], "offsets never decrease");
    FMPS_FUZZ_ASSERT(batch.labels[r] == 0.0f || batch.labels[r] == 1.0f, "labels are 0 or 1");
  }
  FMPS_FUZZ_ASSERT(batch.offsets.back() == batch.keys.size(), "last offset is the entry count");
  FMPS_FUZZ_ASSERT(batch.values.empty() || batch.values.size() == batch.keys.size(),
                   "one value per key, or none (all 1)");
  const int fields = FormatNumFields(format);
  for (size_t j = 0; j < batch.keys.size(); ++j) {
    const uint32_t field = KeyField(batch.keys[j]);
    FMPS_FUZZ_ASSERT(field < static_cast<uint32_t>(kMaxFields), "field fits in 8 bits");
    if (fields > 0)
      FMPS_FUZZ_ASSERT(field < static_cast<uint32_t>(fields), "field inside the format");
    FMPS_FUZZ_ASSERT(std::isfinite(batch.value(j)), "values are finite");
  }
}

inline ReadCounts ReadPart(const DataPart& part, DataFormat format, size_t max_line,
                           size_t rows_per_read) {
  ReadCounts counts;
  ReaderOptions options;
  options.format = format;
  options.max_line_bytes = max_line;
  options.on_bad_line = [](const std::string&) {
  };  // no logging per bad line: it is the common case
  auto reader = Reader::Open(part, options);
  if (!reader.ok()) return counts;
  Minibatch batch;
  // Bounded so a compression bomb cannot stall the fuzzer; small inputs never get near it.
  for (int calls = 0; calls < 100000; ++calls) {
    batch.Clear();
    auto n = (*reader)->Read(rows_per_read, &batch);
    if (!n.ok()) return counts;
    FMPS_FUZZ_ASSERT(*n == batch.rows(), "Read returns the rows it appended");
    FMPS_FUZZ_ASSERT(*n <= rows_per_read, "Read appends at most max_rows");
    CheckBatch(batch, format);
    if (*n == 0) {
      counts.ok = true;
      break;
    }
    counts.rows += *n;
    counts.entries += batch.entries();
  }
  counts.lines = (*reader)->lines_read();
  counts.bad = (*reader)->bad_lines();
  FMPS_FUZZ_ASSERT(counts.bad <= counts.lines, "bad lines are among the lines read");
  return counts;
}

inline int FuzzReader(DataFormat format, const uint8_t* data, size_t size) {
  InputCursor in(data, size);
  const uint8_t mode = in.Take<uint8_t>() % 3;
  const size_t max_line = 16 + size_t{in.Take<uint8_t>()} * 64;  // 16 .. 16336: long lines happen
  const size_t rows_per_read = 1 + in.Take<uint8_t>() % 32;
  const uint64_t a = in.Take<uint16_t>();
  const uint64_t b = in.Take<uint16_t>();
  const std::string_view file = in.Rest();
  MemFile mem(file);

  if (mode == 0) {
    ReadPart({mem.path(), 0, kWholeFile}, format, max_line, rows_per_read);
  } else if (mode == 1) {
    // Parts tile a plain file: [0, m) and [m, end) read every line exactly once.
    const uint64_t m = file.empty() ? 0 : a % (file.size() + 1);
    const ReadCounts whole = ReadPart({mem.path(), 0, kWholeFile}, format, max_line, rows_per_read);
    const ReadCounts left = ReadPart({mem.path(), 0, m}, format, max_line, rows_per_read);
    const ReadCounts right =
        ReadPart({mem.path(), m, file.size()}, format, max_line, rows_per_read);
    const auto head = reinterpret_cast<const unsigned char*>(file.data());
    if (SniffCompression(head, file.size()) == Compression::kNone && whole.ok && left.ok &&
        right.ok) {
      FMPS_FUZZ_ASSERT(left.rows + right.rows == whole.rows,
                       "parts read the rows of the whole file");
      FMPS_FUZZ_ASSERT(left.entries + right.entries == whole.entries,
                       "parts read the entries of the file");
      FMPS_FUZZ_ASSERT(left.bad + right.bad == whole.bad, "parts see the bad lines of the file");
    }
  } else {
    ReadPart({mem.path(), a, b}, format, max_line, rows_per_read);
  }
  return 0;
}

}  // namespace fmps::fuzz

#endif  // FMPS_FUZZ_READER_FUZZ_H_
