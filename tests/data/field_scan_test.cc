// The field scan of libffm/libsvm files (plain, gzip, zstd) against the reader's fields, a field
// that first appears in the last lines, streams refused; and the reader's bad line for a field
// beyond the job's.
#include "data/field_scan.h"

#include <sys/stat.h>

#include <algorithm>
#include <random>
#include <string>

#include "gtest/gtest.h"
#include "ps/base/keys.h"
#include "tests/data/reader_test_util.h"

namespace fmps {
namespace {

// `rows` random well-formed libffm lines with fields below `fields`, spaced with blanks, tabs and
// CRLF line ends as real files are; empty lines between; feature texts of 2 to 26 bytes.
std::string RandomLibffm(int rows, int fields, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string text;
  const char* blanks[] = {" ", "\t", "  ", " \t"};
  for (int r = 0; r < rows; ++r) {
    text += rng() % 2 ? "1" : "0";
    const int pairs = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < pairs; ++i) {
      text += blanks[rng() % 4];
      // Feature texts of any length, with bytes above 0x7f and control bytes other than blanks.
      std::string feature = "t" + std::to_string(rng() % 100);
      for (int n = static_cast<int>(rng() % 24); n > 0; --n)
        feature += "ab\xc3\xa9\x01\x7f"[rng() % 6];
      text += std::to_string(rng() % fields) + ":" + feature + ":1";
    }
    if (rng() % 7 == 0) text += " ";
    text += rng() % 5 == 0 ? "\r\n" : "\n";
    if (rng() % 50 == 0) text += "\n";
  }
  return text;
}

// The reader's fields: the largest field of any row + 1.
int ReaderFields(const std::string& path, DataFormat format) {
  testing::ReadOutcome out = testing::ReadWhole(path, format);
  EXPECT_TRUE(out.status.ok()) << out.status.ToString();
  EXPECT_EQ(out.bad, 0u) << path;
  uint32_t fields = 0;
  for (uint64_t key : out.batch.keys) fields = std::max(fields, KeyField(key) + 1);
  return static_cast<int>(fields);
}

TEST(FieldScanTest, AgreesWithTheReaderOnRandomFiles) {
  testing::TempDir dir;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    const int fields = 1 + static_cast<int>(seed * 13 % 256);
    const std::string path =
        testing::WriteBytes(dir.Path("r.ffm"), RandomLibffm(300, fields, seed));
    Result<FieldScan> scan = ScanFields(path, DataFormat::kLibffm);
    ASSERT_TRUE(scan.ok()) << scan.status().ToString();
    EXPECT_EQ(scan->num_fields, ReaderFields(path, DataFormat::kLibffm)) << "seed " << seed;
  }
}

// Fields 0..9 in the first 90% of the lines, field 12 only in the last ones; over 1 MiB, so lines
// cross the scan's chunks. Plain, gzip and zstd scan alike.
TEST(FieldScanTest, FindsAFieldThatFirstAppearsLateInPlainGzipAndZstd) {
  testing::TempDir dir;
  std::string text;
  const int rows = 40000, late = rows * 9 / 10;
  for (int r = 0; r < rows; ++r) {
    text += r % 3 ? "1" : "0";
    for (int f = 0; f < 10; ++f)
      text += " " + std::to_string(f) + ":v" + std::to_string(r % 97) + ":1";
    if (r >= late) text += " 12:late" + std::to_string(r % 5) + ":0.5";
    text += "\n";
  }
  ASSERT_GT(text.size(), size_t{1} << 21);
  const std::string plain = testing::WriteBytes(dir.Path("late.ffm"), text);
  const std::string gz = testing::WriteBytes(dir.Path("late.ffm.gz"), testing::GzipBytes(text));
  const std::string zst = testing::WriteBytes(dir.Path("late.ffm.zst"), testing::ZstdBytes(text));
  for (const std::string& path : {plain, gz, zst}) {
    Result<FieldScan> scan = ScanFields(path, DataFormat::kLibffm);
    ASSERT_TRUE(scan.ok()) << path << ": " << scan.status().ToString();
    EXPECT_EQ(scan->num_fields, 13) << path;
    EXPECT_EQ(scan->first_seen, path + ":" + std::to_string(late + 1));
    EXPECT_EQ(scan->lines, uint64_t(rows)) << path;
    EXPECT_EQ(scan->bytes, text.size()) << path;
  }
  EXPECT_EQ(ReaderFields(plain, DataFormat::kLibffm), 13);

  // Several files: the largest count, found where it first appears.
  const std::string early = testing::WriteBytes(dir.Path("early.ffm"), "1 0:a:1 3:b:1\n");
  Result<FieldScan> both = ScanFields({early, gz}, DataFormat::kLibffm);
  ASSERT_TRUE(both.ok()) << both.status().ToString();
  EXPECT_EQ(both->num_fields, 13);
  EXPECT_EQ(both->first_seen, gz + ":" + std::to_string(late + 1));
  EXPECT_EQ(both->lines, uint64_t(rows) + 1);
}

// libsvm: a pair's position is its field, so the count is the most pairs on a line.
TEST(FieldScanTest, LibsvmCountsPairsPerLine) {
  testing::TempDir dir;
  const std::string text =
      "1 a:1 b:1\r\n"
      "0 a:1\n"
      "\n"
      "1\tx:1 y:2  z:3 \n"
      "-1 a:1 b:1";  // no line end
  const std::string path = testing::WriteBytes(dir.Path("s.svm"), text);
  const std::string gz = testing::WriteBytes(dir.Path("s.svm.gz"), testing::GzipBytes(text));
  for (const std::string& p : {path, gz}) {
    Result<FieldScan> scan = ScanFields(p, DataFormat::kLibsvm);
    ASSERT_TRUE(scan.ok()) << scan.status().ToString();
    EXPECT_EQ(scan->num_fields, 3);
    EXPECT_EQ(scan->first_seen, p + ":4");
    EXPECT_EQ(scan->lines, 5u);
  }
  EXPECT_EQ(ReaderFields(path, DataFormat::kLibsvm), 3);
}

// Tokens the reader rejects: a field at or beyond 256 is left out (its line is a bad line to the
// reader); the label is never a field; tokens without digits before ':' are not fields.
TEST(FieldScanTest, LeavesOutWhatIsNoField) {
  testing::TempDir dir;
  const std::string path = testing::WriteBytes(dir.Path("odd.ffm"),
                                               "7:x:1 2:a:1\n"        // label '7:x:1' is no field
                                               "1 256:a:1 3:b:1\n"    // 256 left out, 3 counted
                                               "1 99999999999:a:1\n"  // huge: left out
                                               "1 :a:1 -5:b:1 x4:c:1 4\n");
  Result<FieldScan> scan = ScanFields(path, DataFormat::kLibffm);
  ASSERT_TRUE(scan.ok()) << scan.status().ToString();
  EXPECT_EQ(scan->num_fields, 4);
  EXPECT_EQ(scan->first_seen, path + ":2");
  const std::string none = testing::WriteBytes(dir.Path("none.ffm"), "");
  Result<FieldScan> empty = ScanFields(none, DataFormat::kLibffm);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->num_fields, 0);
  EXPECT_EQ(empty->lines, 0u);
}

TEST(FieldScanTest, RefusesStreamsFixedFormatsAndBrokenFiles) {
  testing::TempDir dir;
  Result<FieldScan> in = ScanFields("-", DataFormat::kLibffm);
  ASSERT_FALSE(in.ok());
  EXPECT_NE(in.status().message().find("stdin is a stream"), std::string::npos)
      << in.status().ToString();
  const std::string fifo = dir.Path("pipe");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  Result<FieldScan> piped = ScanFields(fifo, DataFormat::kLibffm);
  ASSERT_FALSE(piped.ok());
  EXPECT_NE(piped.status().message().find(fifo + " is a stream"), std::string::npos);
  const std::string plain = testing::WriteBytes(dir.Path("a.ffm"), "1 0:a:1\n");
  EXPECT_FALSE(ScanFields(plain, DataFormat::kCriteo).ok());
  Result<FieldScan> missing = ScanFields(dir.Path("missing.ffm"), DataFormat::kLibffm);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("missing.ffm"), std::string::npos);
  std::string gz = testing::GzipBytes(RandomLibffm(2000, 20, 3));
  gz.resize(gz.size() / 2);
  const std::string cut = testing::WriteBytes(dir.Path("cut.ffm.gz"), gz);
  Result<FieldScan> truncated = ScanFields(cut, DataFormat::kLibffm);
  ASSERT_FALSE(truncated.ok());
  EXPECT_NE(truncated.status().message().find("cut.ffm.gz"), std::string::npos);
}

// The job's field count given to the reader: a line with a field beyond it is a bad line named
// FILE:LINE with the field and the count; the other fields of that line are not kept.
TEST(FieldScanTest, AReaderWithTheJobsFieldsReportsALineBeyondThem) {
  testing::TempDir dir;
  const std::string path = testing::WriteBytes(dir.Path("f.ffm"),
                                               "1 0:a:1 9:b:1\n"
                                               "0 0:a:1 12:c:1\n"
                                               "1 3:d:1\n");
  ReaderOptions options;
  options.format = DataFormat::kLibffm;
  options.num_fields = 10;
  testing::ReadOutcome out = testing::ReadPart(DataPart{path, 0, kWholeFile}, options);
  ASSERT_TRUE(out.status.ok());
  EXPECT_EQ(out.batch.rows(), 2u);
  EXPECT_EQ(out.bad, 1u);
  ASSERT_EQ(out.messages.size(), 1u);
  EXPECT_EQ(out.messages[0],
            path + ":2: field 12 is beyond the job's 10 fields (0..9; --num_fields)");
  for (uint64_t key : out.batch.keys) EXPECT_LT(KeyField(key), 10u);
}

}  // namespace
}  // namespace fmps
