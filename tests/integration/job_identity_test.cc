// Job identity with real processes: while a job runs, a stranger's node of another job (or of no
// job) registers, pulls, pushes NaN gradients and sends FATALs and SHUTDOWNs to every role's port,
// and a plain `fmps worker` without the job's id is pointed at it. The job completes untouched:
// exit 0, exactly its rows, the test logloss of a clean run; the refusals are logged.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <thread>
#include <vector>

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
const std::string kJobId = "identity-test";

std::vector<std::string> JobArgs(const TempDir& dir) {
  std::vector<std::string> args = testing::DeterministicTrainArgs(dir.path());
  args.push_back("--job_id=" + kJobId);
  return args;
}

Message Forged(proto::Command cmd, int sender, uint64_t job, uint64_t incarnation = 0) {
  Message m;
  m.meta.set_cmd(cmd);
  m.meta.set_sender(sender);
  m.meta.set_job(job);
  m.meta.set_incarnation(incarnation);
  return m;
}

// A push of a NaN gradient to key 1 (and a NaN dense gradient), as a worker would frame it.
Message NanPush(uint64_t job, int sender) {
  Message m = Forged(proto::PUSH, sender, job);
  m.meta.set_request_id(77);
  m.meta.mutable_kv()->set_num_keys(1);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  m.frames = {ToFrame(std::vector<uint64_t>{1}), ToFrame(std::vector<float>{nan}),
              ToFrame(std::vector<uint16_t>{0}), ToFrame(std::vector<uint32_t>{1})};
  return m;
}

TEST(JobIdentityTest, NodesOfAnotherJobAndForgedFatalsAreRefusedDuringAJob) {
  TempDir dir;
  ASSERT_TRUE(testing::WriteDeterministicData(dir.path()));

  testing::RunResult clean = testing::Run(kBinary, JobArgs(dir), dir.path(), kTimeout);
  ASSERT_EQ(clean.exit_code, 0) << clean.err;
  const double clean_logloss = JsonNumber(LastLine(clean.out), "test_logloss").value_or(99);

  Child launcher = testing::Spawn(kBinary, JobArgs(dir), dir.File("job.out"), dir.File("job.err"));
  std::map<std::string, std::vector<int>> ports = testing::RolePorts(launcher, 4);
  ASSERT_EQ(ports["scheduler"].size(), 1u);
  ASSERT_EQ(ports["server"].size(), 2u);
  ASSERT_EQ(ports["worker"].size(), 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // training under way
  const int sched_port = ports["scheduler"][0];

  // A plain worker without the job's id is refused, not kept as a standby.
  Child plain = testing::Spawn(
      kBinary,
      {"worker", "--scheduler=127.0.0.1:" + std::to_string(sched_port), "--join_timeout=30"},
      dir.File("plain.out"), dir.File("plain.err"));

  // The stranger: a ZeroMQ node of its own, reaching every role.
  std::unique_ptr<Transport> stranger = NewZmqTransport(ZmqTransportOptions());
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
  const uint64_t other = JobTag("another-job"), ours = JobTag(kJobId);
  // Registration as a worker of another job.
  Message reg = Forged(proto::REGISTER, -1, other);
  reg.meta.mutable_node()->set_role(proto::WORKER);
  reg.meta.mutable_node()->set_host("127.0.0.1");
  reg.meta.mutable_node()->set_port(my_port.value());
  reg.meta.mutable_node()->set_name("stranger");
  reg.meta.mutable_node()->set_replace_id(-1);
  ASSERT_TRUE(stranger->Send(ids["scheduler"][0], reg).ok());
  // FATALs naming the worker (node 3): of another job, of none, and of this job without its
  // incarnation (the job id is no secret).
  for (uint64_t job : {other, uint64_t{0}, ours}) {
    Message fatal = Forged(proto::FATAL, 3, job);
    fatal.meta.set_error("forged");
    ASSERT_TRUE(stranger->Send(ids["scheduler"][0], fatal).ok());
  }
  // NaN pushes and pulls of another job (and of none) to both servers, as worker 3.
  for (int server : ids["server"]) {
    for (uint64_t job : {other, uint64_t{0}}) {
      ASSERT_TRUE(stranger->Send(server, NanPush(job, 3)).ok());
      Message pull = Forged(proto::PULL, 3, job);
      pull.meta.set_request_id(78);
      pull.frames = {ToFrame(std::vector<uint64_t>{1})};
      ASSERT_TRUE(stranger->Send(server, pull).ok());
    }
  }
  // A SHUTDOWN of another job to every node.
  for (const char* role : {"server", "worker"}) {
    for (int id : ids[role])
      ASSERT_TRUE(stranger->Send(id, Forged(proto::SHUTDOWN, 0, other)).ok());
  }

  std::optional<int> plain_code = testing::Wait(plain, 40);
  ASSERT_TRUE(plain_code.has_value());
  EXPECT_NE(*plain_code, 0) << "a worker without the job id joined";
  EXPECT_NE(testing::ReadText(plain.err_path).find("refused this node"), std::string::npos)
      << testing::ReadText(plain.err_path);
  EXPECT_FALSE(testing::TryWait(launcher, 0).has_value())
      << "the job was over before the stranger was done; make it longer";

  std::optional<int> code = testing::Wait(launcher, kTimeout);
  const std::string err = testing::ReadText(launcher.err_path);
  const std::string json = LastLine(testing::ReadText(launcher.out_path));
  ASSERT_TRUE(code.has_value()) << err;
  ASSERT_EQ(*code, 0) << err;
  EXPECT_EQ(JsonNumber(json, "rows").value_or(-1),
            testing::kDeterministicEpochs * testing::kDeterministicRows)
      << json;
  EXPECT_EQ(JsonNumber(json, "test_rows").value_or(-1), 5000) << json;
  const double logloss = JsonNumber(json, "test_logloss").value_or(99);
  std::printf("test logloss: clean %.6f, with the stranger %.6f\n", clean_logloss, logloss);
  EXPECT_NEAR(logloss, clean_logloss, 0.01 * clean_logloss) << json;
  // The refusals are logged, naming where they came from.
  EXPECT_NE(err.find("refusing the registration of stranger"), std::string::npos) << err;
  EXPECT_NE(err.find("refusing the registration of WORKER pid " + std::to_string(plain.pid)),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("claiming to be worker 0"), std::string::npos) << err;
  EXPECT_NE(err.find("another job's id"), std::string::npos) << err;
  plain.pid = -1;
}

}  // namespace
}  // namespace fmps
