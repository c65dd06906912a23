// Checkpoint files. A shard file holds one server's store and (server 0) the dense block; a
// MANIFEST lists the shards of one checkpoint version with their checksums, the job config and the
// parts already done. Both are written atomically (temporary file, fsync, rename) and carry an
// XXH3 checksum, so a torn or flipped file is detected and named instead of loaded.
#ifndef FMPS_PS_CHECKPOINT_H_
#define FMPS_PS_CHECKPOINT_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proto/fmps.pb.h"
#include "ps/base/env.h"
#include "ps/base/status.h"

namespace fmps {

struct ShardData {
  int32_t server = 0;
  uint64_t range_begin = 0;
  uint64_t range_end = 0;
  std::vector<float> dense;        // server 0: the dense block
  std::vector<float> dense_accum;  // its Adagrad accumulators
  std::string store;               // Store::Serialize()
};

std::string EncodeShard(const ShardData& shard);
// With `store_view`, the store section is not copied into ShardData::store (left empty) but viewed
// in `bytes` through *store_view (valid while bytes are): a reader that decodes it at once holds a
// shard's bytes once, not twice.
Result<ShardData> DecodeShard(std::string_view bytes, const std::string& source_name,
                              std::string_view* store_view = nullptr);

std::string ShardFileName(int64_t version, int server);
std::string ManifestFileName(int64_t version);

// Writes dir/MANIFEST-<version> atomically.
Status WriteManifest(const std::string& dir, const proto::Manifest& manifest,
                     Env* env = Env::Default());
Result<proto::Manifest> ReadManifest(const std::string& path, Env* env = Env::Default());

// The newest manifest in dir whose own checksum and every shard's checksum verify. Each bad
// checkpoint is logged by name and skipped (and, with `problems`, described there: one line each).
// NotFound when there is none.
Result<proto::Manifest> FindNewestGoodManifest(const std::string& dir, Env* env = Env::Default(),
                                               std::vector<std::string>* problems = nullptr);

// The versions of dir's MANIFEST files, newest first, from their names alone.
std::vector<int64_t> ManifestVersions(const std::string& dir, Env* env = Env::Default());

// OK when every shard manifest `m` (read from dir) lists is there and matches its checksum.
Status VerifyShards(const std::string& dir, const proto::Manifest& m, Env* env = Env::Default());

// The largest version among dir's MANIFEST files (0 when there is none), from their names alone:
// cheap enough to poll; whether that checkpoint verifies is FindNewestGoodManifest's to say.
int64_t NewestManifestVersion(const std::string& dir, Env* env = Env::Default());

// The shards of `manifest` whose Mix64 range overlaps [begin, end) (end 0 stands for 2^64), by
// their index in manifest.shards(): a server of a job with another number of servers than the
// checkpoint's loads its own range from these (re-sharding). Corruption, naming `source`, when
// the shards' ranges do not tile the ring (begin 0, each ending where the next begins, the last
// at 2^64), so no key can be lost or found twice.
Result<std::vector<int>> OverlappingShards(const proto::Manifest& manifest, uint64_t begin,
                                           uint64_t end, const std::string& source);

// Deletes all but the newest `keep` manifests and their shards. Versions are numbered on across
// jobs (a job writing into a model_dir continues after its newest MANIFEST), so these are the
// newest versions of any job.
void PruneCheckpoints(const std::string& dir, int keep, Env* env = Env::Default());

}  // namespace fmps

#endif  // FMPS_PS_CHECKPOINT_H_
