#include "ps/store/key_index.h"

#include <gtest/gtest.h>

#include <random>
#include <unordered_map>
#include <vector>

namespace fmps {
namespace {

// Rows as the store keeps them: dense, a deleted row's hole filled by the last row.
struct Table {
  KeyIndex index;
  std::vector<uint64_t> rows;
  struct KeyOf {
    const std::vector<uint64_t>* rows;
    uint64_t operator()(uint32_t row) const { return (*rows)[row]; }
  };
  KeyOf key_of() const { return KeyOf{&rows}; }

  bool Insert(uint64_t key) {
    bool inserted = false;
    index.FindOrInsert(key, static_cast<uint32_t>(rows.size()), key_of(), &inserted);
    if (inserted) rows.push_back(key);
    return inserted;
  }
  bool Erase(uint64_t key) {
    const uint32_t row = index.Erase(key, key_of());
    if (row == KeyIndex::kNotFound) return false;
    const uint32_t last = static_cast<uint32_t>(rows.size() - 1);
    if (row != last) {
      index.Relabel(rows[last], last, row, key_of());
      rows[row] = rows[last];
    }
    rows.pop_back();
    return true;
  }
};

// Random inserts and deletes against std::unordered_map; after every step the sizes agree, and
// periodically every key (present and recently deleted) is looked up.
void RunAgainstReference(const std::vector<uint64_t>& pool, uint64_t steps, uint64_t seed) {
  Table table;
  std::unordered_map<uint64_t, bool> reference;
  std::mt19937_64 rng(seed);
  for (uint64_t step = 0; step < steps; ++step) {
    const uint64_t key = pool[rng() % pool.size()];
    // Bias towards inserting while small and deleting while large, so the table grows through
    // several rebuilds and shrinks back.
    const bool insert = (rng() % 100) < (reference.size() < pool.size() / 2 ? 65u : 35u);
    if (insert) {
      ASSERT_EQ(table.Insert(key), reference.emplace(key, true).second) << "step " << step;
    } else {
      ASSERT_EQ(table.Erase(key), reference.erase(key) == 1) << "step " << step;
    }
    ASSERT_EQ(table.index.size(), reference.size());
    ASSERT_EQ(table.rows.size(), reference.size());
    if (step % 97 == 0 || step + 1 == steps) {
      for (const uint64_t k : pool) {
        const uint32_t row = table.index.Find(k, table.key_of());
        if (reference.count(k)) {
          ASSERT_NE(row, KeyIndex::kNotFound) << "lost key " << k << " at step " << step;
          ASSERT_EQ(table.rows[row], k);
        } else {
          ASSERT_EQ(row, KeyIndex::kNotFound) << "ghost key " << k << " at step " << step;
        }
      }
    }
  }
}

TEST(KeyIndexTest, BackwardShiftDeletionMatchesReferenceOnRandomKeys) {
  std::mt19937_64 rng(1);
  std::vector<uint64_t> pool(3000);
  for (auto& key : pool) key = rng();
  RunAgainstReference(pool, 60000, 2);
}

TEST(KeyIndexTest, BackwardShiftDeletionInLongCollidingRuns) {
  // Keys whose hashes share their low 10 bits: in tables of up to 1024 slots they all have the
  // same home, so every probe run is long and wraps around the end of the table.
  std::mt19937_64 rng(3);
  std::vector<uint64_t> pool;
  while (pool.size() < 400) {
    const uint64_t key = rng();
    if ((Mix64(key) & 1023) == 1020) pool.push_back(key);
  }
  RunAgainstReference(pool, 20000, 4);
}

TEST(KeyIndexTest, BackwardShiftDeletionWithTwoCrowdedHomes) {
  // Two interleaved clusters (homes 14 and 15 in a 16-slot table, wrapping to 0): deleting from
  // one must not strand entries of the other.
  std::mt19937_64 rng(5);
  std::vector<uint64_t> pool;
  while (pool.size() < 12) {
    const uint64_t key = rng();
    const uint64_t home = Mix64(key) & 15;
    if (home == 14 || home == 15 || home == 0) pool.push_back(key);
  }
  RunAgainstReference(pool, 20000, 6);
}

TEST(KeyIndexTest, EraseOfAbsentKeyIsNoOp) {
  Table table;
  EXPECT_FALSE(table.Erase(7));
  EXPECT_TRUE(table.Insert(7));
  EXPECT_FALSE(table.Erase(8));
  EXPECT_EQ(table.index.size(), 1u);
  EXPECT_TRUE(table.Erase(7));
  EXPECT_EQ(table.index.Find(7, table.key_of()), KeyIndex::kNotFound);
  EXPECT_TRUE(table.Insert(7));  // re-insert after delete
  EXPECT_EQ(table.index.Find(7, table.key_of()), 0u);
}

}  // namespace
}  // namespace fmps
