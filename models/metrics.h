// Metrics of predictions: logloss (probabilities clipped to [1e-7, 1 - 1e-7], as the peers'
// shared scorer does) and AUC (Mann-Whitney, tied scores get their average rank).
#ifndef FMPS_MODELS_METRICS_H_
#define FMPS_MODELS_METRICS_H_

#include <span>

#include "models/model_math.h"

namespace fmps {

// The one sigmoid (models/model_math.h), for callers that score.
using model_math::Sigmoid;

double LogLoss(std::span<const float> labels, std::span<const float> probs);
double Auc(std::span<const float> labels, std::span<const float> scores);

}  // namespace fmps

#endif  // FMPS_MODELS_METRICS_H_
