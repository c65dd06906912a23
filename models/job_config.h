// The job config as each library wants it: ModelOptions for the models, ReaderOptions for the
// readers (StoreOptions: ps/store_config.h). One place converts, so a new config field is wired
// once; the defaults are config/params.def's.
#ifndef FMPS_MODELS_JOB_CONFIG_H_
#define FMPS_MODELS_JOB_CONFIG_H_

#include "config/params.h"
#include "data/reader.h"
#include "models/model.h"
#include "proto/fmps.pb.h"

namespace fmps {

// The job config with every job parameter at its default.
proto::JobConfig DefaultJobConfig();

ModelOptions ModelOptionsFromConfig(const proto::JobConfig& c);
Result<ReaderOptions> ReaderOptionsFromConfig(const proto::JobConfig& c);

}  // namespace fmps

#endif  // FMPS_MODELS_JOB_CONFIG_H_
