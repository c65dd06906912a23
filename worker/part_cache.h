// PartCache: a worker's memory of the parts it trained on, as localized minibatches, so that the
// next epochs replay them instead of reading, parsing and localizing the same bytes again (a large
// share of a first epoch's work: docs/performance.md). xLearn and libffm keep a binary copy
// of the data for the same reason; a worker keeps only what it will read again, within a bound.
//
// A cached minibatch is compact: the unique keys (8 bytes each), one 16-bit index per entry (32
// bits when a batch has more than 65536 unique keys), row offsets and labels, and values only
// when some value is not 1. Fields, counts and the keys' Mix64 are derived again on replay. About
// 140 bytes per row of 39 features (against ~250 bytes of Criteo text).
//
// Not thread-safe: the worker's compute thread owns it.
#ifndef FMPS_WORKER_PART_CACHE_H_
#define FMPS_WORKER_PART_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "worker/localizer.h"

namespace fmps {

class PartCache {
 public:
  // A cached minibatch: a view of its bytes in the cache's blocks, laid out as keys (u64, one per
  // unique key, grouped by server as the localizer left them), labels (f32 per row), offsets
  // (u32, rows + 1), index (u16 per entry, u32 when the batch has more than 65536 unique keys),
  // then values (f32 per entry) unless every value is 1.
  struct Batch {
    const std::byte* data = nullptr;
    uint32_t rows = 0, entries = 0, keys = 0;
    bool wide_index = false, has_values = false;
  };
  struct Entry {
    std::vector<Batch> batches;
    // What reading the part counted, reported again on replay.
    uint64_t lines = 0, bad_lines = 0, held_out = 0;
    bool complete = false;       // the part was read to its end
    std::vector<size_t> blocks;  // the blocks it wrote into (freed with it)
  };

  // Holds at most max_bytes of minibatches (0: caches nothing).
  explicit PartCache(uint64_t max_bytes) : max_bytes_(max_bytes) {}
  ~PartCache();
  PartCache(const PartCache&) = delete;
  PartCache& operator=(const PartCache&) = delete;

  // Starts caching the part named `name` (dropping any entry of that name); false when the cache
  // is full or disabled.
  bool Start(const std::string& name);
  // Adds a minibatch of the part. False when it would pass the bound: the part's entry is then
  // dropped and the cache takes no further parts. (A block is unmapped once no entry uses it.)
  bool Add(const std::string& name, const LocalBatch& batch);
  // The part was read to its end.
  void Finish(const std::string& name, uint64_t lines, uint64_t bad_lines, uint64_t held_out = 0);
  // The complete entry of a part, or null.
  const Entry* Find(const std::string& name) const;
  // Frees a part's entry (its last replay is done, or its reading failed).
  void Release(const std::string& name);
  // Frees the entries of parts not read to their end (abandoned when a server failed).
  void DropIncomplete();

  bool enabled() const { return max_bytes_ > 0; }
  // Bytes of the blocks held (what the bound applies to; untouched tails of blocks are not
  // resident, so RSS grows by the minibatches' bytes).
  uint64_t bytes() const { return bytes_; }
  bool full() const { return full_; }

  // Rebuilds the localized minibatch: fields from the keys (KeyField), counts from the index,
  // the keys' Mix64, and values of 1 where none were kept.
  static void Expand(const Batch& cached, LocalBatch* out);

 private:
  // Minibatches are packed into blocks of this size, mapped from the kernel apart from the heap:
  // a batch of vectors on the heap took the holes freed readers left, so every new reader
  // buffer faulted in fresh pages.
  // Blocks are kBlockBytes (or max_bytes when smaller); a minibatch larger than that gets a block
  // of its own.
  static constexpr uint64_t kBlockBytes = 32 << 20;
  struct Block {
    std::byte* base = nullptr;
    uint64_t size = 0, used = 0;
    int users = 0;  // entries with batches in it
  };
  // Room for `bytes` for a minibatch of `entry`: in the open block, or a new one; null when a new
  // block would pass max_bytes (or the kernel refuses one).
  std::byte* Allocate(Entry* entry, uint64_t bytes);
  void FreeBlock(size_t index);

  uint64_t max_bytes_;
  uint64_t bytes_ = 0;  // of the blocks mapped
  bool full_ = false;
  std::map<std::string, Entry> entries_;
  std::vector<Block> blocks_;  // a freed block's slot is reused (base null)
  std::vector<size_t> free_slots_;
  size_t open_block_ = SIZE_MAX;  // the block minibatches are appended to
};

// The cache's name of a data part: path and byte range.
std::string PartCacheName(const std::string& path, uint64_t begin, uint64_t end);

}  // namespace fmps

#endif  // FMPS_WORKER_PART_CACHE_H_
