// In-process transport: a hub of mailboxes, one per bound "port". Messages are moved between
// threads of one process without serialising frames, so a job over it measures everything but the
// network (benchmark P2) and tests run without sockets.
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>

#include "ps/transport.h"

namespace fmps {

class InProcHub {
 public:
  struct Mailbox {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Message> queue;  // guarded by mu
  };

  std::shared_ptr<Mailbox> Open(int* port) {
    std::lock_guard<std::mutex> lock(mu_);
    if (*port == 0) *port = next_port_++;
    if (boxes_.count(*port)) return nullptr;
    auto box = std::make_shared<Mailbox>();
    boxes_[*port] = box;
    return box;
  }
  std::shared_ptr<Mailbox> Find(int port) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = boxes_.find(port);
    return it == boxes_.end() ? nullptr : it->second;
  }

 private:
  std::mutex mu_;
  int next_port_ = 1;
  std::map<int, std::shared_ptr<Mailbox>> boxes_;  // guarded by mu_
};

namespace {

class InProcTransport : public Transport {
 public:
  explicit InProcTransport(std::shared_ptr<InProcHub> hub) : hub_(std::move(hub)) {}

  Result<int> Bind(const std::string& host, int port) override {
    box_ = hub_->Open(&port);
    if (!box_)
      return Status::IOError("cannot listen on " + host + ":" + std::to_string(port) +
                             ": port in use");
    return port;
  }

  Status Connect(int id, const std::string& host, int port) override {
    auto box = hub_->Find(port);
    if (!box) return Status::IOError("no in-process node at " + host + ":" + std::to_string(port));
    std::lock_guard<std::mutex> lock(mu_);
    peers_[id] = box;
    return Status::OK();
  }

  Status Send(int id, const Message& msg) override { return Send(id, Message(msg)); }

  Status Send(int id, Message&& msg) override {
    std::shared_ptr<InProcHub::Mailbox> box;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = peers_.find(id);
      if (it == peers_.end())
        return Status::NotFound("no connection to node " + std::to_string(id));
      box = it->second;
    }
    msg.peer = "inproc";
    {
      std::lock_guard<std::mutex> lock(box->mu);
      box->queue.push_back(std::move(msg));
    }
    box->cv.notify_one();
    return Status::OK();
  }

  std::optional<Message> Recv(int timeout_ms) override {
    if (!box_) return std::nullopt;
    std::unique_lock<std::mutex> lock(box_->mu);
    if (!box_->cv.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                           [&] { return !box_->queue.empty(); })) {
      return std::nullopt;
    }
    Message msg = std::move(box_->queue.front());
    box_->queue.pop_front();
    return msg;
  }

 private:
  std::shared_ptr<InProcHub> hub_;
  std::shared_ptr<InProcHub::Mailbox> box_;
  std::mutex mu_;  // guards peers_
  std::map<int, std::shared_ptr<InProcHub::Mailbox>> peers_;
};

}  // namespace

std::shared_ptr<InProcHub> NewInProcHub() { return std::make_shared<InProcHub>(); }

std::unique_ptr<Transport> NewInProcTransport(std::shared_ptr<InProcHub> hub) {
  return std::make_unique<InProcTransport>(std::move(hub));
}

}  // namespace fmps
