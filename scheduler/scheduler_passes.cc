// Scheduler, passes and parts: handing out data parts, parts done and returned, validation and
// early stopping, the end of a pass and of training.
#include <glog/logging.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "models/metrics.h"
#include "ps/base/env.h"
#include "scheduler/scheduler.h"

namespace fmps {

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

}  // namespace fmps
