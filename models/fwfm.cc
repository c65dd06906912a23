// FwFM and pruned FwFM: phi = sum_{f<g} R_fg <S_f, S_g> with S_f = sum_{i in field f} x_i v_i,
// so same-field pairs never interact (R has a zero diagonal). Per row the cost is O(m'^2 k) for
// the m' fields present; absent fields are skipped.
//
// Dense layout: fwfm {b, R upper triangle (P = m(m-1)/2, row-major over f<g)};
// pruned_fwfm {b, R upper triangle (P), mask (P, 1 = kept, 0 = pruned)}.
// R starts at 1 (+ small jitter): the model then starts exactly where FM would (when each field
// holds one feature), embeddings learn from the first step, and the jitter breaks ties for
// magnitude pruning. Pruned entries use R * mask, so a server that revives a pruned R value
// cannot bring the interaction back.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "models/model_math.h"
#include "models/reference.h"

namespace fmps {
namespace {

using model_math::FinishRow;
using model_math::PairIndex;

struct FwfmScratch {
  std::vector<float> r_full;     // [m*m] effective symmetric R, zero diagonal
  std::vector<float> grad_full;  // [m*m] dL/dR_fg accumulated at [f*m+g], f < g
  std::vector<uint8_t> active;   // [m*m] pair not pruned
  std::vector<float> dots;       // [m'*m'] <S_f, S_g> of this row, kept for the R gradient
  std::vector<float> sums;       // [m*k] S_f, valid for present fields
  std::vector<float> back;       // [m*k] T_f = sum_g R_fg S_g
  std::vector<int> present;      // fields present in the row
  std::vector<uint8_t> seen;     // [m]
};

// t_f += r * s_g and t_g += r * s_f; restrict lets the compiler vectorise (distinct fields).
template <int kFixed>
inline void AddScaledPair(int k_dyn, float r, const float* __restrict sf,
                          const float* __restrict sg, float* __restrict tf, float* __restrict tg) {
  const int k = kFixed > 0 ? kFixed : k_dyn;
  for (int d = 0; d < k; ++d) {
    tf[d] += r * sg[d];
    tg[d] += r * sf[d];
  }
}

template <int kFixed>
double FwfmKernel(const BatchView& b, const ParamView& p, int k_dyn, int m, bool masked,
                  std::span<float> logits, GradView* grads) {
  const int k = kFixed > 0 ? kFixed : k_dyn;
  const size_t num_pairs = size_t(m) * (m - 1) / 2;
  thread_local FwfmScratch s;
  s.r_full.assign(size_t(m) * m, 0.f);
  s.active.assign(size_t(m) * m, 0);
  for (int f = 0; f < m; ++f) {
    for (int g = f + 1; g < m; ++g) {
      const size_t idx = PairIndex(f, g, m);
      float rv = p.dense[1 + idx];
      if (masked) rv *= p.dense[1 + num_pairs + idx];
      s.r_full[size_t(f) * m + g] = s.r_full[size_t(g) * m + f] = rv;
      const bool alive = !masked || p.dense[1 + num_pairs + idx] != 0.f;
      s.active[size_t(f) * m + g] = s.active[size_t(g) * m + f] = alive;
    }
  }
  if (grads != nullptr) s.grad_full.assign(size_t(m) * m, 0.f);
  s.sums.resize(size_t(m) * k);
  s.back.resize(size_t(m) * k);
  s.seen.assign(m, 0);
  s.present.clear();
  s.present.reserve(m);

  double total = 0;
  for (size_t r = 0; r < b.rows; ++r) {
    double z = model_math::FieldSumsAndLinear(b, p, r, k, s.sums.data(), s.seen.data(), &s.present);
    std::sort(s.present.begin(), s.present.end());  // so pairs come as f < g
    const size_t np = s.present.size();
    const bool train = grads != nullptr && b.labels != nullptr;
    if (train) s.dots.resize(np * np);
    double phi = 0;
    for (size_t a = 0; a < np; ++a) {
      const int f = s.present[a];
      const float* sf = s.sums.data() + size_t(f) * k;
      const uint8_t* active = s.active.data() + size_t(f) * m;
      const float* rf = s.r_full.data() + size_t(f) * m;
      for (size_t c = a + 1; c < np; ++c) {
        const int g = s.present[c];
        if (!active[g]) continue;  // pruned pair: no term, no gradient
        const float* sg = s.sums.data() + size_t(g) * k;
        float dot = 0.f;
        for (int d = 0; d < k; ++d) dot += sf[d] * sg[d];
        phi += double(rf[g]) * dot;
        if (train) s.dots[a * np + c] = dot;
      }
    }
    z += phi;
    float gr;
    total += FinishRow(b, r, z, logits, &gr);
    if (train && gr != 0.f) {
      grads->dense[0] += gr;
      for (size_t a = 0; a < np; ++a) {
        float* tf = s.back.data() + size_t(s.present[a]) * k;
        for (int d = 0; d < k; ++d) tf[d] = 0.f;
      }
      // T_f = sum_g R_fg S_g, each active pair visited once and applied both ways.
      for (size_t a = 0; a < np; ++a) {
        const int f = s.present[a];
        const float* sf = s.sums.data() + size_t(f) * k;
        float* tf = s.back.data() + size_t(f) * k;
        const uint8_t* active = s.active.data() + size_t(f) * m;
        const float* rf = s.r_full.data() + size_t(f) * m;
        float* grad_f = s.grad_full.data() + size_t(f) * m;
        for (size_t c = a + 1; c < np; ++c) {
          const int g = s.present[c];
          if (!active[g]) continue;
          const float* sg = s.sums.data() + size_t(g) * k;
          float* tg = s.back.data() + size_t(g) * k;
          const float rfg = rf[g];
          AddScaledPair<kFixed>(k, rfg, sf, sg, tf, tg);
          grad_f[g] += gr * s.dots[a * np + c];
        }
      }
      model_math::AddRowGradients(b, r, gr, s.back.data(), k, grads);
    }
    for (int f : s.present) s.seen[f] = 0;
    s.present.clear();
  }
  if (grads != nullptr) {
    for (int f = 0; f < m; ++f) {
      for (int g = f + 1; g < m; ++g) {
        const size_t idx = PairIndex(f, g, m);
        // d/dR of R*mask is mask; the mask itself is not trained (zero gradient).
        const float mask = masked ? p.dense[1 + num_pairs + idx] : 1.f;
        grads->dense[1 + idx] += s.grad_full[size_t(f) * m + g] * mask;
      }
    }
  }
  return total;
}

class FwfmModel : public Model {
 public:
  FwfmModel(const ModelOptions& o, bool pruned, int64_t keep_entries)
      : k_(o.k),
        m_(o.num_fields),
        pruned_(pruned),
        keep_entries_(keep_entries),
        init_scale_(o.dense_init_scale),
        normalize_(o.normalize_field_pairs) {}

  std::string name() const override { return pruned_ ? "pruned_fwfm" : "fwfm"; }
  int EmbeddingWidth() const override { return k_; }
  size_t DenseSize() const override { return 1 + NumPairs() * (pruned_ ? 2 : 1); }

  void InitDense(std::span<float> dense, uint64_t seed) const override {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> jitter(0.f, init_scale_);
    dense[0] = 0.f;
    for (size_t j = 0; j < NumPairs(); ++j) dense[1 + j] = 1.f + jitter(rng);
    if (pruned_) {
      for (size_t j = 0; j < NumPairs(); ++j) dense[1 + NumPairs() + j] = 1.f;
    }
  }

  double Compute(const BatchView& b, const ParamView& p, std::span<float> logits,
                 GradView* grads) const override {
    return model_math::WithStaticRank(k_, [&](auto rank) {
      constexpr int K = decltype(rank)::value;
      return FwfmKernel<K>(b, p, k_, m_, pruned_, logits, grads);
    });
  }

  std::string DenseLayout() const override { return pruned_ ? "b, R[P], mask[P]" : "b, R[P]"; }

  // R (times the mask when pruned) as the symmetric m x m matrix with a zero diagonal.
  double ReferenceLogit(const BatchView& b, const ParamView& p, size_t row, int) const override {
    const int m = m_;
    const size_t np = NumPairs();
    std::vector<double> r(size_t(m) * m, 0.0);
    for (int f = 0; f < m; ++f) {
      for (int g = 0; g < m; ++g) {
        if (f == g) continue;
        const size_t idx = PairIndex(std::min(f, g), std::max(f, g), m);
        r[size_t(f) * m + g] =
            pruned_ ? double(p.dense[1 + idx]) * p.dense[1 + np + idx] : p.dense[1 + idx];
      }
    }
    return reference::FieldMatrixLogit(b, p, row, k_, m, r);
  }

  // Gradual magnitude pruning (Zhu & Gupta's cubic ramp, the shape of the structural pruning
  // paper's damped schedule: fast early, slow late): the pruned count grows from 0 at
  // progress 0 to its target at progress 0.5. Pruning is permanent: a masked entry stays masked.
  void AfterDenseUpdate(std::span<float> dense, double progress) const override {
    if (pruned_) Prune(dense, progress);
    if (normalize_) NormalizeFieldPairs(dense);
  }

  // R and V trade scale freely (R*c with V/sqrt(c) is the same model) and only V carries L2, so
  // unregularized R grows and the scores become overconfident (Frappe: test logloss rises from
  // epoch 4 while AUC holds). Keeping mean |R| at 1, its start, removes that direction.
  void NormalizeFieldPairs(std::span<float> dense) const {
    const size_t np = NumPairs();
    float* r = dense.data() + 1;
    const float* mask = pruned_ ? dense.data() + 1 + np : nullptr;
    double sum = 0;
    size_t alive = 0;
    for (size_t j = 0; j < np; ++j) {
      if (mask != nullptr && mask[j] == 0.f) continue;
      sum += std::fabs(r[j]);
      ++alive;
    }
    if (alive == 0 || !(sum > 0)) return;
    const float scale = static_cast<float>(double(alive) / sum);
    for (size_t j = 0; j < np; ++j) r[j] *= scale;
  }

  void Prune(std::span<float> dense, double progress) const {
    const size_t np = NumPairs();
    float* r = dense.data() + 1;
    float* mask = dense.data() + 1 + np;
    const size_t target_alive = KeptAt(progress);
    std::vector<size_t> alive;
    alive.reserve(np);
    for (size_t j = 0; j < np; ++j) {
      if (mask[j] != 0.f) {
        alive.push_back(j);
      } else {
        r[j] = 0.f;
      }
    }
    if (alive.size() <= target_alive) return;
    const size_t drop = alive.size() - target_alive;
    // Smallest magnitudes first; ties broken by index so the result is deterministic.
    std::nth_element(alive.begin(), alive.begin() + drop, alive.end(), [&](size_t a, size_t c) {
      const float fa = std::fabs(r[a]), fc = std::fabs(r[c]);
      return fa < fc || (fa == fc && a < c);
    });
    for (size_t q = 0; q < drop; ++q) {
      mask[alive[q]] = 0.f;
      r[alive[q]] = 0.f;
    }
  }

  size_t DenseParams(std::span<const float> dense) const override {
    if (!pruned_) return dense.size();
    size_t alive = 0;
    for (size_t j = 0; j < NumPairs(); ++j) alive += dense[1 + NumPairs() + j] != 0.f;
    return 1 + alive;
  }

  // Entries of R kept at a given training progress under the schedule.
  size_t KeptAt(double progress) const {
    const size_t np = NumPairs();
    const double t = std::clamp(progress / 0.5, 0.0, 1.0);
    const double ramp = 1.0 - (1.0 - t) * (1.0 - t) * (1.0 - t);
    const auto pruned = static_cast<size_t>(std::llround(double(np - keep_entries_) * ramp));
    return np - pruned;
  }

 private:
  size_t NumPairs() const { return size_t(m_) * (m_ - 1) / 2; }
  int k_;
  int m_;
  bool pruned_;
  size_t keep_entries_;  // target number of surviving R entries (pruned_fwfm)
  float init_scale_;
  bool normalize_;  // keep mean |R| at 1 after each dense update
};

}  // namespace

Result<std::unique_ptr<Model>> NewFwfmModel(const ModelOptions& o) {
  FMPS_RETURN_IF_ERROR(ValidateCommonOptions(o));
  const bool pruned = o.name == "pruned_fwfm";
  const int64_t num_pairs = int64_t(o.num_fields) * (o.num_fields - 1) / 2;
  int64_t keep = num_pairs;
  if (pruned) {
    if (o.keep_entries >= 0) {
      if (o.keep_entries > num_pairs) {
        return Status::InvalidArgument("pruned_fwfm: keep_entries " +
                                       std::to_string(o.keep_entries) + " exceeds the " +
                                       std::to_string(num_pairs) + " field pairs");
      }
      keep = o.keep_entries;
    } else {
      if (!(o.keep >= 0.0 && o.keep <= 1.0)) {
        return Status::InvalidArgument("pruned_fwfm: keep must be in [0, 1], got " +
                                       std::to_string(o.keep));
      }
      keep = std::llround(o.keep * double(num_pairs));
    }
  }
  return std::unique_ptr<Model>(std::make_unique<FwfmModel>(o, pruned, keep));
}

}  // namespace fmps
