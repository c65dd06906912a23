#include "scheduler/scheduler.h"

#include <glog/logging.h>

#include <cinttypes>
#include <cstdio>
#include <random>

#include "data/byte_source.h"
#include "ps/base/env.h"
#include "ps/base/keys.h"
#include "ps/checkpoint.h"
#include "ps/job_id.h"
#include "ps/postoffice.h"

namespace fmps {

namespace {

// Makes the job's id when none was given; its tag.
uint64_t TagOfJob(proto::JobConfig* config) {
  if (config->job_id().empty()) config->set_job_id(NewJobId());
  return JobTag(config->job_id());
}

}  // namespace

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

void Scheduler::Broadcast(proto::Command cmd, const std::string& error) {
  for (size_t id = 1; id < nodes_.size(); ++id) {
    Message m;
    m.meta.set_cmd(cmd);
    if (!error.empty()) m.meta.set_error(error);
    Status st = Send(static_cast<int>(id), std::move(m));
    if (!st.ok()) VLOG(1) << "broadcast to " << Name(static_cast<int>(id)) << ": " << st.ToString();
  }
}

Status Scheduler::PrepareJob() {
  start_ = NowSeconds();
  if (options_.config.job_id().empty()) {
    std::random_device rd;
    char id[17];
    std::snprintf(id, sizeof(id), "%016" PRIx64, (uint64_t{rd()} << 32) ^ rd());
    options_.config.set_job_id(id);
  }
  FMPS_RETURN_IF_ERROR(metrics_->OpenLog(options_.metrics_out, start_, options_.env));
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
  return Status::OK();
}

Result<JobReport> Scheduler::Run() {
  FMPS_RETURN_IF_ERROR(PrepareJob());
  Status st = Join();
  if (st.ok()) st = RunPasses();
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
  return MakeReport();
}

Status Scheduler::RunPasses() {
  phase_ = Phase::kTraining;
  train_start_ = last_progress_ = last_checkpoint_ = progress_time_ = epoch_start_ =
      eval_train_start_ = NowSeconds();
  progress_rows_ = eval_rows_ = rows_done_;
  Status st = AdvanceIfPassDone();
  while (st.ok() && !JobComplete()) {
    auto msg = transport_->Recv(50);
    if (msg) st = Handle(std::move(*msg));
    if (st.ok()) st = Tick();
  }
  return st;
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

}  // namespace fmps
