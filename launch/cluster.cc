#include "launch/cluster.h"

#include <arpa/inet.h>
#include <glog/logging.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <map>
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
  std::vector<std::thread> threads;
  std::vector<Status> results(options.config.num_servers() + options.config.num_workers());
  for (int i = 0; i < options.config.num_servers(); ++i) {
    threads.emplace_back([&, i] {
      PostofficeOptions o = po;
      o.role = proto::SERVER;
      KVServer server(std::make_unique<Postoffice>(NewInProcTransport(hub), o), MakeServerSetup,
                      ServerOptions());
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

pid_t Spawn(const std::string& binary, const std::vector<std::string>& args) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execv(binary.c_str(), argv.data());
    std::fprintf(stderr, "cannot run %s: %s\n", binary.c_str(), std::strerror(errno));
    ::_exit(127);
  }
  return pid;
}

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return "exit status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("signal ") + strsignal(WTERMSIG(status));
  return "status " + std::to_string(status);
}

}  // namespace

int RunLocalCluster(const LocalClusterOptions& options) {
  Result<int> port = PickFreePort();
  if (!port.ok()) {
    LOG(ERROR) << port.status().ToString();
    return 1;
  }
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  std::map<pid_t, std::string> children;                 // pid -> role name
  std::map<pid_t, std::vector<std::string>> child_args;  // servers and workers: how to restart them
  int restarts_left = options.restart_failed;
  std::vector<std::string> sched_args{"scheduler", "--host=127.0.0.1",
                                      "--port=" + std::to_string(port.value())};
  sched_args.insert(sched_args.end(), options.scheduler_args.begin(), options.scheduler_args.end());
  pid_t scheduler = Spawn(options.binary, sched_args);
  children[scheduler] = "scheduler";
  const std::string at = "--scheduler=127.0.0.1:" + std::to_string(port.value());
  for (int i = 0; i < options.num_servers; ++i) {
    std::vector<std::string> args{"server", at};
    args.insert(args.end(), options.node_args.begin(), options.node_args.end());
    pid_t pid = Spawn(options.binary, args);
    children[pid] = "server process " + std::to_string(i);
    child_args[pid] = args;
  }
  for (int i = 0; i < options.num_workers; ++i) {
    std::vector<std::string> args{"worker", at};
    args.insert(args.end(), options.node_args.begin(), options.node_args.end());
    pid_t pid = Spawn(options.binary, args);
    children[pid] = "worker process " + std::to_string(i);
    child_args[pid] = args;
  }
  LOG(INFO) << "local cluster: scheduler on 127.0.0.1:" << port.value() << ", "
            << options.num_servers << " servers, " << options.num_workers
            << " workers (pids: scheduler " << scheduler << ")";

  int exit_code = 0;
  double kill_at = 0;  // when set, remaining children are killed at this time
  bool terminated = false;
  while (!children.empty()) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0 && children.count(pid)) {
      std::string role = children[pid];
      children.erase(pid);
      bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      if (!ok && !terminated && g_stop_signal == 0 && pid != scheduler && kill_at == 0 &&
          restarts_left > 0 && child_args.count(pid)) {
        --restarts_left;
        pid_t again = Spawn(options.binary, child_args[pid]);
        LOG(WARNING) << role << " (pid " << pid << ") failed: " << DescribeExit(status)
                     << "; restarted as pid " << again << " (it replaces the failed node; "
                     << restarts_left << " restarts left)";
        children[again] = role;
        child_args[again] = child_args[pid];
        child_args.erase(pid);
        continue;
      }
      if (!ok && !terminated && g_stop_signal == 0) {
        LOG(ERROR) << role << " (pid " << pid << ") failed: " << DescribeExit(status);
        exit_code = 1;
      }
      // The job goes on without a failed worker (the scheduler hands its parts to the others);
      // without its server it cannot, unless a replacement is started.
      bool worker = role.rfind("worker", 0) == 0;
      if (pid == scheduler || (!ok && !worker)) {
        if (kill_at == 0) kill_at = NowSeconds() + (ok ? options.grace_s : 2.0);
      }
      continue;
    }
    if (g_stop_signal != 0 && !terminated) {
      LOG(WARNING) << "stopping the local cluster (" << strsignal(g_stop_signal) << ")";
      for (auto& [child, role] : children) ::kill(child, SIGTERM);
      terminated = true;
      exit_code = 130;
      kill_at = NowSeconds() + 5;
    }
    if (kill_at != 0 && NowSeconds() > kill_at) {
      for (auto& [child, role] : children) {
        LOG(WARNING) << "killing " << role << " (pid " << child << ")";
        ::kill(child, SIGKILL);
      }
      kill_at = NowSeconds() + 5;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (g_stop_signal != 0) {
    LOG(WARNING) << "local cluster stopped (" << strsignal(g_stop_signal) << ")";
    return 130;
  }
  return exit_code;
}

}  // namespace fmps
