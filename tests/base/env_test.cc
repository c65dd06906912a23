#include "ps/base/env.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "ps/base/keys.h"

namespace fmps {
namespace {

TEST(Keys, FieldRoundTripsAndMixIsBijectiveOnSamples) {
  uint64_t key = MakeKey(38, HashToken("68fd1e64"));
  EXPECT_EQ(KeyField(key), 38u);
  EXPECT_NE(Mix64(1), Mix64(2));
  EXPECT_NE(HashToken("a"), HashToken("b"));
}

TEST(Env, AtomicWriteThenRead) {
  std::string dir = ::testing::TempDir() + "/fmps_env_test/a/b";
  ASSERT_TRUE(MakeDirs(dir).ok());
  std::string path = dir + "/f";
  ASSERT_TRUE(WriteFileAtomic(path, "hello").ok());
  auto r = ReadFile(path);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), "hello");
  EXPECT_FALSE(ReadFile(dir + "/missing").ok());
}

TEST(Env, ExpandPathsGlobsDirsAndMissing) {
  std::string dir = ::testing::TempDir() + "/fmps_expand";
  ASSERT_TRUE(MakeDirs(dir).ok());
  for (const char* n : {"p1.txt", "p2.txt", "q.txt"}) std::ofstream(dir + "/" + n) << "x\n";
  auto g = ExpandPaths(dir + "/p*.txt");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->size(), 2u);
  auto d = ExpandPaths(dir);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->size(), 3u);
  auto m = ExpandPaths(dir + "/nope.txt");
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("nope.txt"), std::string::npos);
  auto s = ExpandPaths("-");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)[0], "-");
}

}  // namespace
}  // namespace fmps
