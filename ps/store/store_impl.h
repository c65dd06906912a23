// Store::Impl, shared by store.cc (pull, push, policy) and store_io.cc (serialisation). Internal
// to ps/store.
//
// Memory per key beyond the floats the model needs (z, n, w; V and accumulators), P5:
//   RowMap slot: key 8 + z or embedding reference 4 + n 4 + count 2 + stamp 2  = 20 bytes,
//   of which z and n are model floats, and w is not stored at all (FTRL's closed form of z and n,
//   recomputed where read), so a key without an embedding costs 20 / load - 12 bytes of overhead
//   and one with an embedding (z in its arena row, the slot's 4 bytes hold the reference)
//   20 / load - 8, against the model's floats (w counted, as the bound counts it). The
//   load stays within 0.80 .. 0.88 (below only after erasures, down to 0.727 before a segment
//   shrinks); the overhead store_bench measures is in docs/performance.md (P5).
//   Arena chunk tails and segment records ~ 0.
// bench/store_bench.cc measures it. Not-yet-admitted keys cost nothing per key: they live in the
// fixed-size admission sketch.
// Rows are visited (ForEach, Serialize) in RowMap order, a function of the keys alone.
#ifndef FMPS_PS_STORE_STORE_IMPL_H_
#define FMPS_PS_STORE_STORE_IMPL_H_

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "ps/store/arenas.h"
#include "ps/store/count_min_sketch.h"
#include "ps/store/row_map.h"
#include "ps/store/store.h"
#include "ps/store/update_rules.h"

namespace fmps {

class Store::Impl {
 public:
  explicit Impl(const StoreOptions& options);

  void Pull(std::span<const uint64_t> keys, std::vector<float>* values,
            std::vector<uint16_t>* widths, std::vector<uint64_t>* hints) const;
  Status Push(std::span<const uint64_t> keys, std::span<const float> grads,
              std::span<const uint16_t> widths, std::span<const uint32_t> counts,
              std::span<const uint64_t> hints);
  StoreStats Stats() const;
  std::string Serialize() const;
  // Adds the rows of serialised bytes that `keep` accepts (all without it) to this Impl, which
  // holds none of their keys yet.
  Status Load(std::string_view bytes, const std::string& source_name,
              const std::function<bool(uint64_t key)>& keep = {});
  void ForEach(const std::function<void(uint64_t, float, std::span<const float>)>& fn) const;

  const StoreOptions& options() const { return options_; }
  void SetLearningRateScale(float scale) { adagrad_.lr = options_.v_lr * scale; }

 private:
  uint32_t WidthOf(uint32_t ref) const {
    return ref == 0 ? 0 : arenas_[EmbeddingRef::Arena(ref) - 1]->width();
  }
  // The arena row of an embedding: z, then V[width], then the accumulators.
  float* EmbeddingOf(uint32_t ref) {
    return arenas_[EmbeddingRef::Arena(ref) - 1]->Row(EmbeddingRef::Slot(ref));
  }
  const float* EmbeddingOf(uint32_t ref) const {
    return arenas_[EmbeddingRef::Arena(ref) - 1]->Row(EmbeddingRef::Slot(ref));
  }
  float Z(const RowState& row) const {
    return row.embedded() ? EmbeddingOf(row.z_or_ref)[0] : row.inline_z();
  }
  float W(const RowState& row) const { return FtrlWeight(Z(row), row.n(), ftrl_); }
  // Hints the cache that the embedding of `row` (if any) is read soon.
  void PrefetchEmbedding(const RowState* row) const;
  // Arena id (1-based) for `width`, created on first use; 0 when all ids are taken.
  uint32_t ArenaFor(uint32_t width);
  // A fresh embedding slot of `width`; 0 when none can be had (arena or id space full).
  uint32_t AllocateRef(uint32_t width);
  // Returns an embedding slot to its arena (counters only; the row is the caller's).
  void FreeEmbedding(uint32_t ref);
  // Drops the row's embedding; z moves back into the row.
  void ReleaseEmbedding(RowState& row);
  // Gives `row` (of `key`) an embedding of `width` (> current): keeps z, V and accumulators of
  // the existing prefix, initialises the new dims. No-op if no slot can be had.
  void WidenEmbedding(RowState& row, uint64_t key, uint32_t width);
  void PushOne(RowState& row, uint64_t key, float grad_w, const float* grad_v, uint32_t grad_width,
               uint32_t count);
  // Admission: counts `count` more occurrences of an absent key; true once it has earned a row,
  // with *prior set to the occurrences counted before this push.
  bool Admit(uint64_t key, uint32_t count, uint32_t* prior);
  // Deletes the row at p (releasing its embedding); returns the position of the next row.
  RowMap::Position EvictAt(RowMap::Position p);
  // Per push: checks `budget` rows for staleness (and keeps old stamps from wrapping around), then
  // enforces the memory cap.
  void Maintain(uint64_t budget);
  // Frees room so that LiveBytes() + reserve is under 85% of the cap, coldest rows first.
  void EvictColdest(uint64_t reserve);
  // Bytes the memory cap counts: like Stats().bytes, but embedding rows on an arena's free list
  // (reused before the arena grows) are not counted.
  uint64_t LiveBytes() const;
  // Live bytes at which rows are evicted: 95% of the cap. Held bytes exceed live bytes by the
  // released rows waiting for reuse (arena free lists), so the trigger sits below
  // the cap and eviction goes down to 85% of it.
  uint64_t CapTrigger() const { return cap_bytes_ / 20 * 19; }
  uint16_t Age(const RowState& row) const { return static_cast<uint16_t>(epoch_ - row.stamp); }

  StoreOptions options_;
  FtrlParams ftrl_;
  AdagradParams adagrad_;
  RowMap map_;
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
  uint64_t sweep_ord_ = 0;      // RowMap ord of the next row the incremental sweep checks
  uint64_t evicted_ = 0;
  uint64_t evicted_for_memory_ = 0;
  bool warned_fixed_ = false;         // the cap is below what index and sketch take (warned once)
  bool warned_most_evicted_ = false;  // the cap evicted most rows (warned once)
};

}  // namespace fmps

#endif  // FMPS_PS_STORE_STORE_IMPL_H_
