// Input a job cannot trust, through the real `fmps` binary: rows whose scores overflow the model
// (NaN and infinite scores), malformed and unlabelled lines given to `fmps predict`, fields that
// first appear late in a file, gradients that are not finite.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
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
const std::string kCriteo = std::string(FMPS_SHARED_DIR) + "/data/criteo-8k";
const std::string kAvazu = std::string(FMPS_SHARED_DIR) + "/data/avazu-8k";
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

// Trains a small model of `format` on `data` into dir/NAME (one server, one worker).
void TrainModel(const TempDir& dir, const std::string& name, const std::string& data,
                const std::string& format) {
  testing::RunResult r =
      testing::Run(kBinary,
                   {"train", "--data=" + data, "--format=" + format, "--num_servers=1",
                    "--num_workers=1", "--model_dir=" + dir.File(name)},
                   dir.path(), kTimeout);
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

// `fmps predict` of `data` with the model dir/NAME into dir/OUT; returns the run (output lines
// in *lines).
testing::RunResult Predict(const TempDir& dir, const std::string& name, const std::string& data,
                           const std::string& out, std::vector<std::string>* lines,
                           const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args{"predict", "--model_dir=" + dir.File(name), "--data=" + data,
                                "--out=" + dir.File(out)};
  args.insert(args.end(), extra.begin(), extra.end());
  testing::RunResult r = testing::Run(kBinary, args, dir.path(), kTimeout);
  *lines = ReadLines(dir.File(out));
  return r;
}

// "One probability per line, in order": 2,000 lines of which 400 cannot be scored give 2,000
// output lines, nan where the bad ones stand and the clean file's probabilities everywhere else.
// Before, bad lines were skipped: 1,600 lines, exit 0, every line after the first bad one
// belonging to another input line. Over --max_bad_lines, an error; a binary file or an empty one
// (nothing to score) is an error, not 0 lines with exit 0.
TEST(UntrustedInputTest, PredictWritesOneLinePerInputLineAndNanForBadOnes) {
  TempDir dir;
  ASSERT_NO_FATAL_FAILURE(TrainModel(dir, "model", kCriteo + "/train.txt", "criteo"));
  const std::vector<std::string> rows = ReadLines(kCriteo + "/train.txt");
  ASSERT_GE(rows.size(), 1600u);
  const std::vector<std::string> clean(rows.begin(), rows.begin() + 1600);
  const std::vector<std::string> bad_kinds = {"this is not a criteo row",
                                              "7" + clean[0].substr(1),
                                              "",
                                              "1\t2\t3",
                                              std::string("\x7f"
                                                          "ELF\x02\x01\x01\0\0",
                                                          9),
                                              "1" + std::string(45, '\t')};
  std::vector<std::string> mixed;
  std::vector<bool> is_bad;
  for (size_t i = 0, good = 0; i < 2000; ++i) {
    const bool bad = i % 5 == 2;
    mixed.push_back(bad ? bad_kinds[i % bad_kinds.size()] : clean[good++]);
    is_bad.push_back(bad);
  }
  WriteLines(dir.File("clean.txt"), clean);
  WriteLines(dir.File("mixed.txt"), mixed);

  std::vector<std::string> clean_probs, mixed_probs;
  testing::RunResult c = Predict(dir, "model", dir.File("clean.txt"), "clean.out", &clean_probs);
  ASSERT_EQ(c.exit_code, 0) << c.err;
  ASSERT_EQ(clean_probs.size(), 1600u);
  testing::RunResult m = Predict(dir, "model", dir.File("mixed.txt"), "mixed.out", &mixed_probs);
  ASSERT_EQ(m.exit_code, 0) << m.err;
  ASSERT_EQ(mixed_probs.size(), 2000u);
  for (size_t i = 0, good = 0; i < mixed.size(); ++i) {
    if (is_bad[i]) {
      EXPECT_EQ(mixed_probs[i], "nan") << "line " << i + 1;
    } else {
      EXPECT_EQ(mixed_probs[i], clean_probs[good++]) << "line " << i + 1;
    }
  }
  EXPECT_NE(m.err.find("400 of 2000 lines could not be scored"), std::string::npos) << m.err;
  EXPECT_NE(m.err.find("mixed.txt:3: "), std::string::npos) << m.err;  // FILE:LINE: reason

  std::vector<std::string> ignored;
  testing::RunResult over =
      Predict(dir, "model", dir.File("mixed.txt"), "over.out", &ignored, {"--max_bad_lines=399"});
  EXPECT_NE(over.exit_code, 0);
  EXPECT_NE(over.exit_code, -1) << "timed out";
  EXPECT_NE(over.err.find("more than 399 malformed lines (--max_bad_lines)"), std::string::npos)
      << over.err;
  testing::RunResult binary = Predict(dir, "model", "/bin/ls", "ls.out", &ignored);
  EXPECT_NE(binary.exit_code, 0);
  EXPECT_NE(binary.exit_code, -1) << "timed out";
  EXPECT_NE(binary.err.find("/bin/ls: none of its"), std::string::npos) << binary.err;
  WriteLines(dir.File("empty.txt"), {});
  testing::RunResult empty = Predict(dir, "model", dir.File("empty.txt"), "empty.out", &ignored);
  EXPECT_NE(empty.exit_code, 0);
  EXPECT_NE(empty.err.find("holds no rows to score"), std::string::npos) << empty.err;
}

// Rows without a label are what one usually scores: Criteo's 39 columns, libffm/libsvm lines that
// start with a pair, Avazu without the click column. Each scores exactly as its labelled twin.
// Before, every one was a bad line: 0 output lines, exit 0.
TEST(UntrustedInputTest, UnlabelledRowsScoreAsTheirLabelledTwins) {
  TempDir dir;
  const std::vector<std::string> criteo = ReadLines(kCriteo + "/test.txt");
  // libffm from the Criteo rows: field = column - 1, the column's text the feature.
  std::vector<std::string> libffm;
  for (const std::string& row : criteo) {
    std::string line = row.substr(0, 1);
    size_t start = 2;
    for (int field = 0; field < 39; ++field) {
      const size_t end = std::min(row.find('\t', start), row.size());
      if (end > start)
        line += " " + std::to_string(field) + ":" + row.substr(start, end - start) + ":1";
      start = end + 1;
    }
    libffm.push_back(line);
  }
  WriteLines(dir.File("train.libffm"), libffm);
  const std::vector<std::string> libsvm = ReadLines(kFrappe + "/frappe.test.libfm");
  WriteLines(dir.File("train.libsvm"),
             std::vector<std::string>(libsvm.begin(), libsvm.begin() + 3000));
  struct Case {
    std::string format, train;
    std::vector<std::string> labelled;
    // The line without its label (Avazu: without the click column, the second).
    std::function<std::string(const std::string&)> drop_label;
  };
  auto after_first = [](char sep) {
    return [sep](const std::string& l) { return l.substr(l.find(sep) + 1); };
  };
  std::vector<std::string> avazu = ReadLines(kAvazu + "/test.csv");
  avazu.resize(300);
  const std::vector<Case> cases = {
      {"criteo", kCriteo + "/train.txt",
       std::vector<std::string>(criteo.begin(), criteo.begin() + 300), after_first('\t')},
      {"libffm", dir.File("train.libffm"),
       std::vector<std::string>(libffm.begin(), libffm.begin() + 300), after_first(' ')},
      {"libsvm", dir.File("train.libsvm"),
       std::vector<std::string>(libsvm.begin() + 5000, libsvm.begin() + 5300), after_first(' ')},
      {"avazu", kAvazu + "/train.csv", avazu,
       [](const std::string& l) {
         const size_t a = l.find(','), b = l.find(',', a + 1);
         return l.substr(0, a) + l.substr(b);
       }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.format);
    ASSERT_NO_FATAL_FAILURE(TrainModel(dir, "model_" + c.format, c.train, c.format));
    std::vector<std::string> unlabelled;
    for (const std::string& l : c.labelled) unlabelled.push_back(c.drop_label(l));
    if (c.format == "avazu") {  // headers say which columns there are
      std::vector<std::string> with = c.labelled, without = unlabelled;
      with.insert(with.begin(), "id,click,hour,C1,banner_pos,site_id,...");
      without.insert(without.begin(), "id,hour,C1,banner_pos,site_id,...");
      WriteLines(dir.File("labelled." + c.format), with);
      WriteLines(dir.File("unlabelled." + c.format), without);
    } else {
      WriteLines(dir.File("labelled." + c.format), c.labelled);
      WriteLines(dir.File("unlabelled." + c.format), unlabelled);
    }
    std::vector<std::string> with_labels, without_labels;
    testing::RunResult a = Predict(dir, "model_" + c.format, dir.File("labelled." + c.format),
                                   "labelled.out", &with_labels);
    ASSERT_EQ(a.exit_code, 0) << a.err;
    testing::RunResult b = Predict(dir, "model_" + c.format, dir.File("unlabelled." + c.format),
                                   "unlabelled.out", &without_labels);
    ASSERT_EQ(b.exit_code, 0) << b.err;
    ASSERT_EQ(with_labels.size(), c.labelled.size());
    EXPECT_EQ(without_labels, with_labels);
    EXPECT_EQ(std::count(with_labels.begin(), with_labels.end(), "nan"), 0);
  }
}

}  // namespace
}  // namespace fmps
