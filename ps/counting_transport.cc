#include "ps/counting_transport.h"

#include <array>
#include <atomic>
#include <string>

namespace fmps {
namespace {

class CountingTransport : public Transport {
 public:
  CountingTransport(std::unique_ptr<Transport> inner, MetricsRegistry* registry)
      : inner_(std::move(inner)), registry_(registry) {}

  Result<int> Bind(const std::string& host, int port) override { return inner_->Bind(host, port); }
  Status Connect(int id, const std::string& host, int port) override {
    return inner_->Connect(id, host, port);
  }
  Status Send(int id, const Message& msg) override {
    CounterOf(&sent_, "fmps_transport_sent_bytes_total", "Bytes sent to a peer.", id)
        ->Add(Bytes(msg));
    return inner_->Send(id, msg);
  }
  Status Send(int id, Message&& msg) override {
    CounterOf(&sent_, "fmps_transport_sent_bytes_total", "Bytes sent to a peer.", id)
        ->Add(Bytes(msg));
    return inner_->Send(id, std::move(msg));
  }
  std::optional<Message> Recv(int timeout_ms) override {
    std::optional<Message> msg = inner_->Recv(timeout_ms);
    if (msg) {
      CounterOf(&received_, "fmps_transport_received_bytes_total", "Bytes received from a peer.",
                msg->meta.sender())
          ->Add(Bytes(*msg));
    }
    return msg;
  }

 private:
  // Peers beyond this many ids share the series peer="other".
  static constexpr int kMaxPeers = 4096;
  using Slots = std::array<std::atomic<Counter*>, kMaxPeers + 1>;

  static uint64_t Bytes(const Message& msg) {
    uint64_t n = msg.meta.ByteSizeLong();
    for (const std::string& f : msg.frames) n += f.size();
    return n;
  }

  // The peer's counter, registered on its first message (any thread; the registry dedupes races).
  Counter* CounterOf(Slots* slots, const char* name, const char* help, int id) {
    const int slot = id >= 0 && id < kMaxPeers ? id : kMaxPeers;
    Counter* c = (*slots)[slot].load(std::memory_order_acquire);
    if (c == nullptr) {
      c = registry_->AddCounter(name, help,
                                {{"peer", slot == kMaxPeers ? "other" : std::to_string(id)}});
      (*slots)[slot].store(c, std::memory_order_release);
    }
    return c;
  }

  std::unique_ptr<Transport> inner_;
  MetricsRegistry* registry_;
  Slots sent_{}, received_{};
};

}  // namespace

std::unique_ptr<Transport> NewCountingTransport(std::unique_ptr<Transport> inner,
                                                MetricsRegistry* registry) {
  return std::make_unique<CountingTransport>(std::move(inner), registry);
}

}  // namespace fmps
