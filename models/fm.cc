// FM: logit = b + sum_i w_i x_i + 0.5 * sum_d [(sum_i v_id x_i)^2 - sum_i v_id^2 x_i^2].
// The hot path of the system: one pass over a row's entries builds the per-dimension sums S and
// Q, a second pass adds the embedding gradients. The rank is a template parameter for common
// values so the loops over d have a fixed trip count and vectorise.
#include <cstring>
#include <vector>

#include "models/model_math.h"

namespace fmps {
namespace {

using model_math::FinishRow;

// Eight floats as one value: the compiler maps it to one AVX register (two SSE ones without
// -march), so a row of rank 8, 16 or 32 is one, two or four vector operations per entry. Without
// it GCC kept every loop over d scalar (a gradient row may alias the sums or an embedding row):
// this kernel was 14% of the P1 job's CPU, about 10 ns per entry.
using Float8 = float __attribute__((vector_size(32)));

inline Float8 Load8(const float* p) {
  Float8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline void Store8(float* p, Float8 v) { std::memcpy(p, &v, sizeof v); }

// Ranks that are a multiple of 8 known at compile time: the sums live in registers.
template <int kRank>
double FmKernel8(const BatchView& b, const ParamView& p, std::span<float> logits, GradView* grads) {
  static_assert(kRank > 0 && kRank % 8 == 0);
  constexpr int kChunks = kRank / 8;
  double total = 0;
  for (size_t r = 0; r < b.rows; ++r) {
    const uint32_t begin = b.offsets[r], end = b.offsets[r + 1];
    Float8 sum[kChunks] = {}, sq[kChunks] = {};  // S_d = sum_i x_i v_id, Q_d = sum_i (x_i v_id)^2
    double z = p.dense[0];
    for (uint32_t e = begin; e < end; ++e) {
      const uint32_t i = b.index[e];
      const float x = b.values[e];
      z += double(p.w[i]) * x;
      const float* v = p.V + size_t(i) * kRank;
      for (int c = 0; c < kChunks; ++c) {
        const Float8 t = x * Load8(v + 8 * c);
        sum[c] += t;
        sq[c] += t * t;
      }
    }
    float phi = 0.f;
    for (int c = 0; c < kChunks; ++c) {
      for (int d = 0; d < 8; ++d) phi += sum[c][d] * sum[c][d] - sq[c][d];
    }
    z += 0.5 * phi;
    float g;
    total += FinishRow(b, r, z, logits, &g);
    if (grads == nullptr || g == 0.f) continue;
    grads->dense[0] += g;
    for (uint32_t e = begin; e < end; ++e) {
      const uint32_t i = b.index[e];
      const float x = b.values[e];
      const float gx = g * x;
      grads->w[i] += gx;
      const float* v = p.V + size_t(i) * kRank;
      float* gv = grads->V + size_t(i) * kRank;
      if (p.widths != nullptr && p.widths[i] < kRank) {
        // Keys narrower than k get no gradient in their padding (the server ignores it anyway).
        for (int d = 0; d < p.widths[i]; ++d) gv[d] += gx * (sum[d / 8][d % 8] - x * v[d]);
        continue;
      }
      for (int c = 0; c < kChunks; ++c) {
        Store8(gv + 8 * c, Load8(gv + 8 * c) + gx * (sum[c] - x * Load8(v + 8 * c)));
      }
    }
  }
  return total;
}

// Any rank.
double FmKernel(const BatchView& b, const ParamView& p, int k, std::span<float> logits,
                GradView* grads) {
  thread_local std::vector<float> scratch;
  scratch.resize(2 * size_t(k));
  float* sum = scratch.data();     // S_d = sum_i x_i v_id
  float* sq = scratch.data() + k;  // Q_d = sum_i x_i^2 v_id^2, per lane so the loop vectorises
  double total = 0;
  for (size_t r = 0; r < b.rows; ++r) {
    const uint32_t begin = b.offsets[r], end = b.offsets[r + 1];
    for (int d = 0; d < k; ++d) sum[d] = sq[d] = 0.f;
    double z = p.dense[0];
    for (uint32_t e = begin; e < end; ++e) {
      const uint32_t i = b.index[e];
      const float x = b.values[e];
      z += double(p.w[i]) * x;
      const float* v = p.V + size_t(i) * k;
      for (int d = 0; d < k; ++d) {
        const float t = x * v[d];
        sum[d] += t;
        sq[d] += t * t;
      }
    }
    float phi = 0.f;
    for (int d = 0; d < k; ++d) phi += sum[d] * sum[d] - sq[d];
    z += 0.5 * phi;
    float g;
    total += FinishRow(b, r, z, logits, &g);
    if (grads == nullptr || g == 0.f) continue;
    grads->dense[0] += g;
    for (uint32_t e = begin; e < end; ++e) {
      const uint32_t i = b.index[e];
      const float x = b.values[e];
      const float gx = g * x;
      grads->w[i] += gx;
      const float* v = p.V + size_t(i) * k;
      float* gv = grads->V + size_t(i) * k;
      // Keys narrower than k get no gradient in their padding (the server ignores it anyway).
      const int width = (p.widths != nullptr && p.widths[i] < k) ? p.widths[i] : k;
      for (int d = 0; d < width; ++d) gv[d] += gx * (sum[d] - x * v[d]);
    }
  }
  return total;
}

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
        return FmKernel8<K>(b, p, logits, grads);
      } else {
        return FmKernel(b, p, k_, logits, grads);
      }
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
