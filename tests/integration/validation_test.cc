// Validation during training and early stopping, through the real `fmps` binary: held-out rows
// are counted and never trained on, the per-epoch figures of the JSON report agree with the
// progress lines, and early stopping saves the best model, not the last.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "data/reader.h"
#include "models/metrics.h"
#include "tests/integration/process_util.h"
#include "tests/ps/temp_dir.h"

namespace fmps {
namespace {

using testing::JsonNumber;
using testing::LastLine;

const std::string kBinary = FMPS_BINARY;
const std::string kCriteo = std::string(FMPS_SHARED_DIR) + "/data/criteo-8k";
constexpr double kTimeout = 120;

std::vector<std::string> Lines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

// The objects of the report's "epochs" array, as flat JSON strings.
std::vector<std::string> EpochObjects(const std::string& json) {
  std::vector<std::string> out;
  size_t at = json.find("\"epochs\":[");
  if (at == std::string::npos) return out;
  size_t end = json.find(']', at);
  for (size_t open = json.find('{', at); open < end; open = json.find('{', open + 1))
    out.push_back(json.substr(open, json.find('}', open) - open + 1));
  return out;
}

struct ProgressFigures {
  std::string train_logloss, val_logloss, val_auc, val_rows;
};
// The scheduler's evaluation lines: "epoch N: ... train_logloss X, val_logloss Y, val_auc Z (R
// rows)".
std::map<int, ProgressFigures> EvaluationLines(const std::string& err) {
  std::map<int, ProgressFigures> out;
  std::regex re(
      "epoch ([0-9]+): [0-9]+ rows in [^,]*, train_logloss ([0-9.]+), val_logloss ([0-9.]+), "
      "val_auc ([0-9.]+) \\(([0-9]+) rows\\)");
  for (auto it = std::sregex_iterator(err.begin(), err.end(), re); it != std::sregex_iterator();
       ++it) {
    out[std::stoi((*it)[1])] = {(*it)[2], (*it)[3], (*it)[4], (*it)[5]};
  }
  return out;
}

// The text of a JSON number field as the report prints it (for comparing with the log's text).
std::string JsonText(const std::string& json, const std::string& name) {
  size_t at = json.find("\"" + name + "\":");
  if (at == std::string::npos) return "";
  at += name.size() + 3;
  return json.substr(at, json.find_first_of(",}", at) - at);
}

TEST(ValidationTest, HoldoutRowsAreCountedNeverTrainedOnAndScoredEveryEpoch) {
  TempDir dir;
  const std::string train = kCriteo + "/train.txt";
  const double fraction = 0.2;
  uint64_t rows = 0, held = 0;
  for (const std::string& line : Lines(train)) {
    ++rows;
    held += IsHoldoutLine(line, fraction);
  }
  ASSERT_GT(held, rows / 10);
  ASSERT_LT(held, rows / 3);
  // Several parts per pass, so held-out rows are counted over many readers.
  testing::RunResult r = testing::Run(kBinary,
                                      {"train", "--data=" + train, "--holdout=0.2", "--epochs=3",
                                       "--part_mb=0.3", "--progress_every=100"},
                                      dir.path(), kTimeout);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string json = LastLine(r.out);
  // Every epoch trains on exactly the rows not held out.
  EXPECT_EQ(JsonNumber(json, "rows").value_or(-1), 3.0 * static_cast<double>(rows - held)) << json;
  EXPECT_EQ(JsonNumber(json, "holdout_rows").value_or(-1), static_cast<double>(held)) << json;
  const std::vector<std::string> epochs = EpochObjects(json);
  ASSERT_EQ(epochs.size(), 3u) << json;
  const std::map<int, ProgressFigures> lines = EvaluationLines(r.err);
  ASSERT_EQ(lines.size(), 3u) << r.err;
  for (int e = 1; e <= 3; ++e) {
    const std::string& f = epochs[e - 1];
    SCOPED_TRACE(f);
    EXPECT_EQ(JsonNumber(f, "epoch").value_or(-1), e);
    EXPECT_EQ(JsonNumber(f, "rows").value_or(-1), static_cast<double>(rows - held));
    EXPECT_EQ(JsonNumber(f, "val_rows").value_or(-1), static_cast<double>(held));
    EXPECT_GT(JsonNumber(f, "seconds").value_or(-1), 0);
    EXPECT_GT(JsonNumber(f, "rows_per_s").value_or(-1), 0);
    const double val = JsonNumber(f, "val_logloss").value_or(-1);
    EXPECT_GT(val, 0.3);
    EXPECT_LT(val, 0.7);
    EXPECT_GT(JsonNumber(f, "val_auc").value_or(-1), 0.5);
    // The progress line of the epoch says the same, digit for digit.
    const ProgressFigures& p = lines.at(e);
    EXPECT_EQ(p.train_logloss, JsonText(f, "train_logloss"));
    EXPECT_EQ(p.val_logloss, JsonText(f, "val_logloss"));
    EXPECT_EQ(p.val_auc, JsonText(f, "val_auc"));
    EXPECT_EQ(p.val_rows, JsonText(f, "val_rows"));
  }
  EXPECT_EQ(JsonNumber(json, "stopped_early").value_or(-1), -1);  // a boolean, not a number
  EXPECT_NE(json.find("\"stopped_early\":false"), std::string::npos) << json;
}

// One pass (a long streaming job): --validate_every scores the model during the epoch too; the
// evaluations' training rows add up to the epoch's.
TEST(ValidationTest, ValidateEveryScoresDuringAnEpoch) {
  TempDir dir;
  const std::string train = kCriteo + "/train.txt";
  uint64_t rows = 0, held = 0;
  for (const std::string& line : Lines(train)) {
    ++rows;
    held += IsHoldoutLine(line, 0.2);
  }
  // Small parts and minibatches, so that a worker holds few rows when training pauses.
  testing::RunResult r =
      testing::Run(kBinary,
                   {"train", "--data=" + train, "--holdout=0.2", "--validate_every=2000",
                    "--part_mb=0.1", "--batch_size=100", "--progress_every=100"},
                   dir.path(), kTimeout);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string json = LastLine(r.out);
  const std::vector<std::string> evaluations = EpochObjects(json);
  ASSERT_GE(evaluations.size(), 2u) << json;
  ASSERT_LE(evaluations.size(), 3u) << json;
  double trained = 0;
  for (size_t i = 0; i < evaluations.size(); ++i) {
    const std::string& f = evaluations[i];
    SCOPED_TRACE(f);
    const bool last = i + 1 == evaluations.size();
    EXPECT_NE(f.find(last ? "\"epoch_end\":true" : "\"epoch_end\":false"), std::string::npos);
    EXPECT_EQ(JsonNumber(f, "epoch").value_or(-1), 1);
    EXPECT_EQ(JsonNumber(f, "val_rows").value_or(-1), static_cast<double>(held));
    if (!last) {
      EXPECT_GE(JsonNumber(f, "rows").value_or(-1), 2000);
    }
    trained += JsonNumber(f, "rows").value_or(-1);
  }
  EXPECT_EQ(trained, static_cast<double>(rows - held));
  EXPECT_EQ(EvaluationLines(r.err).size(), 1u);  // the lines are keyed by epoch: one epoch
}

TEST(ValidationTest, WithoutValidationTheEpochsCarryTrainingFiguresOnly) {
  TempDir dir;
  testing::RunResult r = testing::Run(
      kBinary, {"train", "--data=" + kCriteo + "/train.txt", "--epochs=2", "--progress_every=100"},
      dir.path(), kTimeout);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string json = LastLine(r.out);
  const std::vector<std::string> epochs = EpochObjects(json);
  ASSERT_EQ(epochs.size(), 2u) << json;
  for (const std::string& f : epochs) {
    EXPECT_NE(f.find("\"val_logloss\":null"), std::string::npos) << f;
    EXPECT_GT(JsonNumber(f, "train_logloss").value_or(-1), 0) << f;
  }
  EXPECT_EQ(JsonNumber(json, "holdout_rows").value_or(-1), 0) << json;
}

TEST(ValidationTest, EarlyStopNeedsValidationData) {
  TempDir dir;
  testing::RunResult r =
      testing::Run(kBinary, {"train", "--data=" + kCriteo + "/train.txt", "--early_stop=2"},
                   dir.path(), kTimeout);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--validation=FILE or --holdout"), std::string::npos) << r.err;
}

// With early stopping and no --epochs, the bound is 30 epochs, not the default 1.
TEST(ValidationTest, EarlyStopWithoutEpochsRunsUntilItStops) {
  TempDir dir;
  testing::RunResult r = testing::Run(kBinary,
                                      {"train", "--data=" + kCriteo + "/train.txt", "--holdout=0.2",
                                       "--early_stop=1", "--progress_every=100"},
                                      dir.path(), kTimeout);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string json = LastLine(r.out);
  const size_t evaluations = EpochObjects(json).size();
  EXPECT_GE(evaluations, 2u) << json;
  EXPECT_TRUE(json.find("\"stopped_early\":true") != std::string::npos || evaluations == 30)
      << json;
}

// fmps tune scores its trials on a holdout of the training data: --test is a FIFO nobody writes,
// so opening it would block the job (and the test would time out). Its flagfile trains.
TEST(ValidationTest, TuneNeverOpensTheTestFileAndItsFlagfileTrains) {
  TempDir dir;
  const std::string fifo = dir.File("test.fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::string train = kCriteo + "/train.txt";
  testing::RunResult tune =
      testing::Run(kBinary, {"tune", "--data=" + train, "--test=" + fifo, "--tune_budget_s=5"},
                   dir.path(), kTimeout);
  ASSERT_EQ(tune.exit_code, 0) << tune.err;
  for (const char* searched : {"--v_l2=", "--dense_lr=", "--v_lr=", "--v_init_scale=", "--ftrl_l1=",
                               "--ftrl_alpha=", "--batch_size="})
    EXPECT_NE(tune.out.find(searched), std::string::npos)
        << searched << " missing from " << tune.out;
  const size_t at = tune.out.find("--epochs=");
  ASSERT_NE(at, std::string::npos) << tune.out;
  const int epochs = std::stoi(tune.out.substr(at + 9));
  ASSERT_GE(epochs, 1);
  const std::string flagfile = dir.File("best.flags");
  std::ofstream(flagfile) << tune.out;
  testing::RunResult r = testing::Run(
      kBinary, {"train", "--flagfile=" + flagfile, "--data=" + train, "--progress_every=100"},
      dir.path(), kTimeout);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(EpochObjects(LastLine(r.out)).size(), static_cast<size_t>(epochs)) << r.out;
}

// Logloss of the model saved in model_dir on `data` (offline, through fmps predict).
double SavedModelLogLoss(const TempDir& dir, const std::string& model_dir,
                         const std::string& data) {
  const std::string probs = dir.File("probs.txt");
  testing::RunResult pred = testing::Run(
      kBinary, {"predict", "--model_dir=" + model_dir, "--data=" + data, "--out=" + probs},
      dir.path(), kTimeout);
  EXPECT_EQ(pred.exit_code, 0) << pred.err;
  std::vector<float> p, labels;
  std::ifstream in(probs);
  for (float v; in >> v;) p.push_back(v);
  for (const std::string& line : Lines(data)) labels.push_back(line[0] == '1' ? 1.f : 0.f);
  EXPECT_EQ(p.size(), labels.size());
  if (p.size() != labels.size()) return -1;
  return LogLoss(labels, p);
}

TEST(ValidationTest, EarlyStopSavesTheBestModelNotTheLast) {
  TempDir dir;
  // Criteo-8k (7,200 rows) with an embedding for every feature and no L1: the validation logloss
  // is lowest after epoch 2 (.4926) and rises after it as the model overfits (.5187, .5331).
  // Every setting is given, so that changes of the defaults leave the job as it is; one worker,
  // synchronous, so the run is the same every time.
  const std::string model_dir = dir.File("model");
  const std::string validation = kCriteo + "/test.txt";
  testing::RunResult r = testing::Run(kBinary,
                                      {"train",
                                       "--data=" + kCriteo + "/train.txt",
                                       "--validation=" + validation,
                                       "--early_stop=2",
                                       "--epochs=12",
                                       "--model_dir=" + model_dir,
                                       "--num_workers=1",
                                       "--num_servers=2",
                                       "--max_delay=0",
                                       "--batch_size=1000",
                                       "--v_min_count=0",
                                       "--rank_mid_count=0",
                                       "--rank_head_count=0",
                                       "--min_count=1",
                                       "--ftrl_l1=0",
                                       "--ftrl_alpha=0.05",
                                       "--ftrl_l2=1",
                                       "--v_lr=0.05",
                                       "--v_init_scale=0.01",
                                       "--v_l2=0.0001",
                                       "--progress_every=100"},
                                      dir.path(), kTimeout);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string json = LastLine(r.out);
  const std::vector<std::string> epochs = EpochObjects(json);
  const int best = static_cast<int>(JsonNumber(json, "best_epoch").value_or(-1));
  // The loss rose after epoch 2: two more ran, then training stopped.
  ASSERT_EQ(best, 2) << json;
  ASSERT_EQ(static_cast<int>(epochs.size()), best + 2) << json;
  EXPECT_NE(json.find("\"stopped_early\":true"), std::string::npos) << json;
  const double best_val = JsonNumber(epochs[best - 1], "val_logloss").value_or(-1);
  const double last_val = JsonNumber(epochs.back(), "val_logloss").value_or(-1);
  ASSERT_GT(last_val, best_val + 0.005) << json;
  EXPECT_EQ(JsonNumber(json, "best_val_logloss").value_or(-1), best_val) << json;
  // The saved model is the best one: it scores the best epoch's validation logloss.
  EXPECT_NEAR(SavedModelLogLoss(dir, model_dir, validation), best_val, 2e-4) << json;
}

}  // namespace
}  // namespace fmps
