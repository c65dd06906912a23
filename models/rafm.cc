// RaFM (rank-aware FM): a key of level l_i holds blocks 1..l_i (block L has D_L floats, laid out
// one after another), and the pair (i, j) interacts through the blocks of level min(l_i, l_j)
// (eq. 5). With F_L = {keys with level >= L} and A(L, F) = pairs among F on block L (sum-square
// trick), the truncated models are
//   B_{1,p} = sum_{L<p} [A(L, F_L) - A(L, F_{L+1})] + A(p, F_p),
// and the model is B_{1,l}: one pass per row gives all of them in O(sum_L D_L |F_L|).
//
// Training (Algorithm 1 of the paper): a key's block at its own level is a free variable and gets
// the gradient of logloss(y, B_{1,l}); its lower blocks p < l_i are dependent variables, the
// "projections" of the higher-rank embedding, and get the gradient of the distillation loss
// logloss(sigmoid(B_{1,p+1}), B_{1,p}) (soft label from the next larger model, held fixed), i.e.
// (sigmoid(B_{1,p}) - sigmoid(B_{1,p+1})) * dB_{1,p}/dv. Linear weights and the bias follow the
// final loss. Both learning rates of the paper (rho_d, rho_f) are the server's one rate.
// The returned logits and loss are those of B_{1,l} (plus bias and linear term).
//
// Dense layout: {b}.
#include <algorithm>
#include <cmath>
#include <vector>

#include "models/model_math.h"

namespace fmps {
namespace {

using model_math::FinishRow;
using model_math::Sigmoid;

struct RafmScratch {
  std::vector<uint8_t> levels;  // [num_keys]
  std::vector<float> sum_all;   // [width] per lane sums over keys whose level covers the block
  std::vector<float> sq_all;
  std::vector<float> sum_up;    // [width] same over keys of strictly higher level
  std::vector<float> sq_up;
  std::vector<double> logit;    // [levels + 1] logit of B_{1,p}, p = 1..l
  std::vector<float> coef;      // [levels + 1] gradient factor of block p
};

class RafmModel : public Model {
 public:
  explicit RafmModel(std::vector<int> ranks) : ranks_(std::move(ranks)) {
    cum_.push_back(0);
    for (int d : ranks_) cum_.push_back(cum_.back() + d);
  }
  std::string name() const override { return "rafm"; }
  int EmbeddingWidth() const override { return cum_.back(); }
  size_t DenseSize() const override { return 1; }
  void InitDense(std::span<float> dense, uint64_t) const override { dense[0] = 0.f; }

  // Level of a key with `width` real floats: the number of whole blocks it holds.
  int LevelOf(int width) const {
    int level = 0;
    while (level < int(ranks_.size()) && cum_[level + 1] <= width) ++level;
    return level;
  }

  double Compute(const BatchView& b, const ParamView& p, std::span<float> logits,
                 GradView* grads) const override {
    const int nl = int(ranks_.size());
    const int width = cum_.back();
    thread_local RafmScratch s;
    s.levels.resize(b.num_keys);
    for (size_t i = 0; i < b.num_keys; ++i) {
      s.levels[i] = uint8_t(p.widths == nullptr ? nl : LevelOf(p.widths[i]));
    }
    s.sum_all.resize(width);
    s.sq_all.resize(width);
    s.sum_up.resize(width);
    s.sq_up.resize(width);
    s.logit.resize(nl + 1);
    s.coef.resize(nl + 1);
    const bool train = grads != nullptr && b.labels != nullptr;

    double total = 0;
    for (size_t r = 0; r < b.rows; ++r) {
      const uint32_t begin = b.offsets[r], end = b.offsets[r + 1];
      std::fill(s.sum_all.begin(), s.sum_all.end(), 0.f);
      std::fill(s.sq_all.begin(), s.sq_all.end(), 0.f);
      std::fill(s.sum_up.begin(), s.sum_up.end(), 0.f);
      std::fill(s.sq_up.begin(), s.sq_up.end(), 0.f);
      double lin = p.dense[0];
      for (uint32_t e = begin; e < end; ++e) {
        const uint32_t i = b.index[e];
        const float x = b.values[e];
        lin += double(p.w[i]) * x;
        const int level = s.levels[i];
        if (level == 0) continue;
        const float* v = p.V + size_t(i) * width;
        // Blocks 1..level see the key in F_L; blocks 1..level-1 also in F_{L+1}.
        const int below = cum_[level - 1];
        for (int d = 0; d < below; ++d) {
          const float t = x * v[d];
          s.sum_all[d] += t;
          s.sq_all[d] += t * t;
          s.sum_up[d] += t;
          s.sq_up[d] += t * t;
        }
        for (int d = below; d < cum_[level]; ++d) {
          const float t = x * v[d];
          s.sum_all[d] += t;
          s.sq_all[d] += t * t;
        }
      }
      // prefix = sum_{L<p} [A(L, F_L) - A(L, F_{L+1})]
      double prefix = 0;
      for (int level = 1; level <= nl; ++level) {
        float a_all = 0.f, a_up = 0.f;
        for (int d = cum_[level - 1]; d < cum_[level]; ++d) {
          a_all += s.sum_all[d] * s.sum_all[d] - s.sq_all[d];
          a_up += s.sum_up[d] * s.sum_up[d] - s.sq_up[d];
        }
        s.logit[level] = lin + prefix + 0.5 * a_all;
        prefix += 0.5 * (double(a_all) - a_up);
      }
      float g;
      total += FinishRow(b, r, s.logit[nl], logits, &g);
      if (!train) continue;
      for (int level = 1; level < nl; ++level) {
        s.coef[level] = float(Sigmoid(s.logit[level]) - Sigmoid(s.logit[level + 1]));
      }
      model_math::AddLinearGrad(b, r, g, grads);
      for (uint32_t e = begin; e < end; ++e) {
        const uint32_t i = b.index[e];
        const int level = s.levels[i];
        if (level == 0) continue;
        const float x = b.values[e];
        const float* v = p.V + size_t(i) * width;
        float* gv = grads->V + size_t(i) * width;
        for (int q = 1; q <= level; ++q) {
          const float c = (q == level ? g : s.coef[q]) * x;
          if (c == 0.f) continue;
          for (int d = cum_[q - 1]; d < cum_[q]; ++d) gv[d] += c * (s.sum_all[d] - x * v[d]);
        }
      }
    }
    return total;
  }

 private:
  std::vector<int> ranks_;  // D_1 < ... < D_l
  std::vector<int> cum_;    // cum_[L] = D_1 + ... + D_L, cum_[0] = 0
};

}  // namespace

Result<std::unique_ptr<Model>> NewRafmModel(const ModelOptions& o) {
  FMPS_RETURN_IF_ERROR(ValidateCommonOptions(o));
  std::vector<int> ranks = o.rafm_ranks.empty() ? std::vector<int>{4, 8, 16} : o.rafm_ranks;
  if (ranks.size() > 255) return Status::InvalidArgument("rafm: at most 255 levels");
  int total = 0;
  for (size_t q = 0; q < ranks.size(); ++q) {
    if (ranks[q] < 1 || (q > 0 && ranks[q] <= ranks[q - 1])) {
      return Status::InvalidArgument("rafm: rafm_ranks must be positive and strictly increasing");
    }
    total += ranks[q];
  }
  if (total > 65535) return Status::InvalidArgument("rafm: sum of ranks exceeds 65535");
  return std::unique_ptr<Model>(std::make_unique<RafmModel>(std::move(ranks)));
}

std::vector<std::pair<uint64_t, uint32_t>> RafmLevels(const std::vector<int>& ranks_in) {
  const std::vector<int> ranks = ranks_in.empty() ? std::vector<int>{4, 8, 16} : ranks_in;
  std::vector<std::pair<uint64_t, uint32_t>> levels;
  uint32_t cum = 0;
  for (size_t q = 0; q < ranks.size(); ++q) {
    cum += uint32_t(ranks[q]);
    uint64_t min_count = 0;
    if (q > 0) {
      // |log n - log D_q| < |log n - log D_{q-1}| iff n > sqrt(D_{q-1} D_q); ties go up.
      min_count = uint64_t(std::ceil(std::sqrt(double(ranks[q - 1]) * ranks[q]) - 1e-9));
    }
    levels.emplace_back(min_count, cum);
  }
  return levels;
}

}  // namespace fmps
