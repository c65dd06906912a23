// Checkpoints on a failing disk (through FaultEnv): ENOSPC, EIO on write or fsync, a silently
// short write and a failed rename. Each must leave the previous checkpoint the newest good one,
// leave no temporary file behind, and (except the lying short write, which only the checksums can
// catch) fail with a message naming the file and the error.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "ps/base/env.h"
#include "ps/base/keys.h"
#include "ps/checkpoint.h"
#include "tests/base/fault_env.h"
#include "tests/ps/temp_dir.h"

namespace fmps {
namespace {

using testing::Fault;
using testing::FaultEnv;

ShardData Shard(int server, int64_t version) {
  ShardData s;
  s.server = server;
  s.dense = {0.5f * static_cast<float>(version), -1.0f};
  s.dense_accum = {1.f, 2.f};
  s.store = std::string(5000, static_cast<char>('a' + version)) + std::to_string(server);
  return s;
}

// Writes checkpoint `version` of two servers as the servers and the scheduler do: each shard
// atomically, then the manifest with the shards' checksums.
Status WriteCheckpoint(const std::string& dir, int64_t version, Env* env) {
  proto::Manifest m;
  m.set_version(version);
  for (int s = 0; s < 2; ++s) {
    std::string bytes = EncodeShard(Shard(s, version));
    std::string file = ShardFileName(version, s);
    FMPS_RETURN_IF_ERROR(WriteFileAtomic(dir + "/" + file, bytes, env));
    auto* entry = m.add_shards();
    entry->set_file(file);
    entry->set_checksum(Checksum64(bytes.data(), bytes.size()));
    entry->set_server(s);
  }
  return WriteManifest(dir, m, env);
}

bool HasTemporaryFiles(const std::string& dir) {
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().filename().string().find(".tmp.") != std::string::npos) return true;
  }
  return false;
}

struct Case {
  Fault fault;
  std::string match;     // which file fails
  std::string expected;  // in the error message ("" for the lying short write: no error)
};

TEST(CheckpointFaultTest, AFailedCheckpointLeavesThePreviousOneGood) {
  const Case cases[] = {
      {Fault::kNoSpace, "shard-000002-001", "No space left on device"},
      {Fault::kWriteEio, "shard-000002-000", "Input/output error"},
      {Fault::kSyncEio, "MANIFEST-000002", "Input/output error"},
      {Fault::kRenameFails, "shard-000002-001", "Input/output error"},
      {Fault::kShortWrite, "shard-000002-000", ""},
      {Fault::kShortWrite, "MANIFEST-000002", ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.match + " / " + (c.expected.empty() ? "short write" : c.expected));
    TempDir dir;
    FaultEnv env;
    ASSERT_TRUE(WriteCheckpoint(dir.path(), 1, &env).ok());
    env.Arm(c.fault, c.match);
    Status st = WriteCheckpoint(dir.path(), 2, &env);
    EXPECT_GE(env.hits(), 1) << "the fault was injected";
    if (c.expected.empty()) {
      EXPECT_TRUE(st.ok()) << "a lying disk reports success";
    } else {
      ASSERT_FALSE(st.ok());
      EXPECT_NE(st.message().find(c.match), std::string::npos) << st.ToString();
      EXPECT_NE(st.message().find(c.expected), std::string::npos) << st.ToString();
    }
    EXPECT_FALSE(HasTemporaryFiles(dir.path()));
    env.Arm(Fault::kNone);
    Result<proto::Manifest> newest = FindNewestGoodManifest(dir.path(), &env);
    ASSERT_TRUE(newest.ok()) << newest.status().ToString();
    EXPECT_EQ(newest->version(), 1) << "the previous checkpoint is the newest good one";
    // And it loads: every shard of version 1 decodes to what was written.
    for (const auto& entry : newest->shards()) {
      Result<std::string> bytes = ReadFile(dir.File(entry.file()), &env);
      ASSERT_TRUE(bytes.ok());
      Result<ShardData> shard = DecodeShard(bytes.value(), entry.file());
      ASSERT_TRUE(shard.ok()) << shard.status().ToString();
      EXPECT_EQ(shard->store, Shard(entry.server(), 1).store);
    }
    // The disk recovers: the next checkpoint is good again.
    ASSERT_TRUE(WriteCheckpoint(dir.path(), 3, &env).ok());
    EXPECT_EQ(FindNewestGoodManifest(dir.path(), &env)->version(), 3);
  }
}

}  // namespace
}  // namespace fmps
