// JobMetrics: the scheduler's figures of the whole job, for /metrics and for --metrics_out (one
// JSON line per progress interval and per epoch, with the same names). The scheduler's thread
// updates them; scrapes read them from the endpoint's thread (atomics).
#ifndef FMPS_SCHEDULER_JOB_METRICS_H_
#define FMPS_SCHEDULER_JOB_METRICS_H_

#include <cstdio>
#include <memory>
#include <string>

#include "metrics/metrics.h"
#include "ps/base/status.h"

namespace fmps {

class JobMetrics {
 public:
  // `registry` (not owned) must outlive this; null: a private one. `out_path`: the JSONL file
  // (empty: none); `start` the job's start (NowSeconds), from which lines count time_s.
  JobMetrics(MetricsRegistry* registry, int servers, int workers, int epochs);
  ~JobMetrics();

  // Opens (truncates) the JSONL file. IOError naming it.
  Status OpenLog(const std::string& path, double start);
  // Appends {"event":EVENT,"time_s":...,<extra>,<every unlabeled figure>} and flushes.
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
  std::FILE* log_ = nullptr;
  std::string log_path_;
  double start_ = 0;
  bool log_failed_ = false;
};

}  // namespace fmps

#endif  // FMPS_SCHEDULER_JOB_METRICS_H_
