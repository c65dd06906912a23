// Identities between models on random inputs: FwFM with R = 1 is FM (one feature per field),
// DPLR with rho = m and U, e from the eigendecomposition of R is FwFM with R, pruned FwFM that
// keeps everything is FwFM, RaFM with one level is FM of that rank.
#include <cmath>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "models/model.h"
#include "tests/models/model_test_util.h"

namespace fmps {
namespace {

using testing::BatchShape;
using testing::MakeBatch;
using testing::MakeParams;
using testing::Params;
using testing::RandomBatch;

std::unique_ptr<Model> Make(const ModelOptions& o) {
  auto model = CreateModel(o);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  return std::move(model).value();
}

struct Output {
  std::vector<float> logits, gw, gV, gd;
  double loss = 0;
};

Output RunModel(const Model& model, const RandomBatch& batch, const Params& params) {
  Output out;
  out.logits.resize(batch.labels.size());
  out.gw.assign(batch.num_keys, 0.f);
  out.gV.assign(batch.num_keys * model.EmbeddingWidth(), 0.f);
  out.gd.assign(model.DenseSize(), 0.f);
  GradView grads{out.gw.data(), out.gV.data(), out.gd.data()};
  out.loss = model.Compute(batch.View(), params.View(), out.logits, &grads);
  return out;
}

void ExpectClose(const std::vector<float>& a, const std::vector<float>& b, const char* what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t j = 0; j < a.size(); ++j) {
    EXPECT_NEAR(a[j], b[j], 1e-5 * std::max(1.f, std::fabs(b[j]))) << what << " " << j;
  }
}

// Cyclic Jacobi eigensolver for a small symmetric matrix: returns eigenvalues and fills
// vectors (row-major, column p = eigenvector p) so that A = V diag(lambda) V^T.
std::vector<double> JacobiEigen(std::vector<double> a, int n, std::vector<double>* vectors) {
  std::vector<double>& v = *vectors;
  v.assign(size_t(n) * n, 0.0);
  for (int i = 0; i < n; ++i) v[size_t(i) * n + i] = 1.0;
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0;
    for (int p = 0; p < n; ++p)
      for (int q = p + 1; q < n; ++q) off += a[size_t(p) * n + q] * a[size_t(p) * n + q];
    if (off < 1e-24) break;
    for (int p = 0; p < n; ++p) {
      for (int q = p + 1; q < n; ++q) {
        const double apq = a[size_t(p) * n + q];
        if (std::fabs(apq) < 1e-300) continue;
        const double theta = (a[size_t(q) * n + q] - a[size_t(p) * n + p]) / (2 * apq);
        const double t =
            (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        // A <- J^T A J and V <- V J with J the rotation in the (p, q) plane.
        for (int k = 0; k < n; ++k) {  // columns p, q of A
          const double akp = a[size_t(k) * n + p], akq = a[size_t(k) * n + q];
          a[size_t(k) * n + p] = c * akp - s * akq;
          a[size_t(k) * n + q] = s * akp + c * akq;
        }
        for (int k = 0; k < n; ++k) {  // rows p, q of A
          const double apk = a[size_t(p) * n + k], aqk = a[size_t(q) * n + k];
          a[size_t(p) * n + k] = c * apk - s * aqk;
          a[size_t(q) * n + k] = s * apk + c * aqk;
        }
        for (int k = 0; k < n; ++k) {
          const double vkp = v[size_t(k) * n + p], vkq = v[size_t(k) * n + q];
          v[size_t(k) * n + p] = c * vkp - s * vkq;
          v[size_t(k) * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  std::vector<double> lambda(n);
  for (int i = 0; i < n; ++i) lambda[i] = a[size_t(i) * n + i];
  return lambda;
}

TEST(IdentityTest, FwfmWithUnitFieldMatrixIsFmWhenEachFieldHasOneFeature) {
  // Holds only with at most one feature per field: FwFM drops same-field pairs, FM keeps them.
  ModelOptions o;
  o.k = 8;
  o.num_fields = 7;
  o.name = "fm";
  auto fm = Make(o);
  o.name = "fwfm";
  auto fwfm = Make(o);
  std::mt19937_64 rng(21);
  BatchShape shape;
  shape.num_fields = 7;
  shape.second = 0.0;
  shape.present = 0.8;
  const RandomBatch batch = MakeBatch(rng, 40, shape);
  Params fm_params = MakeParams(rng, *fm, batch.num_keys);
  Params fwfm_params = fm_params;
  fwfm_params.dense.assign(fwfm->DenseSize(), 1.f);
  fwfm_params.dense[0] = fm_params.dense[0];
  const Output a = RunModel(*fm, batch, fm_params), b = RunModel(*fwfm, batch, fwfm_params);
  ExpectClose(a.logits, b.logits, "logits");
  ExpectClose(a.gw, b.gw, "grad w");
  ExpectClose(a.gV, b.gV, "grad V");
  EXPECT_NEAR(a.gd[0], b.gd[0], 1e-5);
  EXPECT_NEAR(a.loss, b.loss, 1e-5 * a.loss);
}

TEST(IdentityTest, DplrWithFullRankEigendecompositionIsFwfm) {
  const int m = 6;
  ModelOptions o;
  o.k = 4;
  o.num_fields = m;
  o.name = "fwfm";
  auto fwfm = Make(o);
  o.name = "dplr";
  o.rank = m;
  auto dplr = Make(o);
  std::mt19937_64 rng(8);
  BatchShape shape;  // several features per field and absent fields: the identity is exact
  shape.num_fields = m;
  const RandomBatch batch = MakeBatch(rng, 40, shape);
  Params fw = MakeParams(rng, *fwfm, batch.num_keys);
  std::vector<double> r(size_t(m) * m, 0.0);
  for (int f = 0; f < m; ++f) {
    for (int g = f + 1; g < m; ++g) {
      const size_t idx = size_t(f) * m - size_t(f) * (f + 1) / 2 + size_t(g - f - 1);
      r[size_t(f) * m + g] = r[size_t(g) * m + f] = fw.dense[1 + idx];
    }
  }
  std::vector<double> vectors;
  const std::vector<double> lambda = JacobiEigen(r, m, &vectors);
  for (int f = 0; f < m; ++f) {  // the solver itself: V diag(lambda) V^T == R
    for (int g = 0; g < m; ++g) {
      double x = 0;
      for (int p = 0; p < m; ++p)
        x += vectors[size_t(f) * m + p] * lambda[p] * vectors[size_t(g) * m + p];
      ASSERT_NEAR(x, r[size_t(f) * m + g], 1e-9);
    }
  }
  Params dp = fw;
  dp.dense.assign(dplr->DenseSize(), 0.f);
  dp.dense[0] = fw.dense[0];
  for (int p = 0; p < m; ++p) {
    for (int f = 0; f < m; ++f) dp.dense[1 + size_t(p) * m + f] = float(vectors[size_t(f) * m + p]);
    dp.dense[1 + size_t(m) * m + p] = float(lambda[p]);
  }
  const Output a = RunModel(*fwfm, batch, fw), b = RunModel(*dplr, batch, dp);
  for (size_t j = 0; j < a.logits.size(); ++j) {
    EXPECT_NEAR(b.logits[j], a.logits[j], 2e-5 * std::max(1.f, std::fabs(a.logits[j])));
  }
  for (size_t j = 0; j < a.gV.size(); ++j)
    EXPECT_NEAR(b.gV[j], a.gV[j], 2e-5 * std::max(1.f, std::fabs(a.gV[j])));
  ExpectClose(a.gw, b.gw, "grad w");
}

TEST(IdentityTest, PrunedFwfmKeepingEverythingIsFwfm) {
  ModelOptions o;
  o.k = 8;
  o.num_fields = 5;
  o.name = "fwfm";
  auto fwfm = Make(o);
  o.name = "pruned_fwfm";
  o.keep = 1.0;
  auto pruned = Make(o);
  std::mt19937_64 rng(4);
  BatchShape shape;
  const RandomBatch batch = MakeBatch(rng, 30, shape);
  Params pp = MakeParams(rng, *pruned, batch.num_keys);
  const size_t num_pairs = 10;
  for (size_t j = 0; j < num_pairs; ++j) pp.dense[1 + num_pairs + j] = 1.f;
  pruned->AfterDenseUpdate(pp.dense, 1.0);
  EXPECT_EQ(pruned->DenseParams(pp.dense), 1 + num_pairs);
  Params fp = pp;
  fp.dense.resize(fwfm->DenseSize());
  const Output a = RunModel(*fwfm, batch, fp), b = RunModel(*pruned, batch, pp);
  EXPECT_EQ(a.logits, b.logits);
  EXPECT_EQ(a.gV, b.gV);
  for (size_t j = 0; j <= num_pairs; ++j) EXPECT_EQ(a.gd[j], b.gd[j]);
}

TEST(IdentityTest, RafmWithOneLevelIsFm) {
  ModelOptions o;
  o.k = 6;
  o.num_fields = 5;
  o.name = "fm";
  auto fm = Make(o);
  o.name = "rafm";
  o.rafm_ranks = {6};
  auto rafm = Make(o);
  std::mt19937_64 rng(9);
  BatchShape shape;
  const RandomBatch batch = MakeBatch(rng, 30, shape);
  std::vector<uint16_t> widths(batch.num_keys, 6);
  for (size_t i = 0; i < widths.size(); i += 4) widths[i] = 0;  // keys without embedding
  const Params params = MakeParams(rng, *fm, batch.num_keys, widths);
  Output a = RunModel(*fm, batch, params), b = RunModel(*rafm, batch, params);
  ExpectClose(a.logits, b.logits, "logits");
  ExpectClose(a.gw, b.gw, "grad w");
  // A row's padding (past its width) holds no gradient (GradView): compared up to the width.
  for (Output* out : {&a, &b}) {
    for (size_t i = 0; i < widths.size(); ++i) {
      std::fill(out->gV.begin() + i * 6 + widths[i], out->gV.begin() + (i + 1) * 6, 0.f);
    }
  }
  ExpectClose(a.gV, b.gV, "grad V");
}

}  // namespace
}  // namespace fmps
