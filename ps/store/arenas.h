// Storage behind the Store: RowTable holds one fixed-size base row per key (FTRL state, count,
// embedding reference) and EmbeddingArena holds the embedding rows of one width. Both grow in
// fixed-size chunks, so growing never copies and never holds twice the memory, and neither
// allocates per key. Released embedding rows go to an intrusive free list and are reused first.
#ifndef FMPS_PS_STORE_ARENAS_H_
#define FMPS_PS_STORE_ARENAS_H_

#include <cstdint>
#include <memory>
#include <vector>

namespace fmps {

// Base row of one key. 28 bytes, 4-byte aligned (the key is split so no padding creeps in).
struct BaseRow {
  static constexpr uint16_t kMaxCount = 0xFFFF;
  uint32_t key_lo;
  uint32_t key_hi;
  float z;
  float n;
  float w;
  uint16_t count;  // occurrences, saturating at kMaxCount (which the rank policy reads as "many")
  uint16_t stamp;  // coarse epoch (Store pushes / epoch length, mod 2^16) of the last useful push
  uint32_t embedding;  // EmbeddingRef::Pack, 0 when the key has no embedding

  uint64_t key() const { return (uint64_t{key_hi} << 32) | key_lo; }
};
static_assert(sizeof(BaseRow) == 28);

// Where an embedding lives: arena id (1..kMaxArenas) in the top bits, slot in the rest.
struct EmbeddingRef {
  static constexpr int kSlotBits = 27;
  static constexpr uint32_t kMaxArenas = (1u << (32 - kSlotBits)) - 1;  // 31 distinct widths
  static constexpr uint32_t kMaxSlots = 1u << kSlotBits;                // 134M rows per width
  static uint32_t Pack(uint32_t arena, uint32_t slot) { return (arena << kSlotBits) | slot; }
  static uint32_t Arena(uint32_t ref) { return ref >> kSlotBits; }
  static uint32_t Slot(uint32_t ref) { return ref & (kMaxSlots - 1); }
};

// Dense row numbers 0..size-1 (KeyIndex relies on this when it rebuilds). Rows are appended at
// the end; the store deletes a row by moving the last row into it and calling PopBack.
class RowTable {
 public:
  static constexpr int kChunkBits = 14;  // 16384 rows, 448 KiB per chunk

  BaseRow& operator[](uint32_t row) { return chunks_[row >> kChunkBits][row & kChunkMask]; }
  const BaseRow& operator[](uint32_t row) const {
    return chunks_[row >> kChunkBits][row & kChunkMask];
  }
  uint32_t Append(const BaseRow& row);
  // Drops the last row; frees a chunk once two chunks beyond the last row are empty (one spare
  // chunk, so a store oscillating around a chunk boundary does not reallocate on every push).
  void PopBack();
  uint64_t size() const { return size_; }
  void Clear();
  uint64_t bytes() const;

 private:
  static constexpr uint32_t kChunkMask = (1u << kChunkBits) - 1;
  std::vector<std::unique_ptr<BaseRow[]>> chunks_;
  uint64_t size_ = 0;
};

// Embedding rows of one width: per row `width` floats of V followed by `width` Adagrad
// accumulators.
class EmbeddingArena {
 public:
  explicit EmbeddingArena(uint32_t width);

  uint32_t width() const { return width_; }
  // A free slot (reused if any was released), its contents unspecified. Returns kFull when the
  // arena already holds EmbeddingRef::kMaxSlots rows.
  static constexpr uint32_t kFull = 0xFFFFFFFFu;
  uint32_t Allocate();
  void Release(uint32_t slot);
  float* Row(uint32_t slot) { return chunks_[slot / rows_per_chunk_].get() + Offset(slot); }
  const float* Row(uint32_t slot) const {
    return chunks_[slot / rows_per_chunk_].get() + Offset(slot);
  }

  uint64_t live_rows() const { return live_; }
  uint64_t slots() const { return used_; }  // high-water mark: slots ever handed out
  uint64_t bytes() const;

 private:
  static constexpr uint32_t kNoSlot = 0xFFFFFFFFu;
  size_t Offset(uint32_t slot) const { return size_t{slot % rows_per_chunk_} * 2 * width_; }

  uint32_t width_;
  uint32_t rows_per_chunk_;
  std::vector<std::unique_ptr<float[]>> chunks_;
  uint32_t used_ = 0;             // slots handed out at least once
  uint64_t live_ = 0;             // slots currently allocated
  uint32_t free_head_ = kNoSlot;  // released slots, linked through their first float's bits
};

}  // namespace fmps

#endif  // FMPS_PS_STORE_ARENAS_H_
