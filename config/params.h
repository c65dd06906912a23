// The parameter table (config/params.def) as data: its defaults and ranges as constants that
// Options structs and libraries use, a description of every parameter for flags and --help, and
// the job config with every default. Depends only on the proto, so every layer may include it.
#ifndef FMPS_CONFIG_PARAMS_H_
#define FMPS_CONFIG_PARAMS_H_

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "ps/base/status.h"

namespace fmps {
namespace params {

// Commands of the fmps binary that accept a parameter.
enum Command : uint32_t {
  kTrain = 1,
  kScheduler = 2,
  kServer = 4,
  kWorker = 8,
  kPredict = 16,
  kServe = 32,
  kGen = 64,
  kTune = 128,
  kExport = 256,
  kDump = 512,
  kModels = 1024,
  kPlot = 2048,
  kKeygen = 4096,
  kRoles = 8192,
  kProfile = 16384,
};
// The job's parameters go to train, scheduler and tune (which passes them to every trial), and
// roles (which launch scripts run on the job's flags).
constexpr uint32_t kJob = kTrain | kScheduler | kTune | kRoles;

// Nodes that read a job parameter from the config the scheduler sends.
enum Role : uint32_t { kRoleScheduler = 1, kRoleServer = 2, kRoleWorker = 4 };
constexpr uint32_t kRoleAll = kRoleScheduler | kRoleServer | kRoleWorker;

constexpr double kOpen = std::numeric_limits<double>::denorm_min();  // as a min: "> 0"
constexpr double kMaxInt32 = std::numeric_limits<int32_t>::max();
constexpr double kMaxInt64 = 9.2233720368547758e18;
constexpr double kMaxUint64 = 1.8446744073709552e19;

// C++ types of the table's types, for the constants below.
using int32 = int32_t;
using int64 = int64_t;
using uint64 = uint64_t;
using string = const char*;
using int_list = const char*;
using glog_int32 = int32_t;
using glog_string = const char*;

// kDefault.NAME, kMin.NAME, kMax.NAME: a parameter's default and valid range.
struct Defaults {
#define FMPS_JOB_PARAM(name, type, def, lo, hi, commands, roles, models, help) type name = def;
#define FMPS_FLAG(name, type, def, lo, hi, commands, help) type name = def;
#include "config/params.def"
#undef FMPS_JOB_PARAM
#undef FMPS_FLAG
};
struct Bounds {
#define FMPS_JOB_PARAM(name, type, def, lo, hi, commands, roles, models, help) double name;
#define FMPS_FLAG(name, type, def, lo, hi, commands, help) double name;
#include "config/params.def"
#undef FMPS_JOB_PARAM
#undef FMPS_FLAG
};
inline constexpr Defaults kDefault{};
inline constexpr Bounds kMin{
#define FMPS_JOB_PARAM(name, type, def, lo, hi, commands, roles, models, help) lo,
#define FMPS_FLAG(name, type, def, lo, hi, commands, help) lo,
#include "config/params.def"
#undef FMPS_JOB_PARAM
#undef FMPS_FLAG
};
inline constexpr Bounds kMax{
#define FMPS_JOB_PARAM(name, type, def, lo, hi, commands, roles, models, help) hi,
#define FMPS_FLAG(name, type, def, lo, hi, commands, help) hi,
#include "config/params.def"
#undef FMPS_JOB_PARAM
#undef FMPS_FLAG
};

enum class Type { kInt32, kInt64, kUint64, kDouble, kBool, kString, kIntList };

struct ParamInfo {
  const char* name;
  Type type;
  const char* default_text;  // as --help prints it
  double min, max;
  uint32_t commands;   // Command bits
  uint32_t roles;      // Role bits; 0: not a job parameter (no JobConfig field)
  const char* models;  // "": every model's; else the models whose parameter it is
  const char* help;
};

// Every parameter, in the table's order.
const std::vector<ParamInfo>& All();
const ParamInfo* Find(const std::string& name);

// OK when a numeric value is finite and in the parameter's range, else InvalidArgument naming
// the flag, the value and the range.
Status CheckRange(const ParamInfo& param, double value);
// "1..1024" (inclusive), ">= 0", "> 0", "> 0, <= 1048576"
std::string RangeText(const ParamInfo& param);

// One axis of `fmps tune`'s search (FMPS_TUNED lines of params.def, in their order).
struct TunedAxis {
  const char* name;                 // the parameter
  std::vector<std::string> values;  // the values tried, as flag text
};
const std::vector<TunedAxis>& Tuned();

// Comma-separated positive integers (int_list parameters); the error names the flag.
Result<std::vector<int>> ParseIntList(const std::string& text, const std::string& flag);

}  // namespace params
}  // namespace fmps

#endif  // FMPS_CONFIG_PARAMS_H_
