// Scheduler, membership: registration, the node table, heartbeats and failures, replacements, and
// which messages belong to this job and to the node they name.
#include <glog/logging.h>

#include <algorithm>

#include "ps/base/env.h"
#include "ps/checkpoint.h"
#include "ps/job_id.h"
#include "ps/postoffice.h"
#include "scheduler/scheduler.h"

namespace fmps {

void Scheduler::LogRefusal(int kind, const std::string& what) {
  ++refusals_[kind];
  if (NowSeconds() - refusal_logged_at_[kind] < 10) return;
  refusal_logged_at_[kind] = NowSeconds();
  LOG(WARNING) << what << " (" << refusals_[kind] << " such messages dropped so far)";
}

bool Scheduler::OfThisJob(const Message& msg) {
  if (msg.meta.job() == job_tag_) return true;
  const std::string whose = msg.meta.job() == 0 ? "no job id" : "another job's id";
  if (msg.meta.cmd() != proto::REGISTER || !msg.meta.has_node()) {
    LogRefusal(0, "dropping " + proto::Command_Name(msg.meta.cmd()) + " from " + msg.peer +
                      " (sender " + std::to_string(msg.meta.sender()) + "): " + whose);
    return false;
  }
  const proto::NodeInfo& n = msg.meta.node();
  const std::string at = n.host() + ":" + std::to_string(n.port());
  ++refusals_[0];
  if (refused_.size() < 10000 && refused_.insert(at).second) {
    LOG(WARNING) << "refusing the registration of " << n.name() << " (from " << msg.peer
                 << "): " << whose << "; nodes of this job are started with its --job_id";
    const int temp = static_cast<int>(nodes_.size()) + 1000 + next_temp_id_++;
    if (transport_->Connect(temp, n.host(), n.port()).ok()) {
      Message m;
      m.meta.set_cmd(proto::SHUTDOWN);
      m.meta.set_sender(kSchedulerId);
      m.meta.set_job(msg.meta.job());  // its own: the node believes only its job's messages
      m.meta.set_error(whose == "no job id"
                           ? "it has no job id (--job_id or FMPS_JOB_ID, as the job's nodes)"
                           : "its job id is not this job's");
      (void)transport_->Send(temp, std::move(m));
    }
  }
  return false;
}

bool Scheduler::FromTheNodeItNames(const Message& msg) {
  const int from = msg.meta.sender();
  if (msg.meta.incarnation() != 0 && msg.meta.token() == nodes_[from].token) return true;
  LogRefusal(1, "dropping " + proto::Command_Name(msg.meta.cmd()) + " from " + msg.peer +
                    " claiming to be " + Name(from) + ": " +
                    (msg.meta.incarnation() == 0 ? "no incarnation" : "not that node's token"));
  return false;
}

bool Scheduler::SendHomeIfStale(const Message& msg) {
  if (msg.meta.incarnation() == 0 || msg.meta.incarnation() == incarnation_) return false;
  // A node of an earlier run of this scheduler (which restarted at the same address): its sender
  // id means nothing here, and it would wait for parts or answers that never come. Its message is
  // dropped; at its first heartbeat (which says where it listens) it is told to go, once, and
  // exits with an error, so that its supervisor (kubelet, --restart_failed) starts it again.
  const proto::Heartbeat& hb = msg.meta.heartbeat();
  if (msg.meta.cmd() != proto::HEARTBEAT || !hb.has_from()) return true;
  const std::string at = hb.from().host() + ":" + std::to_string(hb.from().port());
  if (sent_home_.insert(at).second) {
    LOG(WARNING) << hb.from().name() << " belongs to an earlier run of this scheduler: sent home";
    ShutDownUnadmitted({hb.from()},
                       "the scheduler restarted: this node belongs to its earlier run");
  }
  return true;
}

bool Scheduler::Registered(const proto::NodeInfo& node, const std::vector<proto::NodeInfo>& list) {
  for (const proto::NodeInfo& n : list) {
    if (n.host() == node.host() && n.port() == node.port()) return true;
  }
  return false;
}

void Scheduler::ShutDownUnadmitted(const std::vector<proto::NodeInfo>& nodes,
                                   const std::string& error) {
  for (const proto::NodeInfo& n : nodes) {
    // Ids past every node's: the transport needs one to address a node outside the table.
    const int temp = static_cast<int>(nodes_.size()) + 1000 + next_temp_id_++;
    if (!transport_->Connect(temp, n.host(), n.port()).ok()) continue;
    Message m;
    m.meta.set_cmd(proto::SHUTDOWN);
    if (!error.empty()) m.meta.set_error(error);
    (void)Send(temp, std::move(m));
  }
}

Status Scheduler::Join() {
  const int want_servers = options_.config.num_servers(),
            want_workers = options_.config.num_workers();
  std::vector<proto::NodeInfo> servers, workers;
  double deadline = NowSeconds() + options_.join_timeout_s;
  while (static_cast<int>(servers.size()) < want_servers ||
         static_cast<int>(workers.size()) < want_workers) {
    if (NowSeconds() > deadline) {
      std::string who;
      for (const auto* list : {&servers, &workers}) {
        for (const auto& n : *list) who += "\n  registered: " + n.name();
      }
      // Tell the nodes that came that the job will not start, so they exit instead of waiting.
      ShutDownUnadmitted(servers, "not all nodes registered");
      ShutDownUnadmitted(workers, "not all nodes registered");
      return Status::Timeout(
          "after " + std::to_string(static_cast<int>(options_.join_timeout_s)) + " s only " +
          std::to_string(servers.size()) + " of " + std::to_string(want_servers) + " servers and " +
          std::to_string(workers.size()) + " of " + std::to_string(want_workers) +
          " workers registered with the scheduler at " + options_.host + ":" +
          std::to_string(options_.port) + who);
    }
    auto msg = transport_->Recv(200);
    if (!msg) continue;
    if (!OfThisJob(*msg) || SendHomeIfStale(*msg)) continue;
    if (msg->meta.cmd() != proto::REGISTER) {
      LOG(WARNING) << "ignoring " << proto::Command_Name(msg->meta.cmd()) << " from " << msg->peer
                   << " before the job started";
      continue;
    }
    const proto::NodeInfo& n = msg->meta.node();
    if (Registered(n, servers) || Registered(n, workers)) continue;  // a repeat: nodes resend
    auto& list = n.role() == proto::SERVER ? servers : workers;
    int want = n.role() == proto::SERVER ? want_servers : want_workers;
    if ((n.role() != proto::SERVER && n.role() != proto::WORKER) ||
        static_cast<int>(list.size()) >= want) {
      LOG(WARNING) << "rejecting registration of " << n.name() << ": not needed in this job";
      continue;
    }
    LOG(INFO) << "registered " << n.name();
    list.push_back(n);
  }
  nodes_.resize(1 + servers.size() + workers.size());
  nodes_[0].info.set_role(proto::SCHEDULER);
  nodes_[0].info.set_host(options_.host);
  nodes_[0].info.set_port(options_.port);
  nodes_[0].info.set_name("scheduler at " + options_.host + ":" + std::to_string(options_.port));
  KeyPartition partition(want_servers);
  int id = 1;
  for (auto* list : {&servers, &workers}) {
    for (auto& n : *list) {
      n.set_id(id);
      if (n.role() == proto::SERVER) {
        n.set_range_begin(partition.begin(id - 1));
        n.set_range_end(partition.end(id - 1));
        n.set_name("server " + std::to_string(id - 1) + " (" + n.name() + ")");
      } else {
        n.set_name("worker " + std::to_string(id - 1 - want_servers) + " (" + n.name() + ")");
      }
      nodes_[id].info = n;
      nodes_[id].token = RandomNonzero64();
      nodes_[id].last_seen = NowSeconds();
      FMPS_RETURN_IF_ERROR(transport_->Connect(id, n.host(), n.port()));
      ++id;
    }
  }
  proto::NodeTable table = Table();
  for (size_t i = 1; i < nodes_.size(); ++i) {
    Message m;
    m.meta.set_cmd(proto::NODE_TABLE);
    *m.meta.mutable_table() = table;
    m.meta.mutable_table()->set_your_id(static_cast<int>(i));
    m.meta.mutable_table()->set_your_token(nodes_[i].token);
    FMPS_RETURN_IF_ERROR(Send(static_cast<int>(i), std::move(m)));
  }
  LOG(INFO) << "all " << want_servers << " servers and " << want_workers << " workers joined";
  UpdateNodeGauges();
  metrics_->registry().SetReady(true, "scheduler: all nodes joined");
  return Status::OK();
}

proto::NodeTable Scheduler::Table() const {
  proto::NodeTable table;
  for (const Node& n : nodes_) *table.add_nodes() = n.info;
  *table.mutable_config() = options_.config;
  table.set_incarnation(incarnation_);
  return table;
}

bool Scheduler::AllServersAlive() const {
  for (const Node& n : nodes_) {
    if (n.info.role() == proto::SERVER && n.dead) return false;
  }
  return true;
}

void Scheduler::DeclareDead(int id, double silent_s) {
  Node& n = nodes_[id];
  n.dead = true;
  metrics_->nodes_declared_dead->Add();
  UpdateNodeGauges();
  if (n.info.role() == proto::WORKER) {
    retired_rows_ += n.heartbeat.rows();
    retired_loss_ += n.heartbeat.loss_sum();
    n.heartbeat.Clear();
    int returned = train_pool_.ReturnParts(id) + test_pool_.ReturnParts(id);
    LOG(WARNING) << Name(id) << " missed heartbeats for " << static_cast<int>(silent_s)
                 << " s: declared dead, " << returned << " unfinished parts go back to the pool";
    return;
  }
  // A server: its updates since the last checkpoint are lost. Everything in flight is abandoned
  // (workers drop their parts, the parts go back to the pool) until a replacement has the shard.
  if (server_dead_since_ == 0) server_dead_since_ = NowSeconds();
  int returned = 0;
  for (size_t w = 1; w < nodes_.size(); ++w) {
    if (nodes_[w].info.role() != proto::WORKER) continue;
    returned +=
        train_pool_.ReturnParts(static_cast<int>(w)) + test_pool_.ReturnParts(static_cast<int>(w));
    Message m;
    m.meta.set_cmd(proto::SERVER_DOWN);
    m.meta.set_request_id(id);
    (void)Send(static_cast<int>(w), std::move(m));
  }
  if (checkpoint_running_) {
    LOG(WARNING) << "checkpoint " << manifest_.version() << " abandoned: " << Name(id) << " died";
    checkpoint_running_ = false;
  }
  LOG(WARNING) << Name(id) << " missed heartbeats for " << static_cast<int>(silent_s)
               << " s: declared dead; " << returned
               << " parts in flight go back to the pool. Waiting up to "
               << static_cast<int>(options_.replace_timeout_s)
               << " s for a replacement: `fmps server --scheduler=" << options_.host << ":"
               << options_.port << " --replace=" << id << "` (or `fmps train --restart_failed`)";
}

bool Scheduler::AdmitReplacement(const proto::NodeInfo& reg) {
  int target = -1;
  if (reg.replace_id() > 0 && reg.replace_id() < static_cast<int>(nodes_.size()) &&
      nodes_[reg.replace_id()].dead && nodes_[reg.replace_id()].info.role() == reg.role()) {
    target = reg.replace_id();
  }
  for (size_t id = 1; target < 0 && id < nodes_.size(); ++id) {
    if (nodes_[id].dead && nodes_[id].info.role() == reg.role()) target = static_cast<int>(id);
  }
  if (target < 0) return false;
  Node& n = nodes_[target];
  std::string old_name = n.info.name();
  n.info.set_host(reg.host());
  n.info.set_port(reg.port());
  std::string role = reg.role() == proto::SERVER
                         ? "server " + std::to_string(target - 1)
                         : "worker " + std::to_string(target - 1 - options_.config.num_servers());
  n.info.set_name(role + " (" + reg.name() + ")");
  n.dead = false;
  sent_home_dead_.erase(target);
  metrics_->restarts->Add();
  UpdateNodeGauges();
  n.token = RandomNonzero64();  // the node it replaces (if it wakes) no longer speaks for it
  n.last_seen = NowSeconds();
  n.last_heartbeat = 0;
  n.heartbeat.Clear();
  Status st = transport_->Connect(target, reg.host(), reg.port());
  if (!st.ok()) {
    LOG(WARNING) << "cannot reach replacement " << reg.name() << ": " << st.ToString();
    n.dead = true;
    return true;  // drop this registration
  }
  proto::NodeTable table = Table();
  std::string restored = "no checkpoint: it starts empty";
  if (reg.role() == proto::SERVER) {
    const std::string& dir = options_.config.model_dir();
    Result<proto::Manifest> m = dir.empty()
                                    ? Result<proto::Manifest>(Status::NotFound("no --model_dir"))
                                    : FindNewestGoodManifest(dir, options_.env);
    // Only a version this job wrote, or the one it resumed: an older job's model is not this one.
    if (m.ok() && m->version() < first_own_version_ &&
        !(options_.resume && parent_dir_ == dir && m->version() == parent_version_)) {
      m = Status::NotFound("no checkpoint of this job yet");
    }
    if (m.ok()) {
      table.mutable_config()->set_init_model(dir);
      restored = "restored from checkpoint " + std::to_string(m->version()) + " (" +
                 std::to_string(m->rows()) + " rows trained then, " +
                 std::to_string(rows_done_ - std::min(rows_done_, m->rows())) +
                 " rows since: their updates to this shard are lost)";
    } else if (!options_.config.init_model().empty()) {
      restored = "restored from --init_model " + options_.config.init_model();
    }
  }
  for (size_t id = 1; id < nodes_.size(); ++id) {
    if (nodes_[id].dead) continue;
    Message m;
    m.meta.set_cmd(proto::NODE_TABLE);
    *m.meta.mutable_table() = table;
    m.meta.mutable_table()->set_your_id(static_cast<int>(id));
    m.meta.mutable_table()->set_your_token(nodes_[id].token);
    if (static_cast<int>(id) != target)
      m.meta.mutable_table()->mutable_config()->set_init_model(options_.config.init_model());
    (void)Send(static_cast<int>(id), std::move(m));
  }
  LOG(WARNING) << n.info.name() << " replaces " << old_name
               << (reg.role() == proto::SERVER ? "; shard " + restored : std::string());
  if (AllServersAlive()) server_dead_since_ = 0;
  return true;
}

}  // namespace fmps
