// Running a whole job from one command: every role as a process of this binary on 127.0.0.1 (what
// `fmps train` does by default), servers and workers spread over other hosts through ssh
// (`fmps train --hosts=FILE`), or every role as a thread of this process over the in-process
// transport (tests, and the benchmark that isolates the network's cost).
#ifndef FMPS_LAUNCH_CLUSTER_H_
#define FMPS_LAUNCH_CLUSTER_H_

#include <string>
#include <vector>

#include "config/params.h"
#include "ps/base/env.h"
#include "scheduler/scheduler.h"

namespace fmps {

// Scheduler, servers and workers as threads; returns the scheduler's report.
Result<JobReport> RunInProcessCluster(const SchedulerOptions& options);

struct LocalClusterOptions {
  std::string binary;                       // path of the fmps binary
  std::vector<std::string> scheduler_args;  // flags for `fmps scheduler` (the job's flags)
  int num_servers = params::kDefault.num_servers;
  int num_workers = params::kDefault.num_workers;
  std::vector<std::string> node_args;  // extra flags for servers and workers (logging)
  double grace_s = 10;                 // after the scheduler ends, others get this long
  int restart_failed =
      params::kDefault.restart_failed;  // a failed server/worker is restarted (as a replacement)
                                        // up to this many times in all; 0: a failure ends the job
  // Remote roles. With hosts, servers then workers are started on hosts[0], hosts[1], ... in turn
  // (an entry is HOST or USER@HOST; HOST is also the address the role listens on), each through
  // `ssh [ssh_options] ENTRY`, running remote_binary (default: binary). The scheduler stays here,
  // listening on scheduler_host, which the hosts must reach. A remote role ends when its ssh
  // connection does (launcher stopped or killed): it watches the connection's stdin.
  std::vector<std::string> hosts;
  std::vector<std::string> ssh_options;
  std::string remote_binary;
  std::string scheduler_host = "127.0.0.1";
  int scheduler_port = 0;  // 0: a free port
  // /metrics of the roles: 0 none; -1 a free port each (picked here); P > 0: the scheduler P,
  // servers P+1.., workers after them. The ports are printed in one line.
  int metrics_port = 0;
};

// Reads a host file: one entry per line (HOST or USER@HOST), '#' starts a comment. Errors name
// the file and line. The file is read through env.
Result<std::vector<std::string>> ReadHostFile(const std::string& path, Env* env = Env::Default());

// `arg` quoted for a POSIX shell (single quotes).
std::string ShellQuote(const std::string& arg);

// Starts `fmps scheduler` then the servers and workers as child processes (local or through ssh),
// streams their logs
// (they share our stderr; the scheduler's JSON line goes to our stdout), stops them all on
// Ctrl-C/SIGTERM, and returns 0 only if every role succeeded.
int RunLocalCluster(const LocalClusterOptions& options);

// A TCP port on 127.0.0.1 that was free a moment ago.
Result<int> PickFreePort();

}  // namespace fmps

#endif  // FMPS_LAUNCH_CLUSTER_H_
