// The Store against a plain reference model (std::unordered_map, one std::vector per embedding)
// with the same semantics, on thousands of random operations; and serialisation: round trips,
// flipped bytes, truncations, garbage.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "ps/store/store.h"
#include "ps/store/update_rules.h"
#include "tests/store/store_test_options.h"

namespace fmps {
namespace {

StoreOptions ModelOptions() {
  StoreOptions options = testing::BaseStoreOptions();
  options.ftrl.alpha = 0.1f;
  options.ftrl.l1 = 0.5f;
  options.v_lr = 0.05f;
  options.v_l2 = 1e-3f;
  options.v_init_scale = 0.05f;
  options.policy = RankPolicy::DiFacto(8, 4, 2, 10, 40);
  options.seed = 11;
  return options;
}

// The semantics of Store::Push written as plainly as possible.
class ReferenceStore {
 public:
  explicit ReferenceStore(const StoreOptions& o)
      : o_(o), ftrl_(o.ftrl), adagrad_{o.v_lr, o.v_l2, o.adagrad_eps} {}

  void Push(const std::vector<uint64_t>& keys, const std::vector<float>& grads,
            const std::vector<uint16_t>& widths, const std::vector<uint32_t>& counts) {
    size_t offset = 0;
    for (size_t i = 0; i < keys.size(); ++i) {
      Row& row = rows_[keys[i]];
      row.count =
          static_cast<uint32_t>(std::min<uint64_t>(uint64_t{row.count} + counts[i], 0xFFFFFFFFu));
      FtrlStep(row.z, row.n, row.w, grads[offset], ftrl_);
      const float* grad_v = &grads[offset + 1];
      offset += 1 + widths[i];
      if (row.w == 0.0f) {
        row.v.clear();
        row.acc.clear();
        continue;
      }
      const size_t common = std::min<size_t>(row.v.size(), widths[i]);
      AdagradStep(row.v.data(), row.acc.data(), grad_v, common, adagrad_);
      const uint32_t target = o_.policy.WidthFor(row.count);
      for (uint32_t d = static_cast<uint32_t>(row.v.size()); d < target; ++d) {
        row.v.push_back(InitialEmbeddingValue(o_.seed, keys[i], d, o_.v_init_scale));
        row.acc.push_back(0.0f);
      }
    }
  }

  uint16_t Width(uint64_t key) const {
    auto it = rows_.find(key);
    return it == rows_.end() ? 0 : static_cast<uint16_t>(it->second.v.size());
  }

  void Pull(const std::vector<uint64_t>& keys, std::vector<float>* values,
            std::vector<uint16_t>* widths) const {
    for (const uint64_t key : keys) {
      auto it = rows_.find(key);
      if (it == rows_.end()) {
        values->push_back(0.0f);
        widths->push_back(0);
        continue;
      }
      values->push_back(it->second.w);
      values->insert(values->end(), it->second.v.begin(), it->second.v.end());
      widths->push_back(static_cast<uint16_t>(it->second.v.size()));
    }
  }

  StoreStats Stats() const {
    StoreStats stats;
    stats.keys = rows_.size();
    for (const auto& [key, row] : rows_) {
      stats.nonzero_w += row.w != 0.0f;
      stats.embeddings += !row.v.empty();
      stats.embedding_floats += row.v.size();
    }
    return stats;
  }

 private:
  struct Row {
    float z = 0, n = 0, w = 0;
    uint32_t count = 0;
    std::vector<float> v, acc;
  };
  StoreOptions o_;
  FtrlParams ftrl_;
  AdagradParams adagrad_;
  std::unordered_map<uint64_t, Row> rows_;
};

void ExpectSameStats(const StoreStats& a, const StoreStats& b) {
  EXPECT_EQ(a.keys, b.keys);
  EXPECT_EQ(a.nonzero_w, b.nonzero_w);
  EXPECT_EQ(a.embeddings, b.embeddings);
  EXPECT_EQ(a.embedding_floats, b.embedding_floats);
}

std::vector<uint64_t> KeyPool(int size, std::mt19937_64& rng) {
  std::vector<uint64_t> pool = {0, ~uint64_t{0}};
  while (static_cast<int>(pool.size()) < size) pool.push_back(rng());
  return pool;
}

// Random pushes of keys from `pool` to both stores.
void FillRandomly(Store* store, ReferenceStore* reference, int batches,
                  const std::vector<uint64_t>& pool, std::mt19937_64& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int b = 0; b < batches; ++b) {
    std::vector<uint64_t> keys;
    std::vector<float> grads;
    std::vector<uint16_t> widths;
    std::vector<uint32_t> counts;
    const int n = 1 + static_cast<int>(rng() % 20);
    for (int i = 0; i < n; ++i) {
      // Skewed towards the front of the pool, so counts span every rank level.
      const uint64_t key = pool[std::min(rng() % pool.size(), rng() % pool.size())];
      keys.push_back(key);
      // Mostly the width the worker would have seen; sometimes a stale one.
      const uint16_t width =
          rng() % 5 == 0 ? static_cast<uint16_t>(rng() % 9) : reference->Width(key);
      widths.push_back(width);
      counts.push_back(static_cast<uint32_t>(rng() % 4));
      grads.push_back(normal(rng));
      for (uint16_t d = 0; d < width; ++d) grads.push_back(0.5f * normal(rng));
    }
    if (rng() % 50 == 0) {  // a malformed push: rejected by both, changes nothing
      grads.push_back(1.0f);
      EXPECT_FALSE(store->Push(keys, grads, widths, counts).ok());
      continue;
    }
    EXPECT_TRUE(store->Push(keys, grads, widths, counts).ok());
    reference->Push(keys, grads, widths, counts);
  }
}

TEST(StoreModelTest, RandomPushPullMatchesReference) {
  const StoreOptions options = ModelOptions();
  auto store = std::make_unique<Store>(options);
  ReferenceStore reference(options);
  std::mt19937_64 rng(2024);
  const std::vector<uint64_t> pool = KeyPool(3000, rng);
  for (int round = 0; round < 40; ++round) {
    FillRandomly(store.get(), &reference, 100, pool, rng);
    std::vector<uint64_t> keys;
    for (int i = 0; i < 50; ++i) keys.push_back(rng() % 3 == 0 ? rng() : pool[rng() % pool.size()]);
    std::vector<float> got, want;
    std::vector<uint16_t> got_widths, want_widths;
    store->Pull(keys, &got, &got_widths);
    reference.Pull(keys, &want, &want_widths);
    ASSERT_EQ(got_widths, want_widths) << "round " << round;
    ASSERT_EQ(got, want) << "round " << round;  // bit-identical: same arithmetic, same order
    ExpectSameStats(store->Stats(), reference.Stats());
    if (round % 10 == 9) {  // a restart in the middle changes nothing
      auto restarted = std::make_unique<Store>(options);
      ASSERT_TRUE(restarted->Deserialize(store->Serialize(), "round.shard").ok());
      store = std::move(restarted);
    }
  }
  const StoreStats stats = store->Stats();
  // The run must have exercised every path: rows with and without embeddings at several widths.
  EXPECT_GT(stats.embeddings, 50u);
  EXPECT_LT(stats.nonzero_w, stats.keys);
  // ForEach visits every key once with its pulled contents.
  uint64_t visited = 0;
  std::vector<int> rows_of_width(9, 0);
  store->ForEach([&](uint64_t key, float w, std::span<const float> v) {
    ++visited;
    ++rows_of_width[v.size()];
    std::vector<float> want;
    std::vector<uint16_t> want_widths;
    reference.Pull({key}, &want, &want_widths);
    ASSERT_EQ(want_widths[0], v.size());
    EXPECT_EQ(want[0], w);
    EXPECT_TRUE(std::equal(v.begin(), v.end(), want.begin() + 1));
  });
  EXPECT_EQ(visited, stats.keys);
  for (const int width : {0, 4, 8}) EXPECT_GT(rows_of_width[width], 0) << width;
}

class StoreSerializeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::mt19937_64 rng(5);
    ReferenceStore reference(ModelOptions());
    pool_ = KeyPool(30, rng);
    FillRandomly(&store_, &reference, 60, pool_, rng);
    pool_.push_back(123456789);  // unknown
    bytes_ = store_.Serialize();
  }
  void ExpectSameContents(const Store& a, const Store& b) {
    std::vector<float> va, vb;
    std::vector<uint16_t> wa, wb;
    a.Pull(pool_, &va, &wa);
    b.Pull(pool_, &vb, &wb);
    EXPECT_EQ(wa, wb);
    EXPECT_EQ(va, vb);
  }
  Store store_{ModelOptions()};
  std::vector<uint64_t> pool_;
  std::string bytes_;
};

TEST_F(StoreSerializeTest, RoundTripIsExact) {
  ASSERT_GT(store_.Stats().embeddings, 3u);
  Store loaded(ModelOptions());
  ASSERT_TRUE(loaded.Deserialize(bytes_, "a.shard").ok());
  ExpectSameContents(store_, loaded);
  ExpectSameStats(store_.Stats(), loaded.Stats());
  EXPECT_EQ(loaded.Serialize(), bytes_);
  Store empty(ModelOptions());
  ASSERT_TRUE(loaded.Deserialize(empty.Serialize(), "empty.shard").ok());
  EXPECT_EQ(loaded.Stats().keys, 0u);
}

TEST_F(StoreSerializeTest, EveryFlippedByteIsDetected) {
  Store target(ModelOptions());
  ASSERT_TRUE(target.Deserialize(bytes_, "good.shard").ok());
  for (size_t i = 0; i < bytes_.size(); ++i) {
    for (const unsigned char flip : {0x01, 0x80}) {
      std::string bad = bytes_;
      bad[i] ^= flip;
      const Status status = target.Deserialize(bad, "bad.shard");
      ASSERT_EQ(status.code(), Status::Code::kCorruption) << "byte " << i;
      ASSERT_NE(status.message().find("bad.shard"), std::string::npos) << status.message();
    }
  }
  ExpectSameContents(store_, target);  // a failed load leaves the old contents
}

TEST_F(StoreSerializeTest, TruncationAnywhereIsDetected) {
  Store target(ModelOptions());
  for (size_t size = 0; size < bytes_.size(); ++size) {
    const Status status = target.Deserialize(std::string_view(bytes_).substr(0, size), "cut.shard");
    ASSERT_EQ(status.code(), Status::Code::kCorruption) << "size " << size;
  }
  for (const size_t size : {size_t{10}, bytes_.size() / 2, bytes_.size() - 1}) {
    const Status status = target.Deserialize(std::string_view(bytes_).substr(0, size), "cut.shard");
    EXPECT_NE(status.message().find("truncated at byte " + std::to_string(size)), std::string::npos)
        << status.message();
  }
}

TEST_F(StoreSerializeTest, NamedErrorsForWidthChecksumAndOptions) {
  Store target(ModelOptions());
  std::string bad = bytes_;
  bad[24 + 8 + 16 + 1] = static_cast<char>(0x7f);  // high byte of row 0's width
  Status status = target.Deserialize(bad, "w.shard");
  EXPECT_NE(status.message().find("bad width"), std::string::npos) << status.message();
  bad = bytes_;
  bad[24 + 8] ^= 0x10;  // row 0's z: structure intact, only the checksum notices
  status = target.Deserialize(bad, "z.shard");
  EXPECT_NE(status.message().find("checksum mismatch"), std::string::npos) << status.message();
  StoreOptions narrower = ModelOptions();
  narrower.policy = RankPolicy::Fixed(4, 1);
  Store other(narrower);
  status = other.Deserialize(bytes_, "o.shard");
  EXPECT_EQ(status.code(), Status::Code::kCorruption);
  EXPECT_NE(status.message().find("max width 8"), std::string::npos) << status.message();
}

TEST_F(StoreSerializeTest, GarbageNeverCrashes) {
  std::mt19937_64 rng(9);
  Store target(ModelOptions());
  for (int trial = 0; trial < 2000; ++trial) {
    std::string garbage(rng() % 200, '\0');
    for (char& c : garbage) c = static_cast<char>(rng());
    if (trial % 2 == 0 && garbage.size() >= 24) {
      // A valid-looking header with a random row count, to reach the row parser.
      garbage.replace(0, 16, bytes_.substr(0, 16));
    }
    EXPECT_FALSE(target.Deserialize(garbage, "junk").ok());
  }
}

}  // namespace
}  // namespace fmps
