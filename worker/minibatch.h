// Minibatch: rows as parsed by a reader, before localization. Entry j of row r lives at
// [offsets[r], offsets[r+1]) in keys/values; a key carries its field in its top 8 bits.
#ifndef FMPS_WORKER_MINIBATCH_H_
#define FMPS_WORKER_MINIBATCH_H_

#include <cstdint>
#include <vector>

namespace fmps {

struct Minibatch {
  std::vector<float> labels;         // [rows], 0 or 1
  std::vector<uint32_t> offsets{0};  // [rows + 1]
  std::vector<uint64_t> keys;        // [entries], MakeKey(field, token hash)
  std::vector<float> values;         // [entries]

  size_t rows() const { return labels.size(); }
  size_t entries() const { return keys.size(); }
  void Clear() {
    labels.clear();
    offsets.assign(1, 0);
    keys.clear();
    values.clear();
  }
};

}  // namespace fmps

#endif  // FMPS_WORKER_MINIBATCH_H_
