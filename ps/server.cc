#include "ps/server.h"

#include <glog/logging.h>

#include <cmath>

#include "ps/base/env.h"
#include "ps/base/keys.h"
#include "ps/checkpoint.h"
#include "ps/kv_messages.h"

namespace fmps {

KVServer::KVServer(std::unique_ptr<Postoffice> po, ServerSetupFn setup,
                   const ServerOptions& options)
    : po_(std::move(po)),
      setup_fn_(std::move(setup)),
      options_(options),
      own_metrics_(options.metrics ? nullptr : std::make_unique<MetricsRegistry>()),
      metrics_(options.metrics ? options.metrics : own_metrics_.get()) {
  MetricsRegistry& m = *metrics_;
  pulls_ = m.AddCounter("fmps_server_pulls_total", "Pull requests answered.");
  pushes_ = m.AddCounter("fmps_server_pushes_total", "Push requests applied.");
  pulled_keys_ = m.AddCounter("fmps_server_pulled_keys_total", "Keys answered in pulls.");
  pushed_keys_ = m.AddCounter("fmps_server_pushed_keys_total", "Keys updated by pushes.");
  // 0, 1, 2, 4, ... 1024 pushes: a worker's own pipeline gives 0-2, each other worker ~1 more.
  std::vector<double> staleness{0};
  for (double b : ExponentialBuckets(1, 2, 11)) staleness.push_back(b);
  staleness_ =
      m.AddHistogram("fmps_server_push_staleness",
                     "Pushes the server applied between a push's pull and the push.", staleness);
  evictions_ = m.AddCounter("fmps_store_evictions_total",
                            "Rows dropped from the store (stale, zero w, or over the memory cap).");
  refused_ = m.AddCounter(
      "fmps_store_admissions_refused_total",
      "Key occurrences pushed before the key reached --min_count: counted in the sketch, no row.");
  store_bytes_ = m.AddGauge("fmps_store_memory_bytes",
                            "Memory held by the store: index, rows, arenas and admission sketch.");
}

KVServer::~KVServer() = default;

bool KVServer::KnownSender(const Message& msg) const {
  int s = msg.meta.sender();
  return s >= 0 && s < po_->table().nodes_size();
}

void KVServer::Reply(const Message& request, proto::Command cmd, std::vector<std::string> frames,
                     const std::string& error, uint64_t clock) {
  Message reply;
  reply.meta.set_cmd(cmd);
  reply.meta.set_request_id(request.meta.request_id());
  if (!error.empty())
    reply.meta.set_error(error);
  else
    reply.meta.mutable_kv()->set_clock(clock);
  reply.frames = std::move(frames);
  Status st = po_->Send(request.meta.sender(), std::move(reply));
  if (!st.ok())
    LOG(WARNING) << "reply to " << po_->NodeName(request.meta.sender()) << ": " << st.ToString();
}

Status KVServer::Run() {
  FMPS_RETURN_IF_ERROR(po_->Join());
  if (po_->job_over()) {
    LOG(INFO) << "the scheduler's job has already ended: nothing to do";
    return Status::OK();
  }
  Status st = Serve();
  if (!st.ok()) {
    // Tell the scheduler at once, so the job ends with this reason instead of a heartbeat timeout.
    Message fatal;
    fatal.meta.set_cmd(proto::FATAL);
    fatal.meta.set_error(st.ToString());
    (void)po_->Send(kSchedulerId, std::move(fatal));
  }
  return st;
}

Status KVServer::Serve() {
  rank_ = po_->ServerRank(po_->my_id());
  Result<ServerSetup> setup = setup_fn_(po_->config(), rank_);
  if (!setup.ok()) return setup.status();
  setup_ = std::move(setup.value());
  store_ = std::make_unique<Store>(setup_.store);
  if (rank_ == 0) {
    dense_ = setup_.dense_init;
    dense_accum_.assign(dense_.size(), 0.f);
  }
  if (!po_->config().init_model().empty())
    FMPS_RETURN_IF_ERROR(LoadShard(po_->config().init_model()));
  metrics_->SetReady(true, "server " + std::to_string(rank_) + " joined");
  LOG(INFO) << "server " << rank_ << " (node " << po_->my_id() << ") serving keys ["
            << po_->partition().begin(rank_) << ", " << po_->partition().end(rank_) << ")";
  double last_heartbeat = 0, last_from_scheduler = NowSeconds();
  while (true) {
    auto msg = po_->Recv(100);
    double now = NowSeconds();
    if (now - last_heartbeat >= options_.heartbeat_s) {
      SendHeartbeat();
      last_heartbeat = now;
    }
    if (now - last_from_scheduler > options_.scheduler_timeout_s) {
      return Status::Timeout("the scheduler has been silent for " +
                             std::to_string(static_cast<int>(now - last_from_scheduler)) +
                             " s; giving up");
    }
    if (!msg) continue;
    if (msg->meta.sender() == kSchedulerId) last_from_scheduler = now;
    if (!KnownSender(*msg)) {
      ++dropped_;
      LOG(WARNING) << "dropping " << proto::Command_Name(msg->meta.cmd()) << " from " << msg->peer
                   << ": sender " << msg->meta.sender() << " is not in this job";
      continue;
    }
    switch (msg->meta.cmd()) {
      case proto::PULL:
        HandlePull(*msg);
        break;
      case proto::PUSH:
        HandlePush(*msg);
        break;
      case proto::PUSH_PULL:
        HandlePushPull(std::move(*msg));
        break;
      case proto::CHECKPOINT:
        HandleCheckpoint(*msg);
        break;
      case proto::HEARTBEAT:  // the scheduler's: progress in, fresh figures out
        progress_ = msg->meta.heartbeat().progress();
        SendHeartbeat();
        last_heartbeat = now;
        break;
      case proto::NODE_TABLE: {  // a worker or server was replaced
        Status st = po_->UpdateTable(msg->meta.table());
        if (!st.ok()) LOG(WARNING) << "node table update: " << st.ToString();
        break;
      }
      case proto::SHUTDOWN:
        // With an error the job failed (or the scheduler restarted without this node): exit with
        // one, so that a supervisor restarts or reports this node instead of counting it done.
        if (!msg->meta.error().empty()) {
          return Status::Aborted("the scheduler ended the job: " + msg->meta.error());
        }
        SendHeartbeat();
        LOG(INFO) << "server " << rank_ << " done";
        return Status::OK();
      default:
        LOG(WARNING) << "server ignoring " << proto::Command_Name(msg->meta.cmd()) << " from "
                     << po_->NodeName(msg->meta.sender());
    }
  }
}

KeyRange KVServer::Range() const {
  return KeyRange{po_->partition().begin(rank_), po_->partition().end(rank_)};
}

void KVServer::Drop(const Message& msg, proto::Command reply, const Status& why) {
  ++dropped_;
  LOG(WARNING) << "dropping " << proto::Command_Name(msg.meta.cmd()) << " from "
               << po_->NodeName(msg.meta.sender()) << ": " << why.message();
  Reply(msg, reply, {}, why.message());
}

void KVServer::HandlePull(const Message& msg) {
  Result<PullRequest> req = DecodePull(msg, Range());
  if (!req.ok()) return Drop(msg, proto::PULL_REPLY, req.status());
  pull_values_.clear();  // reused: Store::Pull appends
  pull_widths_.clear();
  const bool keep = msg.meta.kv().keep_keys();
  store_->Pull(req->keys, &pull_values_, &pull_widths_, keep ? &pull_hints_ : nullptr);
  if (keep) KeepPull(msg.meta.sender(), msg.meta.request_id(), req->keys);
  std::vector<std::string> frames{ToFrame(pull_values_), ToFrame(pull_widths_)};
  if (req->with_dense) frames.push_back(ToFrame(dense_));
  Reply(msg, proto::PULL_REPLY, std::move(frames), "", clock_);
  pulls_->Add();
  pulled_keys_->Add(req->keys.size());
}

void KVServer::KeepPull(int sender, int64_t id, std::span<const uint64_t> keys) {
  std::deque<KeptPull>& kept = kept_pulls_[sender];
  // A worker's request ids only grow: a smaller one is a new process under the same id, whose
  // predecessor's pulls will never be pushed.
  if (!kept.empty() && kept.back().id >= id) {
    for (KeptPull& old : kept) spare_pulls_.push_back(std::move(old));
    kept.clear();
  }
  if (kept.size() == kMaxKeptPulls) {  // pulls whose push never came (abandoned work)
    spare_pulls_.push_back(std::move(kept.front()));
    kept.pop_front();
  }
  KeptPull entry;
  if (!spare_pulls_.empty()) {
    entry = std::move(spare_pulls_.back());
    spare_pulls_.pop_back();
  }
  entry.id = id;
  entry.keys.assign(keys.begin(), keys.end());
  entry.widths = pull_widths_;
  entry.hints.swap(pull_hints_);
  kept.push_back(std::move(entry));
}

bool KVServer::TakeKeptPull(int sender, int64_t id, KeptPull* out) {
  auto it = kept_pulls_.find(sender);
  if (it == kept_pulls_.end()) return false;
  std::deque<KeptPull>& kept = it->second;
  while (!kept.empty() && kept.front().id < id) {  // pushes come in order: these never will
    spare_pulls_.push_back(std::move(kept.front()));
    kept.pop_front();
  }
  if (kept.empty() || kept.front().id != id) return false;
  if (out->id >= 0) spare_pulls_.push_back(std::move(*out));
  *out = std::move(kept.front());
  kept.pop_front();
  return true;
}

void KVServer::HandlePush(const Message& msg) {
  Result<PushRequest> req = [&]() -> Result<PushRequest> {
    if (msg.meta.body_case() != proto::Meta::kKv || !msg.meta.kv().has_keys_of_pull()) {
      return DecodePush(msg, Range(), dense_.size());
    }
    const int64_t pull = msg.meta.kv().keys_of_pull();
    if (!TakeKeptPull(msg.meta.sender(), pull, &pushed_pull_)) {
      return Status::InvalidArgument("push names pull " + std::to_string(pull) +
                                     ", whose keys this server does not hold");
    }
    return DecodeKeylessPush(msg, pushed_pull_.keys, pushed_pull_.widths, dense_.size());
  }();
  if (req.ok() && !PushIsFinite(msg, *req)) {
    // Dropped, not refused: a worker whose rows overflow the model goes on with the next batch.
    if (!msg.meta.kv().quiet()) Reply(msg, proto::PUSH_REPLY, {});
    return;
  }
  // Asynchronous workers push gradients computed on parameters that other pushes have moved
  // since; damping the adaptive steps by the staleness keeps many workers from overshooting
  // together (the linear weights' FTRL state is a closed form and needs no damping).
  const uint64_t pulled = msg.meta.kv().clock();
  const float scale =
      setup_.stale_damping > 0 && pulled <= clock_
          ? std::pow(1.0f + static_cast<float>(clock_ - pulled), -setup_.stale_damping)
          : 1.0f;
  store_->SetLearningRateScale(scale);
  // A push naming its pull also has the rows' places that pull found (checked before use).
  const bool keyless = msg.meta.body_case() == proto::Meta::kKv && msg.meta.kv().has_keys_of_pull();
  Status st = req.ok() ? store_->Push(req->keys, req->grads, req->widths, req->counts,
                                      keyless ? std::span<const uint64_t>(pushed_pull_.hints)
                                              : std::span<const uint64_t>())
                       : req.status();
  if (!st.ok()) return Drop(msg, proto::PUSH_REPLY, st);
  if (req->with_dense && !dense_.empty()) {
    // Adagrad on the dense block (bias and field-pair parameters).
    for (size_t i = 0; i < dense_.size(); ++i) {
      float g = req->dense_grads[i];
      dense_accum_[i] += g * g;
      dense_[i] -= scale * setup_.dense_lr * g / std::sqrt(dense_accum_[i] + 1e-8f);
    }
    if (setup_.after_dense_update) setup_.after_dense_update(dense_, progress_);
  }
  staleness_->Observe(pulled <= clock_ ? static_cast<double>(clock_ - pulled) : 0.0);
  ++clock_;
  pushes_->Add();
  pushed_keys_->Add(req->keys.size());
  if (!msg.meta.kv().quiet()) Reply(msg, proto::PUSH_REPLY, {});
}

bool KVServer::PushIsFinite(const Message& msg, const PushRequest& req) {
  if (AllFinite(req.grads) && AllFinite(req.dense_grads)) return true;
  ++nonfinite_pushes_;
  const uint64_t n = ++nonfinite_pushes_by_sender_[msg.meta.sender()];
  // One line for a sender's first, then at 10, 100, ...: a worker gone NaN must not flood the log.
  uint64_t power = 1;
  while (power < n && power <= UINT64_MAX / 10) power *= 10;
  if (power == n) {
    LOG(WARNING) << "server " << rank_ << ": dropped push " << n << " from "
                 << po_->NodeName(msg.meta.sender()) << " (" << msg.peer
                 << "): a gradient is NaN or infinite"
                 << (n == 1 ? "; later ones are counted" : "");
  }
  return false;
}

void KVServer::HandlePushPull(Message&& msg) {
  // The push's frames, then the pull's keys: handled as the two requests they carry, in order.
  Message pull;
  pull.meta.set_cmd(proto::PULL);
  pull.meta.set_sender(msg.meta.sender());
  pull.meta.set_request_id(msg.meta.kv().pull_request_id());
  pull.meta.mutable_kv()->set_num_keys(msg.meta.kv().pull_num_keys());
  pull.meta.mutable_kv()->set_with_dense(msg.meta.kv().pull_with_dense());
  pull.meta.mutable_kv()->set_keep_keys(msg.meta.kv().pull_keep_keys());
  pull.peer = msg.peer;
  if (!msg.frames.empty()) {
    pull.frames.push_back(std::move(msg.frames.back()));
    msg.frames.pop_back();
  }
  msg.meta.set_cmd(proto::PUSH);
  HandlePush(msg);
  HandlePull(pull);
}

void KVServer::HandleKeptCopy(const proto::Checkpoint& req) {
  Message reply;
  reply.meta.set_cmd(proto::CHECKPOINT_DONE);
  proto::Checkpoint* done = reply.meta.mutable_checkpoint();
  *done = req;
  if (req.restore()) {
    if (!kept_.held) {
      done->set_error("server " + std::to_string(rank_) + " holds no kept model to restore");
    } else {
      Status st =
          store_->Deserialize(kept_.store, "the kept model of server " + std::to_string(rank_));
      if (st.ok()) {
        dense_ = kept_.dense;
        dense_accum_ = kept_.dense_accum;
      } else {
        done->set_error(st.ToString());
      }
    }
  } else {
    kept_.store = store_->Serialize();
    kept_.dense = dense_;
    kept_.dense_accum = dense_accum_;
    kept_.held = true;
  }
  Status sent = po_->Send(kSchedulerId, std::move(reply));
  if (!sent.ok()) LOG(WARNING) << "kept model reply: " << sent.ToString();
}

void KVServer::HandleCheckpoint(const Message& msg) {
  const proto::Checkpoint& req = msg.meta.checkpoint();
  if (req.keep_in_memory() || req.restore()) return HandleKeptCopy(req);
  ShardData shard;
  shard.server = rank_;
  shard.range_begin = po_->partition().begin(rank_);
  shard.range_end = po_->partition().end(rank_);
  shard.dense = dense_;
  shard.dense_accum = dense_accum_;
  shard.store = store_->Serialize();
  std::string bytes = EncodeShard(shard);
  std::string file = ShardFileName(req.version(), rank_);
  Message reply;
  reply.meta.set_cmd(proto::CHECKPOINT_DONE);
  proto::Checkpoint* done = reply.meta.mutable_checkpoint();
  done->set_version(req.version());
  done->set_file(file);
  done->set_checksum(Checksum64(bytes.data(), bytes.size()));
  Status st = WriteFileAtomic(req.dir() + "/" + file, bytes, options_.env);
  if (!st.ok()) done->set_error(st.ToString());
  Status sent = po_->Send(kSchedulerId, std::move(reply));
  if (!sent.ok()) LOG(WARNING) << "checkpoint reply: " << sent.ToString();
}

Status KVServer::LoadShard(const std::string& dir) {
  Result<proto::Manifest> manifest = FindNewestGoodManifest(dir, options_.env);
  if (!manifest.ok()) return manifest.status();
  const std::string manifest_name = dir + "/" + ManifestFileName(manifest->version());
  // The checkpoint may come from a job with another number of servers: this server's range is
  // read from every old shard that overlaps it (with the same number, its own shard alone).
  const KeyRange range = Range();
  Result<std::vector<int>> sources =
      OverlappingShards(manifest.value(), range.begin, range.end, manifest_name);
  if (!sources.ok()) return sources.status();
  std::vector<std::string> files;  // each shard's bytes, viewed by `stores` while loading
  std::vector<Store::ShardSource> stores;
  files.reserve(sources->size());
  std::string names;
  bool have_dense = false;
  for (int i : sources.value()) {
    const std::string path = dir + "/" + manifest->shards(i).file();
    Result<std::string> bytes = ReadFile(path, options_.env);
    if (!bytes.ok()) return bytes.status();
    files.push_back(std::move(bytes.value()));
    std::string_view store_bytes;
    Result<ShardData> shard = DecodeShard(files.back(), path, &store_bytes);
    if (!shard.ok()) return shard.status();
    stores.push_back(Store::ShardSource{store_bytes, path});
    // The dense block (and its accumulators) is server 0's in every job; both ranges begin at 0.
    if (rank_ == 0 && manifest->shards(i).server() == 0) {
      if (shard->dense.size() != dense_.size()) {
        return Status::InvalidArgument(
            path + ": dense block of " + std::to_string(shard->dense.size()) +
            " floats does not fit this model's " + std::to_string(dense_.size()));
      }
      dense_ = shard->dense;
      dense_accum_ = shard->dense_accum;
      have_dense = true;
    }
    names += (names.empty() ? "" : ", ") + path;
  }
  FMPS_RETURN_IF_ERROR(store_->DeserializeSelected(
      stores, [range](uint64_t key) { return range.Contains(Mix64(key)); }));
  if (rank_ == 0 && !have_dense) {
    return Status::Corruption(manifest_name +
                              ": no shard of server 0 (the dense block) overlaps "
                              "the range of server 0");
  }
  LOG(INFO) << "server " << rank_ << " loaded " << store_->Stats().keys
            << " keys of its range from " << names << " (checkpoint " << manifest->version()
            << " of " << manifest->shards_size() << " servers)";
  return Status::OK();
}

void KVServer::SendHeartbeat() {
  Message hb;
  hb.meta.set_cmd(proto::HEARTBEAT);
  proto::Heartbeat* h = hb.meta.mutable_heartbeat();
  h->set_rss_bytes(CurrentRssBytes());
  h->set_peak_rss_bytes(PeakRssBytes());
  if (store_) {
    StoreStats s = store_->Stats();
    h->set_keys(s.keys);
    h->set_nonzero_w(s.nonzero_w);
    h->set_embeddings(s.embeddings);
    h->set_embedding_floats(s.embedding_floats);
    h->set_dense_params(setup_.dense_params ? setup_.dense_params(dense_) : dense_.size());
    h->set_nonfinite_pushes(nonfinite_pushes_);
    evictions_->Set(s.evicted);
    refused_->Set(s.pending_pushes);
    store_bytes_->Set(static_cast<double>(s.bytes));
    for (const StoreStats::Width& w : s.by_width) {
      const MetricLabels width{{"width", std::to_string(w.width)}};
      metrics_->AddGauge("fmps_store_rows", "Rows in the store by embedding width.", width)
          ->Set(static_cast<double>(w.rows));
      metrics_
          ->AddGauge("fmps_store_bytes",
                     "Bytes of the store by embedding width (width 0: the index).", width)
          ->Set(static_cast<double>(w.bytes));
    }
    if (s.evicted > evicted_logged_) {
      LOG(INFO) << "server " << rank_ << ": evicted " << s.evicted - evicted_logged_
                << " rows since the last heartbeat (" << s.evicted << " in all, "
                << s.evicted_for_memory << " for the memory cap); " << s.keys << " rows, "
                << s.bytes / 1048576 << " MiB held";
      evicted_logged_ = s.evicted;
    }
  }
  po_->StampHeartbeat(h);
  Status st = po_->Send(kSchedulerId, std::move(hb));
  if (!st.ok()) LOG(WARNING) << "heartbeat: " << st.ToString();
}

}  // namespace fmps
