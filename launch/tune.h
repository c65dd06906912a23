// fmps tune: a small search over the settings that matter most (L2 on V, the dense learning rate,
// the admission count), by successive halving: every candidate trains two epochs on a local
// cluster and is scored on a holdout of the TRAINING data; the best third goes on to six epochs,
// the best two to a full run with early stopping. The test file is never passed to a trial.
#ifndef FMPS_LAUNCH_TUNE_H_
#define FMPS_LAUNCH_TUNE_H_

#include <string>
#include <vector>

#include "ps/base/status.h"

namespace fmps {

struct TuneOptions {
  std::string binary;                 // the fmps binary the trials run (`fmps train ...`)
  std::vector<std::string> job_args;  // the job's flags (--test and search flags left out)
  double budget_s = 300;              // no trial starts after this many seconds
};

// Runs the search; returns the best setting as a flagfile (one --flag=value a line) that
// `fmps train --flagfile=` takes.
Result<std::string> RunTune(const TuneOptions& options);

}  // namespace fmps

#endif  // FMPS_LAUNCH_TUNE_H_
