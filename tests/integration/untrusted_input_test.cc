// Input a job cannot trust, through the real `fmps` binary: rows whose scores overflow the model
// (NaN and infinite scores), malformed and unlabelled lines given to `fmps predict`, fields that
// first appear late in a file, gradients that are not finite.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "tests/integration/process_util.h"
#include "tests/ps/temp_dir.h"

namespace fmps {
namespace {

using testing::JsonNumber;
using testing::LastLine;

const std::string kBinary = FMPS_BINARY;
const std::string kFrappe = std::string(FMPS_SHARED_DIR) + "/data/frappe";
constexpr double kTimeout = 60;  // per process; a hang fails the test instead of the suite

std::vector<std::string> ReadLines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

void WriteLines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream out(path);
  for (const std::string& l : lines) out << l << "\n";
}

// Writes the first `rows` rows of a Frappe file (libFM) to path.
bool FrappeRows(const std::string& from, size_t rows, const std::string& path) {
  std::vector<std::string> lines = ReadLines(kFrappe + "/" + from);
  if (lines.size() < rows) return false;
  lines.resize(rows);
  WriteLines(path, lines);
  return true;
}

// True when python3's json module parses `line` (skipped checks print why).
bool ParsesAsJson(const TempDir& dir, const std::string& line) {
  const std::string path = dir.File("line.json");
  WriteLines(path, {line});
  testing::RunResult r = testing::Run(
      "/usr/bin/python3", {"-c", "import json,sys; json.loads(open(sys.argv[1]).read())", path},
      dir.path(), kTimeout);
  return r.exit_code == 0;
}

// Every 4th test row with its values raised to 3e38: finite input whose scores overflow to inf
// and inf - inf. The AUC's tie scan compared with ==, false for NaN, and spun forever at 100% CPU
// in the scheduler and in `fmps predict`; the JSON line said "-nan".
TEST(UntrustedInputTest, ScoresThatOverflowEndTheJobAndPredictWithValidOutput) {
  TempDir dir;
  const std::string train = dir.File("train.libfm"), test = dir.File("test.libfm");
  ASSERT_TRUE(FrappeRows("frappe.test.libfm", 3000, train));
  std::vector<std::string> rows = ReadLines(kFrappe + "/frappe.validation.libfm");
  rows.resize(200);
  for (size_t i = 3; i < rows.size(); i += 4) {
    for (size_t at = 0; (at = rows[i].find(":1", at)) != std::string::npos;)
      rows[i].replace(at, 2, ":3e38");
  }
  WriteLines(test, rows);
  const std::string model_dir = dir.File("model");
  testing::RunResult r =
      testing::Run(kBinary,
                   {"train", "--data=" + train, "--test=" + test, "--format=libsvm", "--model=fwfm",
                    "--num_servers=1", "--num_workers=1", "--model_dir=" + model_dir},
                   dir.path(), kTimeout);
  ASSERT_EQ(r.exit_code, 0) << (r.exit_code == -1 ? "hung: killed\n" : "") << r.err;
  const std::string json = LastLine(r.out);
  EXPECT_TRUE(ParsesAsJson(dir, json)) << json;
  EXPECT_EQ(JsonNumber(json, "test_rows").value_or(-1), 200) << json;
  EXPECT_EQ(JsonNumber(json, "test_nonfinite_scores").value_or(-1), 50) << json;
  const double logloss = JsonNumber(json, "test_logloss").value_or(-1);
  EXPECT_TRUE(logloss > 0.3 && logloss < 0.7) << json;

  const std::string probs = dir.File("probs.txt");
  testing::RunResult p = testing::Run(
      kBinary, {"predict", "--model_dir=" + model_dir, "--data=" + test, "--out=" + probs},
      dir.path(), kTimeout);
  ASSERT_EQ(p.exit_code, 0) << (p.exit_code == -1 ? "hung: killed\n" : "") << p.err;
  std::vector<std::string> out = ReadLines(probs);
  ASSERT_EQ(out.size(), rows.size());
  for (size_t i = 0; i < out.size(); ++i) {
    if (i % 4 == 3) {
      EXPECT_EQ(out[i], "nan") << "line " << i + 1;
    } else {
      const double v = std::stod(out[i]);
      EXPECT_TRUE(v > 0 && v < 1) << "line " << i + 1 << ": " << out[i];
    }
  }
}

// Trains `data` (libFM, fwfm, one server and one worker in lockstep: deterministic) into
// dir/model_NAME and writes its predictions of `test` to dir/probs_NAME.txt; returns the JSON line.
std::string TrainAndPredict(const TempDir& dir, const std::string& name, const std::string& data,
                            const std::string& test) {
  const std::string model_dir = dir.File("model_" + name);
  testing::RunResult r =
      testing::Run(kBinary,
                   {"train", "--data=" + data, "--test=" + test, "--format=libsvm", "--model=fwfm",
                    "--num_servers=1", "--num_workers=1", "--max_delay=0", "--batch_size=500",
                    "--v_min_count=5", "--model_dir=" + model_dir},
                   dir.path(), kTimeout);
  EXPECT_EQ(r.exit_code, 0) << name << "\n" << r.err;
  testing::RunResult p = testing::Run(kBinary,
                                      {"predict", "--model_dir=" + model_dir, "--data=" + test,
                                       "--out=" + dir.File("probs_" + name + ".txt")},
                                      dir.path(), kTimeout);
  EXPECT_EQ(p.exit_code, 0) << name << "\n" << p.err;
  return LastLine(r.out);
}

// One minibatch of rows whose values (3e38) overflow the model makes its gradients NaN. Servers
// drop that push (and count it); before, the NaN reached the bias and every weight it touched,
// and the saved model predicted NaN for every row. The poisoned job's model predicts exactly as the
// job without those rows does (the dropped push is the only difference in lockstep).
TEST(UntrustedInputTest, APushWithNanGradientsNeverReachesTheModel) {
  TempDir dir;
  std::vector<std::string> rows = ReadLines(kFrappe + "/frappe.test.libfm");
  ASSERT_GE(rows.size(), 8000u);
  const std::vector<std::string> clean(rows.begin(), rows.begin() + 6000);
  std::vector<std::string> poisoned(clean.begin(), clean.begin() + 3000);
  for (size_t i = 6000; i < 6500; ++i) {  // one minibatch, starting at a minibatch boundary
    std::string row = rows[i];
    for (size_t at = 0; (at = row.find(":1", at)) != std::string::npos;)
      row.replace(at, 2, ":3e38");
    poisoned.push_back(row);
  }
  poisoned.insert(poisoned.end(), clean.begin() + 3000, clean.end());
  const std::vector<std::string> test(rows.begin() + 7000, rows.begin() + 8000);
  WriteLines(dir.File("clean.libfm"), clean);
  WriteLines(dir.File("poisoned.libfm"), poisoned);
  WriteLines(dir.File("test.libfm"), test);

  const std::string clean_json =
      TrainAndPredict(dir, "clean", dir.File("clean.libfm"), dir.File("test.libfm"));
  const std::string poisoned_json =
      TrainAndPredict(dir, "poisoned", dir.File("poisoned.libfm"), dir.File("test.libfm"));
  EXPECT_TRUE(ParsesAsJson(dir, clean_json)) << clean_json;
  EXPECT_TRUE(ParsesAsJson(dir, poisoned_json)) << poisoned_json;
  EXPECT_EQ(JsonNumber(clean_json, "nonfinite_pushes").value_or(-1), 0) << clean_json;
  EXPECT_EQ(JsonNumber(poisoned_json, "nonfinite_pushes").value_or(-1), 1) << poisoned_json;
  EXPECT_EQ(JsonNumber(poisoned_json, "rows").value_or(-1), 6500) << poisoned_json;
  EXPECT_EQ(JsonNumber(poisoned_json, "test_nonfinite_scores").value_or(-1), 0) << poisoned_json;
  EXPECT_EQ(JsonNumber(poisoned_json, "test_logloss").value_or(-1),
            JsonNumber(clean_json, "test_logloss").value_or(-2))
      << poisoned_json << "\n"
      << clean_json;

  const std::vector<std::string> clean_probs = ReadLines(dir.File("probs_clean.txt"));
  const std::vector<std::string> poisoned_probs = ReadLines(dir.File("probs_poisoned.txt"));
  ASSERT_EQ(clean_probs.size(), test.size());
  EXPECT_EQ(poisoned_probs, clean_probs);
  for (const std::string& p : poisoned_probs) {
    const double v = std::stod(p);
    ASSERT_TRUE(v > 0 && v < 1) << p;
  }
}

}  // namespace
}  // namespace fmps
