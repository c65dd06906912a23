#include "ps/store/store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "ps/store/arenas.h"
#include "ps/store/update_rules.h"
#include "tests/store/store_test_options.h"

namespace fmps {
namespace {

StoreOptions TestOptions(RankPolicy policy) {
  StoreOptions options = testing::BaseStoreOptions();
  options.ftrl = {/*alpha=*/0.1f, /*beta=*/1.0f, /*l1=*/0.5f, /*l2=*/1.0f};
  options.v_lr = 0.1f;
  options.v_init_scale = 0.1f;
  options.v_l2 = 0.0f;  // keeps V fixed under zero gradients, so prefixes can be compared exactly
  options.policy = std::move(policy);
  options.seed = 3;
  return options;
}

struct Row {
  float w = 0;
  std::vector<float> v;
};

Row PullOne(const Store& store, uint64_t key) {
  std::vector<float> values;
  std::vector<uint16_t> widths;
  const uint64_t keys[] = {key};
  store.Pull(keys, &values, &widths);
  EXPECT_EQ(widths.size(), 1u);
  EXPECT_EQ(values.size(), 1u + widths[0]);
  return Row{values[0], std::vector<float>(values.begin() + 1, values.end())};
}

// Pushes one key: w gradient, V gradient (its size is the width the worker saw), count.
void PushOne(Store& store, uint64_t key, float grad_w, std::vector<float> grad_v, uint32_t count) {
  std::vector<float> grads = {grad_w};
  grads.insert(grads.end(), grad_v.begin(), grad_v.end());
  const uint64_t keys[] = {key};
  const uint16_t widths[] = {static_cast<uint16_t>(grad_v.size())};
  const uint32_t counts[] = {count};
  ASSERT_TRUE(store.Push(keys, grads, widths, counts).ok());
}

float Init(const StoreOptions& options, uint64_t key, uint32_t dim) {
  return InitialEmbeddingValue(options.seed, key, dim, options.v_init_scale);
}

TEST(RankPolicyTest, DiFactoLevelsTable) {
  const RankPolicy policy = RankPolicy::DiFacto(8, 4, 1, 10, 100);
  EXPECT_EQ(policy.MaxWidth(), 8u);
  for (uint64_t n = 0; n <= 200; ++n) {
    uint32_t expected;
    if (n >= 100)
      expected = 8;  // head: k
    else if (n >= 10)
      expected = 4;  // middle: mid_rank
    else if (n >= 1)
      expected = static_cast<uint32_t>(std::min<uint64_t>(n, 4));  // tail
    else
      expected = 0;
    EXPECT_EQ(policy.WidthFor(n), expected) << "count " << n;
  }
  EXPECT_EQ(policy.WidthFor(~uint64_t{0}), 8u);
}

TEST(RankPolicyTest, FixedAndGenericLevels) {
  const RankPolicy fixed = RankPolicy::Fixed(5, 3);
  EXPECT_EQ(fixed.MaxWidth(), 5u);
  EXPECT_EQ(fixed.WidthFor(0), 0u);
  EXPECT_EQ(fixed.WidthFor(2), 0u);
  EXPECT_EQ(fixed.WidthFor(3), 5u);
  EXPECT_EQ(fixed.WidthFor(1000), 5u);
  RankPolicy generic;
  generic.levels = {{2, 3}, {5, 6}, {9, 2}};  // widths need not grow with the level
  EXPECT_EQ(generic.MaxWidth(), 6u);
  const uint32_t expected[] = {0, 0, 3, 3, 3, 6, 6, 6, 6, 2, 2};
  for (uint64_t n = 0; n < 11; ++n) EXPECT_EQ(generic.WidthFor(n), expected[n]) << n;
  EXPECT_EQ(RankPolicy{}.WidthFor(5), 0u);
}

TEST(StoreTest, UnknownKeysReadAsZeroAndAreNotInserted) {
  Store store(TestOptions(RankPolicy::DiFacto(8, 4, 1, 10, 100)));
  const Row row = PullOne(store, 77);
  EXPECT_EQ(row.w, 0.0f);
  EXPECT_TRUE(row.v.empty());
  EXPECT_EQ(store.Stats().keys, 0u);
}

TEST(StoreTest, NoEmbeddingBelowCountThresholdOrWithZeroWeight) {
  const StoreOptions options = TestOptions(RankPolicy::DiFacto(8, 4, 5, 10, 100));
  Store store(options);
  PushOne(store, 1, -2.0f, {}, 1);  // w > 0 but count 1 < 5
  EXPECT_GT(PullOne(store, 1).w, 0.0f);
  EXPECT_TRUE(PullOne(store, 1).v.empty());
  PushOne(store, 1, 0.0f, {}, 3);  // count 4
  EXPECT_TRUE(PullOne(store, 1).v.empty());
  PushOne(store, 2, 0.3f, {}, 200);  // count far above the threshold but |z| <= l1: w == 0
  EXPECT_EQ(PullOne(store, 2).w, 0.0f);
  EXPECT_TRUE(PullOne(store, 2).v.empty());
  EXPECT_EQ(store.Stats().embeddings, 0u);
  PushOne(store, 1, 0.0f, {}, 1);  // count 5, w != 0: admitted with width min(5, 4) = 4
  const Row row = PullOne(store, 1);
  ASSERT_EQ(row.v.size(), 4u);
  for (uint32_t d = 0; d < 4; ++d) EXPECT_EQ(row.v[d], Init(options, 1, d));
  const StoreStats stats = store.Stats();
  EXPECT_EQ(stats.keys, 2u);
  EXPECT_EQ(stats.nonzero_w, 1u);
  EXPECT_EQ(stats.embeddings, 1u);
  EXPECT_EQ(stats.embedding_floats, 4u);
}

TEST(StoreTest, GrowthAcrossLevelsKeepsThePrefix) {
  const StoreOptions options = TestOptions(RankPolicy::DiFacto(8, 4, 1, 10, 100));
  Store store(options);
  PushOne(store, 9, -2.0f, {}, 1);
  Row row = PullOne(store, 9);
  ASSERT_EQ(row.v.size(), 1u);  // tail: min(1, 4)
  // A real gradient on dim 0 so the kept prefix differs from the initial value.
  PushOne(store, 9, 0.0f, {0.5f}, 1);  // count 2 -> width 2, dim 0 updated first
  row = PullOne(store, 9);
  ASSERT_EQ(row.v.size(), 2u);
  const float v0 = row.v[0];
  EXPECT_NEAR(v0, Init(options, 9, 0) - 0.1f * 0.5f / std::sqrt(0.25f + 1e-6f), 1e-6);
  EXPECT_EQ(row.v[1], Init(options, 9, 1));
  PushOne(store, 9, 0.0f, {0.0f, 0.0f}, 8);  // count 10 -> mid level, width 4
  row = PullOne(store, 9);
  ASSERT_EQ(row.v.size(), 4u);
  EXPECT_EQ(row.v[0], v0);
  EXPECT_EQ(row.v[1], Init(options, 9, 1));
  EXPECT_EQ(row.v[3], Init(options, 9, 3));
  PushOne(store, 9, 0.0f, {}, 90);  // count 100 -> head, width 8
  row = PullOne(store, 9);
  ASSERT_EQ(row.v.size(), 8u);
  EXPECT_EQ(row.v[0], v0);
  for (uint32_t d = 1; d < 8; ++d) EXPECT_EQ(row.v[d], Init(options, 9, d)) << d;
  EXPECT_EQ(store.Stats().embedding_floats, 8u);
  EXPECT_EQ(store.Stats().embeddings, 1u);
  // Accumulators moved too: the same gradient on dim 0 now takes a smaller Adagrad step.
  PushOne(store, 9, 0.0f, {0.5f}, 1);
  const float expected = v0 - 0.1f * 0.5f / std::sqrt(0.5f + 1e-6f);
  EXPECT_NEAR(PullOne(store, 9).v[0], expected, 1e-6);
}

TEST(StoreTest, EmbeddingReleasedWhenWeightReturnsToZeroAndSlotReused) {
  const StoreOptions options = TestOptions(RankPolicy::Fixed(4, 1));
  Store store(options);
  PushOne(store, 1, -2.0f, {}, 1);
  PushOne(store, 2, 0.0f, {}, 1);  // key 2 exists, w = 0, no embedding
  ASSERT_EQ(PullOne(store, 1).v.size(), 4u);
  EXPECT_TRUE(PullOne(store, 2).v.empty());
  int pushes = 0;
  while (PullOne(store, 1).w != 0.0f && pushes < 20) {
    PushOne(store, 1, 1.0f, {0.1f, 0.1f, 0.1f, 0.1f}, 1);  // opposite sign: z walks back to 0
    ++pushes;
  }
  ASSERT_LT(pushes, 20);
  EXPECT_TRUE(PullOne(store, 1).v.empty());
  StoreStats stats = store.Stats();
  EXPECT_EQ(stats.embeddings, 0u);
  EXPECT_EQ(stats.embedding_floats, 0u);
  EXPECT_EQ(stats.nonzero_w, 0u);
  const uint64_t bytes = stats.bytes;
  PushOne(store, 2, -2.0f, {}, 1);  // key 2 earns an embedding in the released slot
  EXPECT_EQ(PullOne(store, 2).v.size(), 4u);
  stats = store.Stats();
  EXPECT_EQ(stats.embeddings, 1u);
  EXPECT_EQ(stats.bytes, bytes);  // the arena did not grow
  // A key that comes back gets fresh initial values, not its old row.
  PushOne(store, 1, -3.0f, {}, 1);
  const Row back = PullOne(store, 1);
  ASSERT_EQ(back.v.size(), 4u);
  for (uint32_t d = 0; d < 4; ++d) EXPECT_EQ(back.v[d], Init(options, 1, d));
}

TEST(EmbeddingArenaTest, ReleasedSlotsAreReusedFirst) {
  EmbeddingArena arena(3);
  const uint32_t a = arena.Allocate(), b = arena.Allocate(), c = arena.Allocate();
  EXPECT_EQ(arena.slots(), 3u);
  arena.Release(b);
  arena.Release(a);
  EXPECT_EQ(arena.live_rows(), 1u);
  const uint64_t bytes = arena.bytes();
  EXPECT_EQ(arena.Allocate(), a);  // last released first
  EXPECT_EQ(arena.Allocate(), b);
  EXPECT_EQ(arena.Allocate(), 3u);  // then new slots
  EXPECT_EQ(arena.slots(), 4u);
  EXPECT_EQ(arena.bytes(), bytes);  // still inside the first chunk
  arena.Row(c)[6] = 1.5f;           // rows are 1 + 2 * width floats: z, V, accumulators
  EXPECT_EQ(arena.Row(c)[6], 1.5f);
}

TEST(StoreTest, StaleWidthPushUpdatesTheCommonPrefix) {
  const StoreOptions options = TestOptions(RankPolicy::DiFacto(8, 4, 1, 10, 100));
  Store store(options);
  PushOne(store, 5, -2.0f, {}, 10);  // width 4
  PushOne(store, 6, -2.0f, {}, 1);   // width 1
  const Row before = PullOne(store, 5);
  ASSERT_EQ(before.v.size(), 4u);
  const float w6 = PullOne(store, 6).w;
  // Worker saw width 2 for key 5 and width 8 for key 6 (stale either way); key 6 also has a
  // w gradient of 0, which must be read from the right offset after key 5's two V gradients.
  const uint64_t keys[] = {5, 6};
  const uint16_t widths[] = {2, 8};
  const uint32_t counts[] = {0, 0};
  std::vector<float> grads = {0.0f, 1.0f, 1.0f, 0.0f, 1, 1, 1, 1, 1, 1, 1, 1};
  ASSERT_TRUE(store.Push(keys, grads, widths, counts).ok());
  const Row after = PullOne(store, 5);
  const float step = 0.1f * 1.0f / std::sqrt(1.0f + 1e-6f);
  EXPECT_NEAR(after.v[0], before.v[0] - step, 1e-6);
  EXPECT_NEAR(after.v[1], before.v[1] - step, 1e-6);
  EXPECT_EQ(after.v[2], before.v[2]);
  EXPECT_EQ(after.v[3], before.v[3]);
  const Row six = PullOne(store, 6);
  EXPECT_EQ(six.w, w6);  // zero w gradient at the right offset
  ASSERT_EQ(six.v.size(), 1u);
  EXPECT_NEAR(six.v[0], Init(options, 6, 0) - step, 1e-6);
}

TEST(StoreTest, SizeMismatchIsRejectedWithNothingApplied) {
  Store store(TestOptions(RankPolicy::DiFacto(8, 4, 1, 10, 100)));
  PushOne(store, 1, -2.0f, {}, 1);
  const std::string before = store.Serialize();
  const uint64_t keys[] = {1, 2};
  const uint16_t widths[] = {1, 0};
  const uint32_t counts[] = {1, 1};
  const std::vector<float> short_grads = {1.0f, 1.0f};  // needs 3
  const std::vector<float> long_grads = {1.0f, 1.0f, 1.0f, 1.0f};
  const std::vector<float> grads = {1.0f, 1.0f, 1.0f};
  Status status = store.Push(keys, short_grads, widths, counts);
  EXPECT_EQ(status.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(status.message().find("3"), std::string::npos) << status.message();
  EXPECT_EQ(store.Push(keys, long_grads, widths, counts).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(store.Push(keys, grads, std::span(widths, 1), counts).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(store.Push(keys, grads, widths, std::span(counts, 1)).code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(store.Serialize(), before);
  EXPECT_EQ(store.Stats().keys, 1u);
  EXPECT_TRUE(store.Push(keys, grads, widths, counts).ok());
  EXPECT_EQ(store.Stats().keys, 2u);
}

// Rows are kept in an order that depends on the keys alone, so equal contents serialise to equal
// bytes whatever order the keys arrived in (and however the table grew, split or shrank).
TEST(StoreTest, SerializedBytesDependOnlyOnTheContents) {
  const StoreOptions options = TestOptions(RankPolicy::Fixed(2, 1));
  std::vector<uint64_t> keys;
  for (uint64_t k = 0; k < 30000; ++k) keys.push_back(k * 7 + 1);
  Store forward(options), backward(options);
  for (const uint64_t key : keys) PushOne(forward, key, -2.0f, {}, 1);
  for (auto it = keys.rbegin(); it != keys.rend(); ++it) PushOne(backward, *it, -2.0f, {}, 1);
  EXPECT_EQ(forward.Serialize(), backward.Serialize());
  Store copy(options);
  ASSERT_TRUE(copy.Deserialize(backward.Serialize(), "backward").ok());
  EXPECT_EQ(copy.Serialize(), forward.Serialize());
}

// Re-sharding: one store split by key range into three, those three regrouped into two, and the
// two merged into one again hold every row with its whole state (z, n, count, V, accumulators):
// the serialised bytes depend on the contents alone, so equal bytes mean equal rows.
TEST(StoreTest, DeserializeSelectedSplitsAndMergesShardsExactly) {
  const StoreOptions options = TestOptions(RankPolicy::DiFacto(4, 2, 1, 3, 6));
  Store whole(options);
  for (uint64_t k = 1; k <= 3000; ++k) {
    const uint32_t count = static_cast<uint32_t>(k % 9);
    PushOne(whole, k * 0x9e3779b97f4a7c15ULL, k % 3 == 0 ? -3.0f : 2.0f, {}, count);
    PushOne(whole, k * 0x9e3779b97f4a7c15ULL, -4.0f,
            std::vector<float>(PullOne(whole, k * 0x9e3779b97f4a7c15ULL).v.size(), 0.5f), 1);
  }
  ASSERT_GT(whole.Stats().embeddings, 100u);
  const std::string bytes = whole.Serialize();
  auto in_thirds = [](int i) {
    return [i](uint64_t key) { return (key % 3) == static_cast<uint64_t>(i); };
  };
  std::vector<std::string> thirds;
  uint64_t keys = 0;
  for (int i = 0; i < 3; ++i) {
    Store part(options);
    const Store::ShardSource one[] = {{bytes, "whole"}};
    ASSERT_TRUE(part.DeserializeSelected(one, in_thirds(i)).ok());
    keys += part.Stats().keys;
    thirds.push_back(part.Serialize());
  }
  EXPECT_EQ(keys, whole.Stats().keys);
  const std::vector<Store::ShardSource> sources = {
      {thirds[0], "third 0"}, {thirds[1], "third 1"}, {thirds[2], "third 2"}};
  Store low(options), high(options);
  ASSERT_TRUE(low.DeserializeSelected(sources, [](uint64_t key) { return key % 2 == 0; }).ok());
  ASSERT_TRUE(high.DeserializeSelected(sources, [](uint64_t key) { return key % 2 == 1; }).ok());
  EXPECT_EQ(low.Stats().keys + high.Stats().keys, whole.Stats().keys);
  const std::string low_bytes = low.Serialize(), high_bytes = high.Serialize();
  Store merged(options);
  const std::vector<Store::ShardSource> halves = {{low_bytes, "low"}, {high_bytes, "high"}};
  ASSERT_TRUE(merged.DeserializeSelected(halves, {}).ok());
  EXPECT_EQ(merged.Serialize(), bytes);
  EXPECT_EQ(merged.Stats().embeddings, whole.Stats().embeddings);
  EXPECT_EQ(merged.Stats().nonzero_w, whole.Stats().nonzero_w);
  // A key in two shards is an error, not a silent overwrite.
  Store twice(options);
  const std::vector<Store::ShardSource> overlapping = {{bytes, "a"}, {low_bytes, "b"}};
  const Status st = twice.DeserializeSelected(overlapping, {});
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.ToString().find("b: duplicate key"), std::string::npos) << st.ToString();
}

// w is not stored but derived from (z, n); a shard whose w disagrees (written under other FTRL
// parameters) loads with the w of this store's parameters.
TEST(StoreTest, LoadedWeightIsFtrlsClosedFormOfZAndN) {
  StoreOptions options = TestOptions(RankPolicy::Fixed(2, 1));
  Store store(options);
  PushOne(store, 5, -3.0f, {}, 1);
  PushOne(store, 9, 2.5f, {}, 1);
  const float w5 = PullOne(store, 5).w;
  ASSERT_NE(w5, 0.0f);
  // Same (z, n) under a doubled learning rate: w changes by the closed form.
  StoreOptions faster = options;
  faster.ftrl.alpha = 2 * options.ftrl.alpha;
  Store reloaded(faster);
  ASSERT_TRUE(reloaded.Deserialize(store.Serialize(), "shard").ok());
  const FtrlParams params = faster.ftrl;
  // The first push's state: n = g^2, z = g (w was 0, so sigma * w = 0).
  EXPECT_EQ(PullOne(reloaded, 5).w, FtrlWeight(-3.0f, 9.0f, params));
  EXPECT_NE(PullOne(reloaded, 5).w, w5);
  // Under the same parameters the round trip is exact.
  Store same(options);
  ASSERT_TRUE(same.Deserialize(store.Serialize(), "shard").ok());
  EXPECT_EQ(PullOne(same, 5).w, w5);
  EXPECT_EQ(same.Serialize(), store.Serialize());
}

// A push is applied in passes (rows found first, new keys inserted last); the result must be what
// pushing its keys one at a time gives: new and known keys mixed, rows widening and releasing
// their embeddings, stale widths, and a table that grows and splits under the batch.
TEST(StoreTest, BatchPushEqualsOneKeyAtATime) {
  const StoreOptions options = TestOptions(RankPolicy::DiFacto(8, 4, 1, 3, 6));
  Store batched(options), single(options);
  std::vector<uint64_t> keys;
  std::vector<float> grads;
  std::vector<uint16_t> widths;
  std::vector<uint32_t> counts;
  for (int round = 0; round < 12; ++round) {
    keys.clear();
    grads.clear();
    widths.clear();
    counts.clear();
    // Keys 0..(round+1)*3000 in steps of 3, shuffled: each round brings 1000 new keys.
    for (uint64_t k = 0; k < uint64_t(round + 1) * 1000; ++k) keys.push_back(k * 3 + 1);
    std::reverse(keys.begin() + keys.size() / 2, keys.end());
    for (const uint64_t key : keys) {
      const uint16_t width = PullOne(single, key).v.size();
      const float sign = (key + round) % 5 == 0 ? 1.0f : -1.0f;  // some weights fall back to 0
      grads.push_back(sign * (0.5f + float(key % 7)));
      for (uint16_t d = 0; d < width; ++d) grads.push_back(0.01f * float(d + 1) * sign);
      widths.push_back(width);
      counts.push_back(1 + key % 3);
    }
    ASSERT_TRUE(batched.Push(keys, grads, widths, counts).ok());
    size_t offset = 0;
    for (size_t i = 0; i < keys.size(); ++i) {
      PushOne(
          single, keys[i], grads[offset],
          std::vector<float>(grads.begin() + offset + 1, grads.begin() + offset + 1 + widths[i]),
          counts[i]);
      offset += 1 + widths[i];
    }
  }
  EXPECT_GT(single.Stats().embeddings, 0u);
  for (const uint64_t key : keys) {
    const Row a = PullOne(batched, key), b = PullOne(single, key);
    ASSERT_EQ(a.w, b.w) << key;
    ASSERT_EQ(a.v, b.v) << key;
  }
  EXPECT_EQ(batched.Stats().keys, single.Stats().keys);
  EXPECT_EQ(batched.Stats().nonzero_w, single.Stats().nonzero_w);
  EXPECT_EQ(batched.Stats().embeddings, single.Stats().embeddings);
}

// A push given the hints of an earlier pull of its keys (where their rows were) applies exactly
// what a push without them does, also when pushes of new keys in between moved rows, segments
// grew and split, and when the hints are garbage: each is checked before it is used.
TEST(StoreTest, PushWithThePullsHintsEqualsPushWithout) {
  const StoreOptions options = TestOptions(RankPolicy::DiFacto(8, 4, 1, 3, 6));
  Store hinted(options), plain(options);
  std::vector<float> values;
  std::vector<uint16_t> widths;
  std::vector<uint64_t> hints, keys, fresh;
  std::vector<float> grads;
  std::vector<uint32_t> counts;
  uint64_t garbage = 12345;
  size_t moved = 0;
  for (int round = 0; round < 12; ++round) {
    keys.clear();
    for (uint64_t k = 0; k < uint64_t(round + 1) * 1500; k += 1 + k % 2) keys.push_back(k * 5 + 2);
    values.clear();
    widths.clear();
    hinted.Pull(keys, &values, &widths, &hints);
    ASSERT_EQ(hints.size(), keys.size());
    // Another worker's push of new keys lands between this pull and its push.
    fresh.clear();
    for (uint64_t k = 0; k < 700; ++k) fresh.push_back(uint64_t(round) * 100000 + k * 7 + 3);
    const std::vector<float> fresh_grads(fresh.size(), -1.0f);
    const std::vector<uint16_t> fresh_widths(fresh.size(), 0);
    const std::vector<uint32_t> fresh_counts(fresh.size(), 1);
    ASSERT_TRUE(hinted.Push(fresh, fresh_grads, fresh_widths, fresh_counts).ok());
    ASSERT_TRUE(plain.Push(fresh, fresh_grads, fresh_widths, fresh_counts).ok());
    std::vector<uint64_t> now;
    std::vector<float> ignored;
    std::vector<uint16_t> ignored_widths;
    hinted.Pull(keys, &ignored, &ignored_widths, &now);
    for (size_t i = 0; i < keys.size(); ++i) moved += now[i] != hints[i];
    if (round == 5) {
      for (uint64_t& h : hints) h = garbage = garbage * 6364136223846793005ull + 1;
    }
    grads.clear();
    counts.clear();
    for (size_t i = 0; i < keys.size(); ++i) {
      const float sign = (keys[i] + round) % 5 == 0 ? 1.0f : -1.0f;
      grads.push_back(sign * (0.5f + float(keys[i] % 7)));
      for (uint16_t d = 0; d < widths[i]; ++d) grads.push_back(0.01f * float(d + 1) * sign);
      counts.push_back(1 + keys[i] % 3);
    }
    ASSERT_TRUE(hinted.Push(keys, grads, widths, counts, hints).ok());
    ASSERT_TRUE(plain.Push(keys, grads, widths, counts).ok());
  }
  EXPECT_GT(moved, 0u) << "the pushes in between moved some rows";
  EXPECT_GT(plain.Stats().embeddings, 0u);
  for (const uint64_t key : keys) {
    const Row a = PullOne(hinted, key), b = PullOne(plain, key);
    ASSERT_EQ(a.w, b.w) << key;
    ASSERT_EQ(a.v, b.v) << key;
  }
  EXPECT_EQ(hinted.Serialize(), plain.Serialize());
  EXPECT_FALSE(hinted.Push(keys, grads, widths, counts, std::vector<uint64_t>(3)).ok())
      << "hints must match the keys";
}

}  // namespace
}  // namespace fmps
