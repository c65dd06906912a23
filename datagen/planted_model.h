// PlantedModel: the synthetic world behind `fmps gen`. It fixes, from model_seed and the
// options alone: each field's vocabulary and Zipf token frequencies, each (field, token)'s
// planted weight w and embedding v, the field-pair matrix R (FwFM/DPLR) and the bias that gives
// the target CTR. logit = bias + sum_f w_f + sum_{f<g} R_fg <v_f, v_g> (R = 1 for FM).
//
// Tokens are what the project's Criteo reader sees: for an integer field, the bucket
// floor(ln(x)^2) (x > 2) or x itself; for a categorical field, an id whose 8-hex-char string is
// a bijection of the id, so strings never collide. Parameters of the `table_tokens` most
// frequent tokens of a field are precomputed; rarer ones are recomputed from a hash on use.
#ifndef FMPS_DATAGEN_PLANTED_MODEL_H_
#define FMPS_DATAGEN_PLANTED_MODEL_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "datagen/generator.h"
#include "datagen/random.h"
#include "datagen/zipf_sampler.h"
#include "ps/base/status.h"

namespace fmps::datagen {

constexpr int kIntFields = 13;
constexpr int kCatFields = 26;
constexpr int kFields = kIntFields + kCatFields;  // reader field = column index - 1
constexpr uint64_t kMissingToken = ZipfSampler::kEmpty;

enum class PlantedKind { kFm, kFwfm, kDplr };
Result<PlantedKind> ParsePlantedKind(const std::string& name);  // "fm", "fwfm", "dplr"

// The bucket the Criteo reader gives an integer column value.
int64_t CriteoIntBucket(int64_t x);

using RowTokens = std::array<uint64_t, kFields>;  // token per field, kMissingToken if empty

// Deleter of memory from mmap (the parameter table).
struct UnmapFloats {
  size_t bytes = 0;
  void operator()(float* p) const;
};

class PlantedModel {
  class PassKey {  // only Create() builds models; make_unique still works
    friend class PlantedModel;
    PassKey() = default;
  };

 public:
  static Result<std::unique_ptr<PlantedModel>> Create(const GeneratorOptions& options);
  explicit PlantedModel(PassKey) {}

  PlantedKind kind() const { return kind_; }
  int k() const { return k_; }
  double bias() const { return bias_; }
  uint64_t vocab_size(int field) const { return samplers_[field].vocab(); }
  const ZipfSampler& sampler(int field) const { return samplers_[field]; }
  // Whether a column carries tokens (GeneratorOptions::active_fields); others are always empty.
  bool active(int field) const { return field < active_fields_; }
  // The outcome of sampler(field).Resolve() that means an empty column: the sampler's empty
  // index, or for an inactive field its only outcome.
  uint32_t empty_outcome(int field) const { return empty_outcome_[field]; }
  static bool IsIntField(int field) { return field < kIntFields; }

  // Planted parameters: pure functions of (model_seed, field, token); v has k() entries.
  float Weight(int field, uint64_t token) const;
  void Embedding(int field, uint64_t token, float* v) const;
  double PairWeight(int f, int g) const { return pair_weight_[f * kFields + g]; }  // R, 0 diagonal

  // [w, v_0..v_{k-1}] of a token: a table row for frequent tokens, else computed into scratch
  // (which must hold param_stride() floats). The table rows of categorical fields also hold
  // the token's text (TableHex).
  size_t param_stride() const { return stride_; }
  const float* Params(int field, uint64_t token, float* scratch) const {
    if (token < table_size_[field]) return TableRow(field, token);
    ComputeParams(field, token, scratch);
    return scratch;
  }
  // The table row of a token known to be in the table (InTable), without the check.
  const float* TableRow(int field, uint64_t token) const {
    return &table_[table_offset_[field] + token * stride_];
  }

  // Whether Params() of a token comes from the table; then TableHex() gives its text.
  bool InTable(int field, uint64_t token) const { return token < table_size_[field]; }
  const char* TableHex(const float* table_params) const {
    return reinterpret_cast<const char*>(table_params + 1 + k_);
  }

  // Draws one row's tokens (missing columns included) from the world's distribution.
  void SampleRow(WyRand& rng, RowTokens* row) const;

  // Parameters of an empty column: all zero, so it adds nothing to any logit.
  const float* ZeroParams() const { return zero_params_.data(); }

  // Logit of a row from its fields' Params() (ZeroParams() for empty columns). Uses the
  // fast forms: sum-of-squares for FM, low rank for DPLR; a plain pair loop for FwFM.
  double LogitFromParams(const float* const* params) const;
  double Logit(const RowTokens& row) const;

  // Text of categorical tokens and its inverse (NotFound for a string no token writes).
  void TokenHex(int field, uint64_t token, char out[8]) const;
  Result<uint64_t> TokenOfHex(int field, std::string_view hex) const;
  // An integer whose reader bucket is the token (an int field's token is its bucket);
  // `random` picks among the bucket's values.
  int64_t IntValue(uint64_t token, uint32_t random) const {
    const IntBucket& b = int_buckets_[token];
    const uint32_t n = b.count + (b.extra >= 0 ? 1 : 0);
    const uint32_t i = static_cast<uint32_t>((static_cast<uint64_t>(random) * n) >> 32);
    return i < b.count ? b.lo + i : b.extra;
  }

  // Integer buckets: bucket b's values are [lo, lo + count) plus `extra` when >= 0. Exposed so
  // the generator can precompute the values' text.
  struct IntBucket {
    int64_t lo = 0;
    uint32_t count = 0;
    int64_t extra = -1;
  };
  size_t int_bucket_count() const { return int_buckets_.size(); }
  const IntBucket& int_bucket(uint64_t token) const { return int_buckets_[token]; }

  // Parses a Criteo line as the project's reader would and maps it back to tokens; errors name
  // the column. Used by tests to recompute the oracle from a written file.
  Status ParseLine(std::string_view line, int* label, RowTokens* row) const;

 private:
  void ComputeParams(int field, uint64_t token, float* out) const;
  Status AllocateTable(size_t floats);  // zero-filled (fresh anonymous memory)
  void BuildPairWeights(uint64_t seed, double strong_fraction, double weak_std, int dplr_rank);
  double SolveBias(uint64_t pilot_rows, double target_ctr);

  PlantedKind kind_ = PlantedKind::kFm;
  int k_ = 4;
  size_t stride_ = 8;
  double sigma_w_ = 0, sigma_v_ = 0, bias_ = 0;
  int active_fields_ = kFields;
  std::vector<ZipfSampler> samplers_;
  std::array<uint32_t, kFields> empty_outcome_{};
  std::array<uint64_t, kFields> field_seed_{};   // parameter hash seed per field
  std::array<uint32_t, kFields> string_salt_{};  // token -> string bijection salt per field
  // Precomputed params: field f's rows [table_offset_[f], +table_size_[f] * stride_).
  // On huge pages where the kernel allows: ~10 MB read at random would otherwise miss the TLB.
  std::unique_ptr<float[], UnmapFloats> table_;
  std::vector<float> zero_params_;  // param_stride() zeros
  std::array<uint64_t, kFields> table_offset_{};
  std::array<uint64_t, kFields> table_size_{};
  std::vector<double> pair_weight_;  // kFields x kFields, symmetric, zero diagonal
  // DPLR fast form: sum_{f<g} R_fg <v_f,v_g> = 0.5 (sum_r e_r |sum_f U_rf v_f|^2 + sum_f d_f
  // |v_f|^2).
  int rank_ = 0;
  std::vector<double> dplr_u_;  // rank_ x kFields
  std::vector<double> dplr_e_;  // rank_
  std::vector<double> dplr_d_;  // kFields: -(U^T diag(e) U)_ff, cancelling the diagonal
  std::vector<IntBucket> int_buckets_;
};

}  // namespace fmps::datagen

#endif  // FMPS_DATAGEN_PLANTED_MODEL_H_
