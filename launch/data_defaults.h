// Defaults that depend on the data: the update and admission settings that suit a sparse log
// (Criteo-like: most features seen a few times) differ from a dense one's (Frappe-like: a few
// thousand features, each seen ~100 times). A profile of the first training rows
// (data/data_profile.h) decides where the job sits between the two; a flag the user gives wins.
#ifndef FMPS_LAUNCH_DATA_DEFAULTS_H_
#define FMPS_LAUNCH_DATA_DEFAULTS_H_

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "data/data_profile.h"

namespace fmps {

// The parameters whose default adapts (their --help says so).
struct AdaptiveSettings {
  uint64_t v_min_count = 0;
  uint64_t rank_mid_count = 0;
  uint64_t rank_head_count = 0;
  double v_init_scale = 0;
  double ftrl_alpha = 0;
  double ftrl_l1 = 0;
  double v_lr = 0;
  double v_l2 = 0;
  double dense_lr = 0;
  int batch_size = 0;
};

// Occurrences per distinct feature at or below which a job gets the sparse settings (the table's
// defaults), and at or above which it gets the dense ones; log-linear in between.
constexpr double kSparsePerFeature = 25;
constexpr double kDensePerFeature = 80;

// 0 at or below kSparsePerFeature, 1 at or above kDensePerFeature, log-linear in between.
double Denseness(double per_feature);

// The settings of the corners: sparse = the defaults of config/params.def; dense = the common
// settings tuned on Frappe, FM's own for --model=fm (it has no field-pair weights to absorb scale).
AdaptiveSettings SparseSettings();
AdaptiveSettings DenseSettings(const std::string& model);

// The settings at `denseness` (0..1): each value log-linear between the corners (counts as
// log(1 + n), the FTRL L1 linear: its dense corner is 0).
AdaptiveSettings InterpolateSettings(const std::string& model, double denseness);

// (flag, value text) for every adaptive parameter not in `given`, in a fixed order.
std::vector<std::pair<std::string, std::string>> ResolvedFlags(const AdaptiveSettings& settings,
                                                               const std::set<std::string>& given);

// The names of the adaptive parameters.
const std::vector<std::string>& AdaptiveParameters();

}  // namespace fmps

#endif  // FMPS_LAUNCH_DATA_DEFAULTS_H_
