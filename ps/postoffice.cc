#include "ps/postoffice.h"

#include <glog/logging.h>
#include <unistd.h>

#include <algorithm>

#include "ps/base/env.h"
#include "ps/base/keys.h"
#include "ps/job_id.h"

namespace fmps {
namespace {
// Early messages kept while joining: a few per worker in a real job, so this only bounds garbage.
constexpr size_t kMaxEarlyMessages = 10000;
constexpr double kRegisterEvery_s = 2;     // a joining node repeats its registration this often
constexpr double kForeignLogEvery_s = 10;  // at most one line per this long about other jobs
}  // namespace

KeyPartition::KeyPartition(int num_servers) {
  unsigned __int128 span = (static_cast<unsigned __int128>(1) << 64) / num_servers;
  for (int s = 0; s < num_servers; ++s) begin_.push_back(static_cast<uint64_t>(span * s));
}

uint64_t KeyPartition::end(int s) const { return s + 1 < num_servers() ? begin_[s + 1] : 0; }

int KeyPartition::ServerOf(uint64_t mixed) const {
  // A few servers: count the ranges that begin at or below `mixed`, without branches (a binary
  // search mispredicts every other step on random keys; a worker asks once per unique key).
  if (begin_.size() <= 16) {
    int s = 0;
    for (size_t i = 1; i < begin_.size(); ++i) s += mixed >= begin_[i] ? 1 : 0;
    return s;
  }
  auto it = std::upper_bound(begin_.begin(), begin_.end(), mixed);
  return static_cast<int>(it - begin_.begin()) - 1;
}

std::vector<size_t> KeyPartition::Slices(std::span<const uint64_t> mixed_sorted) const {
  std::vector<size_t> out(begin_.size() + 1);
  for (size_t s = 0; s < begin_.size(); ++s) {
    out[s] = std::lower_bound(mixed_sorted.begin(), mixed_sorted.end(), begin_[s]) -
             mixed_sorted.begin();
  }
  out[0] = 0;
  out[begin_.size()] = mixed_sorted.size();
  return out;
}

Postoffice::Postoffice(std::unique_ptr<Transport> transport, const PostofficeOptions& options)
    : transport_(std::move(transport)), options_(options), job_tag_(JobTag(options.job_id)) {}

bool Postoffice::OfThisJob(const Message& msg) {
  if (msg.meta.job() == job_tag_ && job_tag_ != 0) return true;
  ++foreign_dropped_;
  if (NowSeconds() - foreign_logged_at_ >= kForeignLogEvery_s) {
    foreign_logged_at_ = NowSeconds();
    LOG(WARNING) << "dropping " << proto::Command_Name(msg.meta.cmd()) << " from " << msg.peer
                 << " (sender " << msg.meta.sender()
                 << "): " << (msg.meta.job() == 0 ? "no job id" : "another job's id") << " ("
                 << foreign_dropped_ << " such messages dropped so far)";
  }
  return false;
}

std::string Postoffice::NodeName(int id) const {
  for (const auto& n : table_.nodes()) {
    if (n.id() == id) return n.name();
  }
  return "node " + std::to_string(id);
}

Status Postoffice::Join() {
  Result<int> port = transport_->Bind(options_.host, options_.port);
  if (!port.ok()) return port.status();
  const std::string sched = options_.scheduler_host + ":" + std::to_string(options_.scheduler_port);
  FMPS_RETURN_IF_ERROR(
      transport_->Connect(kSchedulerId, options_.scheduler_host, options_.scheduler_port));
  Message reg;
  reg.meta.set_cmd(proto::REGISTER);
  reg.meta.set_sender(-1);
  reg.meta.set_job(job_tag_);
  proto::NodeInfo* me = reg.meta.mutable_node();
  me->set_role(options_.role);
  me->set_host(options_.host);
  me->set_port(port.value());
  me->set_replace_id(options_.replace_id);
  me->set_name(std::string(proto::Role_Name(options_.role)) + " pid " + std::to_string(getpid()) +
               " at " + options_.host + ":" + std::to_string(port.value()));
  // A send that blocks here means no connection to the scheduler came up; with CURVE, that is
  // also what a key the scheduler refuses looks like from this side.
  auto send_registration = [&]() -> Status {
    Status st = transport_->Send(kSchedulerId, reg);
    if (st.ok()) return st;
    return Status::Timeout(
        "cannot register with the scheduler at " + sched + ": " + st.ToString() +
        " (is it running, are all nodes started, and do they share its --keys?)");
  };
  FMPS_RETURN_IF_ERROR(send_registration());
  double deadline = NowSeconds() + options_.join_timeout_s;
  // The registration is repeated until the table comes: a scheduler that restarted meanwhile (at
  // the same address) never saw the first one. The scheduler ignores repeats.
  double registered_at = NowSeconds();
  while (true) {
    if (NowSeconds() - registered_at >= kRegisterEvery_s) {
      FMPS_RETURN_IF_ERROR(send_registration());
      registered_at = NowSeconds();
    }
    double left = deadline - NowSeconds();
    if (left <= 0) {
      return Status::Timeout(
          "no node table from the scheduler at " + sched + " within " +
          std::to_string(static_cast<int>(options_.join_timeout_s)) +
          " s (is it running, are all nodes started, and do they share its --keys?)");
    }
    auto msg = transport_->Recv(static_cast<int>(std::min(left, 1.0) * 1000));
    if (!msg) continue;
    // The scheduler's refusal of a node without the job's id carries the node's own (none).
    if (job_tag_ == 0 && msg->meta.job() == 0 && msg->meta.cmd() == proto::SHUTDOWN &&
        !msg->meta.error().empty()) {
      return Status::Aborted("the scheduler at " + sched +
                             " refused this node: " + msg->meta.error());
    }
    if (!OfThisJob(*msg)) continue;
    if (msg->meta.cmd() == proto::SHUTDOWN) {
      if (msg->meta.error().empty()) {  // a job that ended well before this node could join it
        job_over_ = true;
        return Status::OK();
      }
      return Status::Aborted("the scheduler ended the job before it started: " + msg->meta.error());
    }
    if (msg->meta.cmd() != proto::NODE_TABLE) {
      if (early_.size() < kMaxEarlyMessages) {
        VLOG(1) << "keeping " << proto::Command_Name(msg->meta.cmd()) << " from " << msg->peer
                << " until the node table arrives";
        early_.push_back(std::move(*msg));
      } else {
        LOG(WARNING) << "ignoring " << proto::Command_Name(msg->meta.cmd()) << " from " << msg->peer
                     << " while joining (" << early_.size() << " messages already kept)";
      }
      continue;
    }
    table_ = msg->meta.table();
    break;
  }
  FMPS_RETURN_IF_ERROR(ConnectPeers(nullptr));
  VLOG(1) << "joined as node " << my_id() << " of " << table_.nodes_size();
  return Status::OK();
}

Status Postoffice::ConnectPeers(const proto::NodeTable* old) {
  int servers = 0;
  for (const auto& n : table_.nodes()) {
    if (n.role() == proto::SERVER) ++servers;
    if (n.id() == my_id() || n.id() == kSchedulerId) continue;
    if (old != nullptr && n.id() < old->nodes_size() && old->nodes(n.id()).host() == n.host() &&
        old->nodes(n.id()).port() == n.port()) {
      continue;
    }
    if (old != nullptr) LOG(INFO) << "node " << n.id() << " is now " << n.name();
    FMPS_RETURN_IF_ERROR(transport_->Connect(n.id(), n.host(), n.port()));
  }
  if (partition_.num_servers() != servers) partition_ = KeyPartition(servers);
  return Status::OK();
}

Status Postoffice::UpdateTable(const proto::NodeTable& table) {
  if (table.your_id() != my_id() || table.nodes_size() != table_.nodes_size()) {
    return Status::InvalidArgument("a node table for node " + std::to_string(table.your_id()) +
                                   " with " + std::to_string(table.nodes_size()) +
                                   " nodes does not fit this job");
  }
  proto::NodeTable old = std::move(table_);
  table_ = table;
  return ConnectPeers(&old);
}

std::optional<Message> Postoffice::Recv(int timeout_ms) {
  if (!early_.empty()) {
    Message msg = std::move(early_.front());
    early_.pop_front();
    return msg;
  }
  const double deadline = NowSeconds() + timeout_ms / 1000.0;
  while (true) {
    std::optional<Message> msg = transport_->Recv(timeout_ms);
    if (!msg || OfThisJob(*msg)) return msg;
    timeout_ms = std::max(0, static_cast<int>((deadline - NowSeconds()) * 1000));
  }
}

void Postoffice::StampHeartbeat(proto::Heartbeat* heartbeat) const {
  const int me = my_id();
  if (me >= 0 && me < table_.nodes_size()) *heartbeat->mutable_from() = table_.nodes(me);
}

Status Postoffice::Send(int id, Message msg) {
  msg.meta.set_sender(my_id());
  msg.meta.set_job(job_tag_);
  if (id == kSchedulerId) {
    msg.meta.set_incarnation(table_.incarnation());
    msg.meta.set_token(table_.your_token());
  }
  return transport_->Send(id, std::move(msg));
}

}  // namespace fmps
