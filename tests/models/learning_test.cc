// Learning: on data planted from an FwFM with strong, sign-varying field-pair weights, FwFM
// trained with its own Compute gradients must beat FM on held-out logloss. With R frozen at its
// start (R = 1) FwFM is FM, so the margin exists only if R is learned.
#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "models/model.h"
#include "tests/models/model_test_util.h"

namespace fmps {
namespace {

using testing::RandomBatch;

constexpr int kFields = 6;
constexpr int kValues = 8;  // keys per field; key = f * kValues + value
constexpr int kRank = 3;

RandomBatch PlantedData(std::mt19937_64& rng, size_t rows, const std::vector<float>& w,
                        const std::vector<float>& V, const std::vector<float>& R) {
  RandomBatch b;
  b.num_keys = kFields * kValues;
  std::uniform_int_distribution<int> value(0, kValues - 1);
  std::uniform_real_distribution<double> unit(0, 1);
  for (size_t r = 0; r < rows; ++r) {
    std::vector<int> keys;
    for (int f = 0; f < kFields; ++f) {
      keys.push_back(f * kValues + value(rng));
      b.index.push_back(uint32_t(keys.back()));
      b.values.push_back(1.f);
      b.fields.push_back(uint8_t(f));
    }
    b.offsets.push_back(uint32_t(b.index.size()));
    double z = -0.3;
    for (int f = 0; f < kFields; ++f) {
      z += w[keys[f]];
      for (int g = f + 1; g < kFields; ++g) {
        double dot = 0;
        for (int d = 0; d < kRank; ++d) dot += V[keys[f] * kRank + d] * V[keys[g] * kRank + d];
        z += R[f * kFields + g] * dot;
      }
    }
    b.labels.push_back(unit(rng) < 1 / (1 + std::exp(-z)) ? 1.f : 0.f);
  }
  return b;
}

RandomBatch Slice(const RandomBatch& all, size_t begin, size_t end) {
  RandomBatch b;
  b.num_keys = all.num_keys;
  for (size_t r = begin; r < end; ++r) {
    b.labels.push_back(all.labels[r]);
    for (uint32_t e = all.offsets[r]; e < all.offsets[r + 1]; ++e) {
      b.index.push_back(all.index[e]);
      b.values.push_back(all.values[e]);
      b.fields.push_back(all.fields[e]);
    }
    b.offsets.push_back(uint32_t(b.index.size()));
  }
  return b;
}

// Plain Adagrad on every parameter; returns the mean held-out logloss.
double TrainAndEvaluate(const char* name, const RandomBatch& train, const RandomBatch& test) {
  ModelOptions o;
  o.name = name;
  o.k = kRank;
  o.num_fields = kFields;
  auto model = std::move(CreateModel(o)).value();
  std::mt19937_64 rng(99);
  std::normal_distribution<float> init(0.f, 0.1f);
  std::vector<float> w(train.num_keys, 0.f), V(train.num_keys * kRank), dense(model->DenseSize());
  for (float& x : V) x = init(rng);
  model->InitDense(dense, 5);
  std::vector<float*> params = {w.data(), V.data(), dense.data()};
  std::vector<size_t> sizes = {w.size(), V.size(), dense.size()};
  std::vector<std::vector<float>> accum = {std::vector<float>(w.size(), 1e-6f),
                                           std::vector<float>(V.size(), 1e-6f),
                                           std::vector<float>(dense.size(), 1e-6f)};
  const size_t batch_rows = 32;
  const float rate = 0.1f;
  for (int epoch = 0; epoch < 12; ++epoch) {
    for (size_t begin = 0; begin < train.labels.size(); begin += batch_rows) {
      const RandomBatch mb = Slice(train, begin, std::min(train.labels.size(), begin + batch_rows));
      std::vector<std::vector<float>> grads = {std::vector<float>(w.size()),
                                               std::vector<float>(V.size()),
                                               std::vector<float>(dense.size())};
      GradView gv{grads[0].data(), grads[1].data(), grads[2].data()};
      ParamView pv{w.data(), V.data(), nullptr, dense.data()};
      std::vector<float> logits(mb.labels.size());
      model->Compute(mb.View(), pv, logits, &gv);
      for (size_t t = 0; t < 3; ++t) {
        for (size_t j = 0; j < sizes[t]; ++j) {
          const float g = grads[t][j] / float(mb.labels.size());
          accum[t][j] += g * g;
          params[t][j] -= rate * g / std::sqrt(accum[t][j]);
        }
      }
    }
  }
  ParamView pv{w.data(), V.data(), nullptr, dense.data()};
  std::vector<float> logits(test.labels.size());
  return model->Compute(test.View(), pv, logits, nullptr) / double(test.labels.size());
}

TEST(LearningTest, FwfmLearnsPlantedFieldWeightsThatFmCannot) {
  std::mt19937_64 rng(2024);
  std::normal_distribution<float> normal(0.f, 1.f);
  std::vector<float> w(kFields * kValues), V(kFields * kValues * kRank), R(kFields * kFields, 0.f);
  for (float& x : w) x = 0.3f * normal(rng);
  for (float& x : V) x = normal(rng);
  std::uniform_int_distribution<int> coin(0, 2);
  for (int f = 0; f < kFields; ++f) {
    for (int g = f + 1; g < kFields; ++g)
      R[f * kFields + g] = coin(rng) == 0 ? 0.f : (coin(rng) ? 1.2f : -1.2f);
  }
  const RandomBatch all = PlantedData(rng, 12000, w, V, R);
  const RandomBatch train = Slice(all, 0, 8000), test = Slice(all, 8000, 12000);
  const double fm = TrainAndEvaluate("fm", train, test);
  const double fwfm = TrainAndEvaluate("fwfm", train, test);
  RecordProperty("fm_logloss", std::to_string(fm));
  RecordProperty("fwfm_logloss", std::to_string(fwfm));
  EXPECT_LT(fwfm, fm - 0.03) << "fm " << fm << " fwfm " << fwfm;
}

}  // namespace
}  // namespace fmps
