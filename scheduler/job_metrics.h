// JobMetrics: the scheduler's figures of the whole job, for /metrics and for --metrics_out (one
// JSON line per progress interval and per epoch, with the same names). The scheduler's thread
// updates them; scrapes read them from the endpoint's thread (atomics).
#ifndef FMPS_SCHEDULER_JOB_METRICS_H_
#define FMPS_SCHEDULER_JOB_METRICS_H_

#include <memory>
#include <string>

#include "metrics/metrics.h"
#include "ps/base/env.h"
#include "ps/base/status.h"

namespace fmps {

class JobMetrics {
 public:
  // `registry` (not owned) must outlive this; null: a private one. `out_path`: the JSONL file
  // (empty: none); `start` the job's start (NowSeconds), from which lines count time_s.
  JobMetrics(MetricsRegistry* registry, int servers, int workers, int epochs);
  ~JobMetrics();

  // Opens (truncates) the JSONL file through env (not owned, outlives this). IOError naming it.
  Status OpenLog(const std::string& path, double start, Env* env = Env::Default());
  // Appends {"event":EVENT,"time_s":...,<extra>,<every unlabeled figure>} as one write. The first
  // failed write is logged once as an error naming the file; no more lines go there, and the job
  // goes on (the figures are a record, not the model).
  void WriteLine(const char* event, const std::string& extra = "");

  MetricsRegistry& registry() { return *registry_; }
  // Checkpoint `version` is written now.
  void CheckpointWritten(int64_t version);

  Counter *train_rows, *bad_lines, *nodes_declared_dead, *restarts;
  Gauge *epoch, *progress, *train_logloss, *rows_per_second, *epoch_train_logloss,
      *epoch_rows_per_second, *validation_logloss, *validation_auc, *test_logloss, *test_auc,
      *checkpoint_version, *checkpoint_time, *nonzero_w, *embeddings;
  Gauge *joined_servers, *joined_workers, *dead_servers, *dead_workers;

 private:
  std::unique_ptr<MetricsRegistry> own_;
  MetricsRegistry* registry_;
  std::unique_ptr<WritableFile> log_;
  std::string log_path_;
  double start_ = 0;
  bool log_failed_ = false;
};

}  // namespace fmps

#endif  // FMPS_SCHEDULER_JOB_METRICS_H_
