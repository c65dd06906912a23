#include "ps/store/row_map.h"

#include <glog/logging.h>

#include <algorithm>
#include <cstring>

namespace fmps {
namespace {

// Multiplicative inverse of an odd number modulo 2^64 (Newton: each step doubles the good bits).
constexpr uint64_t InverseOdd(uint64_t a) {
  uint64_t inverse = a;  // right in the low 3 bits for any odd a
  for (int i = 0; i < 5; ++i) inverse *= 2 - a * inverse;
  return inverse;
}
static_assert(InverseOdd(0xbf58476d1ce4e5b9ULL) * 0xbf58476d1ce4e5b9ULL == 1);

// Undoes x ^= x >> shift.
constexpr uint64_t UnXorShift(uint64_t x, int shift) {
  uint64_t result = x;
  for (int s = shift; s < 64; s += shift) result = x ^ (result >> shift);
  return result;
}

uint32_t Grown(uint32_t capacity) {
  return std::max(capacity + 4, static_cast<uint32_t>(capacity * RowMap::kGrowth) + 1);
}

// Capacity at which `rows` rows sit at the load a growth step leaves (kMaxLoad / kGrowth).
uint32_t CapacityFor(uint64_t rows, uint32_t min_capacity) {
  const auto capacity = static_cast<uint64_t>(rows * RowMap::kGrowth / RowMap::kMaxLoad) + 1;
  return static_cast<uint32_t>(std::max<uint64_t>(capacity, min_capacity));
}

}  // namespace

uint64_t RowMap::KeyOf(uint64_t ord) {
  uint64_t x = std::rotr(ord, 32);  // back to Mix64(key), then Mix64's steps in reverse
  x = UnXorShift(x, 31);
  x *= InverseOdd(0x94d049bb133111ebULL);
  x = UnXorShift(x, 27);
  x *= InverseOdd(0xbf58476d1ce4e5b9ULL);
  return UnXorShift(x, 30);
}

RowMap::RowMap() { Clear(); }

void RowMap::Clear() {
  segments_.clear();
  segments_.shrink_to_fit();
  segments_.push_back(MakeSegment(kMinCapacity, 0));
  dir_.assign(1, 0);
  dir_.shrink_to_fit();
  global_depth_ = 0;
  pending_shrink_.clear();
  size_ = 0;
  has_max_row_ = false;
  max_row_ = RowState{};
}

RowMap::Segment RowMap::MakeSegment(uint32_t capacity, uint32_t depth) {
  Segment s;
  s.ords = std::make_unique_for_overwrite<uint64_t[]>(size_t{capacity} + kSentinels);
  std::fill_n(s.ords.get(), size_t{capacity} + kSentinels, kEmpty);
  s.rows = std::make_unique_for_overwrite<RowState[]>(capacity);
  s.capacity = capacity;
  // A short tail past the last home absorbs the run that would wrap round: the table never wraps,
  // which keeps every segment sorted and the scans free of a modulo.
  s.homes = capacity - std::min<uint32_t>(32, capacity / 8);
  s.depth = depth;
  return s;
}

uint64_t RowMap::bytes() const {
  uint64_t bytes = segments_.capacity() * sizeof(Segment) + dir_.capacity() * sizeof(uint32_t);
  for (const Segment& s : segments_) bytes += SegmentBytes(s.capacity);
  return bytes;
}

uint64_t RowMap::GrowthBytes(uint64_t extra_rows) const {
  // New rows at the lowest load a segment keeps (kMaxLoad / kGrowth^2, where it shrinks).
  const double lowest_load = kMaxLoad / (kGrowth * kGrowth);
  const auto rows = static_cast<uint64_t>(extra_rows * kSlotBytes / lowest_load) + 1;
  // A rebuild holds the old segment and its successor(s) at once: a growth (old + 1.1 x old) or
  // a split (old + two halves of about the old size together).
  const uint64_t largest = std::min<uint64_t>(kMaxSegmentRows, size_ + extra_rows);
  const uint64_t rebuild = 2 * SegmentBytes(Grown(CapacityFor(largest, kMinCapacity)));
  return rows + rebuild;
}

void RowMap::PrefetchByOrd(uint64_t ord) const {
  const Segment& s = segments_[dir_[DirIndex(ord)]];
  const uint32_t home = Home(s, ord);
  __builtin_prefetch(&s.ords[home]);
  __builtin_prefetch(&s.rows[home]);
}

void RowMap::PrefetchRunByOrd(uint64_t ord) const {
  const Segment& s = segments_[dir_[DirIndex(ord)]];
  const uint32_t home = Home(s, ord);
  // A run at this load is a few tens of slots: two more lines of keys, three of row states.
  const char* keys = reinterpret_cast<const char*>(&s.ords[home]);
  const char* rows = reinterpret_cast<const char*>(&s.rows[home]);
  for (int line = 1; line <= 2; ++line) __builtin_prefetch(keys + 64 * line);
  for (int line = 1; line <= 3; ++line) __builtin_prefetch(rows + 64 * line);
}

const RowState* RowMap::FindByOrd(uint64_t ord) const {
  if (ord == kEmpty) return has_max_row_ ? &max_row_ : nullptr;
  const Segment& s = segments_[dir_[DirIndex(ord)]];
  const uint64_t* ords = s.ords.get();
  uint32_t i = Home(s, ord);
  while (ords[i] < ord) ++i;  // the kEmpty sentinel after the last slot ends every scan
  return ords[i] == ord ? &s.rows[i] : nullptr;
}

const RowState* RowMap::FindByOrd(uint64_t ord, uint64_t* hint) const {
  *hint = kNoHint;
  if (ord == kEmpty) return has_max_row_ ? &max_row_ : nullptr;
  const uint32_t index = dir_[DirIndex(ord)];
  const Segment& s = segments_[index];
  const uint64_t* ords = s.ords.get();
  uint32_t i = Home(s, ord);
  while (ords[i] < ord) ++i;
  if (ords[i] != ord) return nullptr;
  *hint = (uint64_t{index} << 32) | i;
  return &s.rows[i];
}

RowState* RowMap::FindOrInsertByOrd(uint64_t ord, bool* inserted) {
  if (ord == kEmpty) {
    *inserted = !has_max_row_;
    if (!has_max_row_) {
      has_max_row_ = true;
      max_row_ = RowState{};
      ++size_;
    }
    return &max_row_;
  }
  for (;;) {
    const uint32_t index = dir_[DirIndex(ord)];
    Segment& s = segments_[index];
    uint64_t* ords = s.ords.get();
    uint32_t i = Home(s, ord);
    while (ords[i] < ord) ++i;
    if (ords[i] == ord) {
      *inserted = false;
      return &s.rows[i];
    }
    if (s.size >= kMaxSegmentRows && s.depth < kMaxDepth) {
      Split(index, ord);
      continue;
    }
    if (s.size + 1 > MaxRows(s.capacity)) {
      Resize(index, Grown(s.capacity));
      continue;
    }
    // The end of the run, four slots per branch (runs are tens of slots long at this load).
    uint32_t empty = i;
    while ((ords[empty] != kEmpty) & (ords[empty + 1] != kEmpty) & (ords[empty + 2] != kEmpty) &
           (ords[empty + 3] != kEmpty)) {
      empty += 4;
    }
    while (ords[empty] != kEmpty) ++empty;
    if (empty == s.capacity) {  // the run reaches the end: no room to shift into
      Resize(index, Grown(s.capacity));
      continue;
    }
    // Shift the rest of the run one slot right; the new row takes its sorted place.
    std::memmove(ords + i + 1, ords + i, size_t{empty - i} * sizeof(uint64_t));
    std::memmove(static_cast<void*>(&s.rows[i + 1]), &s.rows[i],
                 size_t{empty - i} * sizeof(RowState));
    ords[i] = ord;
    s.rows[i] = RowState{};
    ++s.size;
    ++size_;
    *inserted = true;
    return &s.rows[i];
  }
}

bool RowMap::Erase(uint64_t key) {
  const uint64_t ord = OrdOf(key);
  const Position p = LowerBound(ord);
  if (AtEnd(p) || OrdAt(p) != ord) return false;
  EraseAt(p);
  Compact();
  return true;
}

RowMap::Position RowMap::EraseAt(Position p) {
  DCHECK(!AtEnd(p));
  if (p.dir == dir_.size()) {
    has_max_row_ = false;
    --size_;
    return {kEndDir, 0};
  }
  const uint32_t index = dir_[p.dir];
  Segment& s = segments_[index];
  uint64_t* ords = s.ords.get();
  const uint32_t hole = p.slot;
  DCHECK_NE(ords[hole], kEmpty);
  // Backward shift: the rows after the hole that sit past their home move back one slot.
  uint32_t end = hole + 1;
  while (ords[end] != kEmpty && Home(s, ords[end]) < end) ++end;
  std::memmove(ords + hole, ords + hole + 1, size_t{end - hole - 1} * sizeof(uint64_t));
  std::memmove(static_cast<void*>(&s.rows[hole]), &s.rows[hole + 1],
               size_t{end - hole - 1} * sizeof(RowState));
  ords[end - 1] = kEmpty;
  --s.size;
  --size_;
  if (s.size < s.shrink_below && !s.pending_shrink) {
    s.pending_shrink = true;
    pending_shrink_.push_back(index);
  }
  return Settle(p);
}

void RowMap::Compact() {
  for (const uint32_t index : pending_shrink_) {
    segments_[index].pending_shrink = false;
    MaybeShrink(index);
  }
  pending_shrink_.clear();
}

RowMap::Position RowMap::LowerBound(uint64_t ord) const {
  if (ord == kEmpty) return Settle({static_cast<uint32_t>(dir_.size()), 0});
  const uint32_t d = DirIndex(ord);
  const Segment& s = segments_[dir_[d]];
  uint32_t i = Home(s, ord);
  while (s.ords[i] < ord) ++i;
  return Settle({FirstDir(d), i});
}

uint64_t RowMap::OrdAt(Position p) const {
  return p.dir == dir_.size() ? kEmpty : segments_[dir_[p.dir]].ords[p.slot];
}

uint64_t RowMap::KeyAt(Position p) const { return KeyOf(OrdAt(p)); }

RowState& RowMap::RowAt(Position p) {
  return p.dir == dir_.size() ? max_row_ : segments_[dir_[p.dir]].rows[p.slot];
}

const RowState& RowMap::RowAt(Position p) const {
  return p.dir == dir_.size() ? max_row_ : segments_[dir_[p.dir]].rows[p.slot];
}

RowMap::Position RowMap::Settle(Position p) const {
  while (p.dir < dir_.size()) {
    const Segment& s = segments_[dir_[p.dir]];
    while (p.slot < s.capacity && s.ords[p.slot] == kEmpty) ++p.slot;
    if (p.slot < s.capacity) return p;
    p.dir += 1u << (global_depth_ - s.depth);
    p.slot = 0;
  }
  if (p.dir == dir_.size() && p.slot == 0 && has_max_row_) return p;
  return {kEndDir, 0};
}

bool RowMap::Fill(const Segment& from, uint64_t lo, uint64_t hi, Segment* to) {
  uint32_t next = 0;
  for (uint32_t j = 0; j < from.capacity; ++j) {
    const uint64_t ord = from.ords[j];
    if (ord == kEmpty || ord < lo || ord > hi) continue;
    const uint32_t pos = std::max(Home(*to, ord), next);
    if (pos >= to->capacity) return false;
    to->ords[pos] = ord;
    to->rows[pos] = from.rows[j];
    next = pos + 1;
    ++to->size;
  }
  return true;
}

void RowMap::Resize(uint32_t index, uint32_t capacity) {
  Segment& s = segments_[index];
  for (;; capacity = Grown(capacity)) {
    Segment rebuilt = MakeSegment(capacity, s.depth);
    if (Fill(s, 0, kEmpty, &rebuilt)) {
      s = std::move(rebuilt);
      SetShrinkPoint(&s);
      return;
    }
  }
}

void RowMap::ShrinkAll() {
  for (uint32_t index = 0; index < segments_.size(); ++index) {
    const uint32_t capacity = CapacityFor(segments_[index].size, kMinCapacity);
    if (capacity + capacity / 32 < segments_[index].capacity) Resize(index, capacity);
  }
}

void RowMap::SetShrinkPoint(Segment* s) {
  const auto by_load = static_cast<uint32_t>(s->capacity * (kMaxLoad / (kGrowth * kGrowth)));
  s->shrink_below = std::min(by_load, s->size - s->size / 10);
}

bool RowMap::MaybeShrink(uint32_t index) {
  const Segment& s = segments_[index];
  if (s.capacity <= kMinCapacity) return false;
  if (s.size >= s.shrink_below) return false;
  Resize(index, CapacityFor(s.size, kMinCapacity));
  return true;
}

void RowMap::Split(uint32_t index, uint64_t ord) {
  const uint32_t depth = segments_[index].depth;
  if (depth == global_depth_) {  // the directory doubles: every entry splits in two
    std::vector<uint32_t> doubled(dir_.size() * 2);
    for (size_t i = 0; i < doubled.size(); ++i) doubled[i] = dir_[i >> 1];
    dir_ = std::move(doubled);
    ++global_depth_;
  }
  const uint64_t prefix = depth == 0 ? 0 : ord >> (64 - depth);
  const uint64_t lo = depth == 0 ? 0 : prefix << (64 - depth);
  const uint64_t half = uint64_t{1} << (63 - depth);
  const Segment& s = segments_[index];
  uint64_t left_rows = 0;
  for (uint32_t j = 0; j < s.capacity; ++j)
    left_rows += s.ords[j] != kEmpty && s.ords[j] < lo + half;
  auto build = [&](uint64_t from, uint64_t to, uint64_t rows) {
    for (uint32_t capacity = CapacityFor(rows, kMinCapacity);; capacity = Grown(capacity)) {
      Segment part = MakeSegment(capacity, depth + 1);
      if (Fill(s, from, to, &part)) return part;
    }
  };
  Segment left = build(lo, lo + half - 1, left_rows);
  Segment right = build(lo + half, lo + (half - 1) + half, s.size - left_rows);
  SetShrinkPoint(&left);
  SetShrinkPoint(&right);
  segments_[index] = std::move(left);
  segments_.push_back(std::move(right));
  const auto right_index = static_cast<uint32_t>(segments_.size() - 1);
  const uint32_t span = 1u << (global_depth_ - depth);
  const auto first = static_cast<uint32_t>(prefix << (global_depth_ - depth));
  for (uint32_t i = first + span / 2; i < first + span; ++i) dir_[i] = right_index;
}

uint32_t RowMap::MaxDisplacement() const {
  uint32_t max = 0;
  for (const Segment& s : segments_) {
    for (uint32_t j = 0; j < s.capacity; ++j) {
      if (s.ords[j] != kEmpty) max = std::max(max, j - Home(s, s.ords[j]));
    }
  }
  return max;
}

}  // namespace fmps
