// Store: one server's shard of the sparse model. Per key it keeps the FTRL state of the linear
// weight (z, n, w), an occurrence count, and, only for features that earned one, an embedding row
// of adaptive width with its Adagrad accumulators. Per-key state lives in the slots of a hash
// table (RowMap), embedding rows in arenas grouped by width. Single-threaded: the server's request
// thread owns it.
#ifndef FMPS_PS_STORE_STORE_H_
#define FMPS_PS_STORE_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ps/base/status.h"
#include "ps/store/update_rules.h"

namespace fmps {

// How a feature's occurrence count n maps to the width of its embedding row.
// Levels are sorted by min_count; a feature gets the width of the last level whose min_count <= n,
// and no embedding when n is below the first level's min_count. With tail_min_count, the first
// level's width is min(n, width) (DiFacto's "min(n_i, k) otherwise" rule for tail features).
struct RankLevel {
  uint64_t min_count;
  uint32_t width;
};
struct RankPolicy {
  std::vector<RankLevel> levels;
  bool tail_min_count = false;
  uint32_t WidthFor(uint64_t count) const;
  uint32_t MaxWidth() const;
  // DiFacto's three levels for an FM of rank k: width k when n >= head_count; mid_rank when
  // mid_count <= n < head_count; min(n, mid_rank) when min_count <= n < mid_count.
  static RankPolicy DiFacto(uint32_t k, uint32_t mid_rank, uint64_t min_count, uint64_t mid_count,
                            uint64_t head_count);
  // One width for every admitted feature.
  static RankPolicy Fixed(uint32_t width, uint64_t min_count);
};

// The job's parameters have no defaults here: StoreOptionsFromConfig (models/job_config.h) fills
// them from the job config, whose defaults are config/params.def's.
struct StoreOptions {
  FtrlParams ftrl;  // FTRL-proximal on w
  // Adagrad on embeddings.
  float v_lr = 0;             // learning rate
  float v_init_scale = 0;     // stddev of a new embedding's entries
  float v_l2 = 0;             // L2 on V, added to the gradient per occurrence
  float adagrad_eps = 1e-6f;  // added to the accumulator before the square root (numerical floor)
  // Embedding admission and width. An embedding exists only while w != 0 and the count reaches
  // policy's first level; it is dropped when w returns to 0.
  RankPolicy policy;
  uint64_t seed = 0;  // for embedding initialisation

  // Bounded memory. A key gets a row only once it has been seen min_count times; until then its
  // occurrences are counted in a count-min sketch of sketch_mb MiB (pushes update only the
  // sketch and their gradients are dropped; pulls read 0). See count_min_sketch.h for the error.
  uint64_t min_count = 1;  // 1: every pushed key gets a row at once (no sketch is allocated)
  double sketch_mb = 0;    // memory of the admission sketch, used only when min_count > 1
  // Rows not pushed for evict_after pushes to this store, or whose w stayed 0 that long, are
  // dropped by an incremental sweep (a bounded number of rows checked per push). 0: never.
  uint64_t evict_after = 0;
  // When the store's live bytes (plus the push about to land) reach 95% of this cap, the coldest
  // rows (oldest push stamp) are evicted until under 85% of it; held bytes (Stats().bytes) stay
  // under the cap. 0: no cap.
  uint64_t max_memory_mb = 0;
};

struct StoreStats {
  uint64_t keys = 0;              // rows in the index
  uint64_t nonzero_w = 0;         // keys with w != 0
  uint64_t embeddings = 0;        // keys with an embedding row
  uint64_t embedding_floats = 0;  // floats of V held (not counting accumulators)
  uint64_t bytes = 0;             // memory held by index, rows, arenas and the admission sketch
  uint64_t evicted = 0;           // rows dropped so far (stale, zero w, or over the memory cap)
  uint64_t evicted_for_memory =
      0;                        // of those, rows dropped to stay under the cap (--store_memory_mb)
  uint64_t sketch_bytes = 0;    // memory of the admission sketch (0 when min_count <= 1)
  uint64_t pending_pushes = 0;  // key occurrences counted in the sketch and not given a row
  // Rows and bytes by embedding width, ascending; width 0: rows without an embedding, whose bytes
  // are the index's (which every row also uses).
  struct Width {
    uint32_t width = 0;
    uint64_t rows = 0, bytes = 0;
  };
  std::vector<Width> by_width;
};

class Store {
 public:
  explicit Store(const StoreOptions& options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // For each key in order: appends w and then the key's embedding (width widths[i] floats) to
  // *values, and its width to *widths. Unknown keys read as w = 0, width 0 and are not inserted.
  // With `hints`, also appends each key's place in the table (RowMap::kNoHint when absent): a
  // Push of the same keys given them back skips their lookups while the rows have not moved.
  void Pull(std::span<const uint64_t> keys, std::vector<float>* values,
            std::vector<uint16_t>* widths, std::vector<uint64_t>* hints = nullptr) const;

  // Applies gradients laid out as a Pull answer with the given widths (the widths the worker saw:
  // per key the w gradient, then widths[i] embedding gradients) and adds counts[i] occurrences.
  // Where the row's width changed since, the common prefix is updated. Errors on size mismatch.
  // `hints`: empty, or a Pull's hints for these keys (any hint is checked before it is used).
  Status Push(std::span<const uint64_t> keys, std::span<const float> grads,
              std::span<const uint16_t> widths, std::span<const uint32_t> counts,
              std::span<const uint64_t> hints = {});

  // Scales the embedding learning rate of the following pushes (the server damps stale pushes:
  // a gradient computed on parameters that many other pushes have changed since moves them less).
  void SetLearningRateScale(float scale);

  StoreStats Stats() const;

  // Serialises every row (key, z, n, w, count, width, V, accumulators) with a header and a
  // checksum; Load replaces the contents and verifies the checksum, naming the source in errors.
  std::string Serialize() const;
  Status Deserialize(std::string_view bytes, const std::string& source_name);
  // One serialised shard and the name its errors carry.
  struct ShardSource {
    std::string_view bytes;
    std::string name;
  };
  // Replaces the contents with the rows of several shards whose key `keep` accepts (re-sharding:
  // a server of a job with another number of servers takes its key range from every old shard
  // that overlaps it), each row with its whole state (FTRL z and n, count, V, accumulators). A
  // key found in two shards is an error naming both.
  Status DeserializeSelected(std::span<const ShardSource> shards,
                             const std::function<bool(uint64_t key)>& keep);

  // Visits every row (for export): key, w, embedding of the row's width.
  void ForEach(
      const std::function<void(uint64_t key, float w, std::span<const float> v)>& fn) const;

  // One row of a serialised shard as ScanShard reads it. The floats of V and the accumulators are
  // the shard's bytes (not aligned for float): copy them out.
  struct ShardRow {
    uint64_t index = 0;   // row number in the shard
    uint64_t offset = 0;  // byte offset of the row
    uint64_t key = 0;
    float z = 0, n = 0, w = 0;  // w as written
    uint32_t count = 0;
    uint32_t width = 0;
    const char* v = nullptr;    // width floats
    const char* acc = nullptr;  // width floats
  };
  // Reads every row of a shard Serialize wrote, in order, checking it as Deserialize does (magic,
  // version, `max_width` of the policy it was written for, sizes, trailing checksum), without
  // building a store: a reader that keeps a little of each row (serving) needs no more memory than
  // what it keeps. Stops at the first error, or at the first non-OK status of fn, and returns it.
  static Status ScanShard(std::string_view bytes, uint32_t max_width,
                          const std::string& source_name,
                          const std::function<Status(const ShardRow& row)>& fn);
  // The w a store with `options` holds for a scanned row (FTRL's closed form of its z and n, as
  // Pull answers), whatever w the shard was written with.
  static float WeightOf(const ShardRow& row, const StoreOptions& options);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fmps

#endif  // FMPS_PS_STORE_STORE_H_
