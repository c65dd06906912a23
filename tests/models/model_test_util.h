// Helpers for the model tests: random localized batches and parameters, a reference loss in
// double precision, and a central finite-difference gradient checker.
#ifndef FMPS_TESTS_MODELS_MODEL_TEST_UTIL_H_
#define FMPS_TESTS_MODELS_MODEL_TEST_UTIL_H_

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "models/model.h"
#include "models/reference.h"

namespace fmps::testing {

struct RandomBatch {
  std::vector<float> labels;
  std::vector<uint32_t> offsets{0};
  std::vector<uint32_t> index;
  std::vector<float> values;
  std::vector<uint8_t> fields;
  size_t num_keys = 0;

  BatchView View() const {
    BatchView b;
    b.rows = labels.size();
    b.labels = labels.data();
    b.offsets = offsets.data();
    b.index = index.data();
    b.values = values.data();
    b.fields = fields.data();
    b.num_keys = num_keys;
    return b;
  }
};

struct BatchShape {
  int num_fields = 5;
  int keys_per_field = 3;   // key i belongs to field i % num_fields
  double present = 0.75;    // probability that a field is present in a row
  double second = 0.3;      // probability that a present field holds a second feature
  bool real_values = true;  // values in [0.3, 1.5] instead of 1
};

inline RandomBatch MakeBatch(std::mt19937_64& rng, size_t rows, const BatchShape& shape) {
  RandomBatch b;
  b.num_keys = size_t(shape.num_fields) * shape.keys_per_field;
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::uniform_int_distribution<int> pick(0, shape.keys_per_field - 1);
  for (size_t r = 0; r < rows; ++r) {
    b.labels.push_back(unit(rng) < 0.5 ? 1.f : 0.f);
    for (int f = 0; f < shape.num_fields; ++f) {
      if (unit(rng) >= shape.present) continue;
      const int count = unit(rng) < shape.second ? 2 : 1;
      for (int c = 0; c < count; ++c) {
        b.index.push_back(uint32_t(f + shape.num_fields * pick(rng)));
        b.values.push_back(shape.real_values ? float(0.3 + 1.2 * unit(rng)) : 1.f);
        b.fields.push_back(uint8_t(f));
      }
    }
    b.offsets.push_back(uint32_t(b.index.size()));
  }
  return b;
}

struct Params {
  std::vector<float> w, V, dense;
  std::vector<uint16_t> widths;  // empty = full width
  ParamView View() const {
    ParamView p;
    p.w = w.data();
    p.V = V.data();
    p.widths = widths.empty() ? nullptr : widths.data();
    p.dense = dense.data();
    return p;
  }
};

// Random parameters; V beyond each key's width is zero, as the servers send it.
inline Params MakeParams(std::mt19937_64& rng, const Model& model, size_t num_keys,
                         std::vector<uint16_t> widths = {}, float scale = 0.5f) {
  Params p;
  std::normal_distribution<float> normal(0.f, scale);
  const size_t width = model.EmbeddingWidth();
  p.w.resize(num_keys);
  for (float& x : p.w) x = normal(rng);
  p.V.assign(num_keys * width, 0.f);
  for (size_t i = 0; i < num_keys; ++i) {
    const size_t real = widths.empty() ? width : widths[i];
    for (size_t d = 0; d < real; ++d) p.V[i * width + d] = normal(rng);
  }
  p.widths = std::move(widths);
  p.dense.resize(model.DenseSize());
  model.InitDense(p.dense, 7);
  for (float& x : p.dense) x += normal(rng);
  return p;
}

// Summed logloss of the reference logits in double precision.
inline double ReferenceLoss(const ModelOptions& o, const RandomBatch& b, const Params& p,
                            int level_cap = 0) {
  const BatchView view = b.View();
  const ParamView pv = p.View();
  const std::unique_ptr<Model> model = CreateModel(o).value();
  double total = 0;
  for (size_t r = 0; r < view.rows; ++r) {
    const double z = model->ReferenceLogit(view, pv, r, level_cap);
    const double loss = std::log1p(std::exp(-std::fabs(z))) + std::max(z, 0.0) - b.labels[r] * z;
    total += loss;
  }
  return total;
}

// Central difference of objective() with respect to *param, using the float steps really taken.
inline double FiniteDifference(float* param, const std::function<double()>& objective,
                               float step = 1e-3f) {
  const float original = *param;
  *param = original + step;
  const double up_delta = double(*param) - original;
  const double up = objective();
  *param = original - step;
  const double down_delta = double(original) - *param;
  const double down = objective();
  *param = original;
  return (up - down) / (up_delta + down_delta);
}

inline void ExpectGradNear(double analytic, double numeric, const std::string& what) {
  EXPECT_NEAR(analytic, numeric, 1e-3 * std::fabs(numeric) + 2e-4) << what;
}

}  // namespace fmps::testing

#endif  // FMPS_TESTS_MODELS_MODEL_TEST_UTIL_H_
