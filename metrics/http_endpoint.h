// MetricsEndpoint: a small HTTP/1.1 server (Boost.Beast) for one node's MetricsRegistry.
//   GET /metrics  the registry's Prometheus text (Content-Type text/plain; version=0.0.4)
//   GET /healthz  200 "ok ..." once the node has joined its job, 503 "not ready: ..." before
// One thread runs the io_context; a scrape builds the text on it, so the node's own threads never
// wait for a scraper. Stop() (or the destructor) closes the listener and joins the thread.
#ifndef FMPS_METRICS_HTTP_ENDPOINT_H_
#define FMPS_METRICS_HTTP_ENDPOINT_H_

#include <memory>
#include <string>

#include "metrics/metrics.h"
#include "ps/base/status.h"

namespace fmps {

struct MetricsEndpointOptions {
  std::string host = "127.0.0.1";  // address to listen on (0.0.0.0: every interface)
  int port = 0;                    // 0: any free port (see port())
  double idle_timeout_s = 30;      // a connection silent this long is closed
};

class MetricsEndpoint {
 public:
  MetricsEndpoint(const MetricsRegistry* registry, MetricsEndpointOptions options);
  ~MetricsEndpoint();  // Stop()
  MetricsEndpoint(const MetricsEndpoint&) = delete;
  MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

  // Binds and starts the thread. IOError (naming the address) when it cannot be bound.
  Status Start();
  int port() const;
  void Stop();  // idempotent

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace fmps

#endif  // FMPS_METRICS_HTTP_ENDPOINT_H_
