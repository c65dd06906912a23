// The number of fields of libffm and libsvm data, which their format does not fix (Criteo's and
// Avazu's does): a byte scan of whole files, plain or compressed, for the fields a reader would
// make. A job takes its field count from a scan of every input before it starts, so a field that
// first appears in a file's last line is in the model like one in its first.
#ifndef FMPS_DATA_FIELD_SCAN_H_
#define FMPS_DATA_FIELD_SCAN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "data/reader.h"
#include "ps/base/env.h"
#include "ps/base/status.h"

namespace fmps {

struct FieldScan {
  int num_fields = 0;      // the largest field seen + 1 (0: no field at all)
  std::string first_seen;  // "FILE:LINE" of the first line holding that largest field
  uint64_t bytes = 0;      // decoded bytes scanned
  uint64_t lines = 0;      // lines scanned
};

// Scans all of `path`. libffm: the field of every field:feature:value token after a line's label;
// libsvm: each line's number of pairs after its label (a pair's position is its field). Fields at
// or beyond kMaxFields are left out (the reader reports their lines as bad). A line the reader
// rejects for another reason may raise the count, never lower it. Errors: a format that fixes its
// fields, a stream (stdin, a pipe: a scan would consume it), a missing file, a truncated or
// corrupt compressed stream.
Result<FieldScan> ScanFields(const std::string& path, DataFormat format, Env* env = Env::Default());

// The scan of every path: the largest count, first_seen of the first file that reaches it.
Result<FieldScan> ScanFields(const std::vector<std::string>& paths, DataFormat format,
                             Env* env = Env::Default());

}  // namespace fmps

#endif  // FMPS_DATA_FIELD_SCAN_H_
