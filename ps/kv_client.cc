#include "ps/kv_client.h"

#include <glog/logging.h>

#include <algorithm>
#include <chrono>
#include <initializer_list>

namespace fmps {

namespace {

// Ranks of the servers a request goes to: those owning some of its keys, and server 0 when it
// carries or asks for the dense block.
std::vector<int> ServersOf(const std::vector<size_t>& slices, bool with_dense) {
  std::vector<int> servers;
  for (size_t s = 0; s + 1 < slices.size(); ++s) {
    if (slices[s + 1] > slices[s] || (with_dense && s == 0)) servers.push_back(static_cast<int>(s));
  }
  return servers;
}

// Offsets of each server's first gradient: grads are packed per key as 1 + width floats.
std::vector<size_t> GradOffsets(const std::vector<size_t>& slices,
                                std::span<const uint16_t> widths) {
  std::vector<size_t> offsets(slices.size(), 0);
  size_t offset = 0, key = 0;
  for (size_t s = 0; s + 1 < slices.size(); ++s) {
    offsets[s] = offset;
    for (; key < slices[s + 1]; ++key) offset += 1 + widths[key];
  }
  offsets.back() = offset;
  return offsets;
}

}  // namespace

int64_t KVClient::Register(const std::vector<int>& servers, PullResult* result, Kind kind) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t ts = next_ts_++;
  Pending& p = pending_[ts];
  p.remaining = static_cast<int>(servers.size());
  p.result = result;
  p.servers = servers;
  p.sync = kind == Kind::kSync;
  p.error = failed_all_;  // after FailAll nothing will answer: fail at once, not at the timeout
  NoteSent(ts, servers, kind == Kind::kQuietPush);
  return ts;
}

void KVClient::SendTo(int s, Message&& msg, std::initializer_list<int64_t> requests) {
  Status st = po_->Send(po_->ServerId(s), std::move(msg));
  if (st.ok()) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (int64_t ts : requests) pending_[ts].error = st.ToString();
  cv_.notify_all();
}

Message KVClient::PullMessage(const PullSpec& pull, const std::vector<size_t>& slices, int s,
                              int64_t ts) const {
  Message msg;
  msg.meta.set_cmd(proto::PULL);
  msg.meta.set_request_id(ts);
  const size_t n = slices[s + 1] - slices[s];
  msg.meta.mutable_kv()->set_num_keys(static_cast<uint32_t>(n));
  msg.meta.mutable_kv()->set_with_dense(pull.with_dense && s == 0);
  msg.meta.mutable_kv()->set_keep_keys(pull.keep_keys);
  msg.frames.push_back(ToFrame(pull.keys.subspan(slices[s], n)));
  return msg;
}

Message KVClient::PushMessage(const PushSpec& push, const std::vector<size_t>& slices,
                              const std::vector<size_t>& grad_offsets, int s, int64_t ts) const {
  const bool with_dense = !push.dense_grads.empty() && s == 0;
  const size_t b = slices[s], n = slices[s + 1] - slices[s];
  Message msg;
  msg.meta.set_cmd(proto::PUSH);
  msg.meta.set_request_id(ts);
  proto::KVHeader* kv = msg.meta.mutable_kv();
  kv->set_num_keys(static_cast<uint32_t>(n));
  kv->set_with_dense(with_dense);
  kv->set_quiet(true);
  if (static_cast<size_t>(s) < push.clocks.size()) kv->set_clock(push.clocks[s]);
  const bool keyless = push.keys_of_pull >= 0;
  if (keyless) {
    kv->set_keys_of_pull(push.keys_of_pull);
  } else {
    msg.frames.push_back(ToFrame(push.keys.subspan(b, n)));
  }
  msg.frames.push_back(
      ToFrame(push.grads.subspan(grad_offsets[s], grad_offsets[s + 1] - grad_offsets[s])));
  if (!keyless) msg.frames.push_back(ToFrame(push.widths.subspan(b, n)));
  msg.frames.push_back(ToFrame(push.counts.subspan(b, n)));
  if (with_dense) msg.frames.push_back(ToFrame(push.dense_grads));
  return msg;
}

int64_t KVClient::Pull(const PullSpec& pull) {
  const std::vector<size_t> slices = po_->partition().Slices(pull.mixed);
  const std::vector<int> servers = ServersOf(slices, pull.with_dense);
  const int64_t ts = Register(servers, pull.result, Kind::kAnswered);
  for (int s : servers) SendTo(s, PullMessage(pull, slices, s, ts), {ts});
  return ts;
}

int64_t KVClient::Push(const PushSpec& push) {
  const std::vector<size_t> slices = po_->partition().Slices(push.mixed);
  const std::vector<int> servers = ServersOf(slices, !push.dense_grads.empty());
  const std::vector<size_t> grad_offsets = GradOffsets(slices, push.widths);
  const int64_t ts = Register(servers, nullptr, Kind::kQuietPush);
  for (int s : servers) SendTo(s, PushMessage(push, slices, grad_offsets, s, ts), {ts});
  return ts;
}

int64_t KVClient::PushPull(const PushSpec& push, const PullSpec& pull, int64_t* push_ts) {
  const std::vector<size_t> push_slices = po_->partition().Slices(push.mixed);
  const std::vector<size_t> pull_slices = po_->partition().Slices(pull.mixed);
  const std::vector<int> push_servers = ServersOf(push_slices, !push.dense_grads.empty());
  const std::vector<int> pull_servers = ServersOf(pull_slices, pull.with_dense);
  const std::vector<size_t> grad_offsets = GradOffsets(push_slices, push.widths);
  // The push first: the pull's answers then acknowledge it.
  *push_ts = Register(push_servers, nullptr, Kind::kQuietPush);
  const int64_t pull_ts = Register(pull_servers, pull.result, Kind::kAnswered);
  auto has = [](const std::vector<int>& servers, int s) {
    return std::find(servers.begin(), servers.end(), s) != servers.end();
  };
  for (int s = 0; s < po_->num_servers(); ++s) {
    const bool pushes = has(push_servers, s), pulls = has(pull_servers, s);
    if (pushes && pulls) {
      Message msg = PushMessage(push, push_slices, grad_offsets, s, *push_ts);
      Message pull_msg = PullMessage(pull, pull_slices, s, pull_ts);
      msg.meta.set_cmd(proto::PUSH_PULL);
      proto::KVHeader* kv = msg.meta.mutable_kv();
      kv->set_pull_request_id(pull_ts);
      kv->set_pull_num_keys(pull_msg.meta.kv().num_keys());
      kv->set_pull_with_dense(pull_msg.meta.kv().with_dense());
      kv->set_pull_keep_keys(pull.keep_keys);
      msg.frames.push_back(std::move(pull_msg.frames[0]));
      SendTo(s, std::move(msg), {*push_ts, pull_ts});
    } else if (pushes) {
      SendTo(s, PushMessage(push, push_slices, grad_offsets, s, *push_ts), {*push_ts});
    } else if (pulls) {
      SendTo(s, PullMessage(pull, pull_slices, s, pull_ts), {pull_ts});
    }
  }
  return pull_ts;
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
  const int64_t ts = Register(ranks, nullptr, Kind::kSync);
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
