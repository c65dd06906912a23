// KeyPartition: the servers' ranges tile the 64-bit ring of Mix64(key) and ServerOf/Slices agree
// with them, for keys sorted by Mix64 and for keys only grouped by server (the Localizer's order).
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "ps/base/keys.h"
#include "ps/postoffice.h"

namespace fmps {
namespace {

TEST(KeyPartitionTest, RangesCoverTheRing) {
  // Up to 16 servers ServerOf counts ranges, past that it searches them: both sides.
  for (int servers : {1, 2, 3, 4, 5, 6, 7, 8, 9, 16, 17, 40}) {
    KeyPartition p(servers);
    ASSERT_EQ(p.num_servers(), servers);
    EXPECT_EQ(p.begin(0), 0u);
    EXPECT_EQ(p.end(servers - 1), 0u) << "the last range must run to 2^64";
    for (int s = 0; s + 1 < servers; ++s) {
      EXPECT_EQ(p.end(s), p.begin(s + 1));
      EXPECT_LT(p.begin(s), p.begin(s + 1));
    }
    for (int s = 0; s < servers; ++s) {
      EXPECT_EQ(p.ServerOf(p.begin(s)), s);
      uint64_t last = p.end(s) - 1;  // wraps to 2^64 - 1 for the last range
      EXPECT_EQ(p.ServerOf(last), s);
      // Even split: every range within one of 2^64 / servers.
      unsigned __int128 size =
          (p.end(s) == 0 ? (static_cast<unsigned __int128>(1) << 64) : p.end(s)) - p.begin(s);
      unsigned __int128 even = (static_cast<unsigned __int128>(1) << 64) / servers;
      EXPECT_LE(size > even ? size - even : even - size, static_cast<unsigned __int128>(servers));
    }
    EXPECT_EQ(p.ServerOf(UINT64_MAX), servers - 1);
  }
}

std::vector<uint64_t> RandomKeys(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> keys(n);
  for (auto& k : keys) k = MakeKey(static_cast<uint32_t>(rng() % 39), rng());
  return keys;
}

void ExpectSlicesMatchServerOf(const KeyPartition& p, const std::vector<uint64_t>& mixed) {
  std::vector<size_t> slices = p.Slices(mixed);
  ASSERT_EQ(slices.size(), static_cast<size_t>(p.num_servers() + 1));
  EXPECT_EQ(slices.front(), 0u);
  EXPECT_EQ(slices.back(), mixed.size());
  for (int s = 0; s < p.num_servers(); ++s) {
    ASSERT_LE(slices[s], slices[s + 1]);
    for (size_t i = slices[s]; i < slices[s + 1]; ++i) {
      ASSERT_EQ(p.ServerOf(mixed[i]), s) << "key " << i << " in server " << s << "'s slice";
      uint64_t m = mixed[i];
      EXPECT_GE(m, p.begin(s));
      if (p.end(s) != 0) {
        EXPECT_LT(m, p.end(s));
      }
    }
  }
}

TEST(KeyPartitionTest, SlicesOfSortedKeysAgreeWithServerOf) {
  for (int servers : {1, 2, 3, 5, 8}) {
    KeyPartition p(servers);
    std::vector<uint64_t> mixed;
    for (uint64_t k : RandomKeys(5000, servers)) mixed.push_back(Mix64(k));
    std::sort(mixed.begin(), mixed.end());
    ExpectSlicesMatchServerOf(p, mixed);
    // Every server gets a share of random keys.
    std::vector<size_t> slices = p.Slices(mixed);
    for (int s = 0; s < servers; ++s) EXPECT_GT(slices[s + 1] - slices[s], 5000u / servers / 2);
  }
}

TEST(KeyPartitionTest, SlicesOfServerGroupedKeysAgreeWithServerOf) {
  // Keys grouped by owner but in arbitrary order inside a group, as the Localizer leaves them.
  for (int servers : {2, 3, 7}) {
    KeyPartition p(servers);
    std::vector<uint64_t> mixed;
    for (uint64_t k : RandomKeys(3000, 100 + servers)) mixed.push_back(Mix64(k));
    std::stable_sort(mixed.begin(), mixed.end(),
                     [&](uint64_t a, uint64_t b) { return p.ServerOf(a) < p.ServerOf(b); });
    ExpectSlicesMatchServerOf(p, mixed);
  }
}

TEST(KeyPartitionTest, EmptyAndOneSidedKeySets) {
  KeyPartition p(3);
  std::vector<size_t> empty = p.Slices({});
  EXPECT_EQ(empty, (std::vector<size_t>{0, 0, 0, 0}));
  // Every key on the last server: earlier slices are empty.
  std::vector<uint64_t> mixed{p.begin(2), p.begin(2) + 1, UINT64_MAX};
  EXPECT_EQ(p.Slices(mixed), (std::vector<size_t>{0, 0, 0, 3}));
  ExpectSlicesMatchServerOf(p, mixed);
}

}  // namespace
}  // namespace fmps
