// WorkPool: parts tile each file exactly once; compressed files and stdin are whole; Take, Done,
// ReturnParts, MarkDone and Reset keep "every part completed once per pass".
#include "scheduler/work_pool.h"

#include <map>
#include <set>
#include <string>

#include "gtest/gtest.h"
#include "tests/data/reader_test_util.h"

namespace fmps {
namespace {

using testing::TempDir;
using testing::WriteBytes;

TEST(WorkPoolTest, PartsTileEachFileOnce) {
  TempDir dir;
  std::map<std::string, uint64_t> sizes = {{dir.Path("a"), 1000},
                                           {dir.Path("b"), 64},
                                           {dir.Path("c"), 65},
                                           {dir.Path("d"), 1},
                                           {dir.Path("e"), 0}};
  std::vector<std::string> paths;
  for (const auto& [path, size] : sizes) {
    WriteBytes(path, std::string(size, 'x'));
    paths.push_back(path);
  }
  WorkPoolOptions options;
  options.part_bytes = 64;
  WorkPool pool(options);
  ASSERT_TRUE(pool.AddFiles(paths).ok());
  // ceil(size / 64) parts each; the empty file none.
  EXPECT_EQ(pool.num_parts(), 16u + 1u + 2u + 1u);
  std::map<std::string, uint64_t> next_begin;
  for (const DataPart& part : pool.parts()) {
    EXPECT_EQ(part.begin, next_begin[part.path]) << part.path;  // contiguous, in order
    EXPECT_LT(part.begin, part.end);
    EXPECT_LE(part.end - part.begin, 64u);
    next_begin[part.path] = part.end;
  }
  for (const auto& [path, size] : sizes) {
    if (size > 0) {
      EXPECT_EQ(next_begin[path], size) << path;
    }
  }
  EXPECT_EQ(next_begin.count(dir.Path("e")), 0u);
}

TEST(WorkPoolTest, CompressedAndStdinAreWhole) {
  TempDir dir;
  std::string text(5000, 'y');
  std::string gz = WriteBytes(dir.Path("data.txt"), testing::GzipBytes(text));  // name lies
  std::string zst = WriteBytes(dir.Path("data.zst"), testing::ZstdBytes(text));
  WorkPoolOptions options;
  options.part_bytes = 16;
  WorkPool pool(options);
  ASSERT_TRUE(pool.AddFiles({gz, "-", zst}).ok());
  ASSERT_EQ(pool.num_parts(), 3u);
  for (const DataPart& part : pool.parts()) {
    EXPECT_EQ(part.begin, 0u);
    EXPECT_EQ(part.end, kWholeFile);
  }
  EXPECT_EQ(pool.parts()[1].path, "-");
}

TEST(WorkPoolTest, MissingFileNamedAndNothingAdded) {
  TempDir dir;
  std::string ok = WriteBytes(dir.Path("ok"), "1234");
  WorkPool pool(WorkPoolOptions{});
  Status st = pool.AddFiles({ok, dir.Path("missing")});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find(dir.Path("missing")), std::string::npos);
  EXPECT_EQ(pool.num_parts(), 0u);
}

WorkPool MakePool(const TempDir& dir, size_t parts) {
  std::string path = WriteBytes(dir.Path("p"), std::string(parts * 10, 'z'));
  WorkPoolOptions options;
  options.part_bytes = 10;
  WorkPool pool(options);
  EXPECT_TRUE(pool.AddFiles({path}).ok());
  EXPECT_EQ(pool.num_parts(), parts);
  return pool;
}

TEST(WorkPoolTest, TakeDoneAndWrongWorker) {
  TempDir dir;
  WorkPool pool = MakePool(dir, 3);
  std::optional<WorkItem> a = pool.Take(7);
  std::optional<WorkItem> b = pool.Take(8);
  std::optional<WorkItem> c = pool.Take(7);
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a->id, 0);
  EXPECT_EQ(b->id, 1);
  EXPECT_EQ(c->id, 2);
  EXPECT_EQ(b->part.begin, 10u);
  EXPECT_FALSE(pool.Take(9).has_value());
  EXPECT_FALSE(pool.Done(1, 7));   // assigned to 8, not 7
  EXPECT_FALSE(pool.Done(42, 8));  // no such part
  EXPECT_FALSE(pool.Done(-1, 8));
  EXPECT_TRUE(pool.Done(1, 8));
  EXPECT_FALSE(pool.Done(1, 8));  // already done
  EXPECT_EQ(pool.num_done(), 1u);
  EXPECT_FALSE(pool.AllDone());
  EXPECT_TRUE(pool.Done(0, 7));
  EXPECT_TRUE(pool.Done(2, 7));
  EXPECT_TRUE(pool.AllDone());
  EXPECT_EQ(pool.DoneParts(), (std::vector<int>{0, 1, 2}));
}

TEST(WorkPoolTest, ReturnPartsReassignsAndIgnoresTheDeadWorker) {
  TempDir dir;
  WorkPool pool = MakePool(dir, 4);
  ASSERT_EQ(pool.Take(1)->id, 0);
  ASSERT_EQ(pool.Take(2)->id, 1);
  ASSERT_EQ(pool.Take(1)->id, 2);
  EXPECT_TRUE(pool.Done(0, 1));
  EXPECT_EQ(pool.ReturnParts(1), 1);  // part 2 (part 0 is done)
  EXPECT_EQ(pool.ReturnParts(1), 0);
  std::optional<WorkItem> again = pool.Take(3);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->id, 2);        // the returned part comes first
  EXPECT_FALSE(pool.Done(2, 1));  // the late report of the dead worker is ignored
  EXPECT_TRUE(pool.Done(2, 3));
  EXPECT_EQ(pool.Take(3)->id, 3);
  EXPECT_FALSE(pool.Take(3).has_value());
  EXPECT_TRUE(pool.Done(1, 2));
  EXPECT_TRUE(pool.Done(3, 3));
  EXPECT_TRUE(pool.AllDone());
}

// A worker gives back a part it asked for ahead and will not read (a server failed meanwhile):
// only its own, still assigned part goes back, and it is the next one taken.
TEST(WorkPoolTest, ReturnPartGivesBackOnlyThatWorkersAssignedPart) {
  TempDir dir;
  WorkPool pool = MakePool(dir, 3);
  ASSERT_EQ(pool.Take(1)->id, 0);
  ASSERT_EQ(pool.Take(1)->id, 1);
  ASSERT_EQ(pool.Take(2)->id, 2);
  EXPECT_FALSE(pool.ReturnPart(2, 1));  // worker 2's
  EXPECT_FALSE(pool.ReturnPart(7, 1));  // no such part
  EXPECT_FALSE(pool.ReturnPart(-1, 1));
  EXPECT_TRUE(pool.Done(0, 1));
  EXPECT_FALSE(pool.ReturnPart(0, 1));  // done: stays done
  EXPECT_TRUE(pool.ReturnPart(1, 1));
  EXPECT_FALSE(pool.ReturnPart(1, 1));  // already back in the pool
  EXPECT_FALSE(pool.Done(1, 1));        // no longer worker 1's
  std::optional<WorkItem> again = pool.Take(2);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->id, 1);
  EXPECT_FALSE(pool.Take(2).has_value());
  EXPECT_TRUE(pool.Done(1, 2));
  EXPECT_TRUE(pool.Done(2, 2));
  EXPECT_TRUE(pool.AllDone());
  EXPECT_EQ(pool.num_done(), 3u);
}

TEST(WorkPoolTest, MarkDoneAndReset) {
  TempDir dir;
  WorkPool pool = MakePool(dir, 5);
  pool.MarkDone({1, 3, 3, 99, -2});
  EXPECT_EQ(pool.num_done(), 2u);
  EXPECT_EQ(pool.DoneParts(), (std::vector<int>{1, 3}));
  std::set<int> taken;
  while (std::optional<WorkItem> item = pool.Take(0)) taken.insert(item->id);
  EXPECT_EQ(taken, (std::set<int>{0, 2, 4}));
  for (int id : taken) EXPECT_TRUE(pool.Done(id, 0));
  EXPECT_TRUE(pool.AllDone());
  pool.Reset();
  EXPECT_EQ(pool.num_done(), 0u);
  EXPECT_FALSE(pool.AllDone());
  EXPECT_FALSE(pool.Done(0, 0));  // nothing assigned after a reset
  int count = 0;
  while (pool.Take(5)) ++count;
  EXPECT_EQ(count, 5);
}

// A later pass hands each worker the parts it did in the pass before (its part cache holds
// them), in order; a worker with none of its own left takes the last pending part.
TEST(WorkPoolTest, LaterPassesGiveWorkersTheirOwnPartsFirst) {
  TempDir dir;
  WorkPool pool = MakePool(dir, 8);
  // First pass: handed out in order, alternating between workers 1 and 2.
  for (int i = 0; i < 8; ++i) {
    std::optional<WorkItem> item = pool.Take(1 + i % 2);
    ASSERT_TRUE(item.has_value());
    EXPECT_EQ(item->id, i);
    ASSERT_TRUE(pool.Done(item->id, 1 + i % 2));
  }
  pool.Reset();
  EXPECT_EQ(pool.Take(2)->id, 1);
  EXPECT_EQ(pool.Take(2)->id, 3);
  EXPECT_EQ(pool.Take(1)->id, 0);
  // A worker that did nothing in the last pass (a replacement) takes from the back.
  EXPECT_EQ(pool.Take(9)->id, 7);
  EXPECT_EQ(pool.Take(2)->id, 5);
  EXPECT_EQ(pool.Take(2)->id, 6) << "its own done (7 was taken): the last pending part";
  EXPECT_EQ(pool.Take(1)->id, 2);
  EXPECT_EQ(pool.Take(1)->id, 4);
  EXPECT_FALSE(pool.Take(1).has_value());
  // A part given back is handed out again.
  EXPECT_TRUE(pool.ReturnPart(3, 2));
  EXPECT_EQ(pool.Take(1)->id, 3);
  // Every part done once in this pass too.
  for (int id : {1, 5, 6}) EXPECT_TRUE(pool.Done(id, 2));
  for (int id : {0, 2, 3, 4}) EXPECT_TRUE(pool.Done(id, 1));
  EXPECT_TRUE(pool.Done(7, 9));
  EXPECT_TRUE(pool.AllDone());
  // The next pass follows who did what in this one.
  pool.Reset();
  EXPECT_EQ(pool.Take(9)->id, 7);
  EXPECT_EQ(pool.Take(1)->id, 0);
  EXPECT_EQ(pool.Take(2)->id, 1);
}

// Stdin is read once: in later passes only the worker that read it (and holds it in its cache)
// is given it, unless that worker died.
TEST(WorkPoolTest, AStreamGoesOnlyToTheWorkerThatReadIt) {
  TempDir dir;
  WorkPool pool(WorkPoolOptions{});
  ASSERT_TRUE(pool.AddFiles({"-", WriteBytes(dir.Path("f"), "x")}).ok());
  EXPECT_EQ(pool.Take(1)->id, 0);
  EXPECT_EQ(pool.Take(2)->id, 1);
  ASSERT_TRUE(pool.Done(0, 1));
  ASSERT_TRUE(pool.Done(1, 2));
  pool.Reset();
  EXPECT_EQ(pool.Take(2)->id, 1);
  EXPECT_FALSE(pool.Take(2).has_value()) << "stdin is worker 1's";
  EXPECT_EQ(pool.Take(1)->id, 0);
  ASSERT_TRUE(pool.Done(0, 1));
  ASSERT_TRUE(pool.Done(1, 2));
  pool.Reset();
  EXPECT_EQ(pool.Take(3)->id, 1) << "a file is anyone's to read";
  EXPECT_FALSE(pool.Take(3).has_value()) << "stdin is worker 1's";
  EXPECT_EQ(pool.ReturnParts(1), 0);  // worker 1 died holding nothing: its cache is gone
  EXPECT_EQ(pool.Take(3)->id, 0) << "anyone may take it now (and fail, naming why)";
}

// Parts of a real file read by readers give every row once.
TEST(WorkPoolTest, ReadersOverPoolPartsReadEveryRowOnce) {
  const std::string path = std::string(FMPS_SHARED_DIR) + "/data/criteo-8k/dev.txt";
  WorkPoolOptions options;
  options.part_bytes = 7000;
  WorkPool pool(options);
  ASSERT_TRUE(pool.AddFiles({path}).ok());
  EXPECT_GT(pool.num_parts(), 10u);
  Minibatch joined;
  while (std::optional<WorkItem> item = pool.Take(0)) {
    testing::ReadOutcome out = testing::ReadPart(item->part, ReaderOptions{}, 100);
    ASSERT_TRUE(out.status.ok());
    testing::AppendBatch(out.batch, &joined);
    EXPECT_TRUE(pool.Done(item->id, 0));
  }
  testing::ReadOutcome whole = testing::ReadWhole(path, DataFormat::kCriteo);
  testing::ExpectSameBatch(joined, whole.batch, "pool parts");
  EXPECT_EQ(joined.rows(), 409u);
}

}  // namespace
}  // namespace fmps
