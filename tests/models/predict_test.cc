// `fmps predict` for every model: train each model briefly on generated data with --model_dir (a
// local cluster of 2 servers and 2 workers, --inprocess to keep it fast), then score the test file
// offline from the checkpoint and check one probability per test row whose logloss equals the job's
// JSON test_logloss. This catches a model whose checkpoint lacks a part of its state (dense block,
// masks, RaFM widths, FFM's per-field blocks) or whose offline scoring differs from the workers'.
#include <stdlib.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace fmps {
namespace {

const std::string kBinary = FMPS_BINARY;

std::string ShellQuote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs `fmps args...` with stdout to out_path and stderr to err_path; returns the exit code.
int RunFmps(const std::vector<std::string>& args, const std::string& out_path,
            const std::string& err_path) {
  std::string cmd = "timeout 60 " + ShellQuote(kBinary);
  for (const std::string& a : args) cmd += " " + ShellQuote(a);
  cmd += " >" + ShellQuote(out_path) + " 2>" + ShellQuote(err_path);
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string LastJsonLine(const std::string& text) {
  std::istringstream in(text);
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty() && line.front() == '{') last = line;
  }
  return last;
}

// The number after "name": in a flat JSON object.
std::optional<double> JsonNumber(const std::string& json, const std::string& name) {
  const size_t at = json.find("\"" + name + "\":");
  if (at == std::string::npos) return std::nullopt;
  const char* begin = json.c_str() + at + name.size() + 3;
  char* end = nullptr;
  const double v = std::strtod(begin, &end);
  if (end == begin) return std::nullopt;
  return v;
}

class PredictTest : public ::testing::TestWithParam<std::vector<std::string>> {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/fmps_predict_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    // Criteo format (39 fields) from a planted FwFM; train and test share the planted model.
    ASSERT_EQ(RunFmps({"gen", "--rows=3000", "--seed=1", "--model_seed=7", "--planted=fwfm"},
                      dir_ + "/train", dir_ + "/gen.err"),
              0)
        << ReadText(dir_ + "/gen.err");
    ASSERT_EQ(RunFmps({"gen", "--rows=800", "--seed=2", "--model_seed=7", "--planted=fwfm"},
                      dir_ + "/test", dir_ + "/gen.err"),
              0)
        << ReadText(dir_ + "/gen.err");
    std::ifstream in(dir_ + "/test");
    std::string line;
    labels_.clear();
    while (std::getline(in, line)) labels_.push_back(line.empty() || line[0] != '1' ? 0.0 : 1.0);
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  static std::string dir_;
  static std::vector<double> labels_;
};
std::string PredictTest::dir_;
std::vector<double> PredictTest::labels_;

TEST_P(PredictTest, ScoresTheTestFileLikeTheJob) {
  const std::vector<std::string>& model_flags = GetParam();
  std::string name = model_flags[0].substr(8);  // after --model=
  const std::string model_dir = dir_ + "/model_" + name, out = dir_ + "/" + name;
  // Every feature gets a full embedding, so predict must read real embedding rows (RaFM: rows of
  // several widths); no L1, so w is not all zero.
  std::vector<std::string> args = {"train",
                                   "--data=" + dir_ + "/train",
                                   "--test=" + dir_ + "/test",
                                   "--format=criteo",
                                   "--k=4",
                                   "--epochs=2",
                                   "--batch_size=200",
                                   "--v_min_count=0",
                                   "--rank_mid_count=0",
                                   "--rank_head_count=0",
                                   "--ftrl_l1=0",
                                   "--v_init_scale=0.1",
                                   "--inprocess",
                                   "--model_dir=" + model_dir};
  args.insert(args.end(), model_flags.begin(), model_flags.end());
  ASSERT_EQ(RunFmps(args, out + ".train.out", out + ".train.err"), 0)
      << ReadText(out + ".train.err");
  const std::string json = LastJsonLine(ReadText(out + ".train.out"));
  ASSERT_FALSE(json.empty()) << ReadText(out + ".train.err");
  const std::optional<double> job_logloss = JsonNumber(json, "test_logloss");
  ASSERT_TRUE(job_logloss.has_value()) << json;
  EXPECT_GT(JsonNumber(json, "embedding_floats").value_or(0), 0) << json;

  ASSERT_EQ(RunFmps({"predict", "--model_dir=" + model_dir, "--data=" + dir_ + "/test",
                     "--out=" + out + ".probs"},
                    out + ".predict.out", out + ".predict.err"),
            0)
      << ReadText(out + ".predict.err");
  std::ifstream in(out + ".probs");
  std::vector<double> probs;
  std::string line;
  while (std::getline(in, line)) probs.push_back(std::strtod(line.c_str(), nullptr));
  ASSERT_EQ(probs.size(), labels_.size());
  double logloss = 0, lo = 1, hi = 0;
  for (size_t r = 0; r < probs.size(); ++r) {
    ASSERT_TRUE(probs[r] > 0 && probs[r] < 1) << "row " << r << ": " << probs[r];
    lo = std::min(lo, probs[r]);
    hi = std::max(hi, probs[r]);
    logloss -= labels_[r] > 0.5 ? std::log(probs[r]) : std::log1p(-probs[r]);
  }
  logloss /= double(probs.size());
  EXPECT_NEAR(logloss, *job_logloss, 1e-4) << json;
  EXPECT_GT(hi - lo, 0.1) << "the model scores every row alike";
}

INSTANTIATE_TEST_SUITE_P(
    EveryModel, PredictTest,
    ::testing::Values(std::vector<std::string>{"--model=fm"},
                      std::vector<std::string>{"--model=fwfm"},
                      std::vector<std::string>{"--model=dplr", "--rank=2"},
                      // Progress reaches the servers per finished part, so the mask really prunes.
                      std::vector<std::string>{"--model=pruned_fwfm", "--keep=0.3",
                                               "--progress_every=0.01", "--part_mb=0.1"},
                      std::vector<std::string>{"--model=rafm", "--rafm_ranks=2,4"},
                      std::vector<std::string>{"--model=ffm"}),
    [](const ::testing::TestParamInfo<std::vector<std::string>>& info) {
      return info.param[0].substr(8);
    });

}  // namespace
}  // namespace fmps
