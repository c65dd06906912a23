// A cheap look at a job's training data before it starts: the first rows of its files, read
// through the job's own reader, counted (rows, entries, distinct features). The launcher derives
// the settings that depend on how dense the data is from it (launch/data_defaults.h).
#ifndef FMPS_DATA_DATA_PROFILE_H_
#define FMPS_DATA_DATA_PROFILE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "data/reader.h"
#include "ps/base/env.h"
#include "ps/base/status.h"

namespace fmps {

struct DataProfileOptions {
  DataFormat format = DataFormat::kCriteo;  // resolved (not kAuto)
  int num_fields = 0;                       // libffm/libsvm: the job's fields (0: up to 256)
  double holdout = 0;                       // the job's --holdout: held-out rows are not counted
  uint64_t max_rows = 50000;                // rows sampled at most
  uint64_t max_bytes = 64 << 20;            // bytes read at most (a few very long lines)
  Env* env = Env::Default();
};

struct DataProfile {
  uint64_t rows = 0;               // training rows sampled
  uint64_t entries = 0;            // their features (with repeats)
  uint64_t distinct_features = 0;  // distinct keys among them
  bool whole = false;              // the sample is all of the training data
  // Training rows of all the files: exact when whole, else the sample's rows per byte times the
  // files' sizes (on disk: low for compressed files).
  uint64_t estimated_rows = 0;

  // Occurrences per distinct feature in the sample: how many rows inform each parameter.
  double per_feature() const {
    return distinct_features == 0 ? 0 : static_cast<double>(entries) / distinct_features;
  }
  double fields_per_row() const { return rows == 0 ? 0 : static_cast<double>(entries) / rows; }
};

// Reads the first rows of `paths` in order (max_rows, max_bytes). InvalidArgument for a stream
// (stdin, a pipe: sampling would consume it); a reader's I/O errors name the file. Malformed
// lines are skipped, as training skips them.
Result<DataProfile> ProfileData(const std::vector<std::string>& paths,
                                const DataProfileOptions& options);

// "52,012 rows sampled, 10.0 fields per row, 5,382 features, 96.6 per feature"
std::string DescribeProfile(const DataProfile& profile);

}  // namespace fmps

#endif  // FMPS_DATA_DATA_PROFILE_H_
