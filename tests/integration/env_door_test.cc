// The files outside checkpoints go through Env too: predict's output, an export file read back,
// --metrics_out and the host file. FaultEnv (tests/base/fault_env.h) fails them as a full or
// failing disk does; each error must name the file, and a failing --metrics_out must not stop
// training.
#include <glog/logging.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "launch/cluster.h"
#include "launch/predict.h"
#include "serving/model_export.h"
#include "serving/model_snapshot.h"
#include "tests/base/fault_env.h"
#include "tests/integration/data_util.h"
#include "tests/integration/process_util.h"
#include "tests/ps/temp_dir.h"

namespace fmps {
namespace {

constexpr uint64_t kTrainRows = 4000, kTestRows = 1000;

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

size_t CountLines(const std::string& path) {
  std::ifstream in(path);
  size_t lines = 0;
  for (std::string line; std::getline(in, line);) ++lines;
  return lines;
}

// Counts the ERROR lines logged (any thread) that contain `part`.
class ErrorCounter : public google::LogSink {
 public:
  explicit ErrorCounter(std::string part) : part_(std::move(part)) { google::AddLogSink(this); }
  ~ErrorCounter() override { google::RemoveLogSink(this); }
  using google::LogSink::send;
  void send(google::LogSeverity severity, const char*, const char*, int,
            const google::LogMessageTime&, const char* message, size_t size) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (severity == google::GLOG_ERROR && Contains(std::string(message, size), part_)) ++count_;
  }
  int count() {
    std::lock_guard<std::mutex> lock(mu_);
    return count_;
  }

 private:
  std::string part_;
  std::mutex mu_;
  int count_ = 0;
};

// One small job trained once (with a checkpoint and its export file) for every test here.
class EnvDoorTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    ASSERT_TRUE(testing::GenerateFile(Train(), kTrainRows, 1));
    ASSERT_TRUE(testing::GenerateFile(Test(), kTestRows, 2));
    SchedulerOptions job = Job();
    job.config.set_model_dir(ModelDir());
    Result<JobReport> report = RunInProcessCluster(job);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    clean_ = new JobReport(report.value());
    ExportOptions e;
    e.model_dir = ModelDir();
    e.out = ExportPath();
    Result<ExportSummary> exported = ExportModel(e);
    ASSERT_TRUE(exported.ok()) << exported.status().ToString();
  }
  static void TearDownTestSuite() {
    delete clean_;
    delete dir_;
  }
  static SchedulerOptions Job() {
    // One worker, one part, no pulling ahead: two runs train the same model.
    SchedulerOptions job = testing::SmallJob(Train(), Test());
    job.config.set_epochs(1);
    job.config.set_num_workers(1);
    job.config.set_pull_ahead_after(0);
    job.pool.part_bytes = uint64_t{1} << 30;
    return job;
  }
  static std::string Train() { return dir_->File("train.txt"); }
  static std::string Test() { return dir_->File("test.txt"); }
  static std::string ModelDir() { return dir_->File("model"); }
  static std::string ExportPath() { return dir_->File("model.fmps"); }

  static TempDir* dir_;
  static JobReport* clean_;  // the job without faults
};
TempDir* EnvDoorTest::dir_ = nullptr;
JobReport* EnvDoorTest::clean_ = nullptr;

TEST_F(EnvDoorTest, PredictOutputOnAFullDiskFailsNamingTheFile) {
  testing::FaultEnv env;
  PredictOptions o;
  o.model_dir = ModelDir();
  o.data = Test();
  o.env = &env;
  o.out = dir_->File("scores.txt");
  // Unarmed: every row's line arrives through the 64 KiB chunks.
  Result<PredictReport> clean = Predict(o);
  ASSERT_TRUE(clean.ok()) << clean.status().ToString();
  EXPECT_EQ(clean->rows, kTestRows);
  EXPECT_EQ(CountLines(o.out), kTestRows);

  env.Arm(testing::Fault::kNoSpace, "scores.txt");
  Result<PredictReport> full = Predict(o);
  ASSERT_FALSE(full.ok()) << "a full disk under --out must fail predict";
  EXPECT_EQ(env.hits(), 1) << "the first failed write ends it";
  const std::string& message = full.status().message();
  EXPECT_TRUE(Contains(message, o.out)) << message;
  EXPECT_TRUE(Contains(message, "No space left on device")) << message;
}

// The real binary on a device that is always full: exit code 1 and the reason, naming it.
TEST_F(EnvDoorTest, PredictToAFullDeviceExitsNonzeroNamingIt) {
  testing::RunResult r = testing::Run(
      FMPS_BINARY, {"predict", "--model_dir=" + ModelDir(), "--data=" + Test(), "--out=/dev/full"},
      dir_->path(), 60);
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(Contains(r.err, "cannot write /dev/full: No space left on device")) << r.err;
}

TEST_F(EnvDoorTest, AnExportFileThatCannotBeReadIsAnErrorNamingIt) {
  testing::FaultEnv env;
  Result<bool> is = IsExportFile(ExportPath(), &env);
  ASSERT_TRUE(is.ok() && is.value());
  Result<bool> is_dir = IsExportFile(ModelDir(), &env);
  ASSERT_TRUE(is_dir.ok() && !is_dir.value());
  ASSERT_TRUE(ModelSnapshot::Load(ExportPath(), &env).ok());

  // EIO at the first byte (its magic) and past the magic (its body): an error naming the file,
  // never "not an export file" and a search for manifests in it.
  for (const uint64_t ok_bytes : {uint64_t{0}, uint64_t{100}}) {
    SCOPED_TRACE("EIO after " + std::to_string(ok_bytes) + " bytes");
    env.Arm(testing::Fault::kReadEio, "model.fmps", ok_bytes);
    if (ok_bytes == 0) {
      Result<bool> failed = IsExportFile(ExportPath(), &env);
      ASSERT_FALSE(failed.ok());
      EXPECT_TRUE(Contains(failed.status().message(), ExportPath())) << failed.status().message();
    }
    Result<std::unique_ptr<ModelSnapshot>> loaded = ModelSnapshot::Load(ExportPath(), &env);
    ASSERT_FALSE(loaded.ok());
    const std::string& message = loaded.status().message();
    EXPECT_TRUE(Contains(message, "cannot read " + ExportPath() + ": Input/output error"))
        << message;
  }
}

// The figures' file is a record: when it cannot be written the job logs that once and trains on.
TEST_F(EnvDoorTest, AMetricsOutThatCannotBeWrittenIsLoggedOnceAndTrainingGoesOn) {
  testing::FaultEnv env;
  env.Arm(testing::Fault::kWriteEio, "metrics.jsonl");
  SchedulerOptions job = Job();
  job.metrics_out = dir_->File("metrics.jsonl");
  job.progress_every_s = 0.05;  // many lines would be written
  job.env = &env;
  ErrorCounter errors(job.metrics_out);
  Result<JobReport> report = RunInProcessCluster(job);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(env.hits(), 1) << "no write after the first failed one";
  EXPECT_EQ(errors.count(), 1) << "one error naming the file";
  EXPECT_EQ(report->rows, kTrainRows);
  EXPECT_EQ(report->test_rows, kTestRows);
  EXPECT_EQ(report->test_logloss, clean_->test_logloss) << "the model of the job without it";
}

TEST_F(EnvDoorTest, AHostFileThatCannotBeReadIsAnErrorNamingIt) {
  const std::string hosts = dir_->File("hosts");
  std::ofstream(hosts) << "node1\nuser@node2  # second\n";
  testing::FaultEnv env;
  Result<std::vector<std::string>> read = ReadHostFile(hosts, &env);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read.value(), (std::vector<std::string>{"node1", "user@node2"}));
  env.Arm(testing::Fault::kReadEio, "/hosts");
  Result<std::vector<std::string>> failed = ReadHostFile(hosts, &env);
  ASSERT_FALSE(failed.ok());
  EXPECT_TRUE(Contains(failed.status().message(), "cannot read " + hosts + ": Input/output error"))
      << failed.status().message();
}

}  // namespace
}  // namespace fmps
