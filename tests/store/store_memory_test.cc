// Bounded memory of the Store: admission by min_count, eviction of stale rows, the memory cap.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <unordered_map>
#include <vector>

#include "ps/store/store.h"
#include "tests/store/store_test_options.h"

namespace fmps {
namespace {

StoreOptions MemoryOptions() {
  StoreOptions options = testing::BaseStoreOptions();
  options.ftrl.alpha = 0.1f;
  options.ftrl.l1 = 0.5f;
  options.policy = RankPolicy::Fixed(2, 1);
  return options;
}

// Pushes keys with one occurrence each and gradient `grad_w` on w (widths 0).
void PushKeys(Store& store, const std::vector<uint64_t>& keys, float grad_w) {
  const std::vector<float> grads(keys.size(), grad_w);
  const std::vector<uint16_t> widths(keys.size(), 0);
  const std::vector<uint32_t> counts(keys.size(), 1);
  ASSERT_TRUE(store.Push(keys, grads, widths, counts).ok());
}

std::map<uint64_t, float> Rows(const Store& store) {
  std::map<uint64_t, float> rows;
  store.ForEach([&](uint64_t key, float w, std::span<const float>) { rows[key] = w; });
  return rows;
}

float PullW(const Store& store, uint64_t key, uint16_t* width = nullptr) {
  std::vector<float> values;
  std::vector<uint16_t> widths;
  const uint64_t keys[] = {key};
  store.Pull(keys, &values, &widths);
  if (width != nullptr) *width = widths[0];
  return values[0];
}

TEST(StoreAdmissionTest, NeverAdmitsAKeySeenFewerThanMinCountTimes) {
  StoreOptions options = MemoryOptions();
  options.min_count = 5;
  options.sketch_mb = 1;  // 65536 counters per row: the stream below never triggers ageing
  Store store(options);
  std::mt19937_64 rng(1);
  std::unordered_map<uint64_t, uint64_t> truth;
  uint64_t occurrences = 0;
  for (int batch = 0; batch < 50; ++batch) {
    std::vector<uint64_t> keys;
    for (int i = 0; i < 1000; ++i) {
      // Zipf-like: key r with probability ~ 1/r over 20000 keys.
      const auto r = static_cast<uint64_t>(
          std::exp(std::uniform_real_distribution<double>(0, std::log(20000.0))(rng)));
      keys.push_back(r * 7919 + 1);
    }
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()),
               keys.end());  // one occurrence per key per push
    for (const uint64_t key : keys) ++truth[key];
    occurrences += keys.size();
    PushKeys(store, keys, -2.0f);
    for (const auto& [key, w] : Rows(store)) {
      ASSERT_GE(truth[key], 5u) << "key " << key << " admitted after " << truth[key]
                                << " occurrences";
    }
  }
  // A count-min sketch never under-counts, so every key that reached min_count has its row.
  const std::map<uint64_t, float> rows = Rows(store);
  uint64_t applied = 0;
  for (const auto& [key, count] : truth) {
    if (count >= 5) {
      EXPECT_EQ(rows.count(key), 1u) << "key " << key << " seen " << count << " times";
    } else {
      uint16_t width = 1;
      EXPECT_EQ(PullW(store, key, &width), 0.0f);
      EXPECT_EQ(width, 0u);
    }
    if (rows.count(key)) applied += 1;
  }
  const StoreStats stats = store.Stats();
  EXPECT_EQ(stats.keys, rows.size());
  EXPECT_GT(stats.sketch_bytes, 0u);
  EXPECT_LE(stats.sketch_bytes, 1u << 20);
  EXPECT_GT(stats.pending_pushes, 0u);
  EXPECT_LT(stats.pending_pushes, occurrences);
}

TEST(StoreAdmissionTest, GradientsBeforeAdmissionAreDropped) {
  StoreOptions options = MemoryOptions();
  options.min_count = 3;
  Store gated(options);
  PushKeys(gated, {42}, -5.0f);
  PushKeys(gated, {42}, -5.0f);
  EXPECT_EQ(gated.Stats().keys, 0u);
  EXPECT_EQ(PullW(gated, 42), 0.0f);
  PushKeys(gated, {42}, -5.0f);  // third occurrence: admitted, this gradient applied
  EXPECT_EQ(gated.Stats().keys, 1u);
  // Same as one push of the gradient to an ungated store.
  Store open(MemoryOptions());
  PushKeys(open, {42}, -5.0f);
  EXPECT_NE(PullW(open, 42), 0.0f);
  EXPECT_EQ(PullW(gated, 42), PullW(open, 42));
  EXPECT_EQ(MemoryOptions().min_count, 1u);
  EXPECT_EQ(open.Stats().sketch_bytes, 0u);  // min_count 1: no sketch at all
}

TEST(StoreEvictionTest, RowCountStaysFlatOverAMillionPushesOfFreshKeys) {
  StoreOptions options = MemoryOptions();
  options.evict_after = 200;
  Store store(options);
  const std::vector<uint64_t> hot = {1, 2, 3};
  uint64_t max_rows_late = 0;
  uint64_t fresh = 1000;
  std::vector<uint64_t> keys;
  std::vector<float> grads;
  const std::vector<uint16_t> widths(5, 0);
  const std::vector<uint32_t> counts(5, 1);
  for (int push = 0; push < 1000000; ++push) {
    // Three hot keys whose w stays nonzero, two never-seen keys (half get w != 0, half not).
    keys = {hot[0], hot[1], hot[2], fresh++, fresh++};
    grads = {-3.0f, 3.0f, -3.0f, (push & 1) ? 3.0f : 0.1f, 0.0f};
    ASSERT_TRUE(store.Push(keys, grads, widths, counts).ok());
    if (push >= 500000) max_rows_late = std::max(max_rows_late, store.Stats().keys);
  }
  const StoreStats stats = store.Stats();
  // Live vocabulary: 3 hot keys + 2 fresh keys per push over about evict_after pushes, plus the
  // sweep's lag; without eviction this would be 2,000,003 rows.
  EXPECT_LE(max_rows_late, 2000u);
  EXPECT_GE(stats.evicted, 2000000u - 2000u);
  for (const uint64_t key : hot) EXPECT_NE(PullW(store, key), 0.0f) << "hot key " << key;
  EXPECT_EQ(PullW(store, 1000), 0.0f);  // the first fresh key is long gone
}

TEST(StoreEvictionTest, NoEvictionWhenDisabled) {
  Store store(MemoryOptions());
  for (uint64_t push = 0; push < 3000; ++push) PushKeys(store, {push + 100}, 0.0f);
  EXPECT_EQ(store.Stats().keys, 3000u);
  EXPECT_EQ(store.Stats().evicted, 0u);
}

TEST(StoreMemoryCapTest, BytesStayUnderTheCapAndHotKeysSurvive) {
  StoreOptions options = testing::BaseStoreOptions();  // DiFacto policy: rows get embeddings
  options.max_memory_mb = 4;
  Store store(options);
  const uint64_t cap = 4u << 20;
  std::mt19937_64 rng(2);
  std::vector<uint64_t> keys;
  const std::vector<uint64_t> hot = {11, 12, 13, 14};
  uint64_t max_bytes = 0;
  for (int batch = 0; batch < 600; ++batch) {
    keys.assign(hot.begin(), hot.end());
    for (int i = 0; i < 1000; ++i) keys.push_back(rng());
    std::vector<float> grads(keys.size(), -3.0f);
    const std::vector<uint16_t> widths(keys.size(), 0);
    const std::vector<uint32_t> counts(keys.size(), 3);
    ASSERT_TRUE(store.Push(keys, grads, widths, counts).ok());
    max_bytes = std::max(max_bytes, store.Stats().bytes);
  }
  const StoreStats stats = store.Stats();
  EXPECT_LT(stats.keys, 600000u);
  EXPECT_GT(stats.evicted_for_memory, 0u);
  EXPECT_EQ(stats.evicted, stats.evicted_for_memory);
  // Room is made before a push lands, so held bytes never pass the cap.
  EXPECT_LE(max_bytes, cap) << "max bytes " << max_bytes;
  EXPECT_GT(stats.bytes, cap / 2);  // and the store does use its budget
  for (const uint64_t key : hot) EXPECT_NE(PullW(store, key), 0.0f) << "hot key " << key;
}

TEST(StoreMemoryTest, SerializeRoundTripsAfterEvictions) {
  StoreOptions options = testing::BaseStoreOptions();
  options.evict_after = 50;
  options.min_count = 2;
  Store store(options);
  std::mt19937_64 rng(3);
  for (int push = 0; push < 400; ++push) {
    std::vector<uint64_t> keys = {1, 2, 3};
    for (int i = 0; i < 20; ++i) keys.push_back(rng() % 3000 + 10);
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
    std::vector<float> grads(keys.size());
    for (auto& g : grads) g = std::uniform_real_distribution<float>(-3, 3)(rng);
    const std::vector<uint16_t> widths(keys.size(), 0);
    const std::vector<uint32_t> counts(keys.size(), 1);
    ASSERT_TRUE(store.Push(keys, grads, widths, counts).ok());
  }
  ASSERT_GT(store.Stats().evicted, 0u);
  const std::string bytes = store.Serialize();
  Store copy(options);
  ASSERT_TRUE(copy.Deserialize(bytes, "round trip").ok());
  EXPECT_EQ(copy.Serialize(), bytes);
  std::map<uint64_t, std::vector<float>> a, b;
  store.ForEach([&](uint64_t k, float w, std::span<const float> v) {
    a[k] = {w};
    a[k].insert(a[k].end(), v.begin(), v.end());
  });
  copy.ForEach([&](uint64_t k, float w, std::span<const float> v) {
    b[k] = {w};
    b[k].insert(b[k].end(), v.begin(), v.end());
  });
  EXPECT_EQ(a, b);
  EXPECT_EQ(copy.Stats().keys, store.Stats().keys);
  EXPECT_EQ(copy.Stats().nonzero_w, store.Stats().nonzero_w);
  EXPECT_EQ(copy.Stats().embeddings, store.Stats().embeddings);
}

}  // namespace
}  // namespace fmps
