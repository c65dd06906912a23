#include "datagen/generator.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "datagen/planted_model.h"

namespace fmps::datagen {
namespace {

GeneratorOptions SmallOptions() {
  GeneratorOptions o;
  o.rows = 20000;
  o.vocab_scale = 0.05;
  o.table_tokens = 256;
  o.bias_pilot_rows = 20000;
  return o;
}

// Generates into an in-memory file and returns its bytes.
std::string Generate(const GeneratorOptions& o, GeneratorResult* result = nullptr) {
  const int fd = memfd_create("datagen_test", 0);
  EXPECT_GE(fd, 0);
  auto r = GenerateCriteo(o, fd);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (result != nullptr && r.ok()) *result = *r;
  const off_t size = lseek(fd, 0, SEEK_END);
  std::string bytes(static_cast<size_t>(size), '\0');
  EXPECT_EQ(pread(fd, bytes.data(), bytes.size(), 0), size);
  close(fd);
  return bytes;
}

std::vector<std::string> Lines(const std::string& bytes) {
  std::vector<std::string> lines;
  std::istringstream in(bytes);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(GeneratorTest, SameOptionsSameBytesOtherSeedOtherRows) {
  GeneratorOptions o = SmallOptions();
  o.rows = 3000;
  const std::string a = Generate(o), b = Generate(o);
  EXPECT_EQ(a, b);
  o.seed = 2;
  const std::string c = Generate(o);
  EXPECT_NE(a, c);
  const auto la = Lines(a), lc = Lines(c);
  ASSERT_EQ(la.size(), lc.size());
  int same = 0;
  for (size_t i = 0; i < la.size(); ++i) same += la[i] == lc[i];
  EXPECT_LT(same, 10);
}

TEST(GeneratorTest, EveryLineIsAWellFormedCriteoRow) {
  GeneratorResult result;
  const std::string bytes = Generate(SmallOptions(), &result);
  ASSERT_FALSE(bytes.empty());
  EXPECT_EQ(bytes.back(), '\n');
  const auto lines = Lines(bytes);
  ASSERT_EQ(lines.size(), 20000u);
  EXPECT_EQ(result.rows, 20000u);
  uint64_t positives = 0, empty = 0, cells = 0;
  for (const std::string& line : lines) {
    std::vector<std::string> cols;
    size_t begin = 0;
    for (;;) {
      const size_t tab = line.find('\t', begin);
      cols.push_back(
          line.substr(begin, tab == std::string::npos ? std::string::npos : tab - begin));
      if (tab == std::string::npos) break;
      begin = tab + 1;
    }
    ASSERT_EQ(cols.size(), 40u) << line;
    ASSERT_TRUE(cols[0] == "0" || cols[0] == "1") << line;
    positives += cols[0] == "1";
    for (int c = 1; c <= 13; ++c) {
      ++cells;
      if (cols[c].empty()) {
        ++empty;
        continue;
      }
      size_t used = 0;
      const long long x = std::stoll(cols[c], &used);
      ASSERT_EQ(used, cols[c].size()) << cols[c];
      ASSERT_GE(x, 0);
    }
    for (int c = 14; c < 40; ++c) {
      ++cells;
      if (cols[c].empty()) {
        ++empty;
        continue;
      }
      ASSERT_EQ(cols[c].size(), 8u) << cols[c];
      for (char ch : cols[c])
        ASSERT_TRUE((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')) << cols[c];
    }
  }
  EXPECT_EQ(positives, result.positives);
  // 5% missing columns.
  EXPECT_NEAR(static_cast<double>(empty) / cells, 0.05, 0.005);
}

TEST(GeneratorTest, ObservedCtrIsNearTarget) {
  for (double target : {0.25, 0.1}) {
    GeneratorOptions o = SmallOptions();
    o.target_ctr = target;
    GeneratorResult r;
    Generate(o, &r);
    EXPECT_NEAR(static_cast<double>(r.positives) / r.rows, target, 0.025) << "target " << target;
  }
}

TEST(GeneratorTest, TokenCountsAreHeavyTailed) {
  GeneratorOptions o = SmallOptions();
  o.vocab_scale = 0.1;  // C3: 100000 tokens
  const auto lines = Lines(Generate(o));
  std::map<std::string, int> counts;
  for (const std::string& line : lines) {
    size_t begin = 0;
    for (int c = 0; c < 16; ++c) begin = line.find('\t', begin) + 1;  // column 16 = C3
    const std::string token = line.substr(begin, line.find('\t', begin) - begin);
    if (!token.empty()) ++counts[token];
  }
  std::vector<int> sorted;
  for (const auto& [token, count] : counts) sorted.push_back(count);
  std::sort(sorted.rbegin(), sorted.rend());
  ASSERT_GT(sorted.size(), 1000u);  // many distinct tokens
  const int median = sorted[sorted.size() / 2];
  EXPECT_GT(sorted[0], 100 * median) << "top " << sorted[0] << " median " << median;
  EXPECT_GT(sorted[0], 5 * sorted[9]);  // Zipf: rank 1 vs rank 10 is 10^1.1 = 12.6
}

TEST(GeneratorTest, OracleLoglossIsTheMeanLoglossOfThePlantedProbabilities) {
  for (const char* planted : {"fm", "fwfm", "dplr"}) {
    GeneratorOptions o = SmallOptions();
    o.planted = planted;
    o.rows = 5000;
    GeneratorResult result;
    const auto lines = Lines(Generate(o, &result));
    auto model = PlantedModel::Create(o);
    ASSERT_TRUE(model.ok());
    double loss = 0;
    RowTokens row;
    for (const std::string& line : lines) {
      int label;
      const Status s = (*model)->ParseLine(line, &label, &row);
      ASSERT_TRUE(s.ok()) << s.ToString() << " in " << line;
      const double p = 1 / (1 + std::exp(-(*model)->Logit(row)));
      loss -= label ? std::log(p) : std::log(1 - p);
    }
    loss /= static_cast<double>(lines.size());
    EXPECT_NEAR(result.oracle_logloss, loss, 1e-6) << planted;
    // Far better than the base rate's entropy, yet not trivial.
    const double ctr = static_cast<double>(result.positives) / result.rows;
    const double entropy = -(ctr * std::log(ctr) + (1 - ctr) * std::log(1 - ctr));
    EXPECT_LT(result.oracle_logloss, entropy - 0.05) << planted;
    EXPECT_GT(result.oracle_logloss, 0.25) << planted;
  }
}

// The small planted-FwFM world of issue 4: 6 active fields of 20 tokens, the other columns
// empty, R exactly 0 off the strong pairs; the oracle still matches the written file.
TEST(GeneratorTest, SmallWorldWritesOnlyItsActiveFields) {
  GeneratorOptions o = SmallOptions();
  o.planted = "fwfm";
  o.rows = 4000;
  o.active_fields = 6;
  o.field_vocab = 20;
  o.missing = 0;
  o.fwfm_strong_pairs = 0.4;
  o.fwfm_weak_std = 0;
  GeneratorResult result;
  const auto lines = Lines(Generate(o, &result));
  auto model = PlantedModel::Create(o);
  ASSERT_TRUE(model.ok());
  const PlantedModel& m = **model;
  double loss = 0;
  RowTokens row;
  std::vector<std::map<uint64_t, int>> seen(kFields);
  for (const std::string& line : lines) {
    int label;
    const Status s = m.ParseLine(line, &label, &row);
    ASSERT_TRUE(s.ok()) << s.ToString() << " in " << line;
    for (int f = 0; f < kFields; ++f) {
      if (f < 6) {
        ASSERT_NE(row[f], kMissingToken) << "field " << f << " in " << line;
        ASSERT_LT(row[f], 20u);
        ++seen[f][row[f]];
      } else {
        ASSERT_EQ(row[f], kMissingToken) << "field " << f << " in " << line;
      }
    }
    const double p = 1 / (1 + std::exp(-m.Logit(row)));
    loss -= label ? std::log(p) : std::log(1 - p);
  }
  EXPECT_NEAR(result.oracle_logloss, loss / static_cast<double>(lines.size()), 1e-6);
  for (int f = 0; f < 6; ++f) EXPECT_EQ(seen[f].size(), 20u) << "field " << f;
  int strong = 0, negative = 0;
  for (int f = 0; f < kFields; ++f) {
    for (int g = f + 1; g < kFields; ++g) {
      const double r = m.PairWeight(f, g);
      if (g >= 6) {
        EXPECT_EQ(r, 0.0) << f << "," << g << " has an inactive field";
      } else if (r != 0) {
        ++strong;
        negative += r < 0;
        EXPECT_GT(std::fabs(r), 0.5) << "strong pairs only: " << f << "," << g;
      }
    }
  }
  EXPECT_GT(strong, 0);
  EXPECT_LT(strong, 15) << "most of the 15 pairs are exactly 0";
  EXPECT_GT(negative, 0) << "some strong pairs are negative";
  // A non-empty inactive column is no line this model writes.
  std::string bad = lines[0];
  bad.insert(bad.rfind('\t') + 1, "abcdef01");
  int label;
  EXPECT_FALSE(m.ParseLine(bad, &label, &row).ok());
}

TEST(GeneratorTest, PlantingsGiveDifferentLabels) {
  GeneratorOptions o = SmallOptions();
  o.rows = 2000;
  const auto fm = Lines(Generate(o));
  o.planted = "fwfm";
  const auto fwfm = Lines(Generate(o));
  o.planted = "dplr";
  const auto dplr = Lines(Generate(o));
  ASSERT_EQ(fm.size(), fwfm.size());
  int fwfm_same = 0, dplr_same = 0;
  for (size_t i = 0; i < fm.size(); ++i) {
    // Same row stream: identical features, labels drawn from different probabilities.
    EXPECT_EQ(fm[i].substr(1), fwfm[i].substr(1));
    fwfm_same += fm[i] == fwfm[i];
    dplr_same += fm[i] == dplr[i];
  }
  EXPECT_LT(fwfm_same, 0.9 * fm.size());
  EXPECT_LT(dplr_same, 0.9 * fm.size());
}

bool SigpipePending() {
  sigset_t pending;
  sigemptyset(&pending);
  sigpending(&pending);
  return sigismember(&pending, SIGPIPE) == 1;
}

TEST(GeneratorTest, ClosedPipeEndsGenerationCleanly) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  close(fds[0]);  // nobody will read
  GeneratorOptions o = SmallOptions();
  o.buffer_bytes = 4096;
  auto r = GenerateCriteo(o, fds[1]);
  close(fds[1]);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->reader_closed);
  EXPECT_EQ(r->rows, 0u);
  EXPECT_FALSE(SigpipePending());
}

TEST(GeneratorTest, ReaderLeavingHalfwayEndsGenerationCleanly) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  size_t bytes_read = 0;
  std::thread reader([&] {
    char buf[65536];
    while (bytes_read < 1000000) {
      const ssize_t n = read(fds[0], buf, sizeof(buf));
      if (n <= 0) break;
      bytes_read += static_cast<size_t>(n);
    }
    close(fds[0]);
  });
  GeneratorOptions o = SmallOptions();
  o.rows = 1000000;  // ~250 MB if nobody stopped it
  o.buffer_bytes = 1 << 16;
  auto r = GenerateCriteo(o, fds[1]);
  reader.join();
  close(fds[1]);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->reader_closed);
  EXPECT_GT(r->rows, 1000u);
  EXPECT_LT(r->rows, 20000u);
  EXPECT_LE(r->rows * 150, bytes_read);  // only fully written rows are counted
}

TEST(GeneratorTest, WriteErrorsAndBadOptionsAreStatuses) {
  const int fd = open("/dev/null", O_RDONLY);
  ASSERT_GE(fd, 0);
  GeneratorOptions o = SmallOptions();
  o.rows = 10;
  auto r = GenerateCriteo(o, fd);  // EBADF: not open for writing
  close(fd);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kIOError);
  EXPECT_NE(r.status().message().find("fd"), std::string::npos);
  o.planted = "nope";
  EXPECT_EQ(GenerateCriteo(o, 1).status().code(), Status::Code::kInvalidArgument);
  EXPECT_FALSE(GenerateCriteo(SmallOptions(), -1).ok());
  for (int fields : {0, 40}) {
    GeneratorOptions bad = SmallOptions();
    bad.active_fields = fields;
    const Status s = ValidateOptions(bad);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
    EXPECT_NE(s.message().find("active_fields"), std::string::npos) << s.message();
  }
  GeneratorOptions bad = SmallOptions();
  bad.fwfm_weak_std = -1;
  EXPECT_NE(ValidateOptions(bad).message().find("fwfm_weak_std"), std::string::npos);
  bad = SmallOptions();
  bad.field_vocab = uint64_t{1} << 40;
  EXPECT_NE(ValidateOptions(bad).message().find("field_vocab"), std::string::npos);
}

}  // namespace
}  // namespace fmps::datagen
