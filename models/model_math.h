// Small shared pieces of the model kernels: the numerically stable logloss, the per-row loss and
// its gradient factor, and the factories the registry calls. Internal to models/.
#ifndef FMPS_MODELS_MODEL_MATH_H_
#define FMPS_MODELS_MODEL_MATH_H_

#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include "models/model.h"
#include "models/static_rank.h"

namespace fmps {
namespace model_math {

// Both from e = exp(-|z|), which never overflows; FinishRow computes it once for the two.
inline double SigmoidOf(double z, double e) { return z >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e); }
// logloss(y, sigmoid(z)) = log(1 + exp(-|z|)) + max(z, 0) - y * z, exact for any z; y may be soft.
inline double LogLossOf(double z, double y, double e) {
  return std::log1p(e) + (z > 0 ? z : 0.0) - y * z;
}
inline double Sigmoid(double z) { return SigmoidOf(z, std::exp(-std::fabs(z))); }
inline double LogLoss(double z, double y) { return LogLossOf(z, y, std::exp(-std::fabs(z))); }

// Bias plus linear term of row r.
inline double LinearLogit(const BatchView& b, const ParamView& p, size_t r) {
  double z = p.dense[0];
  for (uint32_t e = b.offsets[r]; e < b.offsets[r + 1]; ++e)
    z += double(p.w[b.index[e]]) * b.values[e];
  return z;
}

// Adds g * d(linear logit)/d(w, bias) into grads.
inline void AddLinearGrad(const BatchView& b, size_t r, float g, GradView* grads) {
  grads->dense[0] += g;
  for (uint32_t e = b.offsets[r]; e < b.offsets[r + 1]; ++e)
    grads->w[b.index[e]] += g * b.values[e];
}

// Records row r's logit; returns its loss and sets *g to d loss / d logit (0 without labels).
inline double FinishRow(const BatchView& b, size_t r, double z, std::span<float> logits, float* g) {
  logits[r] = static_cast<float>(z);
  if (b.labels == nullptr) {
    *g = 0.f;
    return 0.0;
  }
  const double y = b.labels[r];
  const double e = std::exp(-std::fabs(z));  // one exp for the gradient and the loss
  *g = static_cast<float>(SigmoidOf(z, e) - y);
  return LogLossOf(z, y, e);
}

// The per-field sums S_f = sum_{i in f} v_i x_i of row r that FwFM and DPLR build on, and the
// row's bias + linear logit. sums is [m*k]; seen[m] must be all zero and present empty on entry
// (seen is left set for the fields listed in present: the caller clears them).
inline double FieldSumsAndLinear(const BatchView& b, const ParamView& p, size_t r, int k,
                                 float* sums, uint8_t* seen, std::vector<int>* present) {
  double z = p.dense[0];
  for (uint32_t e = b.offsets[r]; e < b.offsets[r + 1]; ++e) {
    const uint32_t i = b.index[e];
    const float x = b.values[e];
    const int f = b.fields[e];
    z += double(p.w[i]) * x;
    float* sf = sums + size_t(f) * k;
    if (!seen[f]) {
      seen[f] = 1;
      present->push_back(f);
      for (int d = 0; d < k; ++d) sf[d] = 0.f;
    }
    const float* v = p.V + size_t(i) * k;
    for (int d = 0; d < k; ++d) sf[d] += x * v[d];
  }
  return z;
}

// The backward twin of FieldSumsAndLinear: adds d loss / d w_i = g x_i and d loss / d v_i =
// g x_i back[f_i] for every feature i of row r, where back[f*k..] is d logit / d S_f.
inline void AddRowGradients(const BatchView& b, size_t r, float g, const float* back, int k,
                            GradView* grads) {
  for (uint32_t e = b.offsets[r]; e < b.offsets[r + 1]; ++e) {
    const uint32_t i = b.index[e];
    const float gx = g * b.values[e];
    grads->w[i] += gx;
    const float* tf = back + size_t(b.fields[e]) * k;
    float* gv = grads->V + size_t(i) * k;
    for (int d = 0; d < k; ++d) gv[d] += gx * tf[d];
  }
}

// Upper-triangle index of field pair (f, g), f < g, among m fields: row-major over f.
inline size_t PairIndex(int f, int g, int m) {
  return size_t(f) * m - size_t(f) * (f + 1) / 2 + size_t(g - f - 1);
}

}  // namespace model_math

// Checks k and num_fields, the options every model shares.
Status ValidateCommonOptions(const ModelOptions& o);

}  // namespace fmps

#endif  // FMPS_MODELS_MODEL_MATH_H_
