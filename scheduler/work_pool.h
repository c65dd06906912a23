// WorkPool: the scheduler's list of data parts for one pass over the data (an epoch or the test
// set). Files are cut into byte ranges of about part_bytes (readers align them to lines);
// compressed files and stdin cannot be split and are handed out whole. Workers take parts, report
// them done; a failed worker's unfinished parts go back to the pool, so every part is completed
// exactly once per pass.
//
// Not thread-safe: the scheduler's control thread owns the pool.
#ifndef FMPS_SCHEDULER_WORK_POOL_H_
#define FMPS_SCHEDULER_WORK_POOL_H_

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/params.h"
#include "data/reader.h"
#include "ps/base/status.h"

namespace fmps {

struct WorkPoolOptions {
  // Target size of a part of a plain file (launch/ sets it from the config).
  uint64_t part_bytes = static_cast<uint64_t>(params::kDefault.part_mb * (1 << 20));
};

struct WorkItem {
  int id = -1;  // part id within the pass
  DataPart part;
};

class WorkPool {
 public:
  explicit WorkPool(const WorkPoolOptions& options) : options_(options) {}

  // Cuts the files into parts (stat'ing them; sniffing gzip/zstd magic to hand those out whole).
  // Empty plain files give no part; "-" gives one whole part. Errors name the file that cannot
  // be read; on error no part of that call is added.
  Status AddFiles(const std::vector<std::string>& paths);

  // Next part for a worker, or nullopt when none is pending (all handed out or done).
  std::optional<WorkItem> Take(int worker);
  // Marks a part done by a worker. Returns false if the part was not assigned to that worker
  // (e.g. it was reassigned after the worker was declared dead) — the report is then ignored.
  bool Done(int part_id, int worker);
  // Returns a worker's unfinished parts to the pending queue; returns how many.
  int ReturnParts(int worker);
  // Returns one part a worker gives back unread; false (and nothing changes) unless it is
  // assigned to that worker.
  bool ReturnPart(int part_id, int worker);
  // Marks parts as already done (resume from a checkpoint).
  void MarkDone(const std::vector<int>& part_ids);

  bool AllDone() const { return done_count_ == parts_.size(); }
  size_t num_parts() const { return parts_.size(); }
  size_t num_done() const { return done_count_; }
  // True while a worker holds a part of this pass it has not reported done.
  bool AnyAssigned() const;
  std::vector<int> DoneParts() const;
  const std::vector<DataPart>& parts() const { return parts_; }
  // Starts another pass over the same parts (next epoch): all parts pending again. Take then
  // gives each worker first the parts it completed in the pass before, in order (a worker keeps
  // the minibatches of those in its part cache), and a worker that has none left the last
  // pending part, so that workers finishing early take from the far end of the others' lists.
  void Reset();

 private:
  enum class State : uint8_t { kPending, kAssigned, kDone };
  WorkPoolOptions options_;
  std::vector<DataPart> parts_;
  std::vector<State> state_;
  std::vector<int> owner_;
  size_t next_ = 0;  // scan position for pending parts (first pass)
  // Later passes: per worker, the parts it did in the pass before (its PartCache holds them),
  // and the position below which a worker without such parts left looks for one, backwards.
  std::map<int, std::deque<size_t>> preferred_;
  std::vector<int> last_owner_;  // who did each part in the pass before (-1: nobody)
  std::vector<bool> stream_;     // stdin or a pipe: read once, then only replayed from a cache
  size_t back_ = 0;
  size_t done_count_ = 0;
};

}  // namespace fmps

#endif  // FMPS_SCHEDULER_WORK_POOL_H_
