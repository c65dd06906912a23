// RowMap against std::unordered_map on random operations, with growth, splits, shrinking and the
// walk; plus crowded homes and the one key whose ord is the empty marker.
#include "ps/store/row_map.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <unordered_map>
#include <vector>

namespace fmps {
namespace {

// Tags a row with its key so a row found under the wrong key is caught.
RowState Tagged(uint64_t key, uint32_t version) {
  RowState row{};
  row.z_or_ref = static_cast<uint32_t>(key);
  row.n_bits = version;
  row.count = static_cast<uint16_t>(key >> 32);
  row.stamp = static_cast<uint16_t>(key >> 48);
  return row;
}

bool SameRow(const RowState& a, const RowState& b) {
  return a.z_or_ref == b.z_or_ref && a.n_bits == b.n_bits && a.count == b.count &&
         a.stamp == b.stamp;
}

// Walks the map: every row once, in strictly increasing ord, each matching the reference.
void ExpectSameContents(const RowMap& map, const std::unordered_map<uint64_t, RowState>& want) {
  ASSERT_EQ(map.size(), want.size());
  uint64_t visited = 0;
  bool first = true;
  uint64_t last_ord = 0;
  for (RowMap::Position p = map.Begin(); !map.AtEnd(p); p = map.Next(p)) {
    const uint64_t key = map.KeyAt(p);
    const auto it = want.find(key);
    ASSERT_NE(it, want.end()) << "walk found ghost key " << key;
    ASSERT_TRUE(SameRow(map.RowAt(p), it->second)) << "key " << key;
    ASSERT_EQ(RowMap::OrdOf(key), map.OrdAt(p));
    if (!first) {
      ASSERT_LT(last_ord, map.OrdAt(p)) << "walk out of order";
    }
    last_ord = map.OrdAt(p);
    first = false;
    ++visited;
  }
  EXPECT_EQ(visited, want.size());
}

// Random insert / find / erase against std::unordered_map; `key_space` picks how often keys repeat.
void RunRandomOps(uint64_t seed, int ops, uint64_t key_space, double erase_share) {
  std::mt19937_64 rng(seed);
  RowMap map;
  std::unordered_map<uint64_t, RowState> want;
  std::uniform_real_distribution<double> coin(0, 1);
  for (int step = 0; step < ops; ++step) {
    const uint64_t key = rng() % key_space * 0x9e3779b97f4a7c15ULL;
    const double c = coin(rng);
    if (c < erase_share) {
      const bool erased = map.Erase(key);
      ASSERT_EQ(erased, want.erase(key) == 1) << "erase of " << key << " at step " << step;
    } else if (c < erase_share + 0.2) {
      const RowState* row = map.Find(key);
      const auto it = want.find(key);
      ASSERT_EQ(row != nullptr, it != want.end()) << "find " << key << " at step " << step;
      if (row != nullptr) {
        ASSERT_TRUE(SameRow(*row, it->second)) << "key " << key;
      }
    } else {
      bool inserted = false;
      RowState* row = map.FindOrInsert(key, &inserted);
      ASSERT_EQ(inserted, want.count(key) == 0) << "insert " << key << " at step " << step;
      if (inserted) {
        ASSERT_TRUE(SameRow(*row, RowState{})) << "new rows start zeroed";
      } else {
        ASSERT_TRUE(SameRow(*row, want[key])) << "key " << key;
      }
      *row = Tagged(key, static_cast<uint32_t>(step));
      want[key] = *row;
    }
    ASSERT_EQ(map.size(), want.size()) << "at step " << step;
  }
  ExpectSameContents(map, want);
  for (const auto& [key, row] : want) {
    const RowState* found = map.Find(key);
    ASSERT_NE(found, nullptr) << "lost key " << key;
    ASSERT_TRUE(SameRow(*found, row));
  }
}

// A hint taken by FindByOrd, then inserts and erases in between (as between a pull and its push):
// AtHint gives the key's own row or null, never another key's, and finds the rows that inserts
// only shifted a few slots on.
TEST(RowMapTest, AHintFindsItsRowOrNothing) {
  std::mt19937_64 rng(17);
  RowMap map;
  std::unordered_map<uint64_t, RowState> want;
  auto insert = [&](uint64_t key) {
    bool inserted = false;
    RowState* row = map.FindOrInsert(key, &inserted);
    *row = Tagged(key, 1);
    want[key] = *row;
  };
  for (int i = 0; i < 20000; ++i) insert(rng());
  uint64_t found_moved = 0, lost = 0;
  for (int round = 0; round < 50; ++round) {
    std::vector<uint64_t> keys, hints;
    for (const auto& [key, row] : want) {
      if (keys.size() == 500) break;
      uint64_t hint = RowMap::kNoHint;
      ASSERT_NE(map.FindByOrd(RowMap::OrdOf(key), &hint), nullptr);
      keys.push_back(key);
      hints.push_back(hint);
    }
    keys.push_back(rng());  // a key never inserted, with a hint of another's place
    hints.push_back(hints.front());
    // What happens between a pull and its push: new keys (shifting runs, now and then growing or
    // splitting a segment), and a few erasures (shifting runs back).
    for (int i = 0; i < 300; ++i) insert(rng());
    for (int i = 0; i < 5; ++i) {
      const uint64_t key = want.begin()->first;
      ASSERT_TRUE(map.Erase(key));
      want.erase(key);
    }
    for (size_t i = 0; i < keys.size(); ++i) {
      const uint64_t ord = RowMap::OrdOf(keys[i]);
      RowState* at = map.AtHint(ord, hints[i]);
      const auto it = want.find(keys[i]);
      if (at == nullptr) {
        lost += it != want.end();
        continue;
      }
      ASSERT_NE(it, want.end()) << "a hint found a row for a key not in the map";
      ASSERT_TRUE(SameRow(*at, it->second)) << "a hint found another key's row";
      uint64_t now = RowMap::kNoHint;
      ASSERT_EQ(map.FindByOrd(ord, &now), at);
      found_moved += now != hints[i];  // found, but no longer at the hinted slot
    }
    EXPECT_EQ(map.AtHint(RowMap::OrdOf(keys.front()), RowMap::kNoHint), nullptr);
  }
  // Most hints survive the inserts (rows shift by a slot or two); rebuilds and erasures lose some.
  EXPECT_GT(found_moved, 50u * 500 / 10) << "rows a few slots on from their hint are found";
  EXPECT_LT(lost, 50u * 500 / 4) << "hints lost to shifted runs";
}

TEST(RowMapTest, OrdIsABijectionOfTheKey) {
  std::mt19937_64 rng(5);
  for (int i = 0; i < 10000; ++i) {
    const uint64_t key = rng();
    EXPECT_EQ(RowMap::KeyOf(RowMap::OrdOf(key)), key);
  }
  for (uint64_t key : {uint64_t{0}, uint64_t{1}, ~uint64_t{0}})
    EXPECT_EQ(RowMap::KeyOf(RowMap::OrdOf(key)), key);
}

TEST(RowMapTest, RandomOpsMatchUnorderedMapWhileGrowing) {
  // 100k operations over 60k keys, few erases: the map grows through many segments.
  RunRandomOps(1, 100000, 60000, 0.1);
}

TEST(RowMapTest, RandomOpsMatchUnorderedMapWithHeavyDeletion) {
  // As many erases as inserts over a small key space: segments shrink and grow back.
  RunRandomOps(2, 100000, 3000, 0.4);
}

TEST(RowMapTest, GrowthKeepsAllRowsAndTheLoadHigh) {
  RowMap map;
  std::unordered_map<uint64_t, RowState> want;
  for (uint64_t key = 0; key < 200000; ++key) {
    bool inserted = false;
    *map.FindOrInsert(key, &inserted) = Tagged(key, 1);
    ASSERT_TRUE(inserted);
    want[key] = Tagged(key, 1);
  }
  ExpectSameContents(map, want);
  EXPECT_GT(map.segments(), 8u);  // 200k rows need several segments of at most 8192
  const double bytes_per_row = static_cast<double>(map.bytes()) / map.size();
  // 20-byte slots at load >= 0.76 (below the shrink threshold; growth alone keeps >= 0.845).
  EXPECT_LT(bytes_per_row, RowMap::kSlotBytes / 0.76);
  EXPECT_GT(bytes_per_row, RowMap::kSlotBytes);
}

TEST(RowMapTest, KeysCrowdingOneHomeStayFindableAndErasable) {
  // Keys whose ords share their top 40 bits: one home, one segment, one long run.
  RowMap map;
  std::unordered_map<uint64_t, RowState> want;
  const uint64_t base = RowMap::OrdOf(12345) & ~uint64_t{0xFFFFFF};
  for (uint64_t i = 0; i < 3000; ++i) {
    const uint64_t key = RowMap::KeyOf(base + i * 7);
    bool inserted = false;
    *map.FindOrInsert(key, &inserted) = Tagged(key, 2);
    ASSERT_TRUE(inserted);
    want[key] = Tagged(key, 2);
  }
  EXPECT_GT(map.MaxDisplacement(), 1000u);
  ExpectSameContents(map, want);
  // Erase every third key from the middle of the run; the rest stay findable.
  for (uint64_t i = 0; i < 3000; i += 3) {
    const uint64_t key = RowMap::KeyOf(base + i * 7);
    ASSERT_TRUE(map.Erase(key));
    want.erase(key);
    ASSERT_FALSE(map.Erase(key));
  }
  ExpectSameContents(map, want);
  for (const auto& [key, row] : want) ASSERT_NE(map.Find(key), nullptr) << key;
}

TEST(RowMapTest, TheKeyWhoseOrdIsTheEmptyMarkerIsAnOrdinaryRow) {
  const uint64_t special = RowMap::KeyOf(~uint64_t{0});
  RowMap map;
  EXPECT_EQ(map.Find(special), nullptr);
  bool inserted = false;
  *map.FindOrInsert(special, &inserted) = Tagged(special, 9);
  EXPECT_TRUE(inserted);
  for (uint64_t key = 0; key < 100; ++key) map.FindOrInsert(key, &inserted)->n_bits = 1;
  EXPECT_EQ(map.size(), 101u);
  ASSERT_NE(map.Find(special), nullptr);
  EXPECT_TRUE(SameRow(*map.Find(special), Tagged(special, 9)));
  // It is walked last (the largest ord).
  RowMap::Position last{};
  uint64_t visited = 0;
  for (RowMap::Position p = map.Begin(); !map.AtEnd(p); p = map.Next(p), ++visited) last = p;
  EXPECT_EQ(visited, 101u);
  EXPECT_EQ(map.KeyAt(last), special);
  EXPECT_TRUE(map.Erase(special));
  EXPECT_EQ(map.Find(special), nullptr);
  EXPECT_EQ(map.size(), 100u);
}

TEST(RowMapTest, EraseAtDuringAWalkVisitsEveryOtherRowOnce) {
  RowMap map;
  bool inserted = false;
  for (uint64_t key = 0; key < 50000; ++key) map.FindOrInsert(key, &inserted)->n_bits = 1;
  // Erase the rows with odd keys while walking; every row must be seen exactly once.
  std::map<uint64_t, int> seen;
  for (RowMap::Position p = map.Begin(); !map.AtEnd(p);) {
    const uint64_t key = map.KeyAt(p);
    ++seen[key];
    p = (key & 1) ? map.EraseAt(p) : map.Next(p);
  }
  map.Compact();
  EXPECT_EQ(seen.size(), 50000u);
  for (const auto& [key, times] : seen) ASSERT_EQ(times, 1) << "key " << key;
  EXPECT_EQ(map.size(), 25000u);
  for (uint64_t key = 0; key < 50000; ++key)
    ASSERT_EQ(map.Find(key) != nullptr, (key & 1) == 0) << key;
  // Shrinking gave memory back: at most 25k rows at the lowest load.
  EXPECT_LT(map.bytes(), 25000 * RowMap::kSlotBytes / 0.7);
}

TEST(RowMapTest, LowerBoundFindsTheNextRowInOrder) {
  RowMap map;
  bool inserted = false;
  for (uint64_t key = 0; key < 20000; ++key) map.FindOrInsert(key, &inserted);
  std::vector<uint64_t> ords;
  for (RowMap::Position p = map.Begin(); !map.AtEnd(p); p = map.Next(p))
    ords.push_back(map.OrdAt(p));
  std::mt19937_64 rng(3);
  for (int i = 0; i < 2000; ++i) {
    const uint64_t probe = rng();
    const auto it = std::lower_bound(ords.begin(), ords.end(), probe);
    const RowMap::Position p = map.LowerBound(probe);
    if (it == ords.end()) {
      EXPECT_TRUE(map.AtEnd(p));
    } else {
      ASSERT_FALSE(map.AtEnd(p));
      EXPECT_EQ(map.OrdAt(p), *it);
    }
  }
}

}  // namespace
}  // namespace fmps
