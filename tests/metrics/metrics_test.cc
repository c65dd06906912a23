// The metrics registry's text exposition and JSON fields, and the /metrics and /healthz endpoint
// over a real socket (raw HTTP/1.1, no client library).
#include "metrics/metrics.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "metrics/http_endpoint.h"
#include "tests/metrics/http_get.h"

namespace fmps {
namespace {

TEST(MetricsRegistryTest, TextFormatOfEveryType) {
  MetricsRegistry r;
  Counter* rows = r.AddCounter("fmps_rows_total", "Rows.");
  rows->Add(41);
  rows->Add();
  EXPECT_EQ(r.AddCounter("fmps_rows_total", "ignored"), rows);  // same name and labels: same one
  r.AddCounter("fmps_bytes_total", "Bytes by peer.", {{"peer", "1"}})->Add(7);
  r.AddCounter("fmps_bytes_total", "Bytes by peer.", {{"peer", "a\"b\\c"}})->Add(8);
  r.AddGauge("fmps_loss", "Loss.")->Set(0.25);
  r.AddGaugeFunction("fmps_age_seconds", "Age.", [] { return 3.5; });
  Histogram* h = r.AddHistogram("fmps_latency_seconds", "Latency.", {0.1, 1});
  h->Observe(0.05);
  h->Observe(0.1);  // on a bound: counted in that bucket (le is inclusive)
  h->Observe(0.5);
  h->Observe(7);
  EXPECT_EQ(r.Text(),
            "# HELP fmps_rows_total Rows.\n"
            "# TYPE fmps_rows_total counter\n"
            "fmps_rows_total 42\n"
            "# HELP fmps_bytes_total Bytes by peer.\n"
            "# TYPE fmps_bytes_total counter\n"
            "fmps_bytes_total{peer=\"1\"} 7\n"
            "fmps_bytes_total{peer=\"a\\\"b\\\\c\"} 8\n"
            "# HELP fmps_loss Loss.\n"
            "# TYPE fmps_loss gauge\n"
            "fmps_loss 0.25\n"
            "# HELP fmps_age_seconds Age.\n"
            "# TYPE fmps_age_seconds gauge\n"
            "fmps_age_seconds 3.5\n"
            "# HELP fmps_latency_seconds Latency.\n"
            "# TYPE fmps_latency_seconds histogram\n"
            "fmps_latency_seconds_bucket{le=\"0.1\"} 2\n"
            "fmps_latency_seconds_bucket{le=\"1\"} 3\n"
            "fmps_latency_seconds_bucket{le=\"+Inf\"} 4\n"
            "fmps_latency_seconds_sum 7.65\n"
            "fmps_latency_seconds_count 4\n");
  // JSON: unlabeled counters and gauges only, in order, NaN as null.
  r.AddGauge("fmps_val", "Not yet known.")->Set(std::nan(""));
  EXPECT_EQ(r.JsonFields(),
            "\"fmps_rows_total\":42,\"fmps_loss\":0.25,\"fmps_age_seconds\":3.5,\"fmps_val\":null");
}

TEST(MetricsRegistryTest, CountersFromManyThreadsAddUp) {
  MetricsRegistry r;
  Counter* c = r.AddCounter("fmps_n_total", "N.");
  Histogram* h = r.AddHistogram("fmps_h", "H.", {1});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100000; ++i) {
        c->Add();
        h->Observe(2);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c->value(), 400000u);
  EXPECT_EQ(h->count(), 400000u);
  EXPECT_EQ(h->sum(), 800000.0);
}

TEST(MetricsEndpointTest, HealthzIsReadyOnlyAfterJoinAndMetricsServesTheText) {
  MetricsRegistry r;
  r.AddCounter("fmps_rows_total", "Rows.")->Add(5);
  MetricsEndpoint endpoint(&r, MetricsEndpointOptions{});
  ASSERT_TRUE(endpoint.Start().ok());
  ASSERT_GT(endpoint.port(), 0);

  HttpAnswer before = HttpGet(endpoint.port(), "/healthz");
  EXPECT_EQ(before.status, 503) << before.raw;
  EXPECT_EQ(before.body, "not ready: joining\n");

  r.SetReady(true, "worker joined");
  HttpAnswer after = HttpGet(endpoint.port(), "/healthz");
  EXPECT_EQ(after.status, 200) << after.raw;
  EXPECT_EQ(after.body, "ok worker joined\n");

  HttpAnswer metrics = HttpGet(endpoint.port(), "/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.raw.find("Content-Type: text/plain; version=0.0.4"), std::string::npos)
      << metrics.raw;
  EXPECT_EQ(metrics.body, r.Text());

  EXPECT_EQ(HttpGet(endpoint.port(), "/nothing").status, 404);
  endpoint.Stop();
  EXPECT_EQ(HttpGet(endpoint.port(), "/healthz").status, -1);  // nobody listens any more
}

TEST(MetricsEndpointTest, PortInUseIsAnErrorNamingTheAddress) {
  MetricsRegistry r;
  MetricsEndpoint first(&r, MetricsEndpointOptions{});
  ASSERT_TRUE(first.Start().ok());
  MetricsEndpointOptions o;
  o.port = first.port();
  // SO_REUSEADDR does not let two sockets listen on one port.
  MetricsEndpoint second(&r, o);
  Status st = second.Start();
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("127.0.0.1:" + std::to_string(first.port())), std::string::npos)
      << st.message();
}

}  // namespace
}  // namespace fmps
