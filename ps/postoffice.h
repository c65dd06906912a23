// Postoffice: a node's membership in a job. It owns the node's Transport, registers with the
// scheduler, receives the node table (ids, addresses, key ranges, job config) and connects to the
// peers. KeyPartition maps keys to the servers that own them. No globals: each node object owns
// its Postoffice, so an in-process cluster simply has several.
#ifndef FMPS_PS_POSTOFFICE_H_
#define FMPS_PS_POSTOFFICE_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "config/params.h"
#include "proto/fmps.pb.h"
#include "ps/base/status.h"
#include "ps/transport.h"

namespace fmps {

constexpr int kSchedulerId = 0;

// Servers own contiguous ranges of Mix64(key): server s (0-based) owns [begin[s], begin[s+1]).
class KeyPartition {
 public:
  KeyPartition() = default;
  explicit KeyPartition(int num_servers);  // even split of the 64-bit ring
  int num_servers() const { return static_cast<int>(begin_.size()); }
  uint64_t begin(int s) const { return begin_[s]; }
  uint64_t end(int s) const;  // 0 stands for 2^64 (the last range)
  int ServerOf(uint64_t mixed) const;
  // Given keys sorted by Mix64, the index of the first key of each server, plus keys.size().
  std::vector<size_t> Slices(std::span<const uint64_t> mixed_sorted) const;

 private:
  std::vector<uint64_t> begin_;
};

struct PostofficeOptions {
  std::string scheduler_host = "127.0.0.1";
  int scheduler_port = 0;
  proto::Role role = proto::WORKER;
  std::string host = "127.0.0.1";  // address the peers use to reach this node
  int port = 0;                    // 0: any free port
  int replace_id = -1;             // >= 0: take over this id (a replacement node)
  double join_timeout_s = params::kDefault.join_timeout;  // give up joining after this long
  // The job this node joins (JobConfig.job_id): its messages carry it, and it believes only
  // messages that carry it. Empty: none, which the scheduler refuses.
  std::string job_id;
};

class Postoffice {
 public:
  Postoffice(std::unique_ptr<Transport> transport, const PostofficeOptions& options);

  // Binds, registers with the scheduler and waits for the node table; connects to every peer.
  Status Join();
  // After an OK Join: true when the scheduler answered that its job had already ended well (a
  // node started late, e.g. a restarted pod): there is nothing to do, and no node table.
  bool job_over() const { return job_over_; }
  // Puts this node's own entry into a heartbeat (a restarted scheduler addresses it from there).
  void StampHeartbeat(proto::Heartbeat* heartbeat) const;

  int my_id() const { return table_.your_id(); }
  const proto::NodeTable& table() const { return table_; }
  const proto::JobConfig& config() const { return table_.config(); }
  const KeyPartition& partition() const { return partition_; }
  int num_servers() const { return partition_.num_servers(); }
  int ServerId(int server_rank) const {
    return 1 + server_rank;
  }  // ids: scheduler 0, servers, workers
  int ServerRank(int node_id) const { return node_id - 1; }
  std::string NodeName(int id) const;

  // A newer node table from the scheduler (a node was replaced): reconnects to every peer whose
  // address changed. Called from the thread that owns the Postoffice's receive side.
  Status UpdateTable(const proto::NodeTable& table);

  // Messages dropped because they carried another job's id (or none).
  uint64_t foreign_dropped() const { return foreign_dropped_; }

  // Sends msg to node id, stamping the sender, the job and (to the scheduler) the token.
  Status Send(int id, Message msg);
  // The next message for this node: first those that arrived while joining, then the transport's.
  std::optional<Message> Recv(int timeout_ms);

 private:
  std::unique_ptr<Transport> transport_;
  PostofficeOptions options_;
  Status ConnectPeers(const proto::NodeTable* old);
  // True for a message of this job; otherwise counts and (rate-limited) logs it.
  bool OfThisJob(const Message& msg);

  proto::NodeTable table_;
  KeyPartition partition_;
  bool job_over_ = false;
  const uint64_t job_tag_;  // JobTag(options_.job_id)
  uint64_t foreign_dropped_ = 0;
  double foreign_logged_at_ = -1e9;
  // Requests that reached us before our node table (a worker can get its table first and pull at
  // once); kept for the receive loop instead of dropped, which would leave the sender waiting.
  // Filled by Join, drained by Recv: both on the receive side, never at the same time.
  std::deque<Message> early_;
};

}  // namespace fmps

#endif  // FMPS_PS_POSTOFFICE_H_
