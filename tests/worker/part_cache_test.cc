// PartCache: a cached minibatch expands to exactly what the localizer produced (narrow and wide
// index, values of 1 elided or kept), the bound is kept (a part that does not fit is dropped
// whole and the cache takes no more), and released parts give their blocks back.
#include "worker/part_cache.h"

#include <gtest/gtest.h>

#include <random>

#include "ps/base/keys.h"

namespace fmps {
namespace {

// rows of `per_row` entries over `vocabulary` tokens per field; values 1 unless `valued`.
Minibatch MakeBatch(std::mt19937_64& rng, size_t rows, size_t per_row, uint64_t vocabulary,
                    bool valued) {
  Minibatch b;
  for (size_t r = 0; r < rows; ++r) {
    b.labels.push_back(static_cast<float>(rng() % 2));
    for (size_t j = 0; j < per_row; ++j) {
      b.keys.push_back(MakeKey(static_cast<uint32_t>(j % 39), HashInt(rng() % vocabulary)));
      b.values.push_back(valued && j % 3 == 0 ? static_cast<float>(rng() % 100) / 7.f : 1.f);
    }
    b.offsets.push_back(static_cast<uint32_t>(b.keys.size()));
  }
  return b;
}

// One localized minibatch of rows of `per_row` categorical entries.
LocalBatch Localized(uint64_t seed, size_t rows, size_t per_row, uint64_t vocabulary) {
  std::mt19937_64 rng(seed);
  Localizer localizer(KeyPartition(2));
  LocalBatch batch;
  localizer.Localize(MakeBatch(rng, rows, per_row, vocabulary, false), 39, &batch);
  return batch;
}

void ExpectSame(const LocalBatch& a, const LocalBatch& b) {
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(a.offsets, b.offsets);
  EXPECT_EQ(a.index, b.index);
  EXPECT_EQ(a.values, b.values);
  EXPECT_EQ(a.fields, b.fields);
  EXPECT_EQ(a.keys, b.keys);
  EXPECT_EQ(a.mixed, b.mixed);
  EXPECT_EQ(a.counts, b.counts);
}

TEST(PartCacheTest, ReplaysWhatTheLocalizerProduced) {
  std::mt19937_64 rng(7);
  Localizer localizer(KeyPartition(3));
  PartCache cache(256 << 20);
  struct Case {
    size_t rows, per_row;
    uint64_t vocabulary;
    bool valued;
  };
  // The last case has more than 65536 unique keys: 32-bit indices.
  const std::vector<Case> cases = {
      {200, 39, 50, false}, {300, 13, 1000, true}, {1, 1, 1, false}, {2500, 39, 1u << 20, true}};
  std::vector<LocalBatch> localized(cases.size());
  ASSERT_TRUE(cache.Start("part"));
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    localizer.Localize(MakeBatch(rng, c.rows, c.per_row, c.vocabulary, c.valued), 39,
                       &localized[i]);
    ASSERT_TRUE(cache.Add("part", localized[i]));
  }
  EXPECT_GT(localized.back().keys.size(), size_t{1} << 16);
  EXPECT_EQ(cache.Find("part"), nullptr) << "not complete before Finish";
  cache.Finish("part", 123, 4);
  const PartCache::Entry* entry = cache.Find("part");
  ASSERT_NE(entry, nullptr);
  EXPECT_EQ(entry->lines, 123u);
  EXPECT_EQ(entry->bad_lines, 4u);
  ASSERT_EQ(entry->batches.size(), cases.size());
  EXPECT_FALSE(entry->batches[0].has_values);
  EXPECT_TRUE(entry->batches[1].has_values);
  EXPECT_TRUE(entry->batches.back().wide_index);
  LocalBatch out;  // reused across batches, as the worker's stages are
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE("batch " + std::to_string(i));
    PartCache::Expand(entry->batches[i], &out);
    ExpectSame(out, localized[i]);
  }
}

TEST(PartCacheTest, KeepsItsBoundAndFreesReleasedParts) {
  const LocalBatch batch = Localized(11, 2000, 39, 500);
  // About 300 KB per minibatch: a 1 MiB cache holds three.
  PartCache cache(1 << 20);
  ASSERT_TRUE(cache.Start("a"));
  ASSERT_TRUE(cache.Add("a", batch));
  ASSERT_TRUE(cache.Add("a", batch));
  cache.Finish("a", 4000, 0);
  EXPECT_EQ(cache.bytes(), uint64_t{1} << 20);
  ASSERT_TRUE(cache.Start("b"));
  ASSERT_TRUE(cache.Add("b", batch));
  EXPECT_FALSE(cache.Add("b", batch)) << "past the bound";
  EXPECT_TRUE(cache.full());
  EXPECT_EQ(cache.Find("b"), nullptr) << "a part that did not fit is dropped whole";
  cache.Finish("b", 4000, 0);
  EXPECT_EQ(cache.Find("b"), nullptr);
  EXPECT_FALSE(cache.Start("c")) << "a full cache takes no more parts";
  ASSERT_NE(cache.Find("a"), nullptr) << "parts cached before are kept";
  LocalBatch out;
  PartCache::Expand(cache.Find("a")->batches[1], &out);
  ExpectSame(out, batch);
  cache.Release("a");
  EXPECT_EQ(cache.Find("a"), nullptr);
  EXPECT_EQ(cache.bytes(), 0u) << "the block is unmapped once no part uses it";
}

TEST(PartCacheTest, DropIncompleteKeepsOnlyPartsReadToTheirEnd) {
  const LocalBatch batch = Localized(3, 100, 10, 100);
  PartCache cache(64 << 20);
  ASSERT_TRUE(cache.Start("done"));
  ASSERT_TRUE(cache.Add("done", batch));
  cache.Finish("done", 100, 0);
  ASSERT_TRUE(cache.Start("abandoned"));
  ASSERT_TRUE(cache.Add("abandoned", batch));
  cache.DropIncomplete();
  EXPECT_NE(cache.Find("done"), nullptr);
  cache.Finish("abandoned", 100, 0);  // too late: its entry is gone
  EXPECT_EQ(cache.Find("abandoned"), nullptr);
  cache.Release("done");
  EXPECT_EQ(cache.bytes(), 0u);
}

TEST(PartCacheTest, DisabledCacheTakesNothing) {
  PartCache cache(0);
  EXPECT_FALSE(cache.enabled());
  EXPECT_FALSE(cache.Start("a"));
  EXPECT_FALSE(cache.Add("a", LocalBatch{}));
  EXPECT_EQ(cache.Find("a"), nullptr);
}

}  // namespace
}  // namespace fmps
