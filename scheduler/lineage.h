// Lineage of a model_dir's versions: what a manifest records about the data a job read, and the
// checks that a job continuing a saved model (--resume, --init_model) makes against it before
// anything starts, so that a mismatch is one clear message naming both sides instead of a model
// trained on the wrong parts or a shard that does not fit.
#ifndef FMPS_SCHEDULER_LINEAGE_H_
#define FMPS_SCHEDULER_LINEAGE_H_

#include <optional>
#include <string>

#include "proto/fmps.pb.h"
#include "ps/base/env.h"
#include "ps/base/status.h"
#include "scheduler/work_pool.h"

namespace fmps {

// Fills m->data (each file's path, size and mtime) and m->parts (the pool's part boundaries).
// Streams (stdin, pipes) are recorded with size and mtime 0.
void RecordTrainingData(const WorkPool& pool, proto::Manifest* m, Env* env = Env::Default());

// OK when the pool reads the files m recorded (same paths, sizes and mtimes) cut into the same
// parts; otherwise an error naming the first difference. A manifest that records no data (written
// before fmps recorded it) cannot be checked: OK, with a warning.
Status CheckSameTrainingData(const proto::Manifest& m, const WorkPool& pool,
                             const std::string& model_dir, Env* env = Env::Default());

// OK when a job with config `job` can continue the model saved with config `saved`: the same
// model, k, field count, format and the model's shape options (Model::ShapeFlags). Otherwise an
// error "<what> was trained with --model=fm; this job has --model=fwfm"-style, naming both values.
Status CheckSameModelShape(const proto::JobConfig& saved, const proto::JobConfig& job,
                           const std::string& what);

// The checkpoint --resume continues from: the newest good one in dir; nullopt when dir holds no
// MANIFEST at all (a first run starts from scratch). When manifests exist but none verifies, an
// error naming each file and what is wrong with it: they are left as they are, not trained over.
Result<std::optional<proto::Manifest>> FindResumeCheckpoint(const std::string& dir,
                                                            Env* env = Env::Default());

// "<dir>, version <v>": how messages name a checkpoint.
std::string CheckpointName(const std::string& dir, int64_t version);

}  // namespace fmps

#endif  // FMPS_SCHEDULER_LINEAGE_H_
