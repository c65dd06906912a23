// Ranker: scores many candidates against one context with a ModelSnapshot. A row the model sees
// is the context's features followed by one candidate's; the probability equals what
// Model::Compute gives on that concatenated row (and what `fmps predict` prints for it).
//
// Paths (chosen once, by asking the model):
//   cached   the model's cached context (Model::MakeContextScorer, models/context_scorer.h): the
//            context's part once, then each candidate's part on top;
//   generic  for a model without one (or when options say so): full rows (context + candidate)
//            through Model::Compute in batches.
// Score is const and thread-safe (scratch is thread_local), so one Ranker serves every thread.
#ifndef FMPS_SERVING_RANKER_H_
#define FMPS_SERVING_RANKER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "data/minibatch.h"
#include "models/context_scorer.h"
#include "ps/base/status.h"
#include "serving/model_snapshot.h"

namespace fmps {

struct RankerOptions {
  bool cached_context = true;  // false: every model takes the generic path (tests, benchmarks)
  size_t batch_rows = 256;     // generic path: candidates per Model::Compute call
};

class Ranker {
 public:
  enum class Path { kGeneric, kCachedContext };

  explicit Ranker(std::shared_ptr<const ModelSnapshot> snapshot, RankerOptions options = {});

  Path path() const { return path_; }
  const ModelSnapshot& snapshot() const { return *snapshot_; }

  // One probability per candidate row (candidates.offsets delimit the rows; labels are ignored)
  // into *probs. InvalidArgument when a key's field is >= the model's num_fields.
  Status Score(FeatureSpan context, const Minibatch& candidates, std::vector<float>* probs) const;

 private:
  Status CheckFields(std::span<const uint64_t> keys, const char* where) const;
  void ScoreGeneric(FeatureSpan context, const Minibatch& candidates, float* probs) const;

  // The snapshot's rows as the model's scorer reads them.
  class SnapshotRows : public RowLookup {
   public:
    explicit SnapshotRows(const ModelSnapshot* snapshot) : snapshot_(snapshot) {}
    void Get(std::span<const uint64_t> keys, float* w, const float** v) const override;

   private:
    const ModelSnapshot* snapshot_;
  };

  std::shared_ptr<const ModelSnapshot> snapshot_;
  RankerOptions options_;
  Path path_ = Path::kGeneric;
  int m_ = 0;
  std::unique_ptr<SnapshotRows> rows_;     // on the heap: scorer_ keeps its address across moves
  std::unique_ptr<ContextScorer> scorer_;  // the model's cached context; null: generic path
};

}  // namespace fmps

#endif  // FMPS_SERVING_RANKER_H_
