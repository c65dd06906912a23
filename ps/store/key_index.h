// KeyIndex: the store's key -> row-number map. An open-addressing table with linear probing and a
// power-of-two capacity (load factor <= 0.8, grows by rebuilding). A slot is 4 bytes: the row
// number in the low `bits` bits (bits = log2 capacity, so any row fits) and, above it, as many hash
// bits as are left over, which rule out almost every wrong candidate without touching its row.
// Keys themselves live in the rows; the caller passes a `key_of(row)` accessor.
#ifndef FMPS_PS_STORE_KEY_INDEX_H_
#define FMPS_PS_STORE_KEY_INDEX_H_

#include <glog/logging.h>

#include <cstdint>
#include <vector>

#include "ps/base/keys.h"

namespace fmps {

class KeyIndex {
 public:
  static constexpr uint32_t kNotFound = 0xFFFFFFFFu;

  KeyIndex() { Reset(0); }

  // Empties the table and sizes it for `expected_rows` rows.
  void Reset(uint64_t expected_rows) {
    bits_ = kMinBits;
    while (MaxRows(bits_) < expected_rows) ++bits_;
    CHECK_LE(bits_, kMaxBits) << "KeyIndex: too many rows";
    slots_.assign(size_t{1} << bits_, kEmpty);
    size_ = 0;
  }

  // Hints the cache that `key` will be looked up soon (batches prefetch a few keys ahead: the
  // table is far larger than the cache, so each lookup is otherwise a miss).
  void Prefetch(uint64_t key) const { __builtin_prefetch(&slots_[Home(Mix64(key))]); }

  // Row of `key`, or kNotFound.
  template <typename KeyOf>
  uint32_t Find(uint64_t key, const KeyOf& key_of) const {
    const uint64_t h = Mix64(key);
    const uint32_t mask = RowMask();
    const uint32_t tag = Tag(h);
    for (size_t pos = Home(h);; pos = (pos + 1) & mask) {
      const uint32_t slot = slots_[pos];
      if (slot == kEmpty) return kNotFound;
      if ((slot & ~mask) == tag && key_of(slot & mask) == key) return slot & mask;
    }
  }

  // Returns the row of `key`; when absent, maps it to `new_row` (which must be the number of rows
  // held) and sets *inserted. `key_of` is only called on rows already inserted, so the
  // caller may append the new row afterwards.
  template <typename KeyOf>
  uint32_t FindOrInsert(uint64_t key, uint32_t new_row, const KeyOf& key_of, bool* inserted) {
    if (size_ + 1 > MaxRows(bits_)) Grow(key_of);
    const uint64_t h = Mix64(key);
    const uint32_t mask = RowMask();
    const uint32_t tag = Tag(h);
    size_t pos = Home(h);
    for (;; pos = (pos + 1) & mask) {
      const uint32_t slot = slots_[pos];
      if (slot == kEmpty) break;
      if ((slot & ~mask) == tag && key_of(slot & mask) == key) {
        *inserted = false;
        return slot & mask;
      }
    }
    DCHECK_EQ(new_row, size_);
    slots_[pos] = tag | new_row;
    ++size_;
    *inserted = true;
    return new_row;
  }

  // Removes `key` (which must map to a row); returns its row, or kNotFound. Backward-shift
  // deletion: later entries of the probe run move back into the hole when their home allows, so
  // no tombstones accumulate and Find stays as fast as after a fresh build. `key_of` must still
  // answer for every row in the table.
  template <typename KeyOf>
  uint32_t Erase(uint64_t key, const KeyOf& key_of) {
    const uint64_t h = Mix64(key);
    const uint32_t mask = RowMask();
    const uint32_t tag = Tag(h);
    size_t pos = Home(h);
    for (;; pos = (pos + 1) & mask) {
      const uint32_t slot = slots_[pos];
      if (slot == kEmpty) return kNotFound;
      if ((slot & ~mask) == tag && key_of(slot & mask) == key) break;
    }
    const uint32_t row = slots_[pos] & mask;
    size_t hole = pos;
    for (size_t next = (hole + 1) & mask;; next = (next + 1) & mask) {
      const uint32_t slot = slots_[next];
      if (slot == kEmpty) break;
      const size_t home = Home(Mix64(key_of(slot & mask)));
      // The entry at `next` may fill the hole unless its home lies cyclically in (hole, next].
      const bool stays =
          hole <= next ? (hole < home && home <= next) : (hole < home || home <= next);
      if (stays) continue;
      slots_[hole] = slot;
      hole = next;
    }
    slots_[hole] = kEmpty;
    --size_;
    return row;
  }

  // Points `key`, now at row `old_row`, to `new_row` (the store moves its last row into a hole).
  template <typename KeyOf>
  void Relabel(uint64_t key, uint32_t old_row, uint32_t new_row, const KeyOf& key_of) {
    const uint64_t h = Mix64(key);
    const uint32_t mask = RowMask();
    const uint32_t tag = Tag(h);
    for (size_t pos = Home(h);; pos = (pos + 1) & mask) {
      const uint32_t slot = slots_[pos];
      CHECK_NE(slot, kEmpty) << "KeyIndex::Relabel: key " << key << " is not in the index";
      if (slot == (tag | old_row) && key_of(old_row) == key) {
        slots_[pos] = tag | new_row;
        return;
      }
    }
  }

  // Bytes the table would add if `extra_rows` more rows were inserted now (0 if it need not grow).
  uint64_t GrowthBytes(uint64_t extra_rows) const {
    int bits = bits_;
    while (MaxRows(bits) < size_ + extra_rows) ++bits;
    return ((uint64_t{1} << bits) - slots_.size()) * sizeof(uint32_t);
  }

  uint64_t size() const { return size_; }
  uint64_t capacity() const { return slots_.size(); }
  uint64_t bytes() const { return slots_.capacity() * sizeof(uint32_t); }

 private:
  static constexpr uint32_t kEmpty = 0xFFFFFFFFu;
  static constexpr int kMinBits = 4;
  static constexpr int kMaxBits = 31;

  // Rows allowed at capacity 2^bits: load factor 0.8. Row numbers stay below 2^bits - 1, so a
  // used slot never equals kEmpty.
  static uint64_t MaxRows(int bits) { return ((uint64_t{1} << bits) * 4) / 5; }
  uint32_t RowMask() const { return (uint32_t{1} << bits_) - 1; }
  // Position from the low hash bits, tag from the high word. Not the top bits for the position:
  // servers own ranges of the top bits of Mix64(key), so on server s of S those bits barely vary
  // and a top-bits home would crowd every key into 1/S of the table.
  size_t Home(uint64_t h) const { return static_cast<size_t>(h) & RowMask(); }
  uint32_t Tag(uint64_t h) const { return static_cast<uint32_t>(h >> 32) & ~RowMask(); }

  template <typename KeyOf>
  void Grow(const KeyOf& key_of) {
    const uint64_t rows = size_;
    CHECK_LT(bits_, kMaxBits) << "KeyIndex: too many rows";
    ++bits_;
    slots_.assign(0, kEmpty);
    slots_.shrink_to_fit();  // Release the old table before allocating the new one.
    slots_.assign(size_t{1} << bits_, kEmpty);
    const uint32_t mask = RowMask();
    // Row order makes the reads of keys sequential; only the slot writes are random.
    for (uint64_t row = 0; row < rows; ++row) {
      const uint64_t h = Mix64(key_of(static_cast<uint32_t>(row)));
      size_t pos = Home(h);
      while (slots_[pos] != kEmpty) pos = (pos + 1) & mask;
      slots_[pos] = Tag(h) | static_cast<uint32_t>(row);
    }
  }

  std::vector<uint32_t> slots_;
  uint64_t size_ = 0;
  int bits_ = kMinBits;
};

}  // namespace fmps

#endif  // FMPS_PS_STORE_KEY_INDEX_H_
