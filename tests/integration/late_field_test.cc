// A libffm field that first appears late in a file, through the real `fmps` binary on a local
// cluster of processes: the job's field count comes from a scan of all of every input, is recorded
// in the manifest, and the model learns that field as well as when it appears in the first line.
// With --num_fields below it, each such line is a bad line: counted exactly, logged as FILE:LINE,
// --max_bad_lines applies; predict writes nan for it. A saved model cannot be continued with
// another field count.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "ps/checkpoint.h"
#include "tests/integration/process_util.h"
#include "tests/ps/temp_dir.h"

namespace fmps {
namespace {

using testing::JsonNumber;
using testing::LastLine;
using testing::RunResult;

const std::string kBinary = FMPS_BINARY;
constexpr double kTimeout = 90;
constexpr int kRows = 30000;
constexpr int kLate = kRows * 9 / 10;  // rows from here on carry field 12; the first 20,000 do not
constexpr int kTestRows = 3000;

// Rows of fields 0..9 (20 tokens each, weights planted at random) and, in `with_late_field` rows,
// field 12 whose 6 tokens carry most of the label's signal (weight +-2.5).
class Rows {
 public:
  explicit Rows(uint64_t seed) : rng_(seed) {
    for (double& w : weights_) w = Gaussian() * 0.4;
  }
  std::string Next(bool with_late_field) {
    std::string line;
    double score = 0;
    for (int f = 0; f < 10; ++f) {
      const int t = static_cast<int>(rng_() % 20);
      score += weights_[f * 20 + t];
      line += " " + std::to_string(f) + ":t" + std::to_string(t) + ":1";
    }
    if (with_late_field) {
      const int t = static_cast<int>(rng_() % 6);
      score += t % 2 ? 2.5 : -2.5;
      line += " 12:u" + std::to_string(t) + ":1";
    }
    const bool click = Uniform() < 1 / (1 + std::exp(-score));
    return (click ? "1" : "0") + line;
  }

 private:
  double Uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }
  double Gaussian() {  // Box-Muller: the same numbers with every standard library
    return std::sqrt(-2 * std::log(1 - Uniform())) * std::cos(2 * M_PI * Uniform());
  }
  std::mt19937_64 rng_;
  double weights_[200];
};

void WriteLines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream out(path);
  for (const std::string& l : lines) out << l << "\n";
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

// dir/late.ffm: field 12 only in its last 10% of lines; dir/early.ffm: the same lines with those
// first; dir/test.ffm: rows that all carry field 12.
class LateFieldTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Rows rows(5);
    std::vector<std::string> late;
    for (int r = 0; r < kRows; ++r) late.push_back(rows.Next(r >= kLate));
    std::vector<std::string> early(late.begin() + kLate, late.end());
    early.insert(early.end(), late.begin(), late.begin() + kLate);
    std::vector<std::string> test;
    for (int r = 0; r < kTestRows; ++r) test.push_back(rows.Next(true));
    WriteLines(late_ = dir_.File("late.ffm"), late);
    WriteLines(early_ = dir_.File("early.ffm"), early);
    WriteLines(test_ = dir_.File("test.ffm"), test);
  }

  // FwFM on one server and one worker in lockstep, into dir/NAME; `extra` last.
  RunResult Train(const std::string& data, const std::string& name,
                  const std::vector<std::string>& extra) {
    std::vector<std::string> args{
        "train", "--data=" + data, "--format=libffm", "--model=fwfm", "--num_servers=1",
        "--num_workers=1", "--max_delay=0", "--batch_size=100", "--ftrl_alpha=0.3", "--ftrl_l1=0",
        // The table's settings, not the dense data's (every feature
        // embedded at once): the 1% below was measured with them.
        "--v_min_count=200", "--rank_mid_count=500", "--rank_head_count=1000",
        "--v_init_scale=0.01", "--v_lr=0.05", "--v_l2=0.0001", "--dense_lr=0.05",
        "--model_dir=" + dir_.File(name)};
    args.insert(args.end(), extra.begin(), extra.end());
    return testing::Run(kBinary, args, dir_.path(), kTimeout);
  }

  int ManifestFields(const std::string& name) {
    Result<proto::Manifest> m = FindNewestGoodManifest(dir_.File(name));
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? m->config().num_fields() : -1;
  }

  TempDir dir_;
  std::string late_, early_, test_;
};

// Before, the field count came from the first 20,000 rows of the first file: 10. Field 12's 3,000
// lines were then bad lines, over --max_bad_lines (the job failed); with the limit raised they were
// left out and the model never saw the field that carries the signal.
TEST_F(LateFieldTest, AFieldFirstSeenInTheLastLinesIsInTheModelAsIfItCameFirst) {
  RunResult late = Train(late_, "late", {"--test=" + test_, "--epochs=3"});
  ASSERT_EQ(late.exit_code, 0) << late.err;
  RunResult early = Train(early_, "early", {"--test=" + test_, "--epochs=3"});
  ASSERT_EQ(early.exit_code, 0) << early.err;
  EXPECT_EQ(ManifestFields("late"), 13);
  EXPECT_EQ(ManifestFields("early"), 13);
  EXPECT_NE(late.err.find("field 12 first at " + late_ + ":" + std::to_string(kLate + 1)),
            std::string::npos)
      << late.err;
  const std::string late_json = LastLine(late.out), early_json = LastLine(early.out);
  EXPECT_EQ(JsonNumber(late_json, "rows").value_or(-1), 3 * kRows) << late_json;
  EXPECT_EQ(JsonNumber(late_json, "bad_lines").value_or(-1), 0) << late_json;
  EXPECT_EQ(JsonNumber(late_json, "test_rows").value_or(-1), kTestRows) << late_json;
  const double late_logloss = JsonNumber(late_json, "test_logloss").value_or(-1);
  const double early_logloss = JsonNumber(early_json, "test_logloss").value_or(-2);
  std::printf("test logloss: field 12 late %.6f, early %.6f\n", late_logloss, early_logloss);
  EXPECT_NEAR(late_logloss, early_logloss, 0.01 * early_logloss) << late_json << "\n" << early_json;
  // The signal is in field 12: without it a model is near log 2 on these rows.
  EXPECT_LT(early_logloss, 0.45) << early_json;
}

// --num_fields=10 on the same file: each line with field 12 is a bad line, counted exactly and
// named FILE:LINE; over --max_bad_lines the job fails. predict with that model writes nan for them.
TEST_F(LateFieldTest, FieldsBeyondAGivenCountAreBadLinesCountedExactly) {
  RunResult within = Train(late_, "ten", {"--num_fields=10", "--max_bad_lines=3000"});
  ASSERT_EQ(within.exit_code, 0) << within.err;
  const std::string json = LastLine(within.out);
  EXPECT_EQ(JsonNumber(json, "bad_lines").value_or(-1), kRows - kLate) << json;
  EXPECT_EQ(JsonNumber(json, "rows").value_or(-1), kLate) << json;
  EXPECT_EQ(ManifestFields("ten"), 10);
  EXPECT_NE(within.err.find(late_ + ":" + std::to_string(kLate + 1) +
                            ": field 12 is beyond the job's 10 fields (0..9; --num_fields)"),
            std::string::npos)
      << within.err;

  RunResult over = Train(late_, "over", {"--num_fields=10", "--max_bad_lines=2999"});
  EXPECT_EQ(over.exit_code, 1) << over.err;
  EXPECT_NE(over.err.find("more than --max_bad_lines=2999"), std::string::npos) << over.err;

  const std::string probs = dir_.File("probs.txt");
  RunResult p = testing::Run(kBinary,
                             {"predict", "--model_dir=" + dir_.File("ten"), "--data=" + late_,
                              "--out=" + probs, "--max_bad_lines=3000"},
                             dir_.path(), kTimeout);
  ASSERT_EQ(p.exit_code, 0) << p.err;
  const std::vector<std::string> out = ReadLines(probs);
  ASSERT_EQ(out.size(), size_t(kRows));
  for (int r = 0; r < kRows; ++r) {
    if (r >= kLate) {
      ASSERT_EQ(out[r], "nan") << "line " << r + 1;
    } else {
      ASSERT_NE(out[r], "nan") << "line " << r + 1;
    }
  }
}

// A saved model of 10 fields cannot continue on data whose scan finds 13, nor with --num_fields
// other than its own; data with fewer fields than the model continues with the model's.
TEST_F(LateFieldTest, ASavedModelIsContinuedOnlyWithItsFieldCount) {
  std::vector<std::string> head = ReadLines(late_);
  head.resize(kLate);
  const std::string first = dir_.File("first.ffm");
  WriteLines(first, head);
  ASSERT_EQ(Train(first, "ten", {}).exit_code, 0);
  EXPECT_EQ(ManifestFields("ten"), 10);
  const std::string saved = "--init_model: " + dir_.File("ten") + ", version 1 ";
  RunResult more = Train(late_, "next", {"--init_model=" + dir_.File("ten")});
  EXPECT_EQ(more.exit_code, 1) << more.err;
  EXPECT_NE(more.err.find(saved + "has 10 fields (0..9); this job's data has 13"),
            std::string::npos)
      << more.err;
  RunResult given = Train(first, "next", {"--init_model=" + dir_.File("ten"), "--num_fields=12"});
  EXPECT_EQ(given.exit_code, 1) << given.err;
  EXPECT_NE(
      given.err.find(saved + "was trained with --num_fields=10; this job has --num_fields=12"),
      std::string::npos)
      << given.err;

  ASSERT_EQ(Train(late_, "thirteen", {}).exit_code, 0);
  RunResult fewer = Train(first, "thirteen", {"--resume", "--resume_new_data"});
  ASSERT_EQ(fewer.exit_code, 0) << fewer.err;
  EXPECT_EQ(ManifestFields("thirteen"), 13);
}

// Stdin cannot be scanned: FwFM needs --num_fields; FM, whose parameters do not depend on the
// field count, accepts every field up to 255. Criteo fixes its 39 fields.
TEST_F(LateFieldTest, StdinNeedsAGivenCountUnlessTheModelDoesNotUseOne) {
  RunResult fwfm = Train("-", "stdin", {});
  EXPECT_EQ(fwfm.exit_code, 1) << fwfm.err;
  EXPECT_NE(fwfm.err.find("stdin is a stream: it cannot be scanned for the number of libffm "
                          "fields before the job starts, and --model=fwfm sizes its parameters "
                          "by it; give --num_fields=N"),
            std::string::npos)
      << fwfm.err;
  const std::string script = "exec " + kBinary + " train --data=- --format=libffm --model=fm " +
                             "--num_servers=1 --num_workers=1 --model_dir=" + dir_.File("fm") +
                             " < " + late_;
  RunResult fm = testing::Run("/bin/sh", {"-c", script}, dir_.path(), kTimeout);
  ASSERT_EQ(fm.exit_code, 0) << fm.err;
  EXPECT_EQ(JsonNumber(LastLine(fm.out), "rows").value_or(-1), kRows) << fm.out;
  EXPECT_EQ(ManifestFields("fm"), 256);

  RunResult criteo =
      testing::Run(kBinary, {"train", "--data=" + late_, "--format=criteo", "--num_fields=10"},
                   dir_.path(), kTimeout);
  EXPECT_EQ(criteo.exit_code, 1) << criteo.err;
  EXPECT_NE(criteo.err.find("--num_fields=10: --format=criteo has 39 fields; leave --num_fields "
                            "out"),
            std::string::npos)
      << criteo.err;
}

}  // namespace
}  // namespace fmps
