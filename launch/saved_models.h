// What launch/ checks and lists about saved models before anything starts: a job that continues
// one (--resume, --init_model) must fit it and, resuming, read the data the checkpoint recorded;
// `fmps models` lists a model_dir's versions.
#ifndef FMPS_LAUNCH_SAVED_MODELS_H_
#define FMPS_LAUNCH_SAVED_MODELS_H_

#include <string>

#include "ps/base/status.h"
#include "scheduler/scheduler.h"

namespace fmps {

// Checks the job in *o against the checkpoint it continues (--resume: the newest good one in
// model_dir; --init_model: the newest good one there): model, k, format and field count, and for
// --resume the data (unless o->resume_new_data). When the job's field count came from a scan of
// its data (num_fields_from_data) and is below the saved model's, the saved model's is taken.
// Every error names both values.
Status CheckAgainstSavedModel(bool num_fields_from_data, SchedulerOptions* o);

// One line per MANIFEST in model_dir, newest first: version, job, parent, rows, when written,
// test figures, and whether it verifies. NotFound when model_dir holds none.
Result<std::string> ListVersions(const std::string& model_dir);

}  // namespace fmps

#endif  // FMPS_LAUNCH_SAVED_MODELS_H_
