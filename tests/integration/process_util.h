// Helpers of the integration tests: run the fmps binary as child processes (stdout and stderr to
// files), wait with a deadline, find processes by command line, and read the numeric fields of the
// JSON report line without a JSON library.
#ifndef FMPS_TESTS_INTEGRATION_PROCESS_UTIL_H_
#define FMPS_TESTS_INTEGRATION_PROCESS_UTIL_H_

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace fmps::testing {

struct Child {
  pid_t pid = -1;
  std::string out_path, err_path;  // where its stdout and stderr go
};

// Starts binary with args; stdout/stderr are written to out_path/err_path.
Child Spawn(const std::string& binary, const std::vector<std::string>& args,
            const std::string& out_path, const std::string& err_path);

// Waits up to timeout_s for the child. Returns its exit code (128 + signal when killed), or nullopt
// on timeout (the child is then killed with SIGKILL and reaped).
std::optional<int> Wait(const Child& child, double timeout_s);

// Waits for the child like Wait and returns nullopt if it is still running after timeout_s,
// without killing it.
std::optional<int> TryWait(const Child& child, double timeout_s);

// Kills the child (SIGKILL) if it still runs, and reaps it.
void KillAndReap(Child* child);

struct RunResult {
  int exit_code = -1;  // -1: timed out and killed
  std::string out, err;
};
// Runs to completion (or timeout_s).
RunResult Run(const std::string& binary, const std::vector<std::string>& args,
              const std::string& dir, double timeout_s);

std::string ReadText(const std::string& path);

// Children of `parent` whose argv[1] is `role` (e.g. "server"), from /proc/*/stat and cmdline.
std::vector<pid_t> ChildrenWithRole(pid_t parent, const std::string& role);

// The last non-empty line of text.
std::string LastLine(const std::string& text);

// The number after "name": in a flat JSON object; nullopt when absent or not a number.
std::optional<double> JsonNumber(const std::string& json, const std::string& name);

// A TCP port on 127.0.0.1 that was free a moment ago; with hold_fd, the listening socket is kept
// open (so the port stays taken) and returned there.
int FreePort(int* hold_fd = nullptr);

// The TCP ports process pid listens on (its sockets in /proc/PID/fd matched against the LISTEN
// entries of /proc/net/tcp), sorted.
std::vector<int> ListeningTcpPorts(pid_t pid);

// The ports the launcher's roles (children "scheduler", "server", "worker") listen on, by role,
// polled until `expected` ports in all are listening or about 20 s have passed.
std::map<std::string, std::vector<int>> RolePorts(const Child& launcher, size_t expected);

// Connects to 127.0.0.1:port as a stranger would, writes bytes (each string of `writes` in its own
// write), reads whatever comes back for up to hold_ms, and closes. False when it cannot connect.
bool SendRawTcp(int port, const std::vector<std::string>& writes, int hold_ms);

}  // namespace fmps::testing

#endif  // FMPS_TESTS_INTEGRATION_PROCESS_UTIL_H_
