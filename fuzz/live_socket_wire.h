// What the live_socket harness and its seeds share: the harness's job id, its input layout, and
// the bytes a proper ZeroMQ peer writes (a ZMTP 3.0 greeting, frames, an fmps Message packed as
// ps/zmq_transport.cc packs it), so seeds start past the greeting and inside the node's decoding.
#ifndef FMPS_FUZZ_LIVE_SOCKET_WIRE_H_
#define FMPS_FUZZ_LIVE_SOCKET_WIRE_H_

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "ps/transport.h"

namespace fmps::fuzz {

// The job the harness's server joins: seeds carry its tag (JobTag) so their messages are believed.
inline constexpr const char* kLiveSocketJobId = "fuzz-live-socket";
// Node ids in the harness's node table: the stand-in scheduler, the server under test, the
// stand-in worker whose pulls check that the server still answers.
inline constexpr int kLiveSchedulerId = 0, kLiveServerId = 1, kLiveWorkerId = 2;

// Input layout: control u8 | (writes - 1) split offsets u16 | the bytes of the connection.
inline constexpr uint8_t kSendGreeting = 1;  // write ZmtpGreetingAndReady() before the bytes
inline constexpr int kWritesShift = 1;       // bits 1..3: the bytes go in 1..8 writes
inline constexpr uint8_t kWritesMask = 7;
inline constexpr uint8_t kResetAtEnd = 16;  // end with a reset (SO_LINGER 0), not a FIN

// A ZMTP 3.0 greeting with the NULL mechanism (64 bytes), then the READY command of a PUSH socket:
// what a real ZeroMQ peer writes before its first message.
inline std::string ZmtpGreetingAndReady() {
  std::string g(64, '\0');
  g[0] = '\xff';
  g[9] = '\x7f';
  g[10] = 3;  // version 3.0
  g.replace(12, 4, "NULL");
  const std::string body =
      std::string("\x05READY") + "\x0bSocket-Type" + std::string("\0\0\0\x04", 4) + "PUSH";
  return g + '\x04' + static_cast<char>(body.size()) + body;
}

// One ZMTP 3.0 message frame (short or long form); `more`: another frame of the message follows.
inline std::string ZmtpFrame(const std::string& body, bool more = false) {
  std::string f;
  if (body.size() < 256) {
    f += static_cast<char>(more ? 1 : 0);
    f += static_cast<char>(body.size());
  } else {
    f += static_cast<char>(more ? 3 : 2);
    for (int shift = 56; shift >= 0; shift -= 8) f += static_cast<char>(body.size() >> shift);
  }
  return f + body;
}

// msg as one packed ZeroMQ frame body: u32 header size, the Meta, u32 frame count, u64 sizes,
// the frames' bytes (the layout at the top of ps/zmq_transport.cc).
inline std::string PackedMessage(const Message& msg) {
  const std::string header = msg.meta.SerializeAsString();
  std::string out;
  auto put = [&out](const void* p, size_t n) { out.append(static_cast<const char*>(p), n); };
  const uint32_t header_size = static_cast<uint32_t>(header.size());
  const uint32_t frames = static_cast<uint32_t>(msg.frames.size());
  put(&header_size, 4);
  out += header;
  put(&frames, 4);
  for (const std::string& f : msg.frames) {
    const uint64_t size = f.size();
    put(&size, 8);
  }
  for (const std::string& f : msg.frames) out += f;
  return out;
}

}  // namespace fmps::fuzz

#endif  // FMPS_FUZZ_LIVE_SOCKET_WIRE_H_
