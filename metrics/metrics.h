// MetricsRegistry: the figures a node exposes on /metrics (Prometheus text format 0.0.4) and writes
// to --metrics_out. Counters, gauges and histograms are registered once by name (and labels) and
// then updated lock-free: a counter is one relaxed atomic add, so hot paths (a worker's minibatch
// loop, a server's push) pay nothing measurable; the text is built only when someone scrapes.
//
// Threads: registration (Add*) and Text() take the registry's mutex; updates of a registered
// metric are atomics and safe from any thread. Registered metrics live as long as the registry.
#ifndef FMPS_METRICS_METRICS_H_
#define FMPS_METRICS_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace fmps {

// Label pairs of one series, e.g. {{"role", "worker"}}; printed in the given order.
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// A monotonic count (name ends in _total).
class Counter {
 public:
  void Add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  // For a count kept elsewhere (a store's evictions): mirrors its latest value.
  void Set(uint64_t v) { value_.store(v, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down.
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double d) { value_.fetch_add(d, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Observations counted in buckets with the given upper bounds (ascending; +Inf is implicit).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  // Per bucket (not cumulative), bounds().size() + 1 entries; then the count and sum.
  std::vector<uint64_t> BucketCounts() const;
  uint64_t count() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<double> sum_{0};
};

// Bucket bounds: `n` bounds from `start`, each `factor` times the one before.
std::vector<double> ExponentialBuckets(double start, double factor, int n);

class MetricsRegistry {
 public:
  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // The metric of this name and labels, created on first call (help is taken from the first).
  // A name keeps one type: asking for another type of a taken name is a programming error (CHECK).
  Counter* AddCounter(const std::string& name, const std::string& help,
                      const MetricLabels& labels = {});
  Gauge* AddGauge(const std::string& name, const std::string& help,
                  const MetricLabels& labels = {});
  Histogram* AddHistogram(const std::string& name, const std::string& help,
                          const std::vector<double>& bounds, const MetricLabels& labels = {});
  // A gauge computed at each scrape (e.g. the age of the last checkpoint). `fn` runs on the
  // scraping thread: it must be thread-safe and quick.
  void AddGaugeFunction(const std::string& name, const std::string& help,
                        std::function<double()> fn, const MetricLabels& labels = {});

  // Prometheus text exposition format 0.0.4 of every metric, in registration order.
  std::string Text() const;
  // Every unlabeled counter and gauge as "name": value pairs of a JSON object (no braces), in
  // registration order: the same names as Text(), for --metrics_out lines.
  std::string JsonFields() const;

  // Readiness for /healthz: false until the node has joined its job.
  void SetReady(bool ready, const std::string& what) {
    std::lock_guard<std::mutex> lock(mu_);
    ready_ = ready;
    ready_text_ = what;
  }
  bool ready() const {
    std::lock_guard<std::mutex> lock(mu_);
    return ready_;
  }
  std::string ready_text() const {
    std::lock_guard<std::mutex> lock(mu_);
    return ready_text_;
  }

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Series {
    MetricLabels labels;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
    std::function<double()> fn;
  };
  struct Family {
    std::string name, help;
    Type type;
    std::vector<std::unique_ptr<Series>> series;
  };
  Series* FindOrAdd(const std::string& name, const std::string& help, Type type,
                    const MetricLabels& labels, bool* created);

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Family>> families_;  // GUARDED_BY(mu_), in registration order
  std::map<std::string, Family*> by_name_;         // GUARDED_BY(mu_)
  bool ready_ = false;                             // GUARDED_BY(mu_)
  std::string ready_text_ = "joining";             // GUARDED_BY(mu_)
};

// A number as Prometheus and JSON both read it: integers without a fraction, others with 9
// significant digits; NaN and infinities as Prometheus spells them (callers keep them out of JSON).
std::string FormatMetricValue(double v);

}  // namespace fmps

#endif  // FMPS_METRICS_METRICS_H_
