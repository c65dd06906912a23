// Test data for the integration tests: generated Criteo files and their base-rate logloss.
#ifndef FMPS_TESTS_INTEGRATION_DATA_UTIL_H_
#define FMPS_TESTS_INTEGRATION_DATA_UTIL_H_

#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <string>

#include "datagen/generator.h"

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

}  // namespace fmps::testing

#endif  // FMPS_TESTS_INTEGRATION_DATA_UTIL_H_
