// Store::Impl, shared by store.cc (pull, push, policy) and store_io.cc (serialisation). Internal
// to ps/store.
//
// Memory per key beyond the floats the model needs (z, n, w; V and accumulators):
//   key 8 + count 2 + epoch stamp 2 + embedding reference 4 (BaseRow)   = 16 bytes
//   KeyIndex slot 4 / load factor (0.4 .. 0.8)                           = 5 .. 10 bytes
//   chunk tails of RowTable and arenas                                   ~ 0
// so 21 .. 26 bytes (bench/store_bench.cc measures it). Not-yet-admitted keys cost nothing per
// key: they live in the fixed-size admission sketch.
// Rows are visited (ForEach, Serialize) in row order: insertion order until rows are evicted
// (eviction moves the last row into the hole).
#ifndef FMPS_PS_STORE_STORE_IMPL_H_
#define FMPS_PS_STORE_STORE_IMPL_H_

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "ps/store/arenas.h"
#include "ps/store/count_min_sketch.h"
#include "ps/store/key_index.h"
#include "ps/store/store.h"
#include "ps/store/update_rules.h"

namespace fmps {

class Store::Impl {
 public:
  explicit Impl(const StoreOptions& options);

  void Pull(std::span<const uint64_t> keys, std::vector<float>* values,
            std::vector<uint16_t>* widths) const;
  Status Push(std::span<const uint64_t> keys, std::span<const float> grads,
              std::span<const uint16_t> widths, std::span<const uint32_t> counts);
  StoreStats Stats() const;
  std::string Serialize() const;
  // Fills this (empty) Impl from serialised bytes.
  Status Load(std::string_view bytes, const std::string& source_name);
  void ForEach(const std::function<void(uint64_t, float, std::span<const float>)>& fn) const;

  const StoreOptions& options() const { return options_; }
  void SetLearningRateScale(float scale) { adagrad_.lr = options_.v_lr * scale; }

 private:
  struct KeyOf {
    const RowTable* rows;
    uint64_t operator()(uint32_t row) const { return (*rows)[row].key(); }
  };

  uint32_t WidthOf(uint32_t ref) const {
    return ref == 0 ? 0 : arenas_[EmbeddingRef::Arena(ref) - 1]->width();
  }
  float* EmbeddingOf(uint32_t ref) {
    return arenas_[EmbeddingRef::Arena(ref) - 1]->Row(EmbeddingRef::Slot(ref));
  }
  const float* EmbeddingOf(uint32_t ref) const {
    return arenas_[EmbeddingRef::Arena(ref) - 1]->Row(EmbeddingRef::Slot(ref));
  }
  // Arena id (1-based) for `width`, created on first use; 0 when all ids are taken.
  uint32_t ArenaFor(uint32_t width);
  // A fresh embedding slot of `width`; 0 when none can be had (arena or id space full).
  uint32_t AllocateRef(uint32_t width);
  void ReleaseEmbedding(BaseRow& row);
  // Gives `row` an embedding of `width` (> current): keeps V and accumulators of the existing
  // prefix, initialises the new dims. No-op if no slot can be had.
  void WidenEmbedding(BaseRow& row, uint32_t width);
  void PushOne(BaseRow& row, float grad_w, const float* grad_v, uint32_t grad_width,
               uint32_t count);
  // Admission: counts `count` more occurrences of an absent key; true once it has earned a row,
  // with *prior set to the occurrences counted before this push.
  bool Admit(uint64_t key, uint32_t count, uint32_t* prior);
  // Deletes row r: releases its embedding, removes its key, moves the last row into r.
  void EvictRow(uint32_t r);
  // Per push: checks `budget` rows for staleness (and keeps old stamps from wrapping around), then
  // enforces the memory cap.
  void Maintain(uint64_t budget);
  // Frees room so that LiveBytes() + reserve is under 85% of the cap, coldest rows first.
  void EvictColdest(uint64_t reserve);
  // Bytes the memory cap counts: like Stats().bytes, but embedding rows on an arena's free list
  // (reused before the arena grows) are not counted.
  uint64_t LiveBytes() const;
  // Live bytes at which rows are evicted: 95% of the cap. Held bytes exceed live bytes by the
  // released rows waiting for reuse (row chunk tails, arena free lists), so the trigger sits below
  // the cap and eviction goes down to 85% of it.
  uint64_t CapTrigger() const { return cap_bytes_ / 20 * 19; }
  uint16_t Age(const BaseRow& row) const { return static_cast<uint16_t>(epoch_ - row.stamp); }

  StoreOptions options_;
  FtrlParams ftrl_;
  AdagradParams adagrad_;
  KeyIndex index_;
  RowTable rows_;
  std::vector<std::unique_ptr<EmbeddingArena>> arenas_;  // arenas_[id - 1]
  std::vector<uint8_t> arena_of_width_;                  // width -> arena id, 0 = none yet
  uint64_t nonzero_w_ = 0;
  uint64_t embeddings_ = 0;
  uint64_t embedding_floats_ = 0;
  uint64_t failed_allocations_ = 0;  // embeddings not created for lack of arena space
  // Admission (options_.min_count > 1): occurrences of keys without a row.
  std::unique_ptr<CountMinSketch> sketch_;
  uint64_t sketch_added_ = 0;    // occurrences since the sketch was last halved
  uint64_t pending_pushes_ = 0;  // occurrences dropped because their key had no row yet
  // Eviction: a coarse clock of pushes to this store, stamped on rows by useful pushes.
  uint64_t pushes_ = 0;
  uint64_t epoch_length_ = 64;  // pushes per epoch
  uint16_t epoch_ = 0;          // (pushes_ / epoch_length_) mod 2^16
  uint32_t evict_epochs_ = 0;   // rows this many epochs old are stale; 0 = no stale eviction
  uint64_t cap_bytes_ = 0;      // 0 = no memory cap
  uint64_t sweep_cursor_ = 0;   // next row the incremental sweep checks
  uint64_t evicted_ = 0;
  uint64_t evicted_for_memory_ = 0;
  bool warned_fixed_ = false;  // the cap is below what index and sketch take (warned once)
};

}  // namespace fmps

#endif  // FMPS_PS_STORE_STORE_IMPL_H_
