#include "ps/store/update_rules.h"

#include <glog/logging.h>

#include <numbers>

#include "ps/base/keys.h"

namespace fmps {

void FtrlUpdate(std::span<float> z, std::span<float> n, std::span<float> w,
                std::span<const float> g, const FtrlParams& params) {
  DCHECK_EQ(z.size(), g.size());
  DCHECK_EQ(n.size(), g.size());
  DCHECK_EQ(w.size(), g.size());
  for (size_t i = 0; i < g.size(); ++i) FtrlStep(z[i], n[i], w[i], g[i], params);
}

void AdagradUpdate(std::span<float> v, std::span<float> acc, std::span<const float> g,
                   const AdagradParams& params) {
  DCHECK_GE(v.size(), g.size());
  DCHECK_GE(acc.size(), g.size());
  AdagradStep(v.data(), acc.data(), g.data(), g.size(), params);
}

float InitialEmbeddingValue(uint64_t seed, uint64_t key, uint32_t dim, float scale) {
  // Box-Muller on two independent 53-bit uniforms taken from one 128-bit-ish hash chain.
  const uint64_t h1 = Mix64(Mix64(key ^ (seed * 0x9e3779b97f4a7c15ULL)) + dim);
  const uint64_t h2 = Mix64(h1 ^ 0xd6e8feb86659fd93ULL);
  const double u1 = (static_cast<double>(h1 >> 11) + 1.0) * 0x1.0p-53;  // (0, 1]
  const double u2 = static_cast<double>(h2 >> 11) * 0x1.0p-53;          // [0, 1)
  const double normal = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  return static_cast<float>(normal * scale);
}

}  // namespace fmps
