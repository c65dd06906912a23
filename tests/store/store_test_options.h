// The store options the store and server tests are written against. StoreOptions has no job
// defaults of its own (they come from the job config), so tests spell theirs out here.
#ifndef FMPS_TESTS_STORE_STORE_TEST_OPTIONS_H_
#define FMPS_TESTS_STORE_STORE_TEST_OPTIONS_H_

#include "ps/store/store.h"

namespace fmps::testing {

inline constexpr FtrlParams kTestFtrl{/*alpha=*/0.05f, /*beta=*/1.0f, /*l1=*/0.5f, /*l2=*/1.0f};

inline StoreOptions BaseStoreOptions() {
  StoreOptions o;
  o.ftrl = kTestFtrl;
  o.v_lr = 0.05f;
  o.v_init_scale = 0.01f;
  o.v_l2 = 1e-4f;
  o.policy = RankPolicy::DiFacto(8, 4, 1, 10, 100);
  o.seed = 1;
  o.sketch_mb = 8;
  return o;
}

}  // namespace fmps::testing

#endif  // FMPS_TESTS_STORE_STORE_TEST_OPTIONS_H_
