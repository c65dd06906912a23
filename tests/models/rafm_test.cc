// RaFM training objective (Algorithm 1 with nested embeddings): every embedding float gets the
// gradient of logloss(B_{1,l}) + sum_{p<l} logloss(sigmoid(B_{1,p+1}), B_{1,p}) with the larger
// model held fixed; the servers' rank policy from eq. 17; and rows hold D_q floats, not the sum.
#include <cmath>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "models/model.h"
#include "models/reference.h"
#include "tests/models/model_test_util.h"

namespace fmps {
namespace {

using testing::BatchShape;
using testing::ExpectGradNear;
using testing::FiniteDifference;
using testing::MakeBatch;
using testing::MakeParams;
using testing::Params;
using testing::RandomBatch;

double Logloss(double label, double z) {
  return std::log1p(std::exp(-std::fabs(z))) + std::max(z, 0.0) - label * z;
}

// Checks every embedding float's gradient against finite differences of logloss(B_{1,l}) +
// distill_weight * sum_{p<l} logloss(sigmoid(B_{1,p+1}), B_{1,p}).
void ExpectGradientOfWeightedObjective(float distill_weight) {
  ModelOptions o;
  o.name = "rafm";
  o.k = 5;
  o.num_fields = 4;
  o.rafm_ranks = {2, 3, 5};
  o.rafm_distill_weight = distill_weight;
  auto model = std::move(CreateModel(o)).value();
  ASSERT_EQ(model->EmbeddingWidth(), 5);  // nested: a top-level row holds D_3 floats, not 2+3+5
  std::mt19937_64 rng(17);
  BatchShape shape;
  shape.num_fields = 4;
  const RandomBatch batch = MakeBatch(rng, 10, shape);
  const std::vector<int> level_width = {0, 2, 3, 5};
  std::vector<uint16_t> widths(batch.num_keys);
  for (size_t i = 0; i < widths.size(); ++i) widths[i] = uint16_t(level_width[(i * 7) % 4]);
  Params params = MakeParams(rng, *model, batch.num_keys, widths);
  const BatchView view = batch.View();

  std::vector<float> gw(batch.num_keys), gV(batch.num_keys * 5), gd(1), logits(10);
  GradView grads{gw.data(), gV.data(), gd.data()};
  model->Compute(view, params.View(), logits, &grads);

  // Soft labels of the teachers B_{1,p+1}, fixed at the current parameters.
  std::vector<std::vector<double>> teacher(4);
  for (int p = 2; p <= 3; ++p) {
    for (size_t r = 0; r < view.rows; ++r) {
      teacher[p].push_back(1.0 / (1.0 + std::exp(-ReferenceLogit(o, view, params.View(), r, p))));
    }
  }
  auto objective = [&] {
    double total = 0;
    for (size_t r = 0; r < view.rows; ++r) {
      total += Logloss(view.labels[r], ReferenceLogit(o, view, params.View(), r));
      for (int p = 1; p <= 2; ++p) {
        total += distill_weight *
                 Logloss(teacher[p + 1][r], ReferenceLogit(o, view, params.View(), r, p));
      }
    }
    return total;
  };
  size_t checked = 0, lower = 0;
  for (size_t i = 0; i < batch.num_keys; ++i) {
    for (int d = 0; d < widths[i]; ++d) {
      const double numeric = FiniteDifference(&params.V[i * 5 + d], objective);
      ExpectGradNear(gV[i * 5 + d], numeric,
                     "key " + std::to_string(i) + " d " + std::to_string(d));
      ++checked;
      if (d < 3) ++lower;
    }
    for (int d = widths[i]; d < 5; ++d) EXPECT_EQ(gV[i * 5 + d], 0.f) << "padding of " << i;
  }
  EXPECT_GT(lower, 10u);
  EXPECT_GT(checked, lower);
}

TEST(RafmTest, EmbeddingsFollowTheLossPlusDistillationObjective) {
  ExpectGradientOfWeightedObjective(1.0f);  // the default: Algorithm 1
}

TEST(RafmTest, DistillationWeightScalesTheDistillationTerms) {
  ExpectGradientOfWeightedObjective(0.3f);
}

TEST(RafmTest, ZeroDistillationWeightIsTheGradientOfTheFinalLoss) {
  ExpectGradientOfWeightedObjective(0.0f);
}

TEST(RafmTest, RejectsANegativeDistillationWeight) {
  ModelOptions o;
  o.name = "rafm";
  o.rafm_ranks = {4, 8};
  o.rafm_distill_weight = -0.5f;
  EXPECT_FALSE(CreateModel(o).ok());
}

TEST(RafmTest, PrefixOfAHigherLevelRowIsItsLowerRankEmbedding) {
  // A key of level 3 paired with a key of level 1 uses only its first D_1 floats: changing the
  // floats past D_1 leaves that pair's logit unchanged.
  ModelOptions o;
  o.name = "rafm";
  o.num_fields = 2;
  o.rafm_ranks = {2, 4};
  auto model = std::move(CreateModel(o)).value();
  const float labels[] = {1.f};
  const uint32_t offsets[] = {0, 2}, index[] = {0, 1};
  const float values[] = {1.f, 1.f};
  const uint8_t fields[] = {0, 1};
  const BatchView b{1, labels, offsets, index, values, fields, 2};
  std::vector<float> w = {0.f, 0.f}, dense = {0.f};
  std::vector<float> V = {1.f, 2.f, 5.f, 7.f, 3.f, 4.f, 0.f, 0.f};
  const std::vector<uint16_t> widths = {4, 2};
  std::vector<float> logit(1);
  model->Compute(b, ParamView{w.data(), V.data(), widths.data(), dense.data()}, logit, nullptr);
  EXPECT_FLOAT_EQ(logit[0], 1.f * 3 + 2.f * 4);
  V[2] = -9.f;
  model->Compute(b, ParamView{w.data(), V.data(), widths.data(), dense.data()}, logit, nullptr);
  EXPECT_FLOAT_EQ(logit[0], 11.f);
  const std::vector<uint16_t> both_top = {4, 4};
  V[6] = 1.f;
  model->Compute(b, ParamView{w.data(), V.data(), both_top.data(), dense.data()}, logit, nullptr);
  EXPECT_FLOAT_EQ(logit[0], 11.f - 9.f);
}

// The servers' levels of a RaFM with these ranks (Model::RankLevels).
std::vector<RankLevelSpec> RafmLevels(const std::vector<int>& ranks, double count_scale = 1.0) {
  ModelOptions o;
  o.name = "rafm";
  o.num_fields = 39;
  o.rafm_ranks = ranks;
  o.rafm_count_scale = count_scale;
  return std::move(CreateModel(o)).value()->RankLevels();
}

TEST(RafmTest, LevelsSwitchAtTheGeometricMeanOfRanks) {
  const auto levels = RafmLevels({4, 8, 16});
  ASSERT_EQ(levels.size(), 3u);
  EXPECT_EQ(levels[0], (RankLevelSpec{0, 4}));
  EXPECT_EQ(levels[1], (RankLevelSpec{6, 8}));    // sqrt(32) = 5.66
  EXPECT_EQ(levels[2], (RankLevelSpec{12, 16}));  // sqrt(128) = 11.3
  // Checked against eq. 17 directly for every count.
  const std::vector<int> ranks = {2, 8, 32, 64};
  const auto policy = RafmLevels(ranks);
  for (uint64_t n = 1; n < 200; ++n) {
    size_t best = 0;
    for (size_t q = 1; q < ranks.size(); ++q) {
      if (std::fabs(std::log(double(n)) - std::log(double(ranks[q]))) <=
          std::fabs(std::log(double(n)) - std::log(double(ranks[best])))) {
        best = q;
      }
    }
    size_t chosen = 0;
    while (chosen + 1 < policy.size() && policy[chosen + 1].min_count <= n) ++chosen;
    EXPECT_EQ(chosen, best) << "count " << n;
  }
  EXPECT_EQ(RafmLevels(ModelOptions().rafm_ranks), levels);  // the table's default ranks
  // count_scale c compares n / c with the ranks: thresholds scale by c, widths stay.
  const auto scaled = RafmLevels({2, 4, 8}, 30.0);
  ASSERT_EQ(scaled.size(), 3u);
  EXPECT_EQ(scaled[0], (RankLevelSpec{0, 2}));
  EXPECT_EQ(scaled[1], (RankLevelSpec{85, 4}));   // 30 sqrt(8) = 84.9
  EXPECT_EQ(scaled[2], (RankLevelSpec{170, 8}));  // 30 sqrt(32) = 169.7
}

}  // namespace
}  // namespace fmps
