// A model's life after training, with real `fmps` processes: resumed on another number of
// servers (re-sharding), retrained day after day while `fmps serve` answers.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ps/base/env.h"
#include "ps/checkpoint.h"
#include "serving/model_export.h"
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
  testing::RunResult r = testing::Run(
      kBinary,
      {"predict", "--model_dir=" + model, "--data=" + kCriteo + "/test.txt", "--out=" + out},
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
      << json_one << "\n"
      << json_three;
  EXPECT_GT(std::abs(loss_one - first_loss), 1e-4) << json_one << "\n" << after_first;
  EXPECT_NEAR(loss_three, loss_one, 1e-5) << json_one << "\n" << json_three;
}

std::vector<double> ReadProbabilities(const std::string& path) {
  std::vector<double> out;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) out.push_back(std::stod(line));
  return out;
}

// Every model, every input format: a model exported to one file scores through `fmps predict`
// exactly as from its model_dir, and the standard-library Python scorer (python/fmps_score.py)
// reading that file and the raw data gives the same probabilities to 1e-6.
TEST(LifecycleTest, ExportedModelsScoreTheSameInPredictAndThePythonScorer) {
  TempDir dir;
  const std::string data = std::string(FMPS_SHARED_DIR) + "/data";
  // libffm rows: Criteo's columns as field:text:1 (the first 2000 rows).
  const std::string libffm = dir.File("criteo.ffm");
  ASSERT_EQ(testing::Run("/bin/sh",
                         {"-c",
                          "awk -F'\\t' 'NR<=2000{printf \"%s\", $1; for(i=2;i<=NF;i++) "
                          "if($i!=\"\") printf \" %d:%s:1\", i-2, $i; printf \"\\n\"}' " +
                              kCriteo + "/train.txt > " + libffm + " && head -n 3000 " + data +
                              "/frappe/frappe.test.libfm > " + dir.File("frappe.test")},
                         dir.path(), kTimeout)
                .exit_code,
            0);
  struct Case {
    std::string model, format, train, test;
  };
  const std::string frappe = data + "/frappe/frappe.";
  std::vector<Case> cases;
  for (std::string model : {"fm", "fwfm", "dplr", "pruned_fwfm", "rafm", "ffm"})
    cases.push_back({model, "criteo", kCriteo + "/train.txt", kCriteo + "/test.txt"});
  for (std::string model : {"fwfm", "ffm"})
    cases.push_back({model, "avazu", data + "/avazu-8k/train.csv", data + "/avazu-8k/test.csv"});
  for (std::string model : {"dplr", "rafm"})
    cases.push_back({model, "libsvm", frappe + "validation.libfm", dir.File("frappe.test")});
  for (std::string model : {"fm", "pruned_fwfm"})
    cases.push_back({model, "libffm", libffm, libffm});

  for (const Case& c : cases) {
    SCOPED_TRACE(c.model + " on " + c.format);
    const std::string name = c.model + "-" + c.format;
    const std::string model_dir = dir.File(name), file = dir.File(name + ".fmps");
    testing::RunResult train = testing::Run(
        kBinary,
        {"train", "--data=" + c.train, "--format=" + c.format, "--model=" + c.model, "--k=4",
         "--rafm_ranks=2,4", "--keep=0.5", "--v_min_count=2", "--rank_mid_count=3",
         "--rank_head_count=5", "--num_servers=2", "--num_workers=1", "--model_dir=" + model_dir},
        dir.path(), kTimeout);
    ASSERT_EQ(train.exit_code, 0) << train.err;
    testing::RunResult exported = testing::Run(
        kBinary, {"export", "--model_dir=" + model_dir, "--out=" + file}, dir.path(), kTimeout);
    ASSERT_EQ(exported.exit_code, 0) << exported.err;

    auto predict = [&](const std::string& model, const std::string& out) {
      testing::RunResult r = testing::Run(
          kBinary, {"predict", "--model_dir=" + model, "--data=" + c.test, "--out=" + out},
          dir.path(), kTimeout);
      EXPECT_EQ(r.exit_code, 0) << r.err;
      return testing::ReadText(out);
    };
    const std::string from_dir = predict(model_dir, dir.File(name + ".dir.txt"));
    const std::string from_file = predict(file, dir.File(name + ".file.txt"));
    EXPECT_EQ(from_file, from_dir);
    testing::RunResult py = testing::Run(
        FMPS_PYTHON, {FMPS_SCORER, file, c.test, "--out=" + dir.File(name + ".py.txt")}, dir.path(),
        300);
    ASSERT_EQ(py.exit_code, 0) << py.err;
    const std::vector<double> expected = ReadProbabilities(dir.File(name + ".dir.txt"));
    const std::vector<double> scored = ReadProbabilities(dir.File(name + ".py.txt"));
    ASSERT_EQ(scored.size(), expected.size());
    ASSERT_GT(expected.size(), 300u);
    double lo = 1, hi = 0, worst = 0;
    for (size_t i = 0; i < expected.size(); ++i) {
      worst = std::max(worst, std::abs(scored[i] - expected[i]));
      lo = std::min(lo, expected[i]);
      hi = std::max(hi, expected[i]);
    }
    EXPECT_LE(worst, 1e-6);
    EXPECT_GT(hi - lo, 0.05) << "the model scores every row alike";
  }
}

// Line N of the output belongs to line N of the input in both scorers: a line that cannot be
// scored is `nan` in the Python scorer's output as in predict's, not left out (which shifted every
// later line onto another row).
TEST(LifecycleTest, ThePythonScorerWritesNanForABadLineAsPredictDoes) {
  TempDir dir;
  const std::string model_dir = dir.File("m"), file = dir.File("m.fmps");
  Train(dir, JobFlags(model_dir, 1, 1));
  testing::RunResult exported = testing::Run(
      kBinary, {"export", "--model_dir=" + model_dir, "--out=" + file}, dir.path(), kTimeout);
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  std::ifstream in(kCriteo + "/test.txt");
  std::vector<std::string> rows;
  for (std::string line; rows.size() < 300 && std::getline(in, line);) rows.push_back(line);
  ASSERT_EQ(rows.size(), 300u);
  const std::vector<std::string> bad_kinds = {"this is not a criteo row", "7" + rows[0].substr(1),
                                              "", "1\t2\t3", "1" + std::string(45, '\t')};
  const std::string mixed = dir.File("mixed.txt");
  std::vector<bool> is_bad;
  {
    std::ofstream out(mixed);
    for (size_t i = 0, good = 0; good < rows.size(); ++i) {
      const bool bad = i % 7 == 3;
      out << (bad ? bad_kinds[i % bad_kinds.size()] : rows[good++]) << "\n";
      is_bad.push_back(bad);
    }
  }
  const size_t lines = is_bad.size(), bad_lines = std::count(is_bad.begin(), is_bad.end(), true);
  ASSERT_EQ(lines, 350u);
  ASSERT_EQ(bad_lines, 50u);
  testing::RunResult predicted = testing::Run(
      kBinary, {"predict", "--model_dir=" + file, "--data=" + mixed, "--out=" + dir.File("c.txt")},
      dir.path(), kTimeout);
  ASSERT_EQ(predicted.exit_code, 0) << predicted.err;
  testing::RunResult py = testing::Run(
      FMPS_PYTHON, {FMPS_SCORER, file, mixed, "--out=" + dir.File("py.txt")}, dir.path(), 300);
  ASSERT_EQ(py.exit_code, 0) << py.err;
  EXPECT_NE(py.err.find("mixed.txt:4: "), std::string::npos) << py.err;  // FILE:LINE: reason
  const std::vector<double> expected = ReadProbabilities(dir.File("c.txt"));
  const std::vector<double> scored = ReadProbabilities(dir.File("py.txt"));
  ASSERT_EQ(expected.size(), lines);
  ASSERT_EQ(scored.size(), lines);
  size_t nans = 0;
  for (size_t i = 0; i < lines; ++i) {
    SCOPED_TRACE("line " + std::to_string(i + 1));
    EXPECT_EQ(std::isnan(expected[i]), is_bad[i]);
    EXPECT_EQ(std::isnan(scored[i]), is_bad[i]);
    nans += std::isnan(scored[i]);
    if (!is_bad[i]) {
      EXPECT_NEAR(scored[i], expected[i], 1e-6);
    }
  }
  EXPECT_EQ(nans, bad_lines);
}

// `fmps dump`: one line per row in key order, the top rows by |w| or by the embedding's norm,
// token texts from a data file; a damaged export file is refused by predict, naming it.
TEST(LifecycleTest, DumpPrintsTheExportAndDamageIsRefused) {
  TempDir dir;
  const std::string model_dir = dir.File("m"), file = dir.File("m.fmps");
  Train(dir, JobFlags(model_dir, 2, 1));
  testing::RunResult exported =
      testing::Run(kBinary, {"export", "--model_dir=" + model_dir, "--version=1", "--out=" + file},
                   dir.path(), kTimeout);
  ASSERT_EQ(exported.exit_code, 0) << exported.err;

  struct Line {
    uint64_t key;
    unsigned field;
    double w, norm;
    size_t rank;
    std::string token;
  };
  auto dump = [&](const std::vector<std::string>& flags) {
    std::vector<std::string> args = {"dump", file};
    args.insert(args.end(), flags.begin(), flags.end());
    testing::RunResult r = testing::Run(kBinary, args, dir.path(), kTimeout);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<Line> lines;
    std::istringstream in(r.out);
    for (std::string text; std::getline(in, text);) {
      if (text.empty() || text[0] == '#') continue;
      std::istringstream cols(text);
      Line l{};
      cols >> l.key >> l.field >> l.w >> l.rank;
      for (size_t d = 0; d < l.rank; ++d) {
        double x;
        cols >> x;
        l.norm += x * x;
      }
      cols >> l.token;
      EXPECT_EQ(l.field, l.key >> 56) << text;
      lines.push_back(l);
    }
    return lines;
  };
  const std::vector<Line> all = dump({});
  ASSERT_GT(all.size(), 100u);
  for (size_t i = 1; i < all.size(); ++i) ASSERT_LT(all[i - 1].key, all[i].key);
  for (const std::string by : {"w", "v"}) {
    const std::vector<Line> top = dump({"--top=7", "--by=" + by});
    ASSERT_EQ(top.size(), 7u);
    auto size = [&](const Line& l) { return by == "w" ? std::abs(l.w) : l.norm; };
    double seventh = size(top[6]);
    for (size_t i = 1; i < top.size(); ++i) EXPECT_GE(size(top[i - 1]), size(top[i]));
    size_t larger = 0;
    for (const Line& l : all) larger += size(l) > seventh;
    EXPECT_LE(larger, 6u) << "--by=" << by;
  }
  // Token names: Criteo column 14 (field 13) holds hashed text; its names hash back to the keys.
  const std::vector<Line> named = dump({"--names=" + kCriteo + "/train.txt"});
  size_t with_name = 0;
  for (const Line& l : named) with_name += !l.token.empty();
  EXPECT_GT(with_name, all.size() / 2);

  // One flipped byte: refused by its CRC-32, naming the file.
  std::string bytes = testing::ReadText(file);
  bytes[bytes.size() / 2] ^= 0x10;
  std::ofstream(dir.File("bad.fmps"), std::ios::binary) << bytes;
  testing::RunResult bad =
      testing::Run(kBinary,
                   {"predict", "--model_dir=" + dir.File("bad.fmps"),
                    "--data=" + kCriteo + "/test.txt", "--out=" + dir.File("bad.txt")},
                   dir.path(), kTimeout);
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find(dir.File("bad.fmps") + ": CRC-32 mismatch"), std::string::npos) << bad.err;
}

// One HTTP/1.1 request on a fresh connection (Connection: close): the status code and the body;
// status -1 when the service did not answer.
std::pair<int, std::string> Http(int port, const std::string& method, const std::string& target,
                                 const std::string& body) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return {-1, "socket"};
  timeval timeout{20, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string answer;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
                                "Content-Length: " + std::to_string(body.size()) +
                                "\r\nConnection: close\r\n\r\n" + body;
    size_t sent = 0;
    while (sent < request.size()) {
      const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    char buf[65536];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) answer.append(buf, n);
  }
  ::close(fd);
  const size_t head_end = answer.find("\r\n\r\n");
  if (answer.rfind("HTTP/1.1 ", 0) != 0 || head_end == std::string::npos) return {-1, answer};
  return {std::atoi(answer.c_str() + 9), answer.substr(head_end + 4)};
}

// The version /healthz names ("ok model=fm version=3"), -1 without an answer.
int64_t ServedVersion(int port) {
  auto [status, body] = Http(port, "GET", "/healthz", "");
  const size_t at = body.find("version=");
  return status == 200 && at != std::string::npos ? std::atoll(body.c_str() + at + 8) : -1;
}

// Rows of an export file: key -> count.
std::map<uint64_t, uint32_t> ExportedCounts(const std::string& file) {
  std::map<uint64_t, uint32_t> counts;
  Result<std::string> bytes = ReadFile(file);
  EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
  if (!bytes.ok()) return counts;
  ExportHeader header;
  std::vector<float> dense;
  Status st = ReadExport(bytes.value(), file, &header, &dense, [&](const ExportRow& r) {
    counts[r.key] = r.count;
    return Status::OK();
  });
  EXPECT_TRUE(st.ok()) << st.ToString();
  return counts;
}

// The daily retrain (a new job per day's file with --init_model=D --model_dir=D, twice) writing
// versions into the served model_dir while `fmps serve` is up with its default flags and a client
// fires ranking requests throughout: the service switches to each new version within a second of
// its manifest and no request fails; the last version's counts carried on from the first. Before,
// serve looked for a new version every 10 s (fails: still serving version 1 five seconds after
// version 2).
TEST(LifecycleTest, ServeSwitchesToEachNewVersionWithinASecondWithoutAFailedRequest) {
  TempDir dir;
  const std::string model_dir = dir.File("model");
  // Three days: thirds of the Criteo training file.
  ASSERT_EQ(testing::Run("/bin/sh",
                         {"-c", "cd " + dir.path() + " && sed -n 1,2400p " + kCriteo +
                                    "/train.txt > day1 && sed -n 2401,4800p " + kCriteo +
                                    "/train.txt > day2 && sed -n 4801,7200p " + kCriteo +
                                    "/train.txt > day3"},
                         dir.path(), kTimeout)
                .exit_code,
            0);
  // docs/serving.md's daily retrain: each day a new job on that day's file, continuing from the
  // newest version (--init_model=D) and writing the next versions into the same model_dir.
  auto day = [&](int d) {
    std::vector<std::string> args = {"train",
                                     "--data=" + dir.File("day" + std::to_string(d)),
                                     "--model=fm",
                                     "--k=4",
                                     "--v_min_count=2",
                                     "--rank_mid_count=4",
                                     "--rank_head_count=8",
                                     "--num_servers=2",
                                     "--num_workers=1",
                                     "--epochs=1",
                                     "--model_dir=" + model_dir};
    if (d > 1) args.push_back("--init_model=" + model_dir);
    return Train(dir, args);
  };
  day(1);
  ASSERT_EQ(NewestManifestVersion(model_dir), 1);

  const int port = testing::FreePort();
  testing::Child serve = testing::Spawn(
      kBinary, {"serve", "--model_dir=" + model_dir, "--listen=127.0.0.1:" + std::to_string(port)},
      dir.File("serve.out"), dir.File("serve.err"));
  for (int i = 0; i < 300 && ServedVersion(port) < 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_EQ(ServedVersion(port), 1) << testing::ReadText(dir.File("serve.err"));

  // The client: one context and three candidates per request, Criteo columns as field:text.
  const std::string body =
      "0:1 1:5 2:3 13:68fd1e64 14:80e26c9b\n15:fb936136 16:7b4723c4\n"
      "15:6fcd6dcb 17:25c83c98\n\n";
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> ok{0}, failed{0};
  std::string first_failure;
  std::thread client([&] {
    while (!stop.load()) {
      auto [status, answer] = Http(port, "POST", "/rank", body);
      const bool good = status == 200 && std::count(answer.begin(), answer.end(), '\n') == 3;
      if (!good && failed.fetch_add(1) == 0) first_failure = std::to_string(status) + " " + answer;
      if (good) ok.fetch_add(1);
    }
  });

  const std::string first_export = dir.File("v1.fmps");
  ASSERT_EQ(testing::Run(kBinary, {"export", "--model_dir=" + model_dir, "--out=" + first_export},
                         dir.path(), kTimeout)
                .exit_code,
            0);
  int64_t served = 1;
  for (int d = 2; d <= 3; ++d) {
    const std::string json = day(d);
    EXPECT_EQ(testing::JsonNumber(json, "rows").value_or(-1), 2400) << "day " << d << ": " << json;
    const int64_t newest = NewestManifestVersion(model_dir);
    ASSERT_GT(newest, served) << "day " << d << " wrote no newer version";
    // Within a second of the manifest, with room for a busy machine: 5 s, half the old period.
    const auto written = std::chrono::steady_clock::now();
    while (ServedVersion(port) != newest &&
           std::chrono::steady_clock::now() - written < std::chrono::seconds(5)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const double waited =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - written).count();
    EXPECT_EQ(ServedVersion(port), newest) << "day " << d << ": still serving an older version "
                                           << waited << " s after version " << newest;
    std::printf("day %d: version %lld served %.3f s after its job ended\n", d,
                static_cast<long long>(newest), waited);
    served = newest;
  }
  const uint64_t before_stop = ok.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  stop = true;
  client.join();
  EXPECT_EQ(failed.load(), 0u) << first_failure;
  EXPECT_GT(ok.load(), before_stop);  // requests were answered to the end
  EXPECT_GT(ok.load(), 20u);
  EXPECT_EQ(ServedVersion(port), NewestManifestVersion(model_dir));
  std::printf("%llu requests answered, %llu failed\n", static_cast<unsigned long long>(ok.load()),
              static_cast<unsigned long long>(failed.load()));
  testing::KillAndReap(&serve);

  // The last version holds the first one's features with their counts carried on.
  const std::string last_export = dir.File("v3.fmps");
  ASSERT_EQ(testing::Run(kBinary, {"export", "--model_dir=" + model_dir, "--out=" + last_export},
                         dir.path(), kTimeout)
                .exit_code,
            0);
  const std::map<uint64_t, uint32_t> before = ExportedCounts(first_export),
                                     after = ExportedCounts(last_export);
  size_t kept = 0, grew = 0;
  for (const auto& [key, count] : after) {
    auto it = before.find(key);
    if (it == before.end()) continue;
    ++kept;
    EXPECT_GE(count, it->second) << "key " << key << ": its count went back";
    grew += count > it->second;
  }
  EXPECT_GT(kept, 50u);
  EXPECT_GT(grew, kept / 2);
}

}  // namespace
}  // namespace fmps
