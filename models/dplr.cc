// DPLR-FwFM: R = U^T diag(e) U + diag(d) with d = -diag(U^T diag(e) U), so diag(R) = 0 and
// phi = sum_{f<g} R_fg <S_f, S_g> = 0.5 * sum_p e_p (||P_p||^2 - sum_f U_pf^2 ||S_f||^2),
// P_p = sum_f U_pf S_f. O(rho * m' * k) per row for the m' fields present; R is never built.
//
// Dense layout: {b, U (rho x m, row-major: U[p*m + f]), e (rho)}.
// Init: U row 0 = 1 and e_0 = 1 make R = 11^T - I, i.e. FwFM with R = 1 (FM's start point);
// rows p >= 1 are N(0, 1) directions with a small weight e_p = dense_init_scale, so they start
// near zero but with nonzero gradients.
#include <algorithm>
#include <random>
#include <vector>

#include "models/model_math.h"
#include "models/reference.h"
#include "ps/base/keys.h"

namespace fmps {
namespace {

using model_math::FinishRow;

struct DplrScratch {
  std::vector<float> sums;     // [m*k] S_f for present fields
  std::vector<float> norms;    // [m] ||S_f||^2
  std::vector<float> proj;     // [rho*k] P_p
  std::vector<float> back;     // [m*k] T_f = d phi / d S_f
  std::vector<double> grad_u;  // [rho*m]
  std::vector<double> grad_e;  // [rho]
  std::vector<double> terms;   // [rho] this row's d phi / d e_p
  std::vector<int> present;
  std::vector<uint8_t> seen;
};

template <int kFixed>
double DplrKernel(const BatchView& b, const ParamView& p, int k_dyn, int m, int rho,
                  std::span<float> logits, GradView* grads) {
  const int k = kFixed > 0 ? kFixed : k_dyn;
  const float* u = p.dense + 1;
  const float* ev = p.dense + 1 + size_t(rho) * m;
  thread_local DplrScratch s;
  s.sums.resize(size_t(m) * k);
  s.norms.resize(m);
  s.proj.resize(size_t(rho) * k);
  s.terms.resize(rho);
  s.back.resize(size_t(m) * k);
  if (grads != nullptr) {
    s.grad_u.assign(size_t(rho) * m, 0.0);
    s.grad_e.assign(rho, 0.0);
  }
  s.seen.assign(m, 0);
  s.present.clear();
  s.present.reserve(m);

  double total = 0;
  for (size_t r = 0; r < b.rows; ++r) {
    double z = model_math::FieldSumsAndLinear(b, p, r, k, s.sums.data(), s.seen.data(), &s.present);
    for (int f : s.present) {
      const float* sf = s.sums.data() + size_t(f) * k;
      float n = 0.f;
      for (int d = 0; d < k; ++d) n += sf[d] * sf[d];
      s.norms[f] = n;
    }
    double phi = 0;
    for (int q = 0; q < rho; ++q) {
      float* pq = s.proj.data() + size_t(q) * k;
      const float* uq = u + size_t(q) * m;
      for (int d = 0; d < k; ++d) pq[d] = 0.f;
      float diag = 0.f;
      for (int f : s.present) {
        const float* sf = s.sums.data() + size_t(f) * k;
        const float uf = uq[f];
        for (int d = 0; d < k; ++d) pq[d] += uf * sf[d];
        diag += uf * uf * s.norms[f];
      }
      float pn = 0.f;
      for (int d = 0; d < k; ++d) pn += pq[d] * pq[d];
      const double term = 0.5 * (double(pn) - diag);
      phi += ev[q] * term;
      s.terms[q] = term;
    }
    z += phi;
    float g;
    total += FinishRow(b, r, z, logits, &g);
    if (grads == nullptr) {
      for (int f : s.present) s.seen[f] = 0;
      s.present.clear();
      continue;
    }
    if (g != 0.f) {
      for (int q = 0; q < rho; ++q) s.grad_e[q] += double(g) * s.terms[q];
      grads->dense[0] += g;
      for (int f : s.present) {
        float* tf = s.back.data() + size_t(f) * k;
        for (int d = 0; d < k; ++d) tf[d] = 0.f;
      }
      for (int q = 0; q < rho; ++q) {
        const float* pq = s.proj.data() + size_t(q) * k;
        const float* uq = u + size_t(q) * m;
        const float eq = ev[q];
        for (int f : s.present) {
          const float* sf = s.sums.data() + size_t(f) * k;
          float* tf = s.back.data() + size_t(f) * k;
          const float uf = uq[f];
          float dot = 0.f;
          for (int d = 0; d < k; ++d) {
            dot += pq[d] * sf[d];
            tf[d] += eq * uf * (pq[d] - uf * sf[d]);
          }
          s.grad_u[size_t(q) * m + f] += double(g) * eq * (double(dot) - double(uf) * s.norms[f]);
        }
      }
      model_math::AddRowGradients(b, r, g, s.back.data(), k, grads);
    }
    for (int f : s.present) s.seen[f] = 0;
    s.present.clear();
  }
  if (grads != nullptr) {
    for (size_t j = 0; j < size_t(rho) * m; ++j) grads->dense[1 + j] += float(s.grad_u[j]);
    for (int q = 0; q < rho; ++q) grads->dense[1 + size_t(rho) * m + q] += float(s.grad_e[q]);
  }
  return total;
}

// y += a * x over k floats; the restrict parameters tell the compiler the two rows do not overlap
// (both live in one scratch struct), so the loop vectorises.
template <int kFixed>
inline void Axpy(int k_dyn, float a, const float* __restrict x, float* __restrict y) {
  const int k = kFixed > 0 ? kFixed : k_dyn;
  for (int d = 0; d < k; ++d) y[d] += a * x[d];
}

// DPLR's cached context, Algorithm 1 of the DPLR-FwFM paper: with d_f = sum_p e_p U_pf^2 (minus
// the diagonal of U^T diag(e) U), per context P^C_p = sum_{f in C} U_pf S^C_f,
// s_C = sum_{f in C} d_f ||S^C_f||^2 and the context's bias + linear term are computed once; per
// candidate only O(rho |I| k). A field present in both halves is handled exactly (its cross term
// 2 d_f <S^C_f, S^I_f> joins the candidate's part).
class DplrContextScorer : public ContextScorer {
 public:
  DplrContextScorer(int k, int m, int rho, const FrozenParams& params)
      : k_(k), m_(m), rho_(rho), params_(params), diag_weight_(m, 0.f) {
    const float* u = U();
    const float* e = E();
    for (int f = 0; f < m_; ++f) {
      double d = 0;
      for (int p = 0; p < rho_; ++p) {
        const double upf = u[size_t(p) * m_ + f];
        d += double(e[p]) * upf * upf;
      }
      diag_weight_[f] = static_cast<float>(d);
    }
  }

  void Score(FeatureSpan context, const Minibatch& candidates, float* logits) const override {
    model_math::WithStaticRank(
        k_, [&](auto rank) { ScoreRank<decltype(rank)::value>(context, candidates, logits); });
  }

 private:
  struct Scratch {
    std::vector<float> ctx_sums;   // [m*k] S^C_f
    std::vector<uint8_t> in_ctx;   // [m]
    std::vector<float> ctx_proj;   // [rho*k] P^C_p
    std::vector<float> item_sums;  // [m*k] S^I_f
    std::vector<uint8_t> in_item;  // [m]
    std::vector<int> ctx_fields, item_fields;
    std::vector<float> proj;  // [rho*k]
    LookedUpRows context, candidates;
  };

  const float* U() const { return params_.dense.data() + 1; }
  const float* E() const { return U() + size_t(rho_) * m_; }

  template <int kFixed>
  void ScoreRank(FeatureSpan context, const Minibatch& candidates, float* logits) const {
    const int k = kFixed > 0 ? kFixed : k_;
    const int m = m_, rho = rho_;
    const float* u = U();
    const float* ev = E();
    thread_local Scratch t;
    t.ctx_sums.resize(size_t(m) * k);
    t.in_ctx.assign(m, 0);
    t.item_sums.resize(size_t(m) * k);
    t.in_item.assign(m, 0);
    t.ctx_proj.assign(size_t(rho) * k, 0.f);
    t.proj.resize(size_t(rho) * k);
    t.context.Get(*params_.rows, context.keys);
    t.candidates.Get(*params_.rows, candidates.keys);

    // Context, once: bias + linear term, S^C_f, P^C_p and s_C.
    double ctx_linear = params_.dense[0];
    std::vector<int>& ctx_fields = t.ctx_fields;
    ctx_fields.clear();
    for (size_t e = 0; e < context.keys.size(); ++e) {
      const float* v = t.context.v[e];
      const float x = context.values[e];
      const int f = KeyField(context.keys[e]);
      ctx_linear += double(t.context.w[e]) * x;
      float* sf = t.ctx_sums.data() + size_t(f) * k;
      if (!t.in_ctx[f]) {
        t.in_ctx[f] = 1;
        ctx_fields.push_back(f);
        std::fill(sf, sf + k, 0.f);
      }
      Axpy<kFixed>(k, x, v, sf);
    }
    double ctx_diag = 0;  // s_C = sum_{f in C} d_f ||S^C_f||^2
    for (int f : ctx_fields) {
      const float* sf = t.ctx_sums.data() + size_t(f) * k;
      float n = 0.f;
      for (int d = 0; d < k; ++d) n += sf[d] * sf[d];
      ctx_diag += double(diag_weight_[f]) * n;
      for (int p = 0; p < rho; ++p) {
        const float upf = u[size_t(p) * m + f];
        float* pp = t.ctx_proj.data() + size_t(p) * k;
        Axpy<kFixed>(k, upf, sf, pp);
      }
    }
    // Fields absent from the context read S^C_f = 0 (the cross term below needs it).
    for (int f = 0; f < m; ++f) {
      if (!t.in_ctx[f]) std::fill_n(t.ctx_sums.begin() + size_t(f) * k, k, 0.f);
    }

    // Per candidate: S^I_f, P_p = P^C_p + sum_{f in I} U_pf S^I_f, and its share of the diagonal.
    std::vector<int>& item_fields = t.item_fields;
    const size_t rows = candidates.offsets.size() - 1;
    for (size_t r = 0; r < rows; ++r) {
      item_fields.clear();
      double z = ctx_linear;
      for (uint32_t e = candidates.offsets[r]; e < candidates.offsets[r + 1]; ++e) {
        const float* v = t.candidates.v[e];
        const float x = candidates.values[e];
        const int f = KeyField(candidates.keys[e]);
        z += double(t.candidates.w[e]) * x;
        float* sf = t.item_sums.data() + size_t(f) * k;
        if (!t.in_item[f]) {
          t.in_item[f] = 1;
          item_fields.push_back(f);
          std::fill(sf, sf + k, 0.f);
        }
        Axpy<kFixed>(k, x, v, sf);
      }
      std::copy(t.ctx_proj.begin(), t.ctx_proj.end(), t.proj.begin());
      double item_diag = 0;  // sum_{f in I} d_f (||S^I_f||^2 + 2 <S^C_f, S^I_f>)
      for (int f : item_fields) {
        const float* si = t.item_sums.data() + size_t(f) * k;
        const float* sc = t.ctx_sums.data() + size_t(f) * k;
        float n = 0.f;
        for (int d = 0; d < k; ++d) n += si[d] * (si[d] + 2.f * sc[d]);
        item_diag += double(diag_weight_[f]) * n;
        for (int p = 0; p < rho; ++p) {
          const float upf = u[size_t(p) * m + f];
          float* pp = t.proj.data() + size_t(p) * k;
          Axpy<kFixed>(k, upf, si, pp);
        }
        t.in_item[f] = 0;
      }
      double full = 0;  // sum_p e_p ||P_p||^2
      for (int p = 0; p < rho; ++p) {
        const float* pp = t.proj.data() + size_t(p) * k;
        float n = 0.f;
        for (int d = 0; d < k; ++d) n += pp[d] * pp[d];
        full += double(ev[p]) * n;
      }
      logits[r] = static_cast<float>(z + 0.5 * (full - ctx_diag - item_diag));
    }
  }

  int k_, m_, rho_;
  FrozenParams params_;
  std::vector<float> diag_weight_;  // d_f = sum_p e_p U_pf^2, [m]
};

class DplrModel : public Model {
 public:
  explicit DplrModel(const ModelOptions& o)
      : k_(o.k),
        m_(o.num_fields),
        rho_(o.rank),
        init_scale_(o.dense_init_scale),
        normalize_(o.normalize_field_pairs) {}
  std::string name() const override { return "dplr"; }
  int EmbeddingWidth() const override { return k_; }
  size_t DenseSize() const override { return 1 + size_t(rho_) * m_ + rho_; }

  void InitDense(std::span<float> dense, uint64_t seed) const override {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> normal(0.f, 1.f);
    dense[0] = 0.f;
    float* u = dense.data() + 1;
    float* e = dense.data() + 1 + size_t(rho_) * m_;
    for (int f = 0; f < m_; ++f) u[f] = 1.f;
    for (size_t j = m_; j < size_t(rho_) * m_; ++j) u[j] = normal(rng);
    e[0] = 1.f;
    for (int q = 1; q < rho_; ++q) e[q] = init_scale_;
  }

  double Compute(const BatchView& b, const ParamView& p, std::span<float> logits,
                 GradView* grads) const override {
    return model_math::WithStaticRank(k_, [&](auto rank) {
      constexpr int K = decltype(rank)::value;
      return DplrKernel<K>(b, p, k_, m_, rho_, logits, grads);
    });
  }

  std::string DenseLayout() const override { return "b, U[rho*m], e[rho]"; }
  std::vector<std::pair<std::string, std::string>> ShapeFlags() const override {
    return {{"rank", std::to_string(rho_)}};
  }

  std::unique_ptr<ContextScorer> MakeContextScorer(const FrozenParams& params) const override {
    return std::make_unique<DplrContextScorer>(k_, m_, rho_, params);
  }

  // R = U^T diag(e) U off the diagonal; d cancels its diagonal exactly, so R's diagonal is zero.
  double ReferenceLogit(const BatchView& b, const ParamView& p, size_t row, int) const override {
    const int m = m_;
    std::vector<double> r(size_t(m) * m, 0.0);
    for (int f = 0; f < m; ++f) {
      for (int g = 0; g < m; ++g) {
        if (f == g) continue;
        double v = 0;
        for (int q = 0; q < rho_; ++q) {
          v += double(p.dense[1 + size_t(rho_) * m + q]) * p.dense[1 + size_t(q) * m + f] *
               p.dense[1 + size_t(q) * m + g];
        }
        r[size_t(f) * m + g] = v;
      }
    }
    return reference::FieldMatrixLogit(b, p, row, k_, m, r);
  }

  // As in FwFM (see fwfm.cc): R and V trade scale and only V carries L2, so e is rescaled after
  // each dense update to keep the mean |R_fg| over f < g at 1. O(rho m^2) on server 0 per push.
  void AfterDenseUpdate(std::span<float> dense, double progress) const override {
    (void)progress;
    if (!normalize_ || m_ < 2) return;
    const float* u = dense.data() + 1;
    float* e = dense.data() + 1 + size_t(rho_) * m_;
    double sum = 0;
    for (int f = 0; f < m_; ++f) {
      for (int g = f + 1; g < m_; ++g) {
        double r = 0;
        for (int q = 0; q < rho_; ++q)
          r += double(e[q]) * u[size_t(q) * m_ + f] * u[size_t(q) * m_ + g];
        sum += std::fabs(r);
      }
    }
    const double pairs = double(m_) * (m_ - 1) / 2;
    if (!(sum > 0) || !std::isfinite(sum)) return;
    const float scale = static_cast<float>(pairs / sum);
    for (int q = 0; q < rho_; ++q) e[q] *= scale;
  }

 private:
  int k_;
  int m_;
  int rho_;
  float init_scale_;
  bool normalize_;  // keep mean |R_fg| at 1 after each dense update
};

}  // namespace

Result<std::unique_ptr<Model>> NewDplrModel(const ModelOptions& o) {
  FMPS_RETURN_IF_ERROR(ValidateCommonOptions(o));
  if (o.rank < 1) {
    return Status::InvalidArgument("dplr: rank must be >= 1, got " + std::to_string(o.rank));
  }
  return std::unique_ptr<Model>(std::make_unique<DplrModel>(o));
}

}  // namespace fmps
