// Plain reference twins of the model kernels (see reference.h).
#include "models/reference.h"

#include <algorithm>

#include "models/model_math.h"

namespace fmps {
namespace {

std::vector<int> RafmRanks(const ModelOptions& o) {
  return o.rafm_ranks.empty() ? std::vector<int>{4, 8, 16} : o.rafm_ranks;
}

double Dot(const float* a, const float* b, int n) {
  double s = 0;
  for (int d = 0; d < n; ++d) s += double(a[d]) * b[d];
  return s;
}

}  // namespace

std::vector<double> ReferenceFieldMatrix(const ModelOptions& o, const float* dense) {
  const int m = o.num_fields;
  const size_t np = size_t(m) * (m - 1) / 2;
  std::vector<double> r(size_t(m) * m, 0.0);
  for (int f = 0; f < m; ++f) {
    for (int g = 0; g < m; ++g) {
      if (f == g) continue;
      const int lo = std::min(f, g), hi = std::max(f, g);
      const size_t idx = model_math::PairIndex(lo, hi, m);
      double v = 1.0;
      if (o.name == "fwfm") v = dense[1 + idx];
      if (o.name == "pruned_fwfm") v = double(dense[1 + idx]) * dense[1 + np + idx];
      if (o.name == "dplr") {
        const int rho = o.dplr_rank;
        v = 0;
        for (int q = 0; q < rho; ++q) {
          v += double(dense[1 + size_t(rho) * m + q]) * dense[1 + size_t(q) * m + f] *
               dense[1 + size_t(q) * m + g];
        }
      }
      r[size_t(f) * m + g] = v;
    }
  }
  // dplr's diagonal d cancels U^T diag(e) U's diagonal exactly: left at zero above.
  return r;
}

double ReferenceLogit(const ModelOptions& o, const BatchView& b, const ParamView& p, size_t row,
                      int rafm_level_cap) {
  const uint32_t begin = b.offsets[row], end = b.offsets[row + 1];
  double z = p.dense[0];
  for (uint32_t e = begin; e < end; ++e) z += double(p.w[b.index[e]]) * b.values[e];
  const int k = o.k, m = o.num_fields;
  std::vector<double> rmat;
  if (o.name == "fwfm" || o.name == "pruned_fwfm" || o.name == "dplr") {
    rmat = ReferenceFieldMatrix(o, p.dense);
  }
  std::vector<int> ranks;
  if (o.name == "rafm") ranks = RafmRanks(o);
  const int nl = int(ranks.size());
  auto level_of = [&](uint32_t i) {
    if (p.widths == nullptr) return nl;
    int level = 0;
    while (level < nl && ranks[level] <= p.widths[i]) ++level;
    return level;
  };
  for (uint32_t a = begin; a < end; ++a) {
    for (uint32_t c = a + 1; c < end; ++c) {
      const uint32_t i = b.index[a], j = b.index[c];
      const int fi = b.fields[a], fj = b.fields[c];
      const double xx = double(b.values[a]) * b.values[c];
      double inner = 0;
      if (o.name == "fm") {
        inner = Dot(p.V + size_t(i) * k, p.V + size_t(j) * k, k);
      } else if (!rmat.empty()) {
        inner = rmat[size_t(fi) * m + fj] * Dot(p.V + size_t(i) * k, p.V + size_t(j) * k, k);
      } else if (o.name == "ffm") {
        const size_t width = size_t(m) * k;
        inner = Dot(p.V + i * width + size_t(fj) * k, p.V + j * width + size_t(fi) * k, k);
      } else if (o.name == "rafm") {
        int level = std::min(level_of(i), level_of(j));
        if (level == 0) continue;
        if (rafm_level_cap > 0) level = std::min(level, rafm_level_cap);
        // Nested embeddings: the rank-D_level embedding is the prefix of the key's row.
        const size_t width = size_t(ranks.back());
        inner = Dot(p.V + i * width, p.V + j * width, ranks[level - 1]);
      }
      z += inner * xx;
    }
  }
  return z;
}

}  // namespace fmps
