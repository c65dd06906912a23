// A model's life after training, with real `fmps` processes: resumed on another number of
// servers (re-sharding), retrained day after day while `fmps serve` answers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
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
const std::string kCriteo = std::string(FMPS_SHARED_DIR) + "/data/criteo-8k";
constexpr double kTimeout = 90;  // per process; a hang fails the test instead of the suite

// One worker, synchronous: a job's updates arrive in one order, so two runs of it are equal.
std::vector<std::string> JobFlags(const std::string& model_dir, int servers, int epochs) {
  return {"train",
          "--data=" + kCriteo + "/train.txt",
          "--test=" + kCriteo + "/test.txt",
          "--model=fwfm",
          "--k=4",
          "--v_min_count=5",
          "--rank_mid_count=10",
          "--rank_head_count=20",
          "--num_workers=1",
          "--max_delay=0",
          "--num_servers=" + std::to_string(servers),
          "--epochs=" + std::to_string(epochs),
          "--model_dir=" + model_dir};
}

// Runs `fmps train` and returns its JSON line (fails the test on a non-zero exit).
std::string Train(const TempDir& dir, std::vector<std::string> args) {
  testing::RunResult r = testing::Run(kBinary, args, dir.path(), kTimeout);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return LastLine(r.out);
}

std::string Predict(const TempDir& dir, const std::string& model, const std::string& name) {
  const std::string out = dir.File(name);
  testing::RunResult r =
      testing::Run(kBinary,
                   {"predict", "--model_dir=" + model, "--data=" + kCriteo + "/test.txt",
                    "--out=" + out},
                   dir.path(), kTimeout);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return testing::ReadText(out);
}

void CopyDir(const std::string& from, const std::string& to) {
  std::filesystem::copy(from, to, std::filesystem::copy_options::recursive);
}

// Shard files of one checkpoint version in dir.
int ShardsOf(const std::string& dir, int version) {
  char prefix[32];
  std::snprintf(prefix, sizeof(prefix), "shard-%06d-", version);
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    n += e.path().filename().string().rfind(prefix, 0) == 0;
  return n;
}

// A model trained on 1 server, resumed on 3 (no epoch left: load, test pass, save), then on 2,
// predicts exactly what it predicted before: every key with its state reached the server that
// owns it now, and none was lost or doubled. Before re-sharding the resumed jobs were refused
// ("holds a model of 1 servers; this job has 3").
TEST(LifecycleTest, ResumeOnAnotherNumberOfServersPredictsExactlyTheSame) {
  TempDir dir;
  const std::string one = dir.File("one"), three = dir.File("three"), two = dir.File("two");
  Train(dir, JobFlags(one, 1, 1));
  const std::string before = Predict(dir, one, "one.txt");
  ASSERT_EQ(std::count(before.begin(), before.end(), '\n'), 391) << before.substr(0, 200);

  CopyDir(one, three);
  std::vector<std::string> resume = JobFlags(three, 3, 1);
  resume.push_back("--resume");
  Train(dir, resume);
  ASSERT_EQ(ShardsOf(three, 2), 3) << "the resumed job wrote no checkpoint of 3 servers";
  EXPECT_EQ(Predict(dir, three, "three.txt"), before);

  CopyDir(three, two);
  resume = JobFlags(two, 2, 1);
  resume.push_back("--resume");
  Train(dir, resume);
  ASSERT_EQ(ShardsOf(two, 3), 2) << "the resumed job wrote no checkpoint of 2 servers";
  EXPECT_EQ(Predict(dir, two, "two.txt"), before);
}

// Training resumed on 3 servers continues as it would have on the 1 it started on: the optimizer
// state (FTRL z and n, counts, Adagrad accumulators, the dense block's) moved with the keys. With
// one synchronous worker a run has no spread, so the two continuations agree to rounding.
TEST(LifecycleTest, ResumedOnMoreServersTrainingContinuesToTheSameLoss) {
  TempDir dir;
  const std::string first = dir.File("first");
  const std::string after_first = Train(dir, JobFlags(first, 1, 1));
  const double first_loss = JsonNumber(after_first, "test_logloss").value_or(-1);
  const std::string same = dir.File("same"), more = dir.File("more");
  CopyDir(first, same);
  CopyDir(first, more);
  std::vector<std::string> on_one = JobFlags(same, 1, 2), on_three = JobFlags(more, 3, 2);
  on_one.push_back("--resume");
  on_three.push_back("--resume");
  const std::string json_one = Train(dir, on_one), json_three = Train(dir, on_three);
  const double loss_one = JsonNumber(json_one, "test_logloss").value_or(-1);
  const double loss_three = JsonNumber(json_three, "test_logloss").value_or(-2);
  // The second epoch was trained (it moved the loss), and both continuations agree.
  EXPECT_EQ(JsonNumber(json_one, "rows").value_or(-1), JsonNumber(json_three, "rows").value_or(-2))
      << json_one << "\n" << json_three;
  EXPECT_GT(std::abs(loss_one - first_loss), 1e-4) << json_one << "\n" << after_first;
  EXPECT_NEAR(loss_three, loss_one, 1e-5) << json_one << "\n" << json_three;
}

}  // namespace
}  // namespace fmps
