// The real `fmps` binary as separate processes on 127.0.0.1: a local cluster with a saved model and
// offline prediction, roles started by hand, and the failures a user meets (missing or malformed
// data, a node that never comes, a taken port, a worker killed mid-job).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>
#include <thread>

#include "models/metrics.h"
#include "tests/integration/data_util.h"
#include "tests/integration/process_util.h"
#include "tests/ps/temp_dir.h"

namespace fmps {
namespace {

using testing::Child;
using testing::JsonNumber;
using testing::LastLine;

const std::string kBinary = FMPS_BINARY;
const std::string kCriteo = std::string(FMPS_SHARED_DIR) + "/data/criteo-8k";
constexpr double kTimeout = 60;  // per process; a hang fails the test instead of the suite

uint64_t CountLines(const std::string& path) { return testing::CountLabels(path).rows; }

TEST(ProcessTest, LocalClusterTrainsSavesAndPredicts) {
  TempDir dir;
  const std::string train = kCriteo + "/train.txt", test = kCriteo + "/test.txt";
  const std::string model_dir = dir.File("model");
  Child launcher = testing::Spawn(
      kBinary,
      {"train", "--data=" + train, "--test=" + test, "--epochs=3", "--model_dir=" + model_dir},
      dir.File("train.out"), dir.File("train.err"));
  // While it runs, its roles are separate child processes of the launcher.
  std::set<std::string> seen;
  std::set<pid_t> server_pids, worker_pids;
  std::optional<int> code;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(kTimeout);
  while (!(code = testing::TryWait(launcher, 0.002))) {
    if (std::chrono::steady_clock::now() > deadline) {
      testing::KillAndReap(&launcher);
      FAIL() << "fmps train hung";
    }
    for (std::string role : {"scheduler", "server", "worker"}) {
      for (pid_t pid : testing::ChildrenWithRole(launcher.pid, role)) {
        seen.insert(role);
        if (role == "server") server_pids.insert(pid);
        if (role == "worker") worker_pids.insert(pid);
      }
    }
  }
  std::string out = testing::ReadText(launcher.out_path),
              err = testing::ReadText(launcher.err_path);
  EXPECT_EQ(seen, (std::set<std::string>{"scheduler", "server", "worker"})) << err;
  EXPECT_EQ(server_pids.size(), 2u);
  EXPECT_EQ(worker_pids.size(), 2u);
  EXPECT_EQ(*code, 0) << err;

  std::string json = LastLine(out);
  ASSERT_FALSE(json.empty()) << err;
  ASSERT_EQ(json.front(), '{') << json;
  EXPECT_EQ(JsonNumber(json, "rows").value_or(-1), 3.0 * CountLines(train)) << json;
  EXPECT_EQ(JsonNumber(json, "test_rows").value_or(-1), 391) << json;
  double logloss = JsonNumber(json, "test_logloss").value_or(99);
  EXPECT_LT(logloss, 0.6) << json;
  EXPECT_GT(JsonNumber(json, "test_auc").value_or(0), 0.65) << json;
  EXPECT_EQ(JsonNumber(json, "bad_lines").value_or(-1), 0) << json;

  // Offline scoring with the saved model reproduces the job's test logloss.
  const std::string probs = dir.File("probs.txt");
  testing::RunResult pred = testing::Run(
      kBinary, {"predict", "--model_dir=" + model_dir, "--data=" + test, "--out=" + probs},
      dir.path(), kTimeout);
  ASSERT_EQ(pred.exit_code, 0) << pred.err;
  std::vector<float> p, labels;
  {
    std::ifstream in(probs);
    float v;
    while (in >> v) p.push_back(v);
    std::ifstream t(test);
    std::string line;
    while (std::getline(t, line)) labels.push_back(line[0] == '1' ? 1.f : 0.f);
  }
  ASSERT_EQ(p.size(), 391u);
  ASSERT_EQ(labels.size(), 391u);
  for (float v : p) ASSERT_TRUE(v > 0 && v < 1) << v;
  EXPECT_NEAR(LogLoss(labels, p), logloss, 1e-4);
}

// The job id every hand-started role of these tests is given (nodes without it are refused).
const std::string kJobIdFlag = "--job_id=process-test";

// Hand-started roles: a scheduler with the job's flags, then servers and workers that only know
// where the scheduler is and the job's id.
struct HandCluster {
  std::vector<Child> children;  // [0] scheduler
  int port = 0;

  void Start(const TempDir& dir, std::vector<std::string> job, int servers, int workers,
             const std::vector<std::string>& node_flags = {}) {
    port = testing::FreePort();
    job.insert(job.begin(), {"scheduler", "--port=" + std::to_string(port), kJobIdFlag});
    children.push_back(
        testing::Spawn(kBinary, job, dir.File("scheduler.out"), dir.File("scheduler.err")));
    const std::string at = "--scheduler=127.0.0.1:" + std::to_string(port);
    for (int i = 0; i < servers + workers; ++i) {
      std::string role = i < servers ? "server" : "worker";
      std::string name = role + std::to_string(i);
      std::vector<std::string> args{role, at, kJobIdFlag};
      args.insert(args.end(), node_flags.begin(), node_flags.end());
      children.push_back(
          testing::Spawn(kBinary, args, dir.File(name + ".out"), dir.File(name + ".err")));
    }
  }
  ~HandCluster() {
    for (Child& c : children) testing::KillAndReap(&c);
  }
};

TEST(ProcessTest, HandStartedRolesCompleteAJob) {
  TempDir dir;
  const std::string train = kCriteo + "/train.txt";
  HandCluster cluster;
  cluster.Start(
      dir,
      {"--data=" + train, "--test=" + kCriteo + "/test.txt", "--num_servers=2", "--num_workers=2"},
      2, 2);
  std::optional<int> code = testing::Wait(cluster.children[0], kTimeout);
  ASSERT_TRUE(code.has_value()) << "scheduler hung";
  EXPECT_EQ(*code, 0) << testing::ReadText(cluster.children[0].err_path);
  std::string json = LastLine(testing::ReadText(cluster.children[0].out_path));
  EXPECT_EQ(JsonNumber(json, "rows").value_or(-1), CountLines(train)) << json;
  EXPECT_EQ(JsonNumber(json, "test_rows").value_or(-1), 391) << json;
  for (size_t i = 1; i < cluster.children.size(); ++i) {
    std::optional<int> c = testing::Wait(cluster.children[i], 20);
    ASSERT_TRUE(c.has_value()) << "node " << i << " did not exit after the job";
    EXPECT_EQ(*c, 0) << testing::ReadText(cluster.children[i].err_path);
    cluster.children[i].pid = -1;
  }
  cluster.children[0].pid = -1;
}

// A node that registers mid-job when no node has failed waits to replace one; when the job ends
// well it is told so and exits 0 at once (a restarted pod must not fail the Kubernetes Job).
TEST(ProcessTest, ANodeWaitingToReplaceExitsZeroWhenTheJobEnds) {
  TempDir dir;
  const std::string train = kCriteo + "/train.txt";
  HandCluster cluster;
  cluster.Start(dir, {"--data=" + train, "--num_servers=1", "--num_workers=1", "--epochs=150"}, 1,
                1);
  // The late worker starts once the job's own nodes have joined: started after a fixed delay, it
  // could register before a slow-starting (sanitized, loaded) worker and take its place.
  bool joined = false;
  for (int i = 0; i < 6000 && !joined; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    joined =
        testing::ReadText(cluster.children[0].err_path).find("workers joined") != std::string::npos;
  }
  ASSERT_TRUE(joined) << testing::ReadText(cluster.children[0].err_path);
  Child late = testing::Spawn(kBinary,
                              {"worker", "--scheduler=127.0.0.1:" + std::to_string(cluster.port),
                               "--join_timeout=60", kJobIdFlag},
                              dir.File("late.out"), dir.File("late.err"));
  std::optional<int> code = testing::Wait(cluster.children[0], kTimeout);
  ASSERT_TRUE(code.has_value()) << "scheduler hung";
  EXPECT_EQ(*code, 0) << testing::ReadText(cluster.children[0].err_path);
  const std::string sched_log = testing::ReadText(cluster.children[0].err_path);
  EXPECT_NE(sched_log.find("registration during the job"), std::string::npos)
      << "the late worker came after the job: make the job longer\n"
      << sched_log;
  std::optional<int> late_code = testing::Wait(late, 10);
  ASSERT_TRUE(late_code.has_value()) << "the late worker still waits after the job ended";
  EXPECT_EQ(*late_code, 0) << testing::ReadText(late.err_path);
  EXPECT_NE(testing::ReadText(late.err_path).find("has already ended"), std::string::npos)
      << testing::ReadText(late.err_path) << "\n--- scheduler\n"
      << sched_log;
  late.pid = -1;
  for (size_t i = 1; i < cluster.children.size(); ++i) {
    EXPECT_EQ(testing::Wait(cluster.children[i], 20), std::optional<int>(0));
    cluster.children[i].pid = -1;
  }
  cluster.children[0].pid = -1;
}

// A scheduler killed mid-job and started again at the same address with --resume (a Kubernetes pod
// restarted in place) while its nodes live on: it sends them home (they exit with an error naming
// the restart), the nodes started again join the new run, and the job completes every row.
TEST(ProcessTest, ARestartedSchedulerSendsHomeTheNodesOfItsEarlierRun) {
  TempDir dir;
  const std::string train = kCriteo + "/train.txt";
  const std::vector<std::string> job = {"--data=" + train,
                                        "--num_servers=1",
                                        "--num_workers=1",
                                        "--epochs=400",
                                        "--model_dir=" + dir.File("model"),
                                        "--checkpoint_every=0.3",
                                        "--resume"};
  HandCluster cluster;
  cluster.Start(dir, job, 1, 1);
  // Kill the scheduler once a checkpoint exists, and start it again on its port.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (testing::ReadText(cluster.children[0].err_path).find("checkpoint 1 written") ==
             std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_NE(testing::ReadText(cluster.children[0].err_path).find("checkpoint 1 written"),
            std::string::npos)
      << testing::ReadText(cluster.children[0].err_path);
  ::kill(cluster.children[0].pid, SIGKILL);
  testing::Wait(cluster.children[0], 10);
  cluster.children[0].pid = -1;
  std::vector<std::string> args = {"scheduler", "--port=" + std::to_string(cluster.port),
                                   kJobIdFlag};
  args.insert(args.end(), job.begin(), job.end());
  Child scheduler =
      testing::Spawn(kBinary, args, dir.File("scheduler2.out"), dir.File("scheduler2.err"));
  // The old server and worker are sent home: they exit with the reason, not 0.
  for (size_t i = 1; i < cluster.children.size(); ++i) {
    std::optional<int> code = testing::Wait(cluster.children[i], 20);
    ASSERT_TRUE(code.has_value()) << "node " << i << " of the earlier run still runs";
    EXPECT_NE(*code, 0);
    EXPECT_NE(testing::ReadText(cluster.children[i].err_path).find("the scheduler restarted"),
              std::string::npos)
        << testing::ReadText(cluster.children[i].err_path);
    cluster.children[i].pid = -1;
  }
  const std::string at = "--scheduler=127.0.0.1:" + std::to_string(cluster.port);
  Child server =
      testing::Spawn(kBinary, {"server", at, kJobIdFlag}, dir.File("s2.out"), dir.File("s2.err"));
  Child worker =
      testing::Spawn(kBinary, {"worker", at, kJobIdFlag}, dir.File("w2.out"), dir.File("w2.err"));
  std::optional<int> code = testing::Wait(scheduler, kTimeout);
  ASSERT_TRUE(code.has_value()) << "the restarted scheduler hung";
  EXPECT_EQ(*code, 0) << testing::ReadText(scheduler.err_path);
  const std::string log = testing::ReadText(scheduler.err_path);
  EXPECT_NE(log.find("resuming from checkpoint"), std::string::npos) << log;
  EXPECT_NE(log.find("belongs to an earlier run of this scheduler: sent home"), std::string::npos)
      << log;
  const std::string json = LastLine(testing::ReadText(scheduler.out_path));
  EXPECT_EQ(JsonNumber(json, "rows").value_or(-1), 400 * CountLines(train)) << json;
  EXPECT_GT(JsonNumber(json, "resumed_rows").value_or(0), 0) << json;
  EXPECT_EQ(testing::Wait(server, 20), std::optional<int>(0)) << testing::ReadText(server.err_path);
  EXPECT_EQ(testing::Wait(worker, 20), std::optional<int>(0)) << testing::ReadText(worker.err_path);
  scheduler.pid = server.pid = worker.pid = -1;
}

TEST(ProcessTest, MissingDataFileIsNamed) {
  TempDir dir;
  const std::string missing = dir.File("no-such-train.txt");
  testing::RunResult r =
      testing::Run(kBinary, {"train", "--data=" + missing}, dir.path(), kTimeout);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.exit_code, -1) << "timed out";
  EXPECT_NE(r.err.find("no-such-train.txt"), std::string::npos) << r.err;
}

// criteo-8k's training rows with `bad` malformed lines spread through them.
std::string WriteWithBadLines(const TempDir& dir, int bad, uint64_t* good_rows) {
  const std::string path = dir.File("bad.txt");
  std::ifstream in(kCriteo + "/train.txt");
  std::ofstream out(path);
  std::string line;
  uint64_t n = 0;
  *good_rows = 0;
  while (std::getline(in, line) && n < 3000) {
    out << line << "\n";
    ++*good_rows;
    if (++n % 200 == 0 && bad > 0) {
      // Alternate kinds: too few columns, a bad label, a non-numeric integer column.
      switch (bad % 3) {
        case 0:
          out << "this is not a criteo row\n";
          break;
        case 1:
          out << "7" << line.substr(1) << "\n";
          break;
        default:
          out << line.substr(0, 2) << "12abc" << line.substr(line.find('\t', 2)) << "\n";
          break;
      }
      --bad;
    }
  }
  return path;
}

TEST(ProcessTest, TooManyMalformedLinesStopTheJob) {
  TempDir dir;
  uint64_t good = 0;
  std::string data = WriteWithBadLines(dir, 12, &good);
  testing::RunResult r = testing::Run(
      kBinary,
      {"train", "--data=" + data, "--max_bad_lines=5", "--num_servers=1", "--num_workers=1"},
      dir.path(), kTimeout);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.exit_code, -1) << "timed out";
  EXPECT_NE(r.err.find("malformed"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("max_bad_lines"), std::string::npos) << r.err;
}

TEST(ProcessTest, AFewMalformedLinesAreCountedAndSkipped) {
  TempDir dir;
  uint64_t good = 0;
  std::string data = WriteWithBadLines(dir, 4, &good);
  testing::RunResult r =
      testing::Run(kBinary, {"train", "--data=" + data, "--part_mb=0.2"}, dir.path(), kTimeout);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string json = LastLine(r.out);
  EXPECT_EQ(JsonNumber(json, "bad_lines").value_or(-1), 4) << json;
  EXPECT_EQ(JsonNumber(json, "rows").value_or(-1), good) << json;
}

// A stream is read once: `fmps gen | fmps train --data=- --epochs=3` trains every row three times,
// the later epochs from the worker's part cache; a stream too big for the cache, or no cache,
// is a clear error (before, epochs after the first read an empty stdin and trained nothing).
TEST(ProcessTest, StdinTrainsSeveralEpochsFromThePartCache) {
  TempDir dir;
  auto train = [&](const std::string& cache_mb) {
    return testing::Run("/bin/sh",
                        {"-c", kBinary + " gen --rows=30000 --seed=3 | " + kBinary +
                                   " train --data=- --format=criteo --epochs=3 --num_servers=1"
                                   " --num_workers=2 --cache_mb=" +
                                   cache_mb},
                        dir.path(), kTimeout);
  };
  testing::RunResult r = train("64");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string json = LastLine(r.out);
  EXPECT_EQ(JsonNumber(json, "rows").value_or(-1), 90000) << json;
  EXPECT_EQ(JsonNumber(json, "replayed_rows").value_or(-1), 60000) << json;

  r = train("1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.exit_code, -1) << "timed out";
  EXPECT_NE(r.err.find("stdin does not fit in the part cache (--cache_mb=1"), std::string::npos)
      << r.err;
  r = train("0");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("stdin is a stream, read once"), std::string::npos) << r.err;
}

// Every role of a local cluster re-executes itself onto huge pages once (launch/main.cc), where the
// kernel hands them out on request; FMPS_HUGE_PAGES=0 keeps them all on small pages.
TEST(ProcessTest, RolesRunOnHugePagesUnlessToldNot) {
  std::ifstream mode("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  if (!std::getline(mode, line) || line.find("[madvise]") == std::string::npos) {
    GTEST_SKIP() << "transparent huge pages are not given on request here: " << line;
  }
  auto count = [](const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  };
  const std::string note = "heap on transparent huge pages";
  for (bool off : {false, true}) {
    TempDir dir;
    if (off) ::setenv("FMPS_HUGE_PAGES", "0", 1);
    testing::RunResult r =
        testing::Run(kBinary, {"train", "--data=" + kCriteo + "/train.txt", "--format=criteo"},
                     dir.path(), kTimeout);
    ::unsetenv("FMPS_HUGE_PAGES");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // The launcher, the scheduler, 2 servers and 2 workers each log their start.
    EXPECT_EQ(count(r.err, note), off ? 0u : 6u) << r.err;
    EXPECT_EQ(count(r.err, "] fmps "), 6u) << r.err;
  }
}

TEST(ProcessTest, NodeThatNeverArrivesEndsTheJoinWithACount) {
  TempDir dir;
  HandCluster cluster;
  cluster.Start(dir,
                {"--data=" + kCriteo + "/train.txt", "--num_servers=2", "--num_workers=2",
                 "--join_timeout=3"},
                2, 1);
  std::optional<int> code = testing::Wait(cluster.children[0], kTimeout);
  ASSERT_TRUE(code.has_value()) << "scheduler hung";
  EXPECT_NE(*code, 0);
  std::string err = testing::ReadText(cluster.children[0].err_path);
  EXPECT_NE(err.find("2 of 2 servers"), std::string::npos) << err;
  EXPECT_NE(err.find("1 of 2 workers"), std::string::npos) << err;
  // The nodes that came are told the job will not start, and exit.
  for (size_t i = 1; i < cluster.children.size(); ++i) {
    std::optional<int> c = testing::Wait(cluster.children[i], 10);
    EXPECT_TRUE(c.has_value()) << "node " << i << " kept waiting after the scheduler gave up";
    cluster.children[i].pid = -1;
  }
  cluster.children[0].pid = -1;
}

TEST(ProcessTest, SchedulerOnATakenPortSaysPortInUse) {
  TempDir dir;
  int held = -1;
  int port = testing::FreePort(&held);
  ASSERT_GT(port, 0);
  testing::RunResult r = testing::Run(
      kBinary, {"scheduler", "--port=" + std::to_string(port), "--data=" + kCriteo + "/train.txt"},
      dir.path(), kTimeout);
  ::close(held);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.exit_code, -1) << "timed out";
  EXPECT_NE(r.err.find("port in use"), std::string::npos) << r.err;
}

TEST(ProcessTest, JobSurvivesAWorkerKilledMidJob) {
  TempDir dir;
  const std::string data = dir.File("train.txt"), test = dir.File("test.txt");
  ASSERT_TRUE(testing::GenerateFile(data, 150000, 3));
  ASSERT_TRUE(testing::GenerateFile(test, 5000, 4));
  // Small synchronous batches and small parts make the job last long enough to kill a worker
  // while it holds a part, and 3 epochs of 150k rows (~6 s) long enough for the scheduler to
  // notice even a worker killed between parts, holding none. Many rows and few epochs (not 30
  // epochs of 20k rows, which overfit) keep the test logloss of runs comparable.
  const std::vector<std::string> job = {
      "--data=" + data,  "--test=" + test,        "--num_servers=2",
      "--num_workers=2", "--heartbeat_timeout=3", "--batch_size=20",
      "--max_delay=0",   "--part_mb=0.1",         "--epochs=3"};
  HandCluster cluster;
  cluster.Start(dir, job, 2, 2);
  Child& victim = cluster.children[3];
  // Kill shortly after the job started, while the victim holds a part.
  bool started = false;
  for (int i = 0; i < 1000 && !started; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    started =
        testing::ReadText(cluster.children[0].err_path).find("workers joined") != std::string::npos;
  }
  ASSERT_TRUE(started) << testing::ReadText(cluster.children[0].err_path);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_FALSE(testing::TryWait(cluster.children[0], 0).has_value())
      << "job already over; make it slower";
  ASSERT_EQ(::kill(victim.pid, SIGKILL), 0);
  testing::Wait(victim, 5);
  victim.pid = -1;
  std::optional<int> code = testing::Wait(cluster.children[0], 2 * kTimeout);
  ASSERT_TRUE(code.has_value()) << "scheduler hung after the worker died";
  std::string err = testing::ReadText(cluster.children[0].err_path);
  EXPECT_EQ(*code, 0) << err;
  EXPECT_NE(err.find("declared dead"), std::string::npos) << "the kill went unnoticed:\n" << err;
  // Every part is trained exactly once per epoch: the killed worker's unfinished part is redone
  // by the other and counted once.
  std::string json = LastLine(testing::ReadText(cluster.children[0].out_path));
  EXPECT_EQ(JsonNumber(json, "rows").value_or(-1), 3 * 150000) << json << "\n" << err;
  EXPECT_EQ(JsonNumber(json, "test_rows").value_or(-1), 5000) << json;
  cluster.children[0].pid = -1;

  // The model is as good as a clean run's (the killed worker's half-pushed part is trained again).
  // The reference is a clean job of ONE worker: the victim dies within the first second, so the
  // rest of the job is a one-worker job, and one worker lands reproducibly 0.003-0.006 above two
  // asynchronous workers on this data (measured); against a two-worker run the check flaked.
  std::vector<std::string> one_worker = job;
  std::replace(one_worker.begin(), one_worker.end(), std::string("--num_workers=2"),
               std::string("--num_workers=1"));
  TempDir clean_dir;
  HandCluster clean;
  clean.Start(clean_dir, one_worker, 2, 1);
  ASSERT_EQ(testing::Wait(clean.children[0], 2 * kTimeout), std::optional<int>(0))
      << testing::ReadText(clean.children[0].err_path);
  clean.children[0].pid = -1;
  const std::string clean_json = LastLine(testing::ReadText(clean.children[0].out_path));
  const double clean_logloss = JsonNumber(clean_json, "test_logloss").value_or(-1);
  ASSERT_EQ(JsonNumber(clean_json, "rows").value_or(-1), 3 * 150000) << clean_json;
  ASSERT_GT(clean_logloss, 0) << clean_json;
  std::printf("test logloss after the kill %.6f, clean one-worker job %.6f\n",
              JsonNumber(json, "test_logloss").value_or(-1), clean_logloss);
  // 2%: the first moments ran with two workers and the killed worker's part is trained twice
  // (docs/reliability.md); a poisoned or corrupted model moves it far more (a lost part is caught
  // by the exact row count above).
  EXPECT_NEAR(JsonNumber(json, "test_logloss").value_or(-1), clean_logloss, 0.02 * clean_logloss)
      << "after the kill: " << json << "\nclean: " << clean_json;
}

}  // namespace
}  // namespace fmps
