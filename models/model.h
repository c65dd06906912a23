// Models: pure math over a localized minibatch. A model scores rows and computes the gradient of
// the summed logloss with respect to the parameters the batch touches; it knows nothing of
// networking or storage. Models are chosen by name through a small registry (CreateModel), and a
// model owns everything specific to it: its kernels, its dense block's layout, its rank levels on
// the servers, its cached-context scorer for serving and its plain reference twin. Adding a model
// is one file (models/<name>.cc), one line in registry.cc and one line in the kernels test list
// (docs/design.md, "Adding a model").
//
// Parameter layout seen by a model, for a batch with K unique keys:
//   w[K]                 linear weight of each key;
//   V[K * width]         embedding block of each key, width = EmbeddingWidth(). A key whose
//                        embedding is smaller on the servers (adaptive rank, rank levels) or absent
//                        is zero-padded: its row holds a prefix of the layout, the rest is zero.
//   dense[DenseSize()]   one small block shared by all rows (owned by server 0): dense[0] is the
//                        global bias for every model; field-pair parameters follow, as each
//                        model's file describes (DenseLayout() names them).
// Field ids must be < num_fields (the reader validates input). Compute is const and thread-safe:
// per-call scratch lives in thread_local buffers sized once and reused.
#ifndef FMPS_MODELS_MODEL_H_
#define FMPS_MODELS_MODEL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "config/params.h"
#include "models/context_scorer.h"
#include "ps/base/status.h"

namespace fmps {

// Built from the job config by ModelOptionsFromConfig (models/job_config.h); the defaults below
// are the table's (config/params.def), for tests and benchmarks that build a model directly.
struct ModelOptions {
  std::string name = params::kDefault.model;  // fm | fwfm | dplr | pruned_fwfm | rafm | ffm
  int k = params::kDefault.k;                 // embedding rank (the largest rank when ranks adapt)
  int num_fields = 0;                         // m: fields are ids 0..m-1 (the data's; no default)
  int rank = params::kDefault.rank;           // DPLR rho
  double keep = params::kDefault.keep;  // pruned_fwfm: fraction of R's off-diagonal entries kept
  int64_t keep_entries =
      params::kDefault.keep_entries;  // pruned_fwfm: entries kept (>= 0: over keep)
  std::vector<int> rafm_ranks =       // RaFM ranks D_1 < ... < D_l
      params::ParseIntList(params::kDefault.rafm_ranks, "rafm_ranks").value();
  // RaFM: weight of Algorithm 1's distillation terms in the prefixes' gradient (1 = the paper,
  // 0 = plain FM gradient).
  float rafm_distill_weight = params::kDefault.rafm_distill_weight;
  // RaFM: counts are divided by this before eq. 17.
  double rafm_count_scale = params::kDefault.rafm_count_scale;
  float dense_init_scale = 0.01f;  // stddev of random init of the dense block beyond the bias
  // fwfm, pruned_fwfm, dplr: rescale R to mean |R| = 1 after each dense update (R and V trade
  // scale; only V has L2).
  bool normalize_field_pairs = params::kDefault.normalize_field_pairs;
};

// A minibatch after localization: keys are replaced by indices into the batch's unique keys.
struct BatchView {
  size_t rows = 0;
  const float* labels = nullptr;      // [rows], 0 or 1; may be null when only scoring
  const uint32_t* offsets = nullptr;  // [rows + 1], entries of row r are [offsets[r], offsets[r+1])
  const uint32_t* index = nullptr;    // [entries], local key index in [0, num_keys)
  const float* values = nullptr;      // [entries], feature value (1 for categorical)
  const uint8_t* fields = nullptr;    // [entries], field id of the entry (< num_fields)
  size_t num_keys = 0;
};

// One level of a model's rank policy on the servers (Model::RankLevels).
struct RankLevelSpec {
  uint64_t min_count = 0;  // occurrences from which a feature is at this level
  uint32_t width = 0;      // floats of its embedding at this level
  bool operator==(const RankLevelSpec& o) const {
    return min_count == o.min_count && width == o.width;
  }
};

struct ParamView {
  const float* w = nullptr;          // [num_keys]
  const float* V = nullptr;          // [num_keys * EmbeddingWidth()]
  const uint16_t* widths = nullptr;  // [num_keys] floats of V each key really has (rest is zero
                                     // padding); null means every key has the full width
  const float* dense = nullptr;      // [DenseSize()]
};

// Gradient accumulators, laid out like ParamView; the caller zeroes them. What a kernel leaves in
// the padding of a narrow key's row (past its width) is not a gradient and is never pushed.
struct GradView {
  float* w = nullptr;
  float* V = nullptr;
  float* dense = nullptr;
};

class Model {
 public:
  virtual ~Model() = default;
  virtual std::string name() const = 0;

  // Floats per key in the embedding layout (k for FM, m*k for FFM, sum of D for RaFM).
  virtual int EmbeddingWidth() const = 0;
  // Floats in the dense block (>= 1: dense[0] is the bias).
  virtual size_t DenseSize() const = 0;
  // Initial dense block (bias 0, field-pair parameters as the model wants).
  virtual void InitDense(std::span<float> dense, uint64_t seed) const = 0;

  // Writes each row's logit (margin) into logits[rows]. When grads is not null, also adds
  // d(sum over rows of logloss(label, sigmoid(logit)))/d(param) into grads. Returns the summed
  // logloss of the batch (0 when batch.labels is null).
  virtual double Compute(const BatchView& batch, const ParamView& params, std::span<float> logits,
                         GradView* grads) const = 0;

  // Called by the owner of the dense block after each update of it, with the fraction of
  // training done in [0, 1]; pruned FwFM applies its pruning schedule here. Default: nothing.
  virtual void AfterDenseUpdate(std::span<float> dense, double progress) const {
    (void)dense;
    (void)progress;
  }
  // Number of floats of the dense block that are real parameters (e.g. unpruned R entries).
  virtual size_t DenseParams(std::span<const float> dense) const { return dense.size(); }

  // The dense block's layout in the notation of docs/model-format.md (the export header's
  // "dense_layout"), e.g. "b, R[P]".
  virtual std::string DenseLayout() const { return "b"; }

  // The options beyond model, k, num_fields and format that fix the shape of the parameters, as
  // (flag name, value): a saved model continues (--resume, --init_model) only under equal ones.
  virtual std::vector<std::pair<std::string, std::string>> ShapeFlags() const { return {}; }

  // The servers' rank levels for this model: one {min_count, width} per level, min_count
  // increasing (a feature seen n times gets the widest level with min_count <= n). Empty: the
  // store's default policy for EmbeddingWidth() (DiFacto's levels for width k, else fixed).
  virtual std::vector<RankLevelSpec> RankLevels() const { return {}; }

  // Serving: a scorer that ranks candidates against one context faster than Compute on each
  // concatenated row (the model's cached context), reading `params`, which must outlive it.
  // Null: the model has none and the caller runs Compute on full rows.
  virtual std::unique_ptr<ContextScorer> MakeContextScorer(const FrozenParams& params) const {
    (void)params;
    return nullptr;
  }

  // The plain reference twin of Compute: row's logit in double precision, pair by pair over the
  // row's entries (O(nnz^2 k)) with any field matrix built explicitly. Slow on purpose; tests
  // compare the fast kernels and their gradients against it (models/reference.h). level_cap p > 0
  // caps a model with rank levels at level p (RaFM's truncated model B_{1,p}); 0: the model.
  virtual double ReferenceLogit(const BatchView& batch, const ParamView& params, size_t row,
                                int level_cap) const = 0;
};

// The registry: builds the model named by options.name, or says which names exist.
Result<std::unique_ptr<Model>> CreateModel(const ModelOptions& options);
std::vector<std::string> ModelNames();

// The model options an export file's header records for every model (docs/model-format.md), as
// JSON members: "rafm_ranks":[...],"dplr_rank":N.
std::string ExportedOptionsJson(const ModelOptions& options);

}  // namespace fmps

#endif  // FMPS_MODELS_MODEL_H_
