// Ranker: scores many candidates against one context with a ModelSnapshot. A row the model sees
// is the context's features followed by one candidate's; the probability equals what
// Model::Compute gives on that concatenated row (and what `fmps predict` prints for it).
//
// Paths (chosen once from the model's name):
//   dplr  cached context, DPLR-FwFM paper Algorithm 1: with d_f = sum_p e_p U_pf^2 (minus the
//         diagonal of U^T diag(e) U), per context P^C_p = sum_{f in C} U_pf S^C_f,
//         s_C = sum_{f in C} d_f ||S^C_f||^2 and the context's bias + linear term are computed
//         once; per candidate only O(rho |I| k). A field present in both halves is handled
//         exactly (its cross term 2 d_f <S^C_f, S^I_f> joins the candidate's part).
//   fm    cached context: the context's sum vector S^C and sum of squares Q^C (k floats each);
//         per candidate O(|I| k).
//   other a generic path: full rows (context + candidate) through Model::Compute in batches.
// Score is const and thread-safe (scratch is thread_local), so one Ranker serves every thread.
#ifndef FMPS_SERVING_RANKER_H_
#define FMPS_SERVING_RANKER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "ps/base/status.h"
#include "serving/model_snapshot.h"
#include "data/minibatch.h"

namespace fmps {

struct RankerOptions {
  bool cached_context = true;  // false: every model takes the generic path (tests, benchmarks)
  size_t batch_rows = 256;     // generic path: candidates per Model::Compute call
};

// Features of one row: keys made as the training reader makes them (field in the top 8 bits).
struct FeatureSpan {
  std::span<const uint64_t> keys;
  std::span<const float> values;
};

class Ranker {
 public:
  enum class Path { kGeneric, kFmCached, kDplrCached };

  explicit Ranker(std::shared_ptr<const ModelSnapshot> snapshot, RankerOptions options = {});

  Path path() const { return path_; }
  const ModelSnapshot& snapshot() const { return *snapshot_; }

  // One probability per candidate row (candidates.offsets delimit the rows; labels are ignored)
  // into *probs. InvalidArgument when a key's field is >= the model's num_fields.
  Status Score(FeatureSpan context, const Minibatch& candidates, std::vector<float>* probs) const;

 private:
  Status CheckFields(std::span<const uint64_t> keys, const char* where) const;
  void ScoreGeneric(FeatureSpan context, const Minibatch& candidates, float* probs) const;
  void ScoreFm(FeatureSpan context, const Minibatch& candidates, float* probs) const;
  void ScoreDplr(FeatureSpan context, const Minibatch& candidates, float* probs) const;

  std::shared_ptr<const ModelSnapshot> snapshot_;
  RankerOptions options_;
  Path path_ = Path::kGeneric;
  int k_ = 0, m_ = 0, rho_ = 0;
  std::vector<float> diag_weight_;  // dplr: d_f = sum_p e_p U_pf^2, [m]
};

}  // namespace fmps

#endif  // FMPS_SERVING_RANKER_H_
