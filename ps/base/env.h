// Env: the one door to the operating system (files, directories, renames, fsync, clock, memory
// readings). Everything fmps reads or writes goes through an Env, so that tests inject faults
// (ENOSPC, EIO, short writes, failed renames) at one place. Env::Default() is the POSIX one;
// libraries take an Env* in their Options (leveldb's shape) and fall back to the default.
#ifndef FMPS_PS_BASE_ENV_H_
#define FMPS_PS_BASE_ENV_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ps/base/status.h"

namespace fmps {

// A file being read front to back. Not thread-safe.
class SequentialFile {
 public:
  virtual ~SequentialFile() = default;
  // Reads up to n bytes into dst; 0 means end of file. Errors name the file.
  virtual Result<size_t> Read(char* dst, size_t n) = 0;
  // Moves to byte `offset` from the start (regular files only).
  virtual Status Seek(uint64_t offset) = 0;
};

// A file being written. Close() must be called; a file destroyed unclosed is closed silently.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual Status Append(std::string_view data) = 0;
  virtual Status Sync() = 0;  // fsync: the bytes are on disk when this returns OK
  virtual Status Close() = 0;
};

struct FileInfo {
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  bool is_regular = false;
  bool is_directory = false;
};

class Env {
 public:
  virtual ~Env() = default;
  // The process-wide POSIX Env; never deleted.
  static Env* Default();

  // "-" is stdin (NewSequentialFile) or stdout (NewWritableFile), never closed by the file.
  virtual Result<std::unique_ptr<SequentialFile>> NewSequentialFile(const std::string& path) = 0;
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) = 0;
  virtual Status RenameFile(const std::string& from, const std::string& to) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  virtual Status SyncDir(const std::string& dir) = 0;
  virtual Status CreateDir(const std::string& path) = 0;  // OK if it exists
  // Names in dir (no "." or ".."), unsorted.
  virtual Result<std::vector<std::string>> GetChildren(const std::string& dir) = 0;
  virtual Result<FileInfo> Stat(const std::string& path) = 0;
  virtual double NowSeconds() = 0;  // monotonic
};

// An Env that forwards every call to another; fault-injecting Envs in tests derive from it.
class EnvWrapper : public Env {
 public:
  explicit EnvWrapper(Env* target) : target_(target) {}
  Result<std::unique_ptr<SequentialFile>> NewSequentialFile(const std::string& path) override {
    return target_->NewSequentialFile(path);
  }
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    return target_->NewWritableFile(path);
  }
  Status RenameFile(const std::string& from, const std::string& to) override {
    return target_->RenameFile(from, to);
  }
  Status RemoveFile(const std::string& path) override { return target_->RemoveFile(path); }
  Status SyncDir(const std::string& dir) override { return target_->SyncDir(dir); }
  Status CreateDir(const std::string& path) override { return target_->CreateDir(path); }
  Result<std::vector<std::string>> GetChildren(const std::string& dir) override {
    return target_->GetChildren(dir);
  }
  Result<FileInfo> Stat(const std::string& path) override { return target_->Stat(path); }
  double NowSeconds() override { return target_->NowSeconds(); }

 protected:
  Env* target() const { return target_; }

 private:
  Env* target_;
};

// Writes `contents` to `path` via a temporary file in the same directory: write, fsync, rename,
// fsync the directory. Readers see the old file or the new one, never a torn one; on any error
// the temporary file is removed and `path` is untouched.
Status WriteFileAtomic(const std::string& path, std::string_view contents,
                       Env* env = Env::Default());

// Reads a whole file.
Result<std::string> ReadFile(const std::string& path, Env* env = Env::Default());

// Creates a directory and its parents if missing.
Status MakeDirs(const std::string& path, Env* env = Env::Default());

// Expands a data specification: a comma list of files, globs and directories (a directory
// stands for its regular files, sorted) and "-" for stdin. Errors name what matched nothing.
Result<std::vector<std::string>> ExpandPaths(const std::string& spec, Env* env = Env::Default());

// Size of a regular file in bytes.
Result<uint64_t> FileSize(const std::string& path, Env* env = Env::Default());

// Wall-clock seconds since the epoch (for records a person reads; NowSeconds for intervals).
double UnixSeconds();

// Monotonic seconds (Env::Default()'s clock).
double NowSeconds();

// Resident set size of this process now and at its peak (bytes), from /proc/self/status.
int64_t CurrentRssBytes();
int64_t PeakRssBytes();

}  // namespace fmps

#endif  // FMPS_PS_BASE_ENV_H_
