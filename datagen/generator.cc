#include "datagen/generator.h"

#include <errno.h>
#include <glog/logging.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <vector>

#include "datagen/planted_model.h"
#include "ps/base/env.h"

namespace fmps::datagen {
namespace {

// Longest row: label + 13 integers (7 digits, 8 bytes written) + 26 * 8 hex + 39 tabs + newline.
constexpr size_t kMaxRowBytes = 1 + 13 * 8 + 26 * 8 + 40;

// Text of integer column values, precomputed: a value's decimal digits (at most 7) and, in the
// last byte, their count, so writing one is an 8-byte copy and an add, with no branch on the
// number of digits. Slots are the model's integer buckets plus one for an empty column.
class IntColumnText {
 public:
  explicit IntColumnText(const PlantedModel& model) {
    static_assert(std::endian::native == std::endian::little, "the count is the last byte");
    int64_t max_value = 0;
    for (size_t b = 0; b < model.int_bucket_count(); ++b) {
      const PlantedModel::IntBucket& bucket = model.int_bucket(b);
      max_value = std::max({max_value, bucket.lo + bucket.count - 1, bucket.extra});
    }
    CHECK_LT(max_value, 10000000) << "integer values must have at most 7 digits";
    text_.resize(static_cast<size_t>(max_value) + 2);  // the last entry: no digits
    for (int64_t x = 0; x <= max_value; ++x) {
      char digits[8] = {};
      const auto [end, ec] = std::to_chars(digits, digits + 7, x);
      digits[7] = static_cast<char>(end - digits);
      std::memcpy(&text_[static_cast<size_t>(x)], digits, 8);
    }
    // Slots mirror PlantedModel::IntValue: choice i of count + (extra >= 0) values.
    for (size_t b = 0; b < model.int_bucket_count(); ++b) {
      const PlantedModel::IntBucket& bucket = model.int_bucket(b);
      const uint32_t has_extra = bucket.extra >= 0 ? 1 : 0;
      slots_.push_back({static_cast<uint32_t>(bucket.lo), bucket.count, bucket.count + has_extra,
                        static_cast<uint32_t>(has_extra ? bucket.extra : 0)});
    }
    empty_slot_ = static_cast<uint32_t>(slots_.size());
    slots_.push_back({static_cast<uint32_t>(max_value + 1), 1, 1, 0});
  }

  uint32_t empty_slot() const { return empty_slot_; }

  // Writes the value PlantedModel::IntValue(slot, random) would give (nothing for the empty
  // slot) and returns the end; writes 8 bytes at out in any case.
  char* Write(uint32_t slot, uint32_t random, char* out) const {
    const Slot& s = slots_[slot];
    const uint32_t i = static_cast<uint32_t>((static_cast<uint64_t>(random) * s.choices) >> 32);
    const uint64_t text = text_[i < s.count ? s.first + i : s.extra];
    std::memcpy(out, &text, 8);
    return out + (text >> 56);
  }

 private:
  struct Slot {
    uint32_t first;    // text_ index of the bucket's first value
    uint32_t count;    // consecutive values
    uint32_t choices;  // count, plus one when the bucket has an extra value
    uint32_t extra;    // the extra value
  };
  std::vector<Slot> slots_;
  std::vector<uint64_t> text_;  // by value
  uint32_t empty_slot_ = 0;
};

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
  if (!(o.fwfm_weak_std >= 0) || !std::isfinite(o.fwfm_weak_std))
    return bad("fwfm_weak_std must be >= 0");
  if (o.active_fields < 1 || o.active_fields > 39)
    return bad("active_fields=" + std::to_string(o.active_fields) + " must be in 1..39");
  if (o.field_vocab > (uint64_t{1} << 31)) return bad("field_vocab must be at most 2^31");
  if (!(o.vocab_scale > 0) || o.vocab_scale > 1000) return bad("vocab_scale must be in (0, 1000]");
  if (o.table_tokens < 1 || o.table_tokens > (uint64_t{1} << 24))
    return bad("table_tokens must be in 1..2^24");
  if (o.buffer_bytes < 4096) return bad("buffer_bytes must be >= 4096");
  return Status::OK();
}

namespace {

// Draws rows of the planted model one ahead of the row being written, so that the table lines
// they touch are prefetched while the current row is finished (table lookups are the main cost).
// Each column's text is settled while drawing; an empty column becomes zero parameters and
// zero-length text, so neither the logit nor the writing branches on it.
class RowDrawer {
 public:
  struct Row {
    const float* params[kFields];
    const char* text[kFields];      // 8 hex chars (categorical fields)
    uint32_t text_size[kFields];    // 8, or 0 for an empty column
    uint32_t int_slot[kIntFields];  // IntColumnText slot: the bucket, or the empty slot
  };

  RowDrawer(const PlantedModel& model, const IntColumnText& int_text, WyRand* rng)
      : model_(model),
        int_text_(int_text),
        rng_(*rng),
        stride_(model.param_stride()),
        scratch_(2 * kFields * stride_),
        rare_text_(2 * kFields * 8) {
    StartPicks();
  }

  const Row& row(int slot) const { return drawn_[slot]; }

  // Resolves the picks of a row into drawn_[slot] in two passes. The first takes head tokens and
  // empty columns and lists the tail draws without a branch on them; the second computes the
  // tail tokens (~1.2 per row), drawing their uniforms in field order as Finish() would.
  void Draw(int slot) {
    Row& d = drawn_[slot];
    ZipfSampler::Pick current[kFields];
    std::copy(std::begin(picks_), std::end(picks_), current);
    StartPicks();
    int tails[kFields];
    int num_tails = 0;
    for (int f = 0; f < kFields; ++f) {
      const ZipfSampler& sampler = model_.sampler(f);
      const uint32_t pick = sampler.Resolve(current[f]);
      const bool empty = pick == model_.empty_outcome(f);
      tails[num_tails] = f;
      num_tails += pick == sampler.tail_index();
      const float* params =
          empty ? model_.ZeroParams() : model_.TableRow(f, pick < sampler.head() ? pick : 0);
      __builtin_prefetch(params);
      d.params[f] = params;
      if (PlantedModel::IsIntField(f)) {
        d.int_slot[f] = empty ? int_text_.empty_slot() : pick;
      } else {
        d.text[f] = empty ? kNoText : model_.TableHex(params);
        d.text_size[f] = empty ? 0 : 8;
      }
    }
    for (int i = 0; i < num_tails; ++i) {
      const int f = tails[i];
      const uint64_t token = model_.sampler(f).SampleTail(rng_.Uniform());
      d.params[f] = model_.Params(f, token, &scratch_[(slot * kFields + f) * stride_]);
      if (PlantedModel::IsIntField(f)) {
        d.int_slot[f] = static_cast<uint32_t>(token);
      } else {
        char* text = &rare_text_[(slot * kFields + f) * 8];
        model_.TokenHex(f, token, text);
        d.text[f] = text;
      }
    }
  }

 private:
  static constexpr char kNoText[8] = {};

  // Alias buckets are picked (and prefetched) one row earlier still than they are resolved.
  void StartPicks() {
    for (int f = 0; f < kFields; ++f) {
      picks_[f] = model_.sampler(f).Start(rng_.Next());
      model_.sampler(f).Prefetch(picks_[f]);
    }
  }

  const PlantedModel& model_;
  const IntColumnText& int_text_;
  WyRand& rng_;
  const size_t stride_;
  std::vector<float> scratch_;
  std::vector<char> rare_text_;
  ZipfSampler::Pick picks_[kFields];
  Row drawn_[2];
};

// Writes a row's text (label, 13 integer columns, 26 categorical ones) at out; returns its end.
char* WriteRow(const RowDrawer::Row& row, bool click, const IntColumnText& int_text, WyRand* rng,
               char* out) {
  *out++ = click ? '1' : '0';
  uint64_t value_bits = 0;  // two 32-bit draws per random word
  for (int f = 0; f < kIntFields; ++f) {
    *out++ = '\t';
    if ((f & 1) == 0) value_bits = rng->Next();
    const uint32_t random = static_cast<uint32_t>(value_bits >> (32 * (f & 1)));
    out = int_text.Write(row.int_slot[f], random, out);
  }
  for (int f = kIntFields; f < kFields; ++f) {
    *out++ = '\t';
    std::memcpy(out, row.text[f], 8);
    out += row.text_size[f];
  }
  *out++ = '\n';
  return out;
}

}  // namespace

Result<GeneratorResult> GenerateCriteo(const GeneratorOptions& options, int fd) {
  const double start = NowSeconds();
  if (fd < 0)
    return Status::InvalidArgument("GenerateCriteo: bad file descriptor " + std::to_string(fd));
  auto created = PlantedModel::Create(options);
  if (!created.ok()) return created.status();
  const PlantedModel& model = **created;

  ScopedSigpipeBlock sigpipe_block;
  WyRand rng(options.seed);
  const IntColumnText int_text(model);
  RowDrawer drawer(model, int_text, &rng);
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

  if (options.rows > 0) drawer.Draw(0);
  for (uint64_t i = 0; i < options.rows && !result.reader_closed; ++i) {
    const int slot = static_cast<int>(i & 1);
    if (i + 1 < options.rows) drawer.Draw(slot ^ 1);
    const double z = model.LogitFromParams(drawer.row(slot).params);
    // p = sigmoid(z); logloss = softplus(-z) for a click, softplus(z) otherwise. Single
    // precision halves the cost of exp and log; a click flips only where the uniform lies
    // within ~1e-7 of p.
    const float e = std::exp(-std::fabs(static_cast<float>(z)));
    const float p = z >= 0 ? 1 / (1 + e) : e / (1 + e);
    const bool click = rng.Uniform() < p;
    pending_loss += (click ? std::max(-z, 0.0) : std::max(z, 0.0)) + std::log(1 + e);
    pending_positives += click;
    ++pending_rows;
    out = WriteRow(drawer.row(slot), click, int_text, &rng, out);
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
