// Writes the seed corpora of the harnesses into OUT/<harness>/ (see docs/fuzzing.md): a few lines
// of each format from the shared data (with the harness's control bytes in front), small gzip and
// zstd streams, pull and push messages framed as the kv harness expects, store images and a
// checkpoint shard and MANIFEST. Deterministic, so regenerating gives the same files.
//
// Usage: fuzz_make_seeds OUT_DIR DATA_DIR   (DATA_DIR: ../shared/data or a copy of it)
#include <zlib.h>
#include <zstd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "fuzz/live_socket_wire.h"
#include "ps/base/env.h"
#include "ps/base/keys.h"
#include "ps/checkpoint.h"
#include "ps/job_id.h"
#include "ps/store/store.h"
#include "ps/transport.h"

namespace fmps {
namespace {

std::string FirstLines(const std::string& path, int n) {
  std::ifstream f(path);
  std::string out, line;
  for (int i = 0; i < n && std::getline(f, line); ++i) out += line + "\n";
  return out;
}

// mode, max_line, rows per Read, offset a (u16), offset b (u16): see reader_fuzz.h.
std::string ReaderHeader(uint8_t mode, uint8_t max_line, uint8_t rows, uint16_t a, uint16_t b) {
  std::string h{static_cast<char>(mode), static_cast<char>(max_line), static_cast<char>(rows)};
  h.append(reinterpret_cast<const char*>(&a), 2);
  h.append(reinterpret_cast<const char*>(&b), 2);
  return h;
}

void Write(const std::string& dir, const std::string& name, const std::string& bytes) {
  Status st = MakeDirs(dir);
  if (st.ok()) st = WriteFileAtomic(dir + "/" + name, bytes);
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.ToString().c_str());
    std::exit(1);
  }
}

void ReaderSeeds(const std::string& out, const std::string& harness, const std::string& text) {
  const std::string dir = out + "/" + harness;
  const uint16_t mid = static_cast<uint16_t>(text.size() / 2);
  Write(dir, "whole", ReaderHeader(0, 255, 8, 0, 0) + text);
  Write(dir, "split", ReaderHeader(1, 255, 3, mid, 0) + text);
  Write(dir, "range", ReaderHeader(2, 255, 5, 7, static_cast<uint16_t>(mid + 20)) + text);
  Write(dir, "short-lines", ReaderHeader(1, 1, 1, 100, 0) + text);
  Write(dir, "crlf",
        ReaderHeader(0, 255, 4, 0, 0) + "\r\n" + text.substr(0, text.find('\n')) + "\r\n\n");
}

std::string Gzip(const std::string& in) {
  z_stream z{};
  deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);  // +16: gzip wrapper
  std::string out(deflateBound(&z, in.size()) + 32, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string Zstd(const std::string& in) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  out.resize(ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3));
  return out;
}

void CompressedSeeds(const std::string& out, const std::string& text) {
  const std::string half = text.substr(0, text.size() / 2);
  Write(out + "/gzip_source", "lines.gz", std::string(1, '\x05') + Gzip(text));
  Write(out + "/gzip_source", "two-members.gz", std::string(1, '\x01') + Gzip(half) + Gzip(half));
  Write(out + "/gzip_source", "truncated.gz", std::string(1, '\x11') + Gzip(text).substr(0, 60));
  Write(out + "/gzip_source", "empty.gz", std::string(1, '\x02') + Gzip(""));
  Write(out + "/zstd_source", "lines.zst", std::string(1, '\x05') + Zstd(text));
  Write(out + "/zstd_source", "two-frames.zst", std::string(1, '\x01') + Zstd(half) + Zstd(half));
  Write(out + "/zstd_source", "truncated.zst", std::string(1, '\x11') + Zstd(text).substr(0, 60));
  Write(out + "/zstd_source", "empty.zst", std::string(1, '\x02') + Zstd(""));
}

std::string Framed(const std::vector<std::string>& frames) {
  std::string out;
  for (const std::string& f : frames) {
    const uint16_t n = static_cast<uint16_t>(f.size());
    out.append(reinterpret_cast<const char*>(&n), 2);
    out += f;
  }
  return out;
}

void KvSeeds(const std::string& out) {
  const std::vector<uint64_t> keys = {MakeKey(1, 11), MakeKey(2, 22), MakeKey(3, 33)};
  proto::Meta meta;
  meta.set_cmd(proto::PULL);
  meta.set_sender(9);
  meta.set_request_id(42);
  meta.mutable_kv()->set_num_keys(static_cast<uint32_t>(keys.size()));
  std::string header;
  meta.SerializeToString(&header);
  const std::string prefix = "\x04\x03";  // whole key range, dense size 3
  Write(out + "/kv_messages", "pull", prefix + Framed({header, ToFrame(keys)}));
  meta.set_cmd(proto::PUSH);
  meta.SerializeToString(&header);
  const std::vector<uint16_t> widths = {0, 2, 1};
  const std::vector<uint32_t> counts = {1, 5, 2};
  const std::vector<float> grads = {0.1f, -0.2f, 0.3f, 0.4f, 0.5f, -0.6f};
  Write(out + "/kv_messages", "push",
        prefix + Framed({header, ToFrame(keys), ToFrame(grads), ToFrame(widths), ToFrame(counts)}));
  meta.mutable_kv()->set_with_dense(true);
  meta.SerializeToString(&header);
  const std::vector<float> dense = {1, 2, 3};
  Write(out + "/kv_messages", "push-dense",
        prefix + Framed({header, ToFrame(keys), ToFrame(grads), ToFrame(widths), ToFrame(counts),
                         ToFrame(dense)}));
}

std::string StoreImage(int rows) {
  StoreOptions options;  // max width 8, as the harnesses read them
  options.ftrl = {0.05f, 1.0f, 0.5f, 1.0f};
  options.policy = RankPolicy::DiFacto(8, 4, 1, 10, 100);
  Store store{options};
  std::vector<uint64_t> keys;
  std::vector<float> values;
  std::vector<uint16_t> widths;
  for (int round = 0; round < 120; ++round) {  // enough occurrences for every embedding width
    keys.clear();
    for (int i = 0; i < rows; ++i) keys.push_back(MakeKey(i % 5, 1000 + i));
    store.Pull(keys, &values, &widths);
    std::vector<float> grads(values.size(),
                             0.3f + 0.01f * (round % 7));  // w leaves 0: rows get embeddings
    std::vector<uint32_t> counts(keys.size(), 1 + round % 3);
    if (!store.Push(keys, grads, widths, counts).ok()) std::exit(2);
    values.clear();
    widths.clear();
  }
  return store.Serialize();
}

void CheckpointSeeds(const std::string& out) {
  Write(out + "/store", "empty", std::string(1, '\0') + StoreImage(0));
  Write(out + "/store", "rows", std::string(1, '\0') + StoreImage(6));
  Write(out + "/store", "rows-fixsum", std::string(1, '\1') + StoreImage(3));
  ShardData shard;
  shard.server = 0;
  shard.range_begin = 0;
  shard.range_end = uint64_t{1} << 63;
  shard.dense = {0.5f, -0.25f};
  shard.dense_accum = {1.0f, 2.0f};
  shard.store = StoreImage(4);
  Write(out + "/checkpoint", "shard", std::string(1, '\0') + EncodeShard(shard));
  Write(out + "/checkpoint", "shard-fixsum", std::string(1, '\1') + EncodeShard(shard));
  proto::Manifest manifest;
  manifest.set_version(3);
  manifest.set_epoch(1);
  manifest.set_rows(200);
  manifest.add_parts_done(0);
  manifest.add_parts_done(2);
  auto* s = manifest.add_shards();
  s->set_server(0);
  s->set_file(ShardFileName(3, 0));
  s->set_checksum(12345);
  s->set_range_end(uint64_t{1} << 63);
  const std::string tmp = out + "/.manifest-tmp";
  if (!MakeDirs(tmp).ok() || !WriteManifest(tmp, manifest).ok()) std::exit(3);
  auto bytes = ReadFile(tmp + "/" + ManifestFileName(3));
  if (!bytes.ok()) std::exit(3);
  std::remove((tmp + "/" + ManifestFileName(3)).c_str());
  std::remove(tmp.c_str());
  Write(out + "/checkpoint", "manifest", std::string(1, '\2') + *bytes);
  Write(out + "/checkpoint", "manifest-fixsum", std::string(1, '\3') + *bytes);
}

// The live_socket harness's connections (control byte, split offsets, bytes; see
// fuzz/live_socket_wire.h): the job's own pull and push after a proper greeting, another job's,
// and what a stranger writes: garbage, HTTP, cut greetings, ZMTP 1.0/2.0, a frame declaring 2^62
// bytes, a multi-frame message, another security mechanism.
void LiveSocketSeeds(const std::string& out) {
  using namespace fmps::fuzz;
  const std::string dir = out + "/live_socket";
  const uint64_t job = JobTag(kLiveSocketJobId);
  auto control = [](bool greeting, int writes, bool reset) {
    return std::string(
        1, static_cast<char>((greeting ? kSendGreeting : 0) | ((writes - 1) << kWritesShift) |
                             (reset ? kResetAtEnd : 0)));
  };
  auto cuts = [](std::vector<uint16_t> at) {
    return std::string(reinterpret_cast<const char*>(at.data()), 2 * at.size());
  };
  const std::vector<uint64_t> keys = {MakeKey(1, 11), MakeKey(2, 22), MakeKey(3, 33)};
  Message pull;
  pull.meta.set_cmd(proto::PULL);
  pull.meta.set_sender(kLiveWorkerId);
  pull.meta.set_job(job);
  pull.meta.set_request_id(7);
  pull.meta.mutable_kv()->set_num_keys(static_cast<uint32_t>(keys.size()));
  pull.meta.mutable_kv()->set_keep_keys(true);
  pull.frames = {ToFrame(keys)};
  Write(dir, "pull", control(true, 1, false) + ZmtpFrame(PackedMessage(pull)));
  Message push = pull;
  push.meta.set_cmd(proto::PUSH);
  push.meta.set_request_id(8);
  push.meta.mutable_kv()->set_keep_keys(false);
  const std::vector<uint16_t> widths = {0, 2, 1};
  const std::vector<uint32_t> counts = {1, 5, 2};
  const std::vector<float> grads = {0.1f, -0.2f, 0.3f, 0.4f, 0.5f, -0.6f};
  push.frames = {ToFrame(keys), ToFrame(grads), ToFrame(widths), ToFrame(counts)};
  // The greeting written by the input itself, the connection cut into three writes.
  const std::string push_bytes = ZmtpGreetingAndReady() + ZmtpFrame(PackedMessage(push));
  Write(dir, "push-in-three-writes", control(false, 3, false) + cuts({5, 70}) + push_bytes);
  Message foreign = pull;
  foreign.meta.set_job(JobTag("another-job"));
  Write(dir, "pull-of-another-job", control(true, 1, true) + ZmtpFrame(PackedMessage(foreign)));
  Write(dir, "pull-then-push-multiframe",
        control(true, 2, false) + cuts({40}) + ZmtpFrame(PackedMessage(pull), true) +
            ZmtpFrame(PackedMessage(push)));
  std::string hello;
  for (int i = 0; i < 20; ++i) hello += "hello world\n";
  Write(dir, "hello-world", control(false, 1, false) + hello);
  std::string noise;
  uint64_t x = 15;
  for (int i = 0; i < 512; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    noise += static_cast<char>(x >> 56);
  }
  Write(dir, "random", control(false, 4, false) + cuts({100, 200, 300}) + noise);
  Write(dir, "http",
        control(false, 1, false) +
            "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: curl/7.88\r\n\r\n");
  const std::string greeting = ZmtpGreetingAndReady();
  Write(dir, "greeting-cut-11", control(false, 1, false) + greeting.substr(0, 11));
  Write(dir, "greeting-cut-40", control(false, 2, true) + cuts({10}) + greeting.substr(0, 40));
  std::string v1 = std::string("\x01\x00", 2);
  for (int i = 0; i < 10; ++i) v1 += std::string("\x06\x00", 2) + "hello";
  Write(dir, "zmtp1", control(false, 1, false) + v1);
  std::string v2 = std::string("\xff\0\0\0\0\0\0\0\0\x7f\x01\x08", 12) + std::string("\0\0", 2);
  for (int i = 0; i < 10; ++i) v2 += std::string("\x00\x05", 2) + "hello";
  Write(dir, "zmtp2", control(false, 1, false) + v2);
  Write(dir, "huge-declared-length",
        control(true, 1, false) + std::string("\x02\x40\0\0\0\0\0\0\0", 9) + noise.substr(0, 64));
  std::string plain = greeting.substr(0, 64);
  plain.replace(12, 5, "PLAIN");
  Write(dir, "mechanism-plain", control(false, 1, false) + plain);
  std::string v30 = greeting;
  v30[11] = 1;  // ZMTP 3.1: a newer peer, minor version 1
  Write(dir, "zmtp31-pull", control(false, 1, false) + v30 + ZmtpFrame(PackedMessage(pull)));
}

}  // namespace
}  // namespace fmps

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s OUT_DIR DATA_DIR\n", argv[0]);
    return 1;
  }
  const std::string out = argv[1], data = argv[2];
  const std::string criteo = fmps::FirstLines(data + "/criteo-8k/train.txt", 4);
  fmps::ReaderSeeds(out, "reader_criteo", criteo);
  fmps::ReaderSeeds(out, "reader_avazu", fmps::FirstLines(data + "/avazu-8k/train.csv", 4));
  fmps::ReaderSeeds(out, "reader_libsvm", fmps::FirstLines(data + "/frappe/frappe.test.libfm", 5));
  fmps::ReaderSeeds(out, "reader_libffm",
                    "1 0:12:1 1:345:0.5 2:6789:1\n0 0:13:1 1:346:1 7:1:2.5\n-1 3:4:1\n1 255:1:1\n");
  fmps::CompressedSeeds(out, criteo);
  fmps::KvSeeds(out);
  fmps::CheckpointSeeds(out);
  fmps::LiveSocketSeeds(out);
  return 0;
}
