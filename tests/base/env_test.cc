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

// Keys are part of every checkpoint: the hash inlined from xxhash.h must give what libxxhash
// 0.8's XXH3_64bits_withSeed gave when the models were trained (values from the library, each
// length class of XXH3: empty, 1-3, 4-8, 17-128 and over 240 bytes).
TEST(Keys, TokenHashesAreTheLibrarysXxh3) {
  EXPECT_EQ(HashToken("", 0), 0x2d06800538d394c2ull);
  EXPECT_EQ(HashToken("a", 0), 0xe6c632b61e964e1full);
  EXPECT_EQ(HashToken("68fd1e64", 7), 0x1d2060ec41b3547bull);
  EXPECT_EQ(HashToken("a-token-of-twenty-b", 12345), 0x64b8fd16d651fd3dull);
  const std::string big(300, 'q');
  EXPECT_EQ(HashToken(big, 9), 0xbe3a4aa6f7b3a39cull);
  EXPECT_EQ(Checksum64(big.data(), big.size()), 0x3c634963c2a92b89ull);
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
