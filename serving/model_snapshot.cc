#include "serving/model_snapshot.h"

#include <algorithm>
#include <cstring>

#include "models/job_config.h"
#include "ps/base/env.h"
#include "ps/base/keys.h"
#include "ps/checkpoint.h"
#include "ps/store/store.h"
#include "ps/store_config.h"
#include "serving/model_export.h"

namespace fmps {

Status ModelSnapshot::Init(const proto::JobConfig& config) {
  config_ = config;
  Result<std::unique_ptr<Model>> model = CreateModel(ModelOptionsFromConfig(config));
  if (!model.ok()) return model.status();
  model_ = std::move(model.value());
  width_ = model_->EmbeddingWidth();
  zeros_.assign(width_, 0.f);
  Result<ReaderOptions> reader = ReaderOptionsFromConfig(config);
  // A model trained on a format this build does not know still serves: only the seed matters.
  hash_seed_ = reader.ok() ? reader->hash_seed : 0;
  format_ =
      reader.ok() && reader->format != DataFormat::kAuto ? reader->format : DataFormat::kLibffm;
  return Status::OK();
}

Status ModelSnapshot::AddRow(uint64_t key, float w, std::span<const float> v,
                             const std::string& source) {
  if (v.size() > size_t(width_)) {
    return Status::Corruption(source + ": key " + std::to_string(key) + " has an embedding of " +
                              std::to_string(v.size()) + " floats but model " + config_.model() +
                              " has width " + std::to_string(width_));
  }
  keys_.push_back(key);
  w_.push_back(w);
  if (v.empty()) {
    embedding_of_.push_back(kNoEmbedding);
    return Status::OK();
  }
  embedding_of_.push_back(static_cast<uint32_t>(widths_.size()));
  widths_.push_back(static_cast<uint16_t>(v.size()));
  const size_t at = V_.size();
  V_.resize(at + width_, 0.f);
  std::memcpy(&V_[at], v.data(), v.size() * sizeof(float));
  return Status::OK();
}

// Linear probing over Mix64(key) with a load factor of at most 1/2: a lookup touches one or two
// slots (key and w together), cheaper than std::unordered_map's node chase per candidate.
Status ModelSnapshot::BuildIndex(const std::string& source) {
  size_t slots = 16;
  while (slots < 2 * keys_.size()) slots *= 2;
  slots_.assign(slots, Slot{0, kEmpty, 0.f});
  slot_mask_ = slots - 1;
  for (uint32_t row = 0; row < keys_.size(); ++row) {
    uint64_t s = Mix64(keys_[row]) & slot_mask_;
    while (slots_[s].embedding != kEmpty) {
      if (slots_[s].key == keys_[row]) {
        return Status::Corruption(source + ": key " + std::to_string(keys_[row]) +
                                  " appears twice");
      }
      s = (s + 1) & slot_mask_;
    }
    slots_[s] = Slot{keys_[row], embedding_of_[row], w_[row]};
  }
  num_keys_ = keys_.size();
  keys_ = {};
  w_ = {};
  embedding_of_ = {};
  V_.shrink_to_fit();
  widths_.shrink_to_fit();
  return Status::OK();
}

void ModelSnapshot::Lookup(std::span<const uint64_t> keys, std::vector<float>* w,
                           std::vector<float>* V, std::vector<uint16_t>* widths) const {
  w->resize(keys.size());
  V->resize(keys.size() * width_);
  widths->resize(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    const float* v = Get(keys[i], &(*w)[i], &(*widths)[i]);
    std::memcpy(V->data() + i * width_, v, width_ * sizeof(float));
  }
}

Result<std::unique_ptr<ModelSnapshot>> ModelSnapshot::FromRows(const proto::JobConfig& config,
                                                               std::vector<float> dense,
                                                               const std::vector<SnapshotRow>& rows,
                                                               int64_t version) {
  std::unique_ptr<ModelSnapshot> s(new ModelSnapshot());
  FMPS_RETURN_IF_ERROR(s->Init(config));
  if (dense.size() != s->model_->DenseSize()) {
    return Status::InvalidArgument("dense block of " + std::to_string(dense.size()) +
                                   " floats, model " + config.model() + " needs " +
                                   std::to_string(s->model_->DenseSize()));
  }
  s->dense_ = std::move(dense);
  s->version_ = version;
  for (const SnapshotRow& r : rows) FMPS_RETURN_IF_ERROR(s->AddRow(r.key, r.w, r.v, "FromRows"));
  FMPS_RETURN_IF_ERROR(s->BuildIndex("FromRows"));
  return s;
}

Result<std::unique_ptr<ModelSnapshot>> ModelSnapshot::LoadNewer(const std::string& model_dir,
                                                                int64_t than, Env* env) {
  const int64_t newest = NewestManifestVersion(model_dir, env);
  if (newest <= than) return std::unique_ptr<ModelSnapshot>();
  Result<std::unique_ptr<ModelSnapshot>> loaded = Load(model_dir, env);
  if (loaded.ok() && loaded.value()->version() > than) return loaded;
  return Status::Corruption(
      "checkpoint " + std::to_string(newest) + " of " + model_dir + " does not verify (" +
      (loaded.ok() ? "the newest good one is " + std::to_string(loaded.value()->version())
                   : loaded.status().message()) +
      ")");
}

Result<std::unique_ptr<ModelSnapshot>> ModelSnapshot::LoadExport(const std::string& path,
                                                                 Env* env) {
  Result<std::string> bytes = ReadFile(path, env);
  if (!bytes.ok()) return bytes.status();
  ExportHeader header;
  std::vector<float> dense;
  // The header first: the model it builds says how wide an embedding may be.
  FMPS_RETURN_IF_ERROR(ReadExport(bytes.value(), path, &header, &dense, {}));
  std::unique_ptr<ModelSnapshot> s(new ModelSnapshot());
  FMPS_RETURN_IF_ERROR(s->Init(header.manifest.config()));
  s->version_ = header.manifest.version();
  if (dense.size() != s->model_->DenseSize()) {
    return Status::Corruption(path + ": dense block of " + std::to_string(dense.size()) +
                              " floats does not match model " + s->config_.model());
  }
  s->dense_ = std::move(dense);
  std::vector<float> v(s->width_);
  FMPS_RETURN_IF_ERROR(ReadExport(bytes.value(), path, &header, &dense, [&](const ExportRow& r) {
    if (r.rank > v.size()) v.resize(r.rank);  // AddRow refuses it, naming the key
    std::memcpy(v.data(), r.v, size_t{r.rank} * sizeof(float));
    return s->AddRow(r.key, r.w, std::span<const float>(v.data(), r.rank), path);
  }));
  FMPS_RETURN_IF_ERROR(s->BuildIndex(path));
  return s;
}

Result<std::unique_ptr<ModelSnapshot>> ModelSnapshot::Load(const std::string& model_dir, Env* env) {
  Result<bool> is_export = IsExportFile(model_dir, env);
  if (!is_export.ok()) return is_export.status();
  if (is_export.value()) return LoadExport(model_dir, env);
  Result<proto::Manifest> manifest = FindNewestGoodManifest(model_dir, env);
  if (!manifest.ok()) return manifest.status();
  std::unique_ptr<ModelSnapshot> s(new ModelSnapshot());
  FMPS_RETURN_IF_ERROR(s->Init(manifest->config()));
  s->version_ = manifest->version();
  // A shard is read with the options it was trained with: the store derives w from (z, n).
  const StoreOptions read_options = StoreOptionsFromConfig(s->config_, s->width_);
  std::vector<float> v(s->width_);
  bool have_dense = false;
  for (const auto& entry : manifest->shards()) {
    const std::string path = model_dir + "/" + entry.file();
    Result<std::string> bytes = ReadFile(path, env);
    if (!bytes.ok()) return bytes.status();
    std::string_view store_bytes;  // in bytes
    Result<ShardData> shard = DecodeShard(bytes.value(), path, &store_bytes);
    if (!shard.ok()) return shard.status();
    if (entry.server() == 0) {
      s->dense_ = std::move(shard->dense);
      have_dense = true;
    }
    // The rows straight from the shard's bytes (no store is built): w as a store derives it from
    // (z, n) under the model's FTRL parameters, as its Pull would answer.
    FMPS_RETURN_IF_ERROR(Store::ScanShard(
        store_bytes, read_options.policy.MaxWidth(), path, [&](const Store::ShardRow& r) {
          const float w = Store::WeightOf(r, read_options);
          // w = 0 with no embedding scores exactly as a key the model never kept: under FTRL's
          // L1 most keys are such rows, and the table need not hold them.
          if (w == 0.f && r.width == 0) {
            ++s->dropped_;
            return Status::OK();
          }
          if (r.width > v.size()) v.resize(r.width);  // AddRow refuses it, naming the key
          std::memcpy(v.data(), r.v, size_t{r.width} * sizeof(float));
          return s->AddRow(r.key, w, std::span<const float>(v.data(), r.width), path);
        }));
  }
  if (!have_dense || s->dense_.size() != s->model_->DenseSize()) {
    return Status::Corruption(model_dir + ": dense block does not match model " +
                              s->config_.model());
  }
  FMPS_RETURN_IF_ERROR(s->BuildIndex(model_dir));
  return s;
}

}  // namespace fmps
