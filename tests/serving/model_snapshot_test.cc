// ModelSnapshot::Load on a checkpoint written as the servers write one (two shards, dense block
// on server 0): every key reads as the stores' Pull answers, zero-padded; unknown keys read 0;
// a missing directory or a shard whose dense block does not fit the model is a clear error.
#include "serving/model_snapshot.h"

#include <random>

#include "gtest/gtest.h"
#include "models/job_config.h"
#include "ps/base/env.h"
#include "ps/base/keys.h"
#include "ps/checkpoint.h"
#include "ps/store/store.h"
#include "tests/ps/temp_dir.h"
#include "tests/store/store_test_options.h"

namespace fmps {
namespace {

constexpr int kWidth = 4;

// Pushes keys into a store so they get w != 0 and embeddings of width 2 or 4.
std::unique_ptr<Store> FilledStore(const std::vector<uint64_t>& keys, uint64_t seed) {
  StoreOptions o = testing::BaseStoreOptions();
  o.ftrl.l1 = 0;
  o.policy = RankPolicy::DiFacto(kWidth, 2, 1, 3, 5);  // width 2 from 3 pushes, 4 from 5
  o.seed = seed;
  auto store = std::make_unique<Store>(o);
  std::mt19937_64 rng(seed);
  for (int round = 0; round < 6; ++round) {
    std::vector<uint64_t> ks;
    std::vector<float> grads;
    std::vector<uint16_t> widths;
    std::vector<float> values;
    store->Pull(keys, &values, &widths);
    for (size_t i = 0; i < keys.size(); ++i) {
      if (round >= 3 && i % 3 == 0) continue;  // these stay at width 2
      ks.push_back(keys[i]);
      grads.push_back(0.1f * float(int(rng() % 7) - 3) + 0.05f);
      for (int d = 0; d < widths[i]; ++d) grads.push_back(0.01f * float(int(rng() % 5) - 2));
    }
    std::vector<uint16_t> push_widths;
    std::vector<float> unused;
    store->Pull(ks, &unused, &push_widths);
    std::vector<uint32_t> counts(ks.size(), 1);
    EXPECT_TRUE(store->Push(ks, grads, push_widths, counts).ok());
  }
  return store;
}

TEST(ModelSnapshotTest, LoadsEveryShardAsTheStoresAnswer) {
  TempDir dir;
  proto::JobConfig config = DefaultJobConfig();
  config.set_model("fm");
  config.set_k(kWidth);
  config.set_num_fields(3);
  config.set_format("libffm");
  // The store derives w from z and n with the FTRL options: the config carries the stores' own.
  const StoreOptions defaults = testing::BaseStoreOptions();
  config.set_ftrl_alpha(defaults.ftrl.alpha);
  config.set_ftrl_beta(defaults.ftrl.beta);
  config.set_ftrl_l1(0);
  config.set_ftrl_l2(defaults.ftrl.l2);
  std::vector<uint64_t> keys0, keys1;
  for (int i = 0; i < 40; ++i) (i % 2 ? keys1 : keys0).push_back(MakeKey(i % 3, HashInt(i)));
  std::vector<std::unique_ptr<Store>> stores;
  stores.push_back(FilledStore(keys0, 1));
  stores.push_back(FilledStore(keys1, 2));
  // Rows with w = 0 and no embedding (a zero gradient leaves z = 0): they score as unknown keys,
  // and the snapshot does not keep them.
  std::vector<uint64_t> zero_keys;
  for (int i = 0; i < 10; ++i) zero_keys.push_back(MakeKey(i % 3, HashInt(1000 + i)));
  ASSERT_TRUE(stores[0]
                  ->Push(zero_keys, std::vector<float>(zero_keys.size(), 0.f),
                         std::vector<uint16_t>(zero_keys.size(), 0),
                         std::vector<uint32_t>(zero_keys.size(), 1))
                  .ok());
  EXPECT_EQ(stores[0]->Stats().keys, keys0.size() + zero_keys.size());
  proto::Manifest manifest;
  manifest.set_version(3);
  *manifest.mutable_config() = config;
  for (int s = 0; s < 2; ++s) {
    ShardData shard;
    shard.server = s;
    if (s == 0) shard.dense = {0.25f};
    shard.store = stores[s]->Serialize();
    const std::string bytes = EncodeShard(shard);
    ASSERT_TRUE(WriteFileAtomic(dir.File(ShardFileName(3, s)), bytes).ok());
    auto* entry = manifest.add_shards();
    entry->set_server(s);
    entry->set_file(ShardFileName(3, s));
    entry->set_checksum(Checksum64(bytes.data(), bytes.size()));
  }
  ASSERT_TRUE(WriteManifest(dir.path(), manifest).ok());

  Result<std::unique_ptr<ModelSnapshot>> loaded = ModelSnapshot::Load(dir.path());
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  const ModelSnapshot& snap = *loaded.value();
  EXPECT_EQ(snap.version(), 3);
  EXPECT_EQ(snap.config().model(), "fm");
  EXPECT_EQ(snap.width(), kWidth);
  ASSERT_EQ(snap.dense().size(), 1u);
  EXPECT_EQ(snap.dense()[0], 0.25f);
  EXPECT_EQ(snap.num_keys(), 40u);
  EXPECT_EQ(snap.num_dropped(), zero_keys.size());
  int narrow = 0;
  for (int s = 0; s < 3; ++s) {
    const std::vector<uint64_t>& keys = s == 0 ? keys0 : s == 1 ? keys1 : zero_keys;
    Store& store = *stores[s == 1 ? 1 : 0];
    std::vector<float> values, w, V;
    std::vector<uint16_t> widths, got_widths;
    store.Pull(keys, &values, &widths);
    snap.Lookup(keys, &w, &V, &got_widths);
    size_t pos = 0;
    for (size_t i = 0; i < keys.size(); ++i) {
      EXPECT_EQ(got_widths[i], widths[i]);
      EXPECT_EQ(w[i], values[pos++]);
      EXPECT_EQ(w[i] != 0.f, s < 2);
      for (int d = 0; d < kWidth; ++d) {
        EXPECT_EQ(V[i * kWidth + d], d < widths[i] ? values[pos + d] : 0.f) << i << " " << d;
      }
      pos += widths[i];
      narrow += widths[i] == 2;
      float gw;
      const float* gv = snap.Get(keys[i], &gw);
      EXPECT_EQ(gw, w[i]);
      EXPECT_EQ(gv[0], V[i * kWidth]);
    }
  }
  EXPECT_GT(narrow, 0) << "the test wants embeddings narrower than the model's width";
  // A key the model never saw reads as zeros.
  float w = 1.f;
  const float* v = snap.Get(MakeKey(1, HashInt(12345)), &w);
  EXPECT_EQ(w, 0.f);
  for (int d = 0; d < kWidth; ++d) EXPECT_EQ(v[d], 0.f);
  EXPECT_FALSE(snap.Contains(MakeKey(1, HashInt(12345))));
  EXPECT_TRUE(snap.Contains(keys0[0]));

  // A config whose model needs a bigger dense block than server 0 wrote: Corruption.
  config.set_model("dplr");
  config.set_rank(2);
  *manifest.mutable_config() = config;
  manifest.set_version(4);
  for (auto& entry : *manifest.mutable_shards()) {
    const std::string to = dir.File(ShardFileName(4, entry.server()));
    Result<std::string> bytes = ReadFile(dir.File(entry.file()));
    ASSERT_TRUE(bytes.ok());
    ASSERT_TRUE(WriteFileAtomic(to, bytes.value()).ok());
    entry.set_file(ShardFileName(4, entry.server()));
  }
  ASSERT_TRUE(WriteManifest(dir.path(), manifest).ok());
  Result<std::unique_ptr<ModelSnapshot>> bad = ModelSnapshot::Load(dir.path());
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("dense block does not match model dplr"), std::string::npos)
      << bad.status().ToString();
}

TEST(ModelSnapshotTest, MissingDirectoryIsAnError) {
  Result<std::unique_ptr<ModelSnapshot>> s = ModelSnapshot::Load("/nonexistent/fmps/model");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().ToString().find("/nonexistent/fmps/model"), std::string::npos)
      << s.status().ToString();
}

TEST(ModelSnapshotTest, FromRowsRefusesDuplicatesAndWideRows) {
  proto::JobConfig config;
  config.set_model("fm");
  config.set_k(2);
  config.set_num_fields(2);
  EXPECT_FALSE(ModelSnapshot::FromRows(config, {0.f}, {{1, 0.f, {}}, {1, 0.f, {}}}).ok());
  EXPECT_FALSE(ModelSnapshot::FromRows(config, {0.f}, {{1, 0.f, {1, 2, 3}}}).ok());
  EXPECT_FALSE(ModelSnapshot::FromRows(config, {0.f, 1.f}, {}).ok());
  EXPECT_TRUE(ModelSnapshot::FromRows(config, {0.f}, {{1, 0.f, {1}}}).ok());
}

// Keys with w but no embedding are kept without a row of embeddings: they read as w and zeros of
// width 0, and only embedded keys take rows of the model's width.
TEST(ModelSnapshotTest, KeysWithoutAnEmbeddingTakeNoEmbeddingRow) {
  proto::JobConfig config;
  config.set_model("fm");
  config.set_k(4);
  config.set_num_fields(2);
  Result<std::unique_ptr<ModelSnapshot>> s = ModelSnapshot::FromRows(
      config, {0.f},
      {{1, 0.5f, {}}, {2, -0.25f, {1.f, 2.f}}, {3, 0.75f, {}}, {4, 1.f, {3, 4, 5, 6}}});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  const ModelSnapshot& snap = *s.value();
  EXPECT_EQ(snap.num_keys(), 4u);
  EXPECT_EQ(snap.num_embeddings(), 2u);
  std::vector<float> w, V;
  std::vector<uint16_t> widths;
  snap.Lookup(std::vector<uint64_t>{1, 2, 3, 4, 5}, &w, &V, &widths);
  EXPECT_EQ(w, (std::vector<float>{0.5f, -0.25f, 0.75f, 1.f, 0.f}));
  EXPECT_EQ(widths, (std::vector<uint16_t>{0, 2, 0, 4, 0}));
  EXPECT_EQ(V, (std::vector<float>{0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 3, 4, 5, 6, 0, 0, 0, 0}));
}

}  // namespace
}  // namespace fmps
