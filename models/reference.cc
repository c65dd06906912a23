// Plain reference twins of the model kernels (see reference.h).
#include "models/reference.h"

#include <cmath>
#include <limits>

namespace fmps {

double ReferenceLogit(const ModelOptions& options, const BatchView& batch, const ParamView& params,
                      size_t row, int level_cap) {
  Result<std::unique_ptr<Model>> model = CreateModel(options);
  if (!model.ok()) return std::numeric_limits<double>::quiet_NaN();
  return model.value()->ReferenceLogit(batch, params, row, level_cap);
}

namespace reference {

double Dot(const float* a, const float* b, int n) {
  double s = 0;
  for (int d = 0; d < n; ++d) s += double(a[d]) * b[d];
  return s;
}

double PairwiseLogit(const BatchView& b, const ParamView& p, size_t row,
                     const std::function<double(uint32_t a, uint32_t c)>& pair) {
  const uint32_t begin = b.offsets[row], end = b.offsets[row + 1];
  double z = p.dense[0];
  for (uint32_t e = begin; e < end; ++e) z += double(p.w[b.index[e]]) * b.values[e];
  for (uint32_t a = begin; a < end; ++a) {
    for (uint32_t c = a + 1; c < end; ++c) {
      z += pair(a, c) * (double(b.values[a]) * b.values[c]);
    }
  }
  return z;
}

double FieldMatrixLogit(const BatchView& b, const ParamView& p, size_t row, int k, int m,
                        const std::vector<double>& r) {
  return PairwiseLogit(b, p, row, [&](uint32_t a, uint32_t c) {
    const uint32_t i = b.index[a], j = b.index[c];
    return r[size_t(b.fields[a]) * m + b.fields[c]] *
           Dot(p.V + size_t(i) * k, p.V + size_t(j) * k, k);
  });
}

}  // namespace reference
}  // namespace fmps
