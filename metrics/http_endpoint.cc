#include "metrics/http_endpoint.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <thread>

namespace fmps {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// One connection: read a request, answer it, repeat while the client keeps it alive. Everything
// runs on the endpoint's single thread, so no strand is needed.
class MetricsSession : public std::enable_shared_from_this<MetricsSession> {
 public:
  MetricsSession(tcp::socket&& socket, const MetricsRegistry* registry, double idle_timeout_s)
      : stream_(std::move(socket)), registry_(registry), idle_timeout_s_(idle_timeout_s) {}

  void Read() {
    request_ = {};
    stream_.expires_after(std::chrono::milliseconds(static_cast<int64_t>(idle_timeout_s_ * 1e3)));
    http::async_read(stream_, buffer_, request_,
                     beast::bind_front_handler(&MetricsSession::OnRead, shared_from_this()));
  }

 private:
  void OnRead(beast::error_code ec, size_t) {
    if (ec) return;  // closed, timed out or malformed: drop the connection
    response_ = Answer();
    http::async_write(stream_, response_,
                      beast::bind_front_handler(&MetricsSession::OnWrite, shared_from_this()));
  }

  void OnWrite(beast::error_code ec, size_t) {
    if (ec) return;
    if (!response_.keep_alive()) {
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
      return;
    }
    Read();
  }

  http::response<http::string_body> Answer() {
    std::string_view target(request_.target().data(), request_.target().size());
    target = target.substr(0, target.find('?'));
    http::status status = http::status::ok;
    std::string body, type = "text/plain; charset=utf-8";
    if (request_.method() != http::verb::get && request_.method() != http::verb::head) {
      status = http::status::method_not_allowed;
      body = "only GET\n";
    } else if (target == "/metrics") {
      body = registry_->Text();
      type = "text/plain; version=0.0.4; charset=utf-8";
    } else if (target == "/healthz") {
      if (registry_->ready()) {
        body = "ok " + registry_->ready_text() + "\n";
      } else {
        status = http::status::service_unavailable;
        body = "not ready: " + registry_->ready_text() + "\n";
      }
    } else {
      status = http::status::not_found;
      body = "no such endpoint: " + std::string(target) + " (GET /metrics, GET /healthz)\n";
    }
    http::response<http::string_body> res{status, request_.version()};
    res.set(http::field::server, "fmps");
    res.set(http::field::content_type, type);
    res.keep_alive(request_.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
  const MetricsRegistry* registry_;
  double idle_timeout_s_;
};

class MetricsEndpoint::Impl {
 public:
  Impl(const MetricsRegistry* registry, MetricsEndpointOptions options)
      : registry_(registry), options_(std::move(options)), acceptor_(ioc_) {}

  Status Start() {
    boost::system::error_code ec;
    const std::string where = options_.host + ":" + std::to_string(options_.port);
    asio::ip::address address = asio::ip::make_address(
        options_.host == "localhost" || options_.host.empty() ? "127.0.0.1" : options_.host, ec);
    if (ec) return Status::InvalidArgument("metrics endpoint " + where + ": bad address");
    if (options_.port < 0 || options_.port > 65535)
      return Status::InvalidArgument("metrics endpoint " + where + ": bad port");
    const tcp::endpoint endpoint(address, static_cast<uint16_t>(options_.port));
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return Status::IOError("cannot serve metrics on " + where + ": " + ec.message());
    port_ = acceptor_.local_endpoint().port();
    Accept();
    thread_ = std::thread([this] { ioc_.run(); });
    return Status::OK();
  }

  void Stop() {
    if (!thread_.joinable()) return;
    ioc_.stop();  // pending sessions are destroyed with the context
    thread_.join();
  }

  int port() const { return port_; }

 private:
  void Accept() {
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) {
        std::make_shared<MetricsSession>(std::move(socket), registry_, options_.idle_timeout_s)
            ->Read();
      }
      Accept();
    });
  }

  const MetricsRegistry* registry_;
  MetricsEndpointOptions options_;
  asio::io_context ioc_{1};
  tcp::acceptor acceptor_;
  std::thread thread_;
  int port_ = 0;
};

MetricsEndpoint::MetricsEndpoint(const MetricsRegistry* registry, MetricsEndpointOptions options)
    : impl_(std::make_unique<Impl>(registry, std::move(options))) {}
MetricsEndpoint::~MetricsEndpoint() { Stop(); }
Status MetricsEndpoint::Start() { return impl_->Start(); }
int MetricsEndpoint::port() const { return impl_->port(); }
void MetricsEndpoint::Stop() { impl_->Stop(); }

}  // namespace fmps
