// Plain reference twins of the model kernels: every logit computed pair by pair over a row's
// entries (O(nnz^2 k)) in double precision, with any field matrix built explicitly. Slow on
// purpose; tests compare the fast kernels and their gradients against these. Each model writes
// its twin (Model::ReferenceLogit) in its own file with the helpers below.
#ifndef FMPS_MODELS_REFERENCE_H_
#define FMPS_MODELS_REFERENCE_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "models/model.h"

namespace fmps {

// Logit of row r of the model options name (options valid: NaN otherwise), from the model's
// ReferenceLogit. level_cap p > 0 gives a model with rank levels truncated at level p (RaFM's
// B_{1,p}); 0 means the model itself.
double ReferenceLogit(const ModelOptions& options, const BatchView& batch, const ParamView& params,
                      size_t row, int level_cap = 0);

namespace reference {

double Dot(const float* a, const float* b, int n);

// Bias + linear term + sum over entry pairs a < c of row r of pair(a, c) * x_a * x_c, in double;
// a and c are entry positions in the batch.
double PairwiseLogit(const BatchView& b, const ParamView& p, size_t row,
                     const std::function<double(uint32_t a, uint32_t c)>& pair);

// The field-weighted form: pair (a, c) is r[f_a * m + f_c] * <v_i, v_j> over k floats, with r the
// symmetric m x m field matrix (row-major, zero diagonal).
double FieldMatrixLogit(const BatchView& b, const ParamView& p, size_t row, int k, int m,
                        const std::vector<double>& r);

}  // namespace reference
}  // namespace fmps

#endif  // FMPS_MODELS_REFERENCE_H_
