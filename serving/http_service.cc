#include "serving/http_service.h"

#include <glog/logging.h>

#include <array>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "metrics/metrics.h"
#include "serving/rank_request.h"

namespace fmps {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

Result<tcp::endpoint> ParseListen(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) {
    return Status::InvalidArgument("listen address '" + listen + "' is not HOST:PORT");
  }
  std::string host = listen.substr(0, colon);
  const std::string port_text = listen.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty() || host == "localhost") host = "127.0.0.1";
  char* end = nullptr;
  const long port = std::strtol(port_text.c_str(), &end, 10);
  if (port_text.empty() || *end != '\0' || port < 0 || port > 65535) {
    return Status::InvalidArgument("listen address '" + listen + "': bad port '" + port_text + "'");
  }
  boost::system::error_code ec;
  asio::ip::address address = asio::ip::make_address(host, ec);
  if (ec) {
    return Status::InvalidArgument("listen address '" + listen + "': bad host '" + host +
                                   "' (an IP address or localhost)");
  }
  return tcp::endpoint(address, static_cast<uint16_t>(port));
}

// True when `given` equals `want`. Every byte of the longer is compared whatever differs, so the
// time taken does not tell a guesser how many leading bytes were right.
bool TokenMatches(std::string_view given, std::string_view want) {
  unsigned diff = given.size() == want.size() ? 0 : 1;
  const size_t n = std::max(given.size(), want.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char a = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    const unsigned char b = i < want.size() ? static_cast<unsigned char>(want[i]) : 0;
    diff |= a ^ b;
  }
  return diff == 0;
}

// The token of an "Authorization: Bearer TOKEN" value (the scheme is case-insensitive, RFC 7235);
// nullopt for another scheme or none.
std::optional<std::string_view> BearerToken(std::string_view value) {
  constexpr std::string_view kScheme = "bearer";
  if (value.size() <= kScheme.size() || value[kScheme.size()] != ' ') return std::nullopt;
  for (size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(value[i])) != kScheme[i]) return std::nullopt;
  }
  value.remove_prefix(kScheme.size());
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  return value;
}

}  // namespace

class HttpSession;

class HttpService::Impl {
 public:
  Impl(std::shared_ptr<const ModelSnapshot> snapshot, HttpServiceOptions options)
      : options_(std::move(options)),
        ranker_(std::make_shared<const Ranker>(std::move(snapshot), options_.ranker)),
        ioc_(std::max(1, options_.threads)),
        acceptor_(asio::make_strand(ioc_)) {
    registry_.AddGaugeFunction(
        "fmps_serve_model_version", "Checkpoint version being served.",
        [this] { return static_cast<double>(ranker()->snapshot().version()); },
        {{"model", ranker()->snapshot().config().model()}});
  }

  Status Start();
  void Stop();
  int port() const { return port_; }
  const HttpServiceOptions& options() const { return options_; }

  // Answers one request (any thread).
  http::response<http::string_body> Handle(const http::request<http::string_body>& req);
  // The answer to a body over the limit (the parser stopped reading it).
  http::response<http::string_body> TooLarge(unsigned version);

  // The ranker of the snapshot being served; a request keeps the one it started with.
  std::shared_ptr<const Ranker> ranker() const { return ranker_.load(); }
  void Swap(std::shared_ptr<const ModelSnapshot> snapshot) {
    ranker_.store(std::make_shared<const Ranker>(std::move(snapshot), options_.ranker));
    reloads_->Add();
  }

  ServiceCounters Counters() const {
    ServiceCounters c;
    c.reloads = reloads_->value();
    c.requests = requests_->value();
    c.rank_requests = rank_requests_->value();
    c.candidates = candidates_->value();
    c.errors = errors_->value();
    c.unauthorized = unauthorized_->value();
    return c;
  }
  std::string MetricsText() const;

  // Live connections, so Stop() can close them. Register returns false once stopping (the
  // session then closes itself).
  bool Register(HttpSession* session, std::weak_ptr<HttpSession> weak);
  void Unregister(HttpSession* session);

 private:
  void Accept();
  http::response<http::string_body> Reply(http::status status, unsigned version, bool keep_alive,
                                          std::string body);
  http::response<http::string_body> Rank(const http::request<http::string_body>& req);
  // The 401 answer when auth_token is set and req does not carry it; nullopt when it may go on.
  std::optional<http::response<http::string_body>> RefuseUnauthorized(
      const http::request<http::string_body>& req);

  HttpServiceOptions options_;
  std::atomic<std::shared_ptr<const Ranker>> ranker_;
  // Declared before ioc_ so they outlive any handler the context still holds when destroyed.
  std::mutex sessions_mu_;
  bool stopping_ = false;  // GUARDED_BY(sessions_mu_)
  std::unordered_map<HttpSession*, std::weak_ptr<HttpSession>>
      sessions_;                         // GUARDED_BY(sessions_mu_)
  std::condition_variable sessions_cv_;  // signalled when the last session ends
  asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::vector<std::thread> threads_;
  int port_ = 0;
  bool started_ = false, stopped_ = false;  // touched by Start/Stop callers only

  // The service's figures, in the metrics library's registry like every other role's.
  MetricsRegistry registry_;
  Counter* requests_ = registry_.AddCounter("fmps_serve_requests_total", "HTTP requests answered.");
  Counter* rank_requests_ =
      registry_.AddCounter("fmps_serve_rank_requests_total", "POST /rank requests.");
  Counter* candidates_ = registry_.AddCounter("fmps_serve_candidates_total", "Candidates scored.");
  Counter* errors_ = registry_.AddCounter("fmps_serve_errors_total", "Answers with status >= 400.");
  Counter* unauthorized_ =
      registry_.AddCounter("fmps_serve_unauthorized_total",
                           "/rank requests refused (401) for a missing or wrong bearer token.");
  Counter* reloads_ =
      registry_.AddCounter("fmps_serve_reloads_total", "Newer checkpoints loaded while serving.");
  Histogram* latency_ = registry_.AddHistogram(
      "fmps_serve_request_seconds", "Time to parse, score and format a successful /rank request.",
      {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
       10});
};

// One connection: read a request, answer it, repeat while the client keeps the connection alive.
// Every handler runs on the connection's strand.
class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket&& socket, HttpService::Impl* service)
      : stream_(std::move(socket)), service_(service) {}
  ~HttpSession() { service_->Unregister(this); }

  void Run() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      if (self->service_->Register(self.get(), self)) {
        self->Read();
      } else {
        self->stream_.close();
      }
    });
  }

  // From any thread, on the connection's strand: a connection waiting for its next request is
  // closed at once; one with a request under way answers it (with "Connection: close") and closes.
  void Drain() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
      self->draining_ = true;
      if (!self->busy_ && !(self->parser_ && self->parser_->got_some())) self->stream_.close();
    });
  }
  // From any thread: closes the connection on its strand (pending operations end with errors).
  void Close() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->stream_.close(); });
  }

 private:
  void Read() {
    busy_ = false;
    if (draining_) {
      stream_.close();
      return;
    }
    parser_.emplace();
    parser_->body_limit(service_->options().max_body_bytes);
    stream_.expires_after(
        std::chrono::milliseconds(static_cast<int64_t>(service_->options().idle_timeout_s * 1000)));
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&HttpSession::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, size_t) {
    busy_ = true;
    if (ec == http::error::end_of_stream) {
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
      return;
    }
    if (ec == http::error::body_limit) {
      response_ = service_->TooLarge(parser_->get().version());
      Write();
      return;
    }
    if (ec) return;  // timeout, reset, malformed HTTP: drop the connection
    response_ = service_->Handle(parser_->get());
    if (draining_) response_.keep_alive(false);
    Write();
  }

  void Write() {
    stream_.expires_after(
        std::chrono::milliseconds(static_cast<int64_t>(service_->options().idle_timeout_s * 1000)));
    http::async_write(stream_, response_,
                      beast::bind_front_handler(&HttpSession::OnWrite, shared_from_this()));
  }

  void OnWrite(beast::error_code ec, size_t) {
    if (ec) return;
    if (!response_.keep_alive()) {
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
      return;
    }
    buffer_.consume(0);
    Read();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  HttpService::Impl* service_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
  bool busy_ = false;      // between a request read and its answer written (strand only)
  bool draining_ = false;  // the service is stopping: no request after the current one
};

bool HttpService::Impl::Register(HttpSession* session, std::weak_ptr<HttpSession> weak) {
  std::lock_guard<std::mutex> lock(sessions_mu_);
  if (stopping_) return false;
  sessions_.emplace(session, std::move(weak));
  return true;
}

void HttpService::Impl::Unregister(HttpSession* session) {
  std::lock_guard<std::mutex> lock(sessions_mu_);
  sessions_.erase(session);
  if (sessions_.empty()) sessions_cv_.notify_all();
}

Status HttpService::Impl::Start() {
  if (started_) return Status::InvalidArgument("HttpService already started");
  Result<tcp::endpoint> endpoint = ParseListen(options_.listen);
  if (!endpoint.ok()) return endpoint.status();
  boost::system::error_code ec;
  acceptor_.open(endpoint->protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(*endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::IOError("cannot listen on " + options_.listen + ": " + ec.message());
  port_ = acceptor_.local_endpoint().port();
  started_ = true;
  Accept();
  for (int i = 0; i < std::max(1, options_.threads); ++i)
    threads_.emplace_back([this] { ioc_.run(); });
  return Status::OK();
}

void HttpService::Impl::Accept() {
  acceptor_.async_accept(asio::make_strand(ioc_), [this](beast::error_code ec, tcp::socket s) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      s.set_option(tcp::no_delay(true), ec);
      std::make_shared<HttpSession>(std::move(s), this)->Run();
    }
    Accept();
  });
}

void HttpService::Impl::Stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  asio::dispatch(acceptor_.get_executor(), [this] {
    boost::system::error_code ec;
    acceptor_.close(ec);
  });
  // Drain: idle connections close now; a request being read or answered is finished (its answer
  // says "Connection: close") within drain_timeout_s; then whatever is left is closed. Once no
  // connection holds work, the threads' run() returns.
  auto open_sessions = [this] {
    std::vector<std::shared_ptr<HttpSession>> open;
    std::lock_guard<std::mutex> lock(sessions_mu_);
    stopping_ = true;
    for (auto& [ptr, weak] : sessions_) {
      if (auto session = weak.lock()) open.push_back(std::move(session));
    }
    return open;
  };
  for (auto& session : open_sessions()) session->Drain();
  {
    std::unique_lock<std::mutex> lock(sessions_mu_);
    sessions_cv_.wait_for(lock, std::chrono::duration<double>(options_.drain_timeout_s),
                          [this] { return sessions_.empty(); });
  }
  for (auto& session : open_sessions()) session->Close();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

http::response<http::string_body> HttpService::Impl::Reply(http::status status, unsigned version,
                                                           bool keep_alive, std::string body) {
  http::response<http::string_body> res{status, version};
  res.set(http::field::server, "fmps");
  res.set(http::field::content_type, "text/plain; charset=utf-8");
  res.keep_alive(keep_alive);
  res.body() = std::move(body);
  res.prepare_payload();
  if (static_cast<unsigned>(status) >= 400) errors_->Add(1);
  return res;
}

http::response<http::string_body> HttpService::Impl::TooLarge(unsigned version) {
  requests_->Add(1);
  // The rest of the body is still on the wire: answer and close.
  return Reply(http::status::bad_request, version, false,
               "body over the limit of " + std::to_string(options_.max_body_bytes) + " bytes\n");
}

http::response<http::string_body> HttpService::Impl::Handle(
    const http::request<http::string_body>& req) {
  requests_->Add(1);
  std::string_view target(req.target().data(), req.target().size());
  target = target.substr(0, target.find('?'));
  const bool get = req.method() == http::verb::get;
  if (target == "/rank") {
    if (auto refused = RefuseUnauthorized(req)) return std::move(*refused);
    if (req.method() != http::verb::post) {
      auto res = Reply(http::status::method_not_allowed, req.version(), req.keep_alive(),
                       "/rank takes POST\n");
      res.set(http::field::allow, "POST");
      return res;
    }
    return Rank(req);
  }
  if (target == "/healthz" && get) {
    const std::shared_ptr<const Ranker> ranker = this->ranker();
    const ModelSnapshot& s = ranker->snapshot();
    return Reply(
        http::status::ok, req.version(), req.keep_alive(),
        "ok model=" + s.config().model() + " version=" + std::to_string(s.version()) + "\n");
  }
  if (target == "/metrics" && get) {
    auto res = Reply(http::status::ok, req.version(), req.keep_alive(), MetricsText());
    res.set(http::field::content_type, "text/plain; version=0.0.4");
    return res;
  }
  return Reply(
      http::status::not_found, req.version(), req.keep_alive(),
      "no such endpoint: " + std::string(target) + " (POST /rank, GET /healthz, GET /metrics)\n");
}

std::optional<http::response<http::string_body>> HttpService::Impl::RefuseUnauthorized(
    const http::request<http::string_body>& req) {
  if (options_.auth_token.empty()) return std::nullopt;
  const auto header = req.find(http::field::authorization);
  std::optional<std::string_view> token;
  if (header != req.end())
    token = BearerToken(std::string_view(header->value().data(), header->value().size()));
  if (token && TokenMatches(*token, options_.auth_token)) return std::nullopt;
  unauthorized_->Add(1);
  // RFC 6750: a request without credentials gets the bare challenge, a wrong token invalid_token.
  auto res = Reply(http::status::unauthorized, req.version(), req.keep_alive(),
                   token ? "wrong bearer token\n" : "/rank needs Authorization: Bearer TOKEN\n");
  res.set(http::field::www_authenticate,
          token ? "Bearer realm=\"fmps\", error=\"invalid_token\"" : "Bearer realm=\"fmps\"");
  return res;
}

http::response<http::string_body> HttpService::Impl::Rank(
    const http::request<http::string_body>& req) {
  const auto start = std::chrono::steady_clock::now();
  rank_requests_->Add(1);
  thread_local RankRequest parsed;
  thread_local std::vector<float> probs;
  const std::shared_ptr<const Ranker> ranker = this->ranker();
  Status st = ParseRankRequest(
      req.body(), RequestOptionsFor(ranker->snapshot(), options_.max_candidates), &parsed);
  if (st.ok()) st = ranker->Score(parsed.Context(), parsed.candidates, &probs);
  if (!st.ok()) {
    return Reply(http::status::bad_request, req.version(), req.keep_alive(), st.message() + "\n");
  }
  // One "%.9g\n" per candidate; to_chars with general format and a precision is defined as printf's
  // %g, without printf's format parsing and locale per number.
  std::string body(probs.size() * 17, '\0');
  char* out = body.data();
  for (float p : probs) {
    out = std::to_chars(out, out + 16, p, std::chars_format::general, 9).ptr;
    *out++ = '\n';
  }
  body.resize(static_cast<size_t>(out - body.data()));
  candidates_->Add(probs.size());
  auto res = Reply(http::status::ok, req.version(), req.keep_alive(), std::move(body));
  latency_->Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return res;
}

std::string HttpService::Impl::MetricsText() const { return registry_.Text(); }

HttpService::HttpService(std::shared_ptr<const ModelSnapshot> snapshot, HttpServiceOptions options)
    : impl_(std::make_unique<Impl>(std::move(snapshot), std::move(options))) {}
HttpService::~HttpService() { Stop(); }
Status HttpService::Start() { return impl_->Start(); }
int HttpService::port() const { return impl_->port(); }
void HttpService::Stop() { impl_->Stop(); }
ServiceCounters HttpService::counters() const { return impl_->Counters(); }
void HttpService::SwapSnapshot(std::shared_ptr<const ModelSnapshot> snapshot) {
  impl_->Swap(std::move(snapshot));
}
int64_t HttpService::version() const { return impl_->ranker()->snapshot().version(); }
std::string HttpService::MetricsText() const { return impl_->MetricsText(); }

}  // namespace fmps
