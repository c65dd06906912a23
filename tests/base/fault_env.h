// FaultEnv: an Env for tests that fails chosen operations the way a full or failing disk does
// (ENOSPC, EIO, short writes, failed renames) on files whose names contain a given text.
#ifndef FMPS_TESTS_BASE_FAULT_ENV_H_
#define FMPS_TESTS_BASE_FAULT_ENV_H_

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include "ps/base/env.h"

namespace fmps {
namespace testing {

enum class Fault {
  kNone,
  kNoSpace,       // Append fails with ENOSPC after writing half of the bytes
  kWriteEio,      // Append fails with EIO
  kSyncEio,       // Sync (fsync) fails with EIO
  kShortWrite,    // Append silently writes only half of the bytes (a lying disk)
  kRenameFails,   // RenameFile fails with EIO
  kReadEio,       // Read fails with EIO once `read_ok_bytes` bytes were read
};

class FaultEnv : public EnvWrapper {
 public:
  FaultEnv() : EnvWrapper(Env::Default()) {}

  // Arms `fault` for files whose path contains `match` (empty: every file).
  void Arm(Fault fault, std::string match = "", uint64_t read_ok_bytes = 0) {
    fault_ = fault;
    match_ = std::move(match);
    read_ok_bytes_ = read_ok_bytes;
  }
  int hits() const { return hits_.load(); }

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    Result<std::unique_ptr<WritableFile>> file = target()->NewWritableFile(path);
    if (!file.ok() || !Matches(path)) return file;
    return std::unique_ptr<WritableFile>(new FaultyWritable(std::move(file.value()), path, this));
  }
  Result<std::unique_ptr<SequentialFile>> NewSequentialFile(const std::string& path) override {
    Result<std::unique_ptr<SequentialFile>> file = target()->NewSequentialFile(path);
    if (!file.ok() || fault_ != Fault::kReadEio || !Matches(path)) return file;
    return std::unique_ptr<SequentialFile>(new FaultyReadable(std::move(file.value()), path, this));
  }
  Status RenameFile(const std::string& from, const std::string& to) override {
    if (fault_ == Fault::kRenameFails && Matches(to)) {
      ++hits_;
      return Status::IOError("cannot rename " + from + " to " + to + ": " + std::strerror(EIO));
    }
    return target()->RenameFile(from, to);
  }

 private:
  bool Matches(const std::string& path) const {
    return fault_ != Fault::kNone && (match_.empty() || path.find(match_) != std::string::npos);
  }

  class FaultyWritable final : public WritableFile {
   public:
    FaultyWritable(std::unique_ptr<WritableFile> base, std::string path, FaultEnv* env)
        : base_(std::move(base)), path_(std::move(path)), env_(env) {}
    Status Append(std::string_view data) override {
      switch (env_->fault_) {
        case Fault::kNoSpace:
          ++env_->hits_;
          (void)base_->Append(data.substr(0, data.size() / 2));
          return Status::IOError("cannot write " + path_ + ": " + std::strerror(ENOSPC));
        case Fault::kWriteEio:
          ++env_->hits_;
          return Status::IOError("cannot write " + path_ + ": " + std::strerror(EIO));
        case Fault::kShortWrite:
          ++env_->hits_;
          return base_->Append(data.substr(0, data.size() / 2));
        default:
          return base_->Append(data);
      }
    }
    Status Sync() override {
      if (env_->fault_ == Fault::kSyncEio) {
        ++env_->hits_;
        return Status::IOError("cannot sync " + path_ + ": " + std::strerror(EIO));
      }
      return base_->Sync();
    }
    Status Close() override { return base_->Close(); }

   private:
    std::unique_ptr<WritableFile> base_;
    std::string path_;
    FaultEnv* env_;
  };

  class FaultyReadable final : public SequentialFile {
   public:
    FaultyReadable(std::unique_ptr<SequentialFile> base, std::string path, FaultEnv* env)
        : base_(std::move(base)), path_(std::move(path)), env_(env) {}
    Result<size_t> Read(char* dst, size_t n) override {
      if (read_ >= env_->read_ok_bytes_) {
        ++env_->hits_;
        return Status::IOError("cannot read " + path_ + ": " + std::strerror(EIO));
      }
      Result<size_t> got = base_->Read(dst, std::min<uint64_t>(n, env_->read_ok_bytes_ - read_));
      if (got.ok()) read_ += *got;
      return got;
    }
    Status Seek(uint64_t offset) override { return base_->Seek(offset); }

   private:
    std::unique_ptr<SequentialFile> base_;
    std::string path_;
    FaultEnv* env_;
    uint64_t read_ = 0;
  };

  std::atomic<Fault> fault_{Fault::kNone};
  std::string match_;
  uint64_t read_ok_bytes_ = 0;
  std::atomic<int> hits_{0};
};

}  // namespace testing
}  // namespace fmps

#endif  // FMPS_TESTS_BASE_FAULT_ENV_H_
