// The export file: one checkpoint of a model directory as one self-describing file that programs
// outside fmps can read (docs/model-format.md specifies it byte by byte). A JSON header names the
// model, its fields, ranks, dense layout, how tokens became keys and the whole training config;
// the dense block and the rows, sorted by key with each embedding at its own rank, follow; a
// CRC-32 of everything before it ends the file. `fmps export` writes it, `fmps dump` prints it,
// `fmps predict` and `fmps serve` load it like a model directory.
#ifndef FMPS_SERVING_MODEL_EXPORT_H_
#define FMPS_SERVING_MODEL_EXPORT_H_

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/params.h"
#include "proto/fmps.pb.h"
#include "ps/base/env.h"
#include "ps/base/status.h"
#include "serving/model_snapshot.h"

namespace fmps {

inline constexpr char kExportMagic[8] = {'F', 'M', 'P', 'S', 'M', 'O', 'D', 'L'};
inline constexpr uint32_t kExportFormatVersion = 1;

struct ExportOptions {
  std::string model_dir;  // directory with MANIFEST-* and shard files
  // checkpoint to export (0: the newest whose shards all verify)
  int64_t version = params::kDefault.model_version;
  std::string out;  // file written (atomically)
  // Keep rows with w = 0 and no embedding (they score as unknown keys): false leaves them out.
  bool keep_zero_rows = false;
};

struct ExportSummary {
  int64_t version = 0;      // checkpoint exported
  uint64_t rows = 0;        // rows written
  uint64_t embeddings = 0;  // of those, rows with an embedding
  uint64_t dropped = 0;     // rows left out (w = 0, no embedding)
  uint64_t bytes = 0;       // size of the file
};

// Writes checkpoint `options.version` of options.model_dir as one export file (w derived with the
// store options the job's servers had: StoreOptionsFromConfig).
Result<ExportSummary> ExportModel(const ExportOptions& options);

// What an export file's header says, as C++ wants it.
struct ExportHeader {
  std::string json;          // the header text as written
  proto::Manifest manifest;  // the checkpoint's manifest (config, version, rows; no shards)
  uint64_t dense_size = 0;
  uint64_t rows = 0;
};

// One row of an export file. v views the file's bytes (not aligned for float: copy it out).
struct ExportRow {
  uint64_t key = 0;
  float w = 0;
  uint32_t count = 0;  // occurrences the servers counted (saturates at the store's limit)
  uint32_t rank = 0;   // floats of v
  const char* v = nullptr;
};

// True when path is a regular file that begins with the export magic (read through env); false
// for a directory or a missing path; an error naming the file when it cannot be read.
Result<bool> IsExportFile(const std::string& path, Env* env = Env::Default());

// Checks the whole file (magic, format version, sizes, keys strictly increasing, CRC-32) and
// reads its header and dense block, then calls on_row for every row in key order; errors name the
// file and the byte offset. on_row may be empty (header and dense only).
Status ReadExport(std::string_view bytes, const std::string& name, ExportHeader* header,
                  std::vector<float>* dense,
                  const std::function<Status(const ExportRow& row)>& on_row);

}  // namespace fmps

#endif  // FMPS_SERVING_MODEL_EXPORT_H_
