#include "models/job_config.h"

#include <algorithm>

namespace fmps {

proto::JobConfig DefaultJobConfig() {
  proto::JobConfig c;
#define FMPS_DEFAULT_int32(name) c.set_##name(params::kDefault.name);
#define FMPS_DEFAULT_int64(name) c.set_##name(params::kDefault.name);
#define FMPS_DEFAULT_uint64(name) c.set_##name(params::kDefault.name);
#define FMPS_DEFAULT_double(name) c.set_##name(params::kDefault.name);
#define FMPS_DEFAULT_bool(name) c.set_##name(params::kDefault.name);
#define FMPS_DEFAULT_string(name) c.set_##name(params::kDefault.name);
#define FMPS_DEFAULT_int_list(name)                                                           \
  {                                                                                           \
    const std::vector<int> list = params::ParseIntList(params::kDefault.name, #name).value(); \
    for (int v : list) c.add_##name(v);                                                       \
  }
#define FMPS_JOB_PARAM(name, type, def, lo, hi, commands, roles, models, help) \
  FMPS_DEFAULT_##type(name)
#define FMPS_FLAG(name, type, def, lo, hi, commands, help)
#include "config/params.def"
#undef FMPS_JOB_PARAM
#undef FMPS_FLAG
  return c;
}

ModelOptions ModelOptionsFromConfig(const proto::JobConfig& c) {
  ModelOptions o;
  o.name = c.model();
  o.k = c.k();
  o.num_fields = c.num_fields();
  o.rank = c.rank();
  o.keep = c.keep();
  o.keep_entries = c.keep_entries();
  o.rafm_ranks.assign(c.rafm_ranks().begin(), c.rafm_ranks().end());
  o.rafm_distill_weight = c.rafm_distill_weight();
  o.rafm_count_scale = c.rafm_count_scale();
  o.normalize_field_pairs = c.normalize_field_pairs();
  return o;
}

Result<ReaderOptions> ReaderOptionsFromConfig(const proto::JobConfig& c) {
  Result<DataFormat> format = ParseDataFormat(c.format());
  if (!format.ok()) return format.status();
  ReaderOptions o;
  o.format = format.value();
  // A libffm/libsvm field beyond the job's is a bad line, never silently dropped.
  o.num_fields = c.num_fields();
  return o;
}

}  // namespace fmps
