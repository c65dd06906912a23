// Helpers of the reader and work-pool tests: temporary files, compression of test data, reading
// a whole part into one Minibatch with its bad-line messages.
#ifndef FMPS_TESTS_WORKER_READER_TEST_UTIL_H_
#define FMPS_TESTS_WORKER_READER_TEST_UTIL_H_

#include <stdlib.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "data/reader.h"

namespace fmps::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "fmps_reader_XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    char* made = ::mkdtemp(buf.data());
    EXPECT_NE(made, nullptr);
    path_ = made ? made : "/tmp";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string Path(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline std::string WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  EXPECT_TRUE(out.good()) << path;
  return path;
}

inline std::string GzipBytes(const std::string& text) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, text.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  zs.avail_in = static_cast<uInt>(text.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// With checksum = true the frame ends in a content checksum, as the zstd tool writes it.
inline std::string ZstdBytes(const std::string& text, bool checksum = false) {
  std::string out(ZSTD_compressBound(text.size()), '\0');
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 3);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, checksum ? 1 : 0);
  size_t n = ZSTD_compress2(cctx, out.data(), out.size(), text.data(), text.size());
  ZSTD_freeCCtx(cctx);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(ZSTD_isError(n) ? 0 : n);
  return out;
}

struct ReadOutcome {
  Minibatch batch;
  std::vector<std::string> messages;
  Status status;  // of Open or the failing Read
  uint64_t lines = 0;
  uint64_t bad = 0;
};

inline ReadOutcome ReadPart(const DataPart& part, ReaderOptions options, size_t max_rows = 7) {
  ReadOutcome outcome;
  options.on_bad_line = [&outcome](const std::string& m) { outcome.messages.push_back(m); };
  Result<std::unique_ptr<Reader>> reader = Reader::Open(part, options);
  if (!reader.ok()) {
    outcome.status = reader.status();
    return outcome;
  }
  for (;;) {
    Result<size_t> n = (*reader)->Read(max_rows, &outcome.batch);
    if (!n.ok()) {
      outcome.status = n.status();
      break;
    }
    EXPECT_LE(*n, max_rows);
    if (*n == 0) break;
  }
  outcome.lines = (*reader)->lines_read();
  outcome.bad = (*reader)->bad_lines();
  return outcome;
}

inline ReadOutcome ReadWhole(const std::string& path, DataFormat format) {
  ReaderOptions options;
  options.format = format;
  return ReadPart(DataPart{path, 0, kWholeFile}, options);
}

// Appends b's rows to a (to compare the union of parts with the whole file).
inline void AppendBatch(const Minibatch& b, Minibatch* a) {
  const uint32_t shift = static_cast<uint32_t>(a->keys.size());
  a->labels.insert(a->labels.end(), b.labels.begin(), b.labels.end());
  for (size_t r = 1; r < b.offsets.size(); ++r) a->offsets.push_back(b.offsets[r] + shift);
  const size_t before = a->keys.size();
  a->keys.insert(a->keys.end(), b.keys.begin(), b.keys.end());
  if (a->values.empty() && b.values.empty()) return;  // all 1 still (Minibatch::values)
  a->values.resize(before, 1.0f);
  if (b.values.empty()) {
    a->values.resize(a->keys.size(), 1.0f);
  } else {
    a->values.insert(a->values.end(), b.values.begin(), b.values.end());
  }
}

// Every value, the implied ones written out.
inline std::vector<float> ValuesOf(const Minibatch& b) {
  std::vector<float> values(b.entries());
  for (size_t j = 0; j < values.size(); ++j) values[j] = b.value(j);
  return values;
}

inline void ExpectSameBatch(const Minibatch& a, const Minibatch& b, const std::string& what) {
  EXPECT_EQ(a.labels, b.labels) << what;
  EXPECT_EQ(a.offsets, b.offsets) << what;
  EXPECT_EQ(a.keys, b.keys) << what;
  EXPECT_EQ(ValuesOf(a), ValuesOf(b)) << what;
}

}  // namespace fmps::testing

#endif  // FMPS_TESTS_WORKER_READER_TEST_UTIL_H_
