// RaFM training objective (Algorithm 1): a key's lower blocks get the distillation gradient of
// logloss(sigmoid(B_{1,p+1}), B_{1,p}) with the larger model held fixed; and the servers' rank
// policy from eq. 17.
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

TEST(RafmTest, LowerBlocksFollowTheDistillationObjective) {
  ModelOptions o;
  o.name = "rafm";
  o.k = 5;
  o.num_fields = 4;
  o.rafm_ranks = {2, 3, 5};
  auto model = std::move(CreateModel(o)).value();
  ASSERT_EQ(model->EmbeddingWidth(), 10);
  std::mt19937_64 rng(17);
  BatchShape shape;
  shape.num_fields = 4;
  const RandomBatch batch = MakeBatch(rng, 10, shape);
  const std::vector<int> cum = {0, 2, 5, 10};
  std::vector<uint16_t> widths(batch.num_keys);
  for (size_t i = 0; i < widths.size(); ++i) widths[i] = uint16_t(cum[(i * 7) % 4]);
  Params params = MakeParams(rng, *model, batch.num_keys, widths);
  const BatchView view = batch.View();

  std::vector<float> gw(batch.num_keys), gV(batch.num_keys * 10), gd(1), logits(10);
  GradView grads{gw.data(), gV.data(), gd.data()};
  model->Compute(view, params.View(), logits, &grads);

  // Soft labels of the teacher B_{1,p+1}, fixed at the current parameters.
  std::vector<std::vector<double>> teacher(4);
  for (int p = 2; p <= 3; ++p) {
    for (size_t r = 0; r < view.rows; ++r) {
      teacher[p].push_back(1.0 / (1.0 + std::exp(-ReferenceLogit(o, view, params.View(), r, p))));
    }
  }
  size_t dependent = 0;
  for (size_t i = 0; i < batch.num_keys; ++i) {
    int level = 0;
    while (level < 3 && cum[level + 1] <= widths[i]) ++level;
    for (int p = 1; p < level; ++p) {
      auto distill = [&] {
        double total = 0;
        for (size_t r = 0; r < view.rows; ++r) {
          const double z = ReferenceLogit(o, view, params.View(), r, p);
          total += std::log1p(std::exp(-std::fabs(z))) + std::max(z, 0.0) - teacher[p + 1][r] * z;
        }
        return total;
      };
      for (int d = cum[p - 1]; d < cum[p]; ++d) {
        const double numeric = FiniteDifference(&params.V[i * 10 + d], distill);
        ExpectGradNear(gV[i * 10 + d], numeric, "key " + std::to_string(i) + " block " +
                                                     std::to_string(p) + " d " + std::to_string(d));
        ++dependent;
      }
    }
    for (int d = cum[level]; d < 10; ++d) EXPECT_EQ(gV[i * 10 + d], 0.f) << "padding of " << i;
  }
  EXPECT_GT(dependent, 10u);
}

TEST(RafmTest, LevelsSwitchAtTheGeometricMeanOfRanks) {
  const auto levels = RafmLevels({4, 8, 16});
  ASSERT_EQ(levels.size(), 3u);
  EXPECT_EQ(levels[0], std::make_pair(uint64_t(0), uint32_t(4)));
  EXPECT_EQ(levels[1], std::make_pair(uint64_t(6), uint32_t(12)));   // sqrt(32) = 5.66
  EXPECT_EQ(levels[2], std::make_pair(uint64_t(12), uint32_t(28)));  // sqrt(128) = 11.3
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
    while (chosen + 1 < policy.size() && policy[chosen + 1].first <= n) ++chosen;
    EXPECT_EQ(chosen, best) << "count " << n;
  }
  EXPECT_EQ(RafmLevels({}), levels);  // default ranks
}

}  // namespace
}  // namespace fmps
