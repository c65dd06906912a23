// KVServer and KVClient over the in-process transport. A hand-run scheduler stand-in admits two
// servers and one worker, so the test controls every message: pulls of unknown keys, the FTRL
// update of a push, malformed requests, keys sent to the wrong server and senders outside the job.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <thread>

#include "ps/base/keys.h"
#include "ps/job_id.h"
#include "ps/kv_client.h"
#include "ps/kv_messages.h"
#include "ps/server.h"
#include "ps/store/update_rules.h"
#include "tests/store/store_test_options.h"

namespace fmps {
namespace {

constexpr int kServers = 2;
constexpr int kWorkerId = 1 + kServers;
constexpr int64_t kRawRequest = 1000000;  // request ids at or above this bypass the KVClient
constexpr uint32_t kWidth = 4;
constexpr char kJobId[] = "kv-server-test";

StoreOptions TestStoreOptions() {
  StoreOptions o = testing::BaseStoreOptions();
  o.policy = RankPolicy::Fixed(kWidth, 1);
  return o;
}

class KVServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    hub_ = NewInProcHub();
    sched_ = NewInProcTransport(hub_);
    Result<int> port = sched_->Bind("127.0.0.1", 0);
    ASSERT_TRUE(port.ok());
    sched_port_ = port.value();
    for (int i = 0; i < kServers; ++i) {
      servers_.emplace_back([this, i] {
        PostofficeOptions o = NodeOptions(proto::SERVER);
        ServerSetupFn setup = [](const proto::JobConfig&, int rank) -> Result<ServerSetup> {
          ServerSetup s;
          s.store = TestStoreOptions();
          if (rank == 0) s.dense_init = {0.25f, -0.5f};
          return s;
        };
        ServerOptions so;
        so.heartbeat_s = 0.05;
        KVServer server(std::make_unique<Postoffice>(NewInProcTransport(hub_), o), setup, so);
        server_status_[i] = server.Run();
      });
    }
    worker_po_ = std::make_unique<Postoffice>(NewInProcTransport(hub_), NodeOptions(proto::WORKER));
    std::thread joiner([this] { worker_join_ = worker_po_->Join(); });
    RunStandInJoin();
    joiner.join();
    ASSERT_TRUE(worker_join_.ok()) << worker_join_.ToString();
    ASSERT_EQ(worker_po_->my_id(), kWorkerId);
    KVClientOptions ko;
    ko.timeout_s = 10;
    kv_ = std::make_unique<KVClient>(worker_po_.get(), ko);
    receiver_ = std::thread([this] {
      while (!stop_) {
        auto msg = worker_po_->Recv(20);
        if (!msg) continue;
        if (msg->meta.request_id() >= kRawRequest) {
          std::lock_guard<std::mutex> lock(raw_mu_);
          raw_replies_[msg->meta.request_id()] = std::move(*msg);
        } else {
          kv_->OnReply(std::move(*msg));
        }
      }
    });
  }

  void TearDown() override {
    for (int s = 0; s < kServers; ++s) {
      Message bye;
      bye.meta.set_cmd(proto::SHUTDOWN);
      bye.meta.set_sender(kSchedulerId);
      EXPECT_TRUE(StandInSend(1 + s, bye).ok());
    }
    for (auto& t : servers_) t.join();
    stop_ = true;
    if (receiver_.joinable()) receiver_.join();
    for (int i = 0; i < kServers; ++i)
      EXPECT_TRUE(server_status_[i].ok()) << server_status_[i].ToString();
  }

  // The stand-in scheduler's messages carry the job's id, as the real one's do.
  Status StandInSend(int id, Message m) {
    m.meta.set_job(JobTag(kJobId));
    return sched_->Send(id, std::move(m));
  }

  PostofficeOptions NodeOptions(proto::Role role) {
    PostofficeOptions o;
    o.job_id = kJobId;
    o.scheduler_port = sched_port_;
    o.role = role;
    o.join_timeout_s = 10;
    return o;
  }

  // The scheduler's part of joining: servers get ids 1..kServers in order of arrival, then the
  // worker; everyone gets the table.
  void RunStandInJoin() {
    std::vector<proto::NodeInfo> servers, workers;
    while (servers.size() + workers.size() < kServers + 1) {
      auto msg = sched_->Recv(10000);
      ASSERT_TRUE(msg.has_value()) << "nodes did not register";
      ASSERT_EQ(msg->meta.cmd(), proto::REGISTER);
      (msg->meta.node().role() == proto::SERVER ? servers : workers).push_back(msg->meta.node());
    }
    proto::NodeTable table;
    table.mutable_config()->set_num_servers(kServers);
    table.mutable_config()->set_num_workers(1);
    auto* me = table.add_nodes();
    me->set_id(kSchedulerId);
    me->set_role(proto::SCHEDULER);
    me->set_host("127.0.0.1");
    me->set_port(sched_port_);
    KeyPartition partition(kServers);
    int id = 1;
    for (auto& n : servers) {
      n.set_range_begin(partition.begin(id - 1));
      n.set_range_end(partition.end(id - 1));
      n.set_id(id++);
      *table.add_nodes() = n;
    }
    for (auto& n : workers) {
      n.set_id(id++);
      *table.add_nodes() = n;
    }
    for (const auto& n : table.nodes()) {
      if (n.id() == kSchedulerId) continue;
      ASSERT_TRUE(sched_->Connect(n.id(), n.host(), n.port()).ok());
    }
    for (const auto& n : table.nodes()) {
      if (n.id() == kSchedulerId) continue;
      Message m;
      m.meta.set_cmd(proto::NODE_TABLE);
      m.meta.set_sender(kSchedulerId);
      *m.meta.mutable_table() = table;
      m.meta.mutable_table()->set_your_id(n.id());
      ASSERT_TRUE(StandInSend(n.id(), m).ok());
    }
  }

  // Keys, sorted by server (grouped), with their Mix64.
  void Sorted(std::vector<uint64_t> keys, std::vector<uint64_t>* sorted,
              std::vector<uint64_t>* mixed) {
    std::sort(keys.begin(), keys.end(), [](uint64_t a, uint64_t b) { return Mix64(a) < Mix64(b); });
    *sorted = keys;
    mixed->clear();
    for (uint64_t k : keys) mixed->push_back(Mix64(k));
  }

  Status Pull(const std::vector<uint64_t>& keys, PullResult* r, bool dense = false) {
    std::vector<uint64_t> sorted, mixed;
    Sorted(keys, &sorted, &mixed);
    EXPECT_EQ(sorted, keys) << "pass keys sorted by Mix64";
    return kv_->Wait(kv_->Pull(sorted, mixed, dense, r));
  }

  // Raw request from the worker's postoffice; returns the reply (or nullopt after 5 s).
  std::optional<Message> RawRequest(int to, Message msg) {
    int64_t id = next_raw_++;
    msg.meta.set_request_id(id);
    EXPECT_TRUE(worker_po_->Send(to, std::move(msg)).ok());
    for (int i = 0; i < 500; ++i) {
      {
        std::lock_guard<std::mutex> lock(raw_mu_);
        auto it = raw_replies_.find(id);
        if (it != raw_replies_.end()) return std::move(it->second);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return std::nullopt;
  }

  // A raw pull: one frame of keys and the key count its header claims.
  static Message PullMessage(std::string keys_frame, uint32_t num_keys) {
    Message m;
    m.meta.set_cmd(proto::PULL);
    m.meta.mutable_kv()->set_num_keys(num_keys);
    m.frames.push_back(std::move(keys_frame));
    return m;
  }

  // A key owned by server rank `rank`.
  uint64_t KeyOn(int rank, uint64_t start) {
    KeyPartition p(kServers);
    for (uint64_t t = start;; ++t) {
      uint64_t k = MakeKey(3, t);
      if (p.ServerOf(Mix64(k)) == rank) return k;
    }
  }

  std::shared_ptr<InProcHub> hub_;
  std::unique_ptr<Transport> sched_;
  int sched_port_ = 0;
  std::vector<std::thread> servers_;
  Status server_status_[kServers];
  std::unique_ptr<Postoffice> worker_po_;
  Status worker_join_;
  std::unique_ptr<KVClient> kv_;
  std::thread receiver_;
  std::atomic<bool> stop_{false};
  std::mutex raw_mu_;
  std::map<int64_t, Message> raw_replies_;  // guarded by raw_mu_
  int64_t next_raw_ = kRawRequest;
};

TEST_F(KVServerTest, PullOfUnknownKeysGivesZeroWeightAndNoEmbedding) {
  std::vector<uint64_t> keys, mixed;
  std::vector<uint64_t> raw;
  for (uint64_t t = 0; t < 50; ++t) raw.push_back(MakeKey(t % 5, t));
  Sorted(raw, &keys, &mixed);
  PullResult r;
  ASSERT_TRUE(Pull(keys, &r, /*dense=*/true).ok());
  ASSERT_EQ(r.widths.size(), keys.size());
  ASSERT_EQ(r.values.size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(r.widths[i], 0);
    EXPECT_EQ(r.values[i], 0.f);
  }
  EXPECT_EQ(r.dense, (std::vector<float>{0.25f, -0.5f}));
}

// After the scheduler's SHUTDOWN (FailAll) nothing will answer: a request made later (a worker's
// next pull, already on its way) fails at once instead of waiting out the timeout.
TEST_F(KVServerTest, RequestsAfterFailAllFailAtOnce) {
  std::vector<uint64_t> keys, mixed;
  std::vector<uint64_t> raw;
  for (uint64_t t = 0; t < 20; ++t) raw.push_back(MakeKey(t % 5, t));
  Sorted(raw, &keys, &mixed);
  kv_->FailAll("the scheduler ended the job");
  PullResult r;
  Status st = Pull(keys, &r, /*dense=*/true);
  EXPECT_EQ(st.code(), Status::Code::kAborted) << st.ToString();
  EXPECT_NE(st.message().find("ended the job"), std::string::npos) << st.ToString();
}

TEST_F(KVServerTest, PushThenPullShowsTheFtrlUpdate) {
  std::vector<uint64_t> keys, mixed;
  Sorted({KeyOn(0, 1), KeyOn(1, 1), KeyOn(0, 1000), KeyOn(1, 1000)}, &keys, &mixed);
  const std::vector<float> g{2.0f, -3.0f, 0.3f, 1.0f};  // 0.3: |z| <= l1, w stays exactly 0
  std::vector<uint16_t> widths(keys.size(), 0);
  std::vector<uint32_t> counts{1, 2, 1, 5};
  std::vector<float> dense_grads{1.0f, -1.0f};
  ASSERT_TRUE(kv_->Wait(kv_->Push(keys, mixed, g, widths, counts, dense_grads)).ok());

  const FtrlParams fp = testing::kTestFtrl;  // the values TestStoreOptions uses
  PullResult r;
  ASSERT_TRUE(Pull(keys, &r, /*dense=*/true).ok());
  ASSERT_EQ(r.widths.size(), keys.size());
  size_t at = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    float z = 0, n = 0, w = 0;
    FtrlStep(z, n, w, g[i], fp);
    EXPECT_FLOAT_EQ(r.values[at], w) << "key " << i;
    if (g[i] == 0.3f) {
      EXPECT_EQ(r.values[at], 0.f);
      EXPECT_EQ(r.widths[i], 0) << "no embedding while w == 0";
    } else {
      EXPECT_NE(r.values[at], 0.f);
      EXPECT_EQ(r.widths[i], kWidth) << "w != 0 and count >= 1 earns an embedding";
    }
    at += 1 + r.widths[i];
  }
  EXPECT_EQ(at, r.values.size());
  // By hand for g = 2: z = 2, n = 4, w = -(2 - 0.5) / ((1 + 2) / 0.05 + 1) = -1.5 / 61.
  // keys[0] got g = 2 (g is indexed like the sorted keys).
  EXPECT_NEAR(r.values[0], -1.5f / 61.f, 1e-7);
  // Adagrad on the dense block: first step moves each entry by lr * sign(g).
  ASSERT_EQ(r.dense.size(), 2u);
  EXPECT_NEAR(r.dense[0], 0.25f - 0.05f, 1e-5);
  EXPECT_NEAR(r.dense[1], -0.5f + 0.05f, 1e-5);
}

TEST_F(KVServerTest, MalformedPushIsRefusedAndTheServerKeepsServing) {
  uint64_t k = KeyOn(0, 7);
  auto push = [&](std::vector<std::string> frames, uint32_t num_keys) {
    Message m;
    m.meta.set_cmd(proto::PUSH);
    m.meta.mutable_kv()->set_num_keys(num_keys);
    m.frames = std::move(frames);
    return RawRequest(1, std::move(m));
  };
  std::vector<uint64_t> keys{k};
  std::string kf = ToFrame(keys);
  std::string one_grad = ToFrame(std::vector<float>{5.f});
  std::string width0 = ToFrame(std::vector<uint16_t>{0});
  std::string count1 = ToFrame(std::vector<uint32_t>{1});
  struct Case {
    const char* what;
    std::vector<std::string> frames;
    uint32_t num_keys;
  };
  std::vector<Case> cases = {
      {"too few frames", {kf, one_grad, width0}, 1},
      {"num_keys disagrees", {kf, one_grad, width0, count1}, 2},
      {"grads too short for the widths",
       {kf, one_grad, ToFrame(std::vector<uint16_t>{3}), count1},
       1},
      {"grads too long", {kf, ToFrame(std::vector<float>{1.f, 2.f}), width0, count1}, 1},
      {"keys frame not a multiple of 8", {std::string(7, 'x'), one_grad, width0, count1}, 1},
      {"counts missing", {kf, one_grad, width0, ""}, 1},
      {"too many frames", {kf, one_grad, width0, count1, one_grad}, 1},
  };
  for (const Case& c : cases) {
    std::optional<Message> reply = push(c.frames, c.num_keys);
    ASSERT_TRUE(reply.has_value()) << c.what << ": no answer";
    EXPECT_EQ(reply->meta.cmd(), proto::PUSH_REPLY) << c.what;
    EXPECT_EQ(reply->meta.body_case(), proto::Meta::kError) << c.what;
    EXPECT_FALSE(reply->meta.error().empty()) << c.what;
  }
  std::optional<Message> reply = RawRequest(1, PullMessage(kf, 3));
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->meta.body_case(), proto::Meta::kError);

  // Nothing was applied, and the server still answers a good pull.
  PullResult r;
  ASSERT_TRUE(Pull({k}, &r).ok());
  ASSERT_EQ(r.values.size(), 1u);
  EXPECT_EQ(r.values[0], 0.f);
  // A good raw push still works.
  std::optional<Message> ok = push({kf, one_grad, width0, count1}, 1);
  ASSERT_TRUE(ok.has_value());
  EXPECT_NE(ok->meta.body_case(), proto::Meta::kError) << ok->meta.error();
  ASSERT_TRUE(Pull({k}, &r).ok());
  EXPECT_LT(r.values[0], 0.f);
}

// Pushes are quiet: the server answers one only when it fails; the answer to a later request on
// the connection acknowledges it.
TEST_F(KVServerTest, QuietPushIsAnsweredOnlyWhenItFails) {
  const uint64_t k = KeyOn(0, 11);
  auto quiet_push = [&](std::vector<std::string> frames) {
    Message m;
    m.meta.set_cmd(proto::PUSH);
    m.meta.mutable_kv()->set_num_keys(1);
    m.meta.mutable_kv()->set_quiet(true);
    m.frames = std::move(frames);
    const int64_t id = next_raw_++;
    m.meta.set_request_id(id);
    EXPECT_TRUE(worker_po_->Send(1, std::move(m)).ok());
    return id;
  };
  const std::string kf = ToFrame(std::vector<uint64_t>{k});
  const std::string width0 = ToFrame(std::vector<uint16_t>{0});
  const std::string count1 = ToFrame(std::vector<uint32_t>{1});
  const int64_t good = quiet_push({kf, ToFrame(std::vector<float>{5.f}), width0, count1});
  const int64_t bad = quiet_push({kf, ToFrame(std::vector<float>{5.f, 1.f}), width0, count1});
  std::optional<Message> answer = RawRequest(1, PullMessage(kf, 1));
  ASSERT_TRUE(answer.has_value());
  // One queue, one thread: any answer to the pushes came before the pull's.
  std::lock_guard<std::mutex> lock(raw_mu_);
  EXPECT_EQ(raw_replies_.count(good), 0u) << "a quiet push that worked is not answered";
  ASSERT_EQ(raw_replies_.count(bad), 1u) << "a quiet push that failed is answered";
  EXPECT_EQ(raw_replies_[bad].meta.body_case(), proto::Meta::kError);
  ASSERT_EQ(answer->frames.size(), 2u);
  std::vector<float> values;
  ASSERT_TRUE(FromFrame(answer->frames[0], &values));
  ASSERT_GE(values.size(), 1u);
  EXPECT_LT(values[0], 0.f) << "the good push was applied before the pull";
}

// KVClient: a push is done once a later request to its servers is answered; Wait on a push that
// nothing follows asks with an empty pull, so it never waits out the timeout.
TEST_F(KVServerTest, PushesAreAcknowledgedByLaterAnswersOrAnEmptyPull) {
  std::vector<uint64_t> keys, mixed, raw;
  for (uint64_t t = 0; t < 40; ++t) raw.push_back(MakeKey(t % 3, t * 17));
  Sorted(raw, &keys, &mixed);
  std::vector<float> g(keys.size(), 1.0f);
  std::vector<uint16_t> widths(keys.size(), 0);
  std::vector<uint32_t> counts(keys.size(), 1);
  const int64_t first = kv_->Push(keys, mixed, g, widths, counts, {});
  PullResult r;
  const int64_t pull = kv_->Pull(keys, mixed, false, &r);
  ASSERT_TRUE(kv_->Wait(pull).ok());
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(kv_->Wait(first).ok());  // acknowledged by the pull's answers
  const int64_t last = kv_->Push(keys, mixed, g, widths, counts, {});
  ASSERT_TRUE(kv_->Wait(last).ok());  // nothing follows it: Wait asks
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(kv_->InFlight(), 0u) << "the empty pull's entry is gone once answered";
  float z = 0, n = 0, w = 0;
  for (int i = 0; i < 2; ++i) FtrlStep(z, n, w, 1.0f, testing::kTestFtrl);
  ASSERT_TRUE(Pull(keys, &r).ok());
  size_t at = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_FLOAT_EQ(r.values[at], w);
    at += 1 + r.widths[i];
  }
}

// PushPull: per server, the push's share and the pull's go in one message; the server applies the
// push first. Here the pull touches server 0 only: server 1 gets a plain (quiet) push.
TEST_F(KVServerTest, PushPullAppliesThePushBeforeThePull) {
  std::vector<uint64_t> keys, mixed, raw;
  for (uint64_t t = 0; t < 6; ++t) raw.push_back(KeyOn(static_cast<int>(t % 2), 100 * t));
  Sorted(raw, &keys, &mixed);
  std::vector<float> g(keys.size(), 1.0f);
  std::vector<uint16_t> widths(keys.size(), 0);
  std::vector<uint32_t> counts(keys.size(), 1);
  const std::vector<float> dense_grads = {1.0f, -1.0f};
  std::vector<uint64_t> pull_keys, pull_mixed, on_zero;
  for (uint64_t k : keys) {
    if (KeyPartition(kServers).ServerOf(Mix64(k)) == 0) on_zero.push_back(k);
  }
  Sorted(on_zero, &pull_keys, &pull_mixed);
  PullResult r;
  int64_t push_ts = -1;
  const int64_t pull_ts = kv_->PushPull(PushSpec{keys, mixed, g, widths, counts, dense_grads, {}},
                                        PullSpec{pull_keys, pull_mixed, true, &r}, &push_ts);
  ASSERT_NE(push_ts, pull_ts);
  ASSERT_TRUE(kv_->Wait(pull_ts).ok());
  float z = 0, n = 0, w = 0;
  FtrlStep(z, n, w, 1.0f, testing::kTestFtrl);
  ASSERT_EQ(r.widths.size(), pull_keys.size());
  size_t at = 0;
  for (size_t i = 0; i < pull_keys.size(); ++i) {
    EXPECT_FLOAT_EQ(r.values[at], w) << "the pull saw the push";
    at += 1 + r.widths[i];
  }
  ASSERT_EQ(r.dense.size(), 2u);
  EXPECT_LT(r.dense[0], 0.25f) << "the dense step came first too";
  EXPECT_GT(r.dense[1], -0.5f);
  ASSERT_TRUE(kv_->Wait(push_ts).ok());  // server 1's share: acknowledged on request
  EXPECT_EQ(kv_->InFlight(), 0u);
  ASSERT_TRUE(Pull(keys, &r).ok());
  at = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_FLOAT_EQ(r.values[at], w) << "every key was pushed once";
    at += 1 + r.widths[i];
  }
}

// A push that names its pull (keys_of_pull) carries neither keys nor widths: each server applies
// it to the keys it kept from that pull, with the widths it answered. A pull is pushed once; a
// push naming a pull the server does not hold (taken, never kept, or one of more than
// kMaxKeptPulls left unpushed) is refused and changes nothing.
TEST_F(KVServerTest, APushNamingItsPullUsesTheKeysThatPullKept) {
  std::vector<uint64_t> keys, mixed;
  Sorted({KeyOn(0, 1), KeyOn(1, 1), KeyOn(0, 1000), KeyOn(1, 1000)}, &keys, &mixed);
  const std::vector<uint32_t> counts{1, 2, 1, 5};
  const std::vector<float> dense_grads{1.0f, -1.0f};
  PullResult pulled;
  const int64_t pull = kv_->Pull(PullSpec{keys, mixed, true, &pulled, /*keep_keys=*/true});
  ASSERT_TRUE(kv_->Wait(pull).ok());
  ASSERT_EQ(pulled.widths, std::vector<uint16_t>(keys.size(), 0));
  // The keys are on both servers; the client uses them only to cut the push by server.
  const std::vector<float> g{2.0f, -3.0f, 1.5f, 1.0f};
  auto keyless = [&](int64_t of_pull, std::span<const float> grads,
                     std::span<const uint16_t> widths) {
    return kv_->Push(PushSpec{keys, mixed, grads, widths, counts, dense_grads, {}, of_pull});
  };
  ASSERT_TRUE(kv_->Wait(keyless(pull, g, pulled.widths)).ok());
  PullResult r;
  ASSERT_TRUE(Pull(keys, &r).ok());
  size_t at = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    float z = 0, n = 0, w = 0;
    FtrlStep(z, n, w, g[i], testing::kTestFtrl);
    EXPECT_FLOAT_EQ(r.values[at], w) << "key " << i;
    EXPECT_EQ(r.widths[i], kWidth);
    at += 1 + r.widths[i];
  }
  const Status again = kv_->Wait(keyless(pull, g, pulled.widths));
  EXPECT_FALSE(again.ok()) << "a pull is pushed once";
  EXPECT_NE(again.ToString().find("does not hold"), std::string::npos) << again.ToString();
  PullResult unchanged;
  ASSERT_TRUE(Pull(keys, &unchanged).ok());
  EXPECT_EQ(unchanged.values, r.values);

  // Now the keys have embeddings: the push's gradients follow the widths the pull answered.
  const int64_t wide = kv_->Pull(PullSpec{keys, mixed, true, &pulled, true});
  ASSERT_TRUE(kv_->Wait(wide).ok());
  ASSERT_EQ(pulled.widths, std::vector<uint16_t>(keys.size(), kWidth));
  std::vector<float> wide_grads(keys.size() * (1 + kWidth), 0.5f);
  ASSERT_TRUE(kv_->Wait(keyless(wide, wide_grads, pulled.widths)).ok());

  // Pulls left unpushed (abandoned work) are kept up to a bound: the oldest beyond it go.
  std::vector<int64_t> pulls;
  for (int i = 0; i < 9; ++i)
    pulls.push_back(kv_->Pull(PullSpec{keys, mixed, true, &pulled, true}));
  for (int64_t p : pulls) ASSERT_TRUE(kv_->Wait(p).ok());
  wide_grads.assign(keys.size() * (1 + kWidth), 0.f);
  EXPECT_FALSE(kv_->Wait(keyless(pulls[0], wide_grads, pulled.widths)).ok());
  EXPECT_TRUE(kv_->Wait(keyless(pulls.back(), wide_grads, pulled.widths)).ok());
  EXPECT_FALSE(kv_->Wait(keyless(pulls[7], wide_grads, pulled.widths)).ok())
      << "pushes come in order: pulls before the one pushed are dropped";
}

TEST_F(KVServerTest, KeysOutsideTheServersRangeAreRefused) {
  uint64_t theirs = KeyOn(1, 3);  // owned by server rank 1 (node 2), sent to node 1
  std::vector<uint64_t> keys{theirs};
  Message pull;
  pull.meta.set_cmd(proto::PULL);
  pull.meta.mutable_kv()->set_num_keys(1);
  pull.frames.push_back(ToFrame(keys));
  std::optional<Message> reply = RawRequest(1, std::move(pull));
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->meta.body_case(), proto::Meta::kError);
  EXPECT_NE(reply->meta.error().find("range"), std::string::npos) << reply->meta.error();

  Message push;
  push.meta.set_cmd(proto::PUSH);
  push.meta.mutable_kv()->set_num_keys(1);
  push.frames = {ToFrame(keys), ToFrame(std::vector<float>{5.f}), ToFrame(std::vector<uint16_t>{0}),
                 ToFrame(std::vector<uint32_t>{1})};
  reply = RawRequest(1, std::move(push));
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->meta.body_case(), proto::Meta::kError)
      << "a push of a foreign key must be refused";
  // The owner never saw an update, and the wrong server stored nothing.
  PullResult r;
  ASSERT_TRUE(Pull({theirs}, &r).ok());
  EXPECT_EQ(r.values[0], 0.f);
}

TEST_F(KVServerTest, MessagesFromSendersOutsideTheJobAreDropped) {
  uint64_t k = KeyOn(0, 11);
  std::vector<uint64_t> keys{k};
  for (int sender : {99, -1, kServers + 2}) {  // kServers + 2: one past the last node id
    Message push;
    push.meta.set_cmd(proto::PUSH);
    push.meta.set_sender(sender);
    push.meta.set_request_id(kRawRequest + 500);
    push.meta.mutable_kv()->set_num_keys(1);
    push.frames = {ToFrame(keys), ToFrame(std::vector<float>{5.f}),
                   ToFrame(std::vector<uint16_t>{0}), ToFrame(std::vector<uint32_t>{1})};
    // Sent straight from the stand-in's transport, which can reach the server and forge a sender.
    ASSERT_TRUE(StandInSend(1, push).ok());
  }
  // A pull from the real worker is answered after those pushes (one queue, one thread): w is
  // untouched.
  PullResult r;
  ASSERT_TRUE(Pull({k}, &r).ok());
  EXPECT_EQ(r.values[0], 0.f);
  EXPECT_EQ(r.widths[0], 0);
}

// A push with one NaN or infinite gradient (a forged one, or a worker whose rows overflow the
// model) is dropped whole and counted: nothing of it reaches the model, where one NaN bias gradient
// made every later prediction NaN. The sender is not failed, and the next good push applies as
// usual.
TEST_F(KVServerTest, PushesWithNonFiniteGradientsAreDroppedAndCounted) {
  std::vector<uint64_t> keys, mixed;
  Sorted({KeyOn(0, 21), KeyOn(0, 2100)}, &keys, &mixed);
  const std::vector<uint16_t> widths(keys.size(), 0);
  const std::vector<uint32_t> counts(keys.size(), 1);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  // A NaN bias gradient with good sparse ones; then an infinite sparse one with a good bias.
  auto push = [&](std::vector<float> grads, std::vector<float> dense_grads) {
    return kv_->Wait(kv_->Push(keys, mixed, grads, widths, counts, dense_grads));
  };
  ASSERT_TRUE(push({1.f, 1.f}, {nan, 1.f}).ok());
  ASSERT_TRUE(push({1.f, -inf}, {1.f, 1.f}).ok());
  PullResult r;
  ASSERT_TRUE(Pull(keys, &r, /*dense=*/true).ok());
  EXPECT_EQ(r.values, (std::vector<float>{0.f, 0.f}));
  EXPECT_EQ(r.dense, (std::vector<float>{0.25f, -0.5f}));
  // A good push then makes Adagrad's first step (the accumulators saw nothing of the dropped ones).
  ASSERT_TRUE(push({1.f, 1.f}, {1.f, -1.f}).ok());
  ASSERT_TRUE(Pull(keys, &r, /*dense=*/true).ok());
  float z = 0, n = 0, w = 0;
  FtrlStep(z, n, w, 1.0f, testing::kTestFtrl);  // the values the servers use
  ASSERT_EQ(r.widths.size(), keys.size());
  EXPECT_FLOAT_EQ(r.values[0], w);
  EXPECT_FLOAT_EQ(r.values[1 + r.widths[0]], w);
  ASSERT_EQ(r.dense.size(), 2u);
  EXPECT_NEAR(r.dense[0], 0.25f - 0.05f, 1e-5);
  EXPECT_NEAR(r.dense[1], -0.5f + 0.05f, 1e-5);
  // Server 0 (node 1) reports the two in its heartbeats.
  uint64_t reported = 0;
  for (int i = 0; i < 200 && reported != 2; ++i) {
    std::optional<Message> m = sched_->Recv(50);
    if (m && m->meta.cmd() == proto::HEARTBEAT && m->meta.sender() == 1)
      reported = m->meta.heartbeat().nonfinite_pushes();
  }
  EXPECT_EQ(reported, 2u);
}

TEST(AllFiniteTest, MatchesIsfiniteAtEveryPositionAndLength) {
  const float specials[] = {
      std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN(),
      std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};
  const float finite[] = {0.f,
                          -0.f,
                          1.f,
                          -3.4e38f,
                          std::numeric_limits<float>::max(),
                          std::numeric_limits<float>::denorm_min()};
  for (size_t n = 0; n <= 40; ++n) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = finite[i % std::size(finite)];
    EXPECT_TRUE(AllFinite(v)) << n;
    for (size_t at = 0; at < n; ++at) {
      for (float special : specials) {
        std::vector<float> bad = v;
        bad[at] = special;
        EXPECT_FALSE(AllFinite(bad)) << "n " << n << " at " << at << " value " << special;
      }
    }
  }
}

TEST_F(KVServerTest, ManyAsynchronousRequestsInFlight) {
  // Bounded-delay style: several pushes outstanding, then pulls see the sum of their effect.
  std::vector<uint64_t> keys, mixed;
  std::vector<uint64_t> raw;
  for (uint64_t t = 0; t < 200; ++t) raw.push_back(MakeKey(t % 7, t * 31));
  Sorted(raw, &keys, &mixed);
  std::vector<float> g(keys.size(), 1.0f);
  std::vector<uint16_t> widths(keys.size(), 0);
  std::vector<uint32_t> counts(keys.size(), 1);
  std::vector<int64_t> ts;
  for (int i = 0; i < 8; ++i) ts.push_back(kv_->Push(keys, mixed, g, widths, counts, {}));
  for (int64_t t : ts) ASSERT_TRUE(kv_->Wait(t).ok());
  EXPECT_EQ(kv_->InFlight(), 0u);
  float z = 0, n = 0, w = 0;
  for (int i = 0; i < 8; ++i) FtrlStep(z, n, w, 1.0f, testing::kTestFtrl);
  PullResult r;
  ASSERT_TRUE(Pull(keys, &r).ok());
  size_t at = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_FLOAT_EQ(r.values[at], w);
    at += 1 + r.widths[i];
  }
}

}  // namespace
}  // namespace fmps
