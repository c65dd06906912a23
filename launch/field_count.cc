#include "launch/field_count.h"

#include <chrono>
#include <cstdio>

#include "data/byte_source.h"
#include "data/field_scan.h"
#include "models/model.h"
#include "ps/base/keys.h"

namespace fmps {
namespace {

// True unless the model's parameters are the same whatever the field count (FM, RaFM): asked of
// the models themselves, so a new model needs no entry here.
bool ModelSizesByFields(const std::string& name) {
  ModelOptions a, b;
  a.name = b.name = name;
  a.num_fields = 2;
  b.num_fields = 3;
  Result<std::unique_ptr<Model>> ma = CreateModel(a), mb = CreateModel(b);
  if (!ma.ok() || !mb.ok()) return true;
  return (*ma)->DenseSize() != (*mb)->DenseSize() ||
         (*ma)->EmbeddingWidth() != (*mb)->EmbeddingWidth();
}

}  // namespace

Result<JobFields> DecideNumFields(const FieldCountOptions& o) {
  const std::string format = DataFormatName(o.format);
  const int fixed = FormatNumFields(o.format);
  if (o.given < 0 || o.given > kMaxFields) {
    return Status::InvalidArgument("--num_fields=" + std::to_string(o.given) +
                                   ": must be in 1..256 (0: from the format or the data)");
  }
  JobFields job;
  if (fixed > 0) {
    // A smaller count would drop the format's later fields, a larger one size pairs never seen.
    if (o.given > 0 && o.given != fixed) {
      return Status::InvalidArgument("--num_fields=" + std::to_string(o.given) +
                                     ": --format=" + format + " has " + std::to_string(fixed) +
                                     " fields; leave --num_fields out");
    }
    job.num_fields = fixed;
    job.source = "the " + format + " format";
    return job;
  }
  if (o.given > 0) {
    job.num_fields = o.given;
    job.source = "--num_fields";
    return job;
  }
  for (const std::string& path : o.inputs) {
    if (!IsStream(path, o.env)) continue;
    const std::string name = path == "-" ? "stdin" : path;
    if (ModelSizesByFields(o.model)) {
      return Status::InvalidArgument(
          name + " is a stream: it cannot be scanned for the number of " + format +
          " fields before the job starts, and --model=" + o.model +
          " sizes its parameters by it; give --num_fields=N (fields 0..N-1)");
    }
    job.num_fields = kMaxFields;
    job.source = name + " cannot be scanned and --model=" + o.model +
                 " does not depend on the field count: every field up to " +
                 std::to_string(kMaxFields - 1) + " is accepted";
    return job;
  }
  const auto start = std::chrono::steady_clock::now();
  Result<FieldScan> scan = ScanFields(o.inputs, o.format, o.env);
  if (!scan.ok()) return scan.status();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  char figures[160];
  std::snprintf(figures, sizeof(figures), "a scan of %zu file%s (%.1f MB, %llu lines) in %.2f s",
                o.inputs.size(), o.inputs.size() == 1 ? "" : "s", scan->bytes / 1e6,
                static_cast<unsigned long long>(scan->lines), seconds);
  job.from_data = true;
  job.source = figures;
  if (scan->num_fields == 0) {
    // No field anywhere: the job then stops on "no well-formed row", which says more.
    job.num_fields = 1;
    job.source += "; no field found";
  } else {
    job.num_fields = scan->num_fields;
    job.source +=
        "; field " + std::to_string(scan->num_fields - 1) + " first at " + scan->first_seen;
  }
  return job;
}

}  // namespace fmps
