// RowMap: the store's table of rows, one 20-byte slot per key with no separate index: the key
// (8 bytes, kept as its hash "ord", a bijection of the key) and the key's 12-byte RowState live in
// the hash table's slots themselves, so a lookup is one probe run and no pointer chase.
//
// Layout and collision scheme (why: at most 16 bytes per key beyond the model; docs/performance.md,
// P5):
// - Ordered linear probing (Robin Hood with ties broken by hash, Amble & Knuth's ordered hash
//   table): within a segment the occupied slots are sorted by ord, and home(ord) is monotone in
//   ord, so a lookup scans from home while ord[slot] < ord and stops at the first ord >= its own;
//   an empty slot holds ~0 and ends every scan with no extra test. Deletion shifts the displaced
//   run back (no tombstones). Keys sit in their own array (8 per cache line) and the RowStates in a
//   parallel one, so a probe run touches one key line and then one state line.
// - Load up to kMaxLoad (0.88) with growth by x1.1 (non-power-of-two capacities, home by
//   "fastrange" = (32 hash bits * homes) >> 32), so the load stays in 0.80..0.88 at every size
//   (erasures shrink a segment once it falls below 0.727). A higher load saves about a byte per key
//   but lengthens the runs that inserts shift and finds scan; the loads and growth factors measured
//   are in docs/performance-log.md.
//   A 2-choice bucketized cuckoo table would reach 0.95 but needs two key lines per miss and
//   gives no canonical order; ordered probing gives both early-exit misses and an iteration order
//   that depends only on the keys (Serialize writes identical bytes for identical contents).
//   Its price is insertion: a new key shifts the rest of its run, so pushes of new keys are slower
//   than pulls and pushes to existing keys (docs/performance.md, P5).
// - Segments (extendible hashing): a directory maps the top bits of ord to segments of at most
//   kMaxSegmentRows rows; a full segment splits in two. Growth, splits and shrinking each rebuild
//   one segment (at most ~200 KB; old and new copies together ~400 KB), so pauses and the
//   transient memory stay small at any table size.
// - ord = Mix64(key) rotated by 32 bits: the top bits of Mix64 pick the server (servers own
//   ranges of them), so they barely vary on one server and must not choose homes or segments.
// Rows move on every insert and erase: no pointer or Position survives a mutation, except the
// Position EraseAt returns. Walks (Begin/Next) visit rows in ord order.
#ifndef FMPS_PS_STORE_ROW_MAP_H_
#define FMPS_PS_STORE_ROW_MAP_H_

#include <bit>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "ps/base/keys.h"

namespace fmps {

// What the store keeps per key beside the key (12 bytes). w is not stored: it is FTRL's closed form
// of (z, n) (FtrlWeight), recomputed where it is read.
struct RowState {
  static constexpr uint16_t kMaxCount = 0xFFFF;
  static constexpr uint32_t kEmbeddedBit = 0x80000000u;
  // Bits of z; when the row has an embedding, its EmbeddingRef instead (z then lives in the
  // arena row, so tail keys without an embedding pay nothing for a reference).
  uint32_t z_or_ref;
  // Bits of n (a sum of squares, so its sign bit is free): the sign bit marks an embedded row.
  uint32_t n_bits;
  uint16_t count;  // occurrences, saturating at kMaxCount (which the rank policy reads as "many")
  uint16_t stamp;  // coarse epoch (Store pushes / epoch length, mod 2^16) of the last useful push

  bool embedded() const { return (n_bits & kEmbeddedBit) != 0; }
  uint32_t ref() const { return embedded() ? z_or_ref : 0; }
  float n() const { return std::bit_cast<float>(n_bits & ~kEmbeddedBit); }
  void set_n(float n) {
    n_bits = (std::bit_cast<uint32_t>(n) & ~kEmbeddedBit) | (n_bits & kEmbeddedBit);
  }
  float inline_z() const { return std::bit_cast<float>(z_or_ref); }  // only when !embedded()
  void set_inline_z(float z) { z_or_ref = std::bit_cast<uint32_t>(z); }
};
static_assert(sizeof(RowState) == 12);

class RowMap {
 public:
  static constexpr uint32_t kMaxSegmentRows = 1u << 13;
  static constexpr double kMaxLoad = 0.88;
  static constexpr double kGrowth = 1.1;
  static constexpr uint64_t kSlotBytes = sizeof(uint64_t) + sizeof(RowState);

  // A walk's place: the segment's first directory entry and a slot in it. Valid until the next
  // insert or erase (except as returned by EraseAt).
  struct Position {
    uint32_t dir = 0;
    uint32_t slot = 0;
  };

  RowMap();
  RowMap(RowMap&&) = default;
  RowMap& operator=(RowMap&&) = default;

  void Clear();
  uint64_t size() const { return size_; }
  // Bytes held: slots of every segment (with their sentinels), segment records, directory.
  uint64_t bytes() const;
  // Upper bound on the bytes held beyond bytes() while `extra_rows` more rows are inserted: the
  // new rows' slots at the lowest load, plus one segment rebuild (old and new copies coexist).
  uint64_t GrowthBytes(uint64_t extra_rows) const;

  // Hints the cache that `key` will be looked up soon (a batch prefetches a few keys ahead: the
  // table is far larger than the cache, so each lookup is otherwise a miss).
  void Prefetch(uint64_t key) const { PrefetchByOrd(OrdOf(key)); }
  // For a key about to be inserted: the lines after its home that the insertion shifts.
  void PrefetchRun(uint64_t key) const { PrefetchRunByOrd(OrdOf(key)); }
  RowState* Find(uint64_t key) { return FindByOrd(OrdOf(key)); }
  const RowState* Find(uint64_t key) const { return FindByOrd(OrdOf(key)); }
  // The row of `key`, inserted zeroed (and *inserted set) when absent.
  RowState* FindOrInsert(uint64_t key, bool* inserted) {
    return FindOrInsertByOrd(OrdOf(key), inserted);
  }
  // The same with the key's ord (OrdOf) computed once by the caller, who looks a key up more than
  // once (prefetch, then find).
  void PrefetchByOrd(uint64_t ord) const;
  void PrefetchRunByOrd(uint64_t ord) const;
  RowState* FindByOrd(uint64_t ord) {
    return const_cast<RowState*>(std::as_const(*this).FindByOrd(ord));
  }
  const RowState* FindByOrd(uint64_t ord) const;
  RowState* FindOrInsertByOrd(uint64_t ord, bool* inserted);

  // A row's place, to find it again without a lookup: its segment in the high 32 bits, its slot
  // in the low (kNoHint: none). FindByOrd with a hint sets it; AtHint gives the row of `ord` if
  // it is still at that place or a few slots on (inserts since shifted its run right), else null
  // (erased, or moved by an erase or a rebuild).
  static constexpr uint64_t kNoHint = ~uint64_t{0};
  static constexpr uint64_t kHintReach = 8;  // slots AtHint looks on past the hint
  const RowState* FindByOrd(uint64_t ord, uint64_t* hint) const;
  RowState* AtHint(uint64_t ord, uint64_t hint) {
    const uint64_t segment = hint >> 32, slot = hint & 0xFFFFFFFFu;
    if (ord == kEmpty || segment >= segments_.size() || slot >= segments_[segment].capacity) {
      return nullptr;  // (kEmpty's row lives apart; an empty slot holds kEmpty)
    }
    const Segment& s = segments_[segment];
    // A run is sorted and ends at an empty slot (kEmpty, above every ord; the slot past the last
    // is one too), so the scan stops there at the latest. A row that moved has nearly always moved
    // by a few slots, hence the short reach.
    const uint64_t* ords = s.ords.get();
    const uint64_t last = slot + kHintReach;
    uint64_t i = slot;
    while (ords[i] < ord && i < last) ++i;
    return ords[i] == ord ? &s.rows[i] : nullptr;
  }
  void PrefetchHint(uint64_t hint) const {
    const uint64_t segment = hint >> 32, slot = hint & 0xFFFFFFFFu;
    if (segment >= segments_.size() || slot >= segments_[segment].capacity) return;
    __builtin_prefetch(&segments_[segment].ords[slot]);
    __builtin_prefetch(&segments_[segment].rows[slot]);
  }
  // Removes `key`; false if it was absent.
  bool Erase(uint64_t key);

  // Walk in ord order: for (p = Begin(); !AtEnd(p); p = Next(p)).
  Position Begin() const { return Settle({0, 0}); }
  bool AtEnd(Position p) const { return p.dir == kEndDir; }
  Position Next(Position p) const { return Settle(Advance(p)); }
  uint64_t KeyAt(Position p) const;
  RowState& RowAt(Position p);
  const RowState& RowAt(Position p) const;
  // Removes the row at p; returns the position of the row that followed it (or the end). Leaves
  // segments at their size: a walk that erases keeps its place; call Compact() after it.
  Position EraseAt(Position p);
  // Shrinks the segments that EraseAt left below their shrink point.
  void Compact();
  // Rebuilds every segment whose load is below the load a growth step leaves, at that load (the
  // memory cap gives slots back at once after a mass eviction).
  void ShrinkAll();
  // First row whose key's ord is >= OrdOf(key-to-be) `ord` (the eviction sweep resumes there).
  Position LowerBound(uint64_t ord) const;
  uint64_t OrdAt(Position p) const;

  // The table order: Mix64(key) rotated so its low 32 bits come first; a bijection of the key.
  static uint64_t OrdOf(uint64_t key) { return std::rotl(Mix64(key), 32); }
  static uint64_t KeyOf(uint64_t ord);

  // For tests: number of segments and the largest probe distance (slot - home) in the table.
  size_t segments() const { return segments_.size(); }
  uint32_t MaxDisplacement() const;

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};  // ords of empty slots (and of one real key)
  static constexpr uint32_t kEndDir = ~uint32_t{0};
  static constexpr uint32_t kMinCapacity = 8;
  static constexpr uint32_t kSentinels = 4;
  static constexpr uint32_t kMaxDepth = 20;  // directory of at most 2^20 entries

  struct Segment {
    // capacity + kSentinels entries: the ones after the last slot are kEmpty sentinels (one ends
    // every scan; the rest let the scan for the end of a run read four slots at a time).
    std::unique_ptr<uint64_t[]> ords;
    std::unique_ptr<RowState[]> rows;  // capacity entries
    uint32_t capacity = 0;             // slots
    uint32_t homes = 0;                // homes fall in [0, homes); the rest absorbs overflow
    uint32_t size = 0;
    uint32_t depth = 0;  // its ords share their top `depth` bits
    // Shrinks once size falls below this: kMaxLoad / kGrowth^2 of the capacity, and at least a
    // tenth below the size at the last rebuild (when the rows crowd one end, a rebuild at the
    // target load may not fit and end up roomier; it must not then rebuild on every erase).
    uint32_t shrink_below = 0;
    bool pending_shrink = false;  // listed in pending_shrink_
  };

  static Segment MakeSegment(uint32_t capacity, uint32_t depth);
  static uint32_t Home(const Segment& s, uint64_t ord) {
    const uint64_t bits = (ord << s.depth) >> 32;  // the 32 ord bits below the shared prefix
    return static_cast<uint32_t>((bits * s.homes) >> 32);
  }
  static uint32_t MaxRows(uint32_t capacity) { return static_cast<uint32_t>(capacity * kMaxLoad); }
  static uint64_t SegmentBytes(uint32_t capacity) {
    return (uint64_t{capacity} + kSentinels) * sizeof(uint64_t) +
           uint64_t{capacity} * sizeof(RowState);
  }
  uint32_t DirIndex(uint64_t ord) const {
    return global_depth_ == 0 ? 0 : static_cast<uint32_t>(ord >> (64 - global_depth_));
  }
  // First directory entry of the segment that dir entry `d` points to.
  uint32_t FirstDir(uint32_t d) const {
    const uint32_t span_bits = global_depth_ - segments_[dir_[d]].depth;
    return (d >> span_bits) << span_bits;
  }
  // The first occupied slot at or after p (moving on to later segments and the kEmpty-ord row).
  Position Settle(Position p) const;
  Position Advance(Position p) const { return {p.dir, p.slot + 1}; }
  // Rebuilds segment `index` with `capacity` slots (at least), keeping its rows.
  void Resize(uint32_t index, uint32_t capacity);
  // Splits segment `index` (which holds `ord`) in two by the next ord bit.
  void Split(uint32_t index, uint64_t ord);
  // Copies the rows of `from` whose ords lie in [lo, hi] into an empty `to` in order; false if
  // they do not fit before its end.
  static void SetShrinkPoint(Segment* s);
  static bool Fill(const Segment& from, uint64_t lo, uint64_t hi, Segment* to);
  // Rebuilds segment `index` smaller once its load fell below kMaxLoad / kGrowth^2; true if it did.
  bool MaybeShrink(uint32_t index);

  std::vector<Segment> segments_;
  std::vector<uint32_t> pending_shrink_;  // segments EraseAt left below their shrink point
  std::vector<uint32_t> dir_;             // top global_depth_ bits of ord -> index in segments_
  uint32_t global_depth_ = 0;
  uint64_t size_ = 0;
  // The one key whose ord equals kEmpty lives outside the segments (walked last: largest ord).
  bool has_max_row_ = false;
  RowState max_row_{};
};

}  // namespace fmps

#endif  // FMPS_PS_STORE_ROW_MAP_H_
