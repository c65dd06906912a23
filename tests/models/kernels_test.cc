// Fast kernels vs their plain references, and gradients vs central finite differences, for every
// model on small random batches (several features per field, absent fields, real values).
#include <cmath>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "models/model.h"
#include "models/model_math.h"
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
using testing::ReferenceLoss;

std::unique_ptr<Model> Make(const ModelOptions& o) {
  auto model = CreateModel(o);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  return std::move(model).value();
}

ModelOptions Options(const std::string& name, int k, int m) {
  ModelOptions o;
  o.name = name;
  o.k = k;
  o.num_fields = m;
  o.rank = 2;
  o.keep = 0.6;
  o.rafm_ranks = {2, 3, 5};
  return o;
}

// Widths as the servers would send them: some keys without embedding, some narrower; a model
// with rank levels gets keys at every level (and below the first).
std::vector<uint16_t> MixedWidths(const ModelOptions& o, const Model& model, size_t num_keys) {
  std::vector<uint16_t> widths(num_keys, uint16_t(model.EmbeddingWidth()));
  if (o.name == "fm") {
    for (size_t i = 0; i < num_keys; i += 3) widths[i] = uint16_t(i % 2 ? 0 : o.k / 2);
  }
  const std::vector<RankLevelSpec> levels = model.RankLevels();
  if (!levels.empty()) {
    for (size_t i = 0; i < num_keys; ++i) {
      const size_t level = i % (levels.size() + 1);
      widths[i] = level == 0 ? 0 : uint16_t(levels[level - 1].width);
    }
  }
  return widths;
}

class KernelTest : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

TEST_P(KernelTest, FastLogitsMatchReference) {
  const auto [name, k] = GetParam();
  const ModelOptions o = Options(name, k, 6);
  auto model = Make(o);
  std::mt19937_64 rng(11);
  BatchShape shape;
  shape.num_fields = 6;
  shape.keys_per_field = 5;
  const RandomBatch batch = MakeBatch(rng, 60, shape);
  for (bool use_widths : {false, true}) {
    Params params =
        MakeParams(rng, *model, batch.num_keys,
                   use_widths ? MixedWidths(o, *model, batch.num_keys) : std::vector<uint16_t>{});
    if (name == "pruned_fwfm") {  // prune some pairs so the mask matters
      model->AfterDenseUpdate(params.dense, 1.0);
    }
    std::vector<float> logits(60);
    const double loss = model->Compute(batch.View(), params.View(), logits, nullptr);
    for (size_t r = 0; r < 60; ++r) {
      const double ref = ReferenceLogit(o, batch.View(), params.View(), r);
      EXPECT_NEAR(logits[r], ref, 1e-5 * std::max(1.0, std::fabs(ref))) << "row " << r;
    }
    EXPECT_NEAR(loss, ReferenceLoss(o, batch, params), 1e-5 * loss);
  }
}

TEST_P(KernelTest, GradientsMatchFiniteDifferences) {
  const auto [name, k] = GetParam();
  const ModelOptions o = Options(name, k, 4);
  auto model = Make(o);
  std::mt19937_64 rng(5);
  BatchShape shape;
  shape.num_fields = 4;
  const RandomBatch batch = MakeBatch(rng, 8, shape);
  Params params = MakeParams(rng, *model, batch.num_keys, MixedWidths(o, *model, batch.num_keys));
  if (name == "pruned_fwfm") model->AfterDenseUpdate(params.dense, 1.0);

  const size_t width = model->EmbeddingWidth();
  std::vector<float> gw(batch.num_keys), gV(batch.num_keys * width), gd(model->DenseSize());
  GradView grads{gw.data(), gV.data(), gd.data()};
  std::vector<float> logits(8);
  model->Compute(batch.View(), params.View(), logits, &grads);
  auto loss = [&] { return ReferenceLoss(o, batch, params); };

  size_t checked = 0;
  for (size_t i = 0; i < batch.num_keys; ++i) {
    ExpectGradNear(gw[i], FiniteDifference(&params.w[i], loss), "w " + std::to_string(i));
    ++checked;
  }
  // RaFM's blocks below the top one also get distillation gradients: checked in rafm_test.cc;
  // here only the top block (lanes 3, 4 of the widest keys) follows the model's own loss.
  for (size_t i = 0; i < batch.num_keys; ++i) {
    size_t begin = 0;
    if (name == "rafm" && params.widths[i] > 0) {
      begin = params.widths[i] == 5 ? 3 : params.widths[i];
    }
    for (size_t d = begin; d < params.widths[i]; ++d) {
      ExpectGradNear(gV[i * width + d], FiniteDifference(&params.V[i * width + d], loss),
                     "V " + std::to_string(i) + "," + std::to_string(d));
      ++checked;
    }
  }
  const size_t num_pairs = size_t(o.num_fields) * (o.num_fields - 1) / 2;
  for (size_t j = 0; j < params.dense.size(); ++j) {
    if (name == "pruned_fwfm" && j > num_pairs) {
      EXPECT_EQ(gd[j], 0.f) << "mask entries are not trained";
      continue;
    }
    ExpectGradNear(gd[j], FiniteDifference(&params.dense[j], loss), "dense " + std::to_string(j));
    ++checked;
  }
  // RaFM checks fewer V floats here (only top blocks); rafm_test checks the rest.
  EXPECT_GT(checked, batch.num_keys + (name == "rafm" ? 4 : 10));
}

// The kernels test list: every registered model, at a few ranks; adding a model adds its line
// (kept one line per model by hand).
// clang-format off
const std::vector<std::tuple<std::string, int>> kKernelCases = {
    {"fm", 8},          {"fm", 16},         {"fm", 5},
    {"fwfm", 8},        {"fwfm", 3},
    {"dplr", 4},        {"dplr", 3},
    {"pruned_fwfm", 4}, {"pruned_fwfm", 3},
    {"rafm", 4},
    {"ffm", 4},         {"ffm", 3},
};
// clang-format on

INSTANTIATE_TEST_SUITE_P(Models, KernelTest, ::testing::ValuesIn(kKernelCases),
                         [](const auto& info) {
                           return std::get<0>(info.param) + "_k" +
                                  std::to_string(std::get<1>(info.param));
                         });

// A model in the registry but not in the list above would go untested against its reference
// twin; a listed name the registry does not know would fail only as a creation error.
TEST(KernelTest, TheListNamesExactlyTheRegisteredModels) {
  std::set<std::string> listed;
  for (const auto& c : kKernelCases) listed.insert(std::get<0>(c));
  const std::vector<std::string> names = ModelNames();
  EXPECT_EQ(listed, std::set<std::string>(names.begin(), names.end()))
      << "add the model's line to kKernelCases (docs/design.md, Adding a model)";
}

// A row's gradient and loss share one exp: the same bits as Sigmoid and LogLoss, at logits of
// both signs, near 0 and far out (where a careless form overflows or loses the tail).
TEST(KernelTest, FinishRowIsSigmoidAndLogLoss) {
  for (double z : {-800.0, -30.0, -2.5, -1e-9, 0.0, 1e-9, 0.7, 19.0, 800.0}) {
    for (float y : {0.f, 1.f}) {
      BatchView b;
      b.rows = 1;
      b.labels = &y;
      std::vector<float> logits(1);
      float g = 0;
      const double loss = model_math::FinishRow(b, 0, z, logits, &g);
      EXPECT_EQ(g, static_cast<float>(model_math::Sigmoid(z) - y)) << z;
      EXPECT_EQ(loss, model_math::LogLoss(z, y)) << z;
      EXPECT_TRUE(std::isfinite(loss)) << z;
    }
  }
}

TEST(KernelTest, ScoringWithoutLabelsReturnsZeroLossAndSameLogits) {
  for (const std::string& name : ModelNames()) {
    const ModelOptions o = Options(name, 4, 3);
    auto model = Make(o);
    std::mt19937_64 rng(3);
    BatchShape shape;
    shape.num_fields = 3;
    RandomBatch batch = MakeBatch(rng, 10, shape);
    Params params = MakeParams(rng, *model, batch.num_keys);
    std::vector<float> with(10), without(10);
    EXPECT_GT(model->Compute(batch.View(), params.View(), with, nullptr), 0.0) << name;
    BatchView unlabeled = batch.View();
    unlabeled.labels = nullptr;
    EXPECT_EQ(model->Compute(unlabeled, params.View(), without, nullptr), 0.0) << name;
    EXPECT_EQ(with, without) << name;
  }
}

}  // namespace
}  // namespace fmps
