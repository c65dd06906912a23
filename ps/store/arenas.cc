#include "ps/store/arenas.h"

#include <glog/logging.h>

#include <algorithm>
#include <cstring>

namespace fmps {

uint32_t RowTable::Append(const BaseRow& row) {
  CHECK_LT(size_, uint64_t{0xFFFFFFFFu}) << "RowTable: too many rows";
  const uint32_t id = static_cast<uint32_t>(size_);
  if ((id >> kChunkBits) >= chunks_.size()) {
    chunks_.push_back(std::make_unique_for_overwrite<BaseRow[]>(kChunkMask + 1));
  }
  chunks_[id >> kChunkBits][id & kChunkMask] = row;
  ++size_;
  return id;
}

void RowTable::PopBack() {
  DCHECK_GT(size_, 0u);
  --size_;
  // Chunks in use: ceil(size_ / chunk); keep at most one empty chunk after them.
  const uint64_t in_use = (size_ + kChunkMask) >> kChunkBits;
  while (chunks_.size() > in_use + 1) chunks_.pop_back();
}

void RowTable::Clear() {
  chunks_.clear();
  chunks_.shrink_to_fit();
  size_ = 0;
}

uint64_t RowTable::bytes() const {
  return chunks_.size() * (uint64_t{kChunkMask} + 1) * sizeof(BaseRow) +
         chunks_.capacity() * sizeof(chunks_[0]);
}

EmbeddingArena::EmbeddingArena(uint32_t width)
    : width_(width), rows_per_chunk_(std::max<uint32_t>(1, 16384 / (2 * width))) {
  CHECK_GT(width, 0u);
}

uint32_t EmbeddingArena::Allocate() {
  if (free_head_ != kNoSlot) {
    const uint32_t slot = free_head_;
    std::memcpy(&free_head_, Row(slot), sizeof(free_head_));
    ++live_;
    return slot;
  }
  if (used_ >= EmbeddingRef::kMaxSlots) return kFull;
  const uint32_t slot = used_++;
  if (slot % rows_per_chunk_ == 0) {
    chunks_.push_back(
        std::make_unique_for_overwrite<float[]>(size_t{rows_per_chunk_} * 2 * width_));
  }
  ++live_;
  return slot;
}

void EmbeddingArena::Release(uint32_t slot) {
  DCHECK_LT(slot, used_);
  std::memcpy(Row(slot), &free_head_, sizeof(free_head_));
  free_head_ = slot;
  --live_;
}

uint64_t EmbeddingArena::bytes() const {
  return chunks_.size() * uint64_t{rows_per_chunk_} * 2 * width_ * sizeof(float) +
         chunks_.capacity() * sizeof(chunks_[0]);
}

}  // namespace fmps
