// RaFM (rank-aware FM) with nested embeddings: a key of level l_i holds ONE embedding of D_{l_i}
// floats, and its rank-D_p embedding for p < l_i is the prefix of its first D_p floats (the
// "projection" of Algorithm 1 is the coordinate projection). The pair (i, j) interacts through
// the first D_{min(l_i, l_j)} floats of both (eq. 5). A row thus costs D_{l_i} floats on the
// servers instead of the paper's D_1 + ... + D_{l_i}, never more than an FM of rank D_l; see
// docs/models.md for why (on Frappe with k <= 8 the paper's layout cannot beat FM on memory).
//
// Lane d in block q = [D_{q-1}, D_q) is held by exactly the keys of level >= q, so the model is
// the zero-padded sum-square FM over all lanes, and the truncated model B_{1,p} (every pair at
// rank min(p, l_i, l_j)) is the same sum over lanes d < D_p: one pass per row gives all of them.
//
// Training (Algorithm 1 adapted to shared prefixes): the objective is the logloss of B_{1,l} plus,
// for each p < l, the distillation loss logloss(sigmoid(B_{1,p+1}), B_{1,p}) with the larger model
// held fixed (soft label). Lane d in block q thus gets (g + sum_{q<=p<l} (sigmoid(B_{1,p}) -
// sigmoid(B_{1,p+1}))) * x (S_d - x v_d): the top block only the final loss, the prefixes also
// learn to be good small models on their own. Linear weights and the bias follow the final loss.
// The returned logits and loss are those of B_{1,l} (plus bias and linear term).
//
// Dense layout: {b}.
#include <algorithm>
#include <cmath>
#include <vector>

#include "models/model_math.h"
#include "models/reference.h"

namespace fmps {
namespace {

// RaFM rank policy for the servers: one {min_count, width D_q} per level, min_count
// increasing. A feature seen n times gets the largest level whose min_count <= n, i.e.
// argmin_k |log n - log D_k| (RaFM eq. 17): level k+1 starts at n >= sqrt(D_k * D_{k+1})
// (rounded up; ties go to the larger rank). The first level's min_count is 0 (admission is the
// store's business). count_scale c compares n / c with the ranks instead of n (eq. 17 is c = 1):
// the servers count occurrences over all epochs, and with ranks as small as 2..8 eq. 17 puts
// nearly every feature at the top level.
std::vector<RankLevelSpec> RafmLevels(const std::vector<int>& ranks, double count_scale) {
  std::vector<RankLevelSpec> levels;
  for (size_t q = 0; q < ranks.size(); ++q) {
    uint64_t min_count = 0;
    if (q > 0) {
      // |log n - log D_q| < |log n - log D_{q-1}| iff n > sqrt(D_{q-1} D_q); ties go up.
      const double geometric_mean = std::sqrt(double(ranks[q - 1]) * ranks[q]);
      min_count = uint64_t(std::ceil(count_scale * geometric_mean - 1e-9));
    }
    levels.push_back({min_count, uint32_t(ranks[q])});  // nested: the row holds D_q floats
  }
  return levels;
}

using model_math::FinishRow;
using model_math::Sigmoid;

struct RafmScratch {
  std::vector<uint8_t> levels;  // [num_keys]
  std::vector<float> sum;       // [D_l] S_d = sum_i x_i v_id over keys holding lane d
  std::vector<float> sq;        // [D_l] Q_d = sum_i x_i^2 v_id^2, per lane so the loop vectorises
  std::vector<double> logit;    // [levels + 1] logit of B_{1,p}, p = 1..l
  std::vector<float> coef;      // [levels + 1] gradient factor of the lanes of block q
};

class RafmModel : public Model {
 public:
  RafmModel(std::vector<int> ranks, float distill_weight, double count_scale)
      : ranks_(std::move(ranks)), distill_weight_(distill_weight), count_scale_(count_scale) {
    begin_.push_back(0);
    for (int d : ranks_) begin_.push_back(d);
  }
  std::string name() const override { return "rafm"; }
  int EmbeddingWidth() const override { return ranks_.back(); }
  size_t DenseSize() const override { return 1; }
  void InitDense(std::span<float> dense, uint64_t) const override { dense[0] = 0.f; }

  std::vector<std::pair<std::string, std::string>> ShapeFlags() const override {
    std::string ranks;
    for (int r : ranks_) ranks += (ranks.empty() ? "" : ",") + std::to_string(r);
    return {{"rafm_ranks", ranks}};
  }

  // Eq. 17 on the servers' counts (RafmLevels).
  std::vector<RankLevelSpec> RankLevels() const override {
    return RafmLevels(ranks_, count_scale_);
  }

  // Pair (i, j) uses the first D_q floats of both rows (nested), q = min(l_i, l_j, level_cap).
  double ReferenceLogit(const BatchView& b, const ParamView& p, size_t row,
                        int level_cap) const override {
    const int nl = int(ranks_.size());
    const size_t width = size_t(ranks_.back());
    auto level_of = [&](uint32_t i) { return p.widths == nullptr ? nl : LevelOf(p.widths[i]); };
    return reference::PairwiseLogit(b, p, row, [&](uint32_t a, uint32_t c) {
      const uint32_t i = b.index[a], j = b.index[c];
      int level = std::min(level_of(i), level_of(j));
      if (level == 0) return 0.0;
      if (level_cap > 0) level = std::min(level, level_cap);
      return reference::Dot(p.V + i * width, p.V + j * width, ranks_[level - 1]);
    });
  }

  // Level of a key with `width` real floats: the number of ranks it reaches.
  int LevelOf(int width) const {
    int level = 0;
    while (level < int(ranks_.size()) && ranks_[level] <= width) ++level;
    return level;
  }

  double Compute(const BatchView& b, const ParamView& p, std::span<float> logits,
                 GradView* grads) const override {
    const int nl = int(ranks_.size());
    const int width = ranks_.back();
    thread_local RafmScratch s;
    s.levels.resize(b.num_keys);
    for (size_t i = 0; i < b.num_keys; ++i) {
      s.levels[i] = uint8_t(p.widths == nullptr ? nl : LevelOf(p.widths[i]));
    }
    s.sum.resize(width);
    s.sq.resize(width);
    s.logit.resize(nl + 1);
    s.coef.resize(nl + 2);
    const bool train = grads != nullptr && b.labels != nullptr;

    double total = 0;
    for (size_t r = 0; r < b.rows; ++r) {
      const uint32_t begin = b.offsets[r], end = b.offsets[r + 1];
      std::fill(s.sum.begin(), s.sum.end(), 0.f);
      std::fill(s.sq.begin(), s.sq.end(), 0.f);
      double lin = p.dense[0];
      for (uint32_t e = begin; e < end; ++e) {
        const uint32_t i = b.index[e];
        const float x = b.values[e];
        lin += double(p.w[i]) * x;
        const int level = s.levels[i];
        if (level == 0) continue;
        const float* v = p.V + size_t(i) * width;
        for (int d = 0; d < ranks_[level - 1]; ++d) {
          const float t = x * v[d];
          s.sum[d] += t;
          s.sq[d] += t * t;
        }
      }
      double phi = 0;
      for (int level = 1; level <= nl; ++level) {
        float a = 0.f;
        for (int d = begin_[level - 1]; d < begin_[level]; ++d) a += s.sum[d] * s.sum[d] - s.sq[d];
        phi += 0.5 * double(a);
        s.logit[level] = lin + phi;
      }
      float g;
      total += FinishRow(b, r, s.logit[nl], logits, &g);
      if (!train) continue;
      // coef[q] = g + w * sum_{q <= p < l} (sigmoid(B_{1,p}) - sigmoid(B_{1,p+1})), top down.
      s.coef[nl] = g;
      for (int q = nl - 1; q >= 1; --q) {
        s.coef[q] =
            s.coef[q + 1] + distill_weight_ * float(Sigmoid(s.logit[q]) - Sigmoid(s.logit[q + 1]));
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
          const float c = s.coef[q] * x;
          if (c == 0.f) continue;
          for (int d = begin_[q - 1]; d < begin_[q]; ++d) gv[d] += c * (s.sum[d] - x * v[d]);
        }
      }
    }
    return total;
  }

 private:
  std::vector<int> ranks_;  // D_1 < ... < D_l
  std::vector<int> begin_;  // block q is lanes [begin_[q-1], begin_[q]) = [D_{q-1}, D_q), D_0 = 0
  float distill_weight_;    // weight of the distillation terms (ModelOptions::rafm_distill_weight)
  double count_scale_;      // ModelOptions::rafm_count_scale
};

}  // namespace

Result<std::unique_ptr<Model>> NewRafmModel(const ModelOptions& o) {
  FMPS_RETURN_IF_ERROR(ValidateCommonOptions(o));
  std::vector<int> ranks = o.rafm_ranks;
  if (ranks.empty()) return Status::InvalidArgument("rafm: rafm_ranks is empty");
  if (ranks.size() > 255) return Status::InvalidArgument("rafm: at most 255 levels");
  for (size_t q = 0; q < ranks.size(); ++q) {
    if (ranks[q] < 1 || (q > 0 && ranks[q] <= ranks[q - 1])) {
      return Status::InvalidArgument("rafm: rafm_ranks must be positive and strictly increasing");
    }
  }
  if (ranks.back() > 65535) return Status::InvalidArgument("rafm: largest rank exceeds 65535");
  if (!(o.rafm_distill_weight >= 0.f && o.rafm_distill_weight <= 1e3f)) {
    return Status::InvalidArgument("rafm: rafm_distill_weight must be in [0, 1000]");
  }
  if (!(o.rafm_count_scale > 0)) {
    return Status::InvalidArgument("rafm: rafm_count_scale must be > 0");
  }
  return std::unique_ptr<Model>(
      std::make_unique<RafmModel>(std::move(ranks), o.rafm_distill_weight, o.rafm_count_scale));
}

}  // namespace fmps
