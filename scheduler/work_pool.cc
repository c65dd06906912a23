#include "scheduler/work_pool.h"

#include <glog/logging.h>

#include <algorithm>

#include "ps/base/env.h"
#include "data/byte_source.h"

namespace fmps {

Status WorkPool::AddFiles(const std::vector<std::string>& paths) {
  if (options_.part_bytes == 0) return Status::InvalidArgument("WorkPool: part_bytes must be > 0");
  std::vector<DataPart> added;
  for (const std::string& path : paths) {
    if (IsStream(path)) {
      if (path != "-") {
        LOG(INFO) << path << " is a stream (pipe or device): it cannot be split and is one part";
      }
      added.push_back(DataPart{path, 0, kWholeFile});
      continue;
    }
    Result<Compression> compression = DetectCompression(path);
    if (!compression.ok()) return compression.status();
    if (*compression != Compression::kNone) {
      LOG(INFO) << path << " is " << CompressionName(*compression)
                << "-compressed: it cannot be split and is one part";
      added.push_back(DataPart{path, 0, kWholeFile});
      continue;
    }
    Result<uint64_t> size = FileSize(path);
    if (!size.ok()) return size.status();
    for (uint64_t begin = 0; begin < *size; begin += options_.part_bytes) {
      added.push_back(DataPart{path, begin, std::min(*size, begin + options_.part_bytes)});
    }
  }
  for (DataPart& part : added) {
    stream_.push_back(part.begin == 0 && part.end == kWholeFile && IsStream(part.path));
    last_owner_.push_back(-1);
    parts_.push_back(std::move(part));
    state_.push_back(State::kPending);
    owner_.push_back(-1);
  }
  return Status::OK();
}

std::optional<WorkItem> WorkPool::Take(int worker) {
  std::optional<size_t> taken;
  if (!preferred_.empty()) {
    // A later pass: first the parts this worker did in the pass before, in order; then, with none
    // left, the last pending part (the others' lists are taken from their fronts).
    auto it = preferred_.find(worker);
    while (it != preferred_.end() && !it->second.empty() && !taken) {
      const size_t id = it->second.front();
      it->second.pop_front();
      if (state_[id] == State::kPending) taken = id;
    }
    while (!taken && back_ > 0) {
      --back_;
      // A stream was read once: only the worker that holds it in its cache can train on it again.
      const bool held = stream_[back_] && preferred_.count(last_owner_[back_]) > 0;
      if (state_[back_] == State::kPending && !held) taken = back_;
    }
  } else {
    // Parts before next_ are all assigned or done; ReturnPart moves next_ back.
    while (next_ < parts_.size() && state_[next_] != State::kPending) ++next_;
    if (next_ < parts_.size()) taken = next_++;
  }
  if (!taken) return std::nullopt;
  const size_t id = *taken;
  state_[id] = State::kAssigned;
  owner_[id] = worker;
  return WorkItem{static_cast<int>(id), parts_[id]};
}

bool WorkPool::Done(int part_id, int worker) {
  if (part_id < 0 || static_cast<size_t>(part_id) >= parts_.size()) return false;
  const size_t id = static_cast<size_t>(part_id);
  if (state_[id] != State::kAssigned || owner_[id] != worker) return false;
  state_[id] = State::kDone;
  ++done_count_;
  return true;
}

bool WorkPool::ReturnPart(int part_id, int worker) {
  if (part_id < 0 || static_cast<size_t>(part_id) >= parts_.size()) return false;
  const size_t id = static_cast<size_t>(part_id);
  if (state_[id] != State::kAssigned || owner_[id] != worker) return false;
  state_[id] = State::kPending;
  owner_[id] = -1;
  next_ = std::min(next_, id);
  back_ = std::max(back_, id + 1);
  return true;
}

int WorkPool::ReturnParts(int worker) {
  // A dead worker's cache is gone: the parts it did before are anyone's (a stream among them then
  // fails where it is taken, naming why).
  if (preferred_.erase(worker) > 0) back_ = parts_.size();
  int returned = 0;
  for (size_t id = 0; id < parts_.size(); ++id)
    returned += ReturnPart(static_cast<int>(id), worker);
  return returned;
}

void WorkPool::MarkDone(const std::vector<int>& part_ids) {
  for (int part_id : part_ids) {
    if (part_id < 0 || static_cast<size_t>(part_id) >= parts_.size()) continue;
    const size_t id = static_cast<size_t>(part_id);
    if (state_[id] == State::kDone) continue;
    state_[id] = State::kDone;
    ++done_count_;
  }
}

std::vector<int> WorkPool::DoneParts() const {
  std::vector<int> done;
  for (size_t id = 0; id < parts_.size(); ++id) {
    if (state_[id] == State::kDone) done.push_back(static_cast<int>(id));
  }
  return done;
}

void WorkPool::Reset() {
  preferred_.clear();
  for (size_t id = 0; id < parts_.size(); ++id) {
    if (owner_[id] >= 0) preferred_[owner_[id]].push_back(id);
  }
  last_owner_ = owner_;
  back_ = parts_.size();
  std::fill(state_.begin(), state_.end(), State::kPending);
  std::fill(owner_.begin(), owner_.end(), -1);
  next_ = 0;
  done_count_ = 0;
}

bool WorkPool::AnyAssigned() const {
  return std::find(state_.begin(), state_.end(), State::kAssigned) != state_.end();
}

}  // namespace fmps
