// Formats: exact keys, labels and values of hand-written lines; malformed lines of every kind
// with FILE:LINE messages; format names and sniffing on the real sample data.
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "data/line_parser.h"
#include "data/reader.h"
#include "gtest/gtest.h"
#include "ps/base/env.h"
#include "ps/base/keys.h"
#include "tests/data/reader_test_util.h"

namespace fmps {
namespace {

using testing::ReadOutcome;
using testing::ReadWhole;
using testing::TempDir;
using testing::WriteBytes;

const std::string kData = std::string(FMPS_SHARED_DIR) + "/data/";

int64_t Bucket(int64_t x) {
  if (x <= 2) return x;
  double l = std::log(static_cast<double>(x));
  return static_cast<int64_t>(std::floor(l * l));
}

std::vector<uint64_t> RowKeys(const Minibatch& b, size_t row) {
  return std::vector<uint64_t>(b.keys.begin() + b.offsets[row],
                               b.keys.begin() + b.offsets[row + 1]);
}

TEST(CriteoBucketTest, MatchesFormulaAndKnownValues) {
  EXPECT_EQ(CriteoBucket(-7), -7);
  EXPECT_EQ(CriteoBucket(0), 0);
  EXPECT_EQ(CriteoBucket(1), 1);
  EXPECT_EQ(CriteoBucket(2), 2);
  EXPECT_EQ(CriteoBucket(3), 1);     // ln 3 = 1.0986, squared 1.207
  EXPECT_EQ(CriteoBucket(10), 5);    // 2.3026^2 = 5.30
  EXPECT_EQ(CriteoBucket(100), 21);  // 4.6052^2 = 21.21
  EXPECT_EQ(CriteoBucket(1000000), 190);
  for (int64_t x = -50; x < 20000; x += 1) ASSERT_EQ(CriteoBucket(x), Bucket(x)) << x;
  EXPECT_EQ(CriteoBucket(int64_t{1} << 40), Bucket(int64_t{1} << 40));
  EXPECT_EQ(CriteoBucket(INT64_MAX), Bucket(INT64_MAX));
}

// Up to 18 digits are read digit by digit, longer numbers by from_chars, which checks the range.
TEST(ParseIntTest, AcceptsWholeDecimalIntegersOnly) {
  int64_t x = 0;
  EXPECT_TRUE(ParseInt("0", &x) && x == 0);
  EXPECT_TRUE(ParseInt("-17", &x) && x == -17);
  EXPECT_TRUE(ParseInt("999999999999999999", &x) && x == 999999999999999999);
  EXPECT_TRUE(ParseInt("-999999999999999999", &x) && x == -999999999999999999);
  EXPECT_TRUE(ParseInt("9223372036854775807", &x) && x == INT64_MAX);
  EXPECT_TRUE(ParseInt("-9223372036854775808", &x) && x == INT64_MIN);
  EXPECT_TRUE(ParseInt("0000000000000000000042", &x) && x == 42);
  for (const char* bad : {"", "-", "+1", "1.5", "12a", " 1", "1 ", "--1", "9223372036854775808",
                          "-9223372036854775809", "99999999999999999999"}) {
    EXPECT_FALSE(ParseInt(bad, &x)) << bad;
  }
}

TEST(DayOfWeekTest, KnownDates) {
  EXPECT_EQ(DayOfWeek(1970, 1, 1), 4);    // Thursday
  EXPECT_EQ(DayOfWeek(2000, 1, 1), 6);    // Saturday
  EXPECT_EQ(DayOfWeek(2014, 10, 21), 2);  // Tuesday: the first day of the Avazu data
  EXPECT_EQ(DayOfWeek(2024, 2, 29), 4);   // Thursday, a leap day
  EXPECT_EQ(DayOfWeek(2014, 10, 26), 0);  // Sunday
}

std::string CriteoLine(const std::string& label, const std::vector<std::string>& ints,
                       const std::vector<std::string>& cats) {
  std::string line = label;
  for (int i = 0; i < 13; ++i) line += "\t" + (i < static_cast<int>(ints.size()) ? ints[i] : "");
  for (int i = 0; i < 26; ++i) line += "\t" + (i < static_cast<int>(cats.size()) ? cats[i] : "");
  return line;
}

TEST(ReaderFormatTest, CriteoExactKeys) {
  TempDir dir;
  const uint64_t seed = 17;
  std::string text = CriteoLine("1", {"5", "", "-3", "0", "1000"}, {"68fd1e64", "", "80e26c9b"}) +
                     "\n" + CriteoLine("0", {}, {}) + "\n";
  std::string path = WriteBytes(dir.Path("c.txt"), text);
  ReaderOptions options;
  options.hash_seed = seed;
  ReadOutcome out = testing::ReadPart(DataPart{path, 0, kWholeFile}, options);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  ASSERT_EQ(out.batch.rows(), 2u);
  EXPECT_EQ(out.batch.labels, (std::vector<float>{1, 0}));
  std::vector<uint64_t> want = {
      MakeKey(0, HashInt(static_cast<uint64_t>(Bucket(5)), seed)),
      MakeKey(2, HashInt(static_cast<uint64_t>(int64_t{-3}), seed)),
      MakeKey(3, HashInt(0, seed)),
      MakeKey(4, HashInt(static_cast<uint64_t>(Bucket(1000)), seed)),
      MakeKey(13, HashToken("68fd1e64", seed)),
      MakeKey(15, HashToken("80e26c9b", seed)),
  };
  EXPECT_EQ(RowKeys(out.batch, 0), want);
  EXPECT_EQ(RowKeys(out.batch, 1), std::vector<uint64_t>{});
  EXPECT_TRUE(out.batch.values.empty()) << "Criteo values are implied ones";
  EXPECT_EQ(testing::ValuesOf(out.batch), std::vector<float>(want.size(), 1.0f));
  EXPECT_EQ(out.lines, 2u);
  EXPECT_EQ(out.bad, 0u);
}

// Criteo and Avazu rows imply values of 1 (Minibatch::values stays empty); a row with values of
// its own writes the implied ones out first, and later unit rows append theirs: one minibatch can
// hold rows of every format (parts of a job can differ).
TEST(ReaderFormatTest, ImpliedOnesStayInStepWithExplicitValues) {
  const std::string criteo = CriteoLine("1", {"5"}, {"68fd1e64", "80e26c9b"});
  Minibatch batch;
  std::string error;
  ASSERT_TRUE(ParseCriteoLine(criteo, 1, &batch, &error)) << error;
  EXPECT_TRUE(batch.values.empty());
  const size_t criteo_entries = batch.entries();
  ASSERT_TRUE(ParseLibffmLine("0 1:7:0.5 2:8:2", 1, &batch, &error)) << error;
  ASSERT_EQ(batch.values.size(), batch.keys.size());
  std::vector<float> want(criteo_entries, 1.0f);
  want.insert(want.end(), {0.5f, 2.0f});
  EXPECT_EQ(batch.values, want);
  ASSERT_TRUE(ParseCriteoLine(criteo, 1, &batch, &error)) << error;
  want.insert(want.end(), criteo_entries, 1.0f);
  EXPECT_EQ(batch.values, want);
  // A bad libffm line changes nothing, not even the implied ones.
  Minibatch unit;
  ASSERT_TRUE(ParseCriteoLine(criteo, 1, &unit, &error)) << error;
  EXPECT_FALSE(ParseLibffmLine("0 1:7:x", 1, &unit, &error));
  EXPECT_EQ(unit.rows(), 1u);
  EXPECT_TRUE(unit.values.empty() || unit.values.size() == unit.keys.size());
}

// Integer columns of 1 to 8 digits are read 8 bytes at a time (a Criteo line always has them: 26
// columns follow), longer and negative ones digit by digit: every length, good and bad, in the
// first and the last integer column.
TEST(ReaderFormatTest, CriteoIntegersOfEveryLength) {
  const uint64_t seed = 3;
  auto line_with = [](const std::string& column, uint32_t field) {
    std::vector<std::string> ints(13, "");
    ints[field] = column;
    std::string line = "1";
    for (const std::string& i : ints) line += "\t" + i;
    for (int c = 0; c < 26; ++c) line += "\t";  // empty categorical columns
    return line;
  };
  const std::string digits = "9081726354091827364";
  for (uint32_t field : {0u, 12u}) {
    for (size_t len = 1; len <= digits.size(); ++len) {
      for (const std::string& column :
           {digits.substr(0, len), "-" + digits.substr(0, len), std::string(len, '0')}) {
        Minibatch batch;
        std::string error;
        ASSERT_TRUE(ParseCriteoLine(line_with(column, field), seed, &batch, &error))
            << column << ": " << error;
        ASSERT_EQ(batch.keys.size(), 1u) << column;
        EXPECT_EQ(batch.keys[0], CriteoIntegerKey(field, std::stoll(column), seed)) << column;
      }
      // A bad byte at every place of the column.
      for (size_t at = 0; at < len; ++at) {
        for (char bad : {'/', ':', 'a', ' ', '+', '.', '\x80'}) {
          std::string column = digits.substr(0, len);
          column[at] = bad;
          Minibatch batch;
          std::string error;
          EXPECT_FALSE(ParseCriteoLine(line_with(column, field), seed, &batch, &error)) << column;
          EXPECT_NE(error.find("bad integer"), std::string::npos) << column << ": " << error;
          EXPECT_EQ(batch.rows(), 0u);
        }
      }
    }
  }
  Minibatch batch;
  std::string error;
  EXPECT_FALSE(ParseCriteoLine(line_with("99999999999999999999", 0), seed, &batch, &error));
  EXPECT_FALSE(ParseCriteoLine(line_with("--1", 0), seed, &batch, &error));
  EXPECT_FALSE(ParseCriteoLine(line_with("-", 0), seed, &batch, &error));
}

// The Criteo parser finds the tabs 32 and 16 bytes at a time, then byte by byte: tokens of every
// length from 0 to 40 put the tabs at every offset of those steps, and lines end in each of them.
TEST(ReaderFormatTest, CriteoColumnsAtEveryOffset) {
  const uint64_t seed = 5;
  for (int shift = 0; shift < 41; ++shift) {
    std::vector<std::string> ints, cats;
    std::vector<uint64_t> want;
    for (int i = 0; i < 13; ++i) {
      const int len = (i * 7 + shift) % 6;  // 0..5 digits
      ints.push_back(std::string(len, static_cast<char>('1' + i % 9)));
      if (len > 0) {
        const int64_t x = std::stoll(ints.back());
        want.push_back(MakeKey(i, HashInt(static_cast<uint64_t>(Bucket(x)), seed)));
      }
    }
    for (int i = 0; i < 26; ++i) {
      const int len = (i * 11 + shift) % 41;
      cats.push_back(std::string(len, static_cast<char>('a' + i % 26)));
      if (len > 0) want.push_back(MakeKey(13 + i, HashToken(cats.back(), seed)));
    }
    const std::string line = CriteoLine(shift % 2 ? "1" : "0", ints, cats);
    Minibatch batch;
    std::string error;
    ASSERT_TRUE(ParseCriteoLine(line, seed, &batch, &error)) << error << "\n" << line;
    EXPECT_EQ(RowKeys(batch, 0), want) << "shift " << shift;
    EXPECT_EQ(batch.labels, std::vector<float>{shift % 2 ? 1.0f : 0.0f});
    // One tab more or fewer, anywhere, is a column count error naming the count.
    for (size_t cut : {line.size() / 3, line.size() - 1}) {
      std::string extra = line;
      extra.insert(cut, "\t");
      EXPECT_FALSE(ParseCriteoLine(extra, seed, &batch, &error));
      EXPECT_NE(error.find("got 41"), std::string::npos) << error;
      const size_t tab = line.find('\t', cut);
      if (tab == std::string::npos) continue;
      std::string fewer = line;
      fewer.erase(tab, 1);
      EXPECT_FALSE(ParseCriteoLine(fewer, seed, &batch, &error));
      EXPECT_NE(error.find("got 39"), std::string::npos) << error;
    }
    EXPECT_EQ(batch.rows(), 1u) << "a bad line adds nothing";
  }
}

TEST(ReaderFormatTest, AvazuHeaderAndHourSplit) {
  TempDir dir;
  const std::string header =
      "id,click,hour,C1,banner_pos,site_id,site_domain,site_category,app_id,app_domain,"
      "app_category,device_id,device_ip,device_model,device_type,device_conn_type,C14,C15,C16,"
      "C17,C18,C19,C20,C21";
  const std::string row =
      "123,1,14102105,1005,0,1fbe01fe,f3845767,28905ebd,ecad2386,7801e8d9,07d7df22,a99f214a,"
      "96809ac8,711ee120,1,0,15704,320,50,1722,0,35,,79";
  std::string path = WriteBytes(dir.Path("a.csv"), header + "\r\n" + row + "\r\n");
  ReadOutcome out = ReadWhole(path, DataFormat::kAvazu);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  ASSERT_EQ(out.batch.rows(), 1u);
  EXPECT_EQ(out.bad, 0u);
  EXPECT_EQ(out.lines, 2u);
  EXPECT_EQ(out.batch.labels[0], 1.0f);
  std::vector<uint64_t> want = {MakeKey(0, HashInt(5)), MakeKey(1, HashInt(2))};  // 05h, Tuesday
  std::vector<std::string> cols = {
      "1005",     "0",        "1fbe01fe", "f3845767", "28905ebd", "ecad2386", "7801e8d9",
      "07d7df22", "a99f214a", "96809ac8", "711ee120", "1",        "0",        "15704",
      "320",      "50",       "1722",     "0",        "35",       "",         "79"};
  for (size_t i = 0; i < cols.size(); ++i) {
    if (!cols[i].empty()) want.push_back(MakeKey(static_cast<uint32_t>(2 + i), HashToken(cols[i])));
  }
  EXPECT_EQ(RowKeys(out.batch, 0), want);
  EXPECT_EQ(FormatNumFields(DataFormat::kAvazu), 23);
  EXPECT_EQ(KeyField(want.back()), 22u);
}

TEST(ReaderFormatTest, LibffmExactKeys) {
  TempDir dir;
  std::string path =
      WriteBytes(dir.Path("f.ffm"), "1 0:abc:0.5 7:12:2\n-1 255:x:1e-3\n0\n+1 3:y:-4\n");
  ReadOutcome out = ReadWhole(path, DataFormat::kLibffm);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  EXPECT_EQ(out.bad, 0u);
  EXPECT_EQ(out.batch.labels, (std::vector<float>{1, 0, 0, 1}));
  EXPECT_EQ(out.batch.offsets, (std::vector<uint32_t>{0, 2, 3, 3, 4}));
  EXPECT_EQ(out.batch.keys,
            (std::vector<uint64_t>{MakeKey(0, HashToken("abc")), MakeKey(7, HashToken("12")),
                                   MakeKey(255, HashToken("x")), MakeKey(3, HashToken("y"))}));
  EXPECT_EQ(out.batch.values, (std::vector<float>{0.5f, 2.0f, 1e-3f, -4.0f}));
}

TEST(ReaderFormatTest, LibsvmFieldIsPosition) {
  TempDir dir;
  std::string path = WriteBytes(dir.Path("s.libfm"), "-1 204:1 4798:0.25\t 5041:3 \n1 42:1\n");
  ReadOutcome out = ReadWhole(path, DataFormat::kLibsvm);
  ASSERT_TRUE(out.status.ok()) << out.status.ToString();
  EXPECT_EQ(out.bad, 0u);
  EXPECT_EQ(out.batch.labels, (std::vector<float>{0, 1}));
  EXPECT_EQ(out.batch.keys,
            (std::vector<uint64_t>{MakeKey(0, HashToken("204")), MakeKey(1, HashToken("4798")),
                                   MakeKey(2, HashToken("5041")), MakeKey(0, HashToken("42"))}));
  EXPECT_EQ(out.batch.values, (std::vector<float>{1, 0.25f, 3, 1}));
}

TEST(ReaderFormatTest, RealSampleFilesParseCleanly) {
  struct Case {
    std::string path;
    DataFormat format;
    size_t rows;
    size_t fields;
  };
  for (const Case& c : {Case{kData + "criteo-8k/train.txt", DataFormat::kCriteo, 7200, 39},
                        Case{kData + "avazu-8k/train.csv", DataFormat::kAvazu, 8087, 23},
                        Case{kData + "avazu-8k/dev.csv", DataFormat::kAvazu, 480, 23},
                        Case{kData + "frappe/frappe.test.libfm", DataFormat::kLibsvm, 28860, 10}}) {
    ReadOutcome out = ReadWhole(c.path, c.format);
    ASSERT_TRUE(out.status.ok()) << out.status.ToString();
    EXPECT_EQ(out.batch.rows(), c.rows) << c.path;
    EXPECT_EQ(out.bad, 0u) << c.path << (out.messages.empty() ? "" : out.messages[0]);
    for (uint64_t key : out.batch.keys) ASSERT_LT(KeyField(key), c.fields) << c.path;
  }
}

struct BadCase {
  DataFormat format;
  std::string line;
  std::string reason;  // a fragment of the expected message
};

TEST(ReaderFormatTest, MalformedLinesNamedByFileAndLine) {
  const std::string good_criteo = CriteoLine("1", {"1"}, {"ab"});
  const std::string good_avazu =
      "1,0,14102100,1005,0,a,b,c,d,e,f,g,h,i,1,0,15704,320,50,1722,0,35,-1,79";
  std::string many_pairs = "1";
  for (int i = 0; i < 257; ++i) many_pairs += " " + std::to_string(i) + ":1";
  std::vector<BadCase> cases = {
      {DataFormat::kCriteo, CriteoLine("1", {"1"}, {"ab"}) + "\textra", "got 41"},
      {DataFormat::kCriteo, "1\t2\t3", "got 3"},
      {DataFormat::kCriteo, CriteoLine("2", {"1"}, {"ab"}), "label"},
      {DataFormat::kCriteo, CriteoLine("1", {"1x"}, {"ab"}), "bad integer '1x'"},
      {DataFormat::kCriteo, CriteoLine("1", {"", "9999999999999999999999"}, {}), "bad integer"},
      {DataFormat::kAvazu, "1,0,14102100,1005", "got 4"},
      {DataFormat::kAvazu, "1,2,14102100,1005,0,a,b,c,d,e,f,g,h,i,1,0,1,3,5,1,0,35,-1,79", "click"},
      {DataFormat::kAvazu, "1,0,14132100,1005,0,a,b,c,d,e,f,g,h,i,1,0,1,3,5,1,0,35,-1,79", "hour"},
      {DataFormat::kAvazu, "1,0,1410210,1005,0,a,b,c,d,e,f,g,h,i,1,0,1,3,5,1,0,35,-1,79,",
       "got 25"},
      {DataFormat::kLibffm, "1 1:a", "field:feature:value"},
      {DataFormat::kLibffm, "1 256:a:1", "field 256 >= 256"},
      {DataFormat::kLibffm, "1 1:a:x", "bad value"},
      {DataFormat::kLibffm, "1 -1:a:1", "bad field"},
      {DataFormat::kLibffm, "2 1:a:1", "label"},
      {DataFormat::kLibffm, "1 1:a:nan", "bad value"},
      {DataFormat::kLibsvm, "1 7", "id:value"},
      {DataFormat::kLibsvm, "1 7:1:2", "id:value"},
      {DataFormat::kLibsvm, "1 7:", "bad value"},
      {DataFormat::kLibsvm, "abc 7:1", "label"},
      {DataFormat::kLibsvm, many_pairs, "more than 256"},
  };
  TempDir dir;
  for (const BadCase& c : cases) {
    std::string good = c.format == DataFormat::kCriteo   ? good_criteo
                       : c.format == DataFormat::kAvazu  ? good_avazu
                       : c.format == DataFormat::kLibffm ? "1 2:x:1"
                                                         : "1 2:1";
    // good, empty, good, bad, good: the bad line is line 4 of the file.
    std::string text = good + "\n\n" + good + "\n" + c.line + "\n" + good;
    std::string path = WriteBytes(dir.Path("bad.txt"), text);
    ReadOutcome out = ReadWhole(path, c.format);
    ASSERT_TRUE(out.status.ok()) << out.status.ToString();
    EXPECT_EQ(out.batch.rows(), 3u) << c.line;
    EXPECT_EQ(out.bad, 1u) << c.line;
    EXPECT_EQ(out.lines, 5u) << c.line;
    ASSERT_EQ(out.messages.size(), 1u) << c.line;
    EXPECT_EQ(out.messages[0].rfind(path + ":4: ", 0), 0u) << out.messages[0];
    EXPECT_NE(out.messages[0].find(c.reason), std::string::npos) << out.messages[0];
    // A part starting mid-file (inside line 2's successor) still numbers lines in the file.
    ReaderOptions options;
    options.format = c.format;
    uint64_t mid = good.size() + 2;  // the start of line 3
    ReadOutcome part = testing::ReadPart(DataPart{path, mid, text.size()}, options);
    ASSERT_TRUE(part.status.ok());
    EXPECT_EQ(part.batch.rows(), 2u);
    ASSERT_EQ(part.messages.size(), 1u);
    EXPECT_EQ(part.messages[0].rfind(path + ":4: ", 0), 0u) << part.messages[0];
  }
}

TEST(ReaderFormatTest, LongLineIsMalformed) {
  TempDir dir;
  std::string text = "1 1:1\n1 " + std::string(100, '7') + ":1\n0 2:1\n";
  std::string path = WriteBytes(dir.Path("long.txt"), text);
  ReaderOptions options;
  options.format = DataFormat::kLibsvm;
  options.max_line_bytes = 50;
  ReadOutcome out = testing::ReadPart(DataPart{path, 0, kWholeFile}, options);
  ASSERT_TRUE(out.status.ok());
  EXPECT_EQ(out.batch.labels, (std::vector<float>{1, 0}));
  ASSERT_EQ(out.messages.size(), 1u);
  EXPECT_EQ(out.messages[0], path + ":2: line longer than 50 bytes");
}

// A line longer than the reader's whole buffer (4 MiB) is skipped in pieces, also when a part
// starts inside it.
TEST(ReaderFormatTest, LineLongerThanBuffer) {
  TempDir dir;
  std::string huge = "1 " + std::string(5 << 20, 'x') + ":1";
  std::string text = "1 1:1\n" + huge + "\n0 2:1\n1 3:1";
  std::string path = WriteBytes(dir.Path("huge.txt"), text);
  ReaderOptions options;
  options.format = DataFormat::kLibsvm;
  ReadOutcome out = testing::ReadPart(DataPart{path, 0, kWholeFile}, options);
  ASSERT_TRUE(out.status.ok());
  EXPECT_EQ(out.batch.labels, (std::vector<float>{1, 0, 1}));
  ASSERT_EQ(out.messages.size(), 1u);
  EXPECT_EQ(out.messages[0], path + ":2: line longer than 1048576 bytes");
  // Two parts split inside the long line.
  uint64_t cut = 6 + (3 << 20);
  ReadOutcome a = testing::ReadPart(DataPart{path, 0, cut}, options);
  ReadOutcome b = testing::ReadPart(DataPart{path, cut, text.size()}, options);
  EXPECT_EQ(a.batch.labels, (std::vector<float>{1}));
  EXPECT_EQ(a.messages.size(), 1u);
  EXPECT_EQ(b.batch.labels, (std::vector<float>{0, 1}));
  EXPECT_TRUE(b.messages.empty());
}

TEST(ReaderFormatTest, FormatNamesRoundTrip) {
  for (DataFormat f : {DataFormat::kAuto, DataFormat::kCriteo, DataFormat::kAvazu,
                       DataFormat::kLibffm, DataFormat::kLibsvm}) {
    Result<DataFormat> parsed = ParseDataFormat(DataFormatName(f));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, f);
  }
  EXPECT_EQ(*ParseDataFormat("libfm"), DataFormat::kLibsvm);
  Result<DataFormat> bad = ParseDataFormat("parquet");
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("parquet"), std::string::npos);
  EXPECT_EQ(FormatNumFields(DataFormat::kCriteo), 39);
  EXPECT_EQ(FormatNumFields(DataFormat::kLibffm), 0);
}

TEST(ReaderFormatTest, SniffFormat) {
  EXPECT_EQ(*SniffFormat(kData + "criteo-8k/train.txt"), DataFormat::kCriteo);
  EXPECT_EQ(*SniffFormat(kData + "avazu-8k/train.csv"), DataFormat::kAvazu);
  EXPECT_EQ(*SniffFormat(kData + "avazu-8k/dev.csv"), DataFormat::kAvazu);
  EXPECT_EQ(*SniffFormat(kData + "frappe/frappe.validation.libfm"), DataFormat::kLibsvm);
  TempDir dir;
  EXPECT_EQ(*SniffFormat(WriteBytes(dir.Path("x.ffm"), "\n1 0:a:1 1:b:1\n")), DataFormat::kLibffm);
  Result<std::string> criteo = ReadFile(kData + "criteo-8k/dev.txt");
  ASSERT_TRUE(criteo.ok());
  EXPECT_EQ(*SniffFormat(WriteBytes(dir.Path("c.gz"), testing::GzipBytes(*criteo))),
            DataFormat::kCriteo);
  Result<DataFormat> unknown = SniffFormat(WriteBytes(dir.Path("what"), "hello world\n"));
  EXPECT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find(dir.Path("what")), std::string::npos);
  EXPECT_FALSE(SniffFormat("-").ok());
  // kAuto in Open sniffs.
  ReadOutcome out = ReadWhole(kData + "frappe/frappe.test.libfm", DataFormat::kAuto);
  EXPECT_EQ(out.batch.rows(), 28860u);
}

}  // namespace
}  // namespace fmps

namespace fmps {
namespace {

// --holdout: training readers skip exactly the held-out lines (and count them), validation
// readers return exactly those; together they are the file, and a gzip file agrees.
TEST(ReaderHoldoutTest, TrainingAndValidationRowsPartitionTheFile) {
  testing::TempDir dir;
  std::string text;
  std::vector<float> labels;
  uint64_t held = 0;
  for (int i = 0; i < 2000; ++i) {
    const std::string line = std::to_string(i % 3 == 0) + "\t" + std::to_string(i) +
                             std::string(13, '\t') + "a" + std::to_string(i % 17) +
                             std::string(25, '\t');
    text += line + "\n";
    labels.push_back(i % 3 == 0 ? 1.f : 0.f);
    held += IsHoldoutLine(line, 0.25);
  }
  ASSERT_GT(held, 400u);
  ASSERT_LT(held, 600u);
  for (const std::string& path :
       {testing::WriteBytes(dir.Path("d.txt"), text),
        testing::WriteBytes(dir.Path("d.gz"), testing::GzipBytes(text))}) {
    SCOPED_TRACE(path);
    ReaderOptions o;
    o.format = DataFormat::kCriteo;
    o.holdout = 0.25;
    o.holdout_rows = HoldoutRows::kSkipHoldout;
    uint64_t skipped = 0;
    Minibatch train;
    // Two parts of the plain file (the gzip one is read whole): counts add up across readers.
    for (const DataPart& part : path.ends_with(".gz")
                                    ? std::vector<DataPart>{{path, 0, kWholeFile}}
                                    : std::vector<DataPart>{{path, 0, text.size() / 2},
                                                            {path, text.size() / 2, kWholeFile}}) {
      Result<std::unique_ptr<Reader>> reader = Reader::Open(part, o);
      ASSERT_TRUE(reader.ok()) << reader.status().ToString();
      for (;;) {
        Result<size_t> n = (*reader)->Read(100, &train);
        ASSERT_TRUE(n.ok()) << n.status().ToString();
        if (*n == 0) break;
      }
      skipped += (*reader)->held_out();
    }
    o.holdout_rows = HoldoutRows::kOnlyHoldout;
    testing::ReadOutcome val = testing::ReadPart({path, 0, kWholeFile}, o, 100);
    ASSERT_TRUE(val.status.ok());
    EXPECT_EQ(skipped, held);
    EXPECT_EQ(val.batch.rows(), held);
    EXPECT_EQ(train.rows(), labels.size() - held);
    // Which rows went where: rows keep their order, so merging by the hash gives the file back.
    size_t t = 0, v = 0, i = 0;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
      if (line.empty()) continue;
      const bool is_held = IsHoldoutLine(line, 0.25);
      const float label = is_held ? val.batch.labels.at(v++) : train.labels.at(t++);
      ASSERT_EQ(label, labels[i++]) << line;
    }
    EXPECT_EQ(i, labels.size());
  }
}

}  // namespace
}  // namespace fmps
