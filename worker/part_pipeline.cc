// Worker::PartPipeline: the parts of one pass flowing through read -> localize -> pull ->
// compute -> push, with minibatches in flight (see worker.h).
#include <glog/logging.h>

#include <algorithm>

#include "data/byte_source.h"
#include "worker/worker.h"

namespace fmps {
namespace {

std::string StreamName(const std::string& path) { return path == "-" ? "stdin" : path; }

}  // namespace

Worker::PartPipeline::PartPipeline(Worker* worker, int pass)
    : w_(worker),
      config_(worker->po_->config()),
      pass_(pass),
      train_(pass >= 0),
      batch_size_(static_cast<size_t>(std::max(1, config_.batch_size()))),
      num_fields_(config_.num_fields()),
      epochs_(config_.epochs()),
      // With a part cache and epochs to come, a minibatch holds the rows of one part only, so
      // that a part's minibatches can be kept and replayed whatever parts come next.
      whole_parts_(train_ && worker->part_cache_->enabled() && epochs_ > 1) {
  w_->training_ = train_;
  for (Stage& stage : w_->stages_) free_stages_.push_back(&stage);
}

Status Worker::PartPipeline::Open(proto::Part part) {
  OpenPart opened;
  if (whole_parts_) {
    opened.cache_name = PartCacheName(part.path(), part.begin(), part.end());
    opened.replay = w_->part_cache_->Find(opened.cache_name);
    opened.from_cache = opened.replay != nullptr;
    opened.caching = opened.replay == nullptr && pass_ + 1 < epochs_ &&
                     w_->part_cache_->Start(opened.cache_name);
  }
  if (opened.replay == nullptr) {
    if (train_ && pass_ > 0 && IsStream(part.path())) {
      return Status::InvalidArgument(
          StreamName(part.path()) +
          " was read in the first epoch and is not in this worker's part cache (--cache_mb=" +
          std::to_string(config_.cache_mb()) +
          "): a stream cannot be read again; write it to a file or raise --cache_mb");
    }
    DataPart data{part.path(), part.begin(), part.end()};
    ReaderOptions options = w_->reader_options_;
    options.holdout = config_.holdout();
    options.holdout_rows = part.holdout()                  ? HoldoutRows::kOnlyHoldout
                           : train_ && options.holdout > 0 ? HoldoutRows::kSkipHoldout
                                                           : HoldoutRows::kAll;
    Result<std::unique_ptr<Reader>> reader = Reader::Open(data, options);
    if (!reader.ok()) return reader.status();
    opened.reader = std::move(reader.value());
  }
  opened.part = std::move(part);
  parts_.push_back(std::move(opened));
  return Status::OK();
}

// Minibatches pulled ahead: while one is computed, the next one's pull is already out. That
// leaves it one minibatch stale, which costs little once the model has settled but much early
// on, so training pulls ahead only after pull_ahead_after minibatches (docs/performance-log.md).
size_t Worker::PartPipeline::Ahead() const {
  if (!train_) return 1;
  return config_.max_delay() > 0 && config_.pull_ahead_after() >= 0 &&
                 w_->batches_trained_ >= static_cast<uint64_t>(config_.pull_ahead_after())
             ? 1
             : 0;
}

Result<bool> Worker::PartPipeline::NextPart() {
  if (!more_) return false;
  proto::Part part;
  if (!w_->asked_) FMPS_RETURN_IF_ERROR(w_->AskForPart());
  Result<Answer> answer = w_->AwaitPart(&part);
  if (!answer.ok()) return answer.status();
  if (*answer != Answer::kPart || part.pass() != pass_) {
    // No more of this pass now: the pipeline drains, and Run asks again (or starts the part of
    // the next pass).
    if (*answer == Answer::kPart) w_->next_part_ = std::move(part);
    more_ = false;
    return false;
  }
  FMPS_RETURN_IF_ERROR(Open(std::move(part)));
  return true;
}

Status Worker::PartPipeline::Replay(OpenPart& part) {
  const std::vector<PartCache::Batch>& batches = part.replay->batches;
  if (part.replayed < batches.size()) {
    Stage* stage = free_stages_.back();
    free_stages_.pop_back();
    PartCache::Expand(batches[part.replayed++], &stage->batch);
    stage->pull_ts = -1;
    stage->segments.assign(1, Segment{&part, stage->batch.rows()});
    ++part.in_pipeline;
    queue_.push_back(stage);
    // As a reader does, ask for the next part during the last quarter of this one.
    if (more_ && !w_->asked_ && 4 * part.replayed >= 3 * batches.size()) {
      FMPS_RETURN_IF_ERROR(w_->AskForPart());
    }
  }
  if (part.replayed == batches.size()) {
    part.result.lines = part.replay->lines;
    part.result.bad_lines = part.replay->bad_lines;
    part.result.held_out = part.replay->held_out;
    part.replay = nullptr;
    if (pass_ + 1 >= epochs_) w_->part_cache_->Release(part.cache_name);  // not needed again
  }
  return Status::OK();
}

Status Worker::PartPipeline::ReadRows(OpenPart& reading) {
  Result<size_t> n = reading.reader->Read(batch_size_ - batch_.rows(), &batch_);
  if (!n.ok()) return n.status();
  if (n.value() == 0) {
    const uint64_t end = reading.reader->offset(), begin = reading.part.begin();
    w_->read_bytes_->Add(end > begin ? end - begin : 0);
    reading.result.bad_lines = reading.reader->bad_lines();
    reading.result.lines = reading.reader->lines_read();
    reading.result.held_out = reading.reader->held_out();
    reading.reader.reset();
    // The part's cache entry is complete once its last minibatch is in (in Fill, if rows of it
    // are still being gathered).
    if (reading.caching && batch_.rows() == 0) w_->FinishCaching(&reading);
    return Status::OK();
  }
  w_->read_rows_->Add(n.value());
  if (segments_.empty() || segments_.back().part != &reading) segments_.push_back({&reading, 0});
  segments_.back().rows += n.value();
  // Ask for the next part while the last quarter of this one is read, so the answer is there when
  // it ends; not earlier, so a worker does not hold a part another one could be reading.
  const proto::Part& part = reading.part;
  if (more_ && !w_->asked_ && part.end() != kWholeFile &&
      reading.reader->offset() + (part.end() - part.begin()) / 4 >= part.end()) {
    FMPS_RETURN_IF_ERROR(w_->AskForPart());
  }
  return Status::OK();
}

Status Worker::PartPipeline::Enqueue() {
  Stage* stage = free_stages_.back();
  free_stages_.pop_back();
  // The reader made every line with a field beyond the job's a bad line: nothing is left to drop.
  const size_t dropped = w_->localizer_->Localize(batch_, num_fields_, &stage->batch);
  DCHECK_EQ(dropped, 0u) << "entries beyond the job's " << num_fields_ << " fields";
  OpenPart& source = *segments_.front().part;
  if (source.caching && !w_->part_cache_->Add(source.cache_name, stage->batch)) {
    source.caching = false;
    if (IsStream(source.part.path())) {
      return Status::InvalidArgument(
          StreamName(source.part.path()) +
          " does not fit in the part cache (--cache_mb=" + std::to_string(config_.cache_mb()) +
          ", full after about " + std::to_string(source.result.rows + stage->batch.rows()) +
          " rows of it): epochs after the first replay a stream from the cache; write it to a "
          "file or raise --cache_mb");
    }
    LOG(INFO) << "part cache full at " << (w_->part_cache_->bytes() >> 20)
              << " MiB: parts not yet cached are read from their files in the next epochs";
  }
  if (source.caching && !source.reading()) w_->FinishCaching(&source);
  stage->pull_ts = -1;
  stage->segments.swap(segments_);
  for (const Segment& segment : stage->segments) ++segment.part->in_pipeline;
  queue_.push_back(stage);
  return Status::OK();
}

// A minibatch is filled across the end of a part from the next one, so that parts do not cut a
// short minibatch each (it costs a round trip like a full one) — except with whole parts, which
// are cached or replayed one part per minibatch.
Status Worker::PartPipeline::Fill() {
  while (queue_.size() < 2 + Ahead()) {
    batch_.Clear();
    segments_.clear();
    bool replayed = false;
    while (batch_.rows() < batch_size_) {
      if (parts_.empty() || !parts_.back().reading()) {
        if (whole_parts_ && batch_.rows() > 0) break;
        Result<bool> opened = NextPart();
        if (!opened.ok()) return opened.status();
        if (!*opened) break;
        continue;
      }
      OpenPart& reading = parts_.back();
      if (reading.replay != nullptr) {
        // Whole parts: the minibatch being read is empty when a part is opened.
        FMPS_RETURN_IF_ERROR(Replay(reading));
        replayed = true;
        break;
      }
      FMPS_RETURN_IF_ERROR(ReadRows(reading));
    }
    if (replayed) continue;
    if (batch_.rows() == 0) break;  // nothing left to read
    FMPS_RETURN_IF_ERROR(Enqueue());
  }
  return Status::OK();
}

Status Worker::PartPipeline::Fail(Status status) {
  // Every pull sent is waited for before the stages are reused.
  for (Stage* stage : queue_) {
    if (stage->pull_ts >= 0) (void)w_->kv_->Wait(stage->pull_ts);
    stage->pull_ts = -1;
  }
  return status;
}

Status Worker::PartPipeline::Run(proto::Part first) {
  FMPS_RETURN_IF_ERROR(Open(std::move(first)));
  FMPS_RETURN_IF_ERROR(Fill());
  while (!queue_.empty()) {
    // The minibatch to compute and those to pull ahead have their pulls out (plain pulls only at
    // the start of a pass, or when pulling ahead begins).
    for (size_t i = 0; i < std::min(queue_.size(), 1 + Ahead()); ++i) {
      if (queue_[i]->pull_ts < 0) w_->SendPull(queue_[i]);
    }
    Stage* current = queue_.front();
    queue_.pop_front();
    const Status pulled = w_->kv_->Wait(current->pull_ts);
    current->pull_ts = -1;
    free_stages_.push_back(current);  // its buffers are read until ProcessBatch returns
    if (!pulled.ok()) return Fail(pulled);
    Stage* next = nullptr;  // the next minibatch without a pull: its pull rides on this push
    for (Stage* stage : queue_) {
      if (stage->pull_ts < 0) {
        next = stage;
        break;
      }
    }
    const Status processed = w_->ProcessBatch(*current, train_, next);
    if (!processed.ok()) return Fail(processed);
    for (const Segment& segment : current->segments) --segment.part->in_pipeline;
    const Status reported = w_->ReportDoneParts(&parts_);
    if (!reported.ok()) return Fail(reported);
    const Status read = Fill();
    if (!read.ok()) return Fail(read);
  }
  // A part is reported done only once its updates are on the servers, so "all parts done" means
  // the model reflects them (checkpoints and the test pass rely on it).
  FMPS_RETURN_IF_ERROR(w_->DrainPushes());
  FMPS_RETURN_IF_ERROR(w_->ReportDoneParts(&parts_));
  CHECK(parts_.empty()) << parts_.size() << " parts left unreported after the pipeline drained";
  CHECK(!w_->asked_) << "a part asked for and its answer not read";
  return Status::OK();
}

}  // namespace fmps
