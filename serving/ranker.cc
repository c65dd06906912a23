#include "serving/ranker.h"

#include <algorithm>
#include <string>

#include "models/metrics.h"
#include "ps/base/keys.h"

namespace fmps {
namespace {

size_t Rows(const Minibatch& b) { return b.offsets.empty() ? 0 : b.offsets.size() - 1; }

float Probability(double logit) {
  // As Predict does: the model's float logit, then the sigmoid.
  return static_cast<float>(Sigmoid(static_cast<float>(logit)));
}

// Per-thread scratch of the generic path: one localized batch.
struct GenericScratch {
  std::vector<uint32_t> offsets, index;
  std::vector<float> values, w, V, logits;
  std::vector<uint8_t> fields;
  std::vector<uint64_t> keys;
  std::vector<uint16_t> widths;
};

}  // namespace

Ranker::Ranker(std::shared_ptr<const ModelSnapshot> snapshot, RankerOptions options)
    : snapshot_(std::move(snapshot)),
      options_(options),
      rows_(std::make_unique<SnapshotRows>(snapshot_.get())) {
  options_.batch_rows = std::max<size_t>(1, options_.batch_rows);
  m_ = snapshot_->num_fields();
  if (!options_.cached_context) return;
  scorer_ = snapshot_->model().MakeContextScorer(FrozenParams{snapshot_->dense(), rows_.get()});
  if (scorer_ != nullptr) path_ = Path::kCachedContext;
}

void Ranker::SnapshotRows::Get(std::span<const uint64_t> keys, float* w, const float** v) const {
  for (size_t i = 0; i < keys.size(); ++i) v[i] = snapshot_->Get(keys[i], &w[i]);
}

Status Ranker::CheckFields(std::span<const uint64_t> keys, const char* where) const {
  for (uint64_t key : keys) {
    if (KeyField(key) >= uint32_t(m_)) {
      return Status::InvalidArgument(std::string(where) + ": field " +
                                     std::to_string(KeyField(key)) + " >= num_fields " +
                                     std::to_string(m_) + " of the model");
    }
  }
  return Status::OK();
}

Status Ranker::Score(FeatureSpan context, const Minibatch& candidates,
                     std::vector<float>* probs) const {
  if (context.keys.size() != context.values.size())
    return Status::InvalidArgument("context: keys and values differ in length");
  if (candidates.keys.size() != candidates.values.size() ||
      (!candidates.offsets.empty() && candidates.offsets.back() != candidates.keys.size()))
    return Status::InvalidArgument("candidates: offsets, keys and values disagree");
  FMPS_RETURN_IF_ERROR(CheckFields(context.keys, "context"));
  FMPS_RETURN_IF_ERROR(CheckFields(candidates.keys, "candidates"));
  probs->resize(Rows(candidates));
  if (probs->empty()) return Status::OK();
  if (scorer_ == nullptr) {
    ScoreGeneric(context, candidates, probs->data());
    return Status::OK();
  }
  float* p = probs->data();
  scorer_->Score(context, candidates, p);
  for (size_t r = 0; r < probs->size(); ++r) p[r] = Probability(p[r]);
  return Status::OK();
}

void Ranker::ScoreGeneric(FeatureSpan context, const Minibatch& candidates, float* probs) const {
  const ModelSnapshot& s = *snapshot_;
  thread_local GenericScratch t;
  const size_t rows = Rows(candidates);
  const uint32_t nc = static_cast<uint32_t>(context.keys.size());
  for (size_t first = 0; first < rows; first += options_.batch_rows) {
    const size_t last = std::min(rows, first + options_.batch_rows);
    // Local keys: the context's once (indices 0..nc-1), then every candidate entry its own
    // index; a repeated key is looked up twice, harmless when only scoring.
    t.keys.assign(context.keys.begin(), context.keys.end());
    t.keys.insert(t.keys.end(), candidates.keys.begin() + candidates.offsets[first],
                  candidates.keys.begin() + candidates.offsets[last]);
    s.Lookup(t.keys, &t.w, &t.V, &t.widths);
    t.offsets.assign(1, 0);
    t.index.clear();
    t.values.clear();
    t.fields.clear();
    uint32_t next = nc;
    for (size_t r = first; r < last; ++r) {
      for (uint32_t e = 0; e < nc; ++e) {
        t.index.push_back(e);
        t.values.push_back(context.values[e]);
        t.fields.push_back(static_cast<uint8_t>(KeyField(context.keys[e])));
      }
      for (uint32_t e = candidates.offsets[r]; e < candidates.offsets[r + 1]; ++e) {
        t.index.push_back(next++);
        t.values.push_back(candidates.values[e]);
        t.fields.push_back(static_cast<uint8_t>(KeyField(candidates.keys[e])));
      }
      t.offsets.push_back(static_cast<uint32_t>(t.index.size()));
    }
    BatchView b;
    b.rows = last - first;
    b.offsets = t.offsets.data();
    b.index = t.index.data();
    b.values = t.values.data();
    b.fields = t.fields.data();
    b.num_keys = t.keys.size();
    ParamView p{t.w.data(), t.V.data(), t.widths.data(), s.dense().data()};
    t.logits.resize(b.rows);
    s.model().Compute(b, p, t.logits, nullptr);
    for (size_t r = first; r < last; ++r) probs[r] = Probability(t.logits[r - first]);
  }
}

}  // namespace fmps
