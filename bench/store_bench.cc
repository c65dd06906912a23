// store_bench: memory and speed of one server's Store. Inserts N keys (default 2,000,000) whose
// occurrence counts follow a Zipf-like law through Push in batches, pulls them all back, pushes
// again with embedding gradients, and prints one figure per line and a final JSON line.
// The overhead (bytes held beyond the model's floats z, n, w, V and accumulators, per key) is also
// sampled after every insertion batch once half of the keys (and at least 1000) are held:
// tables grow in steps, so the overhead saw-tooths with the load factor, and its max over the
// sizes N/2 .. N (several growth steps of x1.08) is the figure to bound at size N.
// Usage: store_bench [num_keys] [batch_size] [policy: difacto | linear | fixed8] [trace]
// (trace: one line per sample: keys, overhead, bytes, embedding floats).
// finite_check_share_of_push_update: the CPU time of the server's NaN/inf check of the pushed
// gradients (AllFinite) over that of Store::Push applying them.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "ps/base/env.h"
#include "ps/base/keys.h"
#include "ps/kv_messages.h"
#include "ps/store/store.h"

namespace {

uint64_t ParseOr(int argc, char** argv, int i, uint64_t fallback) {
  if (argc <= i) return fallback;
  const uint64_t value = std::strtoull(argv[i], nullptr, 10);
  return value > 0 ? value : fallback;
}

// CPU time of this thread: on a shared machine the wall clock also counts time spent waiting for
// a core, so rates are given per wall second and per CPU second.
double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t num_keys = ParseOr(argc, argv, 1, 2'000'000);
  const uint64_t batch = ParseOr(argc, argv, 2, 10'000);
  const std::string policy = argc > 3 ? argv[3] : "difacto";
  const bool trace = argc > 4 && std::string(argv[4]) == "trace";
  fmps::StoreOptions options;  // DiFacto(k=8, mid=4, thresholds 1/10/100), l1 = 0.5
  options.ftrl = {/*alpha=*/0.05f, /*beta=*/1.0f, /*l1=*/0.5f, /*l2=*/1.0f};
  options.v_lr = 0.05f;
  options.v_init_scale = 0.01f;
  options.v_l2 = 1e-4f;
  options.policy = fmps::RankPolicy::DiFacto(8, 4, 1, 10, 100);
  options.seed = 1;
  if (policy == "linear") {
    options.policy = fmps::RankPolicy{};  // no embeddings: FTRL state only
  } else if (policy == "fixed8") {
    options.policy = fmps::RankPolicy::Fixed(8, 1);  // every key with w != 0: width 8
  } else if (policy != "difacto") {
    std::fprintf(stderr, "unknown policy %s (difacto, linear, fixed8)\n", policy.c_str());
    return 2;
  }
  fmps::Store store(options);
  // Bytes beyond the model's floats (z, n, w, and V plus its accumulator per dimension) per key.
  auto overhead_of = [](const fmps::StoreStats& s) {
    const double keys = static_cast<double>(s.keys);
    return s.bytes / keys - 4.0 * (3.0 * keys + 2.0 * s.embedding_floats) / keys;
  };
  double sampled_max = 0, sampled_sum = 0;
  uint64_t samples = 0;

  // Feature of rank r occurs about 1e6 / r^1.2 times (at least once): a long tail of rare
  // features and a few hundred that reach the head level, like Criteo's counts.
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<float> uniform(-1.5f, 1.5f);  // |g| <= l1 for a third: w stays 0
  std::vector<uint64_t> keys(num_keys);
  std::vector<uint32_t> counts(num_keys);
  for (uint64_t i = 0; i < num_keys; ++i) {
    keys[i] = fmps::Mix64(i * 0x9e3779b97f4a7c15ULL + 7);
    counts[i] =
        static_cast<uint32_t>(std::max(1.0, std::floor(1e6 / std::pow(double(i + 1), 1.2))));
  }
  std::shuffle(keys.begin(), keys.end(), rng);  // counts stay by rank; keys arrive in random order

  // Pass 1: insertion (the worker has seen no embedding yet: widths 0).
  std::vector<float> grads;
  std::vector<uint16_t> zero_widths(batch, 0);
  double start = fmps::NowSeconds();
  double cpu_start = ThreadCpuSeconds();
  double sample_cpu = 0;  // CPU time of the Stats() samples, not counted as insertion time
  for (uint64_t begin = 0; begin < num_keys; begin += batch) {
    const uint64_t n = std::min(batch, num_keys - begin);
    grads.resize(n);
    for (auto& g : grads) g = uniform(rng);
    const fmps::Status status =
        store.Push(std::span(keys).subspan(begin, n), grads, std::span(zero_widths).first(n),
                   std::span(counts).subspan(begin, n));
    if (!status.ok()) {
      std::fprintf(stderr, "push failed: %s\n", status.ToString().c_str());
      return 1;
    }
    const double sample_start = ThreadCpuSeconds();
    const fmps::StoreStats sample = store.Stats();  // cheap: counters and per-arena sizes
    if (sample.keys >= std::max<uint64_t>(1000, num_keys / 2)) {
      const double overhead = overhead_of(sample);
      sampled_max = std::max(sampled_max, overhead);
      if (trace) {
        std::printf("sample keys %llu overhead %.2f bytes %llu embeddings %llu floats %llu\n",
                    static_cast<unsigned long long>(sample.keys), overhead,
                    static_cast<unsigned long long>(sample.bytes),
                    static_cast<unsigned long long>(sample.embeddings),
                    static_cast<unsigned long long>(sample.embedding_floats));
      }
      sampled_sum += overhead;
      ++samples;
    }
    sample_cpu += ThreadCpuSeconds() - sample_start;
  }
  const double insert_seconds = fmps::NowSeconds() - start;
  const double insert_cpu = ThreadCpuSeconds() - cpu_start - sample_cpu;

  // Pull everything back, batch by batch, keeping the widths for pass 2.
  std::vector<float> values;
  std::vector<uint16_t> widths;
  std::vector<uint16_t> all_widths;
  all_widths.reserve(num_keys);
  start = fmps::NowSeconds();
  cpu_start = ThreadCpuSeconds();
  for (uint64_t begin = 0; begin < num_keys; begin += batch) {
    const uint64_t n = std::min(batch, num_keys - begin);
    values.clear();
    widths.clear();
    store.Pull(std::span(keys).subspan(begin, n), &values, &widths);
    all_widths.insert(all_widths.end(), widths.begin(), widths.end());
  }
  const double pull_seconds = fmps::NowSeconds() - start;
  const double pull_cpu = ThreadCpuSeconds() - cpu_start;
  const fmps::StoreStats stats = store.Stats();  // memory after one push per key

  // Pass 2: the same keys again with the widths the pull returned: gradients for w and every
  // embedding dimension, one more occurrence each (rows may grow a level).
  std::normal_distribution<float> normal(0.0f, 0.1f);
  std::vector<uint32_t> ones(batch, 1);
  uint64_t update_keys = 0;
  double update_cpu = 0;  // only the Push calls: the gradients are drawn between them
  double finite_cpu = 0;  // the server's check of a push's gradients (AllFinite) before Push
  bool all_finite = true;
  start = fmps::NowSeconds();
  for (uint64_t begin = 0; begin < num_keys; begin += batch) {
    const uint64_t n = std::min(batch, num_keys - begin);
    grads.clear();
    for (uint64_t i = begin; i < begin + n; ++i) {
      grads.push_back(normal(rng));
      for (uint16_t d = 0; d < all_widths[i]; ++d) grads.push_back(normal(rng));
    }
    const double check_start = ThreadCpuSeconds();
    all_finite = fmps::AllFinite(grads) && all_finite;
    finite_cpu += ThreadCpuSeconds() - check_start;
    const double push_start = ThreadCpuSeconds();
    const fmps::Status status =
        store.Push(std::span(keys).subspan(begin, n), grads,
                   std::span(all_widths).subspan(begin, n), std::span(ones).first(n));
    update_cpu += ThreadCpuSeconds() - push_start;
    if (!status.ok()) {
      std::fprintf(stderr, "push failed: %s\n", status.ToString().c_str());
      return 1;
    }
    update_keys += n;
  }
  const double update_seconds = fmps::NowSeconds() - start;

  const double keys_held = static_cast<double>(stats.keys);
  const double bytes_per_key = stats.bytes / keys_held;
  // Floats the model needs per key: z, n, w, and V plus its Adagrad accumulator per dimension.
  const double floats_per_key = (3.0 * stats.keys + 2.0 * stats.embedding_floats) / keys_held;
  const double overhead = bytes_per_key - 4.0 * floats_per_key;
  const double insert_rate = num_keys / insert_seconds;
  const double pull_rate = num_keys / pull_seconds;
  const double update_rate = update_keys / update_seconds;
  const double rss_mb = fmps::PeakRssBytes() / 1048576.0;
  std::printf("keys %llu\n", static_cast<unsigned long long>(stats.keys));
  std::printf("nonzero_w %llu\n", static_cast<unsigned long long>(stats.nonzero_w));
  std::printf("embeddings %llu\n", static_cast<unsigned long long>(stats.embeddings));
  std::printf("embedding_floats %llu\n", static_cast<unsigned long long>(stats.embedding_floats));
  std::printf("bytes %llu\n", static_cast<unsigned long long>(stats.bytes));
  std::printf("bytes_per_key %.2f\n", bytes_per_key);
  std::printf("floats_per_key %.3f\n", floats_per_key);
  std::printf("overhead_bytes_per_key %.2f (target <= 16)\n", overhead);
  std::printf("overhead_sampled_max %.2f mean %.2f over %llu samples\n", sampled_max,
              samples > 0 ? sampled_sum / samples : 0.0, static_cast<unsigned long long>(samples));
  std::printf("push_insert_keys_per_s %.0f\n", insert_rate);
  std::printf("pull_keys_per_s %.0f\n", pull_rate);
  std::printf("push_update_keys_per_s %.0f\n", update_rate);
  std::printf("push_insert_keys_per_cpu_s %.0f\n", num_keys / insert_cpu);
  std::printf("pull_keys_per_cpu_s %.0f\n", num_keys / pull_cpu);
  std::printf("push_update_keys_per_cpu_s %.0f\n", update_keys / update_cpu);
  std::printf("finite_check_share_of_push_update %.4f (all finite: %d)\n", finite_cpu / update_cpu,
              all_finite ? 1 : 0);
  std::printf("peak_rss_mb %.1f\n", rss_mb);
  std::printf(
      "{\"policy\":\"%s\",\"keys\":%llu,\"embeddings\":%llu,\"bytes\":%llu,\"bytes_per_key\":%.2f,"
      "\"floats_per_key\":%.3f,\"overhead_bytes_per_key\":%.2f,\"overhead_max\":%.2f,\"overhead_"
      "mean\":%.2f,\"push_insert_keys_per_s\":%.0f,"
      "\"pull_keys_per_s\":%.0f,\"push_update_keys_per_s\":%.0f,\"push_insert_keys_per_cpu_s\":%."
      "0f,"
      "\"pull_keys_per_cpu_s\":%.0f,\"push_update_keys_per_cpu_s\":%.0f,\"peak_rss_mb\":%.1f}\n",
      policy.c_str(), static_cast<unsigned long long>(stats.keys),
      static_cast<unsigned long long>(stats.embeddings),
      static_cast<unsigned long long>(stats.bytes), bytes_per_key, floats_per_key, overhead,
      sampled_max, samples > 0 ? sampled_sum / samples : 0.0, insert_rate, pull_rate, update_rate,
      num_keys / insert_cpu, num_keys / pull_cpu, update_keys / update_cpu, rss_mb);
  return 0;
}
