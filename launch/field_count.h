// The job's number of fields, decided before any process starts, sent to every role in the job
// config and recorded in each checkpoint's manifest: the format's where it fixes them (Criteo 39,
// Avazu 23); otherwise --num_fields, or a scan of every input whole (data/field_scan.h), so a
// field that first appears in a file's last line is in the model. A row with a field beyond the
// job's is a bad line to the readers (counted, logged as FILE:LINE, --max_bad_lines).
#ifndef FMPS_LAUNCH_FIELD_COUNT_H_
#define FMPS_LAUNCH_FIELD_COUNT_H_

#include <string>
#include <vector>

#include "config/params.h"
#include "data/reader.h"
#include "ps/base/env.h"
#include "ps/base/status.h"

namespace fmps {

struct FieldCountOptions {
  DataFormat format = DataFormat::kLibffm;     // resolved (not kAuto)
  int given = params::kDefault.num_fields;     // --num_fields (0: not given)
  std::string model = params::kDefault.model;  // the model's name (--model)
  std::vector<std::string> inputs;             // every training, validation and test file
  Env* env = Env::Default();
};

struct JobFields {
  int num_fields = 0;
  // Found by a scan: a saved model with more fields may still be continued (saved_models.h).
  bool from_data = false;
  std::string source;  // what decided it, for the log ("a scan of 2 files, 1.0 GB in 2.1 s; ...")
};

// InvalidArgument, saying what to give instead: --num_fields other than the format's fixed count,
// or outside 1..256; an input that cannot be scanned (stdin, a pipe) without --num_fields, unless
// the model's parameters do not depend on the field count (fm, rafm: then every field up to 255 is
// accepted). A scan's I/O errors name the file.
Result<JobFields> DecideNumFields(const FieldCountOptions& options);

}  // namespace fmps

#endif  // FMPS_LAUNCH_FIELD_COUNT_H_
