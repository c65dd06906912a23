// Scheduler, checkpoints: resuming from one, asking the servers for their shards and writing the
// manifest, and the in-memory copy of the best model kept for early stopping.
#include <glog/logging.h>

#include <algorithm>

#include "ps/base/env.h"
#include "ps/checkpoint.h"
#include "ps/postoffice.h"
#include "scheduler/lineage.h"
#include "scheduler/scheduler.h"

namespace fmps {

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

}  // namespace fmps
