#include "scheduler/scheduler.h"

#include <glog/logging.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>

#include "models/metrics.h"
#include "ps/base/env.h"
#include "ps/base/keys.h"
#include "ps/checkpoint.h"
#include "ps/job_id.h"
#include "ps/postoffice.h"
#include "data/byte_source.h"
#include "scheduler/lineage.h"

namespace fmps {

namespace {

// A JSON number, or null for NaN and infinities (which JSON cannot spell: "-nan" broke parsers).
std::string JsonDouble(double v, const char* format) {
  if (!std::isfinite(v)) return "null";
  char text[64];
  std::snprintf(text, sizeof(text), format, v);
  return text;
}

// A JSON string: quotes, backslashes and control characters escaped (paths may hold any byte).
std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "\\u%04x", static_cast<unsigned char>(c));
      out += hex;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// Makes the job's id when none was given; its tag.
uint64_t TagOfJob(proto::JobConfig* config) {
  if (config->job_id().empty()) config->set_job_id(NewJobId());
  return JobTag(config->job_id());
}

}  // namespace

std::string JobReport::ToJson() const {
  // Without a test set there is no test logloss or AUC: null, not a misleading 0.
  std::string test = "\"test_logloss\":null,\"test_auc\":null";
  if (test_rows > 0) {
    test = "\"test_logloss\":" + JsonDouble(test_logloss, "%.6f") +
           ",\"test_auc\":" + JsonDouble(test_auc, "%.6f");
  }
  test += ",\"test_nonfinite_scores\":" + std::to_string(test_nonfinite_scores) +
          ",\"nonfinite_pushes\":" + std::to_string(nonfinite_pushes);
  char buf[1536];
  std::snprintf(buf, sizeof(buf),
                "{\"rows\":%" PRIu64 ",\"resumed_rows\":%" PRIu64
                ",\"seconds\":%.3f,\"train_seconds\":%.3f,"
                "\"rows_per_s\":%.1f,\"train_logloss\":%s,%s,\"test_rows\":%" PRIu64
                ",\"peak_rss_mb\":%.1f,\"peak_rss_mb_by_role\":{\"scheduler\":%.1f,\"server\":%.1f,"
                "\"worker\":%.1f},\"params\":%" PRIu64 ",\"nonzero_w\":%" PRIu64
                ",\"embeddings\":%" PRIu64 ",\"embedding_floats\":%" PRIu64
                ",\"bad_lines\":%" PRIu64,
                rows, resumed_rows, seconds, train_seconds,
                train_seconds > 0 ? static_cast<double>(rows - resumed_rows) / train_seconds : 0.0,
                JsonDouble(train_logloss, "%.6f").c_str(), test.c_str(), test_rows, peak_rss_mb,
                peak_rss_scheduler_mb, peak_rss_server_mb, peak_rss_worker_mb, params, nonzero_w,
                embeddings, embedding_floats, bad_lines);
  // The strings go after the fixed-size part: a long model_dir must not be cut off mid-string.
  std::string json = buf;
  json += ",\"model\":" + JsonString(model) + ",\"model_dir\":" + JsonString(model_dir);
  json += ",\"replayed_rows\":" + std::to_string(replayed_rows) + ",\"epoch_rows_per_s\":[";
  for (size_t e = 0; e < epoch_rows_per_s.size(); ++e) {
    json += (e > 0 ? "," : "") + JsonDouble(epoch_rows_per_s[e], "%.1f");
  }
  json += "],\"epochs\":" + epochs_json + ",\"holdout_rows\":" + std::to_string(holdout_rows);
  json += ",\"best_epoch\":" + std::to_string(best_epoch) +
          ",\"best_val_logloss\":" + JsonDouble(best_val_logloss, "%.6f") +
          ",\"stopped_early\":" + (stopped_early ? "true" : "false") +
          ",\"validation_seconds\":" + JsonDouble(validation_seconds, "%.3f");
  return json + "}";
}

Scheduler::Scheduler(std::unique_ptr<Transport> transport, const SchedulerOptions& options)
    : transport_(std::move(transport)),
      options_(options),
      train_pool_(options.pool),
      test_pool_(options.pool),
      val_pool_(options.pool),
      evaluations_(options.early_stop),
      incarnation_(Mix64(std::random_device()() ^ (uint64_t(std::random_device()()) << 32) ^
                         static_cast<uint64_t>(NowSeconds() * 1e6)) |
                   1),
      job_tag_(TagOfJob(&options_.config)),
      metrics_(std::make_unique<JobMetrics>(options.metrics, options.config.num_servers(),
                                            options.config.num_workers(),
                                            options.config.epochs())) {}

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

Scheduler::~Scheduler() = default;

Result<int> Scheduler::Bind() {
  Result<int> port = transport_->Bind(options_.host, options_.port);
  if (port.ok()) options_.port = port.value();
  return port;
}

std::string Scheduler::Name(int id) const {
  if (id >= 0 && id < static_cast<int>(nodes_.size())) return nodes_[id].info.name();
  return "node " + std::to_string(id);
}

Status Scheduler::Send(int id, Message msg) {
  msg.meta.set_sender(kSchedulerId);
  msg.meta.set_job(job_tag_);
  return transport_->Send(id, msg);
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

void Scheduler::Broadcast(proto::Command cmd, const std::string& error) {
  for (size_t id = 1; id < nodes_.size(); ++id) {
    Message m;
    m.meta.set_cmd(cmd);
    if (!error.empty()) m.meta.set_error(error);
    Status st = Send(static_cast<int>(id), std::move(m));
    if (!st.ok()) VLOG(1) << "broadcast to " << Name(static_cast<int>(id)) << ": " << st.ToString();
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

Status Scheduler::Resume() {
  const std::string& dir = options_.config.model_dir();
  Result<std::optional<proto::Manifest>> found = FindResumeCheckpoint(dir, options_.env);
  if (!found.ok()) return found.status();
  if (!found->has_value()) {
    LOG(INFO) << "--resume: no checkpoint in " << dir << " yet; starting from scratch";
    return Status::OK();
  }
  const proto::Manifest& m = **found;
  const std::string name = "--resume: checkpoint " + CheckpointName(dir, m.version());
  FMPS_RETURN_IF_ERROR(CheckSameModelShape(m.config(), options_.config, name));
  options_.config.set_init_model(dir);
  parent_version_ = m.version();
  parent_dir_ = dir;
  Status same = CheckSameTrainingData(m, train_pool_, dir, options_.env);
  if (!same.ok()) {
    if (!options_.resume_new_data) return same;
    LOG(WARNING) << "--resume_new_data: the data is not what checkpoint " << m.version()
                 << " recorded (" << same.message() << "); its model is loaded and all "
                 << options_.config.epochs() << " epoch(s) of this data are trained";
    return Status::OK();
  }
  epoch_ = m.epoch();
  rows_done_ = resumed_rows_ = m.rows();
  std::vector<int> done(m.parts_done().begin(), m.parts_done().end());
  if (epoch_ >= options_.config.epochs()) {
    // A checkpoint written after the last epoch: training is over, only the test pass is left.
    epoch_ = options_.config.epochs() - 1;
    done.clear();
    for (size_t id = 0; id < train_pool_.num_parts(); ++id) done.push_back(static_cast<int>(id));
  }
  train_pool_.MarkDone(done);
  LOG(INFO) << "resuming from checkpoint " << m.version() << " in " << dir << ": epoch " << epoch_
            << ", " << done.size() << " parts of it done, " << rows_done_ << " rows trained";
  return Status::OK();
}

Result<JobReport> Scheduler::Run() {
  start_ = NowSeconds();
  if (options_.config.job_id().empty()) {
    std::random_device rd;
    char id[17];
    std::snprintf(id, sizeof(id), "%016" PRIx64, (uint64_t{rd()} << 32) ^ rd());
    options_.config.set_job_id(id);
  }
  FMPS_RETURN_IF_ERROR(metrics_->OpenLog(options_.metrics_out, start_));
  FMPS_RETURN_IF_ERROR(train_pool_.AddFiles(options_.train_files));
  if (!options_.test_files.empty()) FMPS_RETURN_IF_ERROR(test_pool_.AddFiles(options_.test_files));
  if (!options_.validation_files.empty()) {
    FMPS_RETURN_IF_ERROR(val_pool_.AddFiles(options_.validation_files));
  } else if (options_.config.holdout() > 0) {
    for (const std::string& f : options_.train_files) {
      if (IsStream(f))
        return Status::InvalidArgument(
            (f == "-" ? std::string("stdin") : f) +
            " is a stream, read once: its held-out rows cannot be read again for validation; "
            "give --validation=FILE instead of --holdout");
    }
    FMPS_RETURN_IF_ERROR(val_pool_.AddFiles(options_.train_files));
  }
  const std::string& dir = options_.config.model_dir();
  if (!dir.empty()) {
    FMPS_RETURN_IF_ERROR(MakeDirs(dir, options_.env));
    // Versions only go forward: past every MANIFEST in the directory, of any job, good or not.
    checkpoint_version_ = NewestManifestVersion(dir, options_.env);
  }
  if (options_.resume) FMPS_RETURN_IF_ERROR(Resume());
  if (!options_.resume && !options_.config.init_model().empty()) {
    Result<proto::Manifest> m = FindNewestGoodManifest(options_.config.init_model(), options_.env);
    if (m.ok()) {
      parent_version_ = m->version();
      parent_dir_ = options_.config.init_model();
    }
  }
  first_own_version_ = checkpoint_version_ + 1;
  if (checkpoint_version_ > 0) {
    LOG(INFO) << dir << " holds versions up to " << checkpoint_version_ << ": job "
              << options_.config.job_id() << " writes its versions from " << first_own_version_;
  }
  Status st = Join();
  if (st.ok()) {
    phase_ = Phase::kTraining;
    train_start_ = last_progress_ = last_checkpoint_ = progress_time_ = epoch_start_ =
        eval_train_start_ = NowSeconds();
    progress_rows_ = eval_rows_ = rows_done_;
    st = AdvanceIfPassDone();
    while (st.ok() && !JobComplete()) {
      auto msg = transport_->Recv(50);
      if (msg) st = Handle(std::move(*msg));
      if (st.ok()) st = Tick();
    }
  }
  // Registrations still waiting for a node to replace are told too: a late node (a restarted
  // pod) then exits at once, with success when the job ended well.
  if (!st.ok()) {
    LOG(ERROR) << "job failed: " << st.ToString();
    Broadcast(proto::SHUTDOWN, st.message());
    ShutDownUnadmitted(waiting_, st.message());
    return st;
  }
  Broadcast(proto::SHUTDOWN);
  ShutDownUnadmitted(waiting_, "");
  PrintProgress();
  if (bar_shown_) std::fputc('\n', stderr);
  JobReport r;
  r.rows = rows_done_;
  r.resumed_rows = resumed_rows_;
  r.seconds = NowSeconds() - start_;
  r.train_seconds = train_end_ - train_start_ - val_seconds_;
  r.validation_seconds = val_seconds_;
  r.epochs_json = evaluations_.Json();
  r.holdout_rows = holdout_rows_;
  r.stopped_early = stopped_early_;
  if (const EvaluationFigures* best = evaluations_.Best()) {
    r.best_epoch = best->epoch;
    r.best_val_logloss = best->val_logloss;
  }
  r.train_logloss = last_epoch_logloss_;
  r.epoch_rows_per_s = epoch_rows_per_s_;
  r.replayed_rows = replayed_rows_;
  r.test_rows = test_labels_.size();
  if (!test_labels_.empty()) {
    std::vector<float> probs(test_logits_.size());
    for (size_t i = 0; i < probs.size(); ++i)
      probs[i] = static_cast<float>(Sigmoid(test_logits_[i]));
    r.test_logloss = LogLoss(test_labels_, probs);
    // Sigmoid maps an infinite logit to a finite probability: the logits say what is non-finite.
    r.test_auc = Auc(test_labels_, test_logits_, &r.test_nonfinite_scores);
    if (r.test_nonfinite_scores > 0) {
      for (size_t i = 0; i < probs.size(); ++i)
        if (!std::isfinite(test_logits_[i])) probs[i] = std::numeric_limits<float>::quiet_NaN();
      r.test_logloss = LogLoss(test_labels_, probs);
      LOG(WARNING) << r.test_nonfinite_scores << " of " << probs.size()
                   << " test rows scored NaN or infinite: left out of the test logloss and AUC";
    }
    if (final_checkpoint_done_) {
      // The final version carries its test figures (`fmps models` lists them).
      manifest_.set_test_rows(r.test_rows);
      manifest_.set_test_logloss(r.test_logloss);
      manifest_.set_test_auc(r.test_auc);
      Status written = WriteManifest(dir, manifest_, options_.env);
      if (!written.ok()) LOG(WARNING) << "test figures not recorded: " << written.ToString();
    }
    metrics_->test_logloss->Set(r.test_logloss);
    metrics_->test_auc->Set(r.test_auc);
  }
  double peak = static_cast<double>(PeakRssBytes());
  uint64_t dense_params = 0;
  r.peak_rss_scheduler_mb = peak / (1 << 20);
  for (const Node& n : nodes_) {
    peak = std::max(peak, static_cast<double>(n.heartbeat.peak_rss_bytes()));
    double& role_peak =
        n.info.role() == proto::SERVER ? r.peak_rss_server_mb : r.peak_rss_worker_mb;
    if (n.info.role() != proto::SCHEDULER) {
      role_peak =
          std::max(role_peak, static_cast<double>(n.heartbeat.peak_rss_bytes()) / (1 << 20));
    }
    if (n.info.role() == proto::SERVER) {
      r.nonzero_w += n.heartbeat.nonzero_w();
      r.embeddings += n.heartbeat.embeddings();
      r.embedding_floats += n.heartbeat.embedding_floats();
      dense_params += n.heartbeat.dense_params();
      r.nonfinite_pushes += n.heartbeat.nonfinite_pushes();
    }
  }
  if (r.nonfinite_pushes > 0) {
    LOG(WARNING) << "servers dropped " << r.nonfinite_pushes
                 << " pushes with NaN or infinite gradients (their logs name the senders)";
  }
  r.peak_rss_mb = peak / (1 << 20);
  r.params = r.nonzero_w + r.embedding_floats + dense_params;
  r.bad_lines = bad_lines_;
  r.model = options_.config.model();
  r.model_dir = dir;
  metrics_->WriteLine("end");
  return r;
}

bool Scheduler::JobComplete() const {
  if (phase_ != Phase::kDone || (!options_.config.model_dir().empty() && !final_checkpoint_done_))
    return false;
  for (const Node& n : nodes_) {
    if (n.info.role() == proto::SERVER && !n.dead && n.last_heartbeat < done_time_) return false;
  }
  return true;
}

double Scheduler::Progress() const {
  return std::min(1.0,
                  (epoch_ + static_cast<double>(train_pool_.num_done()) /
                                static_cast<double>(std::max<size_t>(1, train_pool_.num_parts()))) /
                      std::max(1, options_.config.epochs()));
}

void Scheduler::SendProgressToServers(double progress) {
  for (size_t id = 1; id < nodes_.size(); ++id) {
    if (nodes_[id].info.role() != proto::SERVER || nodes_[id].dead) continue;
    Message m;
    m.meta.set_cmd(proto::HEARTBEAT);
    m.meta.mutable_heartbeat()->set_progress(progress);
    (void)Send(static_cast<int>(id), std::move(m));
  }
}

Status Scheduler::Handle(Message&& msg) {
  const int from = msg.meta.sender();
  if (!OfThisJob(msg) || SendHomeIfStale(msg)) return Status::OK();
  if (msg.meta.cmd() == proto::REGISTER) {
    const proto::NodeInfo& reg = msg.meta.node();
    if (reg.role() != proto::SERVER && reg.role() != proto::WORKER) {
      LOG(WARNING) << "rejecting registration from " << msg.peer << ": bad role";
      return Status::OK();
    }
    // Nodes repeat their registration until their table comes: a node of the job (its table on
    // the way) or one already waiting is not registered twice.
    if (Registered(reg, waiting_)) return Status::OK();
    for (const Node& n : nodes_) {
      if (!n.dead && n.info.host() == reg.host() && n.info.port() == reg.port())
        return Status::OK();
    }
    LOG(INFO) << "registration during the job: " << reg.name() << "; it will replace a failed "
              << (reg.role() == proto::SERVER ? "server" : "worker");
    waiting_.push_back(reg);
    return Status::OK();
  }
  if (from <= 0 || from >= static_cast<int>(nodes_.size())) {
    LOG(WARNING) << "dropping " << proto::Command_Name(msg.meta.cmd()) << " from " << msg.peer
                 << ": sender " << from << " is not in this job";
    return Status::OK();
  }
  if (!FromTheNodeItNames(msg)) return Status::OK();
  Node& node = nodes_[from];
  if (node.dead) {
    // A node that stalled past the heartbeat timeout and woke: its work went to others, so it is
    // told to go (once) and exits with an error, instead of idling to the end of the job.
    if (sent_home_dead_.insert(from).second) {
      LOG(WARNING) << Name(from) << " was declared dead earlier and woke up ("
                   << proto::Command_Name(msg.meta.cmd()) << "): sent home";
      Message m;
      m.meta.set_cmd(proto::SHUTDOWN);
      m.meta.set_error("this node was declared dead (no heartbeat for more than " +
                       std::to_string(options_.heartbeat_timeout_s) +
                       " s) and its work was given to others");
      (void)Send(from, std::move(m));
    }
    return Status::OK();
  }
  node.last_seen = NowSeconds();
  switch (msg.meta.cmd()) {
    case proto::REQUEST_PART:
      return HandleRequestPart(from);
    case proto::PART_DONE:
      return HandlePartDone(from, msg.meta.part_done());
    case proto::RETURN_PART:
      HandleReturnPart(from, msg.meta.part());
      return Status::OK();
    case proto::PREDICTIONS: {
      auto& slot = pending_predictions_[msg.meta.part().id()];
      if (msg.frames.size() != 2 || !FromFrame(msg.frames[0], &slot.first) ||
          !FromFrame(msg.frames[1], &slot.second) || slot.first.size() != slot.second.size()) {
        LOG(WARNING) << "dropping malformed predictions from " << Name(from);
        pending_predictions_.erase(msg.meta.part().id());
      }
      return Status::OK();
    }
    case proto::HEARTBEAT:
      node.heartbeat = msg.meta.heartbeat();
      node.last_heartbeat = NowSeconds();
      return Status::OK();
    case proto::CHECKPOINT_DONE:
      return HandleCheckpointDone(msg.meta.checkpoint());
    case proto::FATAL:
      return Status::Aborted(Name(from) + " failed: " + msg.meta.error());
    default:
      LOG(WARNING) << "scheduler ignoring " << proto::Command_Name(msg.meta.cmd()) << " from "
                   << Name(from);
      return Status::OK();
  }
}

Status Scheduler::HandleRequestPart(int worker) {
  Message m;
  m.meta.set_cmd(proto::ASSIGN_PART);
  proto::Part* part = m.meta.mutable_part();
  WorkPool* pool = phase_ == Phase::kTraining     ? &train_pool_
                   : phase_ == Phase::kValidating ? &val_pool_
                   : phase_ == Phase::kTesting    ? &test_pool_
                                                  : nullptr;
  if (!AllServersAlive()) pool = nullptr;  // nothing new until the dead server's shard is back
  // A validation due: the training parts out are finished first, then the model is scored.
  if (phase_ == Phase::kTraining && ValidationDue()) pool = nullptr;
  if (kept_copy_ != KeptCopy::kNone) pool = nullptr;  // the servers keep or restore the best model
  std::optional<WorkItem> item = pool ? pool->Take(worker) : std::nullopt;
  if (item) {
    part->set_kind(proto::Part::PART);
    part->set_id(item->id);
    part->set_pass(phase_ == Phase::kTraining     ? epoch_
                   : phase_ == Phase::kValidating ? val_pass_
                                                  : -1);
    part->set_holdout(phase_ == Phase::kValidating && options_.validation_files.empty());
    part->set_path(item->part.path);
    part->set_begin(item->part.begin);
    part->set_end(item->part.end);
  } else {
    part->set_kind(phase_ == Phase::kDone && AllServersAlive() ? proto::Part::FINISHED
                                                               : proto::Part::WAIT);
  }
  return Send(worker, std::move(m));
}

WorkPool* Scheduler::PoolOfPass(int pass) {
  if (pass >= 0) return phase_ == Phase::kTraining && pass == epoch_ ? &train_pool_ : nullptr;
  if (pass <= -2) return phase_ == Phase::kValidating && pass == val_pass_ ? &val_pool_ : nullptr;
  return phase_ == Phase::kTesting ? &test_pool_ : nullptr;
}

void Scheduler::HandleReturnPart(int worker, const proto::Part& part) {
  // A worker asks for its next part before it needs it; after a failure it gives back one that
  // came too late to be read. Parts of another pass, or no longer this worker's (all of its parts
  // went back to the pool when a server died), are left alone.
  WorkPool* pool = PoolOfPass(part.pass());
  if (pool != nullptr && pool->ReturnPart(part.id(), worker))
    LOG(INFO) << Name(worker) << " gave back part " << part.id() << " unread";
}

Status Scheduler::HandlePartDone(int worker, const proto::PartDone& done) {
  const bool train = done.pass() >= 0;
  WorkPool* found = PoolOfPass(done.pass());
  if (found == nullptr) return Status::OK();  // a late report of a pass that is over
  WorkPool& pool = *found;
  if (!pool.Done(done.id(), worker)) {
    LOG(WARNING) << "ignoring completion of part " << done.id() << " by " << Name(worker)
                 << ": it was not assigned to it";
    return Status::OK();
  }
  bad_lines_ += done.bad_lines();
  if (bad_lines_ > options_.max_bad_lines) {
    return Status::InvalidArgument(
        std::to_string(bad_lines_) + " malformed input lines, more than --max_bad_lines=" +
        std::to_string(options_.max_bad_lines) + " (the workers' warnings name each FILE:LINE)");
  }
  metrics_->bad_lines->Set(bad_lines_);
  if (train) {
    rows_done_ += done.rows();
    metrics_->train_rows->Set(rows_done_);
    if (done.replayed()) {
      replayed_rows_ += done.rows();
      epoch_replayed_rows_ += done.rows();
    }
    loss_done_ += done.loss_sum();
    epoch_held_out_ += done.held_out();
    epoch_rows_ += done.rows();
    epoch_loss_ += done.loss_sum();
    // Server 0 owns the dense block, whose schedules (pruning) follow training progress: tell it
    // at every part, not only at progress lines, so short jobs follow the schedule too.
    if (nodes_.size() > 1 && !nodes_[1].dead) {
      Message m;
      m.meta.set_cmd(proto::HEARTBEAT);
      m.meta.mutable_heartbeat()->set_progress(Progress());
      (void)Send(1, std::move(m));
    }
  } else {
    auto it = pending_predictions_.find(done.id());
    if (it != pending_predictions_.end()) {
      std::vector<float>& labels = done.pass() == -1 ? test_labels_ : val_labels_;
      std::vector<float>& logits = done.pass() == -1 ? test_logits_ : val_logits_;
      labels.insert(labels.end(), it->second.first.begin(), it->second.first.end());
      logits.insert(logits.end(), it->second.second.begin(), it->second.second.end());
      pending_predictions_.erase(it);
    }
  }
  return AdvanceIfPassDone();
}

Status Scheduler::AdvanceIfPassDone() {
  // (While the servers keep or restore a copy of the model, nothing moves.)
  while (phase_ == Phase::kTraining && kept_copy_ == KeptCopy::kNone) {
    const bool epoch_end = train_pool_.AllDone();
    if (!epoch_end && !(ValidationDue() && !train_pool_.AnyAssigned())) break;
    if (epoch_end && epoch_rows_ > 0) {
      last_epoch_logloss_ = epoch_loss_ / static_cast<double>(epoch_rows_);
      const double now = NowSeconds();
      const double rate = static_cast<double>(epoch_rows_) / std::max(1e-9, now - epoch_start_);
      epoch_rows_per_s_.push_back(rate);
      LOG(INFO) << "epoch " << epoch_ + 1 << " of " << options_.config.epochs()
                << " done: " << epoch_rows_ << " rows in " << now - epoch_start_ << " s ("
                << static_cast<uint64_t>(rate) << " rows/s"
                << (epoch_replayed_rows_ > 0 ? ", " + std::to_string(epoch_replayed_rows_) +
                                                   " replayed from the workers' part caches"
                                             : std::string())
                << (epoch_held_out_ > 0
                        ? ", " + std::to_string(epoch_held_out_) + " held out for validation"
                        : std::string())
                << "), train logloss " << last_epoch_logloss_;
      holdout_rows_ = epoch_held_out_;
      metrics_->epoch_train_logloss->Set(last_epoch_logloss_);
      metrics_->epoch_rows_per_second->Set(rate);
    }
    const EvaluationFigures figures = TrainingFigures(epoch_end);
    eval_rows_ = rows_done_;
    eval_loss_ = loss_done_;
    epoch_ended_ = epoch_end;
    if (ValidationEnabled() && figures.rows > 0) {
      StartValidation(figures);
      return Status::OK();
    }
    if (figures.rows > 0) {
      evaluations_.Add(figures);
      LOG(INFO) << evaluations_.Line(evaluations_.figures().size() - 1);
      RecordEvaluation(figures);
    }
    FMPS_RETURN_IF_ERROR(ContinueTraining());
  }
  if (phase_ == Phase::kValidating && val_pool_.AllDone() && kept_copy_ == KeptCopy::kNone)
    FMPS_RETURN_IF_ERROR(FinishValidation());
  if (phase_ == Phase::kTesting && test_pool_.AllDone()) phase_ = Phase::kDone;
  if (phase_ == Phase::kDone && done_time_ == 0) {
    // Ask the servers for their final figures (their answer is the report's store size).
    done_time_ = NowSeconds();
    SendProgressToServers(1.0);
  }
  return Status::OK();
}

bool Scheduler::ValidationDue() const {
  return options_.validate_every > 0 && ValidationEnabled() &&
         rows_done_ - std::min(rows_done_, eval_rows_) >= options_.validate_every;
}

EvaluationFigures Scheduler::TrainingFigures(bool epoch_end) const {
  EvaluationFigures f;
  f.epoch = epoch_ + 1;
  f.epoch_end = epoch_end;
  f.rows = rows_done_ - std::min(rows_done_, eval_rows_);
  f.seconds = NowSeconds() - eval_train_start_;
  // Rows resumed from a checkpoint were trained in an earlier run: no loss of theirs here.
  const uint64_t resumed = eval_rows_ < resumed_rows_ ? resumed_rows_ - eval_rows_ : 0;
  if (f.rows > resumed)
    f.train_logloss = (loss_done_ - eval_loss_) / static_cast<double>(f.rows - resumed);
  return f;
}

void Scheduler::StartValidation(const EvaluationFigures& figures) {
  pending_figures_ = figures;
  phase_ = Phase::kValidating;
  val_pass_ = std::min(-2, val_pass_ - 1);
  val_pool_.Reset();
  val_labels_.clear();
  val_logits_.clear();
  val_start_ = NowSeconds();
}

Status Scheduler::FinishValidation() {
  EvaluationFigures f = pending_figures_;
  f.validated = true;
  f.val_rows = val_labels_.size();
  // Non-finite scores are left out of both figures (and counted), as on the test pass.
  uint64_t nonfinite = 0;
  f.val_auc = Auc(val_labels_, val_logits_, &nonfinite);
  std::vector<float> probs(val_logits_.size());
  for (size_t i = 0; i < probs.size(); ++i) {
    probs[i] = std::isfinite(val_logits_[i]) ? static_cast<float>(Sigmoid(val_logits_[i]))
                                             : std::numeric_limits<float>::quiet_NaN();
  }
  f.val_logloss = LogLoss(val_labels_, probs);
  if (nonfinite > 0)
    LOG(WARNING) << nonfinite << " of " << probs.size()
                 << " validation rows scored NaN or infinite: left out of val_logloss and val_auc";
  val_seconds_ += NowSeconds() - val_start_;
  const bool best = evaluations_.Add(f);
  LOG(INFO) << evaluations_.Line(evaluations_.figures().size() - 1);
  RecordEvaluation(f);
  if (f.val_rows == 0)
    LOG(WARNING) << "the validation data held no rows: nothing to score the model on";
  const bool last = epoch_ended_ && epoch_ + 1 >= options_.config.epochs();
  if (options_.early_stop > 0 && best && !last && !evaluations_.ShouldStop()) {
    // The best model so far: the servers keep a copy before training moves on.
    SendKeptCopy(/*restore=*/false);
    return Status::OK();
  }
  return ContinueTraining();
}

Status Scheduler::ContinueTraining() {
  phase_ = Phase::kTraining;
  eval_train_start_ = NowSeconds();
  if (evaluations_.ShouldStop()) {
    const EvaluationFigures* best = evaluations_.Best();
    LOG(INFO) << "early stop: no better validation logloss in the last " << options_.early_stop
              << " evaluations; the best was " << best->val_logloss << " after epoch "
              << best->epoch;
    stopped_early_ = true;
    return FinishTraining();
  }
  return epoch_ended_ ? NextEpoch() : Status::OK();
}

Status Scheduler::NextEpoch() {
  epoch_ended_ = false;
  epoch_replayed_rows_ = 0;
  epoch_held_out_ = 0;
  epoch_start_ = eval_train_start_ = NowSeconds();
  epoch_loss_ = 0;
  epoch_rows_ = 0;
  if (++epoch_ < options_.config.epochs()) {
    train_pool_.Reset();
    return Status::OK();
  }
  return FinishTraining();
}

Status Scheduler::FinishTraining() {
  if (rows_done_ == 0) {
    std::string files;
    for (size_t i = 0; i < options_.train_files.size() && i < 5; ++i)
      files += (i > 0 ? ", " : "") + options_.train_files[i];
    if (options_.train_files.size() > 5) files += ", ...";
    return Status::InvalidArgument("no row to train on: the training data (" + files +
                                   ") holds no well-formed row (" + std::to_string(bad_lines_) +
                                   " malformed lines; is --format=" + options_.config.format() +
                                   " right?)");
  }
  if (options_.early_stop > 0 && !evaluations_.LastIsBest()) {
    LOG(INFO) << "restoring the best model (epoch " << evaluations_.Best()->epoch
              << ", val_logloss " << evaluations_.Best()->val_logloss << ")";
    SendKeptCopy(/*restore=*/true);
    return Status::OK();
  }
  EnterTestingOrDone();
  return Status::OK();
}

void Scheduler::EnterTestingOrDone() {
  train_end_ = NowSeconds();
  // Training is over, also when it stopped early: checkpoints and --resume see it so.
  epoch_ = options_.config.epochs();
  phase_ = test_pool_.num_parts() > 0 ? Phase::kTesting : Phase::kDone;
  if (!options_.config.model_dir().empty()) StartCheckpoint();
}

void Scheduler::SendKeptCopy(bool restore) {
  kept_copy_ = restore ? KeptCopy::kRestore : KeptCopy::kKeep;
  kept_copy_acks_ = 0;
  ++kept_copy_seq_;
  for (size_t id = 1; id < nodes_.size(); ++id) {
    if (nodes_[id].info.role() != proto::SERVER || nodes_[id].dead) continue;
    Message m;
    m.meta.set_cmd(proto::CHECKPOINT);
    m.meta.mutable_checkpoint()->set_version(kept_copy_seq_);
    m.meta.mutable_checkpoint()->set_keep_in_memory(!restore);
    m.meta.mutable_checkpoint()->set_restore(restore);
    Status st = Send(static_cast<int>(id), std::move(m));
    if (!st.ok())
      LOG(WARNING) << "kept copy request to " << Name(static_cast<int>(id)) << ": "
                   << st.ToString();
  }
}

Status Scheduler::HandleKeptCopyDone(const proto::Checkpoint& ckpt) {
  if (kept_copy_ == KeptCopy::kNone || ckpt.version() != kept_copy_seq_) return Status::OK();
  if (!ckpt.error().empty()) {
    return Status::Aborted(std::string(ckpt.restore() ? "restoring" : "keeping") +
                           " the best model: " + ckpt.error());
  }
  if (++kept_copy_acks_ < options_.config.num_servers()) return Status::OK();
  const KeptCopy done = kept_copy_;
  kept_copy_ = KeptCopy::kNone;
  if (done == KeptCopy::kRestore) {
    EnterTestingOrDone();
  } else {
    FMPS_RETURN_IF_ERROR(ContinueTraining());
  }
  return AdvanceIfPassDone();
}

void Scheduler::StartCheckpoint() {
  if (checkpoint_running_) {
    if (phase_ != Phase::kTraining) final_checkpoint_requested_ = true;
    return;
  }
  checkpoint_running_ = true;
  manifest_.Clear();
  manifest_.set_version(++checkpoint_version_);
  *manifest_.mutable_config() = options_.config;
  manifest_.mutable_config()->clear_init_model();
  manifest_.set_job_id(options_.config.job_id());
  manifest_.set_parent_version(parent_version_);
  manifest_.set_parent_dir(parent_dir_);
  RecordTrainingData(train_pool_, &manifest_, options_.env);
  manifest_.set_epoch(epoch_);
  if (phase_ == Phase::kTraining) {
    for (int id : train_pool_.DoneParts()) manifest_.add_parts_done(id);
  }
  manifest_.set_rows(rows_done_);
  for (size_t id = 1; id < nodes_.size(); ++id) {
    if (nodes_[id].info.role() != proto::SERVER) continue;
    Message m;
    m.meta.set_cmd(proto::CHECKPOINT);
    m.meta.mutable_checkpoint()->set_version(checkpoint_version_);
    m.meta.mutable_checkpoint()->set_dir(options_.config.model_dir());
    Status st = Send(static_cast<int>(id), std::move(m));
    if (!st.ok())
      LOG(WARNING) << "checkpoint request to " << Name(static_cast<int>(id)) << ": "
                   << st.ToString();
  }
}

Status Scheduler::HandleCheckpointDone(const proto::Checkpoint& ckpt) {
  if (ckpt.keep_in_memory() || ckpt.restore()) return HandleKeptCopyDone(ckpt);
  if (!checkpoint_running_ || ckpt.version() != manifest_.version()) return Status::OK();
  if (!ckpt.error().empty())
    return Status::IOError("checkpoint " + std::to_string(ckpt.version()) + ": " + ckpt.error());
  proto::Manifest::Shard* shard = manifest_.add_shards();
  shard->set_file(ckpt.file());
  shard->set_checksum(ckpt.checksum());
  if (manifest_.shards_size() < options_.config.num_servers()) return Status::OK();
  // Order shards by server rank (the file names carry it; ranks are the shard index).
  std::sort(manifest_.mutable_shards()->begin(), manifest_.mutable_shards()->end(),
            [](const auto& a, const auto& b) { return a.file() < b.file(); });
  KeyPartition partition(options_.config.num_servers());
  for (int s = 0; s < manifest_.shards_size(); ++s) {
    manifest_.mutable_shards(s)->set_server(s);
    manifest_.mutable_shards(s)->set_range_begin(partition.begin(s));
    manifest_.mutable_shards(s)->set_range_end(partition.end(s));
  }
  const std::string& dir = options_.config.model_dir();
  manifest_.set_written_unix_s(UnixSeconds());
  FMPS_RETURN_IF_ERROR(WriteManifest(dir, manifest_, options_.env));
  PruneCheckpoints(dir, options_.keep_checkpoints, options_.env);
  LOG(INFO) << "checkpoint " << manifest_.version() << " written to " << dir << " ("
            << manifest_.rows() << " rows trained)";
  checkpoint_running_ = false;
  last_checkpoint_ = NowSeconds();
  metrics_->CheckpointWritten(manifest_.version());
  bool was_final =
      manifest_.parts_done_size() == 0 && manifest_.epoch() >= options_.config.epochs();
  if (was_final) {
    final_checkpoint_done_ = true;
  } else if (final_checkpoint_requested_) {
    final_checkpoint_requested_ = false;
    StartCheckpoint();
  }
  return Status::OK();
}

Status Scheduler::Tick() {
  const double now = NowSeconds();
  int alive_workers = 0;
  // A worker heartbeats between minibatches, so one waiting on a silent server's reply goes
  // silent too: judge servers first, hold off on workers while a server is going quiet, and give
  // workers a fresh timeout once a server is declared dead (SERVER_DOWN releases their waits).
  bool server_quiet = false, server_died = false;
  for (size_t id = 1; id < nodes_.size(); ++id) {
    Node& n = nodes_[id];
    if (n.dead || n.info.role() != proto::SERVER) continue;
    if (now - n.last_seen > options_.heartbeat_timeout_s) {
      DeclareDead(static_cast<int>(id), now - n.last_seen);
      server_died = true;
    } else if (now - n.last_seen > options_.heartbeat_timeout_s / 2) {
      server_quiet = true;
    }
  }
  for (size_t id = 1; id < nodes_.size(); ++id) {
    Node& n = nodes_[id];
    if (n.dead) continue;
    if (n.info.role() == proto::WORKER && server_died) n.last_seen = now;
    if (n.info.role() == proto::WORKER && server_quiet) {
      ++alive_workers;
      continue;
    }
    if (now - n.last_seen > options_.heartbeat_timeout_s) {
      DeclareDead(static_cast<int>(id), now - n.last_seen);
      continue;
    }
    if (n.info.role() == proto::WORKER) ++alive_workers;
  }
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    it = AdmitReplacement(*it) ? waiting_.erase(it) : it + 1;
  }
  if (server_dead_since_ > 0 && now - server_dead_since_ > options_.replace_timeout_s) {
    std::string dead;
    for (size_t id = 1; id < nodes_.size(); ++id) {
      if (nodes_[id].dead && nodes_[id].info.role() == proto::SERVER)
        dead += " " + Name(static_cast<int>(id));
    }
    return Status::Aborted("no replacement for dead server(s)" + dead + " within " +
                           std::to_string(static_cast<int>(options_.replace_timeout_s)) + " s");
  }
  if (kept_copy_ != KeptCopy::kNone && !AllServersAlive()) {
    // A replacement server starts from the last checkpoint, without the kept copy.
    return Status::Aborted(
        "a server failed while the servers kept or restored the best model "
        "(early stopping); the checkpoints in --model_dir remain");
  }
  if (alive_workers == 0 && phase_ != Phase::kDone && waiting_.empty()) {
    return Status::Aborted("every worker has failed");
  }
  // The final checkpoint again, if a server died while it was being written.
  if ((phase_ == Phase::kTesting || phase_ == Phase::kDone) &&
      !options_.config.model_dir().empty() && !final_checkpoint_done_ && !checkpoint_running_ &&
      AllServersAlive()) {
    StartCheckpoint();
  }
  if (now - last_progress_ >= options_.progress_every_s) {
    PrintProgress();
    last_progress_ = now;
    SendProgressToServers(phase_ == Phase::kTraining ? Progress() : 1.0);
  }
  if (options_.checkpoint_every_s > 0 && phase_ == Phase::kTraining &&
      !options_.config.model_dir().empty() &&
      now - last_checkpoint_ >= options_.checkpoint_every_s && !checkpoint_running_ &&
      AllServersAlive()) {
    StartCheckpoint();
  }
  return Status::OK();
}

void Scheduler::PrintProgress() {
  const double now = NowSeconds();
  uint64_t rows = 0, hb_rows = retired_rows_, nonzero_w = 0, embeddings = 0;
  double loss = retired_loss_, rss = static_cast<double>(CurrentRssBytes());
  for (const Node& n : nodes_) {
    rss = std::max(rss, static_cast<double>(n.heartbeat.rss_bytes()));
    if (n.info.role() == proto::WORKER) {
      hb_rows += n.heartbeat.rows();
      loss += n.heartbeat.loss_sum();
    } else if (n.info.role() == proto::SERVER) {
      nonzero_w += n.heartbeat.nonzero_w();
      embeddings += n.heartbeat.embeddings();
    }
  }
  rows = std::max(hb_rows, rows_done_);
  // Heartbeats also count rows of parts still in flight, but a short job may end before any
  // arrives: then the finished parts' figures are the better ones.
  double mean_loss = 0;
  if (hb_rows >= rows_done_ && hb_rows > 0) {
    mean_loss = loss / static_cast<double>(hb_rows);
  } else if (rows_done_ > resumed_rows_) {
    mean_loss = loss_done_ / static_cast<double>(rows_done_ - resumed_rows_);
  }
  double rate =
      now > progress_time_ ? (rows - std::min(rows, progress_rows_)) / (now - progress_time_) : 0;
  progress_rows_ = rows;
  progress_time_ = now;
  char buf[256];
  std::snprintf(buf, sizeof(buf),
                "%7.1f s  epoch %d  rows %" PRIu64
                "  %.0f rows/s  train logloss %.5f  |w|_0 %" PRIu64 "  embeddings %" PRIu64
                "  max RSS %.0f MB",
                now - start_, std::min(epoch_ + 1, std::max(1, options_.config.epochs())), rows,
                rate, mean_loss, nonzero_w, embeddings, rss / (1 << 20));
  metrics_->epoch->Set(std::min(epoch_ + 1, std::max(1, options_.config.epochs())));
  metrics_->progress->Set(phase_ == Phase::kJoining ? 0.0 : Progress());
  metrics_->train_logloss->Set(mean_loss);
  metrics_->rows_per_second->Set(rate);
  metrics_->nonzero_w->Set(static_cast<double>(nonzero_w));
  metrics_->embeddings->Set(static_cast<double>(embeddings));
  metrics_->WriteLine("progress");
  if (!options_.progress_bar) {
    LOG(INFO) << buf;
    return;
  }
  // A bar redrawn in place; the ETA comes from the parts done, so input of unknown size (stdin,
  // one part) shows no ETA.
  const double done = phase_ == Phase::kTraining ? Progress() : 1.0;
  constexpr int kWidth = 30;
  const int filled = static_cast<int>(done * kWidth);
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(kWidth, '.');
  const double elapsed = now - train_start_;
  char eta[32] = "";
  if (train_pool_.num_parts() > 1 && done > 0 && done < 1 && phase_ == Phase::kTraining)
    std::snprintf(eta, sizeof(eta), "  ETA %.0f s", elapsed * (1 - done) / done);
  std::fprintf(stderr, "\r\033[K[%s] %3.0f%%  epoch %d/%d  rows %" PRIu64 "  %.0f rows/s%s  logloss %.5f",
               bar.c_str(), 100 * done, std::min(epoch_ + 1, std::max(1, options_.config.epochs())),
               options_.config.epochs(), rows, rate, eta, mean_loss);
  std::fflush(stderr);
  bar_shown_ = true;
}

}  // namespace fmps

namespace fmps {

void Scheduler::RecordEvaluation(const EvaluationFigures& f) {
  if (f.validated) {
    metrics_->validation_logloss->Set(f.val_logloss);
    metrics_->validation_auc->Set(f.val_auc);
  }
  metrics_->WriteLine(f.epoch_end ? "epoch" : "evaluation",
                      "\"epoch_done\":" + std::to_string(f.epoch_end ? f.epoch : f.epoch - 1));
}

void Scheduler::UpdateNodeGauges() {
  int servers = 0, workers = 0, dead_servers = 0, dead_workers = 0;
  for (const Node& n : nodes_) {
    if (n.info.role() == proto::SERVER) (n.dead ? dead_servers : servers)++;
    if (n.info.role() == proto::WORKER) (n.dead ? dead_workers : workers)++;
  }
  metrics_->joined_servers->Set(servers);
  metrics_->joined_workers->Set(workers);
  metrics_->dead_servers->Set(dead_servers);
  metrics_->dead_workers->Set(dead_workers);
}

}  // namespace fmps
