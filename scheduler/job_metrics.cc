#include "scheduler/job_metrics.h"

#include <glog/logging.h>

#include <cmath>
#include <cstdio>

#include "ps/base/env.h"

namespace fmps {

JobMetrics::JobMetrics(MetricsRegistry* registry, int servers, int workers, int epochs)
    : own_(registry ? nullptr : std::make_unique<MetricsRegistry>()),
      registry_(registry ? registry : own_.get()) {
  MetricsRegistry& m = *registry_;
  train_rows = m.AddCounter("fmps_train_rows_total", "Training rows done (all epochs).");
  bad_lines = m.AddCounter("fmps_bad_lines_total", "Malformed input lines skipped.");
  epoch = m.AddGauge("fmps_epoch", "Epoch in progress (1-based).");
  m.AddGauge("fmps_epochs", "Epochs of the job.")->Set(epochs);
  progress = m.AddGauge("fmps_train_progress_ratio", "Fraction of training done, in [0, 1].");
  train_logloss =
      m.AddGauge("fmps_train_logloss", "Progressive train logloss of the rows trained so far.");
  rows_per_second =
      m.AddGauge("fmps_train_rows_per_second", "Training rows per second since the last line.");
  epoch_train_logloss =
      m.AddGauge("fmps_epoch_train_logloss", "Progressive train logloss of the last epoch done.");
  epoch_rows_per_second =
      m.AddGauge("fmps_epoch_rows_per_second", "Training rows per second of the last epoch done.");
  const double nan = std::nan("");
  validation_logloss =
      m.AddGauge("fmps_validation_logloss", "Validation logloss after the last epoch done.");
  validation_auc = m.AddGauge("fmps_validation_auc", "Validation AUC after the last epoch done.");
  test_logloss = m.AddGauge("fmps_test_logloss", "Test logloss (after training).");
  test_auc = m.AddGauge("fmps_test_auc", "Test AUC (after training).");
  for (Gauge* g : {validation_logloss, validation_auc, test_logloss, test_auc}) g->Set(nan);
  checkpoint_version = m.AddGauge("fmps_checkpoint_version", "Version of the last checkpoint.");
  checkpoint_time = m.AddGauge("fmps_checkpoint_time_seconds",
                               "Unix time the last checkpoint was written (0: none yet).");
  m.AddGaugeFunction("fmps_checkpoint_age_seconds",
                     "Seconds since the last checkpoint was written (NaN: none).",
                     [t = checkpoint_time] {
                       const double at = t->value();
                       return at > 0 ? UnixSeconds() - at : std::nan("");
                     });
  nonzero_w = m.AddGauge("fmps_job_nonzero_w", "Features with w != 0 over all servers.");
  embeddings = m.AddGauge("fmps_job_embeddings", "Embeddings alive over all servers.");
  m.AddGauge("fmps_nodes_expected", "Nodes the job needs.", {{"role", "server"}})->Set(servers);
  m.AddGauge("fmps_nodes_expected", "Nodes the job needs.", {{"role", "worker"}})->Set(workers);
  joined_servers =
      m.AddGauge("fmps_nodes_joined", "Nodes that joined and are alive.", {{"role", "server"}});
  joined_workers =
      m.AddGauge("fmps_nodes_joined", "Nodes that joined and are alive.", {{"role", "worker"}});
  dead_servers =
      m.AddGauge("fmps_nodes_dead", "Nodes declared dead and not replaced.", {{"role", "server"}});
  dead_workers =
      m.AddGauge("fmps_nodes_dead", "Nodes declared dead and not replaced.", {{"role", "worker"}});
  nodes_declared_dead = m.AddCounter("fmps_nodes_declared_dead_total",
                                     "Nodes declared dead after missing heartbeats.");
  restarts = m.AddCounter("fmps_node_restarts_total",
                          "Nodes restarted: replacements admitted in place of dead nodes.");
}

void JobMetrics::CheckpointWritten(int64_t version) {
  checkpoint_version->Set(static_cast<double>(version));
  checkpoint_time->Set(UnixSeconds());
}

JobMetrics::~JobMetrics() {
  if (log_ != nullptr) (void)log_->Close();
}

Status JobMetrics::OpenLog(const std::string& path, double start, Env* env) {
  start_ = start;
  if (path.empty()) return Status::OK();
  Result<std::unique_ptr<WritableFile>> file = env->NewWritableFile(path);
  if (!file.ok()) return Status::IOError("--metrics_out: " + file.status().message());
  log_ = std::move(file.value());
  log_path_ = path;
  return Status::OK();
}

void JobMetrics::WriteLine(const char* event, const std::string& extra) {
  if (log_ == nullptr || log_failed_) return;
  char head[96];
  std::snprintf(head, sizeof(head), "{\"event\":\"%s\",\"time_s\":%.3f", event,
                NowSeconds() - start_);
  std::string line = head;
  if (!extra.empty()) line += "," + extra;
  const std::string fields = registry_->JsonFields();
  if (!fields.empty()) line += "," + fields;
  line += "}\n";
  Status st = log_->Append(line);
  if (!st.ok()) {
    LOG(ERROR) << "--metrics_out: " << st.message()
               << "; no more lines go there (training goes on)";
    log_failed_ = true;
  }
}

}  // namespace fmps
