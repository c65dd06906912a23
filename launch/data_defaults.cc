#include "launch/data_defaults.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "config/params.h"

namespace fmps {
namespace {

double LogLinear(double sparse, double dense, double t) {
  return std::exp((1 - t) * std::log(sparse) + t * std::log(dense));
}
uint64_t LogLinearCount(uint64_t sparse, uint64_t dense, double t) {
  return static_cast<uint64_t>(std::llround(LogLinear(sparse + 1.0, dense + 1.0, t) - 1));
}

// Shortest text that reads back as v.
std::string Text(double v) {
  char buf[40] = "";
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

}  // namespace

double Denseness(double per_feature) {
  if (!(per_feature > kSparsePerFeature)) return 0;
  if (per_feature >= kDensePerFeature) return 1;
  return std::log(per_feature / kSparsePerFeature) / std::log(kDensePerFeature / kSparsePerFeature);
}

AdaptiveSettings SparseSettings() {
  const params::Defaults& d = params::kDefault;
  AdaptiveSettings s;
  s.v_min_count = d.v_min_count;
  s.rank_mid_count = d.rank_mid_count;
  s.rank_head_count = d.rank_head_count;
  s.v_init_scale = d.v_init_scale;
  s.ftrl_alpha = d.ftrl_alpha;
  s.ftrl_l1 = d.ftrl_l1;
  s.v_lr = d.v_lr;
  s.v_l2 = d.v_l2;
  s.dense_lr = d.dense_lr;
  s.batch_size = d.batch_size;
  return s;
}

AdaptiveSettings DenseSettings(const std::string& model) {
  AdaptiveSettings s;
  // Every feature embedded at full rank: a dense data set sees each one often enough.
  s.v_min_count = 0;
  s.rank_mid_count = 0;
  s.rank_head_count = 0;
  s.ftrl_alpha = 0.1;
  s.ftrl_l1 = 0;
  s.v_l2 = 0.3;
  s.dense_lr = 0.3;
  if (model == "fm") {
    s.v_init_scale = 0.01;
    s.v_lr = 0.2;
    s.batch_size = 1000;
  } else {
    s.v_init_scale = 0.1;
    s.v_lr = 0.1;
    s.batch_size = 256;
  }
  return s;
}

AdaptiveSettings InterpolateSettings(const std::string& model, double t) {
  t = std::clamp(t, 0.0, 1.0);
  const AdaptiveSettings a = SparseSettings(), b = DenseSettings(model);
  AdaptiveSettings s;
  s.v_min_count = LogLinearCount(a.v_min_count, b.v_min_count, t);
  s.rank_mid_count = LogLinearCount(a.rank_mid_count, b.rank_mid_count, t);
  s.rank_head_count = LogLinearCount(a.rank_head_count, b.rank_head_count, t);
  s.v_init_scale = LogLinear(a.v_init_scale, b.v_init_scale, t);
  s.ftrl_alpha = LogLinear(a.ftrl_alpha, b.ftrl_alpha, t);
  s.ftrl_l1 = (1 - t) * a.ftrl_l1 + t * b.ftrl_l1;
  s.v_lr = LogLinear(a.v_lr, b.v_lr, t);
  s.v_l2 = LogLinear(a.v_l2, b.v_l2, t);
  s.dense_lr = LogLinear(a.dense_lr, b.dense_lr, t);
  s.batch_size = static_cast<int>(std::lround(LogLinear(a.batch_size, b.batch_size, t)));
  // The corners exactly, not exp(log(x)) rounded.
  if (t == 0) return a;
  if (t == 1) return b;
  return s;
}

const std::vector<std::string>& AdaptiveParameters() {
  static const std::vector<std::string> names{
      "v_min_count", "rank_mid_count", "rank_head_count", "v_init_scale", "ftrl_alpha", "ftrl_l1",
      "v_lr",        "v_l2",           "dense_lr",        "batch_size"};
  return names;
}

std::vector<std::pair<std::string, std::string>> ResolvedFlags(const AdaptiveSettings& s,
                                                               const std::set<std::string>& given) {
  const std::vector<std::string> values{std::to_string(s.v_min_count),
                                        std::to_string(s.rank_mid_count),
                                        std::to_string(s.rank_head_count),
                                        Text(s.v_init_scale),
                                        Text(s.ftrl_alpha),
                                        Text(s.ftrl_l1),
                                        Text(s.v_lr),
                                        Text(s.v_l2),
                                        Text(s.dense_lr),
                                        std::to_string(s.batch_size)};
  std::vector<std::pair<std::string, std::string>> out;
  const std::vector<std::string>& names = AdaptiveParameters();
  for (size_t i = 0; i < names.size(); ++i) {
    if (!given.count(names[i])) out.emplace_back(names[i], values[i]);
  }
  return out;
}

}  // namespace fmps
