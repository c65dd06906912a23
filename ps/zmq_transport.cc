// ZeroMQ transport: each node binds one PULL socket; it sends through one PUSH socket per peer.
// One-way sockets keep the design simple: a reply is just a message sent back to the sender's id.
//
// A Message travels as one ZeroMQ frame: the serialized Meta's length (u32) and bytes, the number
// of data frames (u32), their sizes (u64 each), then their bytes. Why not one ZeroMQ frame per
// data frame: ZeroMQ writes and reads each frame's start through its 8 KiB batch buffer, so a
// request of five frames took ~6 send and ~6 receive system calls (and as many wake-ups of the
// receiving I/O thread); packed, it takes two of each. The packing copies the frames once (the
// network moves them anyway). P1 job: sendto + recvfrom 60k -> 24k, CPU 4.0 -> 3.6-3.7 s.
#include <arpa/inet.h>
#include <glog/logging.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <zmq.hpp>

#include "ps/transport.h"

namespace fmps {
namespace {

constexpr int kCloseLingerMs = 1000;      // longest wait at exit for queued messages to leave
constexpr double kDropLogEvery_s = 60;    // one line per offending peer per this long
constexpr size_t kMaxLoggedPeers = 1024;  // peers remembered for the rate limit (a scan has many)

// The peer's address as ZeroMQ recorded it, or "unknown". The C call, not cppzmq's gets(): that
// throws when the property is missing, which it is for frames of a pre-ZMTP-3 peer (anyone
// writing plain bytes to the port).
std::string PeerAddress(zmq::message_t& part) {
  const char* address = zmq_msg_gets(part.handle(), "Peer-Address");
  return std::string("tcp ") + (address != nullptr ? address : "unknown");
}

class ZmqTransport : public Transport {
 public:
  explicit ZmqTransport(const ZmqTransportOptions& options) : options_(options), context_(1) {
    if (!options_.curve.empty()) StartGuard();
  }

  ~ZmqTransport() override {
    if (guard_.joinable()) {
      stop_guard_ = true;
      guard_.join();
    }
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
      // A stranger's frame declaring a huge length is refused (the connection closed) before
      // anything is allocated; a connection that never finishes its greeting is closed.
      receiver_->set(zmq::sockopt::maxmsgsize, options_.max_message_bytes);
      receiver_->set(zmq::sockopt::handshake_ivl, options_.handshake_timeout_ms);
      if (!options_.curve.empty()) {
        receiver_->set(zmq::sockopt::curve_server, 1);
        receiver_->set(zmq::sockopt::curve_secretkey, options_.curve.secret_key);
        receiver_->set(zmq::sockopt::zap_domain, "fmps");
        // Handshake failures (a plain peer, a wrong server key) are reported to the guard thread.
        if (zmq_socket_monitor(receiver_->handle(), kMonitorEndpoint,
                               ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED |
                                   ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                   ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0)
          throw zmq::error_t();
        monitor_ready_ = true;
      }
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
      if (!options_.curve.empty()) {
        peer->socket.set(zmq::sockopt::curve_serverkey, options_.curve.public_key);
        peer->socket.set(zmq::sockopt::curve_publickey, options_.curve.public_key);
        peer->socket.set(zmq::sockopt::curve_secretkey, options_.curve.secret_key);
      }
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

  // The frames are copied into one packed buffer either way, so a message given away (the
  // Message&& overload, which the base class forwards here) costs the same.
  Status Send(int id, const Message& msg) override { return SendPacked(id, msg); }

  // Nothing that arrives may throw out of here: the port is open to anyone on the network.
  std::optional<Message> Recv(int timeout_ms) override {
    if (!receiver_) return std::nullopt;
    zmq::pollitem_t item{receiver_->handle(), 0, ZMQ_POLLIN, 0};
    // Dropped garbage must not end the wait early: the timeout is a deadline for a good message.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    // A busy node finds the next message already queued: try it before polling, which costs a
    // system call per message.
    bool ready = true;
    while (true) {
      try {
        if (!ready) {
          auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
              deadline - std::chrono::steady_clock::now());
          if (left.count() <= 0) return std::nullopt;
          if (zmq::poll(&item, 1, left) <= 0) continue;  // the loop checks the deadline
        }
        ready = false;
        zmq::message_t part;
        if (!receiver_->recv(part, zmq::recv_flags::dontwait)) continue;
        Message msg;
        msg.peer = PeerAddress(part);
        bool more = part.more();
        while (more) {  // not ours: a sender of several frames; drain the rest
          zmq::message_t rest;
          if (!receiver_->recv(rest, zmq::recv_flags::dontwait)) break;
          more = rest.more();
        }
        std::string why = part.more() ? "more than one frame" : Unpack(part, &msg);
        if (!why.empty()) {
          LogDrop(msg.peer, why, part.size());
          continue;
        }
        return msg;
      } catch (const zmq::error_t& e) {
        if (e.num() == ETERM) return std::nullopt;
        // EINTR (a signal) and the like: wait on; anything else would repeat, so pace it.
        if (e.num() != EINTR) {
          LogDrop("this node's receive socket", e.what(), 0);
          ready = false;
          if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
        }
      }
    }
  }

 private:
  static constexpr const char* kMonitorEndpoint = "inproc://fmps.handshake-monitor";

  // ZAP (RFC 27): libzmq asks the handler bound at this address about every CURVE peer. Bound
  // before any socket listens, so no connection is ever admitted without an answer.
  void StartGuard() {
    zap_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::rep);
    zap_->set(zmq::sockopt::linger, 0);
    zap_->bind("inproc://zeromq.zap.01");
    uint8_t key[32];
    zmq_z85_decode(key, options_.curve.public_key.c_str());
    cluster_key_.assign(reinterpret_cast<const char*>(key), sizeof(key));
    guard_ = std::thread([this] { Guard(); });
  }

  // The guard thread: answers ZAP requests (admits the cluster key only) and reads the receive
  // socket's handshake failures; both log the peer's address, rate-limited like dropped frames.
  void Guard() {
    std::unique_ptr<zmq::socket_t> monitor;
    while (!stop_guard_) {
      if (!monitor && monitor_ready_) {
        monitor = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::pair);
        monitor->set(zmq::sockopt::linger, 0);
        monitor->connect(kMonitorEndpoint);
      }
      zmq::pollitem_t items[2] = {{zap_->handle(), 0, ZMQ_POLLIN, 0},
                                  {monitor ? monitor->handle() : nullptr, 0, ZMQ_POLLIN, 0}};
      try {
        if (zmq::poll(items, monitor ? 2 : 1, std::chrono::milliseconds(100)) <= 0) continue;
        if (items[0].revents & ZMQ_POLLIN) AnswerZap();
        if (monitor && (items[1].revents & ZMQ_POLLIN)) ReadMonitorEvent(monitor.get());
      } catch (const zmq::error_t& e) {
        if (e.num() == ETERM) break;
      }
    }
    if (monitor) monitor->close();
    zap_->close();
  }

  void AnswerZap() {
    std::vector<zmq::message_t> request;
    do {
      request.emplace_back();
      if (!zap_->recv(request.back(), zmq::recv_flags::none)) return;
    } while (request.back().more());
    // version, request id, domain, address, routing id, mechanism, credentials...
    auto text = [&request](size_t i) {
      return i < request.size() ? request[i].to_string() : std::string();
    };
    const bool admit = text(5) == "CURVE" && text(6) == cluster_key_;
    if (!admit) {
      LogRefusal("tcp " + text(3), text(5) == "CURVE" ? "it does not hold this cluster's CURVE key"
                                                      : "it did not use CURVE");
    }
    const std::string reply[] = {
        "1.0", text(1), admit ? "200" : "400", admit ? "OK" : "not this cluster's key", "", ""};
    for (size_t i = 0; i < 6; ++i) {
      zap_->send(zmq::buffer(reply[i]),
                 i + 1 < 6 ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }

  // A monitor event is two frames: u16 event and u32 value, then the (listening) endpoint. The
  // peer's address comes from the accepted socket (ACCEPTED's value is its fd); with one I/O
  // thread, a failed handshake's DISCONNECTED (also carrying the fd) follows its HANDSHAKE_FAILED.
  void ReadMonitorEvent(zmq::socket_t* monitor) {
    zmq::message_t event, endpoint;
    if (!monitor->recv(event, zmq::recv_flags::none)) return;
    if (event.more()) (void)monitor->recv(endpoint, zmq::recv_flags::none);
    if (event.size() < 6) return;
    uint16_t what;
    uint32_t value;
    std::memcpy(&what, event.data(), 2);
    std::memcpy(&value, static_cast<const char*>(event.data()) + 2, 4);
    const int fd = static_cast<int>(value);
    if (what == ZMQ_EVENT_ACCEPTED) {
      if (accepted_.size() >= kMaxLoggedPeers) accepted_.clear();
      accepted_[fd] = SocketPeer(fd);
    } else if (what == ZMQ_EVENT_DISCONNECTED) {
      auto it = accepted_.find(fd);
      if (handshake_failed_ && it != accepted_.end()) {
        LogRefusal(it->second,
                   "its handshake failed (a node without --keys or with another "
                   "cluster's key, or not ZeroMQ)");
      }
      if (it != accepted_.end()) accepted_.erase(it);
      handshake_failed_ = false;
    } else {
      handshake_failed_ = true;  // one of the HANDSHAKE_FAILED events
    }
  }

  static std::string SocketPeer(int fd) {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    char host[INET6_ADDRSTRLEN] = "unknown";
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      const void* ip =
          addr.ss_family == AF_INET6
              ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&addr)->sin6_addr)
              : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&addr)->sin_addr);
      ::inet_ntop(addr.ss_family, ip, host, sizeof(host));
    }
    return std::string("tcp ") + host;
  }

  void LogRefusal(const std::string& peer, const std::string& why) {
    const auto now = std::chrono::steady_clock::now();
    if (refused_.size() >= kMaxLoggedPeers) refused_.clear();
    auto [it, fresh] = refused_.emplace(peer + why, DropLog{now, 0});  // per address and reason
    if (!fresh && now - it->second.logged_at < std::chrono::duration<double>(kDropLogEvery_s)) {
      ++it->second.suppressed;
      return;
    }
    LOG(WARNING) << "refusing a connection from " << peer << ": " << why
                 << (it->second.suppressed > 0 ? "; " + std::to_string(it->second.suppressed) +
                                                     " more refused since the last such line"
                                               : std::string());
    it->second = DropLog{now, 0};
  }

  struct Peer {
    std::mutex mu;  // guards socket: zmq sockets are not thread-safe
    zmq::socket_t socket;
    std::string address;
  };

  // One warning per peer per kDropLogEvery_s, saying how many more were dropped meanwhile: a
  // port scan or a stuck sender must not flood the log.
  void LogDrop(const std::string& peer, const std::string& why, size_t bytes) {
    const auto now = std::chrono::steady_clock::now();
    auto it = dropped_.find(peer);
    if (it == dropped_.end()) {
      if (dropped_.size() >= kMaxLoggedPeers) {
        for (auto i = dropped_.begin(); i != dropped_.end();) {  // forget the quiet ones
          i = now - i->second.logged_at > std::chrono::duration<double>(kDropLogEvery_s)
                  ? dropped_.erase(i)
                  : std::next(i);
        }
        if (dropped_.size() >= kMaxLoggedPeers) dropped_.clear();
      }
      it = dropped_.emplace(peer, DropLog{}).first;
    } else if (now - it->second.logged_at < std::chrono::duration<double>(kDropLogEvery_s)) {
      ++it->second.suppressed;
      return;
    }
    LOG(WARNING) << "dropping a message from " << peer << ": " << why << " (" << bytes << " bytes)"
                 << (it->second.suppressed > 0 ? "; " + std::to_string(it->second.suppressed) +
                                                     " more dropped since the last such line"
                                               : std::string());
    it->second = DropLog{now, 0};
  }

  // The wire layout described at the top of the file, written straight into a ZeroMQ message
  // (its buffer is not zeroed first, and ZeroMQ sends it without another copy).
  static zmq::message_t Pack(const Message& msg) {
    const std::string header = msg.meta.SerializeAsString();
    size_t total = 4 + header.size() + 4 + 8 * msg.frames.size();
    for (const std::string& f : msg.frames) total += f.size();
    zmq::message_t out(total);
    char* p = static_cast<char*>(out.data());
    auto put = [&p](const void* data, size_t n) {
      if (n > 0) std::memcpy(p, data, n);
      p += n;
    };
    const uint32_t header_size = static_cast<uint32_t>(header.size());
    const uint32_t frames = static_cast<uint32_t>(msg.frames.size());
    put(&header_size, 4);
    put(header.data(), header.size());
    put(&frames, 4);
    for (const std::string& f : msg.frames) {
      const uint64_t size = f.size();
      put(&size, 8);
    }
    for (const std::string& f : msg.frames) put(f.data(), f.size());
    return out;
  }

  // Fills msg's header and frames from one received frame; "" or what is wrong with it.
  static std::string Unpack(const zmq::message_t& part, Message* msg) {
    const char* p = static_cast<const char*>(part.data());
    size_t left = part.size();
    auto take = [&p, &left](void* out, size_t n) {
      if (left < n) return false;
      std::memcpy(out, p, n);
      p += n;
      left -= n;
      return true;
    };
    uint32_t header_size = 0, frames = 0;
    if (!take(&header_size, 4) || left < header_size) return "shorter than its header";
    if (header_size > static_cast<uint32_t>(INT32_MAX)) return "header too long";
    if (!msg->meta.ParseFromArray(p, static_cast<int>(header_size)))
      return "header does not decode";
    p += header_size;
    left -= header_size;
    if (!take(&frames, 4) || left / 8 < frames) return "shorter than its frame table";
    const char* table = p;  // the sizes; the frames' bytes follow
    p += 8 * size_t{frames};
    left -= 8 * size_t{frames};
    msg->frames.reserve(frames);
    for (uint32_t f = 0; f < frames; ++f) {
      uint64_t size;
      std::memcpy(&size, table + 8 * size_t{f}, 8);
      if (size > left) return "shorter than its frames";
      msg->frames.emplace_back(p, size);
      p += size;
      left -= size;
    }
    if (left != 0) return "longer than its frames";
    return "";
  }

  // Sends msg packed into one frame (see the top of the file), which ZeroMQ takes without a copy.
  Status SendPacked(int id, const Message& msg) {
    std::shared_ptr<Peer> peer;  // shared: a concurrent Connect may replace the map entry
    {
      std::lock_guard<std::mutex> lock(peers_mu_);
      auto it = peers_.find(id);
      if (it == peers_.end())
        return Status::NotFound("no connection to node " + std::to_string(id));
      peer = it->second;
    }
    zmq::message_t part = Pack(msg);
    if (part.size() > static_cast<size_t>(options_.max_message_bytes)) {
      return Status::InvalidArgument(
          "a message of " + std::to_string(part.size()) + " bytes to node " + std::to_string(id) +
          " is over the limit of " + std::to_string(options_.max_message_bytes) + " bytes");
    }
    std::lock_guard<std::mutex> lock(peer->mu);
    try {
      if (!peer->socket.send(part, zmq::send_flags::none)) return Timeout(id, *peer);
    } catch (const zmq::error_t& e) {
      return Status::IOError("send to node " + std::to_string(id) + " failed: " + e.what());
    }
    return Status::OK();
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
  struct DropLog {
    std::chrono::steady_clock::time_point logged_at;
    uint64_t suppressed = 0;
  };
  std::unordered_map<std::string, DropLog> dropped_;  // the Recv thread's
  // CURVE only: the ZAP handler and handshake monitor, on their own thread (the guard's).
  std::unique_ptr<zmq::socket_t> zap_;
  std::string cluster_key_;  // the public key, 32 raw bytes as ZAP gives a client's
  std::atomic<bool> monitor_ready_{false};
  std::atomic<bool> stop_guard_{false};
  std::unordered_map<std::string, DropLog> refused_;  // the guard thread's
  std::unordered_map<int, std::string> accepted_;     // fd -> peer address, the guard's
  bool handshake_failed_ = false;                     // the guard's
  std::thread guard_;
};

}  // namespace

std::unique_ptr<Transport> NewZmqTransport(const ZmqTransportOptions& options) {
  return std::make_unique<ZmqTransport>(options);
}

}  // namespace fmps
