// serving_bench: cost of ranking with a DPLR-FwFM snapshot (random parameters), shaped like the
// DPLR paper's setting: 30 context fields, 9 item fields, k = 8, rho = 3, one feature per field.
// Prints CPU microseconds per request of 1000 candidates for
//   cached   Ranker's Algorithm 1 (context once, O(rho |I| k) per candidate),
//   generic  full rows (context + candidate) through Model::Compute,
//   naive    the O(m^2 k) FwFM form sum_{f<g} R_fg <S_f, S_g> with R built once,
// their ratios, then p50/p99 latency of POST /rank over loopback HTTP (N sequential requests on
// one keep-alive connection, the service with 2 threads), and one JSON line.
// Usage: serving_bench [seconds_per_path (default 1)] [http_requests (default 300)]
#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "models/job_config.h"
#include "models/metrics.h"
#include "ps/base/keys.h"
#include "serving/http_service.h"
#include "serving/rank_request.h"
#include "serving/ranker.h"

namespace {

using namespace fmps;
using Clock = std::chrono::steady_clock;

constexpr int kContextFields = 30, kItemFields = 9, kFields = kContextFields + kItemFields;
constexpr int kRank = 8, kRho = 3, kVocabulary = 1000, kCandidates = 1000;

std::string Token(int field, int id) { return "t" + std::to_string(field * 7919 + id); }

std::shared_ptr<const ModelSnapshot> MakeSnapshot() {
  proto::JobConfig c = DefaultJobConfig();
  c.set_model("dplr");
  c.set_k(kRank);
  c.set_num_fields(kFields);
  c.set_rank(kRho);
  c.set_format("libffm");
  std::mt19937_64 rng(1);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> dense(1 + kRho * kFields + kRho);
  for (float& d : dense) d = 0.3f * normal(rng);
  std::vector<SnapshotRow> rows;
  for (int f = 0; f < kFields; ++f) {
    for (int t = 0; t < kVocabulary; ++t) {
      SnapshotRow r{MakeKey(f, HashToken(Token(f, t))), 0.1f * normal(rng), {}};
      for (int d = 0; d < kRank; ++d) r.v.push_back(0.1f * normal(rng));
      rows.push_back(std::move(r));
    }
  }
  Result<std::unique_ptr<ModelSnapshot>> s = ModelSnapshot::FromRows(c, std::move(dense), rows);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.status().ToString().c_str());
    std::exit(1);
  }
  return std::shared_ptr<const ModelSnapshot>(std::move(s.value()));
}

std::string MakeBody(std::mt19937_64* rng) {
  std::string body;
  for (int f = 0; f < kContextFields; ++f)
    body += std::to_string(f) + ":" + Token(f, int((*rng)() % kVocabulary)) + " ";
  body += "\n";
  for (int c = 0; c < kCandidates; ++c) {
    for (int f = kContextFields; f < kFields; ++f)
      body += std::to_string(f) + ":" + Token(f, int((*rng)() % kVocabulary)) + " ";
    body += "\n";
  }
  return body;
}

// The O(m^2 k) form: per candidate, every field's sum S_f and every pair's R_fg <S_f, S_g>.
class NaiveFwfm {
 public:
  explicit NaiveFwfm(const ModelSnapshot& s) : s_(s), R_(size_t(kFields) * kFields, 0.f) {
    const float* u = s.dense().data() + 1;
    const float* e = u + kRho * kFields;
    for (int f = 0; f < kFields; ++f)
      for (int g = 0; g < kFields; ++g)
        for (int p = 0; p < kRho; ++p)
          if (f != g) R_[f * kFields + g] += e[p] * u[p * kFields + f] * u[p * kFields + g];
  }
  void Score(const RankRequest& req, std::vector<float>* probs) {
    const Minibatch& cand = req.candidates;
    probs->resize(cand.offsets.size() - 1);
    std::vector<float> sums(size_t(kFields) * kRank);
    for (size_t r = 0; r + 1 < cand.offsets.size(); ++r) {
      std::fill(sums.begin(), sums.end(), 0.f);
      double z = s_.dense()[0];
      auto add = [&](uint64_t key, float x) {
        float w;
        const float* v = s_.Get(key, &w);
        z += double(w) * x;
        float* sf = sums.data() + size_t(KeyField(key)) * kRank;
        for (int d = 0; d < kRank; ++d) sf[d] += x * v[d];
      };
      for (size_t e = 0; e < req.context.keys.size(); ++e)
        add(req.context.keys[e], req.context.values[e]);
      for (uint32_t e = cand.offsets[r]; e < cand.offsets[r + 1]; ++e)
        add(cand.keys[e], cand.values[e]);
      for (int f = 0; f < kFields; ++f) {
        for (int g = f + 1; g < kFields; ++g) {
          float dot = 0.f;
          for (int d = 0; d < kRank; ++d) dot += sums[f * kRank + d] * sums[g * kRank + d];
          z += R_[f * kFields + g] * dot;
        }
      }
      (*probs)[r] = static_cast<float>(Sigmoid(z));
    }
  }

 private:
  const ModelSnapshot& s_;
  std::vector<float> R_;
};

// CPU seconds of this thread: the machine is shared, so wall time would count other jobs.
double ThreadSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

// CPU microseconds per call of fn, repeated for about `seconds` of CPU time.
double MicrosPerCall(double seconds, const std::function<void()>& fn) {
  fn();  // warm-up
  int calls = 0;
  const double start = ThreadSeconds();
  double elapsed = 0;
  while (elapsed < seconds) {
    fn();
    ++calls;
    elapsed = ThreadSeconds() - start;
  }
  return elapsed * 1e6 / calls;
}

double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(q * double(v.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 1.0;
  const int http_requests = argc > 2 ? std::atoi(argv[2]) : 300;
  auto snapshot = MakeSnapshot();
  std::mt19937_64 rng(2);
  const std::string body = MakeBody(&rng);
  RankRequest req;
  const RankRequestOptions request_options = RequestOptionsFor(*snapshot);
  Status st = ParseRankRequest(body, request_options, &req);
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.ToString().c_str());
    return 1;
  }
  Ranker cached(snapshot);
  RankerOptions generic_options;
  generic_options.cached_context = false;
  Ranker generic(snapshot, generic_options);
  NaiveFwfm naive(*snapshot);
  std::vector<float> a, b, c;
  const double us_cached =
      MicrosPerCall(seconds, [&] { (void)cached.Score(req.Context(), req.candidates, &a); });
  const double us_generic =
      MicrosPerCall(seconds, [&] { (void)generic.Score(req.Context(), req.candidates, &b); });
  const double us_naive = MicrosPerCall(seconds, [&] { naive.Score(req, &c); });
  const double us_parse =
      MicrosPerCall(seconds / 2, [&] { (void)ParseRankRequest(body, request_options, &req); });
  double max_diff = 0;
  for (size_t i = 0; i < a.size(); ++i)
    max_diff = std::max({max_diff, double(std::abs(a[i] - b[i])), double(std::abs(a[i] - c[i]))});
  std::printf("request: %d context fields, %d candidates x %d item fields, k=%d, rho=%d\n",
              kContextFields, kCandidates, kItemFields, kRank, kRho);
  std::printf("cached context (Algorithm 1)   %9.1f us/request (CPU)  %6.3f us/candidate\n",
              us_cached, us_cached / kCandidates);
  std::printf(
      "generic full rows (Compute)    %9.1f us/request (CPU)  %6.3f us/candidate  (%.1fx cached)\n",
      us_generic, us_generic / kCandidates, us_generic / us_cached);
  std::printf(
      "naive O(m^2 k) FwFM            %9.1f us/request (CPU)  %6.3f us/candidate  (%.1fx cached)\n",
      us_naive, us_naive / kCandidates, us_naive / us_cached);
  std::printf("parse body (%zu bytes)        %9.1f us/request (CPU)\n", body.size(), us_parse);
  std::printf("largest |difference| between paths: %.2g\n", max_diff);

  // Loopback HTTP: sequential requests on one keep-alive connection.
  HttpServiceOptions o;
  o.listen = "127.0.0.1:0";
  o.threads = 2;
  HttpService service(snapshot, o);
  st = service.Start();
  if (!st.ok()) {
    std::fprintf(stderr, "%s\n", st.ToString().c_str());
    return 1;
  }
  namespace asio = boost::asio;
  namespace http = boost::beast::http;
  asio::io_context ioc;
  boost::beast::tcp_stream stream(ioc);
  stream.connect(asio::ip::tcp::endpoint(asio::ip::address_v4::loopback(),
                                         static_cast<uint16_t>(service.port())));
  boost::beast::flat_buffer buffer;
  std::vector<double> latencies;
  for (int i = 0; i < http_requests + 10; ++i) {
    http::request<http::string_body> hreq{http::verb::post, "/rank", 11};
    hreq.set(http::field::host, "127.0.0.1");
    hreq.keep_alive(true);
    hreq.body() = body;
    hreq.prepare_payload();
    const auto start = Clock::now();
    http::write(stream, hreq);
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (res.result() != http::status::ok) {
      std::fprintf(stderr, "HTTP %u: %s\n", res.result_int(), res.body().c_str());
      return 1;
    }
    if (i >= 10) latencies.push_back(ms);  // the first ones warm up
  }
  service.Stop();
  const double p50 = Percentile(latencies, 0.5), p99 = Percentile(latencies, 0.99);
  std::printf(
      "HTTP POST /rank (%d sequential, %d candidates, %zu-byte body): p50 %.3f ms, p99 %.3f ms\n",
      http_requests, kCandidates, body.size(), p50, p99);
  std::printf(
      "{\"bench\":\"serving\",\"context_fields\":%d,\"item_fields\":%d,\"candidates\":%d,\"k\":%d,"
      "\"rho\":%d,\"cached_us\":%.1f,\"generic_us\":%.1f,\"naive_us\":%.1f,\"parse_us\":%.1f,"
      "\"generic_over_cached\":%.2f,\"naive_over_cached\":%.2f,\"http_requests\":%d,"
      "\"http_p50_ms\":%.3f,\"http_p99_ms\":%.3f}\n",
      kContextFields, kItemFields, kCandidates, kRank, kRho, us_cached, us_generic, us_naive,
      us_parse, us_generic / us_cached, us_naive / us_cached, http_requests, p50, p99);
  return 0;
}
