// The command line, derived from the parameter table (config/params.def): the gflags flags, the
// flags each command accepts, --help, the range check of every numeric flag, and the job config
// built from the flags. Only launch/ reads flags.
#ifndef FMPS_LAUNCH_FLAGS_H_
#define FMPS_LAUNCH_FLAGS_H_

#include <gflags/gflags.h>
#include <glog/logging.h>

#include <string>
#include <vector>

#include "config/params.h"
#include "proto/fmps.pb.h"
#include "ps/base/status.h"

#define FMPS_DECLARE_int32(name) DECLARE_int32(name);
#define FMPS_DECLARE_int64(name) DECLARE_int64(name);
#define FMPS_DECLARE_uint64(name) DECLARE_uint64(name);
#define FMPS_DECLARE_double(name) DECLARE_double(name);
#define FMPS_DECLARE_bool(name) DECLARE_bool(name);
#define FMPS_DECLARE_string(name) DECLARE_string(name);
#define FMPS_DECLARE_int_list(name) DECLARE_string(name);
#define FMPS_DECLARE_glog_int32(name)  // glog/logging.h declares it
#define FMPS_DECLARE_glog_string(name)
#define FMPS_JOB_PARAM(name, type, def, lo, hi, commands, roles, models, help) \
  FMPS_DECLARE_##type(name)
#define FMPS_FLAG(name, type, def, lo, hi, commands, help) FMPS_DECLARE_##type(name)
#include "config/params.def"
#undef FMPS_JOB_PARAM
#undef FMPS_FLAG

namespace fmps {

struct CommandInfo {
  const char* name;
  uint32_t bit;  // params::Command
  const char* summary;
};
// The commands of fmps, in the order `fmps help` lists them.
const std::vector<CommandInfo>& Commands();
const CommandInfo* FindCommand(const std::string& name);
// The flags a command accepts, in the table's order.
std::vector<std::string> CommandFlags(const std::string& command);

// `fmps help` (empty command) or `fmps COMMAND --help`: each flag with its help, default and range;
// a model's own parameters grouped under the model.
void PrintHelp(const std::string& command);

// Every numeric flag finite and in its range (all of them, not only the command's: a train passes
// its flags on to the processes it starts). The error names the flag, its value and the range.
Status ValidateFlags();

// The job config from the flags: every job parameter, as given or at its default.
Result<proto::JobConfig> JobConfigFromFlags();

}  // namespace fmps

#endif  // FMPS_LAUNCH_FLAGS_H_
