// Watching real `fmps` processes: /healthz before and after a worker joins, the scheduler's
// /metrics against the job's report, the text format of every role's /metrics, the ports a local
// cluster gives its roles, --metrics_out, and the logging flags reaching every role.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "tests/integration/process_util.h"
#include "tests/metrics/http_get.h"
#include "tests/ps/temp_dir.h"

namespace fmps {
namespace {

using testing::Child;
using testing::JsonNumber;
using testing::LastLine;

const std::string kBinary = FMPS_BINARY;
const std::string kTrain = std::string(FMPS_SHARED_DIR) + "/data/criteo-8k/train.txt";
constexpr double kTimeout = 90;

uint64_t Lines(const std::string& path) {
  std::ifstream in(path);
  uint64_t n = 0;
  for (std::string line; std::getline(in, line);) n += !line.empty();
  return n;
}

// Checks Prometheus text format 0.0.4 as we use it: every sample belongs to a family announced by
// HELP and TYPE, counters end in _total, histograms have buckets ending in +Inf, _sum and _count;
// every value is a number. Returns the unlabeled samples by name, and fails the test on errors.
std::map<std::string, double> CheckTextFormat(const std::string& text) {
  std::map<std::string, std::string> types;
  std::set<std::string> helped;
  std::map<std::string, double> values;
  static const std::regex sample(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$)");
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# HELP ", 0) == 0) {
      helped.insert(line.substr(7, line.find(' ', 7) - 7));
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream t(line.substr(7));
      std::string name, type;
      t >> name >> type;
      EXPECT_TRUE(type == "counter" || type == "gauge" || type == "histogram") << line;
      EXPECT_EQ(helped.count(name), 1u) << "TYPE before HELP: " << line;
      if (type == "counter") {
        EXPECT_TRUE(name.ends_with("_total")) << line;
      }
      types[name] = type;
      continue;
    }
    std::smatch m;
    if (!std::regex_match(line, m, sample)) {
      ADD_FAILURE() << "not a sample line: '" << line << "'";
      continue;
    }
    std::string name = m[1];
    std::string family = name;
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const std::string s = suffix;
      if (!types.count(name) && name.ends_with(s)) family = name.substr(0, name.size() - s.size());
    }
    EXPECT_EQ(types.count(family), 1u) << "sample of an undeclared family: " << line;
    if (types[family] == "histogram") {
      EXPECT_NE(family, name) << line;
    }
    char* end = nullptr;
    const std::string v = m[3];
    const double value = std::strtod(v.c_str(), &end);
    EXPECT_TRUE(*end == '\0' || v == "NaN" || v == "+Inf") << line;
    if (!m[2].matched) values[name] = value;
  }
  return values;
}

// Polls GET path on port until pred(answer) holds or the child exits / time runs out.
template <typename Pred>
HttpAnswer PollUntil(int port, const std::string& path, Pred pred, double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  HttpAnswer a;
  while (std::chrono::steady_clock::now() < deadline) {
    a = HttpGet(port, path);
    if (pred(a)) return a;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return a;
}

TEST(MetricsProcessTest, HealthzBeforeAndAfterJoinAndSchedulerFiguresEqualTheReport) {
  TempDir dir;
  const int sched_port = testing::FreePort(), worker_metrics = testing::FreePort(),
            server_metrics = testing::FreePort(), sched_metrics = testing::FreePort();
  const std::string at = "--scheduler=127.0.0.1:" + std::to_string(sched_port);
  const std::string job = "--job_id=00000000000000a1";  // hand-started roles share the job's id
  Child worker = testing::Spawn(
      kBinary, {"worker", at, job, "--metrics_port=" + std::to_string(worker_metrics)},
                     dir.File("worker.out"), dir.File("worker.err"));
  // No scheduler yet: the worker is up but has not joined.
  HttpAnswer joining = PollUntil(
      worker_metrics, "/healthz", [](const HttpAnswer& a) { return a.status != -1; }, kTimeout);
  EXPECT_EQ(joining.status, 503) << joining.raw << testing::ReadText(worker.err_path);
  EXPECT_EQ(joining.body, "not ready: joining\n");
  HttpAnswer early = HttpGet(worker_metrics, "/metrics");
  EXPECT_EQ(early.status, 200);
  EXPECT_EQ(CheckTextFormat(early.body).at("fmps_worker_train_rows_total"), 0);

  Child server =
      testing::Spawn(kBinary, {"server", at, job, "--metrics_port=" + std::to_string(server_metrics)},
                     dir.File("server.out"), dir.File("server.err"));
  Child scheduler = testing::Spawn(
      kBinary,
      {"scheduler", job, "--port=" + std::to_string(sched_port), "--data=" + kTrain, "--num_servers=1",
       "--num_workers=1", "--epochs=20", "--metrics_port=" + std::to_string(sched_metrics),
       "--metrics_linger=120"},
      dir.File("sched.out"), dir.File("sched.err"));
  HttpAnswer joined = PollUntil(
      worker_metrics, "/healthz", [](const HttpAnswer& a) { return a.status != 503; }, kTimeout);
  EXPECT_EQ(joined.status, 200) << joined.raw << testing::ReadText(worker.err_path);
  EXPECT_TRUE(joined.body.starts_with("ok worker")) << joined.body;
  // Every role's /metrics in the middle of the job is well-formed.
  for (int port : {worker_metrics, server_metrics, sched_metrics}) {
    HttpAnswer m = HttpGet(port, "/metrics");
    EXPECT_EQ(m.status, 200) << port;
    CheckTextFormat(m.body);
  }
  HttpAnswer server_m = HttpGet(server_metrics, "/metrics");
  EXPECT_NE(server_m.body.find("# TYPE fmps_server_push_staleness histogram"), std::string::npos);
  EXPECT_NE(server_m.body.find("fmps_transport_received_bytes_total{peer=\""), std::string::npos)
      << server_m.body;

  // The job's report, then the scheduler's final figures (it lingers for a scraper).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  std::string json;
  while (std::chrono::steady_clock::now() < deadline) {
    json = LastLine(testing::ReadText(scheduler.out_path));
    if (!json.empty() && json.front() == '{') break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(json.empty()) << testing::ReadText(scheduler.err_path);
  const double rows = JsonNumber(json, "rows").value_or(-1);
  EXPECT_EQ(rows, 20.0 * Lines(kTrain));
  HttpAnswer final_m = HttpGet(sched_metrics, "/metrics");
  ASSERT_EQ(final_m.status, 200) << testing::ReadText(scheduler.err_path);
  std::map<std::string, double> v = CheckTextFormat(final_m.body);
  EXPECT_EQ(v.at("fmps_train_rows_total"), rows);
  EXPECT_EQ(v.at("fmps_epoch"), 20);
  EXPECT_NEAR(v.at("fmps_epoch_train_logloss"), JsonNumber(json, "train_logloss").value_or(-1),
              1e-6);
  EXPECT_NE(final_m.body.find("fmps_nodes_joined{role=\"worker\"} 1\n"), std::string::npos);
  EXPECT_NE(final_m.body.find("fmps_nodes_expected{role=\"server\"} 1\n"), std::string::npos);
  EXPECT_EQ(HttpGet(sched_metrics, "/healthz").status, 200);

  EXPECT_EQ(testing::Wait(worker, kTimeout).value_or(-1), 0);
  EXPECT_EQ(testing::Wait(server, kTimeout).value_or(-1), 0);
  ::kill(scheduler.pid, SIGTERM);
  testing::Wait(scheduler, kTimeout);
}

// The launcher's one line "metrics (/metrics, /healthz) on scheduler H:P, server 0 H:P, ...".
std::vector<int> MetricsPorts(const std::string& err) {
  std::vector<int> ports;
  const size_t at = err.find("metrics (/metrics, /healthz) on ");
  if (at == std::string::npos) return ports;
  const std::string line = err.substr(at, err.find('\n', at) - at);
  static const std::regex port(R"(:(\d+))");
  for (std::sregex_iterator it(line.begin(), line.end(), port), end; it != end; ++it)
    ports.push_back(std::stoi((*it)[1]));
  return ports;
}

TEST(MetricsProcessTest, LocalClusterGivesEveryRoleAPortLogFileAndTheCurvesFile) {
  TempDir dir;
  const std::string logs = dir.File("logs"), curves = dir.File("curves.jsonl");
  testing::RunResult r = testing::Run(
      kBinary,
      {"train", "--data=" + kTrain, "--epochs=3", "--num_servers=2", "--num_workers=2",
       "--metrics_port=-1", "--log_dir=" + logs, "--metrics_out=" + curves, "--progress_every=0.2"},
      dir.path(), kTimeout);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<int> ports = MetricsPorts(r.err);
  EXPECT_EQ(ports.size(), 5u) << r.err;
  EXPECT_EQ(std::set<int>(ports.begin(), ports.end()).size(), 5u) << r.err;

  // One log file per process, named by role (and pid); each role's says where its metrics were.
  std::map<std::string, int> files;
  for (const auto& entry : std::filesystem::directory_iterator(logs)) {
    const std::string name = entry.path().filename();
    const std::string role = name.substr(0, name.find('.'));
    ++files[role];
    const std::string text = testing::ReadText(entry.path());
    if (role != "fmps-train") {
      EXPECT_NE(text.find(" metrics on http://127.0.0.1:"), std::string::npos) << name;
    }
  }
  EXPECT_EQ(files, (std::map<std::string, int>{{"fmps-train", 1},
                                               {"fmps-scheduler", 1},
                                               {"fmps-server", 2},
                                               {"fmps-worker", 2}}))
      << r.err;

  // --metrics_out: progress lines, one line per epoch, then the end, with /metrics' names.
  const double rows = JsonNumber(LastLine(r.out), "rows").value_or(-1);
  EXPECT_EQ(rows, 3.0 * Lines(kTrain));
  std::ifstream in(curves);
  int epochs = 0, progress = 0;
  std::string line, last;
  double last_rows = 0;
  while (std::getline(in, line)) {
    ASSERT_EQ(line.front(), '{') << line;
    EXPECT_NE(line.find("\"fmps_train_logloss\":"), std::string::npos) << line;
    const double line_rows = JsonNumber(line, "fmps_train_rows_total").value_or(-1);
    EXPECT_GE(line_rows, last_rows) << line;
    last_rows = line_rows;
    if (line.find("\"event\":\"epoch\"") != std::string::npos) {
      ++epochs;
      EXPECT_EQ(JsonNumber(line, "epoch_done").value_or(-1), epochs) << line;
      EXPECT_EQ(line_rows, epochs * Lines(kTrain)) << line;
    }
    if (line.find("\"event\":\"progress\"") != std::string::npos) ++progress;
    last = line;
  }
  EXPECT_EQ(epochs, 3);
  EXPECT_GE(progress, 1);
  EXPECT_NE(last.find("\"event\":\"end\""), std::string::npos) << last;
  EXPECT_EQ(JsonNumber(last, "fmps_train_rows_total").value_or(-1), rows);
}

TEST(MetricsProcessTest, MinloglevelSilencesInfoInEverySpawnedRole) {
  TempDir dir;
  testing::RunResult r = testing::Run(
      kBinary, {"train", "--data=" + kTrain, "--num_servers=2", "--num_workers=2", "--minloglevel=1"},
      dir.path(), kTimeout);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // glog's INFO lines start with I and the date (I1207 or, newer glog, I20261207).
  static const std::regex info(R"((^|\n)I(\d{4}|\d{8}) \d\d:)");
  EXPECT_FALSE(std::regex_search(r.err, info)) << r.err;
  // The same job without the flag logs INFO from its servers and workers.
  testing::RunResult loud = testing::Run(
      kBinary, {"train", "--data=" + kTrain, "--num_servers=2", "--num_workers=2"}, dir.path(),
      kTimeout);
  ASSERT_EQ(loud.exit_code, 0) << loud.err;
  EXPECT_NE(loud.err.find("server 0 (node 1) serving keys"), std::string::npos);
}

}  // namespace
}  // namespace fmps
