// CURVE keys with real processes: `fmps keygen` writes a private key once; a job started with
// --keys admits only nodes holding it. Strangers that know the job's id (it is no secret) but not
// the key - a plain node, a node of another cluster's key, a client that knows the cluster's public
// key but not its secret - register, push NaN, send FATALs and SHUTDOWNs to every role: none of it
// reaches a node's logic, the job ends as a clean run does, and each refusal is logged.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <limits>
#include <map>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "ps/curve_keys.h"
#include "ps/job_id.h"
#include "ps/transport.h"
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
const std::string kJobId = "curve-test";

std::vector<std::string> JobArgs(const TempDir& dir) {
  std::vector<std::string> args = testing::DeterministicTrainArgs(dir.path());
  args.insert(args.end(), {"--job_id=" + kJobId, "--keys=" + dir.File("keys")});
  return args;
}

Message Forged(proto::Command cmd, int sender) {
  Message m;
  m.meta.set_cmd(cmd);
  m.meta.set_sender(sender);
  m.meta.set_job(JobTag(kJobId));
  return m;
}

// What a stranger with a ZeroMQ transport sends every role: a registration, FATALs, NaN pushes,
// pulls and SHUTDOWNs, all stamped with this job's id.
void SendForgeries(Transport* t, int my_port, const std::map<std::string, std::vector<int>>& ids) {
  Message reg = Forged(proto::REGISTER, -1);
  reg.meta.mutable_node()->set_role(proto::WORKER);
  reg.meta.mutable_node()->set_host("127.0.0.1");
  reg.meta.mutable_node()->set_port(my_port);
  reg.meta.mutable_node()->set_name("stranger");
  reg.meta.mutable_node()->set_replace_id(-1);
  (void)t->Send(ids.at("scheduler")[0], reg);
  Message fatal = Forged(proto::FATAL, 3);
  fatal.meta.set_error("forged");
  (void)t->Send(ids.at("scheduler")[0], fatal);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int server : ids.at("server")) {
    Message push = Forged(proto::PUSH, 3);
    push.meta.set_request_id(77);
    push.meta.mutable_kv()->set_num_keys(1);
    push.frames = {ToFrame(std::vector<uint64_t>{1}), ToFrame(std::vector<float>{nan}),
                   ToFrame(std::vector<uint16_t>{0}), ToFrame(std::vector<uint32_t>{1})};
    (void)t->Send(server, push);
  }
  for (const char* role : {"server", "worker"}) {
    for (int id : ids.at(role)) (void)t->Send(id, Forged(proto::SHUTDOWN, 0));
  }
}

TEST(CurveTest, KeygenWritesAPrivateKeyOnceAndNodesRefuseAnOpenOne) {
  TempDir dir;
  const std::string keys = dir.File("keys");
  testing::RunResult first = testing::Run(kBinary, {"keygen", "--out=" + keys}, dir.path(), 30);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  struct stat st;
  ASSERT_EQ(::stat((keys + "/cluster.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(keys.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  Result<CurveKeys> read = ReadCurveKeys(Env::Default(), keys);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_NE(first.out.find(read->public_key), std::string::npos) << first.out;
  EXPECT_EQ(first.out.find(read->secret_key), std::string::npos) << "the secret was printed";

  // Without --out: an error, not a directory named "-" (the shared flag's default).
  testing::RunResult no_out = testing::Run(kBinary, {"keygen"}, dir.path(), 30);
  EXPECT_NE(no_out.exit_code, 0);
  EXPECT_NE(no_out.err.find("--out=DIR is required"), std::string::npos) << no_out.err;
  struct stat dash;
  EXPECT_NE(::stat((dir.path() + "/-").c_str(), &dash), 0) << "keygen wrote a directory named -";

  testing::RunResult again = testing::Run(kBinary, {"keygen", "--out=" + keys}, dir.path(), 30);
  EXPECT_NE(again.exit_code, 0);
  EXPECT_NE(again.err.find("cluster.key exists"), std::string::npos) << again.err;
  Result<CurveKeys> still = ReadCurveKeys(Env::Default(), keys);
  ASSERT_TRUE(still.ok());
  EXPECT_EQ(still->secret_key, read->secret_key) << "keygen replaced a key in use";

  ASSERT_EQ(::chmod((keys + "/cluster.key").c_str(), 0644), 0);
  testing::RunResult open =
      testing::Run(kBinary, {"worker", "--scheduler=127.0.0.1:1", "--job_id=x", "--keys=" + keys},
                   dir.path(), 30);
  EXPECT_NE(open.exit_code, 0);
  EXPECT_NE(open.err.find("readable by others (mode 0644)"), std::string::npos) << open.err;
  testing::RunResult missing = testing::Run(
      kBinary, {"worker", "--scheduler=127.0.0.1:1", "--job_id=x", "--keys=" + dir.File("none")},
      dir.path(), 30);
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find(dir.File("none") + "/cluster.key"), std::string::npos) << missing.err;
}

TEST(CurveTest, StrangersWithoutTheKeyNeverReachAKeyedJob) {
  TempDir dir;
  ASSERT_TRUE(testing::WriteDeterministicData(dir.path()));
  for (const char* d : {"keys", "other_keys"}) {
    ASSERT_EQ(testing::Run(kBinary, {"keygen", "--out=" + dir.File(d)}, dir.path(), 30).exit_code,
              0);
  }
  testing::RunResult clean = testing::Run(kBinary, JobArgs(dir), dir.path(), kTimeout);
  ASSERT_EQ(clean.exit_code, 0) << clean.err;
  const double clean_logloss = JsonNumber(LastLine(clean.out), "test_logloss").value_or(99);

  Child launcher = testing::Spawn(kBinary, JobArgs(dir), dir.File("job.out"), dir.File("job.err"));
  std::map<std::string, std::vector<int>> ports = testing::RolePorts(launcher, 4);
  ASSERT_EQ(ports["scheduler"].size(), 1u);
  ASSERT_EQ(ports["server"].size(), 2u);
  ASSERT_EQ(ports["worker"].size(), 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // training under way
  const std::string sched = "--scheduler=127.0.0.1:" + std::to_string(ports["scheduler"][0]);

  // Nodes with the job's id but without its key: plain, and with another cluster's key.
  Child plain = testing::Spawn(kBinary, {"worker", sched, "--job_id=" + kJobId, "--join_timeout=5"},
                               dir.File("plain.out"), dir.File("plain.err"));
  Child other = testing::Spawn(kBinary,
                               {"worker", sched, "--job_id=" + kJobId, "--join_timeout=5",
                                "--keys=" + dir.File("other_keys")},
                               dir.File("other.out"), dir.File("other.err"));

  // Strangers' transports: plain, and another cluster's key.
  Result<CurveKeys> other_keys = ReadCurveKeys(Env::Default(), dir.File("other_keys"));
  ASSERT_TRUE(other_keys.ok());
  ZmqTransportOptions keyed;
  keyed.curve = other_keys.value();
  for (const ZmqTransportOptions& options : {ZmqTransportOptions(), keyed}) {
    std::unique_ptr<Transport> stranger = NewZmqTransport(options);
    Result<int> my_port = stranger->Bind("127.0.0.1", 0);
    ASSERT_TRUE(my_port.ok());
    int next = 1;
    std::map<std::string, std::vector<int>> ids;
    for (const auto& [role, list] : ports) {
      for (int port : list) {
        ASSERT_TRUE(stranger->Connect(next, "127.0.0.1", port).ok());
        ids[role].push_back(next++);
      }
    }
    SendForgeries(stranger.get(), my_port.value(), ids);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // let the sockets try
  }
  // A client that knows the cluster's public key (keygen prints it) but holds another secret: its
  // handshake completes up to the key check, which ZAP refuses.
  Result<CurveKeys> ours = ReadCurveKeys(Env::Default(), dir.File("keys"));
  ASSERT_TRUE(ours.ok());
  {
    zmq::context_t context;
    zmq::socket_t push(context, zmq::socket_type::push);
    push.set(zmq::sockopt::linger, 500);
    push.set(zmq::sockopt::curve_serverkey, ours->public_key);
    push.set(zmq::sockopt::curve_publickey, other_keys->public_key);
    push.set(zmq::sockopt::curve_secretkey, other_keys->secret_key);
    push.connect("tcp://127.0.0.1:" + std::to_string(ports["scheduler"][0]));
    (void)push.send(zmq::buffer(std::string(100, 'x')), zmq::send_flags::dontwait);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }

  EXPECT_FALSE(testing::TryWait(launcher, 0).has_value())
      << "the job was over before the strangers were done; make it longer";
  std::optional<int> code = testing::Wait(launcher, kTimeout);
  const std::string err = testing::ReadText(launcher.err_path);
  const std::string json = LastLine(testing::ReadText(launcher.out_path));
  ASSERT_TRUE(code.has_value()) << err;
  ASSERT_EQ(*code, 0) << err;
  EXPECT_EQ(JsonNumber(json, "rows").value_or(-1),
            testing::kDeterministicEpochs * testing::kDeterministicRows)
      << json;
  EXPECT_EQ(JsonNumber(json, "test_rows").value_or(-1), 5000) << json;
  EXPECT_EQ(JsonNumber(json, "nonfinite_pushes").value_or(-1), 0) << json;
  const double logloss = JsonNumber(json, "test_logloss").value_or(99);
  std::printf("test logloss: clean %.6f, with the strangers %.6f\n", clean_logloss, logloss);
  EXPECT_NEAR(logloss, clean_logloss, 0.01 * clean_logloss) << json;
  // Refused at the door, each naming the address...
  EXPECT_NE(err.find("refusing a connection from tcp 127.0.0.1: its handshake failed"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("refusing a connection from tcp 127.0.0.1: it does not hold this cluster's "
                     "CURVE key"),
            std::string::npos)
      << err;
  // ... so nothing reached the job's own checks (job id, tokens, decoding).
  for (const char* inside : {"refusing the registration", "claiming to be", "dropping a message",
                             "non-finite", "nonfinite"}) {
    EXPECT_EQ(err.find(inside), std::string::npos) << inside << "\n" << err;
  }
  for (Child* node : {&plain, &other}) {
    std::optional<int> code = testing::Wait(*node, 40);
    ASSERT_TRUE(code.has_value());
    EXPECT_NE(*code, 0) << "a node without the key joined";
    EXPECT_NE(testing::ReadText(node->err_path).find("do they share its --keys?"),
              std::string::npos)
        << testing::ReadText(node->err_path);
  }

  plain.pid = -1;
  other.pid = -1;
}

}  // namespace
}  // namespace fmps
