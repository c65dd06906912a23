// Embedding storage behind the Store (the per-key rows live in RowMap, row_map.h): an
// EmbeddingArena holds the embedding rows of one width. It grows in fixed-size chunks, so growing
// never copies and never holds twice the memory, and it does not allocate per key. Released rows
// go to an intrusive free list and are reused first.
#ifndef FMPS_PS_STORE_ARENAS_H_
#define FMPS_PS_STORE_ARENAS_H_

#include <cstdint>
#include <memory>
#include <vector>

namespace fmps {

// Where an embedding lives: arena id (1..kMaxArenas) in the top bits, slot in the rest.
struct EmbeddingRef {
  static constexpr int kSlotBits = 27;
  static constexpr uint32_t kMaxArenas = (1u << (32 - kSlotBits)) - 1;  // 31 distinct widths
  static constexpr uint32_t kMaxSlots = 1u << kSlotBits;                // 134M rows per width
  static uint32_t Pack(uint32_t arena, uint32_t slot) { return (arena << kSlotBits) | slot; }
  static uint32_t Arena(uint32_t ref) { return ref >> kSlotBits; }
  static uint32_t Slot(uint32_t ref) { return ref & (kMaxSlots - 1); }
};

// Embedding rows of one width: per row the key's FTRL z (moved here from its RowState, whose 4
// bytes then hold the EmbeddingRef), `width` floats of V, then `width` Adagrad accumulators.
class EmbeddingArena {
 public:
  explicit EmbeddingArena(uint32_t width);

  uint32_t width() const { return width_; }
  uint32_t row_floats() const { return 1 + 2 * width_; }  // z, V, accumulators
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
  // 8 KiB chunks: a small store's half-filled last chunk per width stays a small share of it.
  static constexpr uint32_t kChunkFloats = 2048;
  size_t Offset(uint32_t slot) const { return size_t{slot % rows_per_chunk_} * row_floats(); }

  uint32_t width_;
  uint32_t rows_per_chunk_;
  std::vector<std::unique_ptr<float[]>> chunks_;
  uint32_t used_ = 0;             // slots handed out at least once
  uint64_t live_ = 0;             // slots currently allocated
  uint32_t free_head_ = kNoSlot;  // released slots, linked through their first float's bits
};

}  // namespace fmps

#endif  // FMPS_PS_STORE_ARENAS_H_
