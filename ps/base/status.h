// Status and Result<T>: how every module boundary reports failure. Bad input from disk or the
// network is a Status, never an abort; CHECK is kept for our own invariants.
#ifndef FMPS_PS_BASE_STATUS_H_
#define FMPS_PS_BASE_STATUS_H_

#include <optional>
#include <string>
#include <utility>

namespace fmps {

class Status {
 public:
  enum class Code { kOk, kInvalidArgument, kIOError, kCorruption, kNotFound, kTimeout, kAborted };

  Status() = default;
  static Status OK() { return Status(); }
  static Status InvalidArgument(std::string msg) {
    return Status(Code::kInvalidArgument, std::move(msg));
  }
  static Status IOError(std::string msg) { return Status(Code::kIOError, std::move(msg)); }
  static Status Corruption(std::string msg) { return Status(Code::kCorruption, std::move(msg)); }
  static Status NotFound(std::string msg) { return Status(Code::kNotFound, std::move(msg)); }
  static Status Timeout(std::string msg) { return Status(Code::kTimeout, std::move(msg)); }
  static Status Aborted(std::string msg) { return Status(Code::kAborted, std::move(msg)); }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

// A value or the Status saying why there is none.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  T&& value() && { return std::move(*value_); }
  const T& value() const& { return *value_; }
  T* operator->() { return &*value_; }
  T& operator*() { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

#define FMPS_RETURN_IF_ERROR(expr) \
  do {                             \
    ::fmps::Status _st = (expr);   \
    if (!_st.ok()) return _st;     \
  } while (0)

}  // namespace fmps

#endif  // FMPS_PS_BASE_STATUS_H_
