#include "serving/model_export.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstring>
#include <numeric>

#include "models/job_config.h"
#include "ps/base/env.h"
#include "ps/checkpoint.h"
#include "ps/store/store.h"
#include "ps/store_config.h"

namespace fmps {
namespace {

static_assert(std::endian::native == std::endian::little, "the export format is little-endian");

constexpr size_t kRowFixedBytes = 8 + 4 + 4 + 2;  // key, w, count, rank

template <typename T>
void Put(std::string* out, const T& v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(T));
}

uint32_t Crc32(const char* data, size_t size) {
  uLong crc = crc32(0L, Z_NULL, 0);
  while (size > 0) {  // zlib takes 32-bit lengths
    const uInt n = static_cast<uInt>(std::min<size_t>(size, 1u << 30));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(data), n);
    data += n;
    size -= n;
  }
  return static_cast<uint32_t>(crc);
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// The checkpoint `version` of dir (0: the newest good one), every shard checked against the
// checksum its manifest lists.
Result<proto::Manifest> VerifiedManifest(const std::string& dir, int64_t version) {
  if (version <= 0) return FindNewestGoodManifest(dir);
  const std::string path = dir + "/" + ManifestFileName(version);
  Result<proto::Manifest> m = ReadManifest(path);
  if (!m.ok()) return m.status();
  for (const auto& shard : m->shards()) {
    const std::string file = dir + "/" + shard.file();
    Result<std::string> bytes = ReadFile(file);
    if (!bytes.ok()) return bytes.status();
    if (Checksum64(bytes->data(), bytes->size()) != shard.checksum())
      return Status::Corruption(file + ": does not match the checksum in " + path);
  }
  return m;
}

// Export files written before config/params.def named three config fields otherwise (the
// binary manifests kept the field numbers): read them under today's names.
void UpgradeOldConfigNames(google::protobuf::Value* manifest) {
  if (!manifest->has_struct_value()) return;
  auto& fields = *manifest->mutable_struct_value()->mutable_fields();
  auto config = fields.find("config");
  if (config == fields.end() || !config->second.has_struct_value()) return;
  auto& c = *config->second.mutable_struct_value()->mutable_fields();
  auto rename = [&c](const std::string& from, const std::string& to) {
    auto it = c.find(from);
    if (it == c.end()) return;
    if (!c.count(to)) c[to] = it->second;
    c.erase(from);
  };
  rename("dplr_rank", "rank");
  rename("max_memory_mb", "store_memory_mb");
  if (auto it = c.find("keep_field_pair_scale"); it != c.end()) {
    const bool keep_scale = it->second.bool_value();
    c.erase("keep_field_pair_scale");
    if (!c.count("normalize_field_pairs")) c["normalize_field_pairs"].set_bool_value(!keep_scale);
  }
}

}  // namespace

Result<ExportSummary> ExportModel(const ExportOptions& options) {
  Result<proto::Manifest> manifest = VerifiedManifest(options.model_dir, options.version);
  if (!manifest.ok()) return manifest.status();
  const proto::JobConfig& config = manifest->config();
  Result<std::unique_ptr<Model>> model = CreateModel(ModelOptionsFromConfig(config));
  if (!model.ok()) return model.status();
  const int width = model.value()->EmbeddingWidth();
  const StoreOptions read_options = StoreOptionsFromConfig(config, width);

  struct Row {
    uint64_t key;
    float w;
    uint32_t count;
    uint32_t rank;
    size_t at;  // first float in v
  };
  std::vector<Row> rows;
  std::vector<float> v;
  std::vector<float> dense;
  bool have_dense = false;
  ExportSummary summary;
  summary.version = manifest->version();
  for (const auto& entry : manifest->shards()) {
    const std::string path = options.model_dir + "/" + entry.file();
    Result<std::string> bytes = ReadFile(path);
    if (!bytes.ok()) return bytes.status();
    std::string_view store_bytes;
    Result<ShardData> shard = DecodeShard(bytes.value(), path, &store_bytes);
    if (!shard.ok()) return shard.status();
    if (entry.server() == 0) {
      dense = shard->dense;
      have_dense = true;
    }
    FMPS_RETURN_IF_ERROR(Store::ScanShard(
        store_bytes, read_options.policy.MaxWidth(), path, [&](const Store::ShardRow& r) {
          const float w = Store::WeightOf(r, read_options);
          if (w == 0.f && r.width == 0 && !options.keep_zero_rows) {
            ++summary.dropped;
            return Status::OK();
          }
          rows.push_back(Row{r.key, w, r.count, r.width, v.size()});
          if (r.width == 0) return Status::OK();  // no embedding (and memcpy wants non-null)
          v.resize(v.size() + r.width);
          std::memcpy(v.data() + rows.back().at, r.v, size_t{r.width} * sizeof(float));
          return Status::OK();
        }));
  }
  if (!have_dense || dense.size() != model.value()->DenseSize()) {
    return Status::Corruption(options.model_dir + ": checkpoint " +
                              std::to_string(manifest->version()) +
                              " has no dense block of model " + config.model());
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.key < b.key; });
  for (size_t i = 1; i < rows.size(); ++i) {
    if (rows[i].key == rows[i - 1].key) {
      return Status::Corruption(options.model_dir + ": key " + std::to_string(rows[i].key) +
                                " is in two shards of checkpoint " +
                                std::to_string(manifest->version()));
    }
  }

  proto::Manifest described = manifest.value();
  described.clear_shards();
  described.mutable_config()->clear_init_model();
  std::string manifest_json;
  google::protobuf::util::JsonPrintOptions json_options;
  json_options.preserve_proto_field_names = true;
  json_options.always_print_primitive_fields = true;
  if (!google::protobuf::util::MessageToJsonString(described, &manifest_json, json_options).ok())
    return Status::Aborted("cannot print the manifest as JSON");
  for (const Row& r : rows) summary.embeddings += r.rank > 0;
  summary.rows = rows.size();
  const std::string header =
      "{\"fmps_export\":" + std::to_string(kExportFormatVersion) +
      ",\"model\":" + JsonString(config.model()) +
      ",\"num_fields\":" + std::to_string(config.num_fields()) +
      ",\"k\":" + std::to_string(config.k()) + ",\"embedding_width\":" + std::to_string(width) +
      "," + ExportedOptionsJson(ModelOptionsFromConfig(config)) +
      ",\"dense_size\":" + std::to_string(dense.size()) +
      ",\"dense_layout\":" + JsonString(model.value()->DenseLayout()) +
      ",\"rows\":" + std::to_string(rows.size()) +
      ",\"embeddings\":" + std::to_string(summary.embeddings) +
      ",\"dropped_rows\":" + std::to_string(summary.dropped) +
      ",\"keys\":{\"format\":" + JsonString(config.format()) +
      ",\"seed\":0,\"field_bits\":8,\"token_hash\":\"XXH3_64bits_withSeed\","
      "\"integer_hash\":\"mix64(x * 0x9e3779b97f4a7c15 + seed + 1)\"}"
      ",\"checksum\":\"crc32\",\"version\":" +
      std::to_string(manifest->version()) + ",\"source\":" + JsonString(options.model_dir) +
      ",\"manifest\":" + manifest_json + "}";

  std::string out(kExportMagic, sizeof(kExportMagic));
  Put(&out, kExportFormatVersion);
  Put(&out, static_cast<uint32_t>(header.size()));
  out += header;
  Put(&out, static_cast<uint64_t>(dense.size()));
  out.append(reinterpret_cast<const char*>(dense.data()), dense.size() * sizeof(float));
  Put(&out, static_cast<uint64_t>(rows.size()));
  out.reserve(out.size() + rows.size() * kRowFixedBytes + v.size() * sizeof(float) + 4);
  for (const Row& r : rows) {
    Put(&out, r.key);
    Put(&out, r.w);
    Put(&out, r.count);
    Put(&out, static_cast<uint16_t>(r.rank));
    out.append(reinterpret_cast<const char*>(v.data() + r.at), size_t{r.rank} * sizeof(float));
  }
  Put(&out, Crc32(out.data(), out.size()));
  FMPS_RETURN_IF_ERROR(WriteFileAtomic(options.out, out));
  summary.bytes = out.size();
  return summary;
}

Result<bool> IsExportFile(const std::string& path, Env* env) {
  Result<FileInfo> info = env->Stat(path);
  if (!info.ok() || !info->is_regular) return false;  // a model directory, or nothing there
  Result<std::unique_ptr<SequentialFile>> file = env->NewSequentialFile(path);
  if (!file.ok()) return file.status();
  char magic[sizeof(kExportMagic)];
  size_t got = 0;
  while (got < sizeof(magic)) {
    Result<size_t> n = (*file)->Read(magic + got, sizeof(magic) - got);
    if (!n.ok()) return n.status();
    if (*n == 0) return false;  // shorter than the magic
    got += *n;
  }
  return std::memcmp(magic, kExportMagic, sizeof(magic)) == 0;
}

Status ReadExport(std::string_view bytes, const std::string& name, ExportHeader* header,
                  std::vector<float>* dense,
                  const std::function<Status(const ExportRow& row)>& on_row) {
  auto corrupt = [&](size_t at, const std::string& what) {
    return Status::Corruption(name + ": " + what + " at byte " + std::to_string(at));
  };
  if (bytes.size() < 16 + 8 + 8 + 4 || std::memcmp(bytes.data(), kExportMagic, 8) != 0)
    return Status::Corruption(name + ": not an fmps export file (bad magic or too short)");
  const size_t body = bytes.size() - 4;
  uint32_t stored_crc;
  std::memcpy(&stored_crc, bytes.data() + body, 4);
  if (Crc32(bytes.data(), body) != stored_crc)
    return corrupt(body, "CRC-32 mismatch (file damaged or truncated)");
  size_t at = 8;
  auto get = [&](auto* value) {
    if (body - at < sizeof(*value)) return false;
    std::memcpy(value, bytes.data() + at, sizeof(*value));
    at += sizeof(*value);
    return true;
  };
  uint32_t version = 0, header_size = 0;
  get(&version);
  if (version != kExportFormatVersion)
    return corrupt(8, "unsupported format version " + std::to_string(version));
  get(&header_size);
  if (body - at < header_size)
    return corrupt(at, "header of " + std::to_string(header_size) + " bytes runs past the end");
  header->json.assign(bytes.substr(at, header_size));
  at += header_size;
  google::protobuf::Struct tree;
  google::protobuf::util::JsonParseOptions parse;
  parse.ignore_unknown_fields = true;  // a newer writer's manifest fields
  std::string manifest_json;
  auto found = tree.mutable_fields()->end();
  if (!google::protobuf::util::JsonStringToMessage(header->json, &tree, parse).ok() ||
      (found = tree.mutable_fields()->find("manifest")) == tree.mutable_fields()->end() ||
      (UpgradeOldConfigNames(&found->second), false) ||
      !google::protobuf::util::MessageToJsonString(found->second, &manifest_json).ok() ||
      !google::protobuf::util::JsonStringToMessage(manifest_json, &header->manifest, parse).ok()) {
    return corrupt(16, "header is not the JSON of an export (no \"manifest\" object)");
  }
  uint64_t n = 0;
  if (!get(&n) || n > (body - at) / sizeof(float)) return corrupt(at, "bad dense block size");
  header->dense_size = n;
  dense->resize(n);
  if (n > 0) std::memcpy(dense->data(), bytes.data() + at, n * sizeof(float));
  at += n * sizeof(float);
  if (!get(&header->rows) || header->rows > (body - at) / kRowFixedBytes)
    return corrupt(at, "bad row count");
  ExportRow row;
  for (uint64_t i = 0; i < header->rows; ++i) {
    const size_t row_at = at;
    uint64_t key = 0;
    uint16_t rank = 0;
    if (body - at < kRowFixedBytes) return corrupt(at, "truncated row " + std::to_string(i));
    get(&key);
    get(&row.w);
    get(&row.count);
    get(&rank);
    if (i > 0 && key <= row.key)
      return corrupt(row_at, "row " + std::to_string(i) + ": keys not strictly increasing");
    row.key = key;
    row.rank = rank;
    if (body - at < size_t{rank} * sizeof(float))
      return corrupt(row_at, "truncated embedding of row " + std::to_string(i));
    row.v = bytes.data() + at;
    at += size_t{rank} * sizeof(float);
    if (on_row) FMPS_RETURN_IF_ERROR(on_row(row));
  }
  if (at != body)
    return corrupt(at, std::to_string(body - at) + " unexpected bytes after the rows");
  return Status::OK();
}

}  // namespace fmps
