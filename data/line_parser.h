// Line parsers of the readers: one text line of a CTR log -> one Minibatch row. They parse in
// place (no allocation per token) because parsing sits on the trainer's critical path. On a
// malformed line they leave the batch untouched and say why in *error.
#ifndef FMPS_DATA_LINE_PARSER_H_
#define FMPS_DATA_LINE_PARSER_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "data/minibatch.h"
#include "ps/base/keys.h"

namespace fmps {

constexpr int kCriteoColumns = 40;  // label, I1..I13, C1..C26
constexpr int kCriteoFields = 39;
constexpr int kCriteoIntegerFields = 13;  // I1..I13: fields 0..12, bucketed; the rest hashed text
constexpr int kAvazuColumns = 24;         // id, click, hour, 21 categorical columns
constexpr int kAvazuFields = 23;          // hour-of-day, day-of-week, the 21 categorical columns

// Bucket of a Criteo integer: floor(ln(x)^2) for x > 2, else x itself. Most Criteo integers are
// small: a table built at compile time holds their buckets (a table built at run time is either a
// global that other files' statics could see unbuilt, or a guard tested on every column). From
// x = 3 on the buckets are 1, 2, ..., 69 below 4096, bucket b starting at
// kCriteoBucketStarts[b - 1]: computed with glibc's log once, and checked against it for every x
// below 20,000 by CriteoBucketTest.
constexpr int64_t kCriteoBucketTableSize = 1 << 12;
constexpr std::array<int16_t, 69> kCriteoBucketStarts = {
    3,    5,    6,    8,    10,   12,   15,   17,   21,   24,   28,   32,   37,   43,
    49,   55,   62,   70,   79,   88,   98,   109,  122,  135,  149,  164,  181,  199,
    219,  240,  262,  287,  313,  341,  371,  404,  439,  476,  516,  559,  604,  653,
    705,  760,  820,  883,  950,  1021, 1097, 1178, 1264, 1355, 1452, 1554, 1663, 1779,
    1901, 2030, 2168, 2313, 2466, 2629, 2800, 2981, 3173, 3375, 3589, 3814, 4051};
inline constexpr std::array<int16_t, kCriteoBucketTableSize> kCriteoBucketTable = [] {
  std::array<int16_t, kCriteoBucketTableSize> t{};
  t[1] = 1;
  t[2] = 2;
  int16_t bucket = 0;
  for (int64_t x = 3; x < kCriteoBucketTableSize; ++x) {
    while (bucket < static_cast<int16_t>(kCriteoBucketStarts.size()) &&
           kCriteoBucketStarts[bucket] <= x) {
      ++bucket;
    }
    t[x] = bucket;
  }
  return t;
}();
int64_t CriteoBucketOfLarge(int64_t x);  // any x; the parsers ask only past the table
inline int64_t CriteoBucket(int64_t x) {
  if (static_cast<uint64_t>(x) < kCriteoBucketTableSize) return kCriteoBucketTable[x];
  return CriteoBucketOfLarge(x);
}

// Day of the week of a Gregorian date, 0 = Sunday .. 6 = Saturday.
int DayOfWeek(int year, int month, int day);

// The keys the parsers make, one field at a time; whatever else makes keys for a trained model (the
// ranking service's field:text tokens, FieldKey in reader.h) goes through these, so a feature
// hashes exactly as in training.
// A Criteo integer column (fields below kCriteoIntegerFields): its bucket, hashed as an integer.
inline uint64_t CriteoIntegerKey(uint32_t field, int64_t x, uint64_t seed) {
  return MakeKey(field, HashInt(static_cast<uint64_t>(CriteoBucket(x)), seed));
}
// An integer feature (Avazu's hour of the day and day of the week).
inline uint64_t IntegerKey(uint32_t field, int64_t x, uint64_t seed) {
  return MakeKey(field, HashInt(static_cast<uint64_t>(x), seed));
}
// A categorical feature: its text (every other field of every format).
inline uint64_t TokenKey(uint32_t field, std::string_view text, uint64_t seed) {
  return MakeKey(field, HashToken(text, seed));
}

// A decimal integer, all of s (an optional '-', then digits); false otherwise or on overflow.
bool ParseInt(std::string_view s, int64_t* out);

// What a parser accepts beyond a labelled row of its format with fields below 256.
struct LineOptions {
  // Rows without a label are scored with label kNoLabel (Criteo's 39 columns, Avazu's 23 without
  // the click column, libffm/libsvm lines whose first token is a pair); otherwise they are
  // malformed. For scoring only: training on them is meaningless.
  bool allow_unlabelled = false;
  // libffm/libsvm: a field at or beyond this (the job's number of fields) makes a line malformed.
  int num_fields = kMaxFields;
};

// Each returns true and appends a row, or returns false with the reason in *error.
bool ParseCriteoLine(std::string_view line, uint64_t seed, Minibatch* batch, std::string* error,
                     const LineOptions& options = {});
bool ParseAvazuLine(std::string_view line, uint64_t seed, Minibatch* batch, std::string* error,
                    const LineOptions& options = {});
bool ParseLibffmLine(std::string_view line, uint64_t seed, Minibatch* batch, std::string* error,
                     const LineOptions& options = {});
bool ParseLibsvmLine(std::string_view line, uint64_t seed, Minibatch* batch, std::string* error,
                     const LineOptions& options = {});

}  // namespace fmps

#endif  // FMPS_DATA_LINE_PARSER_H_
