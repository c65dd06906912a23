#include "ps/base/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

namespace fmps {
namespace {

Status ErrnoStatus(const std::string& what) {
  const int e = errno;
  std::string text = what + ": " + std::strerror(e);
  return e == ENOENT ? Status::NotFound(text) : Status::IOError(text);
}

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

class PosixSequentialFile final : public SequentialFile {
 public:
  PosixSequentialFile(int fd, bool owned, std::string path)
      : fd_(fd), owned_(owned), path_(std::move(path)) {}
  ~PosixSequentialFile() override {
    if (owned_) ::close(fd_);
  }
  Result<size_t> Read(char* dst, size_t n) override {
    for (;;) {
      ssize_t got = ::read(fd_, dst, n);
      if (got >= 0) return static_cast<size_t>(got);
      if (errno != EINTR) return ErrnoStatus("cannot read " + path_);
    }
  }
  Status Seek(uint64_t offset) override {
    if (::lseek(fd_, static_cast<off_t>(offset), SEEK_SET) < 0) {
      return ErrnoStatus("cannot seek " + path_ + " to " + std::to_string(offset));
    }
    return Status::OK();
  }

 private:
  int fd_;
  bool owned_;
  std::string path_;
};

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(int fd, bool owned, std::string path)
      : fd_(fd), owned_(owned), path_(std::move(path)) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0 && owned_) ::close(fd_);
  }
  Status Append(std::string_view data) override {
    while (!data.empty()) {
      ssize_t w = ::write(fd_, data.data(), data.size());
      if (w < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("cannot write " + path_);
      }
      data.remove_prefix(static_cast<size_t>(w));
    }
    return Status::OK();
  }
  Status Sync() override {
    if (::fsync(fd_) != 0) return ErrnoStatus("cannot sync " + path_);
    return Status::OK();
  }
  Status Close() override {
    int fd = fd_;
    fd_ = -1;
    if (fd >= 0 && owned_ && ::close(fd) != 0) return ErrnoStatus("cannot close " + path_);
    return Status::OK();
  }

 private:
  int fd_;
  bool owned_;
  std::string path_;
};

class PosixEnv final : public Env {
 public:
  Result<std::unique_ptr<SequentialFile>> NewSequentialFile(const std::string& path) override {
    if (path == "-")
      return std::unique_ptr<SequentialFile>(new PosixSequentialFile(0, false, "<stdin>"));
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("cannot open " + path);
    return std::unique_ptr<SequentialFile>(new PosixSequentialFile(fd, true, path));
  }
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    if (path == "-") {
      std::fflush(stdout);  // what stdio buffered for stdout goes out before these bytes
      return std::unique_ptr<WritableFile>(new PosixWritableFile(1, false, "<stdout>"));
    }
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return ErrnoStatus("cannot create " + path);
    return std::unique_ptr<WritableFile>(new PosixWritableFile(fd, true, path));
  }
  Status RenameFile(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return ErrnoStatus("cannot rename " + from + " to " + to);
    }
    return Status::OK();
  }
  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return ErrnoStatus("cannot remove " + path);
    return Status::OK();
  }
  Status SyncDir(const std::string& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("cannot open directory " + dir);
    Status st = ::fsync(fd) == 0 ? Status::OK() : ErrnoStatus("cannot sync directory " + dir);
    ::close(fd);
    return st;
  }
  Status CreateDir(const std::string& path) override {
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoStatus("cannot create directory " + path);
    }
    return Status::OK();
  }
  Result<std::vector<std::string>> GetChildren(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return ErrnoStatus("cannot open directory " + dir);
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d)) {
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      names.emplace_back(e->d_name);
    }
    ::closedir(d);
    return names;
  }
  Result<FileInfo> Stat(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return ErrnoStatus("cannot stat " + path);
    FileInfo info;
    info.size = static_cast<uint64_t>(st.st_size);
    info.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    info.is_regular = S_ISREG(st.st_mode);
    info.is_directory = S_ISDIR(st.st_mode);
    return info;
  }
  double NowSeconds() override {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
};

}  // namespace

Env* Env::Default() {
  static PosixEnv* env = new PosixEnv;  // never deleted: other statics may use it at exit
  return env;
}

Status WriteFileAtomic(const std::string& path, std::string_view contents, Env* env) {
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  Status st;
  {
    Result<std::unique_ptr<WritableFile>> file = env->NewWritableFile(tmp);
    if (!file.ok()) return file.status();
    st = (*file)->Append(contents);
    if (st.ok()) st = (*file)->Sync();
    Status closed = (*file)->Close();
    if (st.ok()) st = closed;
  }
  if (st.ok()) st = env->RenameFile(tmp, path);
  if (!st.ok()) {
    (void)env->RemoveFile(tmp);
    return st;
  }
  // The rename is durable once the directory is synced; a failure here leaves a good file.
  (void)env->SyncDir(DirName(path));
  return Status::OK();
}

Result<std::string> ReadFile(const std::string& path, Env* env) {
  Result<std::unique_ptr<SequentialFile>> file = env->NewSequentialFile(path);
  if (!file.ok()) return file.status();
  std::string out;
  char buf[1 << 16];
  for (;;) {
    Result<size_t> n = (*file)->Read(buf, sizeof(buf));
    if (!n.ok()) return n.status();
    if (*n == 0) break;
    out.append(buf, *n);
  }
  return out;
}

Status MakeDirs(const std::string& path, Env* env) {
  if (path.empty()) return Status::InvalidArgument("empty directory name");
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    std::string cur = path.substr(0, pos);
    if (!cur.empty()) FMPS_RETURN_IF_ERROR(env->CreateDir(cur));
  }
  Result<FileInfo> info = env->Stat(path);
  if (!info.ok() || !info->is_directory) return Status::IOError(path + " is not a directory");
  return Status::OK();
}

Result<std::vector<std::string>> ExpandPaths(const std::string& spec, Env* env) {
  std::vector<std::string> out;
  std::stringstream ss(spec);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item.empty()) continue;
    if (item == "-") {
      out.push_back(item);
      continue;
    }
    // Pattern matching only; every file it names is then looked at through env.
    glob_t g;
    int rc = ::glob(item.c_str(), GLOB_NOCHECK, nullptr, &g);
    std::vector<std::string> matches;
    if (rc == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) matches.emplace_back(g.gl_pathv[i]);
    }
    globfree(&g);
    for (const std::string& m : matches) {
      Result<FileInfo> info = env->Stat(m);
      if (!info.ok()) {
        return Status::NotFound("no such file: " + m + " (from --data=" + spec + ")");
      }
      if (!info->is_directory) {
        out.push_back(m);
        continue;
      }
      Result<std::vector<std::string>> names = env->GetChildren(m);
      if (!names.ok()) return names.status();
      std::vector<std::string> files;
      for (const std::string& name : *names) {
        if (name[0] == '.') continue;
        std::string p = m + "/" + name;
        Result<FileInfo> f = env->Stat(p);
        if (f.ok() && f->is_regular) files.push_back(p);
      }
      std::sort(files.begin(), files.end());
      if (files.empty()) return Status::NotFound("directory " + m + " has no files");
      out.insert(out.end(), files.begin(), files.end());
    }
  }
  if (out.empty()) return Status::InvalidArgument("no input files in '" + spec + "'");
  return out;
}

Result<uint64_t> FileSize(const std::string& path, Env* env) {
  Result<FileInfo> info = env->Stat(path);
  if (!info.ok()) return info.status();
  return info->size;
}

double NowSeconds() { return Env::Default()->NowSeconds(); }

double UnixSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

int64_t CurrentRssBytes() { return ReadStatusKb("VmRSS:"); }
int64_t PeakRssBytes() { return ReadStatusKb("VmHWM:"); }

}  // namespace fmps
