#include "launch/cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <glog/logging.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <map>
#include <sstream>
#include <thread>

#include "launch/server_setup.h"
#include "ps/base/env.h"
#include "ps/server.h"
#include "worker/worker.h"

namespace fmps {

Result<JobReport> RunInProcessCluster(const SchedulerOptions& options) {
  auto hub = NewInProcHub();
  Scheduler scheduler(NewInProcTransport(hub), options);
  Result<int> port = scheduler.Bind();
  if (!port.ok()) return port.status();
  PostofficeOptions po;
  po.scheduler_port = port.value();
  po.job_id = scheduler.job_id();
  std::vector<std::thread> threads;
  std::vector<Status> results(options.config.num_servers() + options.config.num_workers());
  for (int i = 0; i < options.config.num_servers(); ++i) {
    threads.emplace_back([&, i] {
      PostofficeOptions o = po;
      o.role = proto::SERVER;
      ServerOptions server_options;
      server_options.env = options.env;
      KVServer server(std::make_unique<Postoffice>(NewInProcTransport(hub), o), MakeServerSetup,
                      server_options);
      results[i] = server.Run();
    });
  }
  for (int i = 0; i < options.config.num_workers(); ++i) {
    threads.emplace_back([&, i] {
      PostofficeOptions o = po;
      o.role = proto::WORKER;
      Worker worker(std::make_unique<Postoffice>(NewInProcTransport(hub), o), WorkerOptions());
      results[options.config.num_servers() + i] = worker.Run();
    });
  }
  Result<JobReport> report = scheduler.Run();
  for (auto& t : threads) t.join();
  if (!report.ok()) return report;
  for (const Status& st : results) {
    if (!st.ok()) return st;
  }
  return report;
}

Result<int> PickFreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return Status::IOError(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return Status::IOError(std::string("cannot find a free port: ") + std::strerror(errno));
  }
  int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

namespace {

std::atomic<int> g_stop_signal{0};  // set by the signal handler of the launcher process only
void OnStopSignal(int sig) { g_stop_signal = sig; }

// One role's process: argv[0] is run through PATH. With keep_stdin, the child's stdin is a pipe
// whose write end *stdin_fd keeps open (a remote role watches it to learn that we are gone).
pid_t Spawn(const std::vector<std::string>& command, bool keep_stdin, int* stdin_fd) {
  std::vector<char*> argv;
  for (const auto& a : command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  int fds[2] = {-1, -1};
  if (keep_stdin && ::pipe2(fds, O_CLOEXEC) != 0) {
    LOG(ERROR) << "pipe: " << std::strerror(errno);
    return -1;
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    // Roles (and the ssh clients of remote roles) end with the launcher, even when it is killed.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (keep_stdin) ::dup2(fds[0], 0);  // dup2 clears O_CLOEXEC on fd 0
    ::execvp(argv[0], argv.data());
    std::fprintf(stderr, "cannot run %s: %s\n", argv[0], std::strerror(errno));
    ::_exit(127);
  }
  if (keep_stdin) {
    ::close(fds[0]);
    *stdin_fd = fds[1];
  }
  return pid;
}

// Where the roles run and how each is started.
class RoleLauncher {
 public:
  explicit RoleLauncher(const LocalClusterOptions& options) : options_(options) {}

  // The command for server/worker number `index` (servers first) with fmps arguments `args`.
  std::vector<std::string> Command(int index, const std::vector<std::string>& args) const {
    if (options_.hosts.empty()) {
      std::vector<std::string> command{options_.binary};
      command.insert(command.end(), args.begin(), args.end());
      return command;
    }
    const std::string& entry = options_.hosts[index % options_.hosts.size()];
    const std::string host = entry.substr(entry.find('@') + 1);  // npos + 1 == 0
    std::string role =
        ShellQuote(options_.remote_binary.empty() ? options_.binary : options_.remote_binary);
    for (const auto& a : args) role += " " + ShellQuote(a);
    role += " " + ShellQuote("--host=" + host);
    // The role runs in the background with the connection's stdin saved on fd 3; a watcher
    // ends it when that stdin closes (ssh gone). POSIX gives a background job /dev/null as stdin
    // unless redirected explicitly, hence the dance.
    const std::string script =
        "exec 3<&0; " + role +
        " </dev/null & p=$!; { cat <&3 >/dev/null 2>&1; kill $p 2>/dev/null; "
        "} </dev/null >/dev/null 2>&1 & wait $p";
    std::vector<std::string> command{"ssh", "-o", "BatchMode=yes"};
    command.insert(command.end(), options_.ssh_options.begin(), options_.ssh_options.end());
    command.push_back(entry);
    command.push_back("sh -c " + ShellQuote(script));
    return command;
  }
  bool remote() const { return !options_.hosts.empty(); }
  std::string Where(int index) const {
    return remote() ? " on " + options_.hosts[index % options_.hosts.size()] : "";
  }

 private:
  const LocalClusterOptions& options_;
};

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("signal ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

// The roles of a job as child processes (RunLocalCluster): started, watched, restarted and
// stopped. Servers and workers are numbered from 0, servers first.
class LocalCluster {
 public:
  LocalCluster(const LocalClusterOptions& options, int port)
      : options_(options),
        port_(port),
        launcher_(options),
        restarts_left_(options.restart_failed) {}

  // With options.metrics_port: the /metrics port of each role, scheduler first. False (logged)
  // when a port cannot be found.
  bool PickMetricsPorts();
  // Starts the scheduler, then the servers and workers.
  void SpawnRoles();
  // Until every role has ended: collects the ended ones, restarts failed ones (restart_failed),
  // stops the rest after the scheduler or a server ends or on a signal. Returns the exit code.
  int Supervise();

 private:
  struct Restart {
    int index;
    std::vector<std::string> command;
  };
  // Starts server/worker `index`; it can be restarted.
  pid_t Start(int index, const std::vector<std::string>& command);
  std::vector<std::string> MetricsArg(int role) const;
  // Role `pid` ended with `status`: restarted, or counted and the others' end scheduled.
  void Collect(pid_t pid, int status);

  const LocalClusterOptions& options_;
  const int port_;
  RoleLauncher launcher_;
  std::map<pid_t, std::string> children_;  // pid -> role name
  std::map<pid_t, Restart> restartable_;   // servers and workers: how to start them again
  std::map<pid_t, int> stdin_pipes_;       // remote roles: the write end of their ssh's stdin
  int restarts_left_;
  std::vector<int> metrics_ports_;  // by role index: the scheduler, then servers and workers
  std::string metrics_line_;
  pid_t scheduler_ = -1;
  int exit_code_ = 0;
  double kill_at_ = 0;  // when set, remaining children are killed at this time
  bool terminated_ = false;
};

pid_t LocalCluster::Start(int index, const std::vector<std::string>& command) {
  int fd = -1;
  pid_t pid = Spawn(command, launcher_.remote(), &fd);
  if (fd >= 0) stdin_pipes_[pid] = fd;
  restartable_[pid] = Restart{index, command};
  return pid;
}

bool LocalCluster::PickMetricsPorts() {
  const std::string& sched_host = options_.scheduler_host;
  const int num_roles = 1 + options_.num_servers + options_.num_workers;
  for (int i = 0; options_.metrics_port != 0 && i < num_roles; ++i) {
    Result<int> free =
        options_.metrics_port > 0 ? Result<int>(options_.metrics_port + i) : PickFreePort();
    if (!free.ok()) {
      LOG(ERROR) << free.status().ToString();
      return false;
    }
    metrics_ports_.push_back(free.value());
    std::string where = "scheduler " + sched_host;
    if (i > 0) {
      const int index = i - 1;  // servers first, as started below
      const std::string& entry =
          options_.hosts.empty() ? sched_host : options_.hosts[index % options_.hosts.size()];
      where = (index < options_.num_servers
                   ? "server " + std::to_string(index)
                   : "worker " + std::to_string(index - options_.num_servers)) +
              " " + entry.substr(entry.find('@') + 1);
    }
    metrics_line_ += (i > 0 ? ", " : "") + where + ":" + std::to_string(free.value());
  }
  return true;
}

std::vector<std::string> LocalCluster::MetricsArg(int role) const {
  return std::vector<std::string>{
      "--metrics_port=" + std::to_string(metrics_ports_.empty() ? 0 : metrics_ports_[role])};
}

void LocalCluster::SpawnRoles() {
  const std::string& sched_host = options_.scheduler_host;
  std::vector<std::string> sched_cmd{options_.binary, "scheduler", "--host=" + sched_host,
                                     "--port=" + std::to_string(port_)};
  sched_cmd.insert(sched_cmd.end(), options_.scheduler_args.begin(), options_.scheduler_args.end());
  for (const std::string& a : MetricsArg(0)) sched_cmd.push_back(a);  // after the job's flags
  scheduler_ = Spawn(sched_cmd, false, nullptr);
  children_[scheduler_] = "scheduler";
  const std::string at = "--scheduler=" + sched_host + ":" + std::to_string(port_);
  for (int i = 0; i < options_.num_servers + options_.num_workers; ++i) {
    const bool server = i < options_.num_servers;
    std::vector<std::string> args{server ? "server" : "worker", at};
    args.insert(args.end(), options_.node_args.begin(), options_.node_args.end());
    for (const std::string& a : MetricsArg(1 + i)) args.push_back(a);
    pid_t pid = Start(i, launcher_.Command(i, args));
    children_[pid] = (server ? "server process " + std::to_string(i)
                             : "worker process " + std::to_string(i - options_.num_servers)) +
                     launcher_.Where(i);
  }
  LOG(INFO) << (launcher_.remote() ? "cluster" : "local cluster") << ": scheduler on " << sched_host
            << ":" << port_ << ", " << options_.num_servers << " servers, " << options_.num_workers
            << " workers"
            << (launcher_.remote()
                    ? " over ssh on " + std::to_string(options_.hosts.size()) + " hosts"
                    : "")
            << " (pids: scheduler " << scheduler_ << ")";
  if (!metrics_line_.empty()) LOG(INFO) << "metrics (/metrics, /healthz) on " << metrics_line_;
}

void LocalCluster::Collect(pid_t pid, int status) {
  std::string role = children_[pid];
  children_.erase(pid);
  if (auto it = stdin_pipes_.find(pid); it != stdin_pipes_.end()) {
    ::close(it->second);
    stdin_pipes_.erase(it);
  }
  bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!ok && !terminated_ && g_stop_signal == 0 && pid != scheduler_ && kill_at_ == 0 &&
      restarts_left_ > 0 && restartable_.count(pid)) {
    --restarts_left_;
    Restart r = restartable_[pid];
    restartable_.erase(pid);
    pid_t again = Start(r.index, r.command);
    LOG(WARNING) << role << " (pid " << pid << ") failed: " << DescribeExit(status)
                 << "; restarted as pid " << again << " (it replaces the failed node; "
                 << restarts_left_ << " restarts left)";
    children_[again] = role;
    return;
  }
  if (!ok && !terminated_ && g_stop_signal == 0) {
    LOG(ERROR) << role << " (pid " << pid << ") failed: " << DescribeExit(status);
    exit_code_ = 1;
  }
  // The job goes on without a failed worker (the scheduler hands its parts to the others);
  // without its server it cannot, unless a replacement is started.
  bool worker = role.rfind("worker", 0) == 0;
  if (pid == scheduler_ || (!ok && !worker)) {
    if (kill_at_ == 0) kill_at_ = NowSeconds() + (ok ? options_.grace_s : 2.0);
  }
}

int LocalCluster::Supervise() {
  while (!children_.empty()) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0 && children_.count(pid)) {
      Collect(pid, status);
      continue;
    }
    if (g_stop_signal != 0 && !terminated_) {
      LOG(WARNING) << "stopping the local cluster (" << strsignal(g_stop_signal) << ")";
      for (auto& [child, role] : children_) ::kill(child, SIGTERM);
      terminated_ = true;
      exit_code_ = 130;
      kill_at_ = NowSeconds() + 5;
    }
    if (kill_at_ != 0 && NowSeconds() > kill_at_) {
      for (auto& [child, role] : children_) {
        LOG(WARNING) << "killing " << role << " (pid " << child << ")";
        ::kill(child, SIGKILL);
      }
      kill_at_ = NowSeconds() + 5;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return exit_code_;
}

}  // namespace

int RunLocalCluster(const LocalClusterOptions& options) {
  Result<int> port =
      options.scheduler_port > 0 ? Result<int>(options.scheduler_port) : PickFreePort();
  if (!port.ok()) {
    LOG(ERROR) << port.status().ToString();
    return 1;
  }
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  LocalCluster cluster(options, port.value());
  if (!cluster.PickMetricsPorts()) return 1;
  cluster.SpawnRoles();
  const int exit_code = cluster.Supervise();
  if (g_stop_signal != 0) {
    LOG(WARNING) << "local cluster stopped (" << strsignal(g_stop_signal) << ")";
    return 130;
  }
  return exit_code;
}

Result<std::vector<std::string>> ReadHostFile(const std::string& path, Env* env) {
  Result<std::string> text = ReadFile(path, env);
  if (!text.ok()) return Status::IOError("host file: " + text.status().message());
  std::istringstream in(text.value());
  std::vector<std::string> hosts;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    line = line.substr(0, line.find('#'));
    const size_t b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos) continue;
    const size_t e = line.find_last_not_of(" \t\r");
    std::string entry = line.substr(b, e - b + 1);
    if (entry.find_first_of(" \t'\"") != std::string::npos || entry.back() == '@' ||
        entry.front() == '-') {
      return Status::InvalidArgument(path + ":" + std::to_string(number) +
                                     ": expected one HOST or USER@HOST, got '" + entry + "'");
    }
    hosts.push_back(entry);
  }
  if (hosts.empty()) return Status::InvalidArgument(path + ": no hosts");
  return hosts;
}

std::string ShellQuote(const std::string& arg) {
  std::string out = "'";
  for (char c : arg) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

}  // namespace fmps
