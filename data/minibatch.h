// Minibatch: rows as parsed by a reader, before localization. Entry j of row r lives at
// [offsets[r], offsets[r+1]) in keys/values; a key carries its field in its top 8 bits.
#ifndef FMPS_DATA_MINIBATCH_H_
#define FMPS_DATA_MINIBATCH_H_

#include <cstdint>
#include <limits>
#include <vector>

namespace fmps {

// The label of a row read without one (for scoring: ReaderOptions.allow_unlabelled). NaN, so that
// it can never pass for a class.
inline constexpr float kNoLabel = std::numeric_limits<float>::quiet_NaN();

struct Minibatch {
  std::vector<float> labels;         // [rows], 0 or 1 (kNoLabel: read without one)
  std::vector<uint32_t> offsets{0};  // [rows + 1]
  std::vector<uint64_t> keys;        // [entries], MakeKey(field, token hash)
  // [entries], or empty while every value is 1: the Criteo and Avazu parsers write none (filling
  // them cost a call per row, and the localizer a load per entry). Never any other size.
  std::vector<float> values;

  size_t rows() const { return labels.size(); }
  size_t entries() const { return keys.size(); }
  float value(size_t j) const { return values.empty() ? 1.0f : values[j]; }
  // After the keys of a row whose values are all 1: explicit values, if any, kept in step.
  void AppendedUnitRow() {
    if (!values.empty()) values.resize(keys.size(), 1.0f);
  }
  // Before a row with values of its own: the ones implied so far written out.
  void MakeValuesExplicit() { values.resize(keys.size(), 1.0f); }
  void Clear() {
    labels.clear();
    offsets.assign(1, 0);
    keys.clear();
    values.clear();
  }
};

}  // namespace fmps

#endif  // FMPS_DATA_MINIBATCH_H_
