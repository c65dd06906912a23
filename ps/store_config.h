// The job config as the servers' stores want it: update rules, admission, memory limits and the
// rank policy of the model the config names. Training servers, predict and serve read a shard
// through this one conversion, so a shard is always read with the options it was trained with.
#ifndef FMPS_PS_STORE_CONFIG_H_
#define FMPS_PS_STORE_CONFIG_H_

#include "proto/fmps.pb.h"
#include "ps/store/store.h"

namespace fmps {

// embedding_width: the model's (Model::EmbeddingWidth()).
StoreOptions StoreOptionsFromConfig(const proto::JobConfig& c, int embedding_width);

}  // namespace fmps

#endif  // FMPS_PS_STORE_CONFIG_H_
