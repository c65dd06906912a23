// Localizer: unique keys grouped by owning server, per-key counts and the entry -> key index
// remap, compared with a naive reference (std::map) on random batches.
#include "worker/localizer.h"

#include <gtest/gtest.h>

#include <map>
#include <random>

#include "ps/base/keys.h"

namespace fmps {
namespace {

Minibatch RandomBatch(std::mt19937_64& rng, size_t rows, int fields, size_t vocabulary) {
  Minibatch b;
  for (size_t r = 0; r < rows; ++r) {
    b.labels.push_back(static_cast<float>(rng() % 2));
    size_t n = rng() % 12;
    for (size_t j = 0; j < n; ++j) {
      uint32_t field = static_cast<uint32_t>(rng() % fields);
      // Skewed tokens so many keys repeat.
      uint64_t token = (rng() % vocabulary) % (1 + rng() % vocabulary);
      b.keys.push_back(MakeKey(field, HashInt(token)));
      b.values.push_back(static_cast<float>(rng() % 100) / 10.f);
    }
    b.offsets.push_back(static_cast<uint32_t>(b.keys.size()));
  }
  return b;
}

void CheckAgainstReference(const Minibatch& b, int num_fields, const KeyPartition& p,
                           const LocalBatch& out, size_t dropped) {
  std::map<uint64_t, uint32_t> counts;
  size_t expect_dropped = 0;
  for (uint64_t k : b.keys) {
    if (static_cast<int>(KeyField(k)) >= num_fields) {
      ++expect_dropped;
    } else {
      ++counts[k];
    }
  }
  EXPECT_EQ(dropped, expect_dropped);
  ASSERT_EQ(out.keys.size(), counts.size());
  ASSERT_EQ(out.mixed.size(), counts.size());
  ASSERT_EQ(out.counts.size(), counts.size());
  std::map<uint64_t, uint32_t> seen;
  for (size_t i = 0; i < out.keys.size(); ++i) {
    EXPECT_EQ(out.mixed[i], Mix64(out.keys[i]));
    EXPECT_TRUE(seen.emplace(out.keys[i], out.counts[i]).second) << "key listed twice";
    if (i > 0) {
      EXPECT_LE(p.ServerOf(out.mixed[i - 1]), p.ServerOf(out.mixed[i])) << "not grouped by server";
    }
  }
  EXPECT_EQ(seen, counts);
  // Server slices of the localized keys agree with ServerOf (what KVClient relies on).
  std::vector<size_t> slices = p.Slices(out.mixed);
  for (int s = 0; s < p.num_servers(); ++s) {
    for (size_t i = slices[s]; i < slices[s + 1]; ++i) ASSERT_EQ(p.ServerOf(out.mixed[i]), s);
  }
  // Row layout and the index remap.
  ASSERT_EQ(out.rows(), b.rows());
  EXPECT_EQ(out.labels, b.labels);
  ASSERT_EQ(out.offsets.size(), b.rows() + 1);
  EXPECT_EQ(out.offsets[0], 0u);
  size_t e = 0;
  for (size_t r = 0; r < b.rows(); ++r) {
    for (uint32_t j = b.offsets[r]; j < b.offsets[r + 1]; ++j) {
      if (static_cast<int>(KeyField(b.keys[j])) >= num_fields) continue;
      ASSERT_LT(e, out.index.size());
      ASSERT_LT(out.index[e], out.keys.size());
      EXPECT_EQ(out.keys[out.index[e]], b.keys[j]);
      EXPECT_EQ(out.values[e], b.values[j]);
      EXPECT_EQ(out.fields[e], KeyField(b.keys[j]));
      ++e;
    }
    EXPECT_EQ(out.offsets[r + 1], e) << "row " << r;
  }
  EXPECT_EQ(out.index.size(), e);
  BatchView v = out.View();
  EXPECT_EQ(v.rows, b.rows());
  EXPECT_EQ(v.num_keys, out.keys.size());
}

TEST(LocalizerTest, MatchesNaiveReferenceOnRandomBatches) {
  std::mt19937_64 rng(2024);
  for (int servers : {1, 2, 3, 5}) {
    KeyPartition p(servers);
    Localizer localizer(p);
    LocalBatch out;  // reused across batches, as the worker does
    for (int round = 0; round < 20; ++round) {
      size_t rows = 1 + rng() % 300;
      size_t vocab = 1 + rng() % 2000;
      Minibatch b = RandomBatch(rng, rows, 12, vocab);
      int num_fields = round % 3 == 0 ? 9 : 12;  // sometimes drop fields 9..11
      size_t dropped = localizer.Localize(b, num_fields, &out);
      CheckAgainstReference(b, num_fields, p, out, dropped);
    }
  }
}

// The hash table outlives batches (generation stamps instead of clearing) and grows mid-batch:
// keys of an earlier batch must never leak into a later one, whatever the sizes.
// A minibatch without values (Criteo, Avazu: every value 1) localizes to what the same batch with
// its ones written out gives.
TEST(LocalizerTest, ImpliedOnesLocalizeLikeExplicitOnes) {
  std::mt19937_64 rng(8);
  Minibatch unit = RandomBatch(rng, 300, 6, 50);
  unit.values.clear();
  Minibatch ones = unit;
  ones.MakeValuesExplicit();
  const KeyPartition p(3);
  Localizer a(p), b(p);
  LocalBatch from_unit, from_ones;
  EXPECT_EQ(a.Localize(unit, 6, &from_unit), b.Localize(ones, 6, &from_ones));
  EXPECT_EQ(from_unit.values, from_ones.values);
  EXPECT_EQ(from_unit.values, std::vector<float>(from_unit.index.size(), 1.0f));
  EXPECT_EQ(from_unit.index, from_ones.index);
  EXPECT_EQ(from_unit.keys, from_ones.keys);
}

TEST(LocalizerTest, TableReusedAcrossBatchesOfVeryDifferentSizes) {
  std::mt19937_64 rng(7);
  KeyPartition p(3);
  Localizer localizer(p);
  LocalBatch out;
  for (size_t rows : {1, 4000, 2, 3, 6000, 1, 50, 8000, 7}) {
    Minibatch b = RandomBatch(rng, rows, 20, 40000);
    size_t dropped = localizer.Localize(b, 20, &out);
    CheckAgainstReference(b, 20, p, out, dropped);
  }
}

TEST(LocalizerTest, EmptyBatchAndEmptyRows) {
  KeyPartition p(2);
  Localizer localizer(p);
  LocalBatch out;
  Minibatch b;
  EXPECT_EQ(localizer.Localize(b, 4, &out), 0u);
  EXPECT_EQ(out.rows(), 0u);
  EXPECT_TRUE(out.keys.empty());
  b.labels = {1, 0};
  b.offsets = {0, 0, 0};
  EXPECT_EQ(localizer.Localize(b, 4, &out), 0u);
  EXPECT_EQ(out.offsets, (std::vector<uint32_t>{0, 0, 0}));
  EXPECT_TRUE(out.keys.empty());
}

TEST(LocalizerTest, RepeatedKeyInOneRowIsCountedEachTime) {
  KeyPartition p(2);
  Localizer localizer(p);
  LocalBatch out;
  Minibatch b;
  uint64_t k = MakeKey(1, 5), other = MakeKey(2, 5);
  b.labels = {1};
  b.keys = {k, other, k, k};
  b.values = {1, 2, 3, 4};
  b.offsets = {0, 4};
  localizer.Localize(b, 4, &out);
  CheckAgainstReference(b, 4, p, out, 0);
  ASSERT_EQ(out.keys.size(), 2u);
  size_t ik = out.keys[0] == k ? 0 : 1;
  EXPECT_EQ(out.counts[ik], 3u);
  EXPECT_EQ(out.counts[1 - ik], 1u);
}

}  // namespace
}  // namespace fmps
