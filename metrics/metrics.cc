#include "metrics/metrics.h"

#include <glog/logging.h>

#include <cmath>
#include <cstdio>

namespace fmps {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t b = 0; b <= bounds_.size(); ++b) counts_[b].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double v) {
  size_t b = 0;
  while (b < bounds_.size() && v > bounds_[b]) ++b;
  counts_[b].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::BucketCounts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  for (size_t b = 0; b < out.size(); ++b) out[b] = counts_[b].load(std::memory_order_relaxed);
  return out;
}

uint64_t Histogram::count() const {
  uint64_t n = 0;
  for (uint64_t c : BucketCounts()) n += c;
  return n;
}

std::vector<double> ExponentialBuckets(double start, double factor, int n) {
  std::vector<double> out;
  for (int i = 0; i < n; ++i, start *= factor) out.push_back(start);
  return out;
}

std::string FormatMetricValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[40];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof(buf), "%.0f", v);
  } else {
    std::snprintf(buf, sizeof(buf), "%.9g", v);
  }
  return buf;
}

namespace {

// Label values escape backslash, double quote and newline (the text format's rules).
std::string LabelText(const MetricLabels& labels, const std::string& extra_name = "",
                      const std::string& extra_value = "") {
  MetricLabels all = labels;
  if (!extra_name.empty()) all.emplace_back(extra_name, extra_value);
  if (all.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < all.size(); ++i) {
    if (i > 0) out += ',';
    out += all[i].first + "=\"";
    for (char c : all[i].second) {
      if (c == '\\' || c == '"') {
        out += '\\';
        out += c;
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out += c;
      }
    }
    out += '"';
  }
  return out + "}";
}

}  // namespace

MetricsRegistry::Series* MetricsRegistry::FindOrAdd(const std::string& name,
                                                    const std::string& help, Type type,
                                                    const MetricLabels& labels, bool* created) {
  Family*& family = by_name_[name];
  if (family == nullptr) {
    families_.push_back(std::make_unique<Family>(Family{name, help, type, {}}));
    family = families_.back().get();
  }
  CHECK(family->type == type) << "metric " << name << " registered with two types";
  for (auto& s : family->series) {
    if (s->labels == labels) {
      *created = false;
      return s.get();
    }
  }
  family->series.push_back(std::make_unique<Series>());
  family->series.back()->labels = labels;
  *created = true;
  return family->series.back().get();
}

Counter* MetricsRegistry::AddCounter(const std::string& name, const std::string& help,
                                     const MetricLabels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  bool created = false;
  Series* s = FindOrAdd(name, help, Type::kCounter, labels, &created);
  if (created) s->counter = std::make_unique<Counter>();
  return s->counter.get();
}

Gauge* MetricsRegistry::AddGauge(const std::string& name, const std::string& help,
                                 const MetricLabels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  bool created = false;
  Series* s = FindOrAdd(name, help, Type::kGauge, labels, &created);
  if (created) s->gauge = std::make_unique<Gauge>();
  CHECK(s->gauge != nullptr) << "gauge " << name << " is a function gauge";
  return s->gauge.get();
}

Histogram* MetricsRegistry::AddHistogram(const std::string& name, const std::string& help,
                                         const std::vector<double>& bounds,
                                         const MetricLabels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  bool created = false;
  Series* s = FindOrAdd(name, help, Type::kHistogram, labels, &created);
  if (created) s->histogram = std::make_unique<Histogram>(bounds);
  return s->histogram.get();
}

void MetricsRegistry::AddGaugeFunction(const std::string& name, const std::string& help,
                                       std::function<double()> fn, const MetricLabels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  bool created = false;
  Series* s = FindOrAdd(name, help, Type::kGauge, labels, &created);
  s->gauge.reset();
  s->fn = std::move(fn);
}

std::string MetricsRegistry::Text() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const auto& f : families_) {
    const char* type = f->type == Type::kCounter ? "counter"
                       : f->type == Type::kGauge ? "gauge"
                                                 : "histogram";
    out += "# HELP " + f->name + " " + f->help + "\n# TYPE " + f->name + " " + type + "\n";
    for (const auto& s : f->series) {
      if (s->counter) {
        out += f->name + LabelText(s->labels) + " " + std::to_string(s->counter->value()) + "\n";
      } else if (s->gauge || s->fn) {
        const double v = s->gauge ? s->gauge->value() : s->fn();
        out += f->name + LabelText(s->labels) + " " + FormatMetricValue(v) + "\n";
      } else if (s->histogram) {
        const Histogram& h = *s->histogram;
        const std::vector<uint64_t> counts = h.BucketCounts();
        uint64_t cumulative = 0;
        for (size_t b = 0; b < counts.size(); ++b) {
          cumulative += counts[b];
          const std::string le = b < h.bounds().size() ? FormatMetricValue(h.bounds()[b]) : "+Inf";
          out += f->name + "_bucket" + LabelText(s->labels, "le", le) + " " +
                 std::to_string(cumulative) + "\n";
        }
        out += f->name + "_sum" + LabelText(s->labels) + " " + FormatMetricValue(h.sum()) + "\n";
        out += f->name + "_count" + LabelText(s->labels) + " " + std::to_string(cumulative) + "\n";
      }
    }
  }
  return out;
}

std::string MetricsRegistry::JsonFields() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const auto& f : families_) {
    if (f->type == Type::kHistogram) continue;
    for (const auto& s : f->series) {
      if (!s->labels.empty()) continue;
      std::string value;
      if (s->counter) {
        value = std::to_string(s->counter->value());
      } else {
        const double v = s->gauge ? s->gauge->value() : s->fn();
        value = std::isfinite(v) ? FormatMetricValue(v) : "null";
      }
      if (!out.empty()) out += ',';
      out += "\"" + f->name + "\":" + value;
    }
  }
  return out;
}

}  // namespace fmps
