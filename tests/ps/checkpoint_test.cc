// Checkpoint files: shard encoding round trip, every truncation and flipped byte detected and the
// file named, manifests, choosing the newest checkpoint whose files all verify, pruning.
#include "ps/checkpoint.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "ps/base/env.h"
#include "ps/base/keys.h"
#include "tests/ps/temp_dir.h"

namespace fmps {
namespace {

ShardData SampleShard(int server) {
  ShardData s;
  s.server = server;
  s.range_begin = 0x4000000000000000ULL * server;
  s.range_end = 0x4000000000000000ULL * (server + 1);
  s.dense = {0.5f, -1.25f, 3.0f};
  s.dense_accum = {1.f, 2.f, 4.f};
  s.store = "store bytes of server " + std::to_string(server) + std::string(40, '\x7f');
  return s;
}

TEST(CheckpointTest, ShardRoundTrip) {
  ShardData in = SampleShard(1);
  std::string bytes = EncodeShard(in);
  Result<ShardData> out = DecodeShard(bytes, "shard-x");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->server, in.server);
  EXPECT_EQ(out->range_begin, in.range_begin);
  EXPECT_EQ(out->range_end, in.range_end);
  EXPECT_EQ(out->dense, in.dense);
  EXPECT_EQ(out->dense_accum, in.dense_accum);
  EXPECT_EQ(out->store, in.store);

  ShardData empty;  // a server other than 0 with an empty store
  Result<ShardData> out2 = DecodeShard(EncodeShard(empty), "shard-y");
  ASSERT_TRUE(out2.ok()) << out2.status().ToString();
  EXPECT_TRUE(out2->dense.empty());
  EXPECT_TRUE(out2->store.empty());
}

TEST(CheckpointTest, EveryTruncationIsCorruptionNamingTheFile) {
  std::string bytes = EncodeShard(SampleShard(0));
  for (size_t len = 0; len < bytes.size(); ++len) {
    Result<ShardData> r =
        DecodeShard(std::string_view(bytes).substr(0, len), "/models/shard-000001-000");
    ASSERT_FALSE(r.ok()) << "truncated to " << len << " bytes";
    EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
    EXPECT_NE(r.status().message().find("/models/shard-000001-000"), std::string::npos)
        << r.status().ToString();
  }
}

TEST(CheckpointTest, EveryFlippedByteIsCorruptionNamingTheFile) {
  std::string bytes = EncodeShard(SampleShard(2));
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (unsigned char mask : {0x01, 0x80, 0xff}) {
      std::string bad = bytes;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      Result<ShardData> r = DecodeShard(bad, "shard-flip");
      ASSERT_FALSE(r.ok()) << "byte " << i << " ^ " << int(mask);
      EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
      EXPECT_NE(r.status().message().find("shard-flip"), std::string::npos);
    }
  }
}

TEST(CheckpointTest, GarbageWithAValidChecksumDoesNotOverread) {
  // Right magic and checksum around lengths that point past the end.
  std::string bytes("FMPSSHR1", 8);
  bytes += std::string(4, '\0');    // server
  bytes += std::string(16, '\0');   // range
  bytes += std::string(8, '\xff');  // dense length: huge
  uint64_t sum = Checksum64(bytes.data(), bytes.size());
  bytes.append(reinterpret_cast<const char*>(&sum), 8);
  Result<ShardData> r = DecodeShard(bytes, "crafted");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
  EXPECT_NE(r.status().message().find("crafted"), std::string::npos);
}

TEST(CheckpointTest, BytesAfterTheStoreAreCorruptionEvenWithAValidChecksum) {
  std::string bytes = EncodeShard(SampleShard(0));
  bytes.resize(bytes.size() - 8);  // drop the checksum, add a stray byte, checksum again
  bytes += 'x';
  uint64_t sum = Checksum64(bytes.data(), bytes.size());
  bytes.append(reinterpret_cast<const char*>(&sum), 8);
  Result<ShardData> r = DecodeShard(bytes, "padded");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("unexpected bytes"), std::string::npos)
      << r.status().message();
}

// Writes checkpoint `version` of `servers` shards (as a scheduler would after the servers answer).
proto::Manifest WriteCheckpoint(const std::string& dir, int64_t version, int servers) {
  proto::Manifest m;
  m.set_version(version);
  m.set_epoch(static_cast<int32_t>(version));
  m.set_rows(1000 * static_cast<uint64_t>(version));
  m.add_parts_done(3);
  m.add_parts_done(5);
  m.mutable_config()->set_model("fwfm");
  m.mutable_config()->set_k(8);
  for (int s = 0; s < servers; ++s) {
    ShardData shard = SampleShard(s);
    shard.store += std::to_string(version);
    std::string bytes = EncodeShard(shard);
    std::string file = ShardFileName(version, s);
    EXPECT_TRUE(WriteFileAtomic(dir + "/" + file, bytes).ok());
    auto* e = m.add_shards();
    e->set_server(s);
    e->set_file(file);
    e->set_checksum(Checksum64(bytes.data(), bytes.size()));
    e->set_range_begin(shard.range_begin);
    e->set_range_end(shard.range_end);
  }
  EXPECT_TRUE(WriteManifest(dir, m).ok());
  return m;
}

void FlipByte(const std::string& path, size_t offset) {
  Result<std::string> bytes = ReadFile(path);
  ASSERT_TRUE(bytes.ok());
  std::string b = bytes.value();
  ASSERT_LT(offset, b.size());
  b[offset] = static_cast<char>(b[offset] ^ 0x20);
  ASSERT_TRUE(WriteFileAtomic(path, b).ok());
}

TEST(CheckpointTest, ManifestRoundTripAndDamage) {
  TempDir dir;
  proto::Manifest m = WriteCheckpoint(dir.path(), 7, 2);
  std::string path = dir.File(ManifestFileName(7));
  EXPECT_EQ(path, dir.File("MANIFEST-000007"));
  Result<proto::Manifest> read = ReadManifest(path);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(read->SerializeAsString(), m.SerializeAsString());

  FlipByte(path, 12);
  Result<proto::Manifest> bad = ReadManifest(path);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kCorruption);
  EXPECT_NE(bad.status().message().find(path), std::string::npos) << bad.status().ToString();

  Result<proto::Manifest> missing = ReadManifest(dir.File("MANIFEST-000099"));
  EXPECT_FALSE(missing.ok());
}

TEST(CheckpointTest, NewestGoodManifestSkipsDamagedAndIncompleteCheckpoints) {
  TempDir dir;
  for (int64_t v = 1; v <= 4; ++v) WriteCheckpoint(dir.path(), v, 2);
  Result<proto::Manifest> newest = FindNewestGoodManifest(dir.path());
  ASSERT_TRUE(newest.ok()) << newest.status().ToString();
  EXPECT_EQ(newest->version(), 4);

  FlipByte(dir.File(ManifestFileName(4)), 20);                    // the manifest itself is damaged
  FlipByte(dir.File(ShardFileName(3, 1)), 40);                    // a shard of 3 is damaged
  ASSERT_EQ(::unlink(dir.File(ShardFileName(2, 0)).c_str()), 0);  // a shard of 2 is missing
  newest = FindNewestGoodManifest(dir.path());
  ASSERT_TRUE(newest.ok()) << newest.status().ToString();
  EXPECT_EQ(newest->version(), 1);
  EXPECT_EQ(newest->rows(), 1000u);

  // A shard replaced by another valid shard file (right format, wrong checksum for this manifest).
  Result<std::string> other = ReadFile(dir.File(ShardFileName(1, 0)));
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(WriteFileAtomic(dir.File(ShardFileName(1, 1)), other.value()).ok());
  Result<proto::Manifest> none = FindNewestGoodManifest(dir.path());
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), Status::Code::kNotFound);
  EXPECT_NE(none.status().message().find(dir.path()), std::string::npos);

  TempDir empty;
  EXPECT_EQ(FindNewestGoodManifest(empty.path()).status().code(), Status::Code::kNotFound);
  EXPECT_FALSE(FindNewestGoodManifest(empty.File("no-such-dir")).ok());
}

TEST(CheckpointTest, PruneKeepsTheNewestN) {
  TempDir dir;
  for (int64_t v = 1; v <= 5; ++v) WriteCheckpoint(dir.path(), v, 2);
  PruneCheckpoints(dir.path(), 2);
  auto exists = [&](const std::string& name) { return std::filesystem::exists(dir.File(name)); };
  for (int64_t v = 1; v <= 5; ++v) {
    bool kept = v >= 4;
    EXPECT_EQ(exists(ManifestFileName(v)), kept) << "version " << v;
    EXPECT_EQ(exists(ShardFileName(v, 0)), kept) << "version " << v;
    EXPECT_EQ(exists(ShardFileName(v, 1)), kept) << "version " << v;
  }
  Result<proto::Manifest> newest = FindNewestGoodManifest(dir.path());
  ASSERT_TRUE(newest.ok());
  EXPECT_EQ(newest->version(), 5);
  // Pruning again changes nothing; keep 0 still keeps the newest.
  PruneCheckpoints(dir.path(), 2);
  EXPECT_TRUE(exists(ManifestFileName(4)));
  PruneCheckpoints(dir.path(), 0);
  EXPECT_FALSE(exists(ManifestFileName(4)));
  EXPECT_TRUE(exists(ManifestFileName(5)));
}

// Re-sharding: which old shards a new server reads, for 1 -> 3 and 3 -> 2 servers, and manifests
// whose ranges do not tile the ring refused.
TEST(CheckpointTest, OverlappingShardsOfAnotherNumberOfServers) {
  auto manifest_of = [](const std::vector<std::pair<uint64_t, uint64_t>>& ranges) {
    proto::Manifest m;
    for (size_t i = 0; i < ranges.size(); ++i) {
      auto* s = m.add_shards();
      s->set_server(static_cast<int>(i));
      s->set_file("shard-" + std::to_string(i));
      s->set_range_begin(ranges[i].first);
      s->set_range_end(ranges[i].second);
    }
    return m;
  };
  const uint64_t third = 0x5555555555555555ULL, half = 0x8000000000000000ULL;
  const proto::Manifest one = manifest_of({{0, 0}});
  const proto::Manifest three = manifest_of({{0, third}, {third, 2 * third}, {2 * third, 0}});
  for (auto [b, e] : std::vector<std::pair<uint64_t, uint64_t>>{{0, third}, {2 * third, 0}}) {
    Result<std::vector<int>> r = OverlappingShards(one, b, e, "m");
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r.value(), std::vector<int>{0});
  }
  EXPECT_EQ(OverlappingShards(three, 0, half, "m").value(), (std::vector<int>{0, 1}));
  EXPECT_EQ(OverlappingShards(three, half, 0, "m").value(), (std::vector<int>{1, 2}));
  EXPECT_EQ(OverlappingShards(three, third, 2 * third, "m").value(), std::vector<int>{1});
  EXPECT_EQ(OverlappingShards(three, 0, 0, "m").value(), (std::vector<int>{0, 1, 2}));
  // Listed out of order: found all the same.
  const proto::Manifest shuffled = manifest_of({{2 * third, 0}, {0, third}, {third, 2 * third}});
  EXPECT_EQ(OverlappingShards(shuffled, 0, half, "m").value(), (std::vector<int>{1, 2}));
  // A gap, an overlap, or a ring not reaching 2^64 is corruption naming the manifest.
  for (const proto::Manifest& bad :
       {manifest_of({{0, third}, {third + 1, 0}}), manifest_of({{0, half}, {third, 0}}),
        manifest_of({{0, third}, {third, half}}), manifest_of({})}) {
    Result<std::vector<int>> r = OverlappingShards(bad, 0, half, "dir/MANIFEST-000007");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().ToString().find("dir/MANIFEST-000007"), std::string::npos);
  }
}

}  // namespace
}  // namespace fmps
