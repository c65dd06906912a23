// The job config as each library wants it: ModelOptions for the models, ReaderOptions for the
// readers. One place converts, so a new config field is wired once.
#ifndef FMPS_MODELS_JOB_CONFIG_H_
#define FMPS_MODELS_JOB_CONFIG_H_

#include "models/model.h"
#include "proto/fmps.pb.h"
#include "data/reader.h"

namespace fmps {

inline ModelOptions ModelOptionsFromConfig(const proto::JobConfig& c) {
  ModelOptions o;
  o.name = c.model();
  o.k = c.k();
  o.num_fields = c.num_fields();
  o.dplr_rank = c.dplr_rank();
  o.keep = c.keep();
  o.keep_entries = c.keep_entries();
  o.rafm_ranks.assign(c.rafm_ranks().begin(), c.rafm_ranks().end());
  if (o.rafm_ranks.empty()) o.rafm_ranks = {4, 8, 16};
  if (c.has_rafm_distill_weight()) o.rafm_distill_weight = c.rafm_distill_weight();
  if (c.rafm_count_scale() > 0) o.rafm_count_scale = c.rafm_count_scale();
  o.normalize_field_pairs = !c.keep_field_pair_scale();
  return o;
}

inline Result<ReaderOptions> ReaderOptionsFromConfig(const proto::JobConfig& c) {
  Result<DataFormat> format = ParseDataFormat(c.format());
  if (!format.ok()) return format.status();
  ReaderOptions o;
  o.format = format.value();
  // A libffm/libsvm field beyond the job's is a bad line, never silently dropped.
  o.num_fields = c.num_fields();
  return o;
}

}  // namespace fmps

#endif  // FMPS_MODELS_JOB_CONFIG_H_
