// WithStaticRank: runs a kernel templated on the embedding rank with that rank as a compile-time
// constant for the common ranks (the training kernels in models/ and the serving kernels in
// serving/ share it), so their loops over the rank unroll and vectorise.
#ifndef FMPS_MODELS_STATIC_RANK_H_
#define FMPS_MODELS_STATIC_RANK_H_

#include <type_traits>

namespace fmps {
namespace model_math {

// Calls fn(std::integral_constant<int, K>{}) with K = k for the ranks the kernels are specialised
// for (the compiler unrolls and vectorises their inner loops), K = 0 (runtime k) otherwise.
template <typename Fn>
decltype(auto) WithStaticRank(int k, Fn&& fn) {
  switch (k) {
    case 4:
      return fn(std::integral_constant<int, 4>{});
    case 8:
      return fn(std::integral_constant<int, 8>{});
    case 16:
      return fn(std::integral_constant<int, 16>{});
    case 32:
      return fn(std::integral_constant<int, 32>{});
    default:
      return fn(std::integral_constant<int, 0>{});
  }
}

}  // namespace model_math
}  // namespace fmps

#endif  // FMPS_MODELS_STATIC_RANK_H_
