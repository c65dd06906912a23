// `fmps dump`: an export file as text, one feature per line, for a first look at what a model
// learned: the header, the dense block, then per row its key, field, w, rank and embedding; with
// names, the token text of the features a data file holds (hashed as the training readers did).
#ifndef FMPS_SERVING_MODEL_DUMP_H_
#define FMPS_SERVING_MODEL_DUMP_H_

#include <cstdint>
#include <cstdio>
#include <string>

#include "config/params.h"
#include "ps/base/status.h"

namespace fmps {

struct DumpOptions {
  std::string file;   // export file (`fmps export --out`)
  std::string names;  // data file (the model's training format) whose tokens name features
  // > 0: only the top rows by `by`, largest first (0: every row, key order)
  uint64_t top = params::kDefault.top;
  std::string by = params::kDefault.by;  // w: |w|; v: the embedding's Euclidean norm
};

struct DumpSummary {
  uint64_t rows = 0;   // feature lines printed
  uint64_t named = 0;  // of those, lines with a token text
};

Result<DumpSummary> DumpModel(const DumpOptions& options, std::FILE* out);

}  // namespace fmps

#endif  // FMPS_SERVING_MODEL_DUMP_H_
