// FFM: a key holds one k-float block per field; phi = sum_{i<j} <v_{i,f(j)}, v_{j,f(i)}> x_i x_j
// over all entry pairs, same-field pairs included. Per row, W_{f,g} = sum_{i in f} x_i v_{i,g}
// over the fields present gives
//   phi = sum_{f<g} <W_{f,g}, W_{g,f}> + 0.5 * sum_f (||W_{f,f}||^2 - sum_{i in f} x_i^2
//   ||v_{i,f}||^2),
// O(nnz * m' * k) for m' fields present instead of O(nnz^2 k) when fields hold several features.
//
// Dense layout: {b}.
#include <algorithm>
#include <vector>

#include "models/model_math.h"
#include "models/reference.h"

namespace fmps {
namespace {

using model_math::FinishRow;

struct FfmScratch {
  std::vector<float> cross;   // [m' * m' * k] W_{f,g} by position of f, g among present fields
  std::vector<int> position;  // [m] position of a field in `present`, -1 if absent
  std::vector<int> present;
};

class FfmModel : public Model {
 public:
  explicit FfmModel(const ModelOptions& o) : k_(o.k), m_(o.num_fields) {}
  std::string name() const override { return "ffm"; }
  int EmbeddingWidth() const override { return k_ * m_; }
  size_t DenseSize() const override { return 1; }
  void InitDense(std::span<float> dense, uint64_t) const override { dense[0] = 0.f; }

  // Pair (i, j) uses i's block for j's field and j's block for i's field.
  double ReferenceLogit(const BatchView& b, const ParamView& p, size_t row, int) const override {
    const int k = k_;
    const size_t width = size_t(m_) * k;
    return reference::PairwiseLogit(b, p, row, [&](uint32_t a, uint32_t c) {
      const uint32_t i = b.index[a], j = b.index[c];
      return reference::Dot(p.V + i * width + size_t(b.fields[c]) * k,
                            p.V + j * width + size_t(b.fields[a]) * k, k);
    });
  }

  double Compute(const BatchView& b, const ParamView& p, std::span<float> logits,
                 GradView* grads) const override {
    const int k = k_, m = m_;
    const size_t width = size_t(k) * m;
    thread_local FfmScratch s;
    s.position.assign(m, -1);
    s.present.clear();
    double total = 0;
    for (size_t r = 0; r < b.rows; ++r) {
      const uint32_t begin = b.offsets[r], end = b.offsets[r + 1];
      for (uint32_t e = begin; e < end; ++e) {
        const int f = b.fields[e];
        if (s.position[f] < 0) {
          s.position[f] = int(s.present.size());
          s.present.push_back(f);
        }
      }
      const size_t np = s.present.size();
      s.cross.assign(np * np * k, 0.f);
      double z = p.dense[0];
      float self = 0.f;  // sum_i x_i^2 ||v_{i,f(i)}||^2
      for (uint32_t e = begin; e < end; ++e) {
        const uint32_t i = b.index[e];
        const float x = b.values[e];
        z += double(p.w[i]) * x;
        const float* v = p.V + size_t(i) * width;
        float* wf = s.cross.data() + size_t(s.position[b.fields[e]]) * np * k;
        for (size_t c = 0; c < np; ++c) {
          const float* vg = v + size_t(s.present[c]) * k;
          float* w = wf + c * k;
          for (int d = 0; d < k; ++d) w[d] += x * vg[d];
        }
        const float* vf = v + size_t(b.fields[e]) * k;
        for (int d = 0; d < k; ++d) self += x * x * vf[d] * vf[d];
      }
      double phi = -0.5 * self;
      for (size_t a = 0; a < np; ++a) {
        const float* waa = Cross(s, np, k, a, a);
        float diag = 0.f;
        for (int d = 0; d < k; ++d) diag += waa[d] * waa[d];
        phi += 0.5 * diag;
        for (size_t c = a + 1; c < np; ++c) {
          const float* wac = Cross(s, np, k, a, c);
          const float* wca = Cross(s, np, k, c, a);
          float dot = 0.f;
          for (int d = 0; d < k; ++d) dot += wac[d] * wca[d];
          phi += dot;
        }
      }
      z += phi;
      float g;
      total += FinishRow(b, r, z, logits, &g);
      if (grads != nullptr && g != 0.f) {
        model_math::AddLinearGrad(b, r, g, grads);
        for (uint32_t e = begin; e < end; ++e) {
          const uint32_t i = b.index[e];
          const float gx = g * b.values[e];
          const float x = b.values[e];
          const size_t a = s.position[b.fields[e]];
          const float* v = p.V + size_t(i) * width;
          float* gv = grads->V + size_t(i) * width;
          // d phi / d v_{i,g} = x_i W_{g,f(i)}, minus i's own term when g = f(i).
          for (size_t c = 0; c < np; ++c) {
            const size_t off = size_t(s.present[c]) * k;
            const float* wca = Cross(s, np, k, c, a);
            if (c == a) {
              for (int d = 0; d < k; ++d) gv[off + d] += gx * (wca[d] - x * v[off + d]);
            } else {
              for (int d = 0; d < k; ++d) gv[off + d] += gx * wca[d];
            }
          }
        }
      }
      for (int f : s.present) s.position[f] = -1;
      s.present.clear();
    }
    return total;
  }

 private:
  static const float* Cross(const FfmScratch& s, size_t np, int k, size_t a, size_t c) {
    return s.cross.data() + (a * np + c) * k;
  }
  int k_;
  int m_;
};

}  // namespace

Result<std::unique_ptr<Model>> NewFfmModel(const ModelOptions& o) {
  FMPS_RETURN_IF_ERROR(ValidateCommonOptions(o));
  if (int64_t(o.k) * o.num_fields > 65535) {
    return Status::InvalidArgument("ffm: k * num_fields exceeds the 65535-float embedding limit");
  }
  return std::unique_ptr<Model>(std::make_unique<FfmModel>(o));
}

}  // namespace fmps
