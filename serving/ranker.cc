#include "serving/ranker.h"

#include <algorithm>
#include <string>
#include <type_traits>

#include "models/static_rank.h"
#include "ps/base/keys.h"
#include "models/metrics.h"

namespace fmps {
namespace {

size_t Rows(const Minibatch& b) { return b.offsets.empty() ? 0 : b.offsets.size() - 1; }

float Probability(double logit) {
  // As Predict does: the model's float logit, then the sigmoid.
  return static_cast<float>(Sigmoid(static_cast<float>(logit)));
}

// Per-thread scratch of the cached paths.
struct CachedScratch {
  std::vector<float> ctx_sums;   // [m*k] S^C_f
  std::vector<uint8_t> in_ctx;   // [m]
  std::vector<float> ctx_proj;   // [rho*k] P^C_p (fm: S^C then Q^C)
  std::vector<float> item_sums;  // [m*k] S^I_f
  std::vector<uint8_t> in_item;  // [m]
  std::vector<int> ctx_fields, item_fields;
  std::vector<float> proj;  // [rho*k]
};

// Per-thread scratch of the generic path: one localized batch.
struct GenericScratch {
  std::vector<uint32_t> offsets, index;
  std::vector<float> values, w, V, logits;
  std::vector<uint8_t> fields;
  std::vector<uint64_t> keys;
  std::vector<uint16_t> widths;
};

// FM with the context's S^C and Q^C computed once.
template <int kFixed>
void FmCached(const ModelSnapshot& s, int k_dyn, FeatureSpan context, const Minibatch& candidates,
              float* probs) {
  const int k = kFixed > 0 ? kFixed : k_dyn;
  thread_local CachedScratch t;
  t.ctx_proj.assign(2 * size_t(k), 0.f);
  float* ctx_sum = t.ctx_proj.data();
  float* ctx_sq = ctx_sum + k;
  double ctx_linear = s.dense()[0];
  for (size_t e = 0; e < context.keys.size(); ++e) {
    float w;
    const float* v = s.Get(context.keys[e], &w);
    const float x = context.values[e];
    ctx_linear += double(w) * x;
    for (int d = 0; d < k; ++d) {
      const float tv = x * v[d];
      ctx_sum[d] += tv;
      ctx_sq[d] += tv * tv;
    }
  }
  t.proj.resize(2 * size_t(k));
  float* sum = t.proj.data();
  float* sq = sum + k;
  const size_t rows = Rows(candidates);
  for (size_t r = 0; r < rows; ++r) {
    std::copy(ctx_sum, ctx_sum + 2 * k, sum);  // S and Q start from the context's
    double z = ctx_linear;
    for (uint32_t e = candidates.offsets[r]; e < candidates.offsets[r + 1]; ++e) {
      float w;
      const float* v = s.Get(candidates.keys[e], &w);
      const float x = candidates.values[e];
      z += double(w) * x;
      for (int d = 0; d < k; ++d) {
        const float tv = x * v[d];
        sum[d] += tv;
        sq[d] += tv * tv;
      }
    }
    float phi = 0.f;
    for (int d = 0; d < k; ++d) phi += sum[d] * sum[d] - sq[d];
    probs[r] = Probability(z + 0.5 * phi);
  }
}

// y += a * x over k floats; the restrict parameters tell the compiler the two rows do not overlap
// (both live in one scratch struct), so the loop vectorises.
template <int kFixed>
inline void Axpy(int k_dyn, float a, const float* __restrict x, float* __restrict y) {
  const int k = kFixed > 0 ? kFixed : k_dyn;
  for (int d = 0; d < k; ++d) y[d] += a * x[d];
}

// DPLR-FwFM, Algorithm 1 of the paper (see ranker.h).
template <int kFixed>
void DplrCached(const ModelSnapshot& s, const std::vector<float>& diag_weight, int k_dyn, int m,
                int rho, FeatureSpan context, const Minibatch& candidates, float* probs) {
  const int k = kFixed > 0 ? kFixed : k_dyn;
  const float* u = s.dense().data() + 1;
  const float* ev = u + size_t(rho) * m;
  thread_local CachedScratch t;
  t.ctx_sums.resize(size_t(m) * k);
  t.in_ctx.assign(m, 0);
  t.item_sums.resize(size_t(m) * k);
  t.in_item.assign(m, 0);
  t.ctx_proj.assign(size_t(rho) * k, 0.f);
  t.proj.resize(size_t(rho) * k);

  // Context, once: bias + linear term, S^C_f, P^C_p and s_C.
  double ctx_linear = s.dense()[0];
  std::vector<int>& ctx_fields = t.ctx_fields;
  ctx_fields.clear();
  for (size_t e = 0; e < context.keys.size(); ++e) {
    float w;
    const float* v = s.Get(context.keys[e], &w);
    const float x = context.values[e];
    const int f = KeyField(context.keys[e]);
    ctx_linear += double(w) * x;
    float* sf = t.ctx_sums.data() + size_t(f) * k;
    if (!t.in_ctx[f]) {
      t.in_ctx[f] = 1;
      ctx_fields.push_back(f);
      std::fill(sf, sf + k, 0.f);
    }
    Axpy<kFixed>(k, x, v, sf);
  }
  double ctx_diag = 0;  // s_C = sum_{f in C} d_f ||S^C_f||^2
  for (int f : ctx_fields) {
    const float* sf = t.ctx_sums.data() + size_t(f) * k;
    float n = 0.f;
    for (int d = 0; d < k; ++d) n += sf[d] * sf[d];
    ctx_diag += double(diag_weight[f]) * n;
    for (int p = 0; p < rho; ++p) {
      const float upf = u[size_t(p) * m + f];
      float* pp = t.ctx_proj.data() + size_t(p) * k;
      Axpy<kFixed>(k, upf, sf, pp);
    }
  }
  // Fields absent from the context read S^C_f = 0 (the cross term below needs it).
  for (int f = 0; f < m; ++f) {
    if (!t.in_ctx[f]) std::fill_n(t.ctx_sums.begin() + size_t(f) * k, k, 0.f);
  }

  // Per candidate: S^I_f, P_p = P^C_p + sum_{f in I} U_pf S^I_f, and its share of the diagonal.
  std::vector<int>& item_fields = t.item_fields;
  const size_t rows = Rows(candidates);
  for (size_t r = 0; r < rows; ++r) {
    item_fields.clear();
    double z = ctx_linear;
    for (uint32_t e = candidates.offsets[r]; e < candidates.offsets[r + 1]; ++e) {
      float w;
      const float* v = s.Get(candidates.keys[e], &w);
      const float x = candidates.values[e];
      const int f = KeyField(candidates.keys[e]);
      z += double(w) * x;
      float* sf = t.item_sums.data() + size_t(f) * k;
      if (!t.in_item[f]) {
        t.in_item[f] = 1;
        item_fields.push_back(f);
        std::fill(sf, sf + k, 0.f);
      }
      Axpy<kFixed>(k, x, v, sf);
    }
    std::copy(t.ctx_proj.begin(), t.ctx_proj.end(), t.proj.begin());
    double item_diag = 0;  // sum_{f in I} d_f (||S^I_f||^2 + 2 <S^C_f, S^I_f>)
    for (int f : item_fields) {
      const float* si = t.item_sums.data() + size_t(f) * k;
      const float* sc = t.ctx_sums.data() + size_t(f) * k;
      float n = 0.f;
      for (int d = 0; d < k; ++d) n += si[d] * (si[d] + 2.f * sc[d]);
      item_diag += double(diag_weight[f]) * n;
      for (int p = 0; p < rho; ++p) {
        const float upf = u[size_t(p) * m + f];
        float* pp = t.proj.data() + size_t(p) * k;
        Axpy<kFixed>(k, upf, si, pp);
      }
      t.in_item[f] = 0;
    }
    double full = 0;  // sum_p e_p ||P_p||^2
    for (int p = 0; p < rho; ++p) {
      const float* pp = t.proj.data() + size_t(p) * k;
      float n = 0.f;
      for (int d = 0; d < k; ++d) n += pp[d] * pp[d];
      full += double(ev[p]) * n;
    }
    probs[r] = Probability(z + 0.5 * (full - ctx_diag - item_diag));
  }
}

}  // namespace

Ranker::Ranker(std::shared_ptr<const ModelSnapshot> snapshot, RankerOptions options)
    : snapshot_(std::move(snapshot)), options_(options) {
  options_.batch_rows = std::max<size_t>(1, options_.batch_rows);
  const proto::JobConfig& c = snapshot_->config();
  k_ = snapshot_->width();
  m_ = c.num_fields();
  if (!options_.cached_context) return;
  if (c.model() == "fm") {
    path_ = Path::kFmCached;
  } else if (c.model() == "dplr") {
    path_ = Path::kDplrCached;
    rho_ = c.dplr_rank();
    const float* u = snapshot_->dense().data() + 1;
    const float* e = u + size_t(rho_) * m_;
    diag_weight_.assign(m_, 0.f);
    for (int f = 0; f < m_; ++f) {
      double d = 0;
      for (int p = 0; p < rho_; ++p) {
        const double upf = u[size_t(p) * m_ + f];
        d += double(e[p]) * upf * upf;
      }
      diag_weight_[f] = static_cast<float>(d);
    }
  }
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
  switch (path_) {
    case Path::kFmCached:
      ScoreFm(context, candidates, probs->data());
      break;
    case Path::kDplrCached:
      ScoreDplr(context, candidates, probs->data());
      break;
    case Path::kGeneric:
      ScoreGeneric(context, candidates, probs->data());
      break;
  }
  return Status::OK();
}

void Ranker::ScoreFm(FeatureSpan context, const Minibatch& candidates, float* probs) const {
  model_math::WithStaticRank(k_, [&](auto rank) {
    FmCached<decltype(rank)::value>(*snapshot_, k_, context, candidates, probs);
  });
}

void Ranker::ScoreDplr(FeatureSpan context, const Minibatch& candidates, float* probs) const {
  model_math::WithStaticRank(k_, [&](auto rank) {
    DplrCached<decltype(rank)::value>(*snapshot_, diag_weight_, k_, m_, rho_, context, candidates,
                                      probs);
  });
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
