#include "ps/base/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

namespace fmps {
namespace {

std::string ErrnoText() { return std::strerror(errno); }

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

int64_t ReadStatusKb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  size_t n = std::strlen(field);
  while (std::getline(in, line)) {
    if (line.compare(0, n, field) == 0) return std::atoll(line.c_str() + n) * 1024;
  }
  return 0;
}

}  // namespace

Status WriteFileAtomic(const std::string& path, std::string_view contents) {
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError("cannot create " + tmp + ": " + ErrnoText());
  const char* p = contents.data();
  size_t left = contents.size();
  while (left > 0) {
    ssize_t w = ::write(fd, p, left);
    if (w < 0) {
      if (errno == EINTR) continue;
      Status st = Status::IOError("cannot write " + tmp + ": " + ErrnoText());
      ::close(fd);
      ::unlink(tmp.c_str());
      return st;
    }
    p += w;
    left -= static_cast<size_t>(w);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return Status::IOError("cannot sync " + tmp + ": " + ErrnoText());
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Status::IOError("cannot rename " + tmp + " to " + path + ": " + ErrnoText());
  }
  int dfd = ::open(DirName(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return Status::OK();
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError("cannot open " + path + ": " + ErrnoText());
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::IOError("cannot read " + path);
  return ss.str();
}

Status MakeDirs(const std::string& path) {
  if (path.empty()) return Status::InvalidArgument("empty directory name");
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    cur = path.substr(0, pos);
    if (cur.empty()) continue;
    if (::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) {
      return Status::IOError("cannot create directory " + cur + ": " + ErrnoText());
    }
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Status::IOError(path + " is not a directory");
  }
  return Status::OK();
}

Result<std::vector<std::string>> ExpandPaths(const std::string& spec) {
  std::vector<std::string> out;
  std::stringstream ss(spec);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    if (item == "-") {
      out.push_back(item);
      continue;
    }
    glob_t g;
    int rc = ::glob(item.c_str(), GLOB_NOCHECK, nullptr, &g);
    std::vector<std::string> matches;
    if (rc == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) matches.emplace_back(g.gl_pathv[i]);
    }
    globfree(&g);
    for (const std::string& m : matches) {
      struct stat st;
      if (::stat(m.c_str(), &st) != 0) {
        return Status::NotFound("no such file: " + m + " (from --data=" + spec + ")");
      }
      if (S_ISDIR(st.st_mode)) {
        DIR* dir = ::opendir(m.c_str());
        if (dir == nullptr)
          return Status::IOError("cannot open directory " + m + ": " + ErrnoText());
        std::vector<std::string> files;
        while (struct dirent* e = ::readdir(dir)) {
          if (e->d_name[0] == '.') continue;
          std::string p = m + "/" + e->d_name;
          struct stat fst;
          if (::stat(p.c_str(), &fst) == 0 && S_ISREG(fst.st_mode)) files.push_back(p);
        }
        ::closedir(dir);
        std::sort(files.begin(), files.end());
        if (files.empty()) return Status::NotFound("directory " + m + " has no files");
        out.insert(out.end(), files.begin(), files.end());
      } else {
        out.push_back(m);
      }
    }
  }
  if (out.empty()) return Status::InvalidArgument("no input files in '" + spec + "'");
  return out;
}

Result<uint64_t> FileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return Status::IOError("cannot stat " + path + ": " + ErrnoText());
  return static_cast<uint64_t>(st.st_size);
}

double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int64_t CurrentRssBytes() { return ReadStatusKb("VmRSS:"); }
int64_t PeakRssBytes() { return ReadStatusKb("VmHWM:"); }

}  // namespace fmps
