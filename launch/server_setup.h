// How a job config becomes a server: the store's update-rule options and rank policy for the
// chosen model, and server 0's dense block. Kept out of ps/ so the runtime does not depend on the
// models.
#ifndef FMPS_LAUNCH_SERVER_SETUP_H_
#define FMPS_LAUNCH_SERVER_SETUP_H_

#include "proto/fmps.pb.h"
#include "ps/server.h"

namespace fmps {

Result<ServerSetup> MakeServerSetup(const proto::JobConfig& config, int server_rank);

}  // namespace fmps

#endif  // FMPS_LAUNCH_SERVER_SETUP_H_
