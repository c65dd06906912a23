// FM: logit = b + sum_i w_i x_i + 0.5 * sum_d [(sum_i v_id x_i)^2 - sum_i v_id^2 x_i^2].
// The hot path of the system: one pass over a row's entries builds the per-dimension sums S and
// Q, a second pass adds the embedding gradients. The rank is a template parameter for common
// values so the loops over d have a fixed trip count and vectorise.
#include <algorithm>
#include <cstring>
#include <vector>

#include "models/model_math.h"
#include "models/reference.h"

namespace fmps {
namespace {

using model_math::FinishRow;

// Eight floats as one value: the compiler maps it to one AVX register (two SSE ones without
// -march), so a row of rank 8, 16 or 32 is one, two or four vector operations per entry. Without
// it GCC kept every loop over d scalar (a gradient row may alias the sums or an embedding row);
// what that cost is in docs/performance-log.md.
using Float8 = float __attribute__((vector_size(32)));

// Without AVX (FMPS_NATIVE=OFF, the portable build) GCC notes at every use that passing a 32-byte
// vector by value has a different ABI than with AVX; Float8 never leaves this file (its functions
// are local and inlined), so no call crosses code built with other flags. Silenced for the file.
#pragma GCC diagnostic ignored "-Wpsabi"
inline Float8 Load8(const float* p) {
  Float8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void Store8(float* p, Float8 v) { std::memcpy(p, &v, sizeof v); }

// A row's sums S_d = sum_i x_i v_id and Q_d = sum_i (x_i v_id)^2, and the embedding gradient they
// give, for a rank that is a multiple of 8 known at compile time: the sums live in registers.
template <int kRank>
class VectorSums {
 public:
  static_assert(kRank > 0 && kRank % 8 == 0);
  explicit VectorSums(int) {}
  int rank() const { return kRank; }
  void Clear() {
    for (int c = 0; c < kChunks; ++c) sum_[c] = sq_[c] = Float8{};
  }
  void Add(const float* v, float x) {
    for (int c = 0; c < kChunks; ++c) {
      const Float8 t = x * Load8(v + 8 * c);
      sum_[c] += t;
      sq_[c] += t * t;
    }
  }
  float Phi() const {  // sum_d S_d^2 - Q_d, in the order of d
    float phi = 0.f;
    for (int c = 0; c < kChunks; ++c) {
      for (int d = 0; d < 8; ++d) phi += sum_[c][d] * sum_[c][d] - sq_[c][d];
    }
    return phi;
  }
  // gv += gx * (S - x v) over the whole rank.
  void AddGradient(float* gv, const float* v, float x, float gx) const {
    for (int c = 0; c < kChunks; ++c) {
      Store8(gv + 8 * c, Load8(gv + 8 * c) + gx * (sum_[c] - x * Load8(v + 8 * c)));
    }
  }

 private:
  static constexpr int kChunks = kRank / 8;
  Float8 sum_[kChunks], sq_[kChunks];
};

// The same for any rank.
class ScalarSums {
 public:
  explicit ScalarSums(int k) : k_(k), sum_(k), sq_(k) {}
  int rank() const { return k_; }
  void Clear() {
    std::fill(sum_.begin(), sum_.end(), 0.f);
    std::fill(sq_.begin(), sq_.end(), 0.f);
  }
  void Add(const float* v, float x) {
    for (int d = 0; d < k_; ++d) {
      const float t = x * v[d];
      sum_[d] += t;
      sq_[d] += t * t;
    }
  }
  float Phi() const {
    float phi = 0.f;
    for (int d = 0; d < k_; ++d) phi += sum_[d] * sum_[d] - sq_[d];
    return phi;
  }
  void AddGradient(float* gv, const float* v, float x, float gx) const {
    for (int d = 0; d < k_; ++d) gv[d] += gx * (sum_[d] - x * v[d]);
  }

 private:
  int k_;
  std::vector<float> sum_, sq_;
};

template <typename Sums>
double FmKernel(const BatchView& b, const ParamView& p, int k_dyn, std::span<float> logits,
                GradView* grads) {
  Sums sums(k_dyn);
  const int k = sums.rank();
  double total = 0;
  for (size_t r = 0; r < b.rows; ++r) {
    const uint32_t begin = b.offsets[r], end = b.offsets[r + 1];
    sums.Clear();
    // The linear part in float, like the sums: a double chain (a conversion and a dependent add
    // per entry) was the loop's bottleneck.
    float linear = 0.f;
    for (uint32_t e = begin; e < end; ++e) {
      const uint32_t i = b.index[e];
      const float x = b.values[e];
      linear += p.w[i] * x;
      sums.Add(p.V + size_t(i) * k, x);
    }
    const double z = double(p.dense[0]) + linear + 0.5 * sums.Phi();
    float g;
    total += FinishRow(b, r, z, logits, &g);
    if (grads == nullptr || g == 0.f) continue;
    grads->dense[0] += g;
    for (uint32_t e = begin; e < end; ++e) {
      const uint32_t i = b.index[e];
      const float x = b.values[e];
      const float gx = g * x;
      grads->w[i] += gx;
      // Every key's row in full, padding included: the padding's gradient is not pushed (see
      // GradView), and a branch on the width mispredicted on every key without an embedding.
      sums.AddGradient(grads->V + size_t(i) * k, p.V + size_t(i) * k, x, gx);
    }
  }
  return total;
}

// FM's cached context: the context's bias + linear term and its sums S^C_d = sum x v_d and
// Q^C_d = sum (x v_d)^2 once; per candidate its own entries on top, O(|I| k).
class FmContextScorer : public ContextScorer {
 public:
  FmContextScorer(int k, const FrozenParams& params) : k_(k), params_(params) {}

  void Score(FeatureSpan context, const Minibatch& candidates, float* logits) const override {
    model_math::WithStaticRank(
        k_, [&](auto rank) { ScoreRank<decltype(rank)::value>(context, candidates, logits); });
  }

 private:
  struct Scratch {
    std::vector<float> ctx;  // [2k] S^C then Q^C
    std::vector<float> row;  // [2k] S then Q of one candidate row
    LookedUpRows context, candidates;
  };

  template <int kFixed>
  void ScoreRank(FeatureSpan context, const Minibatch& candidates, float* logits) const {
    const int k = kFixed > 0 ? kFixed : k_;
    thread_local Scratch t;
    t.context.Get(*params_.rows, context.keys);
    t.candidates.Get(*params_.rows, candidates.keys);
    t.ctx.assign(2 * size_t(k), 0.f);
    float* ctx_sum = t.ctx.data();
    float* ctx_sq = ctx_sum + k;
    double ctx_linear = params_.dense[0];
    for (size_t e = 0; e < context.keys.size(); ++e) {
      const float* v = t.context.v[e];
      const float x = context.values[e];
      ctx_linear += double(t.context.w[e]) * x;
      for (int d = 0; d < k; ++d) {
        const float tv = x * v[d];
        ctx_sum[d] += tv;
        ctx_sq[d] += tv * tv;
      }
    }
    t.row.resize(2 * size_t(k));
    float* sum = t.row.data();
    float* sq = sum + k;
    const size_t rows = candidates.offsets.size() - 1;
    for (size_t r = 0; r < rows; ++r) {
      std::copy(ctx_sum, ctx_sum + 2 * k, sum);  // S and Q start from the context's
      double z = ctx_linear;
      for (uint32_t e = candidates.offsets[r]; e < candidates.offsets[r + 1]; ++e) {
        const float* v = t.candidates.v[e];
        const float x = candidates.values[e];
        z += double(t.candidates.w[e]) * x;
        for (int d = 0; d < k; ++d) {
          const float tv = x * v[d];
          sum[d] += tv;
          sq[d] += tv * tv;
        }
      }
      float phi = 0.f;
      for (int d = 0; d < k; ++d) phi += sum[d] * sum[d] - sq[d];
      logits[r] = static_cast<float>(z + 0.5 * phi);
    }
  }

  int k_;
  FrozenParams params_;
};

class FmModel : public Model {
 public:
  explicit FmModel(const ModelOptions& o) : k_(o.k) {}
  std::string name() const override { return "fm"; }
  int EmbeddingWidth() const override { return k_; }
  size_t DenseSize() const override { return 1; }
  void InitDense(std::span<float> dense, uint64_t) const override { dense[0] = 0.f; }

  double Compute(const BatchView& b, const ParamView& p, std::span<float> logits,
                 GradView* grads) const override {
    return model_math::WithStaticRank(k_, [&](auto rank) {
      constexpr int K = decltype(rank)::value;
      if constexpr (K > 0 && K % 8 == 0) {
        return FmKernel<VectorSums<K>>(b, p, k_, logits, grads);
      } else {
        return FmKernel<ScalarSums>(b, p, k_, logits, grads);
      }
    });
  }

  std::unique_ptr<ContextScorer> MakeContextScorer(const FrozenParams& params) const override {
    return std::make_unique<FmContextScorer>(k_, params);
  }

  double ReferenceLogit(const BatchView& b, const ParamView& p, size_t row, int) const override {
    const int k = k_;
    return reference::PairwiseLogit(b, p, row, [&](uint32_t a, uint32_t c) {
      return reference::Dot(p.V + size_t(b.index[a]) * k, p.V + size_t(b.index[c]) * k, k);
    });
  }

 private:
  int k_;
};

}  // namespace

Result<std::unique_ptr<Model>> NewFmModel(const ModelOptions& o) {
  FMPS_RETURN_IF_ERROR(ValidateCommonOptions(o));
  return std::unique_ptr<Model>(std::make_unique<FmModel>(o));
}

}  // namespace fmps
