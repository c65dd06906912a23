#include "data/line_parser.h"

#include <array>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>

#include "ps/base/keys.h"

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace fmps {
namespace {

// ParseInt's body, inlined into the parsers: up to 18 digits cannot overflow, so they are read
// with one multiply-add each; longer ones go through from_chars, which checks the range.
inline bool ParseIntInline(std::string_view s, int64_t* out) {
  const char* p = s.data();
  const char* const end = p + s.size();
  const bool negative = p != end && *p == '-';
  p += negative;
  if (p == end) return false;
  if (end - p > 18) {
    auto [ptr, ec] = std::from_chars(s.data(), end, *out);
    return ec == std::errc() && ptr == end;
  }
  uint64_t v = 0;
  for (; p != end; ++p) {
    const unsigned digit = static_cast<unsigned char>(*p) - unsigned{'0'};
    if (digit > 9) return false;
    v = v * 10 + digit;
  }
  *out = negative ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
  return true;
}

// 1 to 8 decimal digits at p (8 bytes readable from p) without a loop over them: one load,
// the digits moved to the top with '0's below, a check that every byte is a digit, then three
// multiplies that fold pairs, quads and the halves (the Criteo integer columns are 1-5 digits
// long, and a loop's exit, at a different count each column, mispredicted).
inline bool ParseDigits8(const char* p, size_t len, uint64_t* out) {
  uint64_t x;
  std::memcpy(&x, p, 8);
  const unsigned shift = 8 * (8 - static_cast<unsigned>(len));
  x = shift == 64 ? 0 : x << shift;
  x |= len == 8 ? 0 : 0x3030303030303030ull >> (8 * len);
  if ((x & 0xF0F0F0F0F0F0F0F0ull) != 0x3030303030303030ull ||
      ((x + 0x0606060606060606ull) & 0xF0F0F0F0F0F0F0F0ull) != 0x3030303030303030ull) {
    return false;  // a byte outside '0'..'9'
  }
  uint64_t d = x & 0x0F0F0F0F0F0F0F0Full;
  d = ((d * 2561) >> 8) & 0x00FF00FF00FF00FFull;
  d = ((d * 6553601) >> 16) & 0x0000FFFF0000FFFFull;
  *out = (d * 42949672960001ull) >> 32;
  return true;
}

// A column of a line as ParseInt reads it; short unsigned ones that have 8 bytes of the line from
// their start (every Criteo integer column but in a truncated line) by ParseDigits8.
inline bool ParseIntInLine(std::string_view column, const char* line_end, int64_t* out) {
  const char* p = column.data();
  if (!column.empty() && column.size() <= 8 && line_end - p >= 8 && *p != '-') {
    uint64_t v;
    if (!ParseDigits8(p, column.size(), &v)) return false;
    *out = static_cast<int64_t>(v);
    return true;
  }
  return ParseIntInline(column, out);
}

bool ParseFloat(std::string_view s, float* out) {
  if (!s.empty() && s[0] == '+') s.remove_prefix(1);
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size() && std::isfinite(*out);
}

// 0/1 labels; with allow_minus_one also -1/1 (libsvm, libffm). Values > 0 map to 1.
bool ParseLabel(std::string_view s, bool allow_minus_one, float* label) {
  if (s.size() == 1 && (s[0] == '0' || s[0] == '1')) {  // the common case, without from_chars
    *label = static_cast<float>(s[0] - '0');
    return true;
  }
  float v;
  if (!ParseFloat(s, &v)) return false;
  if (v == 1.0f) {
    *label = 1.0f;
  } else if (v == 0.0f || (allow_minus_one && v == -1.0f)) {
    *label = 0.0f;
  } else {
    return false;
  }
  return true;
}

// Up to 40 bytes of s for a message; bytes that are not printable ASCII (a binary file read as
// text) as \xNN, so a log line stays one line of text.
std::string Quote(std::string_view s) {
  constexpr size_t kMax = 40;
  std::string out = "'";
  for (char c : s.substr(0, kMax)) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      out += c;
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      out += {'\\', 'x', kHex[u >> 4], kHex[u & 15]};
    }
  }
  return out + (s.size() > kMax ? "...'" : "'");
}

size_t CountChar(std::string_view s, char c) {
  size_t n = 0;
  for (char x : s) n += x == c;
  return n;
}

// Splits the next column off `rest` at `sep`; false when `rest` is exhausted.
inline bool NextColumn(std::string_view* rest, bool* more, char sep, std::string_view* column) {
  if (!*more) return false;
  const char* p = rest->data();
  const char* hit = static_cast<const char*>(std::memchr(p, sep, rest->size()));
  if (hit == nullptr) {
    *column = *rest;
    *rest = std::string_view();
    *more = false;
  } else {
    *column = std::string_view(p, static_cast<size_t>(hit - p));
    rest->remove_prefix(column->size() + 1);
  }
  return true;
}

// Appends a finished row; keys/values were pushed by the caller.
inline void FinishRow(float label, Minibatch* batch) {
  batch->labels.push_back(label);
  batch->offsets.push_back(static_cast<uint32_t>(batch->keys.size()));
}

inline void Rollback(size_t entries, Minibatch* batch) {
  batch->keys.resize(entries);
  batch->values.resize(entries);
}

// Offsets of the first `max` occurrences of `sep` in `line` go to at[]; returns how many there
// are in all (a line with too many columns is then reported with its real count). 32 bytes per
// step where AVX2 is built in, then 16 (SSE2), then byte by byte: a Criteo line has 39 tabs in
// ~250 bytes, where one memchr call per column cost more than the scan.
size_t FindSeparators(std::string_view line, char sep, uint32_t* at, size_t max) {
  const char* p = line.data();
  const size_t n = line.size();
  size_t found = 0, i = 0;
  [[maybe_unused]] auto note = [&](uint32_t mask, size_t base) {
    for (; mask != 0; mask &= mask - 1) {
      if (found < max) at[found] = static_cast<uint32_t>(base + std::countr_zero(mask));
      ++found;
    }
  };
#if defined(__AVX2__)
  const __m256i wide = _mm256_set1_epi8(sep);
  for (; i + 32 <= n; i += 32) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i));
    note(static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, wide))), i);
  }
#endif
#if defined(__SSE2__)
  const __m128i narrow = _mm_set1_epi8(sep);
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    note(static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, narrow))), i);
  }
#endif
  for (; i < n; ++i) {
    if (p[i] != sep) continue;
    if (found < max) at[found] = static_cast<uint32_t>(i);
    ++found;
  }
  return found;
}

// Next whitespace-separated token (spaces or tabs); false at the end.
inline bool NextToken(std::string_view* rest, std::string_view* token) {
  size_t i = 0, n = rest->size();
  const char* p = rest->data();
  while (i < n && (p[i] == ' ' || p[i] == '\t')) ++i;
  if (i == n) return false;
  size_t j = i;
  while (j < n && p[j] != ' ' && p[j] != '\t') ++j;
  *token = std::string_view(p + i, j - i);
  rest->remove_prefix(j);
  return true;
}

}  // namespace

bool ParseInt(std::string_view s, int64_t* out) { return ParseIntInline(s, out); }

int64_t CriteoBucketOfLarge(int64_t x) {
  if (x <= 2) return x;
  const double l = std::log(static_cast<double>(x));
  return static_cast<int64_t>(std::floor(l * l));
}

int DayOfWeek(int year, int month, int day) {
  // Days since 1970-01-01 by the civil-calendar formula (March-based years put leap days last).
  int y = year - (month <= 2 ? 1 : 0);
  int era = (y >= 0 ? y : y - 399) / 400;
  int yoe = y - era * 400;
  int mp = (month + 9) % 12;
  int doy = (153 * mp + 2) / 5 + day - 1;
  int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  int64_t days = int64_t{era} * 146097 + doe - 719468;
  // 1970-01-01 was a Thursday (4).
  return static_cast<int>(((days % 7) + 7 + 4) % 7);
}

namespace {

// The 39 feature columns of a Criteo line whose separators are at ends[] (a labelled line's
// columns 1..39, an unlabelled one's 0..38).
[[gnu::always_inline]] inline bool ParseCriteoColumns(std::string_view line, uint64_t seed,
                                                      std::array<uint32_t, kCriteoColumns>& ends,
                                                      bool labelled, float label, Minibatch* batch,
                                                      std::string* error) {
  const uint32_t lead = labelled ? 1 : 0;
  ends[kCriteoFields - 1 + lead] = static_cast<uint32_t>(line.size());
  // The row's keys go to a local array first: no capacity check per entry, and nothing to roll
  // back when a column is bad.
  std::array<uint64_t, kCriteoFields> keys;
  size_t n = 0;
  const char* const text = line.data();
  uint32_t start = labelled ? ends[0] + 1 : 0;
  for (uint32_t col = lead; col < kCriteoFields + lead; ++col) {
    const std::string_view column(text + start, ends[col] - start);
    start = ends[col] + 1;
    if (column.empty()) continue;
    const uint32_t field = col - lead;
    if (field < kCriteoIntegerFields) {
      int64_t x;
      if (!ParseIntInLine(column, text + line.size(), &x)) {
        *error = "bad integer " + Quote(column) + " in column " + std::to_string(col + 1);
        return false;
      }
      keys[n++] = CriteoIntegerKey(field, x, seed);
    } else {
      keys[n++] = TokenKey(field, column, seed);
    }
  }
  batch->keys.insert(batch->keys.end(), keys.begin(), keys.begin() + n);
  batch->AppendedUnitRow();
  FinishRow(label, batch);
  return true;
}

}  // namespace

bool ParseCriteoLine(std::string_view line, uint64_t seed, Minibatch* batch, std::string* error,
                     const LineOptions& options) {
  // Every column's end first (the last ends the line), then the columns.
  std::array<uint32_t, kCriteoColumns> ends;
  const size_t tabs = FindSeparators(line, '\t', ends.data(), kCriteoColumns - 1);
  if (tabs == kCriteoColumns - 2 && options.allow_unlabelled) {
    return ParseCriteoColumns(line, seed, ends, /*labelled=*/false, kNoLabel, batch, error);
  }
  float label;
  const std::string_view label_column = line.substr(0, tabs > 0 ? ends[0] : line.size());
  if (!ParseLabel(label_column, /*allow_minus_one=*/false, &label)) {
    *error = "label must be 0 or 1, got " + Quote(label_column);
    return false;
  }
  if (tabs != kCriteoColumns - 1) {
    *error = "expected " + std::to_string(kCriteoColumns) + " tab-separated columns, got " +
             std::to_string(tabs + 1);
    return false;
  }
  return ParseCriteoColumns(line, seed, ends, /*labelled=*/true, label, batch, error);
}

bool ParseAvazuLine(std::string_view line, uint64_t seed, Minibatch* batch, std::string* error,
                    const LineOptions& options) {
  // Counting the columns first means nothing is appended before the line is known to be good.
  // Without the click column (Avazu's test file) a line has one column fewer.
  const size_t columns = CountChar(line, ',') + 1;
  const bool labelled = columns == kAvazuColumns;
  if (!labelled && !(options.allow_unlabelled && columns == kAvazuColumns - 1)) {
    *error = "expected " + std::to_string(kAvazuColumns) + " comma-separated columns, got " +
             std::to_string(columns);
    return false;
  }
  std::string_view rest = line, column;
  bool more = true;
  NextColumn(&rest, &more, ',', &column);  // id: not a feature
  float label = kNoLabel;
  if (labelled) {
    NextColumn(&rest, &more, ',', &column);
    if (!ParseLabel(column, /*allow_minus_one=*/false, &label)) {
      *error = "click must be 0 or 1, got " + Quote(column);
      return false;
    }
  }
  NextColumn(&rest, &more, ',', &column);
  // hour is YYMMDDHH; the hour of the day and the weekday carry the signal, the date does not.
  bool hour_ok = column.size() == 8;
  for (char c : column) hour_ok = hour_ok && c >= '0' && c <= '9';
  int yy = 0, mm = 0, dd = 0, hh = 0;
  if (hour_ok) {
    auto two = [&](int i) { return (column[i] - '0') * 10 + (column[i + 1] - '0'); };
    yy = two(0), mm = two(2), dd = two(4), hh = two(6);
    hour_ok = mm >= 1 && mm <= 12 && dd >= 1 && dd <= 31 && hh <= 23;
  }
  if (!hour_ok) {
    *error = "hour must be YYMMDDHH, got " + Quote(column);
    return false;
  }
  batch->keys.push_back(IntegerKey(0, hh, seed));
  batch->keys.push_back(IntegerKey(1, DayOfWeek(2000 + yy, mm, dd), seed));
  for (uint32_t field = 2; NextColumn(&rest, &more, ',', &column); ++field) {
    if (column.empty()) continue;
    batch->keys.push_back(TokenKey(field, column, seed));
  }
  batch->AppendedUnitRow();
  FinishRow(label, batch);
  return true;
}

namespace {

// A libffm/libsvm line's label: its first token, or none when that is already a pair (has a ':')
// and unlabelled rows are allowed; then *rest still holds that pair.
bool ParsePairsLabel(std::string_view* rest, const LineOptions& options, float* label,
                     std::string* error) {
  std::string_view token, after = *rest;
  if (!NextToken(&after, &token)) {  // a line of blanks
    *error = "no label and no features";
    return false;
  }
  if (options.allow_unlabelled && token.find(':') != std::string_view::npos) {
    *label = kNoLabel;
    return true;
  }
  *rest = after;
  if (!ParseLabel(token, /*allow_minus_one=*/true, label)) {
    *error = "label must be 0/1 or -1/1, got " + Quote(token);
    return false;
  }
  return true;
}

}  // namespace

bool ParseLibffmLine(std::string_view line, uint64_t seed, Minibatch* batch, std::string* error,
                     const LineOptions& options) {
  batch->MakeValuesExplicit();
  const size_t entries = batch->keys.size();
  std::string_view rest = line, token;
  float label;
  if (!ParsePairsLabel(&rest, options, &label, error)) return false;
  while (NextToken(&rest, &token)) {
    const char* p = token.data();
    const char* c1 = static_cast<const char*>(std::memchr(p, ':', token.size()));
    const char* c2 =
        c1 ? static_cast<const char*>(std::memchr(c1 + 1, ':', token.size() - (c1 + 1 - p)))
           : nullptr;
    if (c2 == nullptr || c2 == c1 + 1 || c1 == p) {
      Rollback(entries, batch);
      *error = "expected field:feature:value, got " + Quote(token);
      return false;
    }
    int64_t field;
    if (!ParseInt(std::string_view(p, c1 - p), &field) || field < 0) {
      Rollback(entries, batch);
      *error = "bad field in " + Quote(token);
      return false;
    }
    if (field >= options.num_fields) {
      Rollback(entries, batch);
      *error = options.num_fields == kMaxFields
                   ? "field " + std::to_string(field) + " >= " + std::to_string(kMaxFields)
                   : "field " + std::to_string(field) + " is beyond the job's " +
                         std::to_string(options.num_fields) + " fields (0.." +
                         std::to_string(options.num_fields - 1) + "; --num_fields)";
      return false;
    }
    float value;
    if (!ParseFloat(std::string_view(c2 + 1, token.data() + token.size() - (c2 + 1)), &value)) {
      Rollback(entries, batch);
      *error = "bad value in " + Quote(token);
      return false;
    }
    batch->keys.push_back(
        TokenKey(static_cast<uint32_t>(field), std::string_view(c1 + 1, c2 - (c1 + 1)), seed));
    batch->values.push_back(value);
  }
  FinishRow(label, batch);
  return true;
}

bool ParseLibsvmLine(std::string_view line, uint64_t seed, Minibatch* batch, std::string* error,
                     const LineOptions& options) {
  batch->MakeValuesExplicit();
  const size_t entries = batch->keys.size();
  std::string_view rest = line, token;
  float label;
  if (!ParsePairsLabel(&rest, options, &label, error)) return false;
  // The field of a pair is its position: libFM files such as Frappe keep a fixed field order.
  uint32_t position = 0;
  while (NextToken(&rest, &token)) {
    const char* p = token.data();
    const char* colon = static_cast<const char*>(std::memchr(p, ':', token.size()));
    if (colon == nullptr || colon == p ||
        std::memchr(colon + 1, ':', token.size() - (colon + 1 - p)) != nullptr) {
      Rollback(entries, batch);
      *error = "expected id:value, got " + Quote(token);
      return false;
    }
    if (position >= static_cast<uint32_t>(options.num_fields)) {
      Rollback(entries, batch);
      *error =
          options.num_fields == kMaxFields
              ? "more than " + std::to_string(kMaxFields) + " pairs (the position is the field)"
              : "more than the job's " + std::to_string(options.num_fields) +
                    " pairs (the position is the field; --num_fields)";
      return false;
    }
    float value;
    if (!ParseFloat(std::string_view(colon + 1, token.data() + token.size() - (colon + 1)),
                    &value)) {
      Rollback(entries, batch);
      *error = "bad value in " + Quote(token);
      return false;
    }
    batch->keys.push_back(TokenKey(position, std::string_view(p, colon - p), seed));
    batch->values.push_back(value);
    ++position;
  }
  FinishRow(label, batch);
  return true;
}

}  // namespace fmps
