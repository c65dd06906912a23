// Test data for the integration tests: generated Criteo files and their base-rate logloss.
#ifndef FMPS_TESTS_INTEGRATION_DATA_UTIL_H_
#define FMPS_TESTS_INTEGRATION_DATA_UTIL_H_

#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "datagen/generator.h"
#include "models/job_config.h"
#include "scheduler/scheduler.h"

namespace fmps::testing {

// Writes `rows` rows of planted-FM Criteo data (shared model, row stream from seed).
inline bool GenerateFile(const std::string& path, uint64_t rows, uint64_t seed) {
  datagen::GeneratorOptions o;
  o.rows = rows;
  o.seed = seed;
  o.model_seed = 7;
  o.vocab_scale = 0.02;  // small vocabularies: 20k rows see each token often enough to learn
  o.linear_std = 1.5;    // mostly linear signal, so two short epochs learn a clear share of it
  o.interaction_std = 0.5;
  o.table_tokens = 1024;
  o.bias_pilot_rows = 5000;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return false;
  Result<datagen::GeneratorResult> r = datagen::GenerateCriteo(o, fd);
  ::close(fd);
  return r.ok() && r->rows == rows;
}

// A short job that trains the same model every run, for tests that hold a disturbed run (attacked,
// forged, keyed) to a clean one: DIR/train.txt (kDeterministicRows generated rows, seed 3) and
// DIR/test.txt (5,000, seed 4); two servers and ONE worker (two would interleave their pushes),
// small synchronous batches so that the job lasts seconds.
constexpr uint64_t kDeterministicRows = 100000;
constexpr int kDeterministicEpochs = 2;

inline bool WriteDeterministicData(const std::string& dir) {
  return GenerateFile(dir + "/train.txt", kDeterministicRows, 3) &&
         GenerateFile(dir + "/test.txt", 5000, 4);
}

// `fmps train` on WriteDeterministicData's files; callers append their own flags.
inline std::vector<std::string> DeterministicTrainArgs(const std::string& dir) {
  return {"train",
          "--data=" + dir + "/train.txt",
          "--test=" + dir + "/test.txt",
          "--num_servers=2",
          "--num_workers=1",
          "--epochs=" + std::to_string(kDeterministicEpochs),
          "--batch_size=20",
          "--max_delay=0",
          "--part_mb=0.1",
          "--seed=1"};
}

struct LabelStats {
  uint64_t rows = 0, positives = 0;
  // Logloss of always predicting the file's CTR (the entropy of the labels).
  double BaseRateLogLoss() const {
    double p = static_cast<double>(positives) / static_cast<double>(rows);
    return -(p * std::log(p) + (1 - p) * std::log(1 - p));
  }
};

inline LabelStats CountLabels(const std::string& path) {
  LabelStats s;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    ++s.rows;
    if (line[0] == '1') ++s.positives;
  }
  return s;
}

// A small FM job on 2 servers and 2 workers over generated Criteo files: several parts per epoch,
// embeddings from 5 occurrences, so 2e4 rows learn something in seconds.
inline SchedulerOptions SmallJob(const std::string& train, const std::string& test) {
  SchedulerOptions o;
  o.train_files = {train};
  o.test_files = {test};
  o.pool.part_bytes = 256 << 10;  // several parts per epoch, so both workers get some
  o.heartbeat_timeout_s = 20;
  o.progress_every_s = 60;
  proto::JobConfig& c = o.config;
  c = DefaultJobConfig();
  c.set_stale_damping(0);
  c.set_model("fm");
  c.set_k(8);
  c.set_num_fields(39);
  c.set_rank(2);
  c.set_keep(1.0);
  c.set_keep_entries(-1);
  for (int r : {4, 8, 16}) c.add_rafm_ranks(r);
  c.set_ftrl_alpha(0.05f);
  c.set_ftrl_beta(1.0f);
  c.set_ftrl_l1(0.5f);
  c.set_ftrl_l2(1.0f);
  c.set_v_lr(0.05f);
  c.set_v_init_scale(0.01f);
  c.set_v_l2(1e-4f);
  c.set_dense_lr(0.05f);
  c.set_v_min_count(5);
  c.set_rank_mid(4);
  c.set_rank_mid_count(20);
  c.set_rank_head_count(100);
  c.set_format("criteo");
  c.set_batch_size(500);
  c.set_max_delay(2);
  c.set_pull_ahead_after(100);
  c.set_cache_mb(1024);
  c.set_seed(1);
  c.set_epochs(2);
  c.set_max_bad_lines(1000);
  c.set_num_servers(2);
  c.set_num_workers(2);
  return o;
}

}  // namespace fmps::testing

#endif  // FMPS_TESTS_INTEGRATION_DATA_UTIL_H_
