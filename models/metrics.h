// Metrics of predictions: logloss (probabilities clipped to [1e-7, 1 - 1e-7], as the peers'
// shared scorer does) and AUC (Mann-Whitney, tied scores get their average rank).
//
// A non-finite score (NaN, ±inf: a model gone bad, or input that overflows it) has no rank and no
// loss: both functions leave such rows out, say how many in *nonfinite, and always terminate.
#ifndef FMPS_MODELS_METRICS_H_
#define FMPS_MODELS_METRICS_H_

#include <cstdint>
#include <span>

#include "models/model_math.h"

namespace fmps {

// The one sigmoid (models/model_math.h), for callers that score.
using model_math::Sigmoid;

// Mean logloss over the rows whose probability is finite; NaN when rows were given but none is.
double LogLoss(std::span<const float> labels, std::span<const float> probs,
               uint64_t* nonfinite = nullptr);
// AUC over the rows whose score is finite (0.5 when they hold one class only); NaN when rows were
// given but none is finite.
double Auc(std::span<const float> labels, std::span<const float> scores,
           uint64_t* nonfinite = nullptr);

}  // namespace fmps

#endif  // FMPS_MODELS_METRICS_H_
