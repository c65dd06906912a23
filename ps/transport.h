// Transport: moves Messages between nodes. A message is a protobuf Meta header plus raw data
// frames (keys, values, ...), so pull/push payloads are never per-key protobuf objects. Two
// implementations share the interface: ZeroMQ over TCP (real jobs) and an in-process hub (tests,
// benchmarks that measure everything but the network).
//
// Threading: Send is safe from any thread; Recv has a single consumer (the node's receive loop).
#ifndef FMPS_PS_TRANSPORT_H_
#define FMPS_PS_TRANSPORT_H_

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "proto/fmps.pb.h"
#include "ps/base/status.h"
#include "ps/curve_keys.h"

namespace fmps {

struct Message {
  proto::Meta meta;
  std::vector<std::string> frames;  // raw payload frames, meaning given by meta.cmd
  std::string peer;                 // transport-level origin (e.g. "tcp 127.0.0.1:5432"), for logs
};

// Frames are byte strings; these turn arrays of plain values into frames and back.
template <typename T>
std::string ToFrame(std::span<const T> values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}
template <typename T>
std::string ToFrame(const std::vector<T>& values) {
  return ToFrame(std::span<const T>(values));
}
// Copies a frame into a vector; false when its size is not a multiple of sizeof(T).
template <typename T>
bool FromFrame(const std::string& frame, std::vector<T>* out) {
  if (frame.size() % sizeof(T) != 0) return false;
  out->resize(frame.size() / sizeof(T));
  if (!frame.empty()) std::memcpy(out->data(), frame.data(), frame.size());
  return true;
}

// A frame's values in place, without a copy: the frame's bytes when they are aligned for T (a
// frame's heap buffer always is), else a copy kept in *storage (which must outlive the view).
// false when the size is not a multiple of sizeof(T). Valid while the frame is unchanged.
template <typename T>
bool ViewFrame(std::string_view frame, std::vector<T>* storage, std::span<const T>* out) {
  if (frame.size() % sizeof(T) != 0) return false;
  if (reinterpret_cast<uintptr_t>(frame.data()) % alignof(T) == 0) {
    *out = std::span<const T>(reinterpret_cast<const T*>(frame.data()), frame.size() / sizeof(T));
    return true;
  }
  storage->resize(frame.size() / sizeof(T));
  if (!frame.empty()) std::memcpy(storage->data(), frame.data(), frame.size());
  *out = *storage;
  return true;
}

// Appends a frame's values to *out; false when its size is not a multiple of sizeof(T).
template <typename T>
bool AppendFrame(const std::string& frame, std::vector<T>* out) {
  if (frame.size() % sizeof(T) != 0) return false;
  const size_t old = out->size();
  out->resize(old + frame.size() / sizeof(T));
  if (!frame.empty()) std::memcpy(out->data() + old, frame.data(), frame.size());
  return true;
}

class Transport {
 public:
  virtual ~Transport() = default;
  // Starts listening on host:port (port 0: any free port). Returns the port bound. A port in use
  // is an error that says so.
  virtual Result<int> Bind(const std::string& host, int port) = 0;
  // Makes node `id` reachable at host:port; connecting an id again replaces its address (a
  // replacement node on another host).
  virtual Status Connect(int id, const std::string& host, int port) = 0;
  // Queues a message to a connected node. Fails (without blocking forever) when the node's queue
  // is full for longer than the send timeout, e.g. because it died.
  virtual Status Send(int id, const Message& msg) = 0;
  // The same, giving the message away: a transport may then hand the frames' bytes to the network
  // (or the receiver) without copying them.
  virtual Status Send(int id, Message&& msg) { return Send(id, static_cast<const Message&>(msg)); }
  // The next incoming message, or nullopt after timeout_ms. Undecodable input is dropped here
  // with a log line naming its origin.
  virtual std::optional<Message> Recv(int timeout_ms) = 0;
};

struct ZmqTransportOptions {
  int send_timeout_ms = 30000;  // a Send blocked this long fails instead of hanging
  int high_water_mark = 10000;  // messages queued per peer before Send blocks
  // A frame declaring more is refused by the receiver (its connection closed) and not sent.
  int64_t max_message_bytes = int64_t{1} << 30;
  int handshake_timeout_ms = 10000;  // a connection that has not finished its greeting is closed
  // Set: every socket speaks CURVE with the cluster key, and only peers holding it are admitted
  // (a refused peer is logged once per address per minute). Empty: plain TCP.
  CurveKeys curve;
};
std::unique_ptr<Transport> NewZmqTransport(const ZmqTransportOptions& options);

// All in-process transports created from one hub reach each other; "ports" are hub slots.
class InProcHub;
std::shared_ptr<InProcHub> NewInProcHub();
std::unique_ptr<Transport> NewInProcTransport(std::shared_ptr<InProcHub> hub);

}  // namespace fmps

#endif  // FMPS_PS_TRANSPORT_H_
