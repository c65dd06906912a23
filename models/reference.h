// Plain reference twins of the model kernels: every logit computed pair by pair over a row's
// entries (O(nnz^2 k)) in double precision, with the field matrix built explicitly. Slow on
// purpose; tests compare the fast kernels and their gradients against these.
#ifndef FMPS_MODELS_REFERENCE_H_
#define FMPS_MODELS_REFERENCE_H_

#include <span>
#include <vector>

#include "models/model.h"

namespace fmps {

// The symmetric m x m field matrix (row-major, zero diagonal) a model uses, from its dense block:
// fwfm R; pruned_fwfm R * mask; dplr U^T diag(e) U + diag(d). Other models: all ones.
std::vector<double> ReferenceFieldMatrix(const ModelOptions& options, const float* dense);

// Logit of row r of the model named by options (options already validated). For rafm,
// rafm_level_cap = p in 1..l gives the truncated model B_{1,p}: pairs use the first D_q floats
// of both rows (nested), q = min(p, l_i, l_j); 0 means all levels (the model itself).
double ReferenceLogit(const ModelOptions& options, const BatchView& batch, const ParamView& params,
                      size_t row, int rafm_level_cap = 0);

}  // namespace fmps

#endif  // FMPS_MODELS_REFERENCE_H_
