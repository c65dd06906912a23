// The model registry: one table from name to factory, so adding a model is one line here.
#include <utility>

#include "models/model_math.h"

namespace fmps {
namespace {

using Factory = Result<std::unique_ptr<Model>> (*)(const ModelOptions&);

const std::vector<std::pair<std::string, Factory>>& Registry() {
  static const std::vector<std::pair<std::string, Factory>> registry = {
      {"fm", &NewFmModel},     {"fwfm", &NewFwfmModel},
      {"dplr", &NewDplrModel}, {"pruned_fwfm", &NewFwfmModel},
      {"rafm", &NewRafmModel}, {"ffm", &NewFfmModel},
  };
  return registry;
}

}  // namespace

Status ValidateCommonOptions(const ModelOptions& o) {
  if (o.k < 1 || o.k > 65535) {
    return Status::InvalidArgument(o.name + ": k must be in 1..65535, got " + std::to_string(o.k));
  }
  if (o.num_fields < 1 || o.num_fields > 256) {
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

}  // namespace fmps
