#include "ps/store/store.h"

#include <glog/logging.h>

#include <algorithm>
#include <cstring>
#include <string>

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

RankPolicy RankPolicy::DiFacto(uint32_t k, uint32_t mid_rank, uint64_t min_count, uint64_t mid_count,
                               uint64_t head_count) {
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
      ftrl_{options.ftrl_alpha, options.ftrl_beta, options.ftrl_l1, options.ftrl_l2},
      adagrad_{options.v_lr, options.v_l2, options.adagrad_eps} {
  for (size_t i = 1; i < options.policy.levels.size(); ++i) {
    CHECK_LE(options.policy.levels[i - 1].min_count, options.policy.levels[i].min_count)
        << "RankPolicy levels must be sorted by min_count";
  }
  CHECK_LE(options.policy.MaxWidth(), 0xFFFFu) << "embedding widths travel as uint16";
  arena_of_width_.assign(options.policy.MaxWidth() + 1, 0);
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

void Store::Impl::ReleaseEmbedding(BaseRow& row) {
  const uint32_t ref = row.embedding;
  embedding_floats_ -= WidthOf(ref);
  --embeddings_;
  arenas_[EmbeddingRef::Arena(ref) - 1]->Release(EmbeddingRef::Slot(ref));
  row.embedding = 0;
}

void Store::Impl::WidenEmbedding(BaseRow& row, uint32_t width) {
  const uint32_t old_ref = row.embedding;
  const uint32_t old_width = WidthOf(old_ref);
  DCHECK_GT(width, old_width);
  const uint32_t ref = AllocateRef(width);
  if (ref == 0) {
    // Out of slots or widths: keep what the row has; training goes on with a narrower row.
    if (failed_allocations_++ == 0) LOG(WARNING) << "Store: embedding arena full for width " << width;
    return;
  }
  float* v = EmbeddingOf(ref);
  float* acc = v + width;
  if (old_ref != 0) {
    const float* old_v = EmbeddingOf(old_ref);
    std::memcpy(v, old_v, old_width * sizeof(float));
    std::memcpy(acc, old_v + old_width, old_width * sizeof(float));
    ReleaseEmbedding(row);
  }
  const uint64_t key = row.key();
  for (uint32_t d = old_width; d < width; ++d) {
    v[d] = InitialEmbeddingValue(options_.seed, key, d, options_.v_init_scale);
    acc[d] = 0.0f;
  }
  row.embedding = ref;
  ++embeddings_;
  embedding_floats_ += width;
}

// Order of a push for one key, chosen so the worker's gradients land on what it saw:
// count, FTRL on w, then (if w is now 0) release the embedding and drop its gradient (V = 0 when
// w = 0), else Adagrad on the common prefix of the pushed and current widths, and only then
// admission or growth to the width the count earns; new dims start from their initial values.
void Store::Impl::PushOne(BaseRow& row, float grad_w, const float* grad_v, uint32_t grad_width,
                          uint32_t count) {
  row.count = count > 0xFFFFFFFFu - row.count ? 0xFFFFFFFFu : row.count + count;
  const bool was_nonzero = row.w != 0.0f;
  FtrlStep(row.z, row.n, row.w, grad_w, ftrl_);
  const bool is_nonzero = row.w != 0.0f;
  nonzero_w_ += is_nonzero;
  nonzero_w_ -= was_nonzero;
  if (!is_nonzero) {
    if (row.embedding != 0) ReleaseEmbedding(row);
    return;
  }
  uint32_t width = 0;
  if (row.embedding != 0) {
    width = WidthOf(row.embedding);
    float* v = EmbeddingOf(row.embedding);
    AdagradStep(v, v + width, grad_v, std::min(width, grad_width), adagrad_);
  }
  const uint32_t target = options_.policy.WidthFor(row.count);
  if (target > width) WidenEmbedding(row, target);  // never shrinks
}

void Store::Impl::Pull(std::span<const uint64_t> keys, std::vector<float>* values,
                       std::vector<uint16_t>* widths) const {
  const KeyOf key_of{&rows_};
  for (const uint64_t key : keys) {
    const uint32_t r = index_.Find(key, key_of);
    if (r == KeyIndex::kNotFound) {
      values->push_back(0.0f);
      widths->push_back(0);
      continue;
    }
    const BaseRow& row = rows_[r];
    values->push_back(row.w);
    const uint32_t width = WidthOf(row.embedding);
    widths->push_back(static_cast<uint16_t>(width));
    if (width > 0) {
      const float* v = EmbeddingOf(row.embedding);
      values->insert(values->end(), v, v + width);
    }
  }
}

Status Store::Impl::Push(std::span<const uint64_t> keys, std::span<const float> grads,
                         std::span<const uint16_t> widths, std::span<const uint32_t> counts) {
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
  const KeyOf key_of{&rows_};
  const float* grad = grads.data();
  for (size_t i = 0; i < keys.size(); ++i) {
    bool inserted = false;
    const uint32_t r = index_.FindOrInsert(keys[i], static_cast<uint32_t>(rows_.size()), key_of,
                                           &inserted);
    if (inserted) {
      rows_.Append(BaseRow{static_cast<uint32_t>(keys[i]), static_cast<uint32_t>(keys[i] >> 32),
                           0.0f, 0.0f, 0.0f, 0, 0});
    }
    PushOne(rows_[r], grad[0], grad + 1, widths[i], counts[i]);
    grad += 1 + widths[i];
  }
  return Status::OK();
}

StoreStats Store::Impl::Stats() const {
  StoreStats stats;
  stats.keys = rows_.size();
  stats.nonzero_w = nonzero_w_;
  stats.embeddings = embeddings_;
  stats.embedding_floats = embedding_floats_;
  stats.bytes = index_.bytes() + rows_.bytes() + arenas_.capacity() * sizeof(arenas_[0]) +
                arena_of_width_.capacity();
  for (const auto& arena : arenas_) stats.bytes += arena->bytes() + sizeof(EmbeddingArena);
  return stats;
}

void Store::Impl::ForEach(
    const std::function<void(uint64_t, float, std::span<const float>)>& fn) const {
  for (uint64_t r = 0; r < rows_.size(); ++r) {
    const BaseRow& row = rows_[static_cast<uint32_t>(r)];
    const uint32_t width = WidthOf(row.embedding);
    const float* v = width > 0 ? EmbeddingOf(row.embedding) : nullptr;
    fn(row.key(), row.w, std::span<const float>(v, width));
  }
}

// ---- Store ----

Store::Store(const StoreOptions& options) : impl_(std::make_unique<Impl>(options)) {}
Store::~Store() = default;

void Store::Pull(std::span<const uint64_t> keys, std::vector<float>* values,
                 std::vector<uint16_t>* widths) const {
  impl_->Pull(keys, values, widths);
}

Status Store::Push(std::span<const uint64_t> keys, std::span<const float> grads,
                   std::span<const uint16_t> widths, std::span<const uint32_t> counts) {
  return impl_->Push(keys, grads, widths, counts);
}

StoreStats Store::Stats() const { return impl_->Stats(); }

std::string Store::Serialize() const { return impl_->Serialize(); }

Status Store::Deserialize(std::string_view bytes, const std::string& source_name) {
  auto fresh = std::make_unique<Impl>(impl_->options());
  FMPS_RETURN_IF_ERROR(fresh->Load(bytes, source_name));
  impl_ = std::move(fresh);
  return Status::OK();
}

void Store::ForEach(
    const std::function<void(uint64_t key, float w, std::span<const float> v)>& fn) const {
  impl_->ForEach(fn);
}

}  // namespace fmps
