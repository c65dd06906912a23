#include "tests/integration/process_util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

namespace fmps::testing {

Child Spawn(const std::string& binary, const std::vector<std::string>& args,
            const std::string& out_path, const std::string& err_path) {
  Child c;
  c.out_path = out_path;
  c.err_path = err_path;
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  c.pid = ::fork();
  if (c.pid == 0) {
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out < 0 || err < 0) ::_exit(126);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::execv(binary.c_str(), argv.data());
    ::_exit(127);
  }
  return c;
}

namespace {
int ExitCode(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 255;
}
}  // namespace

std::optional<int> TryWait(const Child& child, double timeout_s) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (true) {
    int status = 0;
    pid_t r = ::waitpid(child.pid, &status, WNOHANG);
    if (r == child.pid) return ExitCode(status);
    if (r < 0) return 255;
    if (std::chrono::steady_clock::now() > deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::optional<int> Wait(const Child& child, double timeout_s) {
  std::optional<int> code = TryWait(child, timeout_s);
  if (!code) {
    ::kill(child.pid, SIGKILL);
    int status;
    ::waitpid(child.pid, &status, 0);
  }
  return code;
}

void KillAndReap(Child* child) {
  if (child->pid <= 0) return;
  int status;
  if (::waitpid(child->pid, &status, WNOHANG) == 0) {
    ::kill(child->pid, SIGKILL);
    ::waitpid(child->pid, &status, 0);
  }
  child->pid = -1;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

RunResult Run(const std::string& binary, const std::vector<std::string>& args,
              const std::string& dir, double timeout_s) {
  static int serial = 0;
  std::string base = dir + "/run" + std::to_string(serial++);
  Child c = Spawn(binary, args, base + ".out", base + ".err");
  RunResult r;
  std::optional<int> code = Wait(c, timeout_s);
  r.exit_code = code ? *code : -1;
  r.out = ReadText(c.out_path);
  r.err = ReadText(c.err_path);
  return r;
}

std::vector<pid_t> ChildrenWithRole(pid_t parent, const std::string& role) {
  std::vector<pid_t> out;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return out;
  while (struct dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    std::string stat = ReadText("/proc/" + std::string(e->d_name) + "/stat");
    size_t paren = stat.rfind(')');
    if (paren == std::string::npos) continue;
    char state;
    int ppid = 0;
    if (std::sscanf(stat.c_str() + paren + 1, " %c %d", &state, &ppid) != 2 || ppid != parent)
      continue;
    if (state == 'Z') continue;  // exited, not yet reaped
    std::string cmdline = ReadText("/proc/" + std::string(e->d_name) + "/cmdline");
    // argv[0] NUL argv[1] NUL ...
    size_t nul = cmdline.find('\0');
    if (nul == std::string::npos) continue;
    std::string arg1 = cmdline.substr(nul + 1, cmdline.find('\0', nul + 1) - nul - 1);
    std::string argv0 = cmdline.substr(0, nul);
    if (arg1 == role && argv0.size() >= 4 && argv0.compare(argv0.size() - 4, 4, "fmps") == 0) {
      out.push_back(static_cast<pid_t>(pid));
    }
  }
  ::closedir(d);
  return out;
}

std::string LastLine(const std::string& text) {
  size_t end = text.find_last_not_of("\n\r ");
  if (end == std::string::npos) return "";
  size_t begin = text.rfind('\n', end);
  return text.substr(begin == std::string::npos ? 0 : begin + 1,
                     end + 1 - (begin == std::string::npos ? 0 : begin + 1));
}

std::optional<double> JsonNumber(const std::string& json, const std::string& name) {
  std::string key = "\"" + name + "\":";
  size_t at = json.find(key);
  if (at == std::string::npos) return std::nullopt;
  const char* start = json.c_str() + at + key.size();
  char* end = nullptr;
  double v = std::strtod(start, &end);
  if (end == start) return std::nullopt;
  return v;
}

int FreePort(int* hold_fd) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      (hold_fd && ::listen(fd, 4) != 0)) {
    ::close(fd);
    return -1;
  }
  int port = ntohs(addr.sin_port);
  if (hold_fd != nullptr) {
    *hold_fd = fd;
  } else {
    ::close(fd);
  }
  return port;
}

std::vector<int> ListeningTcpPorts(pid_t pid) {
  std::set<std::string> inodes;  // "socket:[N]" targets of the process's descriptors
  const std::string fd_dir = "/proc/" + std::to_string(pid) + "/fd";
  if (DIR* d = ::opendir(fd_dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      char target[256];
      ssize_t n = ::readlink((fd_dir + "/" + e->d_name).c_str(), target, sizeof(target) - 1);
      if (n <= 0) continue;
      std::string t(target, n);
      if (t.rfind("socket:[", 0) == 0) inodes.insert(t.substr(8, t.size() - 9));
    }
    ::closedir(d);
  }
  std::vector<int> ports;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // the column names
    while (std::getline(in, line)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      std::istringstream f(line);
      std::string sl, local, remote, state, queues, timer, retr, uid, timeout, inode;
      if (!(f >> sl >> local >> remote >> state >> queues >> timer >> retr >> uid >> timeout >>
            inode)) {
        continue;
      }
      if (state != "0A" || inodes.count(inode) == 0) continue;  // 0A: LISTEN
      ports.push_back(
          static_cast<int>(std::stoul(local.substr(local.rfind(':') + 1), nullptr, 16)));
    }
  }
  std::sort(ports.begin(), ports.end());
  return ports;
}

bool SendRawTcp(int port, const std::vector<std::string>& writes, int hold_ms) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return false;
  }
  for (const std::string& w : writes) {
    // The node may close on us mid-way (that is its right): stop writing then, without SIGPIPE.
    if (::send(fd, w.data(), w.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(w.size())) break;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(hold_ms);
  char buf[4096];
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) break;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
    if (::recv(fd, buf, sizeof(buf), 0) <= 0) break;  // closed by the node
  }
  ::close(fd);
  return true;
}

std::map<std::string, std::vector<int>> RolePorts(const Child& launcher, size_t expected) {
  std::map<std::string, std::vector<int>> ports;
  for (int i = 0; i < 2000; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ports.clear();
    size_t n = 0;
    for (const char* role : {"scheduler", "server", "worker"}) {
      for (pid_t pid : ChildrenWithRole(launcher.pid, role)) {
        for (int port : ListeningTcpPorts(pid)) {
          ports[role].push_back(port);
          ++n;
        }
      }
    }
    if (n == expected) break;
  }
  return ports;
}

}  // namespace fmps::testing
