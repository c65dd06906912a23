// Scheduler, reports: progress lines, the job's metrics and the final JSON line.
#include <glog/logging.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <limits>

#include "models/metrics.h"
#include "ps/base/env.h"
#include "ps/checkpoint.h"
#include "scheduler/scheduler.h"

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
  std::fprintf(stderr,
               "\r\033[K[%s] %3.0f%%  epoch %d/%d  rows %" PRIu64 "  %.0f rows/s%s  logloss %.5f",
               bar.c_str(), 100 * done, std::min(epoch_ + 1, std::max(1, options_.config.epochs())),
               options_.config.epochs(), rows, rate, eta, mean_loss);
  std::fflush(stderr);
  bar_shown_ = true;
}

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

JobReport Scheduler::MakeReport() {
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
  ScoreTestPass(&r);
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
  r.model_dir = options_.config.model_dir();
  metrics_->WriteLine("end");
  return r;
}

void Scheduler::ScoreTestPass(JobReport* r) {
  r->test_rows = test_labels_.size();
  if (test_labels_.empty()) return;
  std::vector<float> probs(test_logits_.size());
  for (size_t i = 0; i < probs.size(); ++i) probs[i] = static_cast<float>(Sigmoid(test_logits_[i]));
  r->test_logloss = LogLoss(test_labels_, probs);
  // Sigmoid maps an infinite logit to a finite probability: the logits say what is non-finite.
  r->test_auc = Auc(test_labels_, test_logits_, &r->test_nonfinite_scores);
  if (r->test_nonfinite_scores > 0) {
    for (size_t i = 0; i < probs.size(); ++i)
      if (!std::isfinite(test_logits_[i])) probs[i] = std::numeric_limits<float>::quiet_NaN();
    r->test_logloss = LogLoss(test_labels_, probs);
    LOG(WARNING) << r->test_nonfinite_scores << " of " << probs.size()
                 << " test rows scored NaN or infinite: left out of the test logloss and AUC";
  }
  if (final_checkpoint_done_) {
    // The final version carries its test figures (`fmps models` lists them).
    manifest_.set_test_rows(r->test_rows);
    manifest_.set_test_logloss(r->test_logloss);
    manifest_.set_test_auc(r->test_auc);
    Status written = WriteManifest(options_.config.model_dir(), manifest_, options_.env);
    if (!written.ok()) LOG(WARNING) << "test figures not recorded: " << written.ToString();
  }
  metrics_->test_logloss->Set(r->test_logloss);
  metrics_->test_auc->Set(r->test_auc);
}

}  // namespace fmps
