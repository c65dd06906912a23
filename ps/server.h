// KVServer: a server node. It owns one shard of the sparse model (a Store over its range of
// Mix64(key)) and, on server 0, the dense block of field-pair parameters. It answers pulls and
// pushes from workers, writes checkpoint shards when the scheduler asks, and reports its figures
// in heartbeats. One thread (Run) owns everything: no locks around the store.
#ifndef FMPS_PS_SERVER_H_
#define FMPS_PS_SERVER_H_

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "metrics/metrics.h"
#include "ps/base/env.h"
#include "ps/kv_messages.h"
#include "ps/postoffice.h"
#include "ps/store/store.h"

namespace fmps {

// What a server needs from the model, built by the launch code from the job config (so ps/ does
// not depend on models/).
struct ServerSetup {
  StoreOptions store;
  std::vector<float> dense_init;  // server 0's initial dense block (empty elsewhere)
  float dense_lr = 0.05f;         // Adagrad learning rate of the dense block
  float stale_damping = 1.0f;     // scale V and dense steps by (1 + staleness)^-stale_damping
  // Called after each dense update with the training progress in [0, 1] (pruning schedules).
  std::function<void(std::span<float> dense, double progress)> after_dense_update;
  // Real parameters in the dense block (e.g. surviving R entries), for the JSON line.
  std::function<size_t(std::span<const float> dense)> dense_params;
};
using ServerSetupFn = std::function<Result<ServerSetup>(const proto::JobConfig&, int server_rank)>;

struct ServerOptions {
  double heartbeat_s = 1.0;            // seconds between heartbeats to the scheduler
  double scheduler_timeout_s = 120;    // exit when the scheduler has been silent this long
  Env* env = Env::Default();           // checkpoint files are written and read through it
  MetricsRegistry* metrics = nullptr;  // where the server's figures go (null: kept privately)
};

class KVServer {
 public:
  KVServer(std::unique_ptr<Postoffice> po, ServerSetupFn setup, const ServerOptions& options);
  ~KVServer();
  // Joins the job and serves until the scheduler says SHUTDOWN. Errors say what failed.
  Status Run();

 private:
  // Keys and answered widths of a pull whose push is to come (kv.keep_keys): the push names its
  // pull (kv.keys_of_pull) instead of sending them again.
  struct KeptPull {
    int64_t id = -1;
    std::vector<uint64_t> keys;
    std::vector<uint16_t> widths;
    std::vector<uint64_t> hints;  // where the store found each key (Store::Pull's hints)
  };
  Status Serve();  // after Join: set up the shard, then answer requests until SHUTDOWN
  KeyRange Range() const;
  void Drop(const Message& msg, proto::Command reply, const Status& why);
  void HandlePull(const Message& msg);
  void HandlePush(const Message& msg);
  // False, after counting and (rate-limited) logging, for a push with a non-finite gradient.
  bool PushIsFinite(const Message& msg, const PushRequest& req);
  void HandlePushPull(Message&& msg);
  void KeepPull(int sender, int64_t id, std::span<const uint64_t> keys);
  // Takes the kept pull `id` of `sender` (and drops its older ones); false if it is not held.
  bool TakeKeptPull(int sender, int64_t id, KeptPull* out);
  void HandleCheckpoint(const Message& msg);
  // Early stopping: keeps a copy of the shard in memory, or puts it back (req.restore).
  void HandleKeptCopy(const proto::Checkpoint& req);
  Status LoadShard(const std::string& dir);
  void SendHeartbeat();
  void Reply(const Message& request, proto::Command cmd, std::vector<std::string> frames,
             const std::string& error = "", uint64_t clock = 0);
  bool KnownSender(const Message& msg) const;

  std::unique_ptr<Postoffice> po_;
  ServerSetupFn setup_fn_;
  ServerOptions options_;
  ServerSetup setup_;
  int rank_ = -1;
  std::unique_ptr<Store> store_;
  std::vector<float> dense_, dense_accum_;
  std::vector<float> pull_values_;  // scratch of HandlePull, kept to spare allocations
  std::vector<uint16_t> pull_widths_;
  std::vector<uint64_t> pull_hints_;
  // Per worker, oldest first.
  static constexpr size_t kMaxKeptPulls = 8;  // per worker; it has at most 3 in flight
  std::map<int, std::deque<KeptPull>> kept_pulls_;
  std::vector<KeptPull> spare_pulls_;  // emptied entries, their buffers reused
  KeptPull pushed_pull_;               // the kept pull of the push being applied
  // The copy HandleKeptCopy keeps (the best model so far under early stopping).
  struct KeptCopy {
    bool held = false;
    std::string store;  // Store::Serialize()
    std::vector<float> dense, dense_accum;
  } kept_;
  double progress_ = 0;
  uint64_t clock_ = 0;    // pushes applied; a push's staleness is clock_ minus the clock it pulled
  uint64_t dropped_ = 0;  // malformed or foreign requests dropped
  // Pushes dropped for a NaN or infinite gradient, per sender id (a node can be replaced under
  // the same id), and in all.
  std::map<int, uint64_t> nonfinite_pushes_by_sender_;
  uint64_t nonfinite_pushes_ = 0;
  uint64_t evicted_logged_ = 0;  // store evictions already reported in the log

  // Figures for /metrics (see ServerMetrics in server.cc); the store's are refreshed at heartbeats.
  std::unique_ptr<MetricsRegistry> own_metrics_;  // when options_.metrics is null
  MetricsRegistry* metrics_;
  Counter *pulls_, *pushes_, *pulled_keys_, *pushed_keys_, *evictions_, *refused_;
  Histogram* staleness_;
  Gauge* store_bytes_;
};

}  // namespace fmps

#endif  // FMPS_PS_SERVER_H_
