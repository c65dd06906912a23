// Pruned FwFM's gradual magnitude pruning schedule, and the registry's option checks.
#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "models/model.h"

namespace fmps {
namespace {

size_t ExpectedKept(size_t pairs, size_t target, double progress) {
  const double t = std::min(1.0, progress / 0.5);
  return pairs - size_t(std::llround(double(pairs - target) * (1 - std::pow(1 - t, 3))));
}

TEST(PruningTest, KeptEntriesFollowTheCubicScheduleAndEndAtTarget) {
  ModelOptions o;
  o.name = "pruned_fwfm";
  o.num_fields = 10;
  o.keep_entries = 9;
  o.normalize_field_pairs = false;  // compare raw magnitudes before and after pruning
  auto model = std::move(CreateModel(o)).value();
  const size_t pairs = 45;
  ASSERT_EQ(model->DenseSize(), 1 + 2 * pairs);
  std::vector<float> dense(model->DenseSize());
  model->InitDense(dense, 1);
  EXPECT_EQ(model->DenseParams(dense), 1 + pairs);
  std::mt19937_64 rng(2);
  std::normal_distribution<float> noise(0.f, 0.3f);
  size_t previous = pairs;
  for (int step = 0; step <= 40; ++step) {
    const double progress = step / 40.0;
    // Training moves the surviving entries between prunings.
    for (size_t j = 0; j < pairs; ++j) dense[1 + j] += noise(rng);
    const std::vector<float> before(dense.begin() + 1, dense.begin() + 1 + pairs);
    const std::vector<float> mask_before(dense.begin() + 1 + pairs, dense.end());
    model->AfterDenseUpdate(dense, progress);
    const size_t kept = model->DenseParams(dense) - 1;
    EXPECT_EQ(kept, ExpectedKept(pairs, 9, progress)) << "progress " << progress;
    EXPECT_LE(kept, previous);
    previous = kept;
    float smallest_kept = INFINITY, largest_newly_pruned = 0;
    for (size_t j = 0; j < pairs; ++j) {
      const float mask = dense[1 + pairs + j];
      if (mask == 0.f) {
        EXPECT_EQ(dense[1 + j], 0.f) << "pruned R entries are zeroed";
        if (mask_before[j] != 0.f)
          largest_newly_pruned = std::max(largest_newly_pruned, std::fabs(before[j]));
      } else {
        EXPECT_EQ(mask, 1.f);
        smallest_kept = std::min(smallest_kept, std::fabs(dense[1 + j]));
      }
    }
    EXPECT_GE(smallest_kept, largest_newly_pruned) << "prunes the smallest magnitudes first";
  }
  EXPECT_EQ(previous, 9u);
}

TEST(PruningTest, KeepFractionSetsTheTarget) {
  ModelOptions o;
  o.name = "pruned_fwfm";
  o.num_fields = 10;
  o.keep = 0.2;
  auto model = std::move(CreateModel(o)).value();
  std::vector<float> dense(model->DenseSize());
  model->InitDense(dense, 3);
  model->AfterDenseUpdate(dense, 0.25);
  EXPECT_EQ(model->DenseParams(dense), 1 + ExpectedKept(45, 9, 0.25));
  model->AfterDenseUpdate(dense, 0.9);
  EXPECT_EQ(model->DenseParams(dense), 1 + 9u);
}

TEST(RegistryTest, EveryNameBuildsItsModel) {
  const std::vector<std::string> names = ModelNames();
  EXPECT_EQ(names.size(), 6u);
  for (const std::string& name : names) {
    ModelOptions o;
    o.name = name;
    o.num_fields = 39;  // the data's: ModelOptions has no default
    auto model = CreateModel(o);
    ASSERT_TRUE(model.ok()) << name << ": " << model.status().ToString();
    EXPECT_EQ(model.value()->name(), name);
    EXPECT_GE(model.value()->DenseSize(), 1u);
    std::vector<float> dense(model.value()->DenseSize(), 5.f);
    model.value()->InitDense(dense, 1);
    EXPECT_EQ(dense[0], 0.f) << "bias starts at zero";
  }
}

// Effective off-diagonal R of fwfm/pruned_fwfm (R*mask) or dplr (U^T diag(e) U), upper triangle.
std::vector<double> EffectiveR(const std::string& name, int m, int rho,
                               const std::vector<float>& d) {
  std::vector<double> r;
  const size_t pairs = size_t(m) * (m - 1) / 2;
  for (int f = 0; f < m; ++f) {
    for (int g = f + 1; g < m; ++g) {
      const size_t j = r.size();
      if (name == "dplr") {
        double v = 0;
        for (int q = 0; q < rho; ++q) {
          v += double(d[1 + size_t(rho) * m + q]) * d[1 + size_t(q) * m + f] *
               d[1 + size_t(q) * m + g];
        }
        r.push_back(v);
      } else {
        r.push_back(double(d[1 + j]) * (name == "pruned_fwfm" ? d[1 + pairs + j] : 1.f));
      }
    }
  }
  return r;
}

TEST(NormalizeTest, FieldPairMatrixKeepsMeanMagnitudeOneAndItsShape) {
  for (const std::string name : {"fwfm", "pruned_fwfm", "dplr"}) {
    ModelOptions o;
    o.name = name;
    o.num_fields = 7;
    o.rank = 3;
    o.keep_entries = 10;
    auto model = std::move(CreateModel(o)).value();
    std::vector<float> dense(model->DenseSize());
    model->InitDense(dense, 3);
    std::mt19937_64 rng(4);
    std::normal_distribution<float> grow(0.5f, 1.f);
    // Training that inflates R (as unregularized Adagrad steps do); only the R/U/e part moves.
    const size_t trained = name == "pruned_fwfm" ? 21 : dense.size() - 1;
    for (size_t j = 1; j <= trained; ++j) dense[j] = 3.f * dense[j] + grow(rng);
    model->AfterDenseUpdate(dense, 1.0);  // prunes fully, then normalizes
    const std::vector<double> before = EffectiveR(name, 7, 3, dense);
    for (size_t j = 1; j <= trained; ++j) dense[j] *= 2.5f;  // scale blow-up only
    model->AfterDenseUpdate(dense, 1.0);
    const std::vector<double> after = EffectiveR(name, 7, 3, dense);
    double sum = 0;
    size_t alive = 0;
    for (size_t j = 0; j < after.size(); ++j) {
      if (after[j] != 0) ++alive;
      sum += std::fabs(after[j]);
      EXPECT_NEAR(after[j], before[j], 1e-4 * (1 + std::fabs(before[j]))) << name << " pair " << j;
    }
    if (name == "pruned_fwfm") {
      EXPECT_EQ(alive, 10u);
    }
    EXPECT_NEAR(sum / double(alive), 1.0, 1e-4) << name;
    o.normalize_field_pairs = false;
    auto raw = std::move(CreateModel(o)).value();
    std::vector<float> copy = dense;
    for (size_t j = 1; j <= trained; ++j) copy[j] *= 2.f;
    raw->AfterDenseUpdate(copy, 1.0);
    double raw_sum = 0;
    for (double v : EffectiveR(name, 7, 3, copy)) raw_sum += std::fabs(v);
    EXPECT_GT(raw_sum, 1.5 * sum) << name << ": without normalization the scale stays inflated";
  }
}

TEST(RegistryTest, UnknownNameListsTheKnownOnes) {
  ModelOptions o;
  o.name = "deepfm";
  auto model = CreateModel(o);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(model.status().message().find("deepfm"), std::string::npos);
  for (const std::string& name : ModelNames()) {
    EXPECT_NE(model.status().message().find(name), std::string::npos) << name;
  }
}

TEST(RegistryTest, BadOptionsAreInvalidArgument) {
  auto bad = [](auto edit) {
    ModelOptions o;
    edit(o);
    auto model = CreateModel(o);
    return !model.ok() && model.status().code() == Status::Code::kInvalidArgument;
  };
  EXPECT_TRUE(bad([](ModelOptions& o) { o.k = 0; }));
  EXPECT_TRUE(bad([](ModelOptions& o) { o.num_fields = 0; }));
  EXPECT_TRUE(bad([](ModelOptions& o) { o.num_fields = 257; }));
  EXPECT_TRUE(bad([](ModelOptions& o) {
    o.name = "dplr";
    o.rank = 0;
  }));
  EXPECT_TRUE(bad([](ModelOptions& o) {
    o.name = "rafm";
    o.rafm_ranks = {8, 4};
  }));
  EXPECT_TRUE(bad([](ModelOptions& o) {
    o.name = "rafm";
    o.rafm_ranks = {4, 4};
  }));
  EXPECT_TRUE(bad([](ModelOptions& o) {
    o.name = "pruned_fwfm";
    o.keep = 1.5;
  }));
  EXPECT_TRUE(bad([](ModelOptions& o) {
    o.name = "pruned_fwfm";
    o.num_fields = 4;
    o.keep_entries = 7;
  }));
  EXPECT_TRUE(bad([](ModelOptions& o) {
    o.name = "ffm";
    o.num_fields = 256;
    o.k = 300;
  }));
  EXPECT_FALSE(bad([](ModelOptions& o) {
    o.name = "fm";
    o.num_fields = 256;
  }));
}

}  // namespace
}  // namespace fmps
