#include "ps/store/store.h"

#include <glog/logging.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "ps/store/store_impl.h"

namespace fmps {

// ---- RankPolicy ----

uint32_t RankPolicy::WidthFor(uint64_t count) const {
  if (levels.empty() || count < levels.front().min_count) return 0;
  size_t level = 0;
  while (level + 1 < levels.size() && levels[level + 1].min_count <= count) ++level;
  const uint32_t width = levels[level].width;
  if (level == 0 && tail_min_count) return static_cast<uint32_t>(std::min<uint64_t>(count, width));
  return width;
}

uint32_t RankPolicy::MaxWidth() const {
  uint32_t max_width = 0;
  for (const RankLevel& level : levels) max_width = std::max(max_width, level.width);
  return max_width;
}

RankPolicy RankPolicy::DiFacto(uint32_t k, uint32_t mid_rank, uint64_t min_count,
                               uint64_t mid_count, uint64_t head_count) {
  RankPolicy policy;
  policy.levels = {{min_count, mid_rank}, {mid_count, mid_rank}, {head_count, k}};
  policy.tail_min_count = true;
  return policy;
}

RankPolicy RankPolicy::Fixed(uint32_t width, uint64_t min_count) {
  RankPolicy policy;
  policy.levels = {{min_count, width}};
  return policy;
}

// ---- Store::Impl ----

Store::Impl::Impl(const StoreOptions& options)
    : options_(options),
      ftrl_(options.ftrl),
      adagrad_{options.v_lr, options.v_l2, options.adagrad_eps} {
  for (size_t i = 1; i < options.policy.levels.size(); ++i) {
    CHECK_LE(options.policy.levels[i - 1].min_count, options.policy.levels[i].min_count)
        << "RankPolicy levels must be sorted by min_count";
  }
  CHECK_LE(options.policy.MaxWidth(), 0xFFFFu) << "embedding widths travel as uint16";
  arena_of_width_.assign(options.policy.MaxWidth() + 1, 0);
  if (options.min_count > 1) {
    // Depth 4: delta = e^-4 (1.8%); the rest of the budget goes to width (eps = e / width).
    const uint64_t bytes = static_cast<uint64_t>(std::max(options.sketch_mb, 0.0) * 1048576.0);
    sketch_ = std::make_unique<CountMinSketch>(
        CountMinSketch::WithBytes(std::max<uint64_t>(bytes, 4096), 4, options.seed));
  }
  if (options.evict_after > 0) {
    // About 16 epochs per eviction window: a row goes stale after evict_after .. evict_after *
    // 17/16 pushes without a useful push.
    epoch_length_ = std::max<uint64_t>(1, options.evict_after / 16);
    evict_epochs_ = static_cast<uint32_t>(
        std::min<uint64_t>((options.evict_after + epoch_length_ - 1) / epoch_length_, 30000));
  }
  cap_bytes_ = options.max_memory_mb * 1048576;
}

bool Store::Impl::Admit(uint64_t key, uint32_t count, uint32_t* prior) {
  const uint32_t estimate = sketch_->Add(key, count);
  sketch_added_ += count;
  if (sketch_added_ >= sketch_->width()) {
    // Ageing keeps eps * N (the over-count bound) below e: a key must reach min_count within
    // roughly the last `width` occurrences counted, and old counts fade instead of saturating.
    sketch_->Halve();
    sketch_added_ = 0;
  }
  if (estimate < options_.min_count) {
    pending_pushes_ += count;
    return false;
  }
  *prior = estimate - count;
  return true;
}

uint32_t Store::Impl::ArenaFor(uint32_t width) {
  DCHECK_LT(width, arena_of_width_.size());
  if (arena_of_width_[width] != 0) return arena_of_width_[width];
  if (arenas_.size() >= EmbeddingRef::kMaxArenas) return 0;
  arenas_.push_back(std::make_unique<EmbeddingArena>(width));
  arena_of_width_[width] = static_cast<uint8_t>(arenas_.size());
  return arena_of_width_[width];
}

uint32_t Store::Impl::AllocateRef(uint32_t width) {
  const uint32_t arena = ArenaFor(width);
  if (arena == 0) return 0;
  const uint32_t slot = arenas_[arena - 1]->Allocate();
  if (slot == EmbeddingArena::kFull) return 0;
  return EmbeddingRef::Pack(arena, slot);
}

void Store::Impl::FreeEmbedding(uint32_t ref) {
  embedding_floats_ -= WidthOf(ref);
  --embeddings_;
  arenas_[EmbeddingRef::Arena(ref) - 1]->Release(EmbeddingRef::Slot(ref));
}

void Store::Impl::ReleaseEmbedding(RowState& row) {
  const uint32_t ref = row.ref();
  const float z = EmbeddingOf(ref)[0];
  FreeEmbedding(ref);
  row.set_inline_z(z);
  row.n_bits &= ~RowState::kEmbeddedBit;
}

void Store::Impl::WidenEmbedding(RowState& row, uint64_t key, uint32_t width) {
  const uint32_t old_ref = row.ref();
  const uint32_t old_width = WidthOf(old_ref);
  DCHECK_GT(width, old_width);
  const uint32_t ref = AllocateRef(width);
  if (ref == 0) {
    // Out of slots or widths: keep what the row has; training goes on with a narrower row.
    if (failed_allocations_++ == 0)
      LOG(WARNING) << "Store: embedding arena full for width " << width;
    return;
  }
  float* row_floats = EmbeddingOf(ref);
  float* v = row_floats + 1;
  float* acc = v + width;
  if (old_ref != 0) {
    const float* old = EmbeddingOf(old_ref);
    row_floats[0] = old[0];
    std::memcpy(v, old + 1, old_width * sizeof(float));
    std::memcpy(acc, old + 1 + old_width, old_width * sizeof(float));
    FreeEmbedding(old_ref);
  } else {
    row_floats[0] = row.inline_z();
  }
  for (uint32_t d = old_width; d < width; ++d) {
    v[d] = InitialEmbeddingValue(options_.seed, key, d, options_.v_init_scale);
    acc[d] = 0.0f;
  }
  row.z_or_ref = ref;
  row.n_bits |= RowState::kEmbeddedBit;
  ++embeddings_;
  embedding_floats_ += width;
}

// Order of a push for one key, chosen so the worker's gradients land on what it saw:
// count, FTRL on w, then (if w is now 0) release the embedding and drop its gradient (V = 0 when
// w = 0), else Adagrad on the common prefix of the pushed and current widths, and only then
// admission or growth to the width the count earns; new dims start from their initial values.
void Store::Impl::PushOne(RowState& row, uint64_t key, float grad_w, const float* grad_v,
                          uint32_t grad_width, uint32_t count) {
  row.count =
      static_cast<uint16_t>(std::min<uint32_t>(RowState::kMaxCount, uint32_t{row.count} + count));
  float* embedding = row.embedded() ? EmbeddingOf(row.z_or_ref) : nullptr;
  float z = embedding != nullptr ? embedding[0] : row.inline_z();
  float n = row.n();
  // w is not stored: FTRL's closed form of (z, n) gives the same bits every time.
  const float root_n = std::sqrt(n);
  float w = FtrlWeightOfRoot(z, root_n, ftrl_);
  const bool was_nonzero = w != 0.0f;
  FtrlStepFromRoot(z, n, root_n, w, grad_w, ftrl_);
  row.set_n(n);
  if (embedding != nullptr) {
    embedding[0] = z;
  } else {
    row.set_inline_z(z);
  }
  const bool is_nonzero = w != 0.0f;
  nonzero_w_ += is_nonzero;
  nonzero_w_ -= was_nonzero;
  // Only a push that leaves w != 0 renews the stamp: rows not pushed for evict_after pushes and
  // rows whose w stayed 0 that long both go stale.
  if (is_nonzero) row.stamp = epoch_;
  if (!is_nonzero) {
    if (embedding != nullptr) ReleaseEmbedding(row);
    return;
  }
  uint32_t width = 0;
  if (embedding != nullptr) {
    width = WidthOf(row.z_or_ref);
    float* v = embedding + 1;
    AdagradStep(v, v + width, grad_v, std::min(width, grad_width), adagrad_);
  }
  // A saturated 16-bit count means "at least 65535": every level is reached.
  const uint32_t target =
      options_.policy.WidthFor(row.count == RowState::kMaxCount ? ~uint64_t{0} : row.count);
  if (target > width) WidenEmbedding(row, key, target);  // never shrinks
}

// Batches are answered in a software pipeline: a table far larger than the cache makes every
// key's key line, row line and arena row a miss, so each is requested a few keys ahead:
// kFarAhead keys ahead the home lines, kRowAhead ahead the row found, kArenaAhead ahead its
// embedding. The misses of several keys then overlap instead of following one another.
namespace {
constexpr size_t kFarAhead = 16;
constexpr size_t kRowAhead = 8;
constexpr size_t kArenaAhead = 4;

// Each key's RowMap ord, hashed once for its prefetch and its find (valid until the next call on
// this thread).
std::span<const uint64_t> OrdsOf(std::span<const uint64_t> keys) {
  thread_local std::vector<uint64_t> ords;
  ords.resize(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) ords[i] = RowMap::OrdOf(keys[i]);
  return ords;
}
}  // namespace

void Store::Impl::PrefetchEmbedding(const RowState* row) const {
  if (row == nullptr || !row->embedded()) return;
  const float* embedding = EmbeddingOf(row->z_or_ref);
  __builtin_prefetch(embedding);
  __builtin_prefetch(embedding + 2 * WidthOf(row->z_or_ref));  // the row may span two lines
}

void Store::Impl::Pull(std::span<const uint64_t> keys, std::vector<float>* values,
                       std::vector<uint16_t>* widths, std::vector<uint64_t>* hints) const {
  const size_t n = keys.size();
  const std::span<const uint64_t> ords = OrdsOf(keys);
  uint64_t* hint = nullptr;
  if (hints != nullptr) {
    hints->resize(n);
    hint = hints->data();
  }
  // Rows found kRowAhead keys ahead (Pull does not mutate, so the pointers stay valid).
  std::array<const RowState*, kRowAhead> found{};
  auto find_ahead = [&](size_t j) {
    if (j >= n) return;
    const RowState* row =
        hint != nullptr ? map_.FindByOrd(ords[j], &hint[j]) : map_.FindByOrd(ords[j]);
    found[j % kRowAhead] = row;
    if (row != nullptr) __builtin_prefetch(row);
  };
  for (size_t j = 0; j < std::min(kFarAhead, n); ++j) map_.PrefetchByOrd(ords[j]);
  for (size_t j = 0; j < kRowAhead; ++j) find_ahead(j);
  for (size_t j = 0; j < std::min(kArenaAhead, n); ++j) PrefetchEmbedding(found[j]);
  for (size_t i = 0; i < n; ++i) {
    const RowState* row = found[i % kRowAhead];
    if (i + kFarAhead < n) map_.PrefetchByOrd(ords[i + kFarAhead]);
    find_ahead(i + kRowAhead);  // reuses the slot of key i: `row` was read above
    if (i + kArenaAhead < n) PrefetchEmbedding(found[(i + kArenaAhead) % kRowAhead]);
    if (row == nullptr) {
      values->push_back(0.0f);
      widths->push_back(0);
      continue;
    }
    if (!row->embedded()) {
      values->push_back(FtrlWeight(row->inline_z(), row->n(), ftrl_));
      widths->push_back(0);
      continue;
    }
    const float* embedding = EmbeddingOf(row->z_or_ref);
    const uint32_t width = WidthOf(row->z_or_ref);
    values->push_back(FtrlWeight(embedding[0], row->n(), ftrl_));
    widths->push_back(static_cast<uint16_t>(width));
    values->insert(values->end(), embedding + 1, embedding + 1 + width);
  }
}

Status Store::Impl::Push(std::span<const uint64_t> keys, std::span<const float> grads,
                         std::span<const uint16_t> widths, std::span<const uint32_t> counts,
                         std::span<const uint64_t> hints) {
  if (!hints.empty() && hints.size() != keys.size()) {
    return Status::InvalidArgument("Store::Push: " + std::to_string(keys.size()) + " keys but " +
                                   std::to_string(hints.size()) + " hints");
  }
  if (widths.size() != keys.size() || counts.size() != keys.size()) {
    return Status::InvalidArgument("Store::Push: " + std::to_string(keys.size()) + " keys but " +
                                   std::to_string(widths.size()) + " widths and " +
                                   std::to_string(counts.size()) + " counts");
  }
  uint64_t expected = keys.size();
  for (const uint16_t width : widths) expected += width;
  if (grads.size() != expected) {
    return Status::InvalidArgument("Store::Push: " + std::to_string(grads.size()) +
                                   " gradients, the widths call for " + std::to_string(expected));
  }
  ++pushes_;
  epoch_ = static_cast<uint16_t>(pushes_ / epoch_length_);
  if (cap_bytes_ != 0) {
    // Room for this push before it lands: its rows, their widest embeddings and a grown index.
    const uint64_t incoming = keys.size() * (1 + options_.policy.MaxWidth() * 2) * sizeof(float) +
                              map_.GrowthBytes(keys.size());
    if (LiveBytes() + incoming >= CapTrigger()) EvictColdest(incoming);
  }
  // Three passes, each key hashed once and looked up once unless it is new:
  // 1. find every key's row, the misses of several keys overlapped (the pipeline of Pull); nothing
  //    is inserted before pass 3, so the row pointers stay valid;
  // 2. update the rows found, in order, their embeddings prefetched a few keys ahead;
  // 3. admit and insert the new keys, in order (an insertion shifts rows, so it comes last).
  // Keys of one push are distinct (a worker pushes what it localized), so the passes give what
  // one pass in key order gives.
  const size_t n = keys.size();
  const std::span<const uint64_t> ords = OrdsOf(keys);
  thread_local std::vector<RowState*> rows;
  thread_local std::vector<std::pair<uint32_t, uint64_t>> fresh;  // (key index, gradient offset)
  rows.resize(n);
  fresh.clear();
  if (!hints.empty()) {
    // The pull of these keys said where their rows were: checked, and looked up only if moved.
    for (size_t j = 0; j < std::min(kFarAhead, n); ++j) map_.PrefetchHint(hints[j]);
    for (size_t i = 0; i < n; ++i) {
      if (i + kFarAhead < n) map_.PrefetchHint(hints[i + kFarAhead]);
      RowState* row = map_.AtHint(ords[i], hints[i]);
      rows[i] = row != nullptr ? row : map_.FindByOrd(ords[i]);
    }
  } else {
    for (size_t j = 0; j < std::min(kFarAhead, n); ++j) map_.PrefetchByOrd(ords[j]);
    for (size_t i = 0; i < n; ++i) {
      if (i + kFarAhead < n) map_.PrefetchByOrd(ords[i + kFarAhead]);
      rows[i] = map_.FindByOrd(ords[i]);
    }
  }
  // Pass 2 is a pipeline of its own: a batch's rows do not all stay in the cache between the
  // passes, so each row is requested again kRowAhead keys ahead, its embedding kArenaAhead ahead.
  for (size_t j = 0; j < std::min(kRowAhead, n); ++j) {
    if (rows[j] != nullptr) __builtin_prefetch(rows[j]);
  }
  for (size_t j = 0; j < std::min(kArenaAhead, n); ++j) PrefetchEmbedding(rows[j]);
  uint64_t offset = 0;
  for (size_t i = 0; i < n; ++i) {
    if (i + kRowAhead < n && rows[i + kRowAhead] != nullptr)
      __builtin_prefetch(rows[i + kRowAhead]);
    if (i + kArenaAhead < n) PrefetchEmbedding(rows[i + kArenaAhead]);
    const float* key_grads = grads.data() + offset;
    if (rows[i] == nullptr) {
      fresh.emplace_back(static_cast<uint32_t>(i), offset);
    } else {
      PushOne(*rows[i], keys[i], key_grads[0], key_grads + 1, widths[i], counts[i]);
    }
    offset += 1 + widths[i];
  }
  for (size_t j = 0; j < fresh.size(); ++j) {
    if (j + kRowAhead < fresh.size()) map_.PrefetchRunByOrd(ords[fresh[j + kRowAhead].first]);
    const auto [i, grad_offset] = fresh[j];
    const float* key_grads = grads.data() + grad_offset;
    uint32_t prior = 0;
    if (sketch_ != nullptr && map_.FindByOrd(ords[i]) == nullptr &&
        !Admit(keys[i], counts[i], &prior)) {
      continue;  // not admitted yet: only the sketch counted it, the gradient is dropped
    }
    bool inserted = false;
    RowState* row = map_.FindOrInsertByOrd(ords[i], &inserted);
    if (inserted) {
      // The admitting push's gradient is applied: it was computed at w = 0, which is what the
      // worker pulled. The row starts with the occurrences the sketch counted before.
      row->count = static_cast<uint16_t>(std::min<uint32_t>(prior, RowState::kMaxCount));
      row->stamp = epoch_;
    }
    PushOne(*row, keys[i], key_grads[0], key_grads + 1, widths[i], counts[i]);
  }
  // Twice the keys pushed (plus a floor): the sweep passes over the rows faster than pushes can
  // add new ones, and the work per push stays proportional to the push.
  Maintain(2 * keys.size() + 16);
  return Status::OK();
}

RowMap::Position Store::Impl::EvictAt(RowMap::Position p) {
  RowState& row = map_.RowAt(p);
  nonzero_w_ -= W(row) != 0.0f;
  if (row.embedded()) FreeEmbedding(row.ref());
  ++evicted_;
  return map_.EraseAt(p);
}

void Store::Impl::Maintain(uint64_t budget) {
  if (evict_epochs_ == 0 && cap_bytes_ == 0) return;
  RowMap::Position p = map_.LowerBound(sweep_ord_);
  for (uint64_t step = 0; step < budget && map_.size() > 0; ++step) {
    if (map_.AtEnd(p)) p = map_.Begin();
    RowState& row = map_.RowAt(p);
    const uint16_t age = Age(row);
    if (evict_epochs_ != 0 && age >= evict_epochs_) {
      p = EvictAt(p);  // the next row: check it next
      continue;
    }
    // Stamps older than half the clock are pinned there, so they never wrap round to "fresh".
    if (age > 0x8000) row.stamp = static_cast<uint16_t>(epoch_ - 0x8000);
    p = map_.Next(p);
  }
  sweep_ord_ = map_.AtEnd(p) ? 0 : map_.OrdAt(p);
  map_.Compact();
  if (cap_bytes_ != 0 && LiveBytes() >= CapTrigger()) EvictColdest(0);
}

// Evicts the oldest-stamped rows until LiveBytes() + reserve is under 85% of the cap: one pass
// builds a histogram of bytes per age, a second evicts every row above the cut-off age (and rows of
// the cut-off age until enough is freed). Rare: each call frees a tenth of the cap.
void Store::Impl::EvictColdest(uint64_t reserve) {
  const uint64_t live = LiveBytes() + reserve;
  const uint64_t target = cap_bytes_ / 20 * 17;
  const uint64_t fixed = sketch_ != nullptr ? sketch_->bytes() : 0;
  uint64_t need = live - std::min(live, target);
  // A row frees its share of the table (at the load the table is at) and its arena row.
  const uint64_t slot_bytes = map_.bytes() / std::max<uint64_t>(1, map_.size());
  auto bytes_of = [&](const RowState& row) {
    return slot_bytes + uint64_t{WidthOf(row.ref())} * 2 * sizeof(float) +
           (row.embedded() ? sizeof(float) : 0);
  };
  std::vector<uint64_t> bytes_by_age(0x10000, 0);
  for (RowMap::Position p = map_.Begin(); !map_.AtEnd(p); p = map_.Next(p)) {
    const RowState& row = map_.RowAt(p);
    bytes_by_age[Age(row)] += bytes_of(row);
  }
  uint32_t cutoff = 0x10000;  // rows with Age > cutoff all go; of Age == cutoff, up to `partial`
  uint64_t freed = 0;
  while (cutoff > 0 && freed < need) {
    --cutoff;
    freed += bytes_by_age[cutoff];
  }
  uint64_t partial = need - std::min(need, freed - bytes_by_age[cutoff]);
  const uint64_t before = evicted_;
  for (RowMap::Position p = map_.Begin(); !map_.AtEnd(p);) {
    const RowState& row = map_.RowAt(p);
    const uint32_t age = Age(row);
    if (age > cutoff || (age == cutoff && partial > 0)) {
      if (age == cutoff) partial -= std::min(partial, bytes_of(row));
      p = EvictAt(p);
      continue;
    }
    p = map_.Next(p);
  }
  // Give the table's slots back now (segments rebuilt at the load growth leaves), not only once
  // a segment lost a tenth of its rows: the cap counts them.
  map_.Compact();
  map_.ShrinkAll();
  const uint64_t count = evicted_ - before;
  evicted_for_memory_ += count;
  LOG(INFO) << "Store: memory cap " << cap_bytes_ / 1048576 << " MiB reached (" << live / 1048576
            << " MiB held): evicted the " << count
            << " coldest rows (idle >= " << cutoff * epoch_length_ << " pushes); " << map_.size()
            << " rows and " << LiveBytes() / 1048576 << " MiB left";
  // A cap that throws out most of the model at each pass leaves little to train or serve.
  if (count > map_.size() && !warned_most_evicted_) {
    warned_most_evicted_ = true;
    LOG(WARNING) << "Store: the memory cap of " << cap_bytes_ / 1048576 << " MiB forced the "
                 << "eviction of most of the model (" << count << " of " << count + map_.size()
                 << " rows); raise --store_memory_mb";
  }
  if (fixed >= target && !warned_fixed_) {
    warned_fixed_ = true;
    LOG(WARNING) << "Store: the admission sketch alone takes " << fixed / 1048576 << " MiB of the "
                 << cap_bytes_ / 1048576
                 << " MiB cap; raise --store_memory_mb or lower --sketch_mb";
  }
}

uint64_t Store::Impl::LiveBytes() const {
  uint64_t bytes = map_.bytes();
  for (const auto& arena : arenas_)
    bytes += arena->live_rows() * arena->row_floats() * sizeof(float);
  if (sketch_ != nullptr) bytes += sketch_->bytes();
  return bytes;
}

StoreStats Store::Impl::Stats() const {
  StoreStats stats;
  stats.keys = map_.size();
  stats.nonzero_w = nonzero_w_;
  stats.embeddings = embeddings_;
  stats.embedding_floats = embedding_floats_;
  stats.bytes = map_.bytes() + arenas_.capacity() * sizeof(arenas_[0]) + arena_of_width_.capacity();
  for (const auto& arena : arenas_) stats.bytes += arena->bytes() + sizeof(EmbeddingArena);
  stats.sketch_bytes = sketch_ != nullptr ? sketch_->bytes() : 0;
  stats.bytes += stats.sketch_bytes;
  stats.evicted = evicted_;
  stats.evicted_for_memory = evicted_for_memory_;
  stats.pending_pushes = pending_pushes_;
  stats.by_width.push_back({0, stats.keys - stats.embeddings, map_.bytes()});
  for (const auto& arena : arenas_)
    stats.by_width.push_back({arena->width(), arena->live_rows(), arena->bytes()});
  std::sort(stats.by_width.begin() + 1, stats.by_width.end(),
            [](const auto& a, const auto& b) { return a.width < b.width; });
  return stats;
}

void Store::Impl::ForEach(
    const std::function<void(uint64_t, float, std::span<const float>)>& fn) const {
  for (RowMap::Position p = map_.Begin(); !map_.AtEnd(p); p = map_.Next(p)) {
    const RowState& row = map_.RowAt(p);
    const uint32_t width = WidthOf(row.ref());
    const float* v = width > 0 ? EmbeddingOf(row.ref()) + 1 : nullptr;
    fn(map_.KeyAt(p), W(row), std::span<const float>(v, width));
  }
}

// ---- Store ----

Store::Store(const StoreOptions& options) : impl_(std::make_unique<Impl>(options)) {}
Store::~Store() = default;

void Store::Pull(std::span<const uint64_t> keys, std::vector<float>* values,
                 std::vector<uint16_t>* widths, std::vector<uint64_t>* hints) const {
  impl_->Pull(keys, values, widths, hints);
}

void Store::SetLearningRateScale(float scale) { impl_->SetLearningRateScale(scale); }

Status Store::Push(std::span<const uint64_t> keys, std::span<const float> grads,
                   std::span<const uint16_t> widths, std::span<const uint32_t> counts,
                   std::span<const uint64_t> hints) {
  return impl_->Push(keys, grads, widths, counts, hints);
}

StoreStats Store::Stats() const { return impl_->Stats(); }

std::string Store::Serialize() const { return impl_->Serialize(); }

Status Store::Deserialize(std::string_view bytes, const std::string& source_name) {
  auto fresh = std::make_unique<Impl>(impl_->options());
  FMPS_RETURN_IF_ERROR(fresh->Load(bytes, source_name));
  impl_ = std::move(fresh);
  return Status::OK();
}

Status Store::DeserializeSelected(std::span<const ShardSource> shards,
                                  const std::function<bool(uint64_t key)>& keep) {
  auto fresh = std::make_unique<Impl>(impl_->options());
  for (const ShardSource& shard : shards)
    FMPS_RETURN_IF_ERROR(fresh->Load(shard.bytes, shard.name, keep));
  impl_ = std::move(fresh);
  return Status::OK();
}

void Store::ForEach(
    const std::function<void(uint64_t key, float w, std::span<const float> v)>& fn) const {
  impl_->ForEach(fn);
}

}  // namespace fmps
