// The model registry: one table from name to factory, so adding a model is one line here (its
// factory is declared by the same line).
#include <utility>

#include "models/model_math.h"

// name, factory (defined in the model's file; each validates its own options).
#define FMPS_MODELS(X)           \
  X("fm", NewFmModel)            \
  X("fwfm", NewFwfmModel)        \
  X("dplr", NewDplrModel)        \
  X("pruned_fwfm", NewFwfmModel) \
  X("rafm", NewRafmModel)        \
  X("ffm", NewFfmModel)

namespace fmps {

#define FMPS_DECLARE_FACTORY(name, factory) \
  Result<std::unique_ptr<Model>> factory(const ModelOptions& o);
FMPS_MODELS(FMPS_DECLARE_FACTORY)
#undef FMPS_DECLARE_FACTORY

namespace {

using Factory = Result<std::unique_ptr<Model>> (*)(const ModelOptions&);

const std::vector<std::pair<std::string, Factory>>& Registry() {
#define FMPS_REGISTRY_ENTRY(name, factory) {name, &factory},
  static const std::vector<std::pair<std::string, Factory>> registry = {
      FMPS_MODELS(FMPS_REGISTRY_ENTRY)};
#undef FMPS_REGISTRY_ENTRY
  return registry;
}

}  // namespace

Status ValidateCommonOptions(const ModelOptions& o) {
  if (o.k < params::kMin.k || o.k > params::kMax.k) {
    return Status::InvalidArgument(o.name + ": k must be in " +
                                   params::RangeText(*params::Find("k")) + ", got " +
                                   std::to_string(o.k));
  }
  if (o.num_fields < 1 || o.num_fields > params::kMax.num_fields) {
    return Status::InvalidArgument(o.name + ": num_fields must be in 1..256, got " +
                                   std::to_string(o.num_fields));
  }
  return Status::OK();
}

Result<std::unique_ptr<Model>> CreateModel(const ModelOptions& options) {
  for (const auto& [name, factory] : Registry()) {
    if (name == options.name) return factory(options);
  }
  std::string known;
  for (const std::string& name : ModelNames()) known += (known.empty() ? "" : ", ") + name;
  return Status::InvalidArgument("unknown model '" + options.name + "'; known models: " + known);
}

std::vector<std::string> ModelNames() {
  std::vector<std::string> names;
  for (const auto& entry : Registry()) names.push_back(entry.first);
  return names;
}

std::string ExportedOptionsJson(const ModelOptions& o) {
  std::string ranks;
  for (int r : o.rafm_ranks) ranks += (ranks.empty() ? "" : ",") + std::to_string(r);
  return "\"rafm_ranks\":[" + ranks + "],\"dplr_rank\":" + std::to_string(o.rank);
}

}  // namespace fmps
