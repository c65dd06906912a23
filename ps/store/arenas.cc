#include "ps/store/arenas.h"

#include <glog/logging.h>

#include <algorithm>
#include <cstring>

namespace fmps {

EmbeddingArena::EmbeddingArena(uint32_t width)
    : width_(width), rows_per_chunk_(std::max<uint32_t>(1, kChunkFloats / (1 + 2 * width))) {
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
        std::make_unique_for_overwrite<float[]>(size_t{rows_per_chunk_} * row_floats()));
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
  return chunks_.size() * uint64_t{rows_per_chunk_} * row_floats() * sizeof(float) +
         chunks_.capacity() * sizeof(chunks_[0]);
}

}  // namespace fmps
