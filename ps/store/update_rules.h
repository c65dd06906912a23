// Update rules of the server: FTRL-proximal on the linear weights and Adagrad on embedding rows.
// They are free functions over spans (and scalar inline twins for the store's per-key loop), kept
// apart from storage so that tests can check them against hand-computed values.
#ifndef FMPS_PS_STORE_UPDATE_RULES_H_
#define FMPS_PS_STORE_UPDATE_RULES_H_

#if defined(__AVX__)
#include <immintrin.h>
#endif

#include <cmath>
#include <cstdint>
#include <span>

namespace fmps {

// FTRL-proximal (McMahan et al. 2013), per coordinate.
// No defaults here: the job's come from config/params.def.
struct FtrlParams {
  float alpha = 0;  // learning rate
  float beta = 0;   // smooths the per-coordinate rate for rarely seen coordinates
  float l1 = 0;     // exact zeros while |z| <= l1
  float l2 = 0;     // L2
};

// The weight FTRL's closed form gives for state (z, n), with root_n = sqrt(n).
inline float FtrlWeightOfRoot(float z, float root_n, const FtrlParams& p) {
  if (std::fabs(z) <= p.l1) return 0.0f;
  const float shrunk = z - std::copysign(p.l1, z);
  return -shrunk / ((p.beta + root_n) / p.alpha + p.l2);
}
inline float FtrlWeight(float z, float n, const FtrlParams& p) {
  return std::fabs(z) <= p.l1 ? 0.0f : FtrlWeightOfRoot(z, std::sqrt(n), p);
}

// One step with the summed minibatch gradient g of a coordinate, from state (z, n) with
// root_n = sqrt(n) and w its weight: updates z, n and w in place. Each square root is taken once
// (the same bits as FtrlWeight's, so a weight recomputed from (z, n) later is this one).
inline void FtrlStepFromRoot(float& z, float& n, float root_n, float& w, float g,
                             const FtrlParams& p) {
  const float n_new = n + g * g;
  const float root_new = std::sqrt(n_new);
  z += g - (root_new - root_n) / p.alpha * w;
  n = n_new;
  w = FtrlWeightOfRoot(z, root_new, p);
}
inline void FtrlStep(float& z, float& n, float& w, float g, const FtrlParams& p) {
  FtrlStepFromRoot(z, n, std::sqrt(n), w, g, p);
}

// FtrlStep over aligned spans (all of g.size()). Sizes must agree (checked in debug builds).
void FtrlUpdate(std::span<float> z, std::span<float> n, std::span<float> w,
                std::span<const float> g, const FtrlParams& params);

// Adagrad on one embedding row.
struct AdagradParams {
  float lr = 0.05f;   // learning rate
  float l2 = 1e-4f;   // L2 on V, added to the gradient of each dimension being updated
  float eps = 1e-6f;  // added to the accumulator under the square root
};

// One step on the first g.size() dimensions of row v with accumulators acc:
// g' = g + l2 * v; acc += g'^2; v -= lr * g' / sqrt(acc + eps). Dimensions beyond g.size() are
// untouched: L2 applies only where a gradient arrived, so unseen rows do not decay.
inline void AdagradStep(float* v, float* acc, const float* g, size_t dims, const AdagradParams& p) {
  size_t j = 0;
#if defined(__AVX__)
  // Eight dimensions at a time: the scalar loop spent a square root and a division per dimension
  // one after another (GCC does not vectorize it at -O2).
  const __m256 l2 = _mm256_set1_ps(p.l2), lr = _mm256_set1_ps(p.lr), eps = _mm256_set1_ps(p.eps);
  for (; j + 8 <= dims; j += 8) {
    __m256 vj = _mm256_loadu_ps(v + j);
    const __m256 gj = _mm256_add_ps(_mm256_loadu_ps(g + j), _mm256_mul_ps(l2, vj));
    const __m256 aj = _mm256_add_ps(_mm256_loadu_ps(acc + j), _mm256_mul_ps(gj, gj));
    vj = _mm256_sub_ps(
        vj, _mm256_div_ps(_mm256_mul_ps(lr, gj), _mm256_sqrt_ps(_mm256_add_ps(aj, eps))));
    _mm256_storeu_ps(acc + j, aj);
    _mm256_storeu_ps(v + j, vj);
  }
#endif
  for (; j < dims; ++j) {
    const float gj = g[j] + p.l2 * v[j];
    acc[j] += gj * gj;
    v[j] -= p.lr * gj / std::sqrt(acc[j] + p.eps);
  }
}

// Span version: v and acc must be at least g.size() long (checked in debug builds).
void AdagradUpdate(std::span<float> v, std::span<float> acc, std::span<const float> g,
                   const AdagradParams& params);

// Initial value of dimension `dim` of the embedding of `key`: a normal draw with stddev `scale`
// derived only from (seed, key, dim), so that runs and restarts are reproducible and a row that is
// widened gets the same new entries whatever order things happened in.
float InitialEmbeddingValue(uint64_t seed, uint64_t key, uint32_t dim, float scale);

}  // namespace fmps

#endif  // FMPS_PS_STORE_UPDATE_RULES_H_
