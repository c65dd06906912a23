// The HTTP service in-process on 127.0.0.1 port 0, through a Beast client: /rank answers equal
// the Ranker's scores, each kind of bad input gets a 400 naming the line and token (and the
// service answers afterwards), /healthz, /metrics counters, two concurrent clients.
#include "serving/http_service.h"

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <random>
#include <sstream>
#include <thread>

#include "serving/rank_request.h"
#include "tests/serving/serving_test_util.h"

namespace fmps {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// A keep-alive HTTP/1.1 client on one connection.
class Client {
 public:
  explicit Client(int port) : stream_(ioc_) {
    stream_.connect(tcp::endpoint(asio::ip::address_v4::loopback(), static_cast<uint16_t>(port)));
  }
  http::response<http::string_body> Send(http::verb verb, const std::string& target,
                                         const std::string& body = "") {
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::content_type, "text/plain");
    req.keep_alive(true);
    req.body() = body;
    req.prepare_payload();
    stream_.expires_after(std::chrono::seconds(10));  // a hang fails the test instead
    http::write(stream_, req);
    http::response<http::string_body> res;
    http::read(stream_, buffer_, res);
    return res;
  }
  http::response<http::string_body> Rank(const std::string& body) {
    return Send(http::verb::post, "/rank", body);
  }

 private:
  asio::io_context ioc_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

// A random request body over fields [0, 12): context fields 0..7, candidates 6..11 (some
// tokens unknown to the model, some lines empty), and the Ranker's answer for it.
std::string RandomBody(std::mt19937_64* rng, int candidates) {
  std::ostringstream out;
  auto line = [&](int first, int last) {
    for (int f = first; f < last; ++f) {
      if ((*rng)() % 10 < 3) continue;
      out << f << ":t" << (*rng)() % testing::kVocabulary;
      if ((*rng)() % 4 == 0) out << ":" << 0.5 + double((*rng)() % 100) / 100;
      out << ' ';
    }
    out << '\n';
  };
  line(0, 8);
  for (int c = 0; c < candidates; ++c) {
    if (c % 17 == 3) {
      out << '\n';
    } else {
      line(6, 12);
    }
  }
  return out.str();
}

std::string Expected(const Ranker& ranker, const std::string& body) {
  RankRequest req;
  const ModelSnapshot& s = ranker.snapshot();
  EXPECT_TRUE(ParseRankRequest(body, RequestOptionsFor(s), &req).ok());
  std::vector<float> probs;
  EXPECT_TRUE(ranker.Score(req.Context(), req.candidates, &probs).ok());
  std::string out;
  char buf[32];
  for (float p : probs) {
    std::snprintf(buf, sizeof(buf), "%.9g\n", p);
    out += buf;
  }
  return out;
}

class HttpServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    snapshot_ = testing::RandomSnapshot(testing::TestConfig("dplr", 8, 12), 21);
    ASSERT_NE(snapshot_, nullptr);
    HttpServiceOptions o;
    o.listen = "127.0.0.1:0";
    o.threads = 2;
    o.max_body_bytes = 64 << 10;
    o.max_candidates = 500;
    service_ = std::make_unique<HttpService>(snapshot_, o);
    Status st = service_->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
    ASSERT_GT(service_->port(), 0);
  }
  void TearDown() override { service_->Stop(); }

  std::shared_ptr<const ModelSnapshot> snapshot_;
  std::unique_ptr<HttpService> service_;
};

TEST_F(HttpServiceTest, RankAnswersTheRankersScores) {
  Ranker ranker(snapshot_);
  Client client(service_->port());
  std::mt19937_64 rng(3);
  for (int i = 0; i < 5; ++i) {  // one keep-alive connection, several requests
    const std::string body = RandomBody(&rng, 120);
    auto res = client.Rank(body);
    ASSERT_EQ(res.result(), http::status::ok) << res.body();
    EXPECT_EQ(res.body(), Expected(ranker, body));
    EXPECT_EQ(std::count(res.body().begin(), res.body().end(), '\n'), 120);
  }
  // Lines may end in \r\n and the last line needs no newline.
  auto res = client.Rank("0:t1 3:t2\r\n7:t3\r\n8:t4 9:t99");
  ASSERT_EQ(res.result(), http::status::ok) << res.body();
  EXPECT_EQ(res.body(), Expected(ranker, "0:t1 3:t2\n7:t3\n8:t4 9:t99\n"));
}

TEST_F(HttpServiceTest, BadInputIs400NamingLineAndTokenAndTheServiceGoesOn) {
  Client client(service_->port());
  struct Bad {
    std::string body, expect;
  };
  for (const Bad& bad : std::vector<Bad>{
           {"", "empty body"},
           {"0:t1\n6:t2 12:t3\n", "line 2, token 2 '12:t3': field 12 >= num_fields 12"},
           {"0:t1\n6:t2:abc\n", "line 2, token 1 '6:t2:abc': bad value"},
           {"0:t1\n6:t2:nan\n", "line 2, token 1 '6:t2:nan'"},
           {"0:t1 zz\n", "line 1, token 2 'zz'"},
           {"x:t1\n", "line 1, token 1 'x:t1': bad field"},
           {"0:t1\n" + std::string(501, '\n'), "line 502: more than 500 candidates"},
       }) {
    auto res = client.Rank(bad.body);
    EXPECT_EQ(res.result(), http::status::bad_request) << bad.body;
    EXPECT_NE(res.body().find(bad.expect), std::string::npos) << bad.body << " -> " << res.body();
    EXPECT_TRUE(res.keep_alive());
  }
  // Wrong method and path.
  EXPECT_EQ(client.Send(http::verb::get, "/rank").result(), http::status::method_not_allowed);
  EXPECT_EQ(client.Send(http::verb::get, "/nope").result(), http::status::not_found);
  // The same connection still scores.
  auto ok = client.Rank("0:t1\n6:t2\n");
  EXPECT_EQ(ok.result(), http::status::ok);
  EXPECT_EQ(std::count(ok.body().begin(), ok.body().end(), '\n'), 1);

  // A body over the limit: 400, and the connection is closed (the rest is still on the wire).
  {
    Client big(service_->port());
    std::string body = "0:t1\n";
    while (body.size() <= (64u << 10)) body += "6:t2 7:t3 8:t4\n";
    auto res = big.Rank(body);
    EXPECT_EQ(res.result(), http::status::bad_request);
    EXPECT_NE(res.body().find("body over the limit of 65536 bytes"), std::string::npos)
        << res.body();
    EXPECT_FALSE(res.keep_alive());
  }
  Client after(service_->port());
  EXPECT_EQ(after.Rank("0:t1\n6:t2\n").result(), http::status::ok);
  EXPECT_EQ(service_->counters().errors, 10u);
}

TEST_F(HttpServiceTest, HealthzAndMetrics) {
  Client client(service_->port());
  auto health = client.Send(http::verb::get, "/healthz");
  EXPECT_EQ(health.result(), http::status::ok);
  EXPECT_EQ(health.body(), "ok model=dplr version=7\n");

  auto before = client.Send(http::verb::get, "/metrics").body();
  EXPECT_NE(before.find("fmps_serve_candidates_total 0\n"), std::string::npos) << before;
  EXPECT_NE(before.find("fmps_serve_request_seconds_bucket{le=\"+Inf\"} 0\n"), std::string::npos)
      << before;
  client.Rank("0:t1\n6:t2\n7:t3\n\n");
  client.Rank("0:t1\n6:t2\n");
  client.Rank("0:t1 99:t2\n");  // an error
  auto after = client.Send(http::verb::get, "/metrics").body();
  EXPECT_NE(after.find("fmps_serve_candidates_total 4\n"), std::string::npos) << after;
  EXPECT_NE(after.find("fmps_serve_rank_requests_total 3\n"), std::string::npos) << after;
  EXPECT_NE(after.find("fmps_serve_errors_total 1\n"), std::string::npos) << after;
  // Only successful /rank requests are timed; the +Inf bucket and _count hold them all.
  EXPECT_NE(after.find("fmps_serve_request_seconds_bucket{le=\"+Inf\"} 2\n"), std::string::npos)
      << after;
  EXPECT_NE(after.find("fmps_serve_request_seconds_count 2\n"), std::string::npos) << after;
  // healthz, metrics, 3 ranks, and this metrics request itself.
  EXPECT_NE(after.find("fmps_serve_requests_total 6\n"), std::string::npos) << after;
}

TEST_F(HttpServiceTest, TwoConcurrentClients) {
  Ranker ranker(snapshot_);
  std::vector<std::string> failures(2);
  std::vector<std::thread> threads;
  for (int c = 0; c < 2; ++c) {
    threads.emplace_back([&, c] {
      Client client(service_->port());
      std::mt19937_64 rng(100 + c);
      for (int i = 0; i < 40; ++i) {
        const std::string body = RandomBody(&rng, 50);
        auto res = client.Rank(body);
        if (res.result() != http::status::ok || res.body() != Expected(ranker, body)) {
          failures[c] = "client " + std::to_string(c) + " request " + std::to_string(i) + ": " +
                        res.body().substr(0, 200);
          return;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures[0], "");
  EXPECT_EQ(failures[1], "");
  EXPECT_EQ(service_->counters().candidates, 2u * 40 * 50);
}

TEST_F(HttpServiceTest, StopClosesOpenConnections) {
  Client idle(service_->port());  // keep-alive, waiting for its next request
  ASSERT_EQ(idle.Rank("0:t1\n6:t2\n").result(), http::status::ok);
  service_->Stop();  // returns although a connection is open
  EXPECT_ANY_THROW(idle.Rank("0:t1\n6:t2\n"));
  EXPECT_ANY_THROW(Client refused(service_->port()));
  service_->Stop();  // idempotent
}

// Stop() drains: a request whose body is still arriving when Stop() is called is answered (with
// "Connection: close") before the connection closes; an idle keep-alive connection does not hold
// Stop() up; nothing new is accepted meanwhile.
TEST_F(HttpServiceTest, StopAnswersTheRequestUnderWayThenCloses) {
  Client idle(service_->port());
  ASSERT_EQ(idle.Rank("0:t1\n6:t2\n").result(), http::status::ok);
  asio::io_context ioc;
  tcp::socket sock(ioc);
  sock.connect(
      tcp::endpoint(asio::ip::address_v4::loopback(), static_cast<uint16_t>(service_->port())));
  const std::string body = "0:t1 3:t4\n6:t2\n7:t3\n";
  const std::string head =
      "POST /rank HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n";
  asio::write(sock, asio::buffer(head + body.substr(0, 5)));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the service has read the start
  const auto start = std::chrono::steady_clock::now();
  std::thread stopper([this] { service_->Stop(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // Stop() is draining by now
  EXPECT_ANY_THROW(Client late(service_->port()));              // the listener is closed
  asio::write(sock, asio::buffer(body.substr(5)));
  std::string answer;
  boost::system::error_code ec;
  char chunk[4096];
  while (!ec) {
    const size_t n = sock.read_some(asio::buffer(chunk), ec);
    answer.append(chunk, n);
  }
  EXPECT_EQ(ec, asio::error::eof) << ec.message();  // the service closed after answering
  stopper.join();
  const double stop_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(stop_s, 5.0) << "Stop() waited out its drain timeout (10 s)";
  EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << answer;
  EXPECT_NE(answer.find("Connection: close\r\n"), std::string::npos) << answer;
  const size_t at = answer.find("\r\n\r\n");
  ASSERT_NE(at, std::string::npos) << answer;
  EXPECT_EQ(std::count(answer.begin() + at + 4, answer.end(), '\n'), 2) << answer;  // 2 candidates
  EXPECT_ANY_THROW(idle.Rank("0:t1\n6:t2\n"));  // the idle connection was closed
}

TEST(HttpServiceStartTest, BadListenAddressIsAnError) {
  auto snapshot = testing::RandomSnapshot(testing::TestConfig("fm", 4, 4), 1);
  for (const std::string& listen : std::vector<std::string>{"127.0.0.1", "127.0.0.1:http",
                                                            "no.such.host:80", "127.0.0.1:70000"}) {
    HttpServiceOptions o;
    o.listen = listen;
    HttpService service(snapshot, o);
    Status st = service.Start();
    EXPECT_FALSE(st.ok()) << listen;
    EXPECT_NE(st.message().find(listen), std::string::npos) << st.message();
  }
  // A port in use.
  HttpServiceOptions o;
  o.listen = "127.0.0.1:0";
  HttpService first(snapshot, o);
  ASSERT_TRUE(first.Start().ok());
  o.listen = "127.0.0.1:" + std::to_string(first.port());
  HttpService second(snapshot, o);
  EXPECT_FALSE(second.Start().ok());
}

}  // namespace
}  // namespace fmps
