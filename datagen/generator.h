// Synthetic CTR data for `fmps gen`: Criteo-format rows (label, I1..I13, C1..C26) whose labels
// come from a planted factorization machine (FM, FwFM or DPLR-FwFM interactions) over
// Zipf-distributed tokens, so training runs can be checked against a known optimum: the oracle
// logloss of the true click probabilities is returned with every file.
//
// The world (vocabularies, token frequencies, planted parameters, bias) is a pure function of
// model_seed and the options; the row stream is a function of seed. Train and test files made
// with the same model_seed and different seeds therefore share the model. See planted_model.h.
#ifndef FMPS_DATAGEN_GENERATOR_H_
#define FMPS_DATAGEN_GENERATOR_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "config/params.h"
#include "ps/base/status.h"

namespace fmps::datagen {

struct GeneratorOptions {
  uint64_t rows = params::kDefault.rows;  // rows to write
  uint64_t seed = params::kDefault.seed;  // seed of the row stream (train vs test: different seeds)
  uint64_t model_seed =
      params::kDefault.model_seed;  // seed of the planted model (same for train and test files)
  std::string planted =
      params::kDefault.planted;               // fm | fwfm | dplr: the planted interaction structure
  int k = params::kDefault.planted_k;         // rank of the planted embeddings (1..64)
  double zipf_s = 1.1;                        // Zipf exponent of token frequencies (> 0)
  double missing = params::kDefault.missing;  // probability that a column is empty, in [0, 1)
  double target_ctr = 0.25;  // bias chosen so the mean CTR is about this, in (0, 1)
  double linear_std =
      params::kDefault.linear_std;  // approximate std over rows of the logit's linear part
  double interaction_std =
      params::kDefault.interaction_std;  // approximate std over rows of the logit's pairwise part
  int dplr_rank = 3;                     // rank of U in R = U^T diag(e) U for planted=dplr
  double fwfm_strong_pairs =
      params::kDefault.fwfm_strong_pairs;  // fraction of field pairs with a strong R entry (fwfm)
  double fwfm_weak_std =
      params::kDefault
          .fwfm_weak_std;    // std of the other field pairs' R entries (fwfm; 0: exactly 0)
  double vocab_scale = 1.0;  // multiplies the larger categorical vocabularies (tests: small)
  // A smaller world, e.g. one where FwFM's field-pair weights can be learned from ~1e5 rows:
  int active_fields =
      params::kDefault
          .active_fields;  // columns 1..n (I1, I2, ..., then C1, ...) carry tokens; later: empty
  uint64_t field_vocab =
      params::kDefault.field_vocab;  // > 0: every field's vocabulary (integer fields: at most 100)
  uint64_t table_tokens = 8192;      // most frequent tokens per field with precomputed parameters
  uint64_t bias_pilot_rows = 20000;  // rows drawn (from model_seed) to solve for the bias
  size_t buffer_bytes = 1 << 20;     // output buffer, flushed with ::write
};

struct GeneratorResult {
  uint64_t rows = 0;           // rows completely written
  uint64_t positives = 0;      // rows with label 1 among them
  double oracle_logloss = 0;   // mean logloss of the true probabilities on those rows
  double seconds = 0;          // wall time
  bool reader_closed = false;  // the output pipe closed early (EPIPE): generation stopped cleanly
};

// Writes options.rows Criteo rows to fd (1 for stdout). A closed pipe (EPIPE) ends generation
// cleanly with reader_closed set and SIGPIPE suppressed; other write errors are IOError.
// Same options -> same bytes.
Result<GeneratorResult> GenerateCriteo(const GeneratorOptions& options, int fd);

// Checks the ranges documented above; the message names the offending option.
Status ValidateOptions(const GeneratorOptions& options);

}  // namespace fmps::datagen

#endif  // FMPS_DATAGEN_GENERATOR_H_
