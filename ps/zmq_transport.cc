// ZeroMQ transport: each node binds one PULL socket; it sends through one PUSH socket per peer.
// Frame 0 of a multipart message is the serialized Meta, the rest are data frames. One-way
// sockets keep the design simple: a reply is just a message sent back to the sender's id.
#include <glog/logging.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <zmq.hpp>

#include "ps/transport.h"

namespace fmps {
namespace {

constexpr int kCloseLingerMs = 1000;  // longest wait at exit for queued messages to leave
// Below this a frame is copied: ZeroMQ stores tiny messages inline, and a heap holder costs more.
constexpr size_t kZeroCopyBytes = 1024;

class ZmqTransport : public Transport {
 public:
  explicit ZmqTransport(const ZmqTransportOptions& options) : options_(options), context_(1) {}

  ~ZmqTransport() override {
    std::lock_guard<std::mutex> lock(peers_mu_);
    // Linger 0 would drop what is still queued when a process exits, e.g. the scheduler's
    // SHUTDOWN to nodes it has only just connected to; give such messages a bounded moment.
    for (auto& [id, peer] : peers_) {
      std::lock_guard<std::mutex> peer_lock(peer->mu);
      try {
        peer->socket.set(zmq::sockopt::linger, kCloseLingerMs);
      } catch (const zmq::error_t&) {
      }
    }
    peers_.clear();
    receiver_.reset();
  }

  Result<int> Bind(const std::string& host, int port) override {
    try {
      receiver_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::pull);
      receiver_->set(zmq::sockopt::linger, 0);
      receiver_->set(zmq::sockopt::rcvhwm, options_.high_water_mark);
      std::string addr =
          "tcp://" + host + ":" + (port == 0 ? std::string("*") : std::to_string(port));
      if (port == 0) addr = "tcp://" + host + ":*";
      receiver_->bind(addr);
      std::string endpoint = receiver_->get(zmq::sockopt::last_endpoint);
      size_t colon = endpoint.rfind(':');
      return std::stoi(endpoint.substr(colon + 1));
    } catch (const zmq::error_t& e) {
      std::string why = e.num() == EADDRINUSE ? "port in use" : e.what();
      return Status::IOError("cannot listen on " + host + ":" + std::to_string(port) + ": " + why);
    }
  }

  Status Connect(int id, const std::string& host, int port) override {
    auto peer = std::make_shared<Peer>();
    try {
      peer->socket = zmq::socket_t(context_, zmq::socket_type::push);
      peer->socket.set(zmq::sockopt::linger, 0);
      peer->socket.set(zmq::sockopt::sndhwm, options_.high_water_mark);
      peer->socket.set(zmq::sockopt::sndtimeo, options_.send_timeout_ms);
      peer->socket.connect("tcp://" + host + ":" + std::to_string(port));
    } catch (const zmq::error_t& e) {
      return Status::IOError("cannot connect to node " + std::to_string(id) + " at " + host + ":" +
                             std::to_string(port) + ": " + e.what());
    }
    peer->address = host + ":" + std::to_string(port);
    std::lock_guard<std::mutex> lock(peers_mu_);
    peers_[id] = std::move(peer);
    return Status::OK();
  }

  Status Send(int id, const Message& msg) override { return SendFrames(id, msg, nullptr); }

  // Frames of kZeroCopyBytes or more are given to ZeroMQ as they are: it frees them once sent.
  Status Send(int id, Message&& msg) override { return SendFrames(id, msg, &msg.frames); }

  std::optional<Message> Recv(int timeout_ms) override {
    if (!receiver_) return std::nullopt;
    zmq::pollitem_t item{receiver_->handle(), 0, ZMQ_POLLIN, 0};
    // Dropped garbage must not end the wait early: the timeout is a deadline for a good message.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    // A busy node finds the next message already queued: try it before polling, which costs a
    // system call per message.
    bool ready = true;
    while (true) {
      if (!ready) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (zmq::poll(&item, 1, std::max(left, std::chrono::milliseconds(0))) <= 0)
          return std::nullopt;
      }
      ready = false;
      std::vector<zmq::message_t> parts;
      zmq::message_t part;
      std::string peer;
      do {
        if (!receiver_->recv(part, zmq::recv_flags::dontwait)) break;
        if (peer.empty()) {
          const char* address = part.gets("Peer-Address");
          peer = address != nullptr ? address : "unknown";
        }
        parts.push_back(std::move(part));
      } while (parts.back().more());
      if (parts.empty()) continue;
      Message msg;
      msg.peer = "tcp " + peer;
      if (!msg.meta.ParseFromArray(parts[0].data(), static_cast<int>(parts[0].size()))) {
        LOG(WARNING) << "dropping a message from " << msg.peer << ": header does not decode ("
                     << parts[0].size() << " bytes)";
        continue;
      }
      msg.frames.reserve(parts.size() - 1);
      for (size_t i = 1; i < parts.size(); ++i) msg.frames.emplace_back(parts[i].to_string());
      return msg;
    }
  }

 private:
  struct Peer {
    std::mutex mu;  // guards socket: zmq sockets are not thread-safe
    zmq::socket_t socket;
    std::string address;
  };

  // Sends msg's header and frames; when `owned` is msg.frames, large frames move into ZeroMQ
  // messages instead of being copied.
  Status SendFrames(int id, const Message& msg, std::vector<std::string>* owned) {
    std::shared_ptr<Peer> peer;  // shared: a concurrent Connect may replace the map entry
    {
      std::lock_guard<std::mutex> lock(peers_mu_);
      auto it = peers_.find(id);
      if (it == peers_.end())
        return Status::NotFound("no connection to node " + std::to_string(id));
      peer = it->second;
    }
    std::string header;
    msg.meta.SerializeToString(&header);
    std::lock_guard<std::mutex> lock(peer->mu);
    try {
      auto flags = msg.frames.empty() ? zmq::send_flags::none : zmq::send_flags::sndmore;
      if (!peer->socket.send(zmq::buffer(header), flags)) return Timeout(id, *peer);
      for (size_t i = 0; i < msg.frames.size(); ++i) {
        flags = i + 1 == msg.frames.size() ? zmq::send_flags::none : zmq::send_flags::sndmore;
        zmq::message_t part = owned != nullptr && msg.frames[i].size() >= kZeroCopyBytes
                                  ? TakeFrame(&(*owned)[i])
                                  : zmq::message_t(msg.frames[i].data(), msg.frames[i].size());
        if (!peer->socket.send(part, flags)) return Timeout(id, *peer);
      }
    } catch (const zmq::error_t& e) {
      return Status::IOError("send to node " + std::to_string(id) + " failed: " + e.what());
    }
    return Status::OK();
  }

  // A ZeroMQ message over the frame's own bytes; the string moves to the heap and ZeroMQ deletes
  // it (from its I/O thread) when the bytes have left.
  static zmq::message_t TakeFrame(std::string* frame) {
    auto holder = std::make_unique<std::string>(std::move(*frame));
    zmq::message_t part(
        holder->data(), holder->size(),
        [](void*, void* hint) { std::unique_ptr<std::string>(static_cast<std::string*>(hint)); },
        holder.get());
    (void)holder.release();  // owned by `part` from here on
    return part;
  }

  Status Timeout(int id, const Peer& peer) {
    return Status::Timeout("send to node " + std::to_string(id) + " at " + peer.address +
                           " timed out after " + std::to_string(options_.send_timeout_ms) + " ms");
  }

  ZmqTransportOptions options_;
  zmq::context_t context_;
  std::unique_ptr<zmq::socket_t> receiver_;  // owned by the Recv thread after Bind
  std::mutex peers_mu_;                      // guards peers_ (the map, not the sockets)
  std::map<int, std::shared_ptr<Peer>> peers_;
};

}  // namespace

std::unique_ptr<Transport> NewZmqTransport(const ZmqTransportOptions& options) {
  return std::make_unique<ZmqTransport>(options);
}

}  // namespace fmps
