#include "ps/kv_client.h"

#include <glog/logging.h>

#include <chrono>

namespace fmps {

int64_t KVClient::Pull(const std::vector<uint64_t>& keys, const std::vector<uint64_t>& mixed,
                       bool with_dense, PullResult* result) {
  std::vector<size_t> slices = po_->partition().Slices(mixed);
  int64_t ts;
  std::vector<int> servers;
  for (int s = 0; s < po_->num_servers(); ++s) {
    if (slices[s + 1] > slices[s] || (with_dense && s == 0)) servers.push_back(s);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ts = next_ts_++;
    Pending& p = pending_[ts];
    p.remaining = static_cast<int>(servers.size());
    p.result = result;
    p.servers = servers;
    p.error = failed_all_;  // after FailAll nothing will answer: fail at once, not at the timeout
  }
  for (int s : servers) {
    Message msg;
    msg.meta.set_cmd(proto::PULL);
    msg.meta.set_request_id(ts);
    size_t n = slices[s + 1] - slices[s];
    msg.meta.mutable_kv()->set_num_keys(static_cast<uint32_t>(n));
    msg.meta.mutable_kv()->set_with_dense(with_dense && s == 0);
    msg.frames.push_back(ToFrame(std::span<const uint64_t>(keys.data() + slices[s], n)));
    Status st = po_->Send(po_->ServerId(s), std::move(msg));
    if (!st.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      pending_[ts].error = st.ToString();
    }
  }
  return ts;
}

int64_t KVClient::Push(const std::vector<uint64_t>& keys, const std::vector<uint64_t>& mixed,
                       std::span<const float> grads, std::span<const uint16_t> widths,
                       std::span<const uint32_t> counts, std::span<const float> dense_grads,
                       std::span<const uint64_t> clocks) {
  std::vector<size_t> slices = po_->partition().Slices(mixed);
  bool with_dense = !dense_grads.empty();
  std::vector<int> servers;
  for (int s = 0; s < po_->num_servers(); ++s) {
    if (slices[s + 1] > slices[s] || (with_dense && s == 0)) servers.push_back(s);
  }
  int64_t ts;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ts = next_ts_++;
    Pending& p = pending_[ts];
    p.remaining = static_cast<int>(servers.size());
    p.servers = servers;
    p.error = failed_all_;
    NoteSent(ts, servers, /*quiet=*/true);
  }
  // Offsets of each server's first gradient: grads are packed per key as 1 + width floats.
  size_t offset = 0, key = 0;
  for (int s : servers) {
    for (; key < slices[s]; ++key) offset += 1 + widths[key];
    size_t begin_offset = offset;
    for (; key < slices[s + 1]; ++key) offset += 1 + widths[key];
    size_t b = slices[s], n = slices[s + 1] - slices[s];
    Message msg;
    msg.meta.set_cmd(proto::PUSH);
    msg.meta.set_request_id(ts);
    msg.meta.mutable_kv()->set_num_keys(static_cast<uint32_t>(n));
    msg.meta.mutable_kv()->set_with_dense(with_dense && s == 0);
    msg.meta.mutable_kv()->set_quiet(true);
    if (static_cast<size_t>(s) < clocks.size()) msg.meta.mutable_kv()->set_clock(clocks[s]);
    msg.frames.push_back(ToFrame(std::span<const uint64_t>(keys.data() + b, n)));
    msg.frames.push_back(ToFrame(grads.subspan(begin_offset, offset - begin_offset)));
    msg.frames.push_back(ToFrame(widths.subspan(b, n)));
    msg.frames.push_back(ToFrame(counts.subspan(b, n)));
    if (with_dense && s == 0) msg.frames.push_back(ToFrame(dense_grads));
    Status st = po_->Send(po_->ServerId(s), std::move(msg));
    if (!st.ok()) {
      std::lock_guard<std::mutex> lock(mu_);
      pending_[ts].error = st.ToString();
    }
  }
  return ts;
}

void KVClient::NoteSent(int64_t ts, const std::vector<int>& servers, bool quiet) {
  if (quiet_.empty()) {
    quiet_.resize(po_->num_servers());
    last_asked_.assign(po_->num_servers(), 0);
  }
  for (int s : servers) {
    if (quiet) {
      quiet_[s].push_back(ts);
    } else {
      last_asked_[s] = ts;
    }
  }
}

void KVClient::Answer(std::map<int64_t, Pending>::iterator it, int rank, Message&& msg) {
  Pending& p = it->second;
  if (msg.meta.body_case() == proto::Meta::kError) {
    p.error = po_->NodeName(msg.meta.sender()) + " refused request: " + msg.meta.error();
  }
  if (p.replies.count(rank)) return;  // a duplicate answer
  p.replies[rank] = p.result != nullptr ? std::move(msg) : Message();
  if (--p.remaining > 0) return;
  if (p.sync) {
    pending_.erase(it);
    return;
  }
  cv_.notify_all();
}

void KVClient::OnReply(Message&& msg) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t ts = msg.meta.request_id();
  auto it = pending_.find(ts);
  int rank = po_->ServerRank(msg.meta.sender());
  if (it == pending_.end() || rank < 0 || rank >= po_->num_servers()) {
    LOG(WARNING) << "dropping an unexpected " << proto::Command_Name(msg.meta.cmd()) << " from "
                 << msg.peer << " (request " << msg.meta.request_id() << ")";
    return;
  }
  // The server has handled every request sent to it before this one: its quiet pushes are done.
  if (static_cast<size_t>(rank) < quiet_.size()) {
    std::deque<int64_t>& quiet = quiet_[rank];
    while (!quiet.empty() && quiet.front() <= ts) {
      const int64_t push = quiet.front();
      quiet.pop_front();
      if (push == ts) continue;  // this answer itself (a failed push): handled below
      auto q = pending_.find(push);
      if (q != pending_.end()) Answer(q, rank, Message());
    }
  }
  Answer(it, rank, std::move(msg));
}

void KVClient::Sync(const std::vector<int>& ranks) {
  int64_t ts;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ts = next_ts_++;
    Pending& p = pending_[ts];
    p.remaining = static_cast<int>(ranks.size());
    p.servers = ranks;
    p.sync = true;
    NoteSent(ts, ranks, /*quiet=*/false);
  }
  for (int s : ranks) {
    Message msg;
    msg.meta.set_cmd(proto::PULL);
    msg.meta.set_request_id(ts);
    msg.meta.mutable_kv()->set_num_keys(0);
    msg.frames.emplace_back();
    Status st = po_->Send(po_->ServerId(s), std::move(msg));
    if (!st.ok()) {
      // The push waiting on this server hears of it through FailServer or its timeout.
      LOG(WARNING) << "acknowledgement request to " << po_->NodeName(po_->ServerId(s))
                   << " not sent: " << st.ToString();
    }
  }
}

Status KVClient::Assemble(Pending* p) {
  PullResult* r = p->result;
  r->values.clear();
  r->widths.clear();
  r->dense.clear();
  r->clocks.assign(po_->num_servers(), 0);
  // Straight from the frames into the result: one copy, not two.
  for (int s : p->servers) {
    const Message& m = p->replies[s];
    const size_t first = r->widths.size();
    if (m.frames.size() < 2 || m.frames[0].size() % sizeof(float) != 0 ||
        !AppendFrame(m.frames[1], &r->widths)) {
      return Status::Corruption("malformed pull reply from " + po_->NodeName(po_->ServerId(s)));
    }
    size_t expect = r->widths.size() - first;
    for (size_t i = first; i < r->widths.size(); ++i) expect += r->widths[i];
    const size_t values = m.frames[0].size() / sizeof(float);
    if (expect != values) {
      return Status::Corruption("pull reply from " + po_->NodeName(po_->ServerId(s)) + " has " +
                                std::to_string(values) + " values, widths say " +
                                std::to_string(expect));
    }
    AppendFrame(m.frames[0], &r->values);
    r->clocks[s] = m.meta.kv().clock();
    if (m.frames.size() > 2 && !FromFrame(m.frames[2], &r->dense)) {
      return Status::Corruption("malformed dense block from " + po_->NodeName(po_->ServerId(s)));
    }
  }
  return Status::OK();
}

Status KVClient::Wait(int64_t ts) {
  std::unique_lock<std::mutex> lock(mu_);
  auto it = pending_.find(ts);
  if (it == pending_.end()) return Status::OK();
  // A quiet push that no later request to its servers will acknowledge: ask them.
  std::vector<int> ask;
  for (int s : it->second.servers) {
    if (!it->second.replies.count(s) && static_cast<size_t>(s) < last_asked_.size() &&
        last_asked_[s] < ts) {
      ask.push_back(s);
    }
  }
  if (!ask.empty() && it->second.error.empty()) {
    lock.unlock();
    Sync(ask);
    lock.lock();
    it = pending_.find(ts);
    if (it == pending_.end()) return Status::OK();
  }
  bool done = cv_.wait_for(lock, std::chrono::duration<double>(options_.timeout_s),
                           [&] { return it->second.remaining <= 0 || !it->second.error.empty(); });
  Pending p = std::move(it->second);
  pending_.erase(it);
  if (!p.error.empty()) return Status::Aborted(p.error);
  if (!done) {
    std::string silent;
    for (int s : p.servers) {
      if (!p.replies.count(s))
        silent += (silent.empty() ? "" : ", ") + po_->NodeName(po_->ServerId(s));
    }
    return Status::Timeout("no answer to request " + std::to_string(ts) + " within " +
                           std::to_string(static_cast<int>(options_.timeout_s)) + " s from " +
                           (silent.empty() ? std::string("servers") : silent));
  }
  if (p.result != nullptr) return Assemble(&p);
  return Status::OK();
}

void KVClient::FailServer(int server_rank, const std::string& why) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [ts, p] : pending_) {
    bool waits = false;
    for (int s : p.servers) waits |= (s == server_rank && !p.replies.count(s));
    if (waits && p.error.empty()) p.error = why;
  }
  std::erase_if(pending_,
                [](const auto& entry) { return entry.second.sync && !entry.second.error.empty(); });
  cv_.notify_all();
}

void KVClient::FailAll(const std::string& why) {
  std::lock_guard<std::mutex> lock(mu_);
  failed_all_ = why;
  for (auto& [ts, p] : pending_) {
    if (p.error.empty()) p.error = why;
  }
  std::erase_if(pending_, [](const auto& entry) { return entry.second.sync; });
  cv_.notify_all();
}

void KVClient::Clear() {
  std::lock_guard<std::mutex> lock(mu_);
  pending_.clear();
  for (std::deque<int64_t>& quiet : quiet_) quiet.clear();
}

size_t KVClient::InFlight() {
  std::lock_guard<std::mutex> lock(mu_);
  return pending_.size();
}

}  // namespace fmps
