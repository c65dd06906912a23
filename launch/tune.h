// fmps tune: a search over the settings that matter most (L2 on V, the learning rates, FTRL L1,
// batch size, the initial embedding scale, admission) by successive halving over a fixed-seed
// random sample: every candidate trains two epochs on a local cluster and is scored on a holdout of
// the TRAINING data; the best third goes on to six epochs, the best three to a full run with early
// stopping; then steepest descent over the winner's neighbours. The test file is never passed
// to a trial.
#ifndef FMPS_LAUNCH_TUNE_H_
#define FMPS_LAUNCH_TUNE_H_

#include <string>
#include <vector>

#include "config/params.h"
#include "ps/base/status.h"

namespace fmps {

struct TuneOptions {
  std::string binary;                 // the fmps binary the trials run (`fmps train ...`)
  std::vector<std::string> job_args;  // the job's flags (--test and search flags left out)
  double budget_s = params::kDefault.tune_budget_s;  // no trial starts after this many seconds
};

// Runs the search; returns the best setting as a flagfile (one --flag=value a line) that
// `fmps train --flagfile=` takes.
Result<std::string> RunTune(const TuneOptions& options);

// The flags a trial gets from the search itself (the axes, admission, epochs and early stopping,
// progress), without "--": a user's own are left out of TuneOptions::job_args.
std::vector<std::string> FlagsTheSearchSets();

}  // namespace fmps

#endif  // FMPS_LAUNCH_TUNE_H_
