#include "ps/checkpoint.h"

#include <glog/logging.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "ps/base/env.h"
#include "ps/base/keys.h"

namespace fmps {
namespace {

constexpr char kShardMagic[8] = {'F', 'M', 'P', 'S', 'S', 'H', 'R', '1'};
constexpr char kManifestMagic[8] = {'F', 'M', 'P', 'S', 'M', 'A', 'N', '1'};

template <typename T>
void Put(std::string* out, const T& v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(T));
}

// Reads fixed-size values from a byte range, remembering the first failure.
class Cursor {
 public:
  Cursor(std::string_view bytes, const std::string& name) : bytes_(bytes), name_(name) {}
  template <typename T>
  bool Get(T* v) {
    if (bytes_.size() - pos_ < sizeof(T)) return Fail(sizeof(T));
    std::memcpy(v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool GetBytes(size_t n, std::string_view* out) {
    if (bytes_.size() - pos_ < n) return Fail(n);
    *out = bytes_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool GetFloats(size_t n, std::vector<float>* out) {
    std::string_view raw;
    if (n > bytes_.size() / sizeof(float) || !GetBytes(n * sizeof(float), &raw)) return Fail(n * 4);
    out->resize(n);
    if (n) std::memcpy(out->data(), raw.data(), raw.size());
    return true;
  }
  size_t pos() const { return pos_; }
  const Status& status() const { return status_; }

 private:
  bool Fail(size_t want) {
    if (status_.ok()) {
      status_ = Status::Corruption(name_ + ": truncated at byte " + std::to_string(pos_) +
                                   " (wanted " + std::to_string(want) + " more bytes of " +
                                   std::to_string(bytes_.size()) + ")");
    }
    return false;
  }
  std::string_view bytes_;
  std::string name_;
  size_t pos_ = 0;
  Status status_;
};

Status VerifyTrailer(std::string_view bytes, const char* magic, const std::string& name) {
  if (bytes.size() < 16 || std::memcmp(bytes.data(), magic, 8) != 0) {
    return Status::Corruption(name + ": not an fmps file (bad magic or too short: " +
                              std::to_string(bytes.size()) + " bytes)");
  }
  uint64_t stored;
  std::memcpy(&stored, bytes.data() + bytes.size() - 8, 8);
  uint64_t actual = Checksum64(bytes.data(), bytes.size() - 8);
  if (stored != actual)
    return Status::Corruption(name + ": checksum mismatch (file damaged or truncated)");
  return Status::OK();
}

}  // namespace

std::string EncodeShard(const ShardData& shard) {
  std::string out(kShardMagic, 8);
  Put(&out, shard.server);
  Put(&out, shard.range_begin);
  Put(&out, shard.range_end);
  Put(&out, static_cast<uint64_t>(shard.dense.size()));
  out.append(reinterpret_cast<const char*>(shard.dense.data()), shard.dense.size() * sizeof(float));
  Put(&out, static_cast<uint64_t>(shard.dense_accum.size()));
  out.append(reinterpret_cast<const char*>(shard.dense_accum.data()),
             shard.dense_accum.size() * sizeof(float));
  Put(&out, static_cast<uint64_t>(shard.store.size()));
  out.append(shard.store);
  Put(&out, Checksum64(out.data(), out.size()));
  return out;
}

Result<ShardData> DecodeShard(std::string_view bytes, const std::string& source_name,
                              std::string_view* store_view) {
  FMPS_RETURN_IF_ERROR(VerifyTrailer(bytes, kShardMagic, source_name));
  Cursor c(bytes.substr(0, bytes.size() - 8), source_name);
  std::string_view magic;
  ShardData shard;
  uint64_t n = 0;
  std::string_view store;
  bool ok = c.GetBytes(8, &magic) && c.Get(&shard.server) && c.Get(&shard.range_begin) &&
            c.Get(&shard.range_end) && c.Get(&n) && c.GetFloats(n, &shard.dense) && c.Get(&n) &&
            c.GetFloats(n, &shard.dense_accum) && c.Get(&n) && c.GetBytes(n, &store);
  if (!ok) return c.status();
  if (c.pos() != bytes.size() - 8) {
    return Status::Corruption(source_name + ": unexpected bytes at offset " +
                              std::to_string(c.pos()));
  }
  if (store_view != nullptr) {
    *store_view = store;
  } else {
    shard.store.assign(store);
  }
  return shard;
}

std::string ShardFileName(int64_t version, int server) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "shard-%06lld-%03d", static_cast<long long>(version), server);
  return buf;
}

std::string ManifestFileName(int64_t version) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "MANIFEST-%06lld", static_cast<long long>(version));
  return buf;
}

Status WriteManifest(const std::string& dir, const proto::Manifest& manifest, Env* env) {
  std::string body;
  manifest.SerializeToString(&body);
  std::string out(kManifestMagic, 8);
  Put(&out, static_cast<uint64_t>(body.size()));
  out.append(body);
  Put(&out, Checksum64(out.data(), out.size()));
  return WriteFileAtomic(dir + "/" + ManifestFileName(manifest.version()), out, env);
}

Result<proto::Manifest> ReadManifest(const std::string& path, Env* env) {
  Result<std::string> bytes = ReadFile(path, env);
  if (!bytes.ok()) return bytes.status();
  FMPS_RETURN_IF_ERROR(VerifyTrailer(bytes.value(), kManifestMagic, path));
  Cursor c(std::string_view(bytes.value()).substr(0, bytes->size() - 8), path);
  std::string_view magic, body;
  uint64_t n = 0;
  if (!(c.GetBytes(8, &magic) && c.Get(&n) && c.GetBytes(n, &body))) return c.status();
  proto::Manifest m;
  if (!m.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return Status::Corruption(path + ": manifest does not decode");
  }
  return m;
}

std::vector<int64_t> ManifestVersions(const std::string& dir, Env* env) {
  std::vector<int64_t> versions;
  Result<std::vector<std::string>> names = env->GetChildren(dir);
  if (!names.ok()) return versions;
  for (const std::string& name : *names) {
    long long v;
    char tail;
    if (std::sscanf(name.c_str(), "MANIFEST-%lld%c", &v, &tail) == 1) versions.push_back(v);
  }
  std::sort(versions.rbegin(), versions.rend());
  return versions;
}

Status VerifyShards(const std::string& dir, const proto::Manifest& m, Env* env) {
  const std::string path = dir + "/" + ManifestFileName(m.version());
  for (const auto& shard : m.shards()) {
    std::string file = dir + "/" + shard.file();
    Result<std::string> bytes = ReadFile(file, env);
    Status st = bytes.ok() ? VerifyTrailer(bytes.value(), kShardMagic, file) : bytes.status();
    if (st.ok() && Checksum64(bytes->data(), bytes->size()) != shard.checksum()) {
      st = Status::Corruption(file + ": does not match the checksum in " + path);
    }
    if (!st.ok()) return st;
  }
  return Status::OK();
}

int64_t NewestManifestVersion(const std::string& dir, Env* env) {
  const std::vector<int64_t> versions = ManifestVersions(dir, env);
  return versions.empty() ? 0 : versions.front();
}

Result<proto::Manifest> FindNewestGoodManifest(const std::string& dir, Env* env,
                                               std::vector<std::string>* problems) {
  for (int64_t v : ManifestVersions(dir, env)) {
    std::string path = dir + "/" + ManifestFileName(v);
    Result<proto::Manifest> m = ReadManifest(path, env);
    Status st = m.ok() ? VerifyShards(dir, m.value(), env) : m.status();
    if (!st.ok()) {
      LOG(WARNING) << "skipping checkpoint " << v << ": " << st.ToString();
      if (problems != nullptr) problems->push_back(st.message());
      continue;
    }
    return m;
  }
  return Status::NotFound("no complete checkpoint (MANIFEST with verified shards) in " + dir);
}

Result<std::vector<int>> OverlappingShards(const proto::Manifest& manifest, uint64_t begin,
                                           uint64_t end, const std::string& source) {
  // Ends as 128-bit numbers: 0 stands for 2^64.
  using U128 = unsigned __int128;
  auto end_of = [](uint64_t e) { return e == 0 ? U128{1} << 64 : U128{e}; };
  std::vector<int> order(manifest.shards_size());
  for (int i = 0; i < manifest.shards_size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    return manifest.shards(a).range_begin() < manifest.shards(b).range_begin();
  });
  U128 covered = 0;
  for (int i : order) {
    const auto& shard = manifest.shards(i);
    if (U128{shard.range_begin()} != covered || end_of(shard.range_end()) <= covered) {
      return Status::Corruption(source + ": the key ranges of its " +
                                std::to_string(manifest.shards_size()) +
                                " shards do not tile the ring (shard " + shard.file() +
                                " begins at " + std::to_string(shard.range_begin()) + ")");
    }
    covered = end_of(shard.range_end());
  }
  if (covered != U128{1} << 64) {
    return Status::Corruption(source + ": the key ranges of its shards end before 2^64");
  }
  std::vector<int> overlapping;
  for (int i : order) {
    const auto& shard = manifest.shards(i);
    if (U128{shard.range_begin()} < end_of(end) && U128{begin} < end_of(shard.range_end()))
      overlapping.push_back(i);
  }
  return overlapping;
}

void PruneCheckpoints(const std::string& dir, int keep, Env* env) {
  std::vector<int64_t> versions = ManifestVersions(dir, env);
  for (size_t i = static_cast<size_t>(std::max(keep, 1)); i < versions.size(); ++i) {
    Result<proto::Manifest> m = ReadManifest(dir + "/" + ManifestFileName(versions[i]), env);
    if (m.ok()) {
      for (const auto& shard : m->shards()) (void)env->RemoveFile(dir + "/" + shard.file());
    }
    (void)env->RemoveFile(dir + "/" + ManifestFileName(versions[i]));
  }
}

}  // namespace fmps
