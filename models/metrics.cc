#include "models/metrics.h"

#include <algorithm>
#include <limits>
#include <vector>

namespace fmps {

double LogLoss(std::span<const float> labels, std::span<const float> probs, uint64_t* nonfinite) {
  double sum = 0;
  uint64_t used = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (!std::isfinite(probs[i])) continue;
    double p = std::clamp(static_cast<double>(probs[i]), 1e-7, 1 - 1e-7);
    sum -= labels[i] > 0.5f ? std::log(p) : std::log(1 - p);
    ++used;
  }
  if (nonfinite != nullptr) *nonfinite = labels.size() - used;
  if (labels.empty()) return 0;
  if (used == 0) return std::numeric_limits<double>::quiet_NaN();
  return sum / static_cast<double>(used);
}

double Auc(std::span<const float> labels, std::span<const float> scores, uint64_t* nonfinite) {
  // Only finite scores are ranked: NaN breaks the sort's ordering and the tie scan alike.
  std::vector<size_t> order;
  order.reserve(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) {
    if (std::isfinite(scores[i])) order.push_back(i);
  }
  if (nonfinite != nullptr) *nonfinite = labels.size() - order.size();
  if (!labels.empty() && order.empty()) return std::numeric_limits<double>::quiet_NaN();
  const size_t n = order.size();
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  double rank_sum = 0, positives = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i + 1;
    while (j < n && !(scores[order[i]] < scores[order[j]])) ++j;
    double avg_rank = (static_cast<double>(i) + static_cast<double>(j - 1)) / 2 + 1;
    for (size_t t = i; t < j; ++t) {
      if (labels[order[t]] > 0.5f) {
        rank_sum += avg_rank;
        positives += 1;
      }
    }
    i = j;
  }
  double negatives = static_cast<double>(n) - positives;
  if (positives == 0 || negatives == 0) return 0.5;
  return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives);
}

}  // namespace fmps
