// ModelSnapshot: a trained model frozen for serving. It loads the newest good checkpoint of a
// model directory (every shard verified), keeps the model built from the manifest's job config,
// the dense block of server 0 and, per key, w and the embedding zero-padded to the model's
// width, in one flat read-only table. After Load/FromRows it is immutable, so any number of
// threads may look keys up at once without locks.
#ifndef FMPS_SERVING_MODEL_SNAPSHOT_H_
#define FMPS_SERVING_MODEL_SNAPSHOT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "data/reader.h"
#include "models/model.h"
#include "proto/fmps.pb.h"
#include "ps/base/env.h"
#include "ps/base/keys.h"
#include "ps/base/status.h"
#include "ps/store/store.h"

namespace fmps {

// One key of a snapshot built in memory (tests, benchmarks): v may be narrower than the model's
// width (the rest reads as zero), never wider.
struct SnapshotRow {
  uint64_t key = 0;
  float w = 0;
  std::vector<float> v;
};

class ModelSnapshot {
 public:
  // The newest checkpoint of model_dir whose manifest and shards all verify; when model_dir is an
  // export file (`fmps export`, serving/model_export.h), the model it holds.
  // Every file is read through env.
  static Result<std::unique_ptr<ModelSnapshot>> Load(const std::string& model_dir,
                                                     Env* env = Env::Default());
  // For reloading: the newest checkpoint of model_dir if its version is above `than`, else null
  // (nothing newer; a caller that gave up on a damaged checkpoint passes its version as `than`).
  // Corruption, naming both versions, when a newer manifest exists but does not verify (still being
  // written, or damaged), so the caller keeps what it serves.
  static Result<std::unique_ptr<ModelSnapshot>> LoadNewer(const std::string& model_dir,
                                                          int64_t than, Env* env = Env::Default());
  // The model of an export file (every byte checked by its CRC-32 first).
  static Result<std::unique_ptr<ModelSnapshot>> LoadExport(const std::string& path,
                                                           Env* env = Env::Default());
  // A snapshot of the model config describes, with the given dense block and rows.
  static Result<std::unique_ptr<ModelSnapshot>> FromRows(const proto::JobConfig& config,
                                                         std::vector<float> dense,
                                                         const std::vector<SnapshotRow>& rows,
                                                         int64_t version = 0);

  const Model& model() const { return *model_; }
  const proto::JobConfig& config() const { return config_; }
  int64_t version() const { return version_; }
  int width() const { return width_; }  // the model's EmbeddingWidth()
  int num_fields() const { return config_.num_fields(); }
  uint64_t hash_seed() const { return hash_seed_; }  // seed the training readers hashed with
  // The training data's format (how the readers made keys); kLibffm for an unknown or unresolved
  // one, whose readers hash every field's text as libffm's does.
  DataFormat format() const { return format_; }
  std::span<const float> dense() const { return dense_; }
  size_t num_keys() const { return num_keys_; }
  size_t num_embeddings() const { return widths_.size(); }  // kept keys with an embedding
  // Rows of the checkpoint not kept by Load: w = 0 and no embedding, which score as unknown keys.
  size_t num_dropped() const { return dropped_; }

  // w of key into *w and its width() floats of embedding (zero-padded), in one probe of the index
  // (the Ranker's per-feature step); w = 0 and zeros for a key the model never kept, zeros for a
  // key without an embedding, as a server's Pull answers. With `width`, the embedding's real width.
  const float* Get(uint64_t key, float* w, uint16_t* width = nullptr) const {
    const Slot* slot = Probe(key);
    *w = slot == nullptr ? 0.f : slot->w;
    const bool embedded = slot != nullptr && slot->embedding != kNoEmbedding;
    if (width != nullptr) *width = embedded ? widths_[slot->embedding] : 0;
    return embedded ? V_.data() + size_t(slot->embedding) * width_ : zeros_.data();
  }
  bool Contains(uint64_t key) const { return Probe(key) != nullptr; }

  // For each key: w[i], V[i*width() ...] (zero-padded) and its real width, in the layout of
  // ParamView. The output vectors are resized.
  void Lookup(std::span<const uint64_t> keys, std::vector<float>* w, std::vector<float>* V,
              std::vector<uint16_t>* widths) const;

 private:
  // An index slot holds the key, its w and where its embedding is, so a lookup touches one slot
  // and the embedding row. Only keys with an embedding have a row of V_: with memory-adaptive
  // ranks most kept keys have none, and padding them all to the model's width would dominate.
  static constexpr uint32_t kEmpty = UINT32_MAX;            // a free slot
  static constexpr uint32_t kNoEmbedding = UINT32_MAX - 1;  // a key with w only
  struct Slot {
    uint64_t key;
    uint32_t embedding;  // row of V_ and widths_, or kNoEmbedding; kEmpty: the slot is free
    float w;
  };

  ModelSnapshot() = default;
  const Slot* Probe(uint64_t key) const {
    uint64_t s = Mix64(key) & slot_mask_;
    while (true) {
      const Slot& slot = slots_[s];
      if (slot.embedding == kEmpty) return nullptr;
      if (slot.key == key) return &slot;
      s = (s + 1) & slot_mask_;
    }
  }
  Status Init(const proto::JobConfig& config);
  Status AddRow(uint64_t key, float w, std::span<const float> v, const std::string& source);
  Status BuildIndex(const std::string& source);

  proto::JobConfig config_;
  std::unique_ptr<Model> model_;
  int64_t version_ = 0;
  int width_ = 0;
  uint64_t hash_seed_ = 0;
  DataFormat format_ = DataFormat::kLibffm;
  size_t dropped_ = 0;
  std::vector<float> dense_;
  size_t num_keys_ = 0;
  // Rows in insertion order until BuildIndex puts them into slots_ (and frees these three).
  std::vector<uint64_t> keys_;
  std::vector<float> w_;
  std::vector<uint32_t> embedding_of_;  // per row: its row of V_, or kNoEmbedding
  std::vector<float> V_;                // [embeddings * width_], zero-padded
  std::vector<uint16_t> widths_;        // [embeddings]: the real widths
  std::vector<float> zeros_;            // [width_]
  std::vector<Slot> slots_;  // open addressing over Mix64(key), linear probing, power of two
  uint64_t slot_mask_ = 0;
};

}  // namespace fmps

#endif  // FMPS_SERVING_MODEL_SNAPSHOT_H_
