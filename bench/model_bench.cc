// model_bench: speed of each model's Compute with gradients on random localized batches shaped
// like Criteo (1000 rows, 39 fields, one feature per field, k = 8, DPLR rho = 2, RaFM ranks
// {4, 8, 16}). Prints rows/s per model (forward only and forward + backward) and a JSON line.
// Usage: model_bench [seconds_per_model (default 0.5)] [only_this_model]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "models/model.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Batch {
  std::vector<float> labels;
  std::vector<uint32_t> offsets{0}, index;
  std::vector<float> values;
  std::vector<uint8_t> fields;
  size_t num_keys = 0;
};

Batch MakeBatch(size_t rows, int fields, int values_per_field, std::mt19937_64& rng) {
  Batch b;
  std::uniform_int_distribution<int> value(0, values_per_field - 1);
  for (size_t r = 0; r < rows; ++r) {
    b.labels.push_back(float(rng() % 4 == 0));
    for (int f = 0; f < fields; ++f) {
      b.index.push_back(uint32_t(f * values_per_field + value(rng)));
      b.values.push_back(1.f);
      b.fields.push_back(uint8_t(f));
    }
    b.offsets.push_back(uint32_t(b.index.size()));
  }
  b.num_keys = size_t(fields) * values_per_field;
  return b;
}

// Rows per second of Compute over `seconds` of repeated calls.
double Measure(const fmps::Model& model, const fmps::BatchView& view, const fmps::ParamView& params,
               fmps::GradView* grads, double seconds) {
  std::vector<float> logits(view.rows);
  size_t rows = 0;
  double sink = 0;
  const auto start = Clock::now();
  double elapsed = 0;
  do {
    sink += model.Compute(view, params, logits, grads);
    rows += view.rows;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < seconds);
  if (sink < 0) std::printf("impossible\n");  // keeps the calls from being optimised away
  return rows / elapsed;
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 0.5;
  const int fields = 39;
  std::mt19937_64 rng(1);
  const Batch batch = MakeBatch(1000, fields, 100, rng);
  fmps::BatchView view;
  view.rows = batch.labels.size();
  view.labels = batch.labels.data();
  view.offsets = batch.offsets.data();
  view.index = batch.index.data();
  view.values = batch.values.data();
  view.fields = batch.fields.data();
  view.num_keys = batch.num_keys;

  std::string json = "{";
  for (const std::string& name : fmps::ModelNames()) {
    if (argc > 2 && name != argv[2]) continue;
    fmps::ModelOptions o;
    o.name = name;
    o.k = 8;
    o.num_fields = fields;
    o.rank = 2;
    o.keep = 0.2;
    o.rafm_ranks = {4, 8, 16};
    auto created = fmps::CreateModel(o);
    if (!created.ok()) {
      std::fprintf(stderr, "%s\n", created.status().ToString().c_str());
      return 1;
    }
    const fmps::Model& model = *created.value();
    const size_t width = model.EmbeddingWidth();
    std::normal_distribution<float> normal(0.f, 0.05f);
    std::vector<float> w(batch.num_keys), V(batch.num_keys * width), dense(model.DenseSize());
    for (float& x : w) x = normal(rng);
    for (float& x : V) x = normal(rng);
    model.InitDense(dense, 1);
    model.AfterDenseUpdate(dense, 1.0);  // as at the end of training (pruned FwFM: its sparsity)
    std::vector<uint16_t> widths(batch.num_keys, uint16_t(width));
    const std::vector<fmps::RankLevelSpec> levels = model.RankLevels();
    if (!levels.empty()) {  // a realistic mix of levels: half the first, a third the second, rest 3
      for (size_t i = 0; i < widths.size(); ++i) {
        const size_t level = i % 6 < 3 ? 0 : i % 6 < 5 ? 1 : 2;
        widths[i] = uint16_t(levels[std::min(level, levels.size() - 1)].width);
      }
      for (size_t i = 0; i < widths.size(); ++i)
        for (size_t d = widths[i]; d < width; ++d) V[i * width + d] = 0.f;
    }
    fmps::ParamView params{w.data(), V.data(), widths.data(), dense.data()};
    std::vector<float> gw(w.size()), gV(V.size()), gd(dense.size());
    fmps::GradView grads{gw.data(), gV.data(), gd.data()};
    const double forward = Measure(model, view, params, nullptr, seconds);
    const double train = Measure(model, view, params, &grads, seconds);
    std::printf("%-12s forward %10.0f rows/s   forward+backward %10.0f rows/s\n", name.c_str(),
                forward, train);
    json += std::string(json.size() > 1 ? "," : "") + "\"" + name +
            "_rows_per_s\":" + std::to_string(long(train)) + ",\"" + name +
            "_forward_rows_per_s\":" + std::to_string(long(forward));
  }
  json += ",\"rows\":1000,\"fields\":39,\"k\":8}";
  std::printf("%s\n", json.c_str());
  return 0;
}
