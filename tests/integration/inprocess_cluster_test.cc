// A whole job as threads (RunInProcessCluster: scheduler, 2 servers, 2 workers over the
// in-process transport) on generated data: it must learn, and count every training row.
#include <gtest/gtest.h>

#include "launch/cluster.h"
#include "ps/checkpoint.h"
#include "tests/base/fault_env.h"
#include "tests/integration/data_util.h"
#include "tests/ps/temp_dir.h"

namespace fmps {
namespace {

// The job config `fmps train` builds from its default flags.
SchedulerOptions DefaultJob(const std::string& train, const std::string& test) {
  return testing::SmallJob(train, test);
}

// Generated train (seed 1) and test (seed 2) files in a temporary directory, with their labels
// counted.
struct TrainTest {
  TempDir dir;
  std::string train = dir.File("train.txt"), test = dir.File("test.txt");
  testing::LabelStats train_stats, test_stats;
};
void Generate(uint64_t train_rows, uint64_t test_rows, TrainTest* data) {
  ASSERT_TRUE(testing::GenerateFile(data->train, train_rows, 1));
  ASSERT_TRUE(testing::GenerateFile(data->test, test_rows, 2));
  data->train_stats = testing::CountLabels(data->train);
  data->test_stats = testing::CountLabels(data->test);
  ASSERT_EQ(data->train_stats.rows, train_rows);
  ASSERT_EQ(data->test_stats.rows, test_rows);
}

TEST(InProcessClusterTest, LearnsPlantedModelAndCountsEveryRow) {
  TrainTest data;
  ASSERT_NO_FATAL_FAILURE(Generate(20000, 4000, &data));
  const std::string &train = data.train, &test = data.test;
  const testing::LabelStats &train_stats = data.train_stats, &test_stats = data.test_stats;

  // The default job (pull_ahead_after 100: never reached by 40 minibatches a worker) must learn
  // well. Pulling ahead from the first minibatch on a job this small is as unsteady as twice the
  // workers (test logloss 0.50 .. 0.66 over runs, like 4 workers without it): it must count every
  // row and learn something.
  for (const int pull_ahead_after : {100, 0}) {
    SCOPED_TRACE("pull_ahead_after " + std::to_string(pull_ahead_after));
    SchedulerOptions job = DefaultJob(train, test);
    job.config.set_pull_ahead_after(pull_ahead_after);
    Result<JobReport> report = RunInProcessCluster(job);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_EQ(report->rows, train_stats.rows * 2) << "every row of every epoch trained once";
    EXPECT_EQ(report->test_rows, test_stats.rows);
    EXPECT_EQ(report->bad_lines, 0u);
    EXPECT_GT(report->nonzero_w, 0u);
    EXPECT_GT(report->embeddings, 0u) << "frequent features earned embeddings";
    const double base = test_stats.BaseRateLogLoss();
    std::fprintf(stderr,
                 "in-process cluster (pull_ahead_after %d): test logloss %.4f (base rate %.4f), "
                 "AUC %.4f\n",
                 pull_ahead_after, report->test_logloss, base, report->test_auc);
    if (pull_ahead_after == 0) {
      EXPECT_GT(report->test_auc, 0.6);
      continue;
    }
    // It learned: 0.01 below the base rate (0.557), and the AUC below. The asynchronous job's own
    // spread: 16 runs two at a time 0.507-0.522 (2026-11-26); 8 ASan runs two at a time
    // 0.505-0.529, and one CI ASan run 0.5398 with AUC 0.711 (2026-12-07): 0.02 failed that run.
    EXPECT_LT(report->test_logloss, base - 0.01) << "base-rate logloss " << base;
    EXPECT_GT(report->test_auc, 0.65);
  }
}

// A worker keeps one pipeline across the parts it takes, fills its minibatches across their
// ends, and reports a part done only once its pushes are acknowledged. With parts of ~30 rows
// (hundreds an epoch) every row of both epochs and of the test set must still be counted once.
// One worker takes the parts in order, so its minibatches, and with them the model and the
// losses reported part by part, must be exactly those of a job with one part per file. (Without
// the part cache: with it, minibatches stop at part ends; see the next test.)
TEST(InProcessClusterTest, MinibatchesFlowAcrossTinyParts) {
  TrainTest data;
  ASSERT_NO_FATAL_FAILURE(Generate(12000, 3000, &data));
  const testing::LabelStats &train_stats = data.train_stats, &test_stats = data.test_stats;
  SchedulerOptions job = DefaultJob(data.train, data.test);
  job.config.set_cache_mb(0);
  job.pool.part_bytes = 8 << 10;
  Result<JobReport> report = RunInProcessCluster(job);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->rows, train_stats.rows * 2) << "every row of every epoch trained once";
  EXPECT_EQ(report->test_rows, test_stats.rows);
  EXPECT_EQ(report->bad_lines, 0u);
  EXPECT_GT(report->test_auc, 0.6);  // learning itself: LearnsPlantedModelAndCountsEveryRow

  double test_logloss[2], train_logloss[2];
  for (int whole = 0; whole < 2; ++whole) {
    job.pool.part_bytes = whole ? uint64_t{1} << 30 : 8 << 10;
    job.config.set_num_workers(1);
    job.config.set_pull_ahead_after(0);
    report = RunInProcessCluster(job);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_EQ(report->rows, train_stats.rows * 2);
    EXPECT_EQ(report->test_rows, test_stats.rows);
    test_logloss[whole] = report->test_logloss;
    train_logloss[whole] = report->train_logloss;
  }
  EXPECT_EQ(test_logloss[0], test_logloss[1]);
  EXPECT_NEAR(train_logloss[0], train_logloss[1], 1e-9) << "the loss split between parts";
}

// Epochs after the first replay the minibatches the workers kept in their part caches. One
// worker with one part per file replays exactly what it read: the model, and so the test
// logloss, are those of the job that reads the file every epoch. A cache too small for the data
// replays what it holds and the rest is read. With parts of 16 KB and two workers every row is
// still trained once per epoch, partly from the caches (the scheduler hands each worker its own
// parts first; how many a worker done early takes from the other depends on timing).
TEST(InProcessClusterTest, LaterEpochsReplayThePartCaches) {
  TrainTest data;
  ASSERT_NO_FATAL_FAILURE(Generate(12000, 3000, &data));
  const uint64_t rows = data.train_stats.rows;
  SchedulerOptions job = DefaultJob(data.train, data.test);
  job.config.set_num_workers(1);
  job.config.set_pull_ahead_after(0);
  job.config.set_epochs(3);
  job.pool.part_bytes = uint64_t{1} << 30;
  double test_logloss[2];
  for (int cached = 0; cached < 2; ++cached) {
    job.config.set_cache_mb(cached ? 64 : 0);
    Result<JobReport> report = RunInProcessCluster(job);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_EQ(report->rows, rows * 3);
    EXPECT_EQ(report->replayed_rows, cached ? rows * 2 : 0);
    EXPECT_EQ(report->epoch_rows_per_s.size(), 3u);
    test_logloss[cached] = report->test_logloss;
  }
  EXPECT_EQ(test_logloss[0], test_logloss[1]) << "a replayed epoch trains as a read one";

  // ~1.7 MB of minibatches: a 1 MiB cache holds some of the 16 KB parts, in the order read.
  job.pool.part_bytes = 16 << 10;
  job.config.set_cache_mb(1);
  Result<JobReport> report = RunInProcessCluster(job);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->rows, rows * 3);
  EXPECT_GT(report->replayed_rows, rows * 2 / 4);
  EXPECT_LT(report->replayed_rows, rows * 2 * 3 / 4);
  std::fprintf(stderr, "1 MiB cache: %llu of %llu rows replayed\n",
               (unsigned long long)report->replayed_rows, (unsigned long long)(rows * 2));

  job.config.set_num_workers(2);
  job.config.set_cache_mb(64);
  report = RunInProcessCluster(job);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->rows, rows * 3) << "every row of every epoch trained once";
  EXPECT_EQ(report->test_rows, data.test_stats.rows);
  EXPECT_GT(report->test_auc, 0.6);
  EXPECT_GT(report->replayed_rows, 0u);
  EXPECT_LE(report->replayed_rows, rows * 2);
}

// Staleness damping is about other workers' pushes: a lone worker pulling ahead has its own push
// between each pull and push, and must not be damped for it. With one worker, damping or none
// gives the same model.
TEST(InProcessClusterTest, ALoneWorkerPullingAheadIsNotDampedByItsOwnPushes) {
  TrainTest data;
  ASSERT_NO_FATAL_FAILURE(Generate(6000, 2000, &data));
  double logloss[2];
  for (int damped = 0; damped < 2; ++damped) {
    SchedulerOptions job = DefaultJob(data.train, data.test);
    job.config.set_num_workers(1);
    job.config.set_pull_ahead_after(0);
    job.config.set_stale_damping(damped ? 20.0f : 0.0f);  // 2^-20 per step of staleness
    Result<JobReport> report = RunInProcessCluster(job);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    logloss[damped] = report->test_logloss;
  }
  EXPECT_EQ(logloss[0], logloss[1]);
}

// Warm start (--init_model): a model trained on one day's rows, continued on the next day's, starts
// from what it learned: its progressive logloss on the new rows beats a cold start's on the same
// rows.
TEST(InProcessClusterTest, WarmStartContinuesASavedModel) {
  TempDir dir;
  const std::string day1 = dir.File("day1.txt"), day2 = dir.File("day2.txt"),
                    test = dir.File("test.txt");
  ASSERT_TRUE(testing::GenerateFile(day1, 20000, 11));
  ASSERT_TRUE(testing::GenerateFile(day2, 20000, 12));
  ASSERT_TRUE(testing::GenerateFile(test, 4000, 13));

  // One synchronous worker: with two asynchronous ones the cold run's test logloss swung by 0.02
  // between runs, enough to flip the comparison now and then.
  auto job = [&](const std::string& train) {
    SchedulerOptions o = DefaultJob(train, test);
    o.config.set_num_workers(1);
    o.config.set_max_delay(0);
    o.config.set_epochs(1);
    return o;
  };
  SchedulerOptions first = job(day1);
  first.config.set_model_dir(dir.File("day1-model"));
  Result<JobReport> saved = RunInProcessCluster(first);
  ASSERT_TRUE(saved.ok()) << saved.status().ToString();

  SchedulerOptions warm = job(day2);
  warm.config.set_init_model(dir.File("day1-model"));
  Result<JobReport> warm_report = RunInProcessCluster(warm);
  ASSERT_TRUE(warm_report.ok()) << warm_report.status().ToString();

  SchedulerOptions cold = job(day2);
  Result<JobReport> cold_report = RunInProcessCluster(cold);
  ASSERT_TRUE(cold_report.ok()) << cold_report.status().ToString();

  EXPECT_LT(warm_report->train_logloss, cold_report->train_logloss - 0.005)
      << "warm " << warm_report->train_logloss << " vs cold " << cold_report->train_logloss;
  EXPECT_LT(warm_report->test_logloss, cold_report->test_logloss - 0.002)
      << "warm " << warm_report->test_logloss << " vs cold " << cold_report->test_logloss;

  // A model directory that does not exist is a clear error, not an empty start.
  SchedulerOptions missing = DefaultJob(day2, test);
  missing.config.set_init_model(dir.File("no-such-model"));
  Result<JobReport> failed = RunInProcessCluster(missing);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find("no-such-model"), std::string::npos)
      << failed.status().message();
}

// A server whose disk is full when the job's checkpoint is written: the job fails with a message
// naming the checkpoint, the shard file and the error, and leaves no partial checkpoint that a
// resume or predict would take.
TEST(InProcessClusterTest, ACheckpointOnAFullDiskFailsTheJobClearly) {
  TrainTest data;
  ASSERT_NO_FATAL_FAILURE(Generate(4000, 1000, &data));
  SchedulerOptions job = DefaultJob(data.train, data.test);
  job.config.set_epochs(1);
  job.config.set_model_dir(data.dir.File("model"));
  testing::FaultEnv env;
  env.Arm(testing::Fault::kNoSpace, "shard-000001-001");
  job.env = &env;
  Result<JobReport> report = RunInProcessCluster(job);
  ASSERT_FALSE(report.ok());
  EXPECT_GE(env.hits(), 1);
  const std::string& message = report.status().message();
  EXPECT_NE(message.find("checkpoint 1"), std::string::npos) << message;
  EXPECT_NE(message.find("shard-000001-001"), std::string::npos) << message;
  EXPECT_NE(message.find("No space left on device"), std::string::npos) << message;
  EXPECT_FALSE(FindNewestGoodManifest(data.dir.File("model")).ok()) << "no checkpoint is complete";
}

}  // namespace
}  // namespace fmps
