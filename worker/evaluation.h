// Evaluation of predictions: logloss (probabilities clipped to [1e-7, 1 - 1e-7], as the peers'
// shared scorer does) and AUC (Mann-Whitney, tied scores get their average rank).
#ifndef FMPS_WORKER_EVALUATION_H_
#define FMPS_WORKER_EVALUATION_H_

#include <cmath>
#include <span>

namespace fmps {

inline double Sigmoid(double z) {
  return z >= 0 ? 1 / (1 + std::exp(-z)) : std::exp(z) / (1 + std::exp(z));
}

double LogLoss(std::span<const float> labels, std::span<const float> probs);
double Auc(std::span<const float> labels, std::span<const float> scores);

}  // namespace fmps

#endif  // FMPS_WORKER_EVALUATION_H_
