#include "worker/localizer.h"

#include <glog/logging.h>

#include <algorithm>
#include <bit>

#include "ps/base/keys.h"

namespace fmps {
namespace {
// Entries between a slot's prefetch and its probe: longer than the bench alone needs, because in a
// job the servers and the other worker share the cores and evict the slot sooner
// (docs/performance-log.md).
constexpr size_t kPrefetchAhead = 32;
constexpr size_t kRing = 64;  // hashes kept for the prefetch; > kPrefetchAhead
}  // namespace

BatchView LocalBatch::View() const {
  BatchView v;
  v.rows = labels.size();
  v.labels = labels.data();
  v.offsets = offsets.data();
  v.index = index.data();
  v.values = values.data();
  v.fields = fields.data();
  v.num_keys = keys.size();
  return v;
}

void Localizer::Reserve(size_t keys, uint32_t seen) {
  size_t capacity = std::max<size_t>(table_.size(), 64);
  while (capacity < 2 * keys) capacity <<= 1;
  if (capacity == table_.size()) return;
  table_.assign(capacity, Slot{0, 0, 0});
  shift_ = 64 - std::countr_zero(capacity);
  stamp_ = 1;
  const uint64_t mask = capacity - 1;
  for (uint32_t id = 0; id < seen; ++id) {
    uint64_t slot = Home(first_keys_[id]);
    while (table_[slot].stamp == stamp_) slot = (slot + 1) & mask;
    table_[slot] = Slot{first_keys_[id], id, stamp_};
  }
}

size_t Localizer::Localize(const Minibatch& batch, int num_fields, LocalBatch* out) {
  const size_t n = batch.entries();
  // Rows cover the entries in order (the hash ring below relies on it); readers build them so.
  CHECK(batch.offsets.size() == batch.rows() + 1 && batch.offsets.front() == 0 &&
        batch.offsets.back() == n && (batch.values.empty() || batch.values.size() == n))
      << "minibatch offsets or values do not cover its " << n << " entries";
  // A new generation empties the table; on the rare wrap-around the stamps are really cleared.
  if (++stamp_ == 0) {
    for (Slot& s : table_) s.stamp = 0;
    stamp_ = 1;
  }
  Reserve(std::min<size_t>(n, remap_.size()), 0);  // last batch's unique keys: a good first guess
  uint64_t mask = table_.size() - 1;
  int shift = shift_;

  out->labels = batch.labels;
  out->offsets.resize(batch.rows() + 1);
  out->index.resize(n);
  out->values.resize(n);
  out->fields.resize(n);
  uint32_t* index = out->index.data();
  float* values = out->values.data();
  uint8_t* fields = out->fields.data();
  size_t e = 0;
  out->offsets[0] = 0;
  // Raw pointers and locals in the loop: the byte stores into `fields` may alias anything, so
  // through members the compiler would reload every vector's data pointer per entry.
  const uint64_t* keys = batch.keys.data();
  const float* in_values = batch.values.data();
  const bool unit_values = batch.values.empty();  // every value 1 (Minibatch::values)
  const uint32_t* row_offsets = batch.offsets.data();
  Slot* table = table_.data();
  uint32_t stamp = stamp_;
  // A batch has at most n unique keys: the new-key path writes through raw pointers, without a
  // capacity check or a reload of the vectors per key; Mix64 is computed after the loop.
  if (first_keys_.size() < n) {
    first_keys_.resize(n);
    first_counts_.resize(n);
  }
  uint64_t* first_keys = first_keys_.data();
  uint32_t* counts = first_counts_.data();
  uint32_t unique = 0;
  // The table is bigger than the core's cache share and each key lands on a random line: asking
  // for the line of the key kPrefetchAhead entries on overlaps those misses. A ring keeps the
  // hashes computed for the prefetch.
  uint64_t ahead[kRing];
  for (size_t j = 0; j < std::min(n, kPrefetchAhead); ++j) {
    ahead[j % kRing] = keys[j] * kFibonacci;
    __builtin_prefetch(&table[ahead[j % kRing] >> shift]);
  }
  const size_t rows = batch.rows();
  for (size_t r = 0; r < rows; ++r) {
    const uint32_t row_end = row_offsets[r + 1];
    for (uint32_t j = row_offsets[r]; j < row_end; ++j) {
      // The product, not the slot, is kept: the table may grow (and shift change) in between.
      const uint64_t product = ahead[j % kRing];
      if (j + kPrefetchAhead < n) {
        const uint64_t p = keys[j + kPrefetchAhead] * kFibonacci;
        ahead[(j + kPrefetchAhead) % kRing] = p;
        __builtin_prefetch(&table[p >> shift]);
      }
      const uint64_t key = keys[j];
      const uint32_t field = KeyField(key);
      if (static_cast<int>(field) >= num_fields) continue;
      uint64_t slot = product >> shift;
      while (table[slot].stamp == stamp && table[slot].key != key) slot = (slot + 1) & mask;
      uint32_t id;
      if (table[slot].stamp == stamp) {
        id = table[slot].id;
      } else {
        id = unique++;
        table[slot] = Slot{key, id, stamp};
        first_keys[id] = key;
        counts[id] = 0;
        if (2 * unique > table_.size()) {
          Reserve(unique, unique);
          table = table_.data();
          stamp = stamp_;
          mask = table_.size() - 1;
          shift = shift_;
        }
      }
      ++counts[id];
      index[e] = id;
      values[e] = unit_values ? 1.0f : in_values[j];
      fields[e] = static_cast<uint8_t>(field);
      ++e;
    }
    out->offsets[r + 1] = static_cast<uint32_t>(e);
  }
  out->index.resize(e);
  out->values.resize(e);
  out->fields.resize(e);
  first_mixed_.resize(unique);
  for (uint32_t i = 0; i < unique; ++i) first_mixed_[i] = Mix64(first_keys_[i]);

  // Group the unique keys by owning server (counting sort on the server rank).
  const size_t u = unique;
  const int servers = partition_.num_servers();
  std::vector<uint32_t> start(servers + 1, 0);
  owner_.resize(u);
  for (size_t i = 0; i < u; ++i) {
    owner_[i] = static_cast<uint16_t>(servers > 1 ? partition_.ServerOf(first_mixed_[i]) : 0);
    ++start[owner_[i] + 1];
  }
  for (int s = 0; s < servers; ++s) start[s + 1] += start[s];
  out->keys.resize(u);
  out->mixed.resize(u);
  out->counts.resize(u);
  remap_.resize(u);
  for (size_t i = 0; i < u; ++i) {
    uint32_t pos = start[owner_[i]]++;
    remap_[i] = pos;
    out->keys[pos] = first_keys_[i];
    out->mixed[pos] = first_mixed_[i];
    out->counts[pos] = first_counts_[i];
  }
  for (uint32_t& id : out->index) id = remap_[id];
  return n - e;
}

}  // namespace fmps
