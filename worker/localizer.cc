#include "worker/localizer.h"

#include "ps/base/keys.h"

namespace fmps {

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

size_t Localizer::Localize(const Minibatch& batch, int num_fields, LocalBatch* out) {
  const size_t n = batch.entries();
  size_t capacity = 16;
  while (capacity < 2 * n) capacity <<= 1;
  const uint64_t mask = capacity - 1;
  constexpr uint32_t kEmpty = UINT32_MAX;
  table_keys_.resize(capacity);
  table_ids_.assign(capacity, kEmpty);
  first_keys_.clear();
  first_counts_.clear();

  out->labels = batch.labels;
  out->offsets.resize(batch.rows() + 1);
  out->index.clear();
  out->values.clear();
  out->fields.clear();
  out->index.reserve(n);
  out->values.reserve(n);
  out->fields.reserve(n);
  size_t dropped = 0;
  out->offsets[0] = 0;
  for (size_t r = 0; r < batch.rows(); ++r) {
    for (uint32_t j = batch.offsets[r]; j < batch.offsets[r + 1]; ++j) {
      uint64_t key = batch.keys[j];
      uint32_t field = KeyField(key);
      if (static_cast<int>(field) >= num_fields) {
        ++dropped;
        continue;
      }
      uint64_t slot = Mix64(key) & mask;
      while (table_ids_[slot] != kEmpty && table_keys_[slot] != key) slot = (slot + 1) & mask;
      if (table_ids_[slot] == kEmpty) {
        table_keys_[slot] = key;
        table_ids_[slot] = static_cast<uint32_t>(first_keys_.size());
        first_keys_.push_back(key);
        first_counts_.push_back(0);
      }
      uint32_t id = table_ids_[slot];
      ++first_counts_[id];
      out->index.push_back(id);
      out->values.push_back(batch.values[j]);
      out->fields.push_back(static_cast<uint8_t>(field));
    }
    out->offsets[r + 1] = static_cast<uint32_t>(out->index.size());
  }

  // Group the unique keys by owning server (counting sort on the server rank).
  const size_t u = first_keys_.size();
  const int servers = partition_.num_servers();
  std::vector<uint32_t> start(servers + 1, 0);
  std::vector<uint64_t> mixed(u);
  std::vector<uint16_t> owner(u);
  for (size_t i = 0; i < u; ++i) {
    mixed[i] = Mix64(first_keys_[i]);
    owner[i] = static_cast<uint16_t>(servers > 1 ? partition_.ServerOf(mixed[i]) : 0);
    ++start[owner[i] + 1];
  }
  for (int s = 0; s < servers; ++s) start[s + 1] += start[s];
  out->keys.resize(u);
  out->mixed.resize(u);
  out->counts.resize(u);
  remap_.resize(u);
  for (size_t i = 0; i < u; ++i) {
    uint32_t pos = start[owner[i]]++;
    remap_[i] = pos;
    out->keys[pos] = first_keys_[i];
    out->mixed[pos] = mixed[i];
    out->counts[pos] = first_counts_[i];
  }
  for (uint32_t& id : out->index) id = remap_[id];
  return dropped;
}

}  // namespace fmps
