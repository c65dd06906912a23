// Helpers shared by the libFuzzer harnesses: an in-memory file with a path (memfd), a cursor over
// the fuzz input for taking control bytes, and a crash-on-violation check. Harness-only code: a
// violated invariant aborts so libFuzzer records the input.
#ifndef FMPS_FUZZ_FUZZ_UTIL_H_
#define FMPS_FUZZ_FUZZ_UTIL_H_

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace fmps::fuzz {

// Aborts with a message: the fuzzer keeps the input that broke an invariant.
#define FMPS_FUZZ_ASSERT(cond, what)                                                           \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      std::fprintf(stderr, "fuzz invariant failed: %s (%s) at %s:%d\n", what, #cond, __FILE__, \
                   __LINE__);                                                                  \
      std::abort();                                                                            \
    }                                                                                          \
  } while (0)

// A file that lives in memory (memfd) so readers that take a path read the fuzz bytes without
// touching the disk. path() is /proc/self/fd/N, valid while this object lives.
class MemFile {
 public:
  explicit MemFile(std::string_view bytes) {
    fd_ = ::memfd_create("fmps-fuzz", 0);
    if (fd_ < 0) std::abort();  // the harness cannot run at all: not an input problem
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
      if (n <= 0) std::abort();
      done += static_cast<size_t>(n);
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~MemFile() { ::close(fd_); }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

// Takes control values from the front of the input; past the end it yields zeros, so every input
// is usable and short inputs still reach the code under test.
class InputCursor {
 public:
  InputCursor(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  template <typename T>
  T Take() {
    T value{};
    size_t n = std::min(sizeof(T), size_ - pos_);
    std::memcpy(&value, data_ + pos_, n);
    pos_ += n;
    return value;
  }
  // Up to n bytes (fewer at the end).
  std::string_view TakeBytes(size_t n) {
    n = std::min(n, size_ - pos_);
    std::string_view out(reinterpret_cast<const char*>(data_ + pos_), n);
    pos_ += n;
    return out;
  }
  std::string_view Rest() { return TakeBytes(size_ - pos_); }
  size_t remaining() const { return size_ - pos_; }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace fmps::fuzz

#endif  // FMPS_FUZZ_FUZZ_UTIL_H_
