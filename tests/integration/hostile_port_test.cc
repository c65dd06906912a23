// What a stranger on the network meets: plain TCP connections to every role's port during a real
// job (the fmps binary as processes on 127.0.0.1), writing garbage, HTTP, broken or old ZeroMQ
// greetings and ZMTP 3 frames with random bytes or a huge declared length. Every role must
// shrug it off: the job ends with exit 0, every row trained exactly once per epoch, and a model
// as good as a clean run's.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/data_util.h"
#include "tests/integration/process_util.h"
#include "tests/ps/temp_dir.h"

namespace fmps {
namespace {

using testing::Child;
using testing::JsonNumber;
using testing::LastLine;

const std::string kBinary = FMPS_BINARY;
constexpr double kTimeout = 120;

std::string RandomBytes(std::mt19937_64* rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>((*rng)() & 0xff);
  return s;
}

// A ZMTP 3.0 greeting with the NULL mechanism (64 bytes), then the READY command of a PUSH socket:
// what a real ZeroMQ peer sends before its first message.
std::string Zmtp3Hello() {
  std::string g(64, '\0');
  g[0] = '\xff';
  g[9] = '\x7f';
  g[10] = 3;  // version 3.0
  g.replace(12, 4, "NULL");
  std::string body =
      std::string("\x05READY") + "\x0bSocket-Type" + std::string("\0\0\0\x04", 4) + "PUSH";
  return g + '\x04' + static_cast<char>(body.size()) + body;
}

// One connection's bytes per entry: everything a stranger might write to a node's port.
std::vector<std::vector<std::string>> HostileConnections() {
  std::mt19937_64 rng(15);
  std::vector<std::vector<std::string>> c;
  std::string hello;
  for (int i = 0; i < 50; ++i) hello += "hello world\n";  // 600 bytes
  c.push_back({hello});
  c.push_back({RandomBytes(&rng, 4096)});
  c.push_back({"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: curl/7.88\r\n\r\n"});
  c.push_back({Zmtp3Hello().substr(0, 11)});  // a greeting cut short
  // ZMTP 1.0: an empty identity, then messages of (length, flags, body).
  std::string v1 = std::string("\x01\x00", 2);
  for (int i = 0; i < 20; ++i) v1 += std::string("\x06\x00", 2) + "hello";
  c.push_back({v1});
  // ZMTP 2.0: signature, revision 1, socket type PUSH, an empty identity, short frames.
  std::string v2 = std::string("\xff\0\0\0\0\0\0\0\0\x7f\x01\x08", 12) + std::string("\0\0", 2);
  for (int i = 0; i < 20; ++i) v2 += std::string("\x00\x05", 2) + "hello";
  c.push_back({v2});
  // ZMTP 3: a proper greeting, then random frames (short and long) ...
  std::vector<std::string> v3{Zmtp3Hello()};
  for (int i = 0; i < 50; ++i) {
    const size_t n = 1 + rng() % 200;
    v3.push_back(std::string(1, '\0') + static_cast<char>(n) + RandomBytes(&rng, n));
  }
  std::string long_frame = RandomBytes(&rng, 3000);
  v3.push_back(std::string("\x02\0\0\0\0\0\0\x0b\xb8", 9) + long_frame);  // 3000 bytes
  // ... and one declaring 2^62 bytes.
  v3.push_back(std::string("\x02\x40\0\0\0\0\0\0\0", 9) + RandomBytes(&rng, 1000));
  c.push_back(v3);
  return c;
}

struct JobResult {
  int exit_code = -1;
  std::string json, err;
  int ports_attacked = 0;
};

// Runs `fmps train`; with attack, writes every hostile connection to every role's port once all
// four roles listen.
JobResult Train(const TempDir& dir, const std::string& name, bool attack,
                const std::string& keys = "") {
  // Long enough (seconds) to be attacked, and deterministic: the attacked model is held to the
  // clean one's.
  std::vector<std::string> args = testing::DeterministicTrainArgs(dir.path());
  if (!keys.empty()) args.push_back("--keys=" + keys);
  Child launcher = testing::Spawn(kBinary, args, dir.File(name + ".out"), dir.File(name + ".err"));
  JobResult r;
  if (attack) {
    // The roles' ports: every child of the launcher, each listening on one.
    std::vector<int> ports;
    for (const auto& [role, list] : testing::RolePorts(launcher, 4))
      ports.insert(ports.end(), list.begin(), list.end());
    EXPECT_EQ(ports.size(), 4u) << "expected the ports of 1 scheduler, 2 servers, 1 worker";
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // training under way
    for (const auto& connection : HostileConnections()) {
      for (int port : ports) {
        if (testing::SendRawTcp(port, connection, 30)) ++r.ports_attacked;
      }
    }
    EXPECT_FALSE(testing::TryWait(launcher, 0).has_value())
        << "the job was over before the attack ended; make it longer";
  }
  std::optional<int> code = testing::Wait(launcher, kTimeout);
  r.exit_code = code.value_or(-1);
  r.json = LastLine(testing::ReadText(launcher.out_path));
  r.err = testing::ReadText(launcher.err_path);
  return r;
}

TEST(HostilePortTest, EveryRoleSurvivesStrangersBytesDuringAJob) {
  TempDir dir;
  ASSERT_TRUE(testing::WriteDeterministicData(dir.path()));

  JobResult clean = Train(dir, "clean", false);
  ASSERT_EQ(clean.exit_code, 0) << clean.err;
  const double clean_logloss = JsonNumber(clean.json, "test_logloss").value_or(99);
  ASSERT_LT(clean_logloss, 0.69) << clean.json;

  JobResult attacked = Train(dir, "attacked", true);
  EXPECT_EQ(attacked.ports_attacked, 4 * static_cast<int>(HostileConnections().size()));
  ASSERT_EQ(attacked.exit_code, 0) << attacked.err;
  EXPECT_EQ(JsonNumber(attacked.json, "rows").value_or(-1),
            testing::kDeterministicEpochs * testing::kDeterministicRows)
      << attacked.json;
  EXPECT_EQ(JsonNumber(attacked.json, "test_rows").value_or(-1), 5000) << attacked.json;
  const double logloss = JsonNumber(attacked.json, "test_logloss").value_or(99);
  std::printf("test logloss: clean %.6f, attacked %.6f\n", clean_logloss, logloss);
  EXPECT_NEAR(logloss, clean_logloss, 0.01 * clean_logloss) << attacked.json << "\n" << clean.json;
  // What decoded into a message is dropped with a line naming where it came from.
  EXPECT_NE(attacked.err.find("dropping a message from tcp"), std::string::npos) << attacked.err;
  EXPECT_EQ(attacked.err.find("terminate called"), std::string::npos) << attacked.err;
}

// The same bytes against a job with --keys: every socket speaks CURVE, so nothing a stranger writes
// gets past the handshake; each stranger's address is logged as refused.
TEST(HostilePortTest, EveryRoleOfAKeyedJobSurvivesStrangersBytes) {
  TempDir dir;
  ASSERT_TRUE(testing::WriteDeterministicData(dir.path()));
  testing::RunResult keygen =
      testing::Run(kBinary, {"keygen", "--out=" + dir.File("keys")}, dir.path(), 30);
  ASSERT_EQ(keygen.exit_code, 0) << keygen.err;

  JobResult clean = Train(dir, "clean", false, dir.File("keys"));
  ASSERT_EQ(clean.exit_code, 0) << clean.err;
  const double clean_logloss = JsonNumber(clean.json, "test_logloss").value_or(99);
  ASSERT_LT(clean_logloss, 0.69) << clean.json;

  JobResult attacked = Train(dir, "attacked", true, dir.File("keys"));
  EXPECT_EQ(attacked.ports_attacked, 4 * static_cast<int>(HostileConnections().size()));
  ASSERT_EQ(attacked.exit_code, 0) << attacked.err;
  EXPECT_EQ(JsonNumber(attacked.json, "rows").value_or(-1),
            testing::kDeterministicEpochs * testing::kDeterministicRows)
      << attacked.json;
  EXPECT_EQ(JsonNumber(attacked.json, "test_rows").value_or(-1), 5000) << attacked.json;
  const double logloss = JsonNumber(attacked.json, "test_logloss").value_or(99);
  std::printf("test logloss: clean %.6f, attacked %.6f (CURVE)\n", clean_logloss, logloss);
  EXPECT_NEAR(logloss, clean_logloss, 0.01 * clean_logloss) << attacked.json;
  EXPECT_NE(attacked.err.find("refusing a connection from tcp 127.0.0.1: its handshake failed"),
            std::string::npos)
      << attacked.err;
  // Nothing reached a node's decoder: no frame was dropped there.
  EXPECT_EQ(attacked.err.find("dropping a message from"), std::string::npos) << attacked.err;
  EXPECT_EQ(attacked.err.find("terminate called"), std::string::npos) << attacked.err;
}

}  // namespace
}  // namespace fmps
