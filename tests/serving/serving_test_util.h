// Helpers of the serving tests: a random snapshot of any model (keys of a small vocabulary per
// field, random parameters, some keys absent, some embeddings narrower than the model's width)
// and the reference score of a context + candidate row through Model::Compute.
#ifndef FMPS_TESTS_SERVING_SERVING_TEST_UTIL_H_
#define FMPS_TESTS_SERVING_SERVING_TEST_UTIL_H_

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/minibatch.h"
#include "gtest/gtest.h"
#include "models/job_config.h"
#include "models/metrics.h"
#include "ps/base/keys.h"
#include "serving/model_snapshot.h"

namespace fmps::testing {

constexpr int kVocabulary = 20;  // tokens per field: "t0".."t19"; t15.. are never in the model

inline uint64_t TokenKey(int field, int token, uint64_t seed = 0) {
  return MakeKey(field, HashToken("t" + std::to_string(token), seed));
}

inline proto::JobConfig TestConfig(const std::string& model, int k, int num_fields, int rho = 3) {
  proto::JobConfig c = DefaultJobConfig();
  c.set_model(model);
  c.set_k(k);
  c.set_num_fields(num_fields);
  c.set_rank(rho);
  c.set_format("libffm");
  return c;
}

inline std::shared_ptr<const ModelSnapshot> RandomSnapshot(const proto::JobConfig& config,
                                                           uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.f);
  Result<std::unique_ptr<Model>> model = CreateModel(ModelOptionsFromConfig(config));
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  std::vector<float> dense((*model)->DenseSize());
  (*model)->InitDense(dense, seed);
  for (size_t i = 0; i < dense.size(); ++i) dense[i] += 0.3f * normal(rng);
  const int width = (*model)->EmbeddingWidth();
  std::vector<SnapshotRow> rows;
  for (int f = 0; f < config.num_fields(); ++f) {
    for (int t = 0; t < 15; ++t) {
      SnapshotRow r;
      r.key = TokenKey(f, t);
      r.w = 0.2f * normal(rng);
      // Every fifth key has no embedding, every seventh a narrower one (adaptive rank).
      const int w = t % 5 == 4 ? 0 : (t % 7 == 3 ? width / 2 : width);
      for (int d = 0; d < w; ++d) r.v.push_back(0.3f * normal(rng));
      rows.push_back(r);
    }
  }
  Result<std::unique_ptr<ModelSnapshot>> s =
      ModelSnapshot::FromRows(config, std::move(dense), rows, 7);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::shared_ptr<const ModelSnapshot>(std::move(s.value())) : nullptr;
}

// Appends a random row over fields [first_field, last_field): each field present with
// probability 0.7, one or two features, values mostly 1.
inline void AppendRandomRow(std::mt19937_64* rng, int first_field, int last_field,
                            Minibatch* batch) {
  std::uniform_real_distribution<float> unit(0.f, 1.f);
  for (int f = first_field; f < last_field; ++f) {
    if (unit(*rng) > 0.7f) continue;
    const int n = unit(*rng) < 0.2f ? 2 : 1;
    for (int j = 0; j < n; ++j) {
      batch->keys.push_back(TokenKey(f, static_cast<int>((*rng)() % kVocabulary)));
      batch->values.push_back(unit(*rng) < 0.7f ? 1.f : 0.5f + unit(*rng));
    }
  }
  batch->labels.push_back(0.f);
  batch->offsets.push_back(static_cast<uint32_t>(batch->keys.size()));
}

// Probability of context + candidate row r through Model::Compute, one row at a time with
// unique local keys (as a worker localizes).
inline float ReferenceScore(const ModelSnapshot& s, const Minibatch& context,
                            const Minibatch& candidates, size_t r) {
  std::vector<uint64_t> row_keys(context.keys);
  std::vector<float> values(context.values);
  row_keys.insert(row_keys.end(), candidates.keys.begin() + candidates.offsets[r],
                  candidates.keys.begin() + candidates.offsets[r + 1]);
  values.insert(values.end(), candidates.values.begin() + candidates.offsets[r],
                candidates.values.begin() + candidates.offsets[r + 1]);
  std::unordered_map<uint64_t, uint32_t> local;
  std::vector<uint64_t> unique;
  std::vector<uint32_t> index;
  std::vector<uint8_t> fields;
  for (uint64_t key : row_keys) {
    auto [it, inserted] = local.emplace(key, static_cast<uint32_t>(unique.size()));
    if (inserted) unique.push_back(key);
    index.push_back(it->second);
    fields.push_back(static_cast<uint8_t>(KeyField(key)));
  }
  std::vector<float> w, V;
  std::vector<uint16_t> widths;
  s.Lookup(unique, &w, &V, &widths);
  std::vector<uint32_t> offsets{0, static_cast<uint32_t>(row_keys.size())};
  BatchView b;
  b.rows = 1;
  b.offsets = offsets.data();
  b.index = index.data();
  b.values = values.data();
  b.fields = fields.data();
  b.num_keys = unique.size();
  ParamView p{w.data(), V.data(), widths.data(), s.dense().data()};
  std::vector<float> logit(1);
  s.model().Compute(b, p, logit, nullptr);
  return static_cast<float>(Sigmoid(logit[0]));
}

}  // namespace fmps::testing

#endif  // FMPS_TESTS_SERVING_SERVING_TEST_UTIL_H_
