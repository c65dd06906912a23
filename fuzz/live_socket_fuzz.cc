// libFuzzer harness: a live node's port, not only its decoders. Once per process a real KVServer
// (its Postoffice on the real ZmqTransport, its receive loop in a thread) joins a stand-in
// scheduler on 127.0.0.1. Each input is then written to the server's port over a plain TCP
// connection; afterwards a proper ZeroMQ peer (a stand-in worker of the job) pulls and must get
// its answer within kAnswerTimeout, or the harness aborts: the input crashed, stalled or cut off
// the node's receive loop. What runs on the server is what runs in a job: ZeroMQ's handshake and
// framing, the transport's unpacking, the job check, the server's dispatch and pull/push handling.
//
// Input layout (fuzz/live_socket_wire.h): control u8 | split offsets u16 x (writes - 1) | bytes.
// Control bit 0 writes a valid ZMTP 3.0 greeting + READY first, so the bytes arrive as frames;
// bits 1..3 cut the bytes into 1..8 writes; bit 4 ends the connection with a reset, not a FIN.
//
// The job id is not a secret (--keys keeps strangers out), so the fuzzer may forge a message of
// the job; the three that would legitimately end or redirect the server (SHUTDOWN, CHECKPOINT,
// which writes a directory named in the message, and NODE_TABLE) are dropped before the server
// sees them once it has joined. Everything else reaches it.
#include <arpa/inet.h>
#include <glog/logging.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "fuzz/fuzz_util.h"
#include "fuzz/live_socket_wire.h"
#include "ps/job_id.h"
#include "ps/postoffice.h"
#include "ps/server.h"
#include "ps/transport.h"

namespace {

using fmps::Message;
using fmps::fuzz::InputCursor;
namespace proto = fmps::proto;

// A pull unanswered this long: the server is stuck. Generous for a loaded CI machine, and under
// scripts/fuzz.sh's -timeout=25 so that this message, not libFuzzer's, names the cause.
constexpr int kAnswerTimeoutMs = 20000;
constexpr int kCloseWaitMs = 100;  // longest wait for the server to close our connection

[[noreturn]] void Die(const std::string& why) {
  std::fprintf(stderr, "live_socket: %s\n", why.c_str());
  std::abort();
}

// The server's transport: the real ZeroMQ one, with forged job-ending commands dropped once armed
// (see the top of the file). Recv runs on the server's thread only.
class ForgedControlFilter : public fmps::Transport {
 public:
  explicit ForgedControlFilter(std::unique_ptr<fmps::Transport> inner) : inner_(std::move(inner)) {}
  void Arm() { armed_.store(true); }

  fmps::Result<int> Bind(const std::string& host, int port) override {
    return inner_->Bind(host, port);
  }
  fmps::Status Connect(int id, const std::string& host, int port) override {
    return inner_->Connect(id, host, port);
  }
  fmps::Status Send(int id, const Message& msg) override { return inner_->Send(id, msg); }
  fmps::Status Send(int id, Message&& msg) override { return inner_->Send(id, std::move(msg)); }
  std::optional<Message> Recv(int timeout_ms) override {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (true) {
      std::optional<Message> msg = inner_->Recv(timeout_ms);
      if (!msg || !armed_.load() || !EndsOrRedirects(msg->meta.cmd())) return msg;
      timeout_ms = static_cast<int>(std::max<int64_t>(
          0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                   std::chrono::steady_clock::now())
                 .count()));
    }
  }

 private:
  static bool EndsOrRedirects(proto::Command cmd) {
    return cmd == proto::SHUTDOWN || cmd == proto::CHECKPOINT || cmd == proto::NODE_TABLE;
  }
  std::unique_ptr<fmps::Transport> inner_;
  std::atomic<bool> armed_{false};
};

// The node under test and the two stand-ins that talk to it, made once per process.
struct LiveServer {
  int port = 0;                                // the server's ZeroMQ port
  std::unique_ptr<fmps::Transport> scheduler;  // stand-in scheduler (node 0)
  std::unique_ptr<fmps::Transport> worker;     // stand-in worker (node 2): the liveness probe
  ForgedControlFilter* filter = nullptr;       // owned by the server's Postoffice
  std::unique_ptr<fmps::KVServer> server;
  std::thread thread;  // runs server->Run(); never joined
  std::atomic<bool> ended{false};
  std::string end_status;  // written by the thread before `ended`
  uint64_t job_tag = 0;
  int64_t next_request = 1;
};

Message Stamped(proto::Command cmd, int sender, uint64_t job_tag) {
  Message msg;
  msg.meta.set_cmd(cmd);
  msg.meta.set_sender(sender);
  msg.meta.set_job(job_tag);
  return msg;
}

void Drain(fmps::Transport* transport) {
  while (transport->Recv(0)) {
  }
}

// Sends a pull of no keys as the stand-in worker and waits for its answer; aborts without one.
void CheckAnswers(LiveServer* live, const char* after) {
  Drain(live->scheduler.get());  // the server's heartbeats (a forged HEARTBEAT makes one too)
  const int64_t id = live->next_request++;
  Message pull = Stamped(proto::PULL, fmps::fuzz::kLiveWorkerId, live->job_tag);
  pull.meta.set_request_id(id);
  pull.meta.mutable_kv()->set_num_keys(0);
  pull.frames.emplace_back();
  fmps::Status st = live->worker->Send(fmps::fuzz::kLiveServerId, std::move(pull));
  if (!st.ok()) Die(std::string("cannot send the liveness pull ") + after + ": " + st.ToString());
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(kAnswerTimeoutMs);
  while (std::chrono::steady_clock::now() < deadline) {
    // Replies to pulls the fuzzer forged as node 2 come here too: wait for ours.
    std::optional<Message> reply = live->worker->Recv(50);
    if (reply && reply->meta.cmd() == proto::PULL_REPLY && reply->meta.request_id() == id) {
      if (!reply->meta.error().empty())
        Die("the server refused the liveness pull " + std::string(after) + ": " +
            reply->meta.error());
      return;
    }
    if (live->ended.load()) {
      Die("the server's receive loop ended " + std::string(after) + ": " + live->end_status);
    }
  }
  Die("the server at 127.0.0.1:" + std::to_string(live->port) + " did not answer a pull within " +
      std::to_string(kAnswerTimeoutMs / 1000) + " s " + after +
      " (its receive loop is stuck or dead)");
}

LiveServer* StartLiveServer() {
  FLAGS_minloglevel = google::GLOG_ERROR;  // every dropped message logs a warning
  auto live = std::make_unique<LiveServer>();
  live->job_tag = fmps::JobTag(fmps::fuzz::kLiveSocketJobId);
  const fmps::ZmqTransportOptions transport_options;  // what the roles use
  live->scheduler = fmps::NewZmqTransport(transport_options);
  live->worker = fmps::NewZmqTransport(transport_options);
  fmps::Result<int> scheduler_port = live->scheduler->Bind("127.0.0.1", 0);
  fmps::Result<int> worker_port = live->worker->Bind("127.0.0.1", 0);
  if (!scheduler_port.ok() || !worker_port.ok()) Die("cannot bind the stand-ins on 127.0.0.1");

  auto filter = std::make_unique<ForgedControlFilter>(fmps::NewZmqTransport(transport_options));
  live->filter = filter.get();
  fmps::PostofficeOptions po_options;
  po_options.scheduler_port = scheduler_port.value();
  po_options.role = proto::SERVER;
  po_options.job_id = fmps::fuzz::kLiveSocketJobId;
  po_options.join_timeout_s = 60;
  auto po = std::make_unique<fmps::Postoffice>(std::move(filter), po_options);
  fmps::ServerOptions server_options;
  server_options.heartbeat_s = 3600;         // the stand-in scheduler wants none
  server_options.scheduler_timeout_s = 1e9;  // and sends none
  auto setup = [](const proto::JobConfig&, int) -> fmps::Result<fmps::ServerSetup> {
    fmps::ServerSetup s;
    s.store.sketch_mb = 0.01;
    return s;
  };
  live->server = std::make_unique<fmps::KVServer>(std::move(po), setup, server_options);
  LiveServer* raw = live.get();
  live->thread = std::thread([raw] {
    fmps::Status st = raw->server->Run();
    raw->end_status = st.ToString();
    raw->ended.store(true);
  });

  // The join: the server registers; the stand-in scheduler answers with a node table of three.
  std::optional<Message> reg;
  for (int i = 0; i < 600 && !(reg && reg->meta.cmd() == proto::REGISTER); ++i)
    reg = live->scheduler->Recv(100);
  if (!reg || reg->meta.cmd() != proto::REGISTER) Die("the server never registered");
  live->port = reg->meta.node().port();
  if (!live->scheduler->Connect(fmps::fuzz::kLiveServerId, "127.0.0.1", live->port).ok() ||
      !live->worker->Connect(fmps::fuzz::kLiveServerId, "127.0.0.1", live->port).ok()) {
    Die("cannot connect the stand-ins to the server");
  }
  Message table = Stamped(proto::NODE_TABLE, fmps::fuzz::kLiveSchedulerId, live->job_tag);
  proto::NodeTable* t = table.meta.mutable_table();
  const int ports[] = {scheduler_port.value(), live->port, worker_port.value()};
  const proto::Role roles[] = {proto::SCHEDULER, proto::SERVER, proto::WORKER};
  for (int id = 0; id < 3; ++id) {
    proto::NodeInfo* n = t->add_nodes();
    n->set_id(id);
    n->set_role(roles[id]);
    n->set_host("127.0.0.1");
    n->set_port(ports[id]);
    n->set_name(std::string(proto::Role_Name(roles[id])) + " (fuzz stand-in)");
  }
  t->set_your_id(fmps::fuzz::kLiveServerId);
  t->set_incarnation(1);
  t->set_your_token(fmps::RandomNonzero64());
  t->mutable_config()->set_job_id(fmps::fuzz::kLiveSocketJobId);
  fmps::Status st = live->scheduler->Send(fmps::fuzz::kLiveServerId, std::move(table));
  if (!st.ok()) Die("cannot send the node table: " + st.ToString());
  CheckAnswers(raw, "after joining");
  live->filter->Arm();
  std::fprintf(stderr, "live_socket: server of job %s on 127.0.0.1:%d\n",
               fmps::fuzz::kLiveSocketJobId, live->port);
  return live.release();  // lives until the process exits, its thread still serving
}

// Writes the input's connection: an optional greeting, the bytes in the chosen writes, then a
// FIN (waiting briefly for the server to read to it and close) or a reset.
void WriteConnection(int port, const uint8_t* data, size_t size) {
  InputCursor in(data, size);
  const uint8_t control = in.Take<uint8_t>();
  const size_t writes = 1 + ((control >> fmps::fuzz::kWritesShift) & fmps::fuzz::kWritesMask);
  std::vector<uint16_t> cuts;
  for (size_t i = 1; i < writes; ++i) cuts.push_back(in.Take<uint16_t>());
  const std::string_view bytes = in.Rest();
  std::vector<size_t> at{0};
  for (uint16_t c : cuts) at.push_back(c % (bytes.size() + 1));
  at.push_back(bytes.size());
  std::sort(at.begin(), at.end());

  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) Die("socket() failed");
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));  // each write its own segment
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    Die("cannot connect to the server's port " + std::to_string(port));
  }
  auto send_all = [fd](std::string_view chunk) {
    while (!chunk.empty()) {
      const ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;  // the server closed on us: what it may do with garbage
      chunk.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  };
  bool open = true;
  if (control & fmps::fuzz::kSendGreeting) open = send_all(fmps::fuzz::ZmtpGreetingAndReady());
  for (size_t i = 0; open && i + 1 < at.size(); ++i) {
    if (at[i + 1] > at[i]) open = send_all(bytes.substr(at[i], at[i + 1] - at[i]));
  }
  if (control & fmps::fuzz::kResetAtEnd) {
    const linger reset{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  } else if (open) {
    // ZeroMQ closes the connection once it has read to our FIN: after that, whatever the bytes
    // held has reached the server's receive queue.
    ::shutdown(fd, SHUT_WR);
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(kCloseWaitMs);
    char sink[4096];
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      if (::recv(fd, sink, sizeof(sink), 0) <= 0) break;
    }
  }
  ::close(fd);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static LiveServer* live = StartLiveServer();
  WriteConnection(live->port, data, size);
  CheckAnswers(live, "after this input");
  return 0;
}
