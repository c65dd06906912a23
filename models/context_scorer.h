// ContextScorer: a model's cached context for serving. Ranking scores many candidates against one
// context; a model whose interactions split into a context part and a candidate part computes the
// context's part once and each candidate's part on top (FM: the context's sums; DPLR: Algorithm 1
// of the DPLR-FwFM paper). The Ranker (serving/) asks the model for one (Model::MakeContextScorer)
// and runs Compute on full rows when the model has none. Scorers read the frozen model through
// FrozenParams, so models/ needs nothing from the serving layer.
#ifndef FMPS_MODELS_CONTEXT_SCORER_H_
#define FMPS_MODELS_CONTEXT_SCORER_H_

#include <cstdint>
#include <span>
#include <vector>

#include "data/minibatch.h"

namespace fmps {

// Features of one row: keys made as the training reader makes them (field in the top 8 bits).
struct FeatureSpan {
  std::span<const uint64_t> keys;
  std::span<const float> values;
};

// Rows of a frozen model, looked up by key.
class RowLookup {
 public:
  virtual ~RowLookup() = default;
  // For each key i: its w into w[i] and into v[i] a pointer to its EmbeddingWidth() floats,
  // zero-padded (zeros for a key the model does not hold). The pointers stay valid as long as the
  // lookup does. Thread-safe.
  virtual void Get(std::span<const uint64_t> keys, float* w, const float** v) const = 0;
};

// What a scorer reads: the dense block and the rows, both owned by the caller.
struct FrozenParams {
  std::span<const float> dense;  // [DenseSize()]
  const RowLookup* rows = nullptr;
};

class ContextScorer {
 public:
  virtual ~ContextScorer() = default;
  // The logit of each candidate row appended to the context, as Model::Compute gives it on the
  // concatenated row, into logits[candidates rows]. Keys' fields are < num_fields and values are
  // explicit (the caller checks both). Const and thread-safe (scratch is thread_local).
  virtual void Score(FeatureSpan context, const Minibatch& candidates, float* logits) const = 0;
};

// Per-thread buffers for a scorer's lookups: w and embedding pointers of a span of keys.
struct LookedUpRows {
  std::vector<float> w;
  std::vector<const float*> v;
  void Get(const RowLookup& rows, std::span<const uint64_t> keys) {
    w.resize(keys.size());
    v.resize(keys.size());
    rows.Get(keys, w.data(), v.data());
  }
};

}  // namespace fmps

#endif  // FMPS_MODELS_CONTEXT_SCORER_H_
