#include "datagen/generator.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "datagen/planted_model.h"
#include "ps/base/env.h"

namespace fmps::datagen {
namespace {

// Longest row: label + 13 integers (< 2^63, 20 digits) + 26 * 8 hex + 39 tabs + newline.
constexpr size_t kMaxRowBytes = 1 + 13 * 20 + 26 * 8 + 40;

// Two decimal digits at a time; most integer columns are one or two digits long anyway.
constexpr char kDigitPairs[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

int DecimalDigits(uint64_t x) {
  int n = 1;
  while (x >= 100) {
    x /= 100;
    n += 2;
  }
  return n + (x >= 10);
}

// Writes x in decimal at out and returns the end; fills from the right, two digits at a time.
char* WriteUnsigned(uint64_t x, char* out) {
  char* const end = out + DecimalDigits(x);
  char* p = end;
  while (x >= 100) {
    p -= 2;
    std::memcpy(p, kDigitPairs + (x % 100) * 2, 2);
    x /= 100;
  }
  if (x >= 10) {
    std::memcpy(p - 2, kDigitPairs + x * 2, 2);
  } else {
    p[-1] = static_cast<char>('0' + x);
  }
  return end;
}

// Blocks SIGPIPE on this thread while generating, so a reader that goes away shows up as EPIPE
// instead of killing the process; a SIGPIPE raised meanwhile is consumed before unblocking.
class ScopedSigpipeBlock {
 public:
  ScopedSigpipeBlock() {
    sigemptyset(&pipe_set_);
    sigaddset(&pipe_set_, SIGPIPE);
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_set_, &old_set_);
  }
  ~ScopedSigpipeBlock() {
    if (!was_pending_) {
      const timespec zero{};
      while (sigtimedwait(&pipe_set_, nullptr, &zero) > 0) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_set_, nullptr);
  }
  ScopedSigpipeBlock(const ScopedSigpipeBlock&) = delete;
  ScopedSigpipeBlock& operator=(const ScopedSigpipeBlock&) = delete;

 private:
  sigset_t pipe_set_, old_set_;
  bool was_pending_ = false;
};

enum class WriteOutcome { kOk, kClosed, kError };

WriteOutcome WriteAll(int fd, const char* data, size_t size, int* error) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      *error = errno;
      return errno == EPIPE ? WriteOutcome::kClosed : WriteOutcome::kError;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return WriteOutcome::kOk;
}

}  // namespace

Status ValidateOptions(const GeneratorOptions& o) {
  auto bad = [](const std::string& what) {
    return Status::InvalidArgument("generator option " + what);
  };
  if (auto kind = ParsePlantedKind(o.planted); !kind.ok()) return kind.status();
  if (o.k < 1 || o.k > 64) return bad("k=" + std::to_string(o.k) + " must be in 1..64");
  if (!(o.zipf_s > 0) || !std::isfinite(o.zipf_s)) return bad("zipf_s must be > 0");
  if (!(o.missing >= 0 && o.missing < 1)) return bad("missing must be in [0, 1)");
  if (!(o.target_ctr > 0 && o.target_ctr < 1)) return bad("target_ctr must be in (0, 1)");
  if (!(o.linear_std >= 0) || !std::isfinite(o.linear_std)) return bad("linear_std must be >= 0");
  if (!(o.interaction_std >= 0) || !std::isfinite(o.interaction_std))
    return bad("interaction_std must be >= 0");
  if (o.dplr_rank < 1 || o.dplr_rank > 16) return bad("dplr_rank must be in 1..16");
  if (!(o.fwfm_strong_pairs >= 0 && o.fwfm_strong_pairs <= 1))
    return bad("fwfm_strong_pairs must be in [0, 1]");
  if (!(o.vocab_scale > 0) || o.vocab_scale > 1000) return bad("vocab_scale must be in (0, 1000]");
  if (o.table_tokens < 1 || o.table_tokens > (uint64_t{1} << 24))
    return bad("table_tokens must be in 1..2^24");
  if (o.buffer_bytes < 4096) return bad("buffer_bytes must be >= 4096");
  return Status::OK();
}

Result<GeneratorResult> GenerateCriteo(const GeneratorOptions& options, int fd) {
  const double start = NowSeconds();
  if (fd < 0)
    return Status::InvalidArgument("GenerateCriteo: bad file descriptor " + std::to_string(fd));
  auto created = PlantedModel::Create(options);
  if (!created.ok()) return created.status();
  const PlantedModel& model = **created;

  ScopedSigpipeBlock sigpipe_block;
  WyRand rng(options.seed);
  // Rows are drawn one ahead of the one being written so that the table lines they touch can be
  // prefetched while the current row is finished: table lookups are the main cost.
  // Each column's text is settled while drawing, so writing a row is branch-free for the
  // categorical columns (an empty one copies 8 bytes and advances by 0).
  struct DrawnRow {
    RowTokens tokens;
    const float* params[kFields];
    const char* text[kFields];  // 8 hex chars (categorical fields)
    uint32_t text_size[kFields];
  };
  DrawnRow drawn[2];
  const size_t stride = model.param_stride();
  std::vector<float> scratch(2 * kFields * stride);
  std::vector<char> rare_text(2 * kFields * 8);
  static constexpr char kNoText[8] = {};
  // Alias buckets are picked (and prefetched) one row earlier still than they are resolved.
  ZipfSampler::Pick picks[kFields];
  auto start_picks = [&]() {
    for (int f = 0; f < kFields; ++f) {
      picks[f] = model.sampler(f).Start(rng.Next());
      model.sampler(f).Prefetch(picks[f]);
    }
  };
  auto draw = [&](int slot) {
    DrawnRow& d = drawn[slot];
    ZipfSampler::Pick current[kFields];
    std::copy(std::begin(picks), std::end(picks), current);
    start_picks();
    for (int f = 0; f < kFields; ++f) {
      const uint64_t t = model.sampler(f).Finish(current[f], rng);
      d.tokens[f] = t;
      if (model.InTable(f, t)) {  // the common case
        d.params[f] = model.Params(f, t, nullptr);
        __builtin_prefetch(d.params[f]);
        d.text[f] = model.TableHex(d.params[f]);
        d.text_size[f] = 8;
      } else if (t == kMissingToken) {
        d.params[f] = model.ZeroParams();
        d.text[f] = kNoText;
        d.text_size[f] = 0;
      } else {
        d.params[f] = model.Params(f, t, &scratch[(slot * kFields + f) * stride]);
        char* text = &rare_text[(slot * kFields + f) * 8];
        if (!PlantedModel::IsIntField(f)) model.TokenHex(f, t, text);
        d.text[f] = text;
        d.text_size[f] = 8;
      }
    }
  };
  std::vector<char> buffer(std::max(options.buffer_bytes, kMaxRowBytes * 2));
  char* const buffer_begin = buffer.data();
  char* const flush_at = buffer_begin + buffer.size() - kMaxRowBytes;
  char* out = buffer_begin;

  GeneratorResult result;
  uint64_t pending_rows = 0, pending_positives = 0;
  double pending_loss = 0, total_loss = 0;

  // Takes the byte count rather than capturing `out`, so that the hot pointer stays in a register.
  auto flush = [&](size_t bytes) -> Status {
    int error = 0;
    const WriteOutcome outcome = WriteAll(fd, buffer_begin, bytes, &error);
    if (outcome == WriteOutcome::kError) {
      return Status::IOError("GenerateCriteo: write to fd " + std::to_string(fd) + " after " +
                             std::to_string(result.rows) + " rows: " + std::strerror(error));
    }
    if (outcome == WriteOutcome::kClosed) {
      result.reader_closed = true;
      return Status::OK();
    }
    result.rows += pending_rows;
    result.positives += pending_positives;
    total_loss += pending_loss;
    pending_rows = pending_positives = 0;
    pending_loss = 0;
    return Status::OK();
  };

  start_picks();
  if (options.rows > 0) draw(0);
  for (uint64_t i = 0; i < options.rows && !result.reader_closed; ++i) {
    const int slot = static_cast<int>(i & 1);
    if (i + 1 < options.rows) draw(slot ^ 1);
    const RowTokens& row = drawn[slot].tokens;
    const float* const* params = drawn[slot].params;
    const double z = model.LogitFromParams(params);
    // p = sigmoid(z); logloss = softplus(-z) for a click, softplus(z) otherwise.
    const double e = std::exp(-std::fabs(z));
    const double p = z >= 0 ? 1 / (1 + e) : e / (1 + e);
    const bool click = rng.Uniform() < p;
    pending_loss += (click ? std::max(-z, 0.0) : std::max(z, 0.0)) + std::log1p(e);
    pending_positives += click;
    ++pending_rows;

    *out++ = click ? '1' : '0';
    uint64_t value_bits = 0;  // two 32-bit draws per random word
    for (int f = 0; f < kIntFields; ++f) {
      *out++ = '\t';
      if ((f & 1) == 0) value_bits = rng.Next();
      if (row[f] == kMissingToken) continue;
      const int64_t x = model.IntValue(row[f], static_cast<uint32_t>(value_bits >> (32 * (f & 1))));
      out = WriteUnsigned(static_cast<uint64_t>(x), out);
    }
    for (int f = kIntFields; f < kFields; ++f) {
      *out++ = '\t';
      std::memcpy(out, drawn[slot].text[f], 8);
      out += drawn[slot].text_size[f];
    }
    *out++ = '\n';
    if (out >= flush_at) {
      FMPS_RETURN_IF_ERROR(flush(static_cast<size_t>(out - buffer_begin)));
      out = buffer_begin;
    }
  }
  if (!result.reader_closed && out != buffer_begin) {
    FMPS_RETURN_IF_ERROR(flush(static_cast<size_t>(out - buffer_begin)));
  }
  result.oracle_logloss = result.rows > 0 ? total_loss / static_cast<double>(result.rows) : 0.0;
  result.seconds = NowSeconds() - start;
  return result;
}

}  // namespace fmps::datagen
