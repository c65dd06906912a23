// Running a whole job on one machine: either every role as a process of this binary on
// 127.0.0.1 (what `fmps train` does by default), or every role as a thread of this process over
// the in-process transport (tests, and the benchmark that isolates the network's cost).
#ifndef FMPS_LAUNCH_CLUSTER_H_
#define FMPS_LAUNCH_CLUSTER_H_

#include <string>
#include <vector>

#include "scheduler/scheduler.h"

namespace fmps {

// Scheduler, servers and workers as threads; returns the scheduler's report.
Result<JobReport> RunInProcessCluster(const SchedulerOptions& options);

struct LocalClusterOptions {
  std::string binary;                       // path of the fmps binary
  std::vector<std::string> scheduler_args;  // flags for `fmps scheduler` (the job's flags)
  int num_servers = 2;
  int num_workers = 2;
  std::vector<std::string> node_args;  // extra flags for servers and workers (logging)
  double grace_s = 10;                 // after the scheduler ends, others get this long
  int restart_failed = 0;              // a failed server/worker is restarted (as a replacement)
                                       // up to this many times in all; 0: a failure ends the job
};

// Starts `fmps scheduler` then the servers and workers as child processes, streams their logs
// (they share our stderr; the scheduler's JSON line goes to our stdout), stops them all on
// Ctrl-C/SIGTERM, and returns 0 only if every role succeeded.
int RunLocalCluster(const LocalClusterOptions& options);

// A TCP port on 127.0.0.1 that was free a moment ago.
Result<int> PickFreePort();

}  // namespace fmps

#endif  // FMPS_LAUNCH_CLUSTER_H_
