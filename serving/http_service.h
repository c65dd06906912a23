// HttpService: the ranking service over HTTP/1.1 (Boost.Beast on Asio), keep-alive connections.
//   POST /rank     body text/plain, see rank_request.h; answers one probability per candidate
//                  line, "%.9g\n". Bad input -> 400 with a message naming the line and token.
//                  With an auth_token it needs "Authorization: Bearer TOKEN" (else 401).
//   GET  /healthz  "ok model=NAME version=N".
//   GET  /metrics  Prometheus text: requests, candidates, errors, latency histogram.
// Threads: Start() runs `threads` threads on one io_context; every connection lives on its own
// strand, the Ranker is const and thread-safe (and swapped atomically on reload), metrics are
// atomics. Stop() (any thread, also from a signal-waiting thread; not from a handler) closes the
// listener, drains the connections and joins the threads.
#ifndef FMPS_SERVING_HTTP_SERVICE_H_
#define FMPS_SERVING_HTTP_SERVICE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "config/params.h"
#include "ps/base/status.h"
#include "serving/model_snapshot.h"
#include "serving/ranker.h"

namespace fmps {

struct HttpServiceOptions {
  std::string listen = params::kDefault.listen;  // HOST:PORT; port 0 picks a free port (port())
  int threads = params::kDefault.serve_threads;  // threads running the io_context
  size_t max_body_bytes = 16u << 20;             // larger /rank bodies are refused with 400
  size_t max_candidates = 1u << 20;              // more candidate lines are refused with 400
  double idle_timeout_s = 60;                    // a connection silent this long is closed
  double drain_timeout_s = 10;                   // Stop() waits this long for requests under way
  RankerOptions ranker;                          // how candidates are scored
  // Non-empty: /rank answers only requests with "Authorization: Bearer <auth_token>", others get
  // 401. /healthz and /metrics stay open: probes and scrapers carry no token, and tell nothing
  // about the model's answers. Empty (the default): no token needed.
  std::string auth_token;
};

// Counters of the service, as /metrics prints them.
struct ServiceCounters {
  uint64_t requests = 0;  // every HTTP request answered
  uint64_t rank_requests = 0;
  uint64_t candidates = 0;    // candidates scored
  uint64_t errors = 0;        // answers with status >= 400
  uint64_t unauthorized = 0;  // /rank requests refused (401) for a missing or wrong token
  uint64_t reloads = 0;       // snapshots swapped in by SwapSnapshot
};

class HttpService {
 public:
  HttpService(std::shared_ptr<const ModelSnapshot> snapshot, HttpServiceOptions options);
  ~HttpService();  // Stop()
  HttpService(const HttpService&) = delete;
  HttpService& operator=(const HttpService&) = delete;

  // Binds and starts the threads. InvalidArgument for a bad listen address, IOError when the
  // address cannot be bound.
  Status Start();
  int port() const;  // the bound port (after Start)
  // Stops accepting and closes idle connections; requests under way are answered (with
  // "Connection: close") for up to drain_timeout_s, then the rest is closed and the threads
  // joined. Idempotent.
  void Stop();

  ServiceCounters counters() const;
  // Serves `snapshot` from now on (any thread): requests already being answered finish with the
  // one they started with, which is freed after the last of them.
  void SwapSnapshot(std::shared_ptr<const ModelSnapshot> snapshot);
  int64_t version() const;  // of the snapshot being served
  std::string MetricsText() const;

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace fmps

#endif  // FMPS_SERVING_HTTP_SERVICE_H_
