// Localizer: turns a parsed Minibatch into a localized one — the batch's unique keys, each entry
// replaced by the index of its key, per-key occurrence counts. Unique keys come grouped by the
// server owning them (ascending Mix64 ranges), so each server's share is one contiguous slice.
// O(entries): a hash table dedupes, a counting pass groups by server. The table lives across
// batches and is sized by the unique keys seen, not the entries: a generation stamp per slot
// replaces clearing it, and a small table stays in cache (unique keys are a fraction of entries).
#ifndef FMPS_WORKER_LOCALIZER_H_
#define FMPS_WORKER_LOCALIZER_H_

#include <cstdint>
#include <vector>

#include "models/model.h"
#include "ps/postoffice.h"
#include "data/minibatch.h"

namespace fmps {

struct LocalBatch {
  std::vector<float> labels;
  std::vector<uint32_t> offsets;
  std::vector<uint32_t> index;   // per entry
  std::vector<float> values;     // per entry
  std::vector<uint8_t> fields;   // per entry
  std::vector<uint64_t> keys;    // unique keys, grouped by owning server
  std::vector<uint64_t> mixed;   // Mix64(keys[i])
  std::vector<uint32_t> counts;  // occurrences of keys[i] in the batch

  size_t rows() const { return labels.size(); }
  BatchView View() const;
};

class Localizer {
 public:
  explicit Localizer(const KeyPartition& partition) : partition_(partition) {}
  // Fills *out (reusing its buffers). Entries whose field is >= num_fields are dropped (a model
  // cannot score fields it has no parameters for); the count of dropped entries is returned. The
  // readers report a line with such a field as bad, so a job's batches have none to drop.
  size_t Localize(const Minibatch& batch, int num_fields, LocalBatch* out);

 private:
  struct Slot {
    uint64_t key;
    uint32_t id;     // index into first_keys_
    uint32_t stamp;  // the slot is live in this batch iff stamp == stamp_
  };
  // Makes the table hold at least 2 * `keys` slots, re-inserting the `seen` keys of this batch.
  void Reserve(size_t keys, uint32_t seen);
  // A key's home slot: Fibonacci hashing (one multiply, the product's top bits), cheaper than
  // Mix64 per entry; Mix64, which the servers' ranges need, is computed once per unique key.
  static constexpr uint64_t kFibonacci = 0x9E3779B97F4A7C15ull;
  uint64_t Home(uint64_t key) const { return (key * kFibonacci) >> shift_; }

  KeyPartition partition_;
  std::vector<Slot> table_;  // open addressing, linear probing; size a power of two
  int shift_ = 0;            // 64 - log2(table_.size()), set by Reserve
  uint32_t stamp_ = 0;
  // Scratch, sized for the largest batch so far: unique keys in first-seen order, their counts.
  std::vector<uint64_t> first_keys_;
  std::vector<uint32_t> first_counts_;
  std::vector<uint64_t> first_mixed_;  // Mix64(first_keys_[i]), for the batch's unique keys
  std::vector<uint32_t> remap_;
  std::vector<uint16_t> owner_;
};

}  // namespace fmps

#endif  // FMPS_WORKER_LOCALIZER_H_
